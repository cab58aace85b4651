"""Data sets: one :class:`Dataset` type returned by every loader."""

from nsnn_jax.data import augment, autoaugment, cifar, idx, sources
from nsnn_jax.data.cifar import load_cifar, write_cifar_archive
from nsnn_jax.data.dataset import Dataset
from nsnn_jax.data.idx import load_idx_dataset, read_idx, write_idx
from nsnn_jax.data.sources import DataNotFoundError

__all__ = [
    "Dataset",
    "DataNotFoundError",
    "augment",
    "autoaugment",
    "cifar",
    "idx",
    "sources",
    "load_cifar",
    "load_idx_dataset",
    "read_idx",
    "write_cifar_archive",
    "write_idx",
]
