"""``python -m analysis.paper``: the paper's figures and tables regenerated, with a verdict per claim."""
