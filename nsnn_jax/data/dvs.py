"""Neuromorphic data sets from their published recordings: CIFAR10-DVS and DVS128 Gesture.

Both data sets are read as their publishers distribute them and decoded with
vectorised numpy (Python loops run over files and, for AEDAT 3.1, over packets,
never over events).

**CIFAR10-DVS** (Li et al. 2017): one folder per class (``airplane/`` ...
``truck/``), each holding ``.aedat`` recordings in jAER's AEDAT 2.0 format: ASCII
header lines, each starting with ``#`` (the first one ``#!AER-DAT2.0``), then
big-endian pairs of uint32 ``(address, timestamp_us)``. The DVS128 address holds
the polarity in bit 0, the sensor x in bits 1..7 and the sensor y in bits 8..14.
As in SpikingJelly's reader, the sensor coordinates are mapped to image
coordinates with ``x = 127 - y_sensor``, ``y = 127 - x_sensor`` and the polarity
with ``p = 1 - polarity``; :func:`write_aedat2` applies the inverse mapping. The
header ends at the first line that does not start with ``#`` (AEDAT 2.0 has no
end-of-header marker; a DVS128 address is below 2**16, so a payload never starts
with ``#``).

**DVS128 Gesture** (Amir et al. 2017): AEDAT 3.1 recordings
``userXX_<lighting>.aedat`` with ``userXX_<lighting>_labels.csv`` (header
``class,startTime_usec,endTime_usec``, classes 1..11) and the lists
``trials_to_train.txt`` / ``trials_to_test.txt``. An AEDAT 3.1 file is an ASCII
header ending with the line ``#!END-HEADER``, then packets: a 28-byte
little-endian header (``eventType int16, eventSource int16, eventSize int32,
eventTSOffset int32, eventTSOverflow int32, eventCapacity int32, eventNumber
int32, eventValid int32``) followed by ``eventNumber * eventSize`` bytes (in a
file ``eventCapacity == eventNumber``). Polarity events (type 1, 8 bytes) are a
uint32 ``data`` (bit 0 valid, bit 1 polarity, y in bits 2..16, x in bits 17..31)
and an int32 timestamp; the full timestamp is ``(eventTSOverflow << 31) |
timestamp``. Other packet types are skipped and invalid events dropped; x, y and
p are used as stored.

**Frames** (:func:`events_to_frames`): per-pixel event counts in ``T`` frames with
one channel per polarity, ``(T, H, W, 2)`` float32, ``channel = p``. The loaders
cache the frames as one ``.npy`` file per sample, so the recordings are decoded
once per setting of (timesteps, size, split_by).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, NamedTuple, Optional, Sequence, Union

import numpy as np

from nsnn_jax.data.cifar import CIFAR10_LABEL_NAMES
from nsnn_jax.data.sources import cache_root

__all__ = [
    "Events",
    "FrameDataset",
    "CIFAR10_DVS_LABEL_NAMES",
    "GESTURE_LABEL_NAMES",
    "SENSOR_SIZE",
    "read_aedat2",
    "write_aedat2",
    "read_aedat31",
    "write_aedat31",
    "read_gesture_labels",
    "write_gesture_labels",
    "gesture_samples",
    "events_to_frames",
    "frames_cache_folder",
    "load_dvs_cifar10",
    "load_dvs_gesture",
]

PathLike = Union[str, os.PathLike]

# Both data sets were recorded with a DVS128: 128 x 128 pixels.
SENSOR_SIZE = 128

CIFAR10_DVS_LABEL_NAMES = CIFAR10_LABEL_NAMES  # the class folders carry the CIFAR-10 names
# Class k + 1 of the labels CSVs (gesture_mapping.csv of the published archive).
GESTURE_LABEL_NAMES = (
    "hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise", "right_arm_counter_clockwise",
    "left_arm_clockwise", "left_arm_counter_clockwise", "arm_roll", "air_drums", "air_guitar", "other_gestures",
)

SPLIT_MODES = ("number", "time")

# Recordings per class of the published CIFAR10-DVS.
_CIFAR_PER_CLASS = 1000
# Subfolders of --data-dir also searched for the class folders / the gesture files.
_CIFAR_SUBFOLDERS = ("CIFAR10-DVS", "CIFAR10DVS", "cifar10_dvs", "cifar10-dvs")
_GESTURE_SUBFOLDERS = ("DvsGesture", "DVSGesture", "dvs_gesture")
_GESTURE_LISTS = {"train": "trials_to_train.txt", "test": "trials_to_test.txt"}
_GESTURE_CSV_HEADER = ("class", "startTime_usec", "endTime_usec")

_AEDAT2_HEADER = (b"#!AER-DAT2.0\r\n"
                  b"# This is a raw AE data file - do not edit\r\n"
                  b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event\r\n"
                  b"# Timestamps tick is 1 us\r\n")
_AEDAT31_HEADER = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"
_END_HEADER = b"#!END-HEADER"
_PACKET_HEADER = struct.Struct("<hhiiiiii")  # 28 bytes
_POLARITY_EVENT = 1
_POLARITY_SIZE = 8
_POLARITY_TS_OFFSET = 4

# Decoding at least this many recordings prints progress lines on stderr.
PROGRESS_MIN_FILES = 20


class Events(NamedTuple):
    """Events of one recording, in file order.

    Attributes:
      t: int64, ``(n,)``, timestamps in microseconds.
      x: int16, ``(n,)``, column (image coordinates, see the module docstring).
      y: int16, ``(n,)``, row.
      p: uint8, ``(n,)``, polarity in ``{0, 1}``.
    """

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray


class FrameDataset(NamedTuple):
    """Event frames of a neuromorphic data set, batch-major.

    Attributes:
      train_x: float32, ``(n_train, T, H, W, 2)``: per-pixel event counts, one
        channel per polarity.
      train_y: int32, ``(n_train,)``, in ``0..num_classes - 1``.
      test_x: float32, ``(n_test, T, H, W, 2)``.
      test_y: int32, ``(n_test,)``.
      label_names: the class names, ``label_names[label]``.
      source: where the recordings and the cached frames are.
    """

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    label_names: list
    source: str


def _events(t, x, y, p) -> Events:
    return Events(np.asarray(t, np.int64), np.asarray(x, np.int16), np.asarray(y, np.int16),
                  np.asarray(p, np.uint8))


def _empty_events() -> Events:
    return _events(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0))


def _as_arrays(events: Events, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(t, x, y, p)`` as int64 arrays of one length; raises ValueError naming ``where``."""
    arrays = [np.asarray(a) for a in events]
    if any(a.ndim != 1 for a in arrays) or len({len(a) for a in arrays}) != 1:
        raise ValueError(f"{where}: t, x, y and p must be 1-D arrays of one length, got shapes "
                         f"{', '.join(str(a.shape) for a in arrays)}.")
    if any(a.dtype.kind not in "iub" for a in arrays):
        raise ValueError(f"{where}: t, x, y and p must be integer arrays, got "
                         f"{', '.join(str(a.dtype) for a in arrays)}.")
    t, x, y, p = (a.astype(np.int64) for a in arrays)
    if len(p) and (p.min() < 0 or p.max() > 1):
        raise ValueError(f"{where}: polarities must be 0 or 1, got {p.min()}..{p.max()}.")
    return t, x, y, p


def _check_range(where: str, name: str, values: np.ndarray, low: int, high: int) -> None:
    """Raises ValueError unless ``low <= values <= high``."""
    if len(values) and (values.min() < low or values.max() > high):
        raise ValueError(f"{where}: {name} must be in {low}..{high}, got {values.min()}..{values.max()}.")


# --------------------------------------------------------------------------- AEDAT headers


def _read_header(data: bytes, path: PathLike, fmt: str, end: Optional[bytes] = None) -> tuple[list, int]:
    """The ``#`` header lines of ``data`` and the offset of the payload.

    Without ``end``, the header ends at the first line not starting with ``#``;
    with ``end``, at the line ``end`` (which must come, after ``#`` lines only).
    Every line is bounded by the data, so malformed input cannot loop.
    """
    lines, pos = [], 0
    while pos < len(data) and data[pos] == ord("#"):
        newline = data.find(b"\n", pos)
        if newline < 0:
            raise ValueError(f"{path}: {fmt} header line at byte {pos} has no line end (truncated file?).")
        line = data[pos:newline + 1]
        lines.append(line)
        pos = newline + 1
        if end is not None and line.rstrip(b"\r\n") == end:
            return lines, pos
    if end is not None:
        where = "end of file" if pos >= len(data) else f"byte {pos}"
        raise ValueError(f"{path}: no {end.decode()} line ending the {fmt} header (header lines stop at {where}; "
                         f"truncated or not an {fmt} file?).")
    return lines, pos


def _check_version(data: bytes, lines: list, path: PathLike, fmt: str, prefix: bytes) -> None:
    if not data:
        raise ValueError(f"{path}: empty file (expected an {fmt} recording).")
    if not lines or not lines[0].startswith(prefix):
        first = lines[0].rstrip(b"\r\n")[:40] if lines else data[:16]
        raise ValueError(f"{path}: not an {fmt} file (starts with {first!r}, expected a "
                         f"{prefix.decode()}... header line).")


# --------------------------------------------------------------------------- AEDAT 2.0 (CIFAR10-DVS)


def read_aedat2(path: PathLike) -> Events:
    """Reads a CIFAR10-DVS recording (jAER AEDAT 2.0, DVS128 addresses).

    Args:
      path: the ``.aedat`` file.

    Returns:
      :class:`Events` in file order, in image coordinates: ``x = 127 - y_sensor``,
      ``y = 127 - x_sensor``, ``p = 1 - polarity`` (SpikingJelly's convention),
      where ``polarity = address & 1``, ``x_sensor = (address >> 1) & 0x7F`` and
      ``y_sensor = (address >> 8) & 0x7F``; ``t`` is the uint32 timestamp (us).

    Raises:
      ValueError: empty file, no ``#!AER-DAT2.x`` first line, a header line
        without line end, or a payload whose length is not a multiple of 8
        bytes (truncated file); the message names the file.
      OSError: the file cannot be read.
    """
    data = Path(path).read_bytes()
    lines, start = _read_header(data, path, "AEDAT 2.0")
    _check_version(data, lines, path, "AEDAT 2.0", b"#!AER-DAT2")
    payload = len(data) - start
    if payload % 8:
        raise ValueError(f"{path}: AEDAT 2.0 payload is {payload} bytes, not a multiple of the 8-byte "
                         f"(address, timestamp) record (truncated file?).")
    words = np.frombuffer(data, ">u4", offset=start).reshape(-1, 2).astype(np.uint32)
    address, timestamp = words[:, 0], words[:, 1]
    x_sensor = (address >> 1) & 0x7F
    y_sensor = (address >> 8) & 0x7F
    polarity = address & 1
    return _events(timestamp, 127 - y_sensor, 127 - x_sensor, 1 - polarity)


def write_aedat2(path: PathLike, events: Events) -> None:
    """Writes events as a CIFAR10-DVS recording (AEDAT 2.0), the inverse of :func:`read_aedat2`.

    Args:
      path: destination file.
      events: :class:`Events` (or any ``(t, x, y, p)``) in image coordinates;
        ``x, y`` in ``0..127``, ``p`` in ``{0, 1}``, ``t`` in ``0..2**32 - 1`` us.

    Raises:
      ValueError: arrays of different lengths, or values out of range.
    """
    t, x, y, p = _as_arrays(events, f"write_aedat2({path})")
    for name, values, high in (("t", t, 2**32 - 1), ("x", x, 127), ("y", y, 127)):
        _check_range(f"write_aedat2({path})", name, values, 0, high)
    x_sensor, y_sensor, polarity = 127 - y, 127 - x, 1 - p
    records = np.empty((len(t), 2), ">u4")
    records[:, 0] = (y_sensor << 8) | (x_sensor << 1) | polarity
    records[:, 1] = t
    Path(path).write_bytes(_AEDAT2_HEADER + records.tobytes())


# --------------------------------------------------------------------------- AEDAT 3.1 (DVS128 Gesture)


def read_aedat31(path: PathLike) -> Events:
    """Reads a DVS128 Gesture recording (AEDAT 3.1): the valid polarity events.

    The packet headers are walked in a Python loop (a recording has thousands
    of packets); the events of all polarity packets are decoded at once.

    Args:
      path: the ``.aedat`` file.

    Returns:
      :class:`Events` in file order: ``x = (data >> 17) & 0x7FFF``,
      ``y = (data >> 2) & 0x7FFF``, ``p = (data >> 1) & 1``,
      ``t = (eventTSOverflow << 31) | timestamp``; events whose valid bit
      (``data & 1``) is clear are dropped, other packet types skipped.

    Raises:
      ValueError: empty file, no ``#!AER-DAT3.x`` first line or no
        ``#!END-HEADER`` line, a truncated packet (its header or its events run
        past the end of the file), an inconsistent packet header (negative
        sizes, ``eventCapacity != eventNumber``, ``eventValid > eventNumber``,
        a polarity packet whose events are not 8 bytes with the timestamp at
        byte 4), or a negative timestamp; the message names the file.
      OSError: the file cannot be read.
    """
    data = Path(path).read_bytes()
    lines, pos = _read_header(data, path, "AEDAT 3.1", end=_END_HEADER)
    _check_version(data, lines, path, "AEDAT 3.1", b"#!AER-DAT3")
    size = len(data)
    chunks, overflows, counts = [], [], []
    while pos < size:
        if size - pos < _PACKET_HEADER.size:
            raise ValueError(f"{path}: packet header at byte {pos} is cut off ({size - pos} of "
                             f"{_PACKET_HEADER.size} bytes; truncated file?).")
        (event_type, _source, event_size, ts_offset, ts_overflow, capacity, number,
         valid) = _PACKET_HEADER.unpack_from(data, pos)
        where = f"{path}: packet at byte {pos}"
        if event_size < 0 or number < 0 or capacity < 0 or ts_overflow < 0:
            raise ValueError(f"{where}: negative eventSize, eventNumber, eventCapacity or eventTSOverflow "
                             f"({event_size}, {number}, {capacity}, {ts_overflow}; corrupt file?).")
        if capacity != number or not 0 <= valid <= number:
            raise ValueError(f"{where}: eventCapacity {capacity}, eventNumber {number}, eventValid {valid} "
                             f"(a stored packet has eventCapacity == eventNumber >= eventValid; corrupt file?).")
        start = pos + _PACKET_HEADER.size
        length = event_size * number  # Python ints: no overflow
        if length > size - start:
            raise ValueError(f"{where}: declares {number} events of {event_size} bytes ({length} bytes) but "
                             f"only {size - start} bytes remain (truncated file?).")
        if event_type == _POLARITY_EVENT and number:
            if event_size != _POLARITY_SIZE or ts_offset != _POLARITY_TS_OFFSET:
                raise ValueError(f"{where}: polarity events must be {_POLARITY_SIZE} bytes with the timestamp at "
                                 f"byte {_POLARITY_TS_OFFSET}, got eventSize {event_size}, eventTSOffset "
                                 f"{ts_offset} (corrupt file?).")
            chunks.append(np.frombuffer(data, "<u4", count=2 * number, offset=start))
            overflows.append(ts_overflow)
            counts.append(number)
        pos = start + length
    if not chunks:
        return _empty_events()
    words = np.concatenate(chunks).reshape(-1, 2).astype(np.uint32)
    keep = (words[:, 0] & 1).astype(bool)
    words = words[keep]
    overflow = np.repeat(np.asarray(overflows, np.int64), counts)[keep]
    event_data, timestamp = words[:, 0], words[:, 1].astype(np.int64)
    if len(timestamp) and timestamp.max() >= 2**31:
        bad = int(np.argmax(timestamp >= 2**31))
        raise ValueError(f"{path}: valid polarity event {bad} has a negative int32 timestamp "
                         f"({timestamp[bad] - 2**32}; corrupt file?).")
    return _events((overflow << 31) | timestamp, (event_data >> 17) & 0x7FFF, (event_data >> 2) & 0x7FFF,
                   (event_data >> 1) & 1)


def write_aedat31(path: PathLike, events: Events, packet_size: int = 4096) -> None:
    """Writes events as a DVS128 Gesture recording (AEDAT 3.1), the inverse of :func:`read_aedat31`.

    The events go, in order, into polarity packets (eventType 1, eventSource 1)
    of at most ``packet_size`` events; a new packet starts wherever
    ``t >> 31`` (the packet's eventTSOverflow) changes. Every event is marked
    valid.

    Args:
      path: destination file.
      events: :class:`Events` (or any ``(t, x, y, p)``); ``x, y`` in
        ``0..32767``, ``p`` in ``{0, 1}``, ``t`` in ``0..2**62 - 1`` us.
      packet_size: the most events per packet, >= 1.

    Raises:
      ValueError: arrays of different lengths, values out of range, or
        ``packet_size < 1``.
    """
    where = f"write_aedat31({path})"
    if int(packet_size) < 1:
        raise ValueError(f"{where}: packet_size must be >= 1, got {packet_size}.")
    t, x, y, p = _as_arrays(events, where)
    for name, values, high in (("t", t, 2**62 - 1), ("x", x, 0x7FFF), ("y", y, 0x7FFF)):
        _check_range(where, name, values, 0, high)
    records = np.empty((len(t), 2), "<u4")
    records[:, 0] = (x << 17) | (y << 2) | (p << 1) | 1
    records[:, 1] = t & 0x7FFFFFFF
    overflow = t >> 31
    runs = np.concatenate([[0], np.flatnonzero(np.diff(overflow)) + 1, [len(t)]])
    parts = [_AEDAT31_HEADER]
    for run_start, run_end in zip(runs[:-1], runs[1:]):
        for start in range(int(run_start), int(run_end), int(packet_size)):
            stop = min(start + int(packet_size), int(run_end))
            number = stop - start
            parts.append(_PACKET_HEADER.pack(_POLARITY_EVENT, 1, _POLARITY_SIZE, _POLARITY_TS_OFFSET,
                                             int(overflow[start]), number, number, number))
            parts.append(records[start:stop].tobytes())
    Path(path).write_bytes(b"".join(parts))


# --------------------------------------------------------------------------- gesture labels


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
      events: the recording, e.g. from :func:`read_aedat31` (any order).
      labels_csv: its ``_labels.csv`` file.

    Returns:
      A list of ``(Events, label)``, one per CSV row in file order: the events
      with ``startTime_usec <= t < endTime_usec`` (file order kept) and the
      0-based label ``class - 1`` in ``0..10``.

    Raises:
      ValueError: a malformed labels file (see :func:`read_gesture_labels`).
    """
    return _cut_windows(events, read_gesture_labels(labels_csv))


# --------------------------------------------------------------------------- frames


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_split_by(split_by: str) -> None:
    if split_by not in SPLIT_MODES:
        raise ValueError(f"split_by must be one of {', '.join(map(repr, SPLIT_MODES))}, got {split_by!r}.")


def events_to_frames(events: Events, timesteps: int, height: int, width: int, split_by: str = "number",
                     downsample_to: Optional[tuple[int, int]] = None) -> np.ndarray:
    """Integrates events into per-pixel count frames.

    Splitting rules (``N`` events, ``T = timesteps``):

    * ``"number"``: frame ``j`` holds the events ``[j * N // T, (j + 1) * N // T)``
      in the given order, so frame sizes differ by at most one event.
      (SpikingJelly's ``integrate_events_by_fixed_frames_number`` uses
      ``N // T`` events per frame and puts the ``N % T`` remaining events in
      the last frame.)
    * ``"time"``: with ``t0 = min(t)`` and ``D = max(t) - t0``, an event goes to
      frame ``min((t - t0) * T // D, T - 1)``: ``T`` equal windows
      ``[t0 + j D / T, t0 + (j + 1) D / T)``, the last one closed so that the
      last event lands in frame ``T - 1``. When ``D == 0`` every event goes to
      frame 0. (SpikingJelly uses integer windows of ``D // T`` us and gives
      the last frame the rest.)

    Args:
      events: :class:`Events` (or any ``(t, x, y, p)``); ``0 <= x < width``,
        ``0 <= y < height``, ``p`` in ``{0, 1}``.
      timesteps: number of frames ``T``, >= 1.
      height: sensor height ``H``.
      width: sensor width ``W``.
      split_by: ``"number"`` or ``"time"``.
      downsample_to: optional ``(h, w)`` with ``1 <= h <= height`` and
        ``1 <= w <= width``: coordinates are mapped with ``x * w // width`` and
        ``y * h // height``, so every event is counted once (counts add up).

    Returns:
      float32 ``(T, H, W, 2)`` (or ``(T, h, w, 2)``): ``frames[j, y, x, p]`` is
      the number of events of polarity ``p`` at pixel ``(x, y)`` in frame
      ``j``. No events: all-zero frames.

    Raises:
      ValueError: bad ``timesteps``, sizes, ``split_by`` or ``downsample_to``;
        coordinates or polarities out of range; a time span too long for exact
        int64 arithmetic (``D * T >= 2**62``).
    """
    steps = _positive("timesteps", timesteps)
    height, width = _positive("height", height), _positive("width", width)
    _check_split_by(split_by)
    out_h, out_w = (height, width) if downsample_to is None else tuple(downsample_to)
    out_h, out_w = _positive("downsample_to height", out_h), _positive("downsample_to width", out_w)
    if out_h > height or out_w > width:
        raise ValueError(f"downsample_to {(out_h, out_w)} must not exceed the sensor size {(height, width)}.")
    t, x, y, p = _as_arrays(events, "events_to_frames")
    n = len(t)
    if n == 0:
        return np.zeros((steps, out_h, out_w, 2), np.float32)
    _check_range("events_to_frames", "x", x, 0, width - 1)
    _check_range("events_to_frames", "y", y, 0, height - 1)
    if split_by == "number":
        bounds = (np.arange(steps + 1, dtype=np.int64) * n) // steps
        frame = np.repeat(np.arange(steps, dtype=np.int64), np.diff(bounds))
    else:
        t0 = int(t.min())
        span = int(t.max()) - t0
        if span == 0:
            frame = np.zeros(n, np.int64)
        else:
            if span * steps >= 2**62:
                raise ValueError(f"events_to_frames: time span {span} us x {steps} timesteps overflows int64.")
            frame = np.minimum((t - t0) * steps // span, steps - 1)
    if (out_h, out_w) != (height, width):
        x, y = x * out_w // width, y * out_h // height
    index = ((frame * out_h + y) * out_w + x) * 2 + p
    counts = np.bincount(index, minlength=steps * out_h * out_w * 2)
    return counts.reshape(steps, out_h, out_w, 2).astype(np.float32)


# --------------------------------------------------------------------------- frame cache


def _settings_name(timesteps: int, size: int, split_by: str) -> str:
    return f"T{timesteps}-{size}px-{split_by}"


def frames_cache_folder(dataset: str, data_root: PathLike, timesteps: int, size: int, split_by: str,
                        cache_dir: Optional[PathLike] = None) -> Path:
    """Where the loaders keep the frames of one data set and one setting.

    Args:
      dataset: ``"dvs_cifar10"`` or ``"dvs_gesture"``.
      data_root: the folder holding the recordings.
      timesteps: frames per sample.
      size: frame height and width.
      split_by: ``"number"`` or ``"time"``.
      cache_dir: explicit cache root, or None.

    Returns:
      ``<cache_dir>/<dataset>-T<timesteps>-<size>px-<split_by>`` when
      ``cache_dir`` is given (one copy of each data set per ``cache_dir``);
      otherwise ``<data_root>/.frames-T<timesteps>-<size>px-<split_by>`` when
      ``data_root`` is writable, else
      ``<$NSNN_JAX_DATA or ~/.cache/nsnn_jax>/dvs_frames/<dataset>-<hash of
      data_root>-T...``.
    """
    settings = _settings_name(timesteps, size, split_by)
    if cache_dir is not None:
        return Path(cache_dir).expanduser() / f"{dataset}-{settings}"
    root = Path(data_root).expanduser()
    if os.access(root, os.W_OK):
        return root / f".frames-{settings}"
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
    return cache_root() / "dvs_frames" / f"{dataset}-{digest}-{settings}"


def _save_atomic(path: Path, array: np.ndarray) -> None:
    """``np.save`` into a temp file next to ``path``, then renamed: ``path`` is whole or absent."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, array)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _storage(frames: np.ndarray) -> np.ndarray:
    """Counts as the smallest exact unsigned type (uint16 almost always)."""
    return frames.astype(np.uint16 if frames.max(initial=0) <= np.iinfo(np.uint16).max else np.uint32)


def _load_cached(path: Path, shape: tuple) -> Optional[np.ndarray]:
    """The cached frames as float32, or None when missing, unreadable or of another shape."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if array.shape != shape or array.dtype.kind not in "uif":
        return None
    return array.astype(np.float32)


class _Recording(NamedTuple):
    """One recording and the samples cut from it."""

    path: Path
    keys: tuple  # cache file names (no suffix) of its samples, in order
    labels: tuple  # 0-based labels of its samples
    split: str  # "train" or "test"


class _Progress:
    """Progress lines on stderr when there are many recordings to decode."""

    def __init__(self, name: str, total: int, folder: Path):
        self.name, self.total, self.start = name, total, time.monotonic()
        self.every = max(1, total // 20)
        self.enabled = total >= PROGRESS_MIN_FILES
        if self.enabled:
            print(f"{name}: decoding {total} recordings into frames cached in {folder}", file=sys.stderr, flush=True)

    def step(self, done: int) -> None:
        if self.enabled and (done % self.every == 0 or done == self.total):
            print(f"{self.name}: {done}/{self.total} recordings ({time.monotonic() - self.start:.0f} s)",
                  file=sys.stderr, flush=True)


def _decode_into_cache(recording: _Recording, decode: Callable, folder: Path) -> list:
    """Decodes one recording into its samples' frames and caches them; returns the frames."""
    try:
        frames = decode(recording)
    except ValueError as error:
        if str(recording.path) in str(error):
            raise
        raise ValueError(f"{recording.path}: {error}") from error
    if len(frames) != len(recording.keys):
        raise ValueError(f"{recording.path}: gave {len(frames)} samples, expected {len(recording.keys)} "
                         f"(did its labels change while loading?).")
    for key, sample in zip(recording.keys, frames):
        _save_atomic(folder / f"{key}.npy", _storage(sample))
    return frames


def _build(name: str, recordings: list, decode: Callable, folder: Path, frame_shape: tuple,
           label_names: Sequence[str], source: str) -> FrameDataset:
    """Decodes the recordings not cached yet, then reads every sample from the cache."""
    missing = [rec for rec in recordings if not all((folder / f"{key}.npy").is_file() for key in rec.keys)]
    progress = _Progress(name, len(missing), folder)
    for done, recording in enumerate(missing, 1):
        _decode_into_cache(recording, decode, folder)
        progress.step(done)
    splits = {}
    for split in ("train", "test"):
        chosen = [rec for rec in recordings if rec.split == split]
        x = np.zeros((sum(len(rec.keys) for rec in chosen),) + frame_shape, np.float32)
        y = np.asarray([label for rec in chosen for label in rec.labels], np.int32)
        row = 0
        for recording in chosen:
            cached = [_load_cached(folder / f"{key}.npy", frame_shape) for key in recording.keys]
            if any(sample is None for sample in cached):
                print(f"warning: unreadable cached frames of {recording.path} in {folder}; decoding it again",
                      file=sys.stderr)
                cached = _decode_into_cache(recording, decode, folder)
            for sample in cached:
                x[row] = sample
                row += 1
        splits[split] = (x, y)
    return FrameDataset(*splits["train"], *splits["test"], list(label_names), source)


def _check_settings(timesteps: int, size: int, split_by: str) -> tuple[int, int]:
    steps = _positive("timesteps", timesteps)
    size = _positive("size", size)
    if size > SENSOR_SIZE:
        raise ValueError(f"size must be in 1..{SENSOR_SIZE} (the DVS128 sensor), got {size}.")
    _check_split_by(split_by)
    return steps, size


def _frames_maker(steps: int, size: int, split_by: str) -> Callable:
    downsample = None if size == SENSOR_SIZE else (size, size)
    return lambda events: events_to_frames(events, steps, SENSOR_SIZE, SENSOR_SIZE, split_by, downsample)


def _visible_files(folder: Path, suffix: str) -> list:
    """Files of ``folder`` ending in ``suffix``, sorted by name; hidden files (``.``, e.g. ``._x``) skipped."""
    return sorted((path for path in folder.iterdir()
                   if path.is_file() and path.suffix == suffix and not path.name.startswith(".")),
                  key=lambda path: path.name)


# --------------------------------------------------------------------------- CIFAR10-DVS


def _cifar_help(folder: Path, problem: str) -> str:
    layout = "\n".join(f"    {folder}/{name}/*.aedat" for name in CIFAR10_DVS_LABEL_NAMES)
    return (f"CIFAR10-DVS: {problem}\n"
            f"Pass --data-dir DIR, a folder with the ten class folders of the published recordings "
            f"(AEDAT 2.0, {_CIFAR_PER_CLASS} per class), e.g. for DIR = {folder}:\n{layout}\n"
            f"(or the same inside DIR/{_CIFAR_SUBFOLDERS[0]}/). The data set cannot be downloaded automatically: "
            f"download the ten class archives airplane.zip ... truck.zip by hand from "
            f"https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671 and unzip them into DIR.")


def _cifar_root(data_dir: PathLike) -> Path:
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(_cifar_help(folder, f"--data-dir {folder} does not exist."))
    for candidate in (folder, *(folder / sub for sub in _CIFAR_SUBFOLDERS)):
        if all((candidate / name).is_dir() for name in CIFAR10_DVS_LABEL_NAMES):
            return candidate
    absent = [name for name in CIFAR10_DVS_LABEL_NAMES if not (folder / name).is_dir()]
    raise FileNotFoundError(_cifar_help(folder, f"--data-dir {folder} lacks the class folders "
                                                f"{', '.join(name + '/' for name in absent)}."))


def load_dvs_cifar10(data_dir: PathLike, timesteps: int = 10, size: int = 48, split_by: str = "number",
                     cache_dir: Optional[PathLike] = None) -> FrameDataset:
    """Loads CIFAR10-DVS from its published AEDAT 2.0 recordings as event frames.

    Split (the usual 9k/1k one): in each class folder the recordings are
    sorted by file name (plain string order, as SpikingJelly and torchvision
    list them, so ``..._10`` comes before ``..._2``); the first
    ``9 * n // 10`` train (900 of the published 1000) and the rest test.
    Samples are ordered class by class, then by file name.

    Args:
      data_dir: the folder holding ``airplane/`` ... ``truck/`` (or holding
        them in a ``CIFAR10-DVS/`` subfolder).
      timesteps: frames per sample.
      size: frame height and width, ``1..128``; the 128 x 128 sensor is
        downsampled by integer coordinate scaling (:func:`events_to_frames`).
      split_by: ``"number"`` or ``"time"`` (:func:`events_to_frames`).
      cache_dir: where to cache the frames (:func:`frames_cache_folder`);
        default next to the recordings. Cached frames are read instead of
        decoding again; delete the folder to decode anew.

    Returns:
      A :class:`FrameDataset`: ``x`` float32 ``(n, timesteps, size, size, 2)``,
      ``y`` int32 in ``0..9`` (CIFAR-10 class order).

    Raises:
      FileNotFoundError: ``data_dir`` or class folders missing, or a class
        folder without ``.aedat`` files (the message gives the expected
        layout and where to get the data).
      ValueError: bad settings, or a corrupt or truncated recording (the
        message names the file).
    """
    steps, size = _check_settings(timesteps, size, split_by)
    root = _cifar_root(data_dir)
    files = {name: _visible_files(root / name, ".aedat") for name in CIFAR10_DVS_LABEL_NAMES}
    empty = [name for name, paths in files.items() if not paths]
    if empty:
        raise FileNotFoundError(_cifar_help(root, f"no .aedat recordings in "
                                                  f"{', '.join(str(root / name) + '/' for name in empty)}."))
    recordings = []
    for label, name in enumerate(CIFAR10_DVS_LABEL_NAMES):
        paths = files[name]
        n_train = 9 * len(paths) // 10  # 900 of the published 1000
        for index, path in enumerate(paths):
            recordings.append(_Recording(path, (f"{name}/{path.stem}",), (label,),
                                         "train" if index < n_train else "test"))
    folder = frames_cache_folder("dvs_cifar10", root, steps, size, split_by, cache_dir)
    make_frames = _frames_maker(steps, size, split_by)

    def decode(recording: _Recording) -> list:
        return [make_frames(read_aedat2(recording.path))]

    return _build("dvs_cifar10", recordings, decode, folder, (steps, size, size, 2), CIFAR10_DVS_LABEL_NAMES,
                  f"data_dir: {root} (frames cached in {folder})")


# --------------------------------------------------------------------------- DVS128 Gesture


def _gesture_help(folder: Path, problem: str) -> str:
    return (f"DVS128 Gesture: {problem}\n"
            f"Pass --data-dir DIR, the folder extracted from the published DvsGesture.tar.gz, laid out as:\n"
            f"    DIR/trials_to_train.txt\n"
            f"    DIR/trials_to_test.txt\n"
            f"    DIR/user01_fluorescent.aedat           (AEDAT 3.1 recordings, userXX_<lighting>.aedat)\n"
            f"    DIR/user01_fluorescent_labels.csv      (class,startTime_usec,endTime_usec)\n"
            f"    ...\n"
            f"(or the same inside DIR/{_GESTURE_SUBFOLDERS[0]}/; here DIR = {folder}). The data set cannot be "
            f"downloaded automatically: IBM distributes it through https://research.ibm.com/interactive/dvsgesture/ "
            f"and the download has to be done by hand, then extracted into DIR.")


def _gesture_root(data_dir: PathLike) -> Path:
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(_gesture_help(folder, f"--data-dir {folder} does not exist."))
    for candidate in (folder, *(folder / sub for sub in _GESTURE_SUBFOLDERS)):
        if all((candidate / name).is_file() for name in _GESTURE_LISTS.values()):
            return candidate
    absent = [name for name in _GESTURE_LISTS.values() if not (folder / name).is_file()]
    raise FileNotFoundError(_gesture_help(folder, f"--data-dir {folder} lacks {', '.join(absent)}."))


def _read_trials(path: Path) -> list:
    names = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    names = [name for name in names if name]
    for name in names:
        if not name.endswith(".aedat") or "/" in name or "\\" in name:
            raise ValueError(f"{path}: expected one recording file name (userXX_<lighting>.aedat) a line, "
                             f"got {name!r}.")
    return names


def load_dvs_gesture(data_dir: PathLike, timesteps: int = 16, size: int = 128, split_by: str = "number",
                     cache_dir: Optional[PathLike] = None) -> FrameDataset:
    """Loads DVS128 Gesture from its published AEDAT 3.1 recordings as event frames.

    Each recording listed in ``trials_to_train.txt`` / ``trials_to_test.txt``
    is cut by its labels CSV (:func:`gesture_samples`) into one sample per
    row. Samples are ordered as the lists name the recordings, then as the
    CSV rows.

    Args:
      data_dir: the folder holding the trials lists, the ``.aedat`` files and
        their ``_labels.csv`` files (or holding them in a ``DvsGesture/``
        subfolder).
      timesteps: frames per sample.
      size: frame height and width, ``1..128``; below 128 the sensor is
        downsampled by integer coordinate scaling (:func:`events_to_frames`).
      split_by: ``"number"`` or ``"time"`` (:func:`events_to_frames`), within
        each gesture window.
      cache_dir: where to cache the frames (:func:`frames_cache_folder`);
        default next to the recordings.

    Returns:
      A :class:`FrameDataset`: ``x`` float32 ``(n, timesteps, size, size, 2)``,
      ``y`` int32 in ``0..10`` (CSV class - 1).

    Raises:
      FileNotFoundError: ``data_dir``, a trials list, or a listed recording or
        its labels CSV missing (the message gives the expected layout).
      ValueError: bad settings, a malformed trials list or labels CSV, or a
        corrupt or truncated recording (the message names the file).
    """
    steps, size = _check_settings(timesteps, size, split_by)
    root = _gesture_root(data_dir)
    recordings, absent = [], []
    for split, list_name in _GESTURE_LISTS.items():
        for name in _read_trials(root / list_name):
            path, labels_csv = root / name, root / f"{name[:-len('.aedat')]}_labels.csv"
            absent += [str(p) for p in (path, labels_csv) if not p.is_file()]
            if path.is_file() and labels_csv.is_file():
                labels = read_gesture_labels(labels_csv)[:, 0] - 1
                keys = tuple(f"{path.stem}-{row:02d}" for row in range(len(labels)))
                recordings.append(_Recording(path, keys, tuple(int(k) for k in labels), split))
    if absent:
        shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise FileNotFoundError(_gesture_help(root, f"files named by the trials lists are missing: {shown}."))
    folder = frames_cache_folder("dvs_gesture", root, steps, size, split_by, cache_dir)
    make_frames = _frames_maker(steps, size, split_by)

    def decode(recording: _Recording) -> list:
        labels_csv = recording.path.with_name(f"{recording.path.stem}_labels.csv")
        return [make_frames(events) for events, _ in gesture_samples(read_aedat31(recording.path), labels_csv)]

    return _build("dvs_gesture", recordings, decode, folder, (steps, size, size, 2), GESTURE_LABEL_NAMES,
                  f"data_dir: {root} (frames cached in {folder})")
