"""AEDAT event files: jAER's AEDAT 2.0 (DVS128 addresses) and AEDAT 3.1 polarity packets.

Files are decoded with vectorised numpy (Python loops run over AEDAT 3.1
packets, never over events).

**AEDAT 2.0** (the CIFAR10-DVS recordings): ASCII header lines, each starting
with ``#`` (the first one ``#!AER-DAT2.0``), then big-endian pairs of uint32
``(address, timestamp_us)``. The DVS128 address holds the polarity in bit 0,
the sensor x in bits 1..7 and the sensor y in bits 8..14. As in SpikingJelly's
reader, the sensor coordinates are mapped to image coordinates with
``x = 127 - y_sensor``, ``y = 127 - x_sensor`` and the polarity with
``p = 1 - polarity``; :func:`write_aedat2` applies the inverse mapping. The
header ends at the first line that does not start with ``#`` (AEDAT 2.0 has no
end-of-header marker; a DVS128 address is below 2**16, so a payload never
starts with ``#``).

**AEDAT 3.1** (the DVS128 Gesture recordings): an ASCII header ending with the
line ``#!END-HEADER``, then packets: a 28-byte little-endian header
(``eventType int16, eventSource int16, eventSize int32, eventTSOffset int32,
eventTSOverflow int32, eventCapacity int32, eventNumber int32, eventValid
int32``) followed by ``eventNumber * eventSize`` bytes (in a file
``eventCapacity == eventNumber``). Polarity events (type 1, 8 bytes) are a
uint32 ``data`` (bit 0 valid, bit 1 polarity, y in bits 2..16, x in bits
17..31) and an int32 timestamp; the full timestamp is ``(eventTSOverflow <<
31) | timestamp``. Other packet types are skipped and invalid events dropped;
x, y and p are used as stored.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import NamedTuple, Optional, Union

import numpy as np

__all__ = [
    "Events",
    "SENSOR_SIZE",
    "read_aedat2",
    "write_aedat2",
    "read_aedat31",
    "write_aedat31",
]

PathLike = Union[str, os.PathLike]

# The DVS128: 128 x 128 pixels.
SENSOR_SIZE = 128

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


class Events(NamedTuple):
    """Events of one recording, in file order.

    Attributes:
      t: int64, ``(n,)``, timestamps in microseconds.
      x: int16, ``(n,)``, column (for AEDAT 2.0 in image coordinates, see the module docstring).
      y: int16, ``(n,)``, row.
      p: uint8, ``(n,)``, polarity in ``{0, 1}``.
    """

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray



def _events(t, x, y, p) -> Events:
    return Events(np.asarray(t, np.int64), np.asarray(x, np.int16), np.asarray(y, np.int16),
                  np.asarray(p, np.uint8))


def _empty_events() -> Events:
    return _events(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0))


def event_arrays(events: Events, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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


def check_range(where: str, name: str, values: np.ndarray, low: int, high: int) -> None:
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
    t, x, y, p = event_arrays(events, f"write_aedat2({path})")
    for name, values, high in (("t", t, 2**32 - 1), ("x", x, 127), ("y", y, 127)):
        check_range(f"write_aedat2({path})", name, values, 0, high)
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
    t, x, y, p = event_arrays(events, where)
    for name, values, high in (("t", t, 2**62 - 1), ("x", x, 0x7FFF), ("y", y, 0x7FFF)):
        check_range(where, name, values, 0, high)
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
