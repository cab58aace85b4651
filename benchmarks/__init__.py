"""Benchmarks (``python -m benchmarks.NAME``): human-readable rows, then one JSON line."""
