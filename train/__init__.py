"""The training commands (``python -m train.NAME``); what they share is in :mod:`train.common`."""
