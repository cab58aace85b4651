"""Training entry points (``python -m train.NAME``) and the shared trainer."""
