"""Fashion-MNIST seen by an emulated event camera (the way N-MNIST was recorded), as event frames.

Not a published data set: the Fashion-MNIST images
(:func:`~nsnn_jax.data.idx.load_idx_dataset`, e.g. Debian's copy in
``/usr/share/datasets/fashion-mnist``) are turned into event streams by
:mod:`~nsnn_jax.data.events.emulate` (three saccades forming a triangle, a
log-intensity contrast threshold, a refractory period), then integrated into
frames by :func:`~nsnn_jax.data.events.frames.events_to_frames` and cached
like the recorded data sets.

What differs from real recordings (N-MNIST, CIFAR10-DVS): no sensor noise
(no background activity, no hot pixels), no bandwidth or latency limits, no
monitor flicker, perfectly straight constant-speed motion, and thresholds
equal in every pixel unless ``mismatch`` is set.

Samples are emulated in blocks of :data:`BLOCK` images (one block is one
"recording" of :func:`~nsnn_jax.data.events.frames.build_dataset`); a
sample's cache file carries a digest of its block's pixels and labels, so
another image tree sharing the cache folder gets its own frames, and the
cache folder's name carries the emulator settings
(:meth:`~nsnn_jax.data.events.emulate.EmulatorSettings.tag`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Optional, Union

import numpy as np

from nsnn_jax.data import idx, sources
from nsnn_jax.data.dataset import Dataset
from nsnn_jax.data.events import emulate, frames

__all__ = ["BLOCK", "IMAGE_SIZE", "load_fashion_mnist_dvs"]

PathLike = Union[str, os.PathLike]

BLOCK = 100  # images emulated at once, and per cached "recording"
IMAGE_SIZE = 28


def _limit(name: str, value: Optional[int], available: int) -> int:
    if value is None:
        return available
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be None (all images) or an integer >= 1, got {value!r}.")
    return min(int(value), available)


def load_fashion_mnist_dvs(data_dir: Optional[PathLike] = None, timesteps: int = 10, size: int = 34,
                           split_by: str = "number", cache_dir: Optional[PathLike] = None,
                           frame_norm: str = "none", train_limit: Optional[int] = None,
                           test_limit: Optional[int] = None,
                           settings: Optional[emulate.EmulatorSettings] = None) -> Dataset:
    """Loads Fashion-MNIST, emulates the event camera on it and returns event frames.

    Args:
      data_dir: the folder of the four Fashion-MNIST IDX files; None searches
        as :func:`~nsnn_jax.data.idx.load_idx_dataset` does (Debian's copy,
        the cache, the download).
      timesteps: frames per sample.
      size: the emulated sensor's height and width, >= 28 with ``size - 28``
        even: the 28 x 28 image is centred with ``(size - 28) / 2`` black
        pixels per side (34: N-MNIST's sensor); this sets ``settings.pad``.
      split_by: ``"number"`` or ``"time"``
        (:func:`~nsnn_jax.data.events.frames.events_to_frames`).
      cache_dir: root of the frame cache; default
        ``$NSNN_JAX_DATA/dvs_frames`` (or ``~/.cache/nsnn_jax/dvs_frames``).
      frame_norm: ``"none"`` (event counts) or ``"max"`` (each frame divided
        by its maximum over both polarities).
      train_limit: use only the first ``train_limit`` training images (None: all 60000).
      test_limit: use only the first ``test_limit`` test images (None: all 10000).
      settings: the emulated camera and motion (default
        :class:`~nsnn_jax.data.events.emulate.EmulatorSettings`); its ``pad``
        is replaced by the one ``size`` gives.

    Returns:
      A :class:`~nsnn_jax.data.Dataset`: ``x`` float32
      ``(n, timesteps, size, size, 2)`` (event counts, channel = polarity,
      ON = 1), ``y`` int32 in ``0..9``, Fashion-MNIST's class names and the
      source (with the emulator settings and the cache folder).

    Raises:
      DataNotFoundError: (a ``FileNotFoundError``) no Fashion-MNIST files.
      ValueError: bad settings or limits, or corrupt IDX files.
    """
    steps, _ = frames.check_settings(timesteps, 1, split_by, frame_norm)
    if (isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < IMAGE_SIZE
            or (size - IMAGE_SIZE) % 2):
        raise ValueError(f"size must be an integer >= {IMAGE_SIZE} with size - {IMAGE_SIZE} even (the image "
                         f"centred on the sensor), got {size!r}.")
    size = int(size)
    settings = dataclasses.replace(settings or emulate.EmulatorSettings(), pad=(size - IMAGE_SIZE) // 2)
    base = idx.load_idx_dataset("fashion_mnist", data_dir=data_dir)
    limits = {"train": _limit("train_limit", train_limit, len(base.train_y)),
              "test": _limit("test_limit", test_limit, len(base.test_y))}
    arrays = {"train": (base.train_x, base.train_y), "test": (base.test_x, base.test_y)}
    recordings, blocks = [], {}
    for split, (images, labels) in arrays.items():
        for start in range(0, limits[split], BLOCK):
            stop = min(start + BLOCK, limits[split])
            block, block_labels = np.ascontiguousarray(images[start:stop]), labels[start:stop]
            digest = hashlib.sha1(block.tobytes() + np.asarray(block_labels, "<i4").tobytes()).hexdigest()[:12]
            name = Path(f"fashion_mnist {split} images {start}..{stop - 1}")
            blocks[name] = block
            recordings.append(frames.Recording(name, tuple(f"{split}/{i:05d}" for i in range(start, stop)),
                                               tuple(int(label) for label in block_labels), split,
                                               digest=digest))
    root = Path(cache_dir).expanduser() if cache_dir is not None else sources.cache_root() / "dvs_frames"
    folder = frames.frames_cache_folder(f"fashion_mnist_dvs-{settings.tag()}", root, steps, size, split_by, root,
                                        frame_norm)

    def decode(recording: frames.Recording) -> list:
        out = []
        for events in emulate.emulate_batch(blocks[recording.path], settings):
            sample = frames.events_to_frames(events, steps, size, size, split_by)
            out.append(frames.max_normalise(sample) if frame_norm == "max" else sample)
        return out

    return frames.build_dataset(f"fashion_mnist_dvs (blocks of {BLOCK} images)", recordings, decode, folder,
                                (steps, size, size, 2), base.label_names,
                                f"{base.source}, emulated events ({settings.tag()}; frames cached in {folder})")
