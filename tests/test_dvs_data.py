"""CIFAR10-DVS and DVS128 Gesture: AEDAT 2.0/3.1 decoding, frame integration, loaders and their cache."""

import re
import struct
import time

import numpy as np
import pytest

from nsnn_jax.data import dvs


def random_events(n, seed=0, size=128, t_max=2**32 - 1, sort=True):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, t_max, n, dtype=np.int64, endpoint=True)
    if sort:
        t = np.sort(t)
    return dvs.Events(t, rng.integers(0, size, n).astype(np.int16), rng.integers(0, size, n).astype(np.int16),
                      rng.integers(0, 2, n).astype(np.uint8))


def assert_events_equal(got, expected):
    assert isinstance(got, dvs.Events)
    assert got.t.dtype == np.int64 and got.x.dtype == np.int16 and got.y.dtype == np.int16
    assert got.p.dtype == np.uint8
    for name in dvs.Events._fields:
        np.testing.assert_array_equal(getattr(got, name), np.asarray(getattr(expected, name)), err_msg=name)


def raises_naming(path):
    """pytest.raises(ValueError) whose message must name ``path``."""
    return pytest.raises(ValueError, match=re.escape(str(path)))


# --------------------------------------------------------------------------- AEDAT 2.0


def test_aedat2_round_trip(tmp_path):
    events = random_events(500)  # timestamps up to 2**32 - 1: read as unsigned
    path = tmp_path / "rec.aedat"
    dvs.write_aedat2(path, events)
    data = path.read_bytes()
    assert data.startswith(b"#!AER-DAT2.0\r\n")
    assert len(data) - len(dvs._AEDAT2_HEADER) == 8 * 500
    assert_events_equal(dvs.read_aedat2(path), events)


def test_aedat2_hand_built_file(tmp_path):
    # DVS128 address: polarity bit 0, x_sensor bits 1..7, y_sensor bits 8..14, big-endian (address, timestamp).
    raw = [(5, 10, 1, 100), (0, 0, 0, 101), (127, 127, 1, 4_000_000_000), (64, 3, 0, 7)]
    header = b"#!AER-DAT2.0\r\n# This is a raw AE data file - do not edit\r\n# created by hand\r\n"
    body = b"".join(struct.pack(">II", (ys << 8) | (xs << 1) | pol, ts) for xs, ys, pol, ts in raw)
    path = tmp_path / "hand.aedat"
    path.write_bytes(header + body)
    got = dvs.read_aedat2(path)
    # Image coordinates: x = 127 - y_sensor, y = 127 - x_sensor, p = 1 - polarity.
    expected = dvs.Events(t=[100, 101, 4_000_000_000, 7], x=[117, 127, 0, 124], y=[122, 127, 0, 63], p=[0, 1, 0, 1])
    assert_events_equal(got, expected)


def test_aedat2_header_only_is_empty(tmp_path):
    path = tmp_path / "none.aedat"
    dvs.write_aedat2(path, dvs._empty_events())
    got = dvs.read_aedat2(path)
    assert len(got.t) == 0 and got.t.dtype == np.int64


def test_aedat2_truncated_and_garbage(tmp_path):
    path = tmp_path / "rec.aedat"
    dvs.write_aedat2(path, random_events(20))
    data = path.read_bytes()
    cases = {
        "mid_record.aedat": data[:-3],
        "empty.aedat": b"",
        "mid_header.aedat": data[:20],  # the second header line has no line end
        "garbage.aedat": np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes(),
        "other_version.aedat": b"#!AER-DAT1.0\r\n" + data[len(dvs._AEDAT2_HEADER):],
        "no_header.aedat": data[len(dvs._AEDAT2_HEADER):],
    }
    for name, content in cases.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        with raises_naming(bad):
            dvs.read_aedat2(bad)


def test_aedat2_writer_rejects_out_of_range(tmp_path):
    events = random_events(5)
    with pytest.raises(ValueError, match="x must be in 0..127"):
        dvs.write_aedat2(tmp_path / "a.aedat", events._replace(x=np.array([0, 1, 2, 3, 128])))
    with pytest.raises(ValueError, match="polarities"):
        dvs.write_aedat2(tmp_path / "a.aedat", events._replace(p=np.array([0, 1, 2, 0, 0])))


# --------------------------------------------------------------------------- AEDAT 3.1


def test_aedat31_round_trip_with_overflow(tmp_path):
    events = random_events(300, seed=2, t_max=3 * 2**31)  # crosses two eventTSOverflow steps
    path = tmp_path / "user01_led.aedat"
    dvs.write_aedat31(path, events, packet_size=7)
    assert_events_equal(dvs.read_aedat31(path), events)
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
    expected = dvs.Events(t=[10, 2**31 - 1, 2**31 + 5, 2**31 + 6], x=[3, 127, 0, 40], y=[4, 0, 127, 50],
                          p=[1, 0, 1, 0])
    assert_events_equal(dvs.read_aedat31(path), expected)


def test_aedat31_truncated_and_malformed(tmp_path):
    path = tmp_path / "rec.aedat"
    dvs.write_aedat31(path, random_events(40, seed=3, t_max=2**30), packet_size=16)
    data = path.read_bytes()
    header_len = len(dvs._AEDAT31_HEADER)
    cases = {
        "mid_packet.aedat": data[:-5],
        "mid_packet_header.aedat": data[:header_len + 10],
        "mid_header.aedat": data[:header_len - 3],
        "no_end_header.aedat": data[:header_len - len(b"#!END-HEADER\r\n")],
        "empty.aedat": b"",
        "garbage.aedat": np.random.default_rng(4).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "aedat2.aedat": dvs._AEDAT2_HEADER + b"\0" * 16,
        "huge_count.aedat": dvs._AEDAT31_HEADER + packet(0, b"", 2**31 - 1),
        "negative_count.aedat": dvs._AEDAT31_HEADER + packet(1, b"", -1),
        "bad_event_size.aedat": dvs._AEDAT31_HEADER + packet(1, b"\0" * 12, 1, size=12),
        "capacity_mismatch.aedat": dvs._AEDAT31_HEADER + struct.pack("<hhiiiiii", 1, 1, 8, 4, 0, 5, 1, 1)
        + polarity_event(1, 1, 1, 1),
        "negative_timestamp.aedat": dvs._AEDAT31_HEADER + packet(1, polarity_event(1, 1, 1, -5), 1),
    }
    for name, content in cases.items():
        bad = tmp_path / name
        bad.write_bytes(content)
        with raises_naming(bad):
            dvs.read_aedat31(bad)


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
        path.write_bytes(dvs._AEDAT31_HEADER + bytes(body))
        try:
            events = dvs.read_aedat31(path)
            assert isinstance(events, dvs.Events)
        except ValueError as error:
            assert str(path) in str(error)
            errors += 1
    assert errors > 100
    assert time.monotonic() - start < 20


# --------------------------------------------------------------------------- gesture labels


def test_gesture_samples_cut_by_label_windows(tmp_path):
    t = np.arange(0, 1000, 5)
    events = dvs.Events(t, (t % 128).astype(np.int16), ((t // 7) % 128).astype(np.int16),
                        (t % 2).astype(np.uint8))
    labels = tmp_path / "user01_led_labels.csv"
    dvs.write_gesture_labels(labels, [(1, 100, 200), (11, 200, 350), (5, 990, 2000)])
    assert labels.read_text().splitlines()[0] == "class,startTime_usec,endTime_usec"
    samples = dvs.gesture_samples(events, labels)
    assert [label for _, label in samples] == [0, 10, 4]
    for (sample, _), (start, end) in zip(samples, [(100, 200), (200, 350), (990, 2000)]):
        mask = (t >= start) & (t < end)
        assert_events_equal(sample, dvs.Events(*(np.asarray(a)[mask] for a in events)))
    assert samples[0][0].t[0] == 100 and samples[0][0].t[-1] == 195  # start included, end excluded


def test_gesture_labels_errors(tmp_path):
    cases = {
        "header.csv": "label,start,end\n1,0,10\n",
        "class.csv": "class,startTime_usec,endTime_usec\n12,0,10\n",
        "order.csv": "class,startTime_usec,endTime_usec\n3,10,0\n",
        "text.csv": "class,startTime_usec,endTime_usec\n3,ten,20\n",
        "empty.csv": "",
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with raises_naming(path):
            dvs.read_gesture_labels(path)
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(b"class,startTime_usec,endTime_usec\r\n2,5,9\r\n\r\n")
    np.testing.assert_array_equal(dvs.read_gesture_labels(crlf), [[2, 5, 9]])


# --------------------------------------------------------------------------- frames


def ev(t, x, y, p):
    return dvs.Events(np.asarray(t, np.int64), np.asarray(x, np.int16), np.asarray(y, np.int16),
                      np.asarray(p, np.uint8))


def test_frames_split_by_number_hand_case():
    # 10 events, 3 frames: [0, 3), [3, 6), [6, 10).
    events = ev(t=np.arange(10) * 100, x=[0, 1, 0, 2, 2, 2, 3, 3, 0, 1], y=[0, 0, 0, 1, 1, 1, 2, 2, 2, 2],
                p=[0, 1, 0, 1, 1, 0, 0, 0, 1, 1])
    frames = dvs.events_to_frames(events, 3, height=3, width=4, split_by="number")
    expected = np.zeros((3, 3, 4, 2), np.float32)
    expected[0, 0, 0, 0] = 2
    expected[0, 0, 1, 1] = 1
    expected[1, 1, 2, 1] = 2
    expected[1, 1, 2, 0] = 1
    expected[2, 2, 3, 0] = 2
    expected[2, 2, 0, 1] = 1
    expected[2, 2, 1, 1] = 1
    assert frames.dtype == np.float32
    np.testing.assert_array_equal(frames, expected)


def test_frames_split_by_time_hand_case():
    # t0 = 0, D = 10, T = 2: frame = min(t * 2 // 10, 1): t = 0, 1, 4 -> 0; t = 5, 9, 10 -> 1.
    events = ev(t=[0, 1, 4, 5, 9, 10], x=[0, 0, 1, 1, 1, 0], y=[0, 0, 0, 0, 0, 0], p=[1, 1, 0, 0, 1, 1])
    frames = dvs.events_to_frames(events, 2, height=1, width=2, split_by="time")
    expected = np.zeros((2, 1, 2, 2), np.float32)
    expected[0, 0, 0, 1] = 2
    expected[0, 0, 1, 0] = 1
    expected[1, 0, 1, 0] = 1
    expected[1, 0, 1, 1] = 1
    expected[1, 0, 0, 1] = 1
    np.testing.assert_array_equal(frames, expected)
    # Same rule with an offset start, and every event at one time: all in frame 0.
    shifted = events._replace(t=events.t + 1_000_000)
    np.testing.assert_array_equal(dvs.events_to_frames(shifted, 2, 1, 2, "time"), expected)
    # Windows of D / T = 10 / 3 us, not of D // T = 3 us: t = 3 is still in frame 0, t = 6 in frame 1.
    events = ev(t=[0, 3, 4, 6, 7, 9, 10], x=np.zeros(7), y=np.zeros(7), p=np.zeros(7))
    frames = dvs.events_to_frames(events, 3, 1, 1, "time")
    np.testing.assert_array_equal(frames[:, 0, 0, 0], [2, 2, 3])
    same = events._replace(t=np.full(7, 42))
    frames = dvs.events_to_frames(same, 3, 1, 1, "time")
    assert frames[0].sum() == 7 and frames[1:].sum() == 0


@pytest.mark.parametrize("split_by", ["number", "time"])
def test_frames_counts_add_up(split_by):
    events = random_events(1003, seed=6, t_max=10**6)
    frames = dvs.events_to_frames(events, 7, 128, 128, split_by=split_by)
    assert frames.shape == (7, 128, 128, 2)
    assert frames.sum() == 1003
    for polarity in (0, 1):
        assert frames[..., polarity].sum() == np.sum(events.p == polarity)
    per_frame = frames.sum(axis=(1, 2, 3))
    t = events.t - events.t.min()
    span = int(t.max())
    if split_by == "number":
        np.testing.assert_array_equal(per_frame, np.diff(np.arange(8) * 1003 // 7))
    else:
        starts = [np.sum(t * 7 < k * span) for k in range(1, 7)]  # events before each window start
        np.testing.assert_array_equal(per_frame, np.diff([0, *starts, 1003]))
    # Pixel counts of the first frame against a plain loop (the events are sorted by time).
    first = np.zeros((128, 128, 2))
    stop = 1003 // 7 if split_by == "number" else int(np.sum(t * 7 < span))
    for i in range(stop):
        first[events.y[i], events.x[i], events.p[i]] += 1
    np.testing.assert_array_equal(frames[0], first)


def test_frames_downsample_keeps_every_event():
    events = random_events(2000, seed=7)
    frames = dvs.events_to_frames(events, 4, 128, 128, downsample_to=(48, 48))
    assert frames.shape == (4, 48, 48, 2) and frames.sum() == 2000
    expected = np.zeros((4, 48, 48, 2))
    for i in range(2000):
        expected[i * 4 // 2000, events.y[i] * 48 // 128, events.x[i] * 48 // 128, events.p[i]] += 1
    np.testing.assert_array_equal(frames, expected)
    # Non-square sensor and target.
    events = ev(t=[0, 1, 2], x=[0, 239, 120], y=[0, 179, 90], p=[0, 1, 1])
    frames = dvs.events_to_frames(events, 1, 180, 240, downsample_to=(2, 3))
    assert frames[0, 0, 0, 0] == 1 and frames[0, 1, 2, 1] == 1 and frames[0, 1, 1, 1] == 1


def test_frames_no_events_and_bad_input():
    frames = dvs.events_to_frames(dvs._empty_events(), 5, 128, 128, "time", downsample_to=(32, 32))
    assert frames.shape == (5, 32, 32, 2) and frames.dtype == np.float32
    assert not np.isnan(frames).any() and frames.sum() == 0
    events = ev(t=[0, 1], x=[0, 128], y=[0, 0], p=[0, 1])
    with pytest.raises(ValueError, match="x must be in 0..127"):
        dvs.events_to_frames(events, 2, 128, 128)
    with pytest.raises(ValueError, match="split_by"):
        dvs.events_to_frames(events._replace(x=np.array([0, 1])), 2, 128, 128, split_by="frames")
    with pytest.raises(ValueError, match="timesteps"):
        dvs.events_to_frames(events, 0, 128, 128)
    with pytest.raises(ValueError, match="downsample_to"):
        dvs.events_to_frames(events, 2, 128, 128, downsample_to=(256, 256))


# --------------------------------------------------------------------------- CIFAR10-DVS loader


CIFAR_NAMES = ("0", "10", "2")  # string order: _0, _10, _2 -> _2 is the test recording of each class


def make_cifar_tree(root, n_events=60):
    """10 classes x 3 AEDAT 2.0 recordings; returns {path: events}."""
    written = {}
    for label, name in enumerate(dvs.CIFAR10_DVS_LABEL_NAMES):
        (root / name).mkdir(parents=True)
        for k, suffix in enumerate(CIFAR_NAMES):
            events = random_events(n_events + k, seed=100 * label + k, t_max=10**6)
            path = root / name / f"cifar10_{name}_{suffix}.aedat"
            dvs.write_aedat2(path, events)
            written[path] = events
    (root / "airplane" / "._cifar10_airplane_0.aedat").write_bytes(b"\0\1")  # macOS resource fork: ignored
    return written


def test_load_dvs_cifar10_shapes_labels_split(tmp_path):
    root = tmp_path / "CIFAR10DVS"
    written = make_cifar_tree(root)
    data = dvs.load_dvs_cifar10(tmp_path, timesteps=4, size=48, cache_dir=tmp_path / "cache")
    assert data.train_x.shape == (20, 4, 48, 48, 2) and data.test_x.shape == (10, 4, 48, 48, 2)
    assert data.train_x.dtype == np.float32 and data.train_y.dtype == np.int32
    np.testing.assert_array_equal(data.train_y, np.repeat(np.arange(10), 2))
    np.testing.assert_array_equal(data.test_y, np.arange(10))
    assert data.label_names == list(dvs.CIFAR10_LABEL_NAMES)
    for label, name in enumerate(dvs.CIFAR10_DVS_LABEL_NAMES):
        order = [root / name / f"cifar10_{name}_{suffix}.aedat" for suffix in CIFAR_NAMES]
        for row, path in enumerate(order[:2]):
            expected = dvs.events_to_frames(written[path], 4, 128, 128, "number", (48, 48))
            np.testing.assert_array_equal(data.train_x[2 * label + row], expected)
        np.testing.assert_array_equal(
            data.test_x[label], dvs.events_to_frames(written[order[2]], 4, 128, 128, "number", (48, 48)))
        assert data.test_x[label].sum() == 62  # the "_2" recording has 60 + 2 events
    assert str(root) in data.source


def test_load_dvs_cifar10_cache_is_reused(tmp_path, monkeypatch, capsys):
    make_cifar_tree(tmp_path / "data")
    monkeypatch.setattr(dvs, "PROGRESS_MIN_FILES", 10)
    first = dvs.load_dvs_cifar10(tmp_path / "data", timesteps=3, size=32, split_by="time")
    err = capsys.readouterr().err
    assert "decoding 30 recordings" in err and "30/30 recordings" in err
    folder = tmp_path / "data" / ".frames-T3-32px-time"
    cached = sorted(folder.rglob("*"))
    assert len([p for p in cached if p.suffix == ".npy"]) == 30
    assert not [p for p in cached if p.name.endswith(".tmp")]

    def refuse(path):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(dvs, "read_aedat2", refuse)
    second = dvs.load_dvs_cifar10(tmp_path / "data", timesteps=3, size=32, split_by="time")
    assert "decoding" not in capsys.readouterr().err
    for a, b in zip(first[:4], second[:4]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(AssertionError, match="decoded"):  # other settings: another cache folder
        dvs.load_dvs_cifar10(tmp_path / "data", timesteps=4, size=32, split_by="time")


def test_load_dvs_cifar10_interrupted_write_leaves_no_cache_file(tmp_path, monkeypatch):
    make_cifar_tree(tmp_path / "data")
    real_save, calls = np.save, []

    def interrupted_save(stream, array):
        calls.append(1)
        if len(calls) == 5:
            stream.write(b"\x93NUMPY partial")
            raise KeyboardInterrupt
        real_save(stream, array)

    monkeypatch.setattr(np, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        dvs.load_dvs_cifar10(tmp_path / "data", timesteps=2, size=16, cache_dir=tmp_path / "cache")
    files = sorted((tmp_path / "cache").rglob("*.*"))
    assert len([p for p in files if p.suffix == ".npy"]) == 4 and not [p for p in files if p.suffix == ".tmp"]
    monkeypatch.setattr(np, "save", real_save)
    data = dvs.load_dvs_cifar10(tmp_path / "data", timesteps=2, size=16, cache_dir=tmp_path / "cache")
    assert data.train_x.shape == (20, 2, 16, 16, 2)
    # A damaged cache file is decoded again, not trusted.
    damaged = next((tmp_path / "cache").rglob("*.npy"))
    damaged.write_bytes(b"not an npy")
    again = dvs.load_dvs_cifar10(tmp_path / "data", timesteps=2, size=16, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again.train_x, data.train_x)
    np.testing.assert_array_equal(again.test_x, data.test_x)


def test_load_dvs_cifar10_split_is_nine_tenths_per_class(tmp_path):
    written = make_cifar_tree(tmp_path, n_events=5)
    for k in range(3, 21):  # airplane: 0, 2..20 = 20 recordings -> 18 train, 2 test; the other classes 3 -> 2 + 1
        events = random_events(5, seed=k)
        path = tmp_path / "airplane" / f"cifar10_airplane_{k}.aedat"
        dvs.write_aedat2(path, events)
        written[path] = events
    data = dvs.load_dvs_cifar10(tmp_path, timesteps=1, size=8)
    np.testing.assert_array_equal(data.train_y, [0] * 18 + [k for k in range(1, 10) for _ in range(2)])
    np.testing.assert_array_equal(data.test_y, [0] + list(range(10)))
    # String order: 0, 10, ..., 19, 2, 20, 3, ..., 9: the test recordings are _8 and _9.
    for row, k in enumerate((8, 9)):
        events = written[tmp_path / "airplane" / f"cifar10_airplane_{k}.aedat"]
        np.testing.assert_array_equal(data.test_x[row], dvs.events_to_frames(events, 1, 128, 128, "number", (8, 8)))


def test_load_dvs_cifar10_errors(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        dvs.load_dvs_cifar10(tmp_path)
    message = str(info.value)
    for part in ("--data-dir", "airplane/*.aedat", "truck/*.aedat", "cannot be downloaded automatically"):
        assert part in message
    with pytest.raises(FileNotFoundError, match="does not exist"):
        dvs.load_dvs_cifar10(tmp_path / "nowhere")
    for name in dvs.CIFAR10_DVS_LABEL_NAMES:
        (tmp_path / name).mkdir()
    with pytest.raises(FileNotFoundError, match="no .aedat recordings"):
        dvs.load_dvs_cifar10(tmp_path)
    make_cifar_tree(tmp_path / "data")
    bad = tmp_path / "data" / "ship" / "cifar10_ship_2.aedat"
    bad.write_bytes(bad.read_bytes()[:-4])
    with raises_naming(bad):
        dvs.load_dvs_cifar10(tmp_path / "data", timesteps=2, size=16)
    with pytest.raises(ValueError, match="size"):
        dvs.load_dvs_cifar10(tmp_path / "data", size=256)
    with pytest.raises(ValueError, match="split_by"):
        dvs.load_dvs_cifar10(tmp_path / "data", split_by="frames")


# --------------------------------------------------------------------------- DVS128 Gesture loader


GESTURE_RECORDINGS = {
    "user01_fluorescent": [(1, 1000, 5000), (3, 6000, 9000), (11, 9000, 12000)],
    "user01_led": [(2, 500, 2500), (10, 3000, 8000)],
    "user02_natural": [(4, 0, 4000), (8, 2**31 + 10, 2**31 + 5000)],  # a window after a timestamp overflow
}


def make_gesture_tree(root, train=("user01_fluorescent", "user01_led"), test=("user02_natural",)):
    """Recordings, labels CSVs and trials lists; returns {stem: events}."""
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for k, (stem, rows) in enumerate(GESTURE_RECORDINGS.items()):
        rng = np.random.default_rng(200 + k)  # events in and around every window, sorted by time
        t = np.sort(np.concatenate([rng.integers(start - 300, end + 300, 400) for _, start, end in rows]))
        t = np.maximum(t, 0)
        events = dvs.Events(t, rng.integers(0, 128, len(t)).astype(np.int16),
                            rng.integers(0, 128, len(t)).astype(np.int16), rng.integers(0, 2, len(t)).astype(np.uint8))
        dvs.write_aedat31(root / f"{stem}.aedat", events, packet_size=256)
        dvs.write_gesture_labels(root / f"{stem}_labels.csv", rows)
        written[stem] = events
    (root / "trials_to_train.txt").write_text("".join(f"{stem}.aedat\n" for stem in train) + "\n")
    (root / "trials_to_test.txt").write_text("".join(f"{stem}.aedat\r\n" for stem in test))
    return written


def test_load_dvs_gesture_shapes_labels_split(tmp_path):
    written = make_gesture_tree(tmp_path / "DvsGesture")
    data = dvs.load_dvs_gesture(tmp_path, timesteps=4, size=32, cache_dir=tmp_path / "cache")
    assert data.train_x.shape == (5, 4, 32, 32, 2) and data.test_x.shape == (2, 4, 32, 32, 2)
    np.testing.assert_array_equal(data.train_y, [0, 2, 10, 1, 9])
    np.testing.assert_array_equal(data.test_y, [3, 7])
    assert data.label_names[10] == "other_gestures" and len(data.label_names) == 11
    train_windows = [(stem, row) for stem in ("user01_fluorescent", "user01_led") for row in GESTURE_RECORDINGS[stem]]
    for sample, (stem, (_, start, end)) in zip(data.train_x, train_windows):
        t = written[stem].t
        in_window = (t >= start) & (t < end)
        assert sample.sum() == in_window.sum() > 0
        window = dvs.Events(*(np.asarray(a)[in_window] for a in written[stem]))
        np.testing.assert_array_equal(sample, dvs.events_to_frames(window, 4, 128, 128, "number", (32, 32)))
    t = written["user02_natural"].t
    assert data.test_x[1].sum() == np.sum((t >= 2**31 + 10) & (t < 2**31 + 5000)) > 0


def test_load_dvs_gesture_full_size_and_cache(tmp_path, monkeypatch):
    make_gesture_tree(tmp_path)
    first = dvs.load_dvs_gesture(tmp_path, timesteps=16)
    assert first.train_x.shape == (5, 16, 128, 128, 2)
    assert len(list((tmp_path / ".frames-T16-128px-number").glob("*.npy"))) == 7

    def refuse(path):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(dvs, "read_aedat31", refuse)
    second = dvs.load_dvs_gesture(tmp_path, timesteps=16)
    for a, b in zip(first[:4], second[:4]):
        np.testing.assert_array_equal(a, b)


def test_load_dvs_gesture_errors(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        dvs.load_dvs_gesture(tmp_path)
    message = str(info.value)
    for part in ("--data-dir", "trials_to_train.txt", "trials_to_test.txt", "_labels.csv", "DvsGesture",
                 "cannot be downloaded automatically"):
        assert part in message
    make_gesture_tree(tmp_path / "a")
    (tmp_path / "a" / "user01_led_labels.csv").unlink()
    with pytest.raises(FileNotFoundError, match="user01_led_labels.csv"):
        dvs.load_dvs_gesture(tmp_path / "a")
    make_gesture_tree(tmp_path / "b")
    recording = tmp_path / "b" / "user02_natural.aedat"
    recording.write_bytes(recording.read_bytes()[:-100])
    with raises_naming(recording):
        dvs.load_dvs_gesture(tmp_path / "b", timesteps=2, size=16)
    make_gesture_tree(tmp_path / "c")
    (tmp_path / "c" / "trials_to_test.txt").write_text("user02_natural.txt\n")
    with raises_naming(tmp_path / "c" / "trials_to_test.txt"):
        dvs.load_dvs_gesture(tmp_path / "c")
