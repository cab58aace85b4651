"""Data sets: MNIST and Fashion-MNIST from IDX files (numpy only)."""

from nsnn_jax.data import idx
from nsnn_jax.data.idx import IdxDataset, load_idx_dataset, read_idx, write_idx

__all__ = ["idx", "IdxDataset", "load_idx_dataset", "read_idx", "write_idx"]
