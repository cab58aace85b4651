"""DVS128 Gesture (Amir et al. 2017) from its published AEDAT 3.1 recordings, as event frames.

The published archive holds recordings ``userXX_<lighting>.aedat``
(:func:`~nsnn_jax.data.events.aedat.read_aedat31`) with
``userXX_<lighting>_labels.csv`` (header ``class,startTime_usec,endTime_usec``,
classes 1..11: the gesture windows of the recording) and the lists
``trials_to_train.txt`` / ``trials_to_test.txt``. It cannot be downloaded
automatically.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from nsnn_jax.data import sources
from nsnn_jax.data.dataset import Dataset
from nsnn_jax.data.events import aedat, frames
from nsnn_jax.data.events.aedat import Events

__all__ = [
    "GESTURE_LABEL_NAMES",
    "read_gesture_labels",
    "write_gesture_labels",
    "gesture_samples",
    "load_dvs_gesture",
]

PathLike = Union[str, os.PathLike]

# Class k + 1 of the labels CSVs (gesture_mapping.csv of the published archive).
GESTURE_LABEL_NAMES = (
    "hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise", "right_arm_counter_clockwise",
    "left_arm_clockwise", "left_arm_counter_clockwise", "arm_roll", "air_drums", "air_guitar", "other_gestures",
)

# Subfolders of data_dir also searched for the gesture files.
_GESTURE_SUBFOLDERS = ("DvsGesture", "DVSGesture", "dvs_gesture")
_GESTURE_LISTS = {"train": "trials_to_train.txt", "test": "trials_to_test.txt"}
_GESTURE_CSV_HEADER = ("class", "startTime_usec", "endTime_usec")


def read_gesture_labels(path: PathLike) -> np.ndarray:
    """Reads a ``userXX_<lighting>_labels.csv`` file of DVS128 Gesture.

    Args:
      path: the CSV file, header ``class,startTime_usec,endTime_usec``.

    Returns:
      int64 ``(n, 3)``: rows ``(class, start_us, end_us)`` in file order, class
      in ``1..11``.

    Raises:
      ValueError: a wrong header, a row that is not three integers, a class
        outside ``1..11``, or ``end < start``; the message names the file and
        line.
      OSError: the file cannot be read.
    """
    text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    rows = [(number, row) for number, row in enumerate(csv.reader(io.StringIO(text)), 1)
            if any(cell.strip() for cell in row)]
    if not rows or tuple(cell.strip() for cell in rows[0][1]) != _GESTURE_CSV_HEADER:
        got = ",".join(rows[0][1]) if rows else "nothing"
        raise ValueError(f"{path}: expected the header {','.join(_GESTURE_CSV_HEADER)}, got {got!r}.")
    parsed = []
    for number, row in rows[1:]:
        try:
            values = [int(cell.strip()) for cell in row]
        except ValueError:
            values = []
        if len(values) != 3:
            raise ValueError(f"{path}, line {number}: expected three integers class,start,end, got {row!r}.")
        label, start, end = values
        if not 1 <= label <= len(GESTURE_LABEL_NAMES):
            raise ValueError(f"{path}, line {number}: class must be in 1..{len(GESTURE_LABEL_NAMES)}, got {label}.")
        if end < start:
            raise ValueError(f"{path}, line {number}: endTime_usec {end} < startTime_usec {start}.")
        parsed.append(values)
    return np.asarray(parsed, np.int64).reshape(-1, 3)


def write_gesture_labels(path: PathLike, rows: Sequence[Sequence[int]]) -> None:
    """Writes a DVS128 Gesture labels CSV, the inverse of :func:`read_gesture_labels`.

    Args:
      path: destination file.
      rows: ``(class, start_us, end_us)`` triples, class in ``1..11``,
        ``start_us <= end_us``.

    Raises:
      ValueError: a row that is not three integers, a class outside ``1..11``,
        or ``end < start``.
    """
    lines = [",".join(_GESTURE_CSV_HEADER)]
    for row in rows:
        values = [int(value) for value in row]
        if len(values) != 3:
            raise ValueError(f"write_gesture_labels({path}): expected (class, start, end), got {row!r}.")
        label, start, end = values
        if not 1 <= label <= len(GESTURE_LABEL_NAMES) or end < start:
            raise ValueError(f"write_gesture_labels({path}): need class in 1..{len(GESTURE_LABEL_NAMES)} and "
                             f"start <= end, got {row!r}.")
        lines.append(f"{label},{start},{end}")
    Path(path).write_text("\n".join(lines) + "\n")


def _cut_windows(events: Events, rows: np.ndarray) -> list:
    t = np.asarray(events.t)
    samples = []
    for label, start, end in rows:
        mask = (t >= start) & (t < end)
        samples.append((Events(*(np.asarray(a)[mask] for a in events)), int(label) - 1))
    return samples


def gesture_samples(events: Events, labels_csv: PathLike) -> list:
    """Cuts a DVS128 Gesture recording into its labelled gestures.

    Args:
      events: the recording, e.g. from :func:`~nsnn_jax.data.events.aedat.read_aedat31` (any order).
      labels_csv: its ``_labels.csv`` file.

    Returns:
      A list of ``(Events, label)``, one per CSV row in file order: the events
      with ``startTime_usec <= t < endTime_usec`` (file order kept) and the
      0-based label ``class - 1`` in ``0..10``.

    Raises:
      ValueError: a malformed labels file (see :func:`read_gesture_labels`).
    """
    return _cut_windows(events, read_gesture_labels(labels_csv))


# --------------------------------------------------------------------------- DVS128 Gesture


D = sources.DATA_DIR


def _help(folder: Optional[Path], problem: str) -> sources.DataNotFoundError:
    return sources.DataNotFoundError(
        f"DVS128 Gesture: {problem}\n"
        f"Pass DIR as {D}, the folder extracted from the published DvsGesture.tar.gz, laid out as:\n"
        f"    DIR/trials_to_train.txt\n"
        f"    DIR/trials_to_test.txt\n"
        f"    DIR/user01_fluorescent.aedat           (AEDAT 3.1 recordings, userXX_<lighting>.aedat)\n"
        f"    DIR/user01_fluorescent_labels.csv      (class,startTime_usec,endTime_usec)\n"
        f"    ...\n"
        f"(or the same inside DIR/{_GESTURE_SUBFOLDERS[0]}/{'' if folder is None else f'; here DIR = {folder}'}). "
        f"The data set cannot be downloaded automatically: IBM distributes it through "
        f"https://research.ibm.com/interactive/dvsgesture/ and the download has to be done by hand, then "
        f"extracted into DIR.")


def _root(data_dir: Optional[PathLike]) -> Path:
    return sources.find_root(data_dir, _GESTURE_SUBFOLDERS, list(_GESTURE_LISTS.values()), Path.is_file, _help)


def _read_trials(path: Path) -> list:
    names = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    names = [name for name in names if name]
    for name in names:
        if not name.endswith(".aedat") or "/" in name or "\\" in name:
            raise ValueError(f"{path}: expected one recording file name (userXX_<lighting>.aedat) a line, "
                             f"got {name!r}.")
    return names


def load_dvs_gesture(data_dir: Optional[PathLike], timesteps: int = 16, size: int = 128, split_by: str = "number",
                     cache_dir: Optional[PathLike] = None) -> Dataset:
    """Loads DVS128 Gesture from its published AEDAT 3.1 recordings as event frames.

    Each recording listed in ``trials_to_train.txt`` / ``trials_to_test.txt``
    is cut by its labels CSV (:func:`gesture_samples`) into one sample per
    row. Samples are ordered as the lists name the recordings, then as the
    CSV rows.

    Args:
      data_dir: the folder holding the trials lists, the ``.aedat`` files and
        their ``_labels.csv`` files (or holding them in a ``DvsGesture/``
        subfolder); None raises the help.
      timesteps: frames per sample.
      size: frame height and width, ``1..128``; below 128 the sensor is
        downsampled by integer coordinate scaling
        (:func:`~nsnn_jax.data.events.frames.events_to_frames`).
      split_by: ``"number"`` or ``"time"``
        (:func:`~nsnn_jax.data.events.frames.events_to_frames`), within each
        gesture window.
      cache_dir: where to cache the frames
        (:func:`~nsnn_jax.data.events.frames.frames_cache_folder`); default
        next to the recordings. A recording is decoded again when it or its
        labels CSV changed.

    Returns:
      A :class:`~nsnn_jax.data.Dataset`: ``x`` float32
      ``(n, timesteps, size, size, 2)`` (event counts, one channel per
      polarity), ``y`` int32 in ``0..10`` (CSV class - 1), the class names and
      the source.

    Raises:
      DataNotFoundError: (a ``FileNotFoundError``) ``data_dir`` not given or
        missing, a trials list, or a listed recording or its labels CSV
        missing (the message gives the expected layout).
      ValueError: bad settings, a malformed trials list or labels CSV, or a
        corrupt or truncated recording (the message names the file).
    """
    steps, size = frames.check_settings(timesteps, size, split_by)
    root = _root(data_dir)
    recordings, absent = [], []
    for split, list_name in _GESTURE_LISTS.items():
        for name in _read_trials(root / list_name):
            path, labels_csv = root / name, root / f"{name[:-len('.aedat')]}_labels.csv"
            absent += [str(p) for p in (path, labels_csv) if not p.is_file()]
            if path.is_file() and labels_csv.is_file():
                labels = read_gesture_labels(labels_csv)[:, 0] - 1
                keys = tuple(f"{path.stem}-{row:02d}" for row in range(len(labels)))
                recordings.append(frames.Recording(path, keys, tuple(int(k) for k in labels), split, (labels_csv,)))
    if absent:
        shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise _help(root, f"files named by the trials lists are missing: {shown}.")
    folder = frames.frames_cache_folder("dvs_gesture", root, steps, size, split_by, cache_dir)
    make_frames = frames.frames_maker(steps, size, split_by)

    def decode(recording: frames.Recording) -> list:
        labels_csv = recording.depends[0]
        return [make_frames(events) for events, _ in gesture_samples(aedat.read_aedat31(recording.path), labels_csv)]

    return frames.build_dataset("dvs_gesture", recordings, decode, folder, (steps, size, size, 2),
                                GESTURE_LABEL_NAMES, f"data_dir: {root} (frames cached in {folder})")
