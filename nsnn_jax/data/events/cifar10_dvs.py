"""CIFAR10-DVS (Li et al. 2017) from its published AEDAT 2.0 recordings, as event frames.

The published data set is one folder per class (``airplane/`` ... ``truck/``),
each holding ``.aedat`` recordings (:func:`~nsnn_jax.data.events.aedat.read_aedat2`),
1000 per class. It cannot be downloaded automatically.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional, Union

from nsnn_jax.data import sources
from nsnn_jax.data.cifar import CIFAR10_LABEL_NAMES
from nsnn_jax.data.dataset import Dataset
from nsnn_jax.data.events import aedat, frames

__all__ = ["CIFAR10_DVS_LABEL_NAMES", "SPLITS", "load_cifar10_dvs"]

PathLike = Union[str, os.PathLike]

CIFAR10_DVS_LABEL_NAMES = CIFAR10_LABEL_NAMES  # the class folders carry the CIFAR-10 names

# Recordings per class of the published CIFAR10-DVS.
_CIFAR_PER_CLASS = 1000
# Subfolders of data_dir also searched for the class folders.
_CIFAR_SUBFOLDERS = ("CIFAR10-DVS", "CIFAR10DVS", "cifar10_dvs", "cifar10-dvs")
D = sources.DATA_DIR


def _help(folder: Optional[Path], problem: str) -> sources.DataNotFoundError:
    shown = folder if folder is not None else "DIR"
    layout = "\n".join(f"    {shown}/{name}/*.aedat" for name in CIFAR10_DVS_LABEL_NAMES)
    return sources.DataNotFoundError(
        f"CIFAR10-DVS: {problem}\n"
        f"Pass DIR as {D}, a folder with the ten class folders of the published recordings "
        f"(AEDAT 2.0, {_CIFAR_PER_CLASS} per class), e.g. for DIR = {shown}:\n{layout}\n"
        f"(or the same inside DIR/{_CIFAR_SUBFOLDERS[0]}/). The data set cannot be downloaded automatically: "
        f"download the ten class archives airplane.zip ... truck.zip by hand from "
        f"https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671 and unzip them into DIR.")


def _root(data_dir: Optional[PathLike]) -> Path:
    return sources.find_root(data_dir, _CIFAR_SUBFOLDERS, [name + "/" for name in CIFAR10_DVS_LABEL_NAMES],
                             Path.is_dir, _help)


SPLITS = ("9k1k", "70-30")


def _trailing_number(path: Path) -> tuple:
    """Sort key: the number ending the file name's stem (``cifar10_cat_12`` -> 12), then the name."""
    digits = re.search(r"(\d+)$", path.stem)
    return (int(digits.group(1)) if digits else -1, path.name)


def load_cifar10_dvs(data_dir: Optional[PathLike], timesteps: int = 10, size: int = 48, split_by: str = "number",
                     cache_dir: Optional[PathLike] = None, frame_norm: str = "none", resize: str = "bin",
                     split: str = "9k1k") -> Dataset:
    """Loads CIFAR10-DVS from its published AEDAT 2.0 recordings as event frames.

    Splits (``split``), per class folder:

    - ``"9k1k"`` (the paper's, the usual one): the recordings sorted by file
      name (plain string order, as SpikingJelly and torchvision list them, so
      ``..._10`` comes before ``..._2``); the first ``9 * n // 10`` train (900
      of the published 1000) and the rest test.
    - ``"70-30"`` (the NSNN authors' preprocessing script): the recordings in
      the order of the number ending their names (``..._0``, ``..._1``, ...);
      the first ``7 * n // 10`` train (700) and the rest test (300).

    Samples are ordered class by class, then in that order.

    The authors' frames are ``frame_norm="max"``, ``resize="bilinear"`` (see
    :func:`~nsnn_jax.data.events.frames.resize_bilinear` for what differs).

    Args:
      data_dir: the folder holding ``airplane/`` ... ``truck/`` (or holding
        them in a ``CIFAR10-DVS/`` subfolder); None raises the help.
      timesteps: frames per sample.
      size: frame height and width, ``1..128``; the 128 x 128 sensor is
        downsampled by integer coordinate scaling
        (:func:`~nsnn_jax.data.events.frames.events_to_frames`).
      split_by: ``"number"`` or ``"time"`` (:func:`~nsnn_jax.data.events.frames.events_to_frames`).
      frame_norm: ``"none"`` (event counts) or ``"max"`` (each frame divided
        by its maximum over both polarities).
      resize: ``"bin"`` (integer coordinate scaling, counts add up) or
        ``"bilinear"`` (frames at 128 x 128 resized with Pillow's bilinear filter).
      split: ``"9k1k"`` or ``"70-30"``.
      cache_dir: where to cache the frames
        (:func:`~nsnn_jax.data.events.frames.frames_cache_folder`); default
        next to the recordings. Cached frames of unchanged recordings are
        read instead of decoding again; delete the folder to decode anew.

    Returns:
      A :class:`~nsnn_jax.data.Dataset`: ``x`` float32
      ``(n, timesteps, size, size, 2)`` (event counts, one channel per
      polarity; divided by each frame's maximum with ``frame_norm="max"``), ``y`` int32 in ``0..9`` (CIFAR-10 class order), the class
      names and the source.

    Raises:
      DataNotFoundError: (a ``FileNotFoundError``) ``data_dir`` not given or
        missing, class folders missing, or a class folder without ``.aedat``
        files (the message gives the expected layout and where to get the data).
      ValueError: bad settings, or a corrupt or truncated recording (the
        message names the file).
    """
    steps, size = frames.check_settings(timesteps, size, split_by, frame_norm, resize)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    root = _root(data_dir)
    files = {name: frames.visible_files(root / name, ".aedat") for name in CIFAR10_DVS_LABEL_NAMES}
    empty = [name for name, paths in files.items() if not paths]
    if empty:
        raise _help(root, f"no .aedat recordings in {', '.join(str(root / name) + '/' for name in empty)}.")
    recordings = []
    for label, name in enumerate(CIFAR10_DVS_LABEL_NAMES):
        paths = files[name]
        if split == "70-30":
            paths = sorted(paths, key=_trailing_number)
            n_train = 7 * len(paths) // 10  # 700 of the published 1000
        else:
            n_train = 9 * len(paths) // 10  # 900 of the published 1000
        for index, path in enumerate(paths):
            recordings.append(frames.Recording(path, (f"{name}/{path.stem}",), (label,),
                                               "train" if index < n_train else "test"))
    folder = frames.frames_cache_folder("dvs_cifar10", root, steps, size, split_by, cache_dir, frame_norm, resize)
    make_frames = frames.frames_maker(steps, size, split_by, frame_norm, resize)

    def decode(recording: frames.Recording) -> list:
        return [make_frames(aedat.read_aedat2(recording.path))]

    return frames.build_dataset("dvs_cifar10", recordings, decode, folder, (steps, size, size, 2),
                                CIFAR10_DVS_LABEL_NAMES, f"data_dir: {root} (frames cached in {folder})")
