"""The embedded reply model as the agent ships it: the weights and tokenizer (``model/``) and the draft
index lookup (``drafts.py``). How they are made lives in the offline recipe, ``recipe/``."""
