"""AEDAT 2.0 and 3.1 reading and writing."""

import struct
import time

import numpy as np
import pytest

from event_helpers import assert_events_equal, raises_naming, random_events
from nsnn_jax.data.events import aedat


# --------------------------------------------------------------------------- AEDAT 2.0


def test_aedat2_round_trip(tmp_path):
    events = random_events(500)  # timestamps up to 2**32 - 1: read as unsigned
    path = tmp_path / "rec.aedat"
    aedat.write_aedat2(path, events)
    data = path.read_bytes()
    assert data.startswith(b"#!AER-DAT2.0\r\n")
    assert len(data) - len(aedat._AEDAT2_HEADER) == 8 * 500
    assert_events_equal(aedat.read_aedat2(path), events)


def test_aedat2_hand_built_file(tmp_path):
    # DVS128 address: polarity bit 0, x_sensor bits 1..7, y_sensor bits 8..14, big-endian (address, timestamp).
    raw = [(5, 10, 1, 100), (0, 0, 0, 101), (127, 127, 1, 4_000_000_000), (64, 3, 0, 7)]
    header = b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n# created by hand\r\n"
    body = b"".join(struct.pack(">II", (ys << 8) | (xs << 1) | pol, ts) for xs, ys, pol, ts in raw)
    path = tmp_path / "hand.aedat"
    path.write_bytes(header + body)
    got = aedat.read_aedat2(path)
    # Image coordinates: x = 127 - y_sensor, y = 127 - x_sensor, p = 1 - polarity.
    expected = aedat.Events(t=[100, 101, 4_000_000_000, 7], x=[117, 127, 0, 124], y=[122, 127, 0, 63], p=[0, 1, 0, 1])
    assert_events_equal(got, expected)


def test_aedat2_header_only_is_empty(tmp_path):
    path = tmp_path / "none.aedat"
    aedat.write_aedat2(path, aedat.Events(*(np.zeros(0, dtype) for dtype in (np.int64, np.int16, np.int16, np.uint8))))
    got = aedat.read_aedat2(path)
    assert len(got.t) == 0 and got.t.dtype == np.int64


def test_aedat2_truncated_and_garbage(tmp_path):
    path = tmp_path / "rec.aedat"
    aedat.write_aedat2(path, random_events(20))
    data = path.read_bytes()
    cases = {
        "mid_record.aedat": data[:-3],
        "empty.aedat": b"",
        "mid_header.aedat": data[:20],  # the second header line has no line end
        "garbage.aedat": np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes(),
        "other_version.aedat": b"#!AER-DAT1.0\r\n" + data[len(aedat._AEDAT2_HEADER):],
        "no_header.aedat": data[len(aedat._AEDAT2_HEADER):],
    }
    for name, content in cases.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        with raises_naming(bad):
            aedat.read_aedat2(bad)


def test_aedat2_writer_rejects_out_of_range(tmp_path):
    events = random_events(5)
    with pytest.raises(ValueError, match="x must be in 0..127"):
        aedat.write_aedat2(tmp_path / "a.aedat", events._replace(x=np.array([0, 1, 2, 3, 128])))
    with pytest.raises(ValueError, match="polarities"):
        aedat.write_aedat2(tmp_path / "a.aedat", events._replace(p=np.array([0, 1, 2, 0, 0])))


# --------------------------------------------------------------------------- AEDAT 3.1


def test_aedat31_round_trip_with_overflow(tmp_path):
    events = random_events(300, seed=2, t_max=3 * 2**31)  # crosses two eventTSOverflow steps
    path = tmp_path / "user01_led.aedat"
    aedat.write_aedat31(path, events, packet_size=7)
    assert_events_equal(aedat.read_aedat31(path), events)
    # The packets as published: 28-byte little-endian headers, polarity type 1, 8-byte events.
    data = path.read_bytes()
    pos = data.index(b"#!END-HEADER\r\n") + len(b"#!END-HEADER\r\n")
    total, overflows = 0, set()
    while pos < len(data):
        etype, _, esize, tsoff, ovf, cap, num, valid = struct.unpack_from("<hhiiiiii", data, pos)
        assert (etype, esize, tsoff) == (1, 8, 4) and cap == num == valid and 1 <= num <= 7
        overflows.add(ovf)
        total += num
        pos += 28 + num * esize
    assert pos == len(data) and total == 300 and overflows == {0, 1, 2}


def packet(etype, events_bytes, number, size=8, overflow=0, valid=None):
    return struct.pack("<hhiiiiii", etype, 1, size, 4, overflow, number, number,
                       number if valid is None else valid) + events_bytes


def polarity_event(x, y, p, ts, valid=1):
    return struct.pack("<Ii", (x << 17) | (y << 2) | (p << 1) | valid, ts)


def test_aedat31_hand_built_file(tmp_path):
    header = b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#Start-Time: 2017\r\n#!END-HEADER\r\n"
    special = packet(0, struct.pack("<Ii", 0xDEAD, 5) + struct.pack("<Ii", 0xBEEF, 6), 2)  # skipped
    frame = packet(2, bytes(range(30)), 1, size=30)  # another type, other size: skipped
    first = packet(1, polarity_event(3, 4, 1, 10) + polarity_event(9, 9, 0, 11, valid=0)
                   + polarity_event(127, 0, 0, 2**31 - 1), 3, valid=2)
    second = packet(1, polarity_event(0, 127, 1, 5) + polarity_event(40, 50, 0, 6), 2, overflow=1)
    path = tmp_path / "hand.aedat"
    path.write_bytes(header + special + first + frame + second)
    expected = aedat.Events(t=[10, 2**31 - 1, 2**31 + 5, 2**31 + 6], x=[3, 127, 0, 40], y=[4, 0, 127, 50],
                          p=[1, 0, 1, 0])
    assert_events_equal(aedat.read_aedat31(path), expected)


def test_aedat31_truncated_and_malformed(tmp_path):
    path = tmp_path / "rec.aedat"
    aedat.write_aedat31(path, random_events(40, seed=3, t_max=2**30), packet_size=16)
    data = path.read_bytes()
    header_len = len(aedat._AEDAT31_HEADER)
    cases = {
        "mid_packet.aedat": data[:-5],
        "mid_packet_header.aedat": data[:header_len + 10],
        "mid_header.aedat": data[:header_len - 3],
        "no_end_header.aedat": data[:header_len - len(b"#!END-HEADER\r\n")],
        "empty.aedat": b"",
        "garbage.aedat": np.random.default_rng(4).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "aedat2.aedat": aedat._AEDAT2_HEADER + b"\0" * 16,
        "huge_count.aedat": aedat._AEDAT31_HEADER + packet(0, b"", 2**31 - 1),
        "negative_count.aedat": aedat._AEDAT31_HEADER + packet(1, b"", -1),
        "bad_event_size.aedat": aedat._AEDAT31_HEADER + packet(1, b"\0" * 12, 1, size=12),
        "capacity_mismatch.aedat": aedat._AEDAT31_HEADER + struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 5, 1, 1)
        + polarity_event(1, 1, 1, 1),
        "negative_timestamp.aedat": aedat._AEDAT31_HEADER + packet(1, polarity_event(1, 1, 1, -5), 1),
    }
    for name, content in cases.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        with raises_naming(bad):
            aedat.read_aedat31(bad)


def test_aedat31_random_payloads_never_hang(tmp_path):
    """Random bytes after a valid header: a ValueError or some events, quickly; nothing else."""
    rng = np.random.default_rng(5)
    start = time.monotonic()
    errors = 0
    for trial in range(200):
        path = tmp_path / f"fuzz{trial}.aedat"
        body = rng.integers(0, 256, int(rng.integers(0, 400)), dtype=np.uint8)
        if trial % 2:  # plausible headers with small random fields: exercises the skip paths
            fields = [int(rng.integers(0, 3)), 1, int(rng.choice([0, 8, 12])), 4, int(rng.integers(0, 3))]
            number = int(rng.integers(0, 6))
            body = np.frombuffer(struct.pack("<hhiiiiii", *fields, number, number, number), np.uint8).tolist() + \
                body.tolist()
        path.write_bytes(aedat._AEDAT31_HEADER + bytes(body))
        try:
            events = aedat.read_aedat31(path)
            assert isinstance(events, aedat.Events)
        except ValueError as error:
            assert str(path) in str(error)
            errors += 1
    assert errors > 100
    assert time.monotonic() - start < 20
