"""Analyses of trained runs (``python -m analysis.NAME --workdir DIR``)."""
