"""Training data for the embedded reply model: templates, cleaned corpora, filtered teacher replies.

Entry point: ``python -m agent.embedded.build_data --config configs/embedded_data.toml``.
"""
