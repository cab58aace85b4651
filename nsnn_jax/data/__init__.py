"""Data sets: one :class:`Dataset` type returned by every loader."""

from nsnn_jax.data import idx
from nsnn_jax.data.dataset import Dataset
from nsnn_jax.data.idx import IdxDataset, load_idx_dataset, read_idx, write_idx

__all__ = ["Dataset", "idx", "IdxDataset", "load_idx_dataset", "read_idx", "write_idx"]
