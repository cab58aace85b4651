"""The one data-set type every loader returns and the trainer takes."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Dataset"]


class Dataset(NamedTuple):
    """Host arrays of a data set, batch-major.

    What the loaders return in ``train_x`` / ``test_x``:

    * :func:`~nsnn_jax.data.idx.load_idx_dataset` (MNIST, Fashion-MNIST):
      uint8 images ``(n, 28, 28)``;
    * :func:`~nsnn_jax.data.cifar.load_cifar`: uint8 RGB images, NHWC
      ``(n, 32, 32, 3)``;
    * :func:`~nsnn_jax.data.events.load_cifar10_dvs`,
      :func:`~nsnn_jax.data.events.load_fashion_mnist_dvs` (emulated events) and
      :func:`~nsnn_jax.data.events.load_dvs_gesture`: float32 event frames
      ``(n, T, H, W, 2)``, per-pixel event counts, channel = polarity.

    Their ``train_y`` / ``test_y`` are int32 class labels ``(n,)`` in
    ``0..num_classes - 1``. Static images are not repeated over time here;
    the model does that.

    Attributes:
      train_x: training inputs ``(n_train, ...)``: images ``(n, H, W)`` or
        ``(n, H, W, C)`` (uint8 or float32), event frames ``(n, T, H, W, 2)``,
        or series windows.
      train_y: training targets: int32 labels ``(n_train,)`` or regression
        targets ``(n_train, D)``.
      test_x: test inputs ``(n_test, ...)``.
      test_y: test targets ``(n_test,)`` or ``(n_test, D)``.
      label_names: the class names, ``label_names[label]`` (empty for a regression).
      source: where the data came from, e.g. ``"data_dir: /path"``.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    label_names: tuple[str, ...] = ()
    source: str = ""

    @property
    def num_classes(self) -> int:
        """Number of classes (0 for a regression data set without label names)."""
        return len(self.label_names)
