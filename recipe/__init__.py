"""The embedded reply model's offline recipe: training data (templates, cleaned corpora, filtered teacher
replies), warm-start embeddings, the draft index builder and the evaluation. Serving (``agent/``) never
imports it; it imports the agent's prompt code, so training sees the context serving writes.

    python -m recipe.build_data --config configs/embedded_data.toml   # make data
    python -m recipe.drafts                                          # the draft index (make train)
    python -m recipe.evaluate --json out/eval/eval.json              # make eval
"""
