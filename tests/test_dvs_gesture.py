"""DVS128 Gesture: the labels CSV, the gesture windows and the loader."""

import numpy as np
import pytest

from event_helpers import assert_events_equal, raises_naming
from nsnn_jax.data import DataNotFoundError, Dataset
from nsnn_jax.data.events import aedat, dvs_gesture
from nsnn_jax.data.events import frames as event_frames


# --------------------------------------------------------------------------- gesture labels


def test_gesture_samples_cut_by_label_windows(tmp_path):
    t = np.arange(0, 1000, 5)
    events = aedat.Events(t, (t % 128).astype(np.int16), ((t // 7) % 128).astype(np.int16),
                        (t % 2).astype(np.uint8))
    labels = tmp_path / "user01_led_labels.csv"
    dvs_gesture.write_gesture_labels(labels, [(1, 100, 200), (11, 200, 350), (5, 990, 2000)])
    assert labels.read_text().splitlines()[0] == "class,startTime_usec,endTime_usec"
    samples = dvs_gesture.gesture_samples(events, labels)
    assert [label for _, label in samples] == [0, 10, 4]
    for (sample, _), (start, end) in zip(samples, [(100, 200), (200, 350), (990, 2000)]):
        mask = (t >= start) & (t < end)
        assert_events_equal(sample, aedat.Events(*(np.asarray(a)[mask] for a in events)))
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
            dvs_gesture.read_gesture_labels(path)
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(b"class,startTime_usec,endTime_usec\r\n2,5,9\r\n\r\n")
    np.testing.assert_array_equal(dvs_gesture.read_gesture_labels(crlf), [[2, 5, 9]])


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
        events = aedat.Events(t, rng.integers(0, 128, len(t)).astype(np.int16),
                            rng.integers(0, 128, len(t)).astype(np.int16), rng.integers(0, 2, len(t)).astype(np.uint8))
        aedat.write_aedat31(root / f"{stem}.aedat", events, packet_size=256)
        dvs_gesture.write_gesture_labels(root / f"{stem}_labels.csv", rows)
        written[stem] = events
    (root / "trials_to_train.txt").write_text("".join(f"{stem}.aedat\n" for stem in train) + "\n")
    (root / "trials_to_test.txt").write_text("".join(f"{stem}.aedat\r\n" for stem in test))
    return written


def test_load_dvs_gesture_shapes_labels_split(tmp_path):
    written = make_gesture_tree(tmp_path / "DvsGesture")
    data = dvs_gesture.load_dvs_gesture(tmp_path, timesteps=4, size=32, cache_dir=tmp_path / "cache")
    assert data.train_x.shape == (5, 4, 32, 32, 2) and data.test_x.shape == (2, 4, 32, 32, 2)
    np.testing.assert_array_equal(data.train_y, [0, 2, 10, 1, 9])
    np.testing.assert_array_equal(data.test_y, [3, 7])
    assert data.label_names[10] == "other_gestures" and len(data.label_names) == 11
    assert isinstance(data, Dataset)
    train_windows = [(stem, row) for stem in ("user01_fluorescent", "user01_led") for row in GESTURE_RECORDINGS[stem]]
    for sample, (stem, (_, start, end)) in zip(data.train_x, train_windows):
        t = written[stem].t
        in_window = (t >= start) & (t < end)
        assert sample.sum() == in_window.sum() > 0
        window = aedat.Events(*(np.asarray(a)[in_window] for a in written[stem]))
        np.testing.assert_array_equal(sample, event_frames.events_to_frames(window, 4, 128, 128, "number", (32, 32)))
    t = written["user02_natural"].t
    assert data.test_x[1].sum() == np.sum((t >= 2**31 + 10) & (t < 2**31 + 5000)) > 0


def test_load_dvs_gesture_full_size_and_cache(tmp_path, monkeypatch):
    make_gesture_tree(tmp_path)
    first = dvs_gesture.load_dvs_gesture(tmp_path, timesteps=16)
    assert first.train_x.shape == (5, 16, 128, 128, 2)
    assert len(list((tmp_path / ".frames-T16-128px-number").glob("*.npy"))) == 7

    def refuse(path):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(aedat, "read_aedat31", refuse)
    second = dvs_gesture.load_dvs_gesture(tmp_path, timesteps=16)
    for a, b in zip(first[:4], second[:4]):
        np.testing.assert_array_equal(a, b)


def test_load_dvs_gesture_errors(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        dvs_gesture.load_dvs_gesture(tmp_path)
    message = str(info.value)
    assert "--data-dir" not in message and "Pass DIR as --data-dir" in info.value.rephrased("--data-dir").args[0]
    with pytest.raises(DataNotFoundError, match="no data_dir given"):
        dvs_gesture.load_dvs_gesture(None)
    for part in ("data_dir", "trials_to_train.txt", "trials_to_test.txt", "_labels.csv", "DvsGesture",
                 "cannot be downloaded automatically"):
        assert part in message
    make_gesture_tree(tmp_path / "a")
    (tmp_path / "a" / "user01_led_labels.csv").unlink()
    with pytest.raises(FileNotFoundError, match="user01_led_labels.csv"):
        dvs_gesture.load_dvs_gesture(tmp_path / "a")
    make_gesture_tree(tmp_path / "b")
    recording = tmp_path / "b" / "user02_natural.aedat"
    recording.write_bytes(recording.read_bytes()[:-100])
    with raises_naming(recording):
        dvs_gesture.load_dvs_gesture(tmp_path / "b", timesteps=2, size=16)
    make_gesture_tree(tmp_path / "c")
    (tmp_path / "c" / "trials_to_test.txt").write_text("user02_natural.txt\n")
    with raises_naming(tmp_path / "c" / "trials_to_test.txt"):
        dvs_gesture.load_dvs_gesture(tmp_path / "c")
