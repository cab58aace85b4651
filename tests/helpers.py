"""Shared test fixtures: tiny datasets in the real file formats."""

import os

import numpy as np

from nsnn_jax.data import idx

TINY = ["--hidden", "16", "--timesteps", "2", "--batch-size", "16", "--epochs", "2"]


def make_idx_dir(path, n_train=64, n_test=24, seed=0):
    """Writes the four Fashion-MNIST files, in the real IDX gz format, with learnable data."""
    rng = np.random.default_rng(seed)
    os.makedirs(path, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):  # a bright band per class
            images[i, 2 * label:2 * label + 3] = 250
        idx.write_idx(os.path.join(path, f"{split}-images-idx3-ubyte.gz"), images)
        idx.write_idx(os.path.join(path, f"{split}-labels-idx1-ubyte.gz"), labels)
    return str(path)
