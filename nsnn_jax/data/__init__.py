"""Data sets: one :class:`Dataset` type returned by every loader.

Modules: :mod:`~nsnn_jax.data.sources` (the search order data_dir -> system or
tfds copy -> cache -> download), :mod:`~nsnn_jax.data.idx` (MNIST,
Fashion-MNIST), :mod:`~nsnn_jax.data.cifar` (CIFAR-10/100 and their channel
statistics), :mod:`~nsnn_jax.data.augment` (crop, flip, normalise),
:mod:`~nsnn_jax.data.autoaugment` (the AutoAugment operations and policy) and
:mod:`~nsnn_jax.data.events` (AEDAT files, event frames and their cache,
CIFAR10-DVS, DVS128 Gesture).
"""

from nsnn_jax.data import augment, autoaugment, cifar, events, idx, sources
from nsnn_jax.data.cifar import load_cifar, write_cifar_archive
from nsnn_jax.data.dataset import Dataset
from nsnn_jax.data.events import load_cifar10_dvs, load_dvs_gesture
from nsnn_jax.data.idx import load_idx_dataset, read_idx, write_idx
from nsnn_jax.data.sources import DataNotFoundError

__all__ = [
    "Dataset",
    "DataNotFoundError",
    "augment",
    "autoaugment",
    "cifar",
    "events",
    "idx",
    "sources",
    "load_cifar",
    "load_cifar10_dvs",
    "load_dvs_gesture",
    "load_idx_dataset",
    "read_idx",
    "write_cifar_archive",
    "write_idx",
]
