"""The CIFAR10-DVS loader: layout, split, frame cache, errors."""

import numpy as np
import pytest

from event_helpers import raises_naming, random_events
from nsnn_jax.data import DataNotFoundError, Dataset, cifar
from nsnn_jax.data.events import aedat, cifar10_dvs
from nsnn_jax.data.events import frames as event_frames


# --------------------------------------------------------------------------- CIFAR10-DVS loader


CIFAR_NAMES = ("0", "10", "2")  # string order: _0, _10, _2 -> _2 is the test recording of each class


def make_cifar_tree(root, n_events=60, seed=0):
    """10 classes x 3 AEDAT 2.0 recordings; returns {path: events}."""
    written = {}
    for label, name in enumerate(cifar10_dvs.CIFAR10_DVS_LABEL_NAMES):
        (root / name).mkdir(parents=True)
        for k, suffix in enumerate(CIFAR_NAMES):
            events = random_events(n_events + k, seed=seed + 100 * label + k, t_max=10**6)
            path = root / name / f"cifar10_{name}_{suffix}.aedat"
            aedat.write_aedat2(path, events)
            written[path] = events
    (root / "airplane" / "._cifar10_airplane_0.aedat").write_bytes(b"\0\1")  # macOS resource fork: ignored
    return written


def test_load_cifar10_dvs_shapes_labels_split(tmp_path):
    root = tmp_path / "CIFAR10DVS"
    written = make_cifar_tree(root)
    data = cifar10_dvs.load_cifar10_dvs(tmp_path, timesteps=4, size=48, cache_dir=tmp_path / "cache")
    assert data.train_x.shape == (20, 4, 48, 48, 2) and data.test_x.shape == (10, 4, 48, 48, 2)
    assert data.train_x.dtype == np.float32 and data.train_y.dtype == np.int32
    np.testing.assert_array_equal(data.train_y, np.repeat(np.arange(10), 2))
    np.testing.assert_array_equal(data.test_y, np.arange(10))
    assert data.label_names == tuple(cifar.CIFAR10_LABEL_NAMES)
    assert isinstance(data, Dataset)
    for label, name in enumerate(cifar10_dvs.CIFAR10_DVS_LABEL_NAMES):
        order = [root / name / f"cifar10_{name}_{suffix}.aedat" for suffix in CIFAR_NAMES]
        for row, path in enumerate(order[:2]):
            expected = event_frames.events_to_frames(written[path], 4, 128, 128, "number", (48, 48))
            np.testing.assert_array_equal(data.train_x[2 * label + row], expected)
        np.testing.assert_array_equal(
            data.test_x[label], event_frames.events_to_frames(written[order[2]], 4, 128, 128, "number", (48, 48)))
        assert data.test_x[label].sum() == 62  # the "_2" recording has 60 + 2 events
    assert str(root) in data.source


def test_load_cifar10_dvs_cache_is_reused(tmp_path, monkeypatch, capsys):
    make_cifar_tree(tmp_path / "data")
    monkeypatch.setattr(event_frames, "PROGRESS_MIN_FILES", 10)
    first = cifar10_dvs.load_cifar10_dvs(tmp_path / "data", timesteps=3, size=32, split_by="time")
    err = capsys.readouterr().err
    assert "decoding 30 recordings" in err and "30/30 recordings" in err
    folder = tmp_path / "data" / ".frames-T3-32px-time"
    cached = sorted(folder.rglob("*"))
    assert len([p for p in cached if p.suffix == ".npy"]) == 30
    assert not [p for p in cached if p.name.endswith(".tmp")]

    def refuse(path):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(aedat, "read_aedat2", refuse)
    second = cifar10_dvs.load_cifar10_dvs(tmp_path / "data", timesteps=3, size=32, split_by="time")
    assert "decoding" not in capsys.readouterr().err
    for a, b in zip(first[:4], second[:4]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(AssertionError, match="decoded"):  # other settings: another cache folder
        cifar10_dvs.load_cifar10_dvs(tmp_path / "data", timesteps=4, size=32, split_by="time")


def test_load_cifar10_dvs_second_tree_with_the_same_cache_gets_its_own_frames(tmp_path):
    cache = tmp_path / "cache"
    trees = {name: make_cifar_tree(tmp_path / name, seed=seed) for name, seed in (("a", 0), ("b", 5000))}
    for _ in range(2):  # the second round reads both from the cache
        for name, written in trees.items():
            data = cifar10_dvs.load_cifar10_dvs(tmp_path / name, timesteps=2, size=16, cache_dir=cache)
            path = tmp_path / name / "truck" / "cifar10_truck_2.aedat"
            np.testing.assert_array_equal(
                data.test_x[9], event_frames.events_to_frames(written[path], 2, 128, 128, "number", (16, 16)))
    assert len(list(cache.rglob("*.npy"))) == 60


def test_load_cifar10_dvs_interrupted_write_leaves_no_cache_file(tmp_path, monkeypatch):
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
        cifar10_dvs.load_cifar10_dvs(tmp_path / "data", timesteps=2, size=16, cache_dir=tmp_path / "cache")
    files = sorted((tmp_path / "cache").rglob("*.*"))
    assert len([p for p in files if p.suffix == ".npy"]) == 4 and not [p for p in files if p.suffix == ".tmp"]
    monkeypatch.setattr(np, "save", real_save)
    data = cifar10_dvs.load_cifar10_dvs(tmp_path / "data", timesteps=2, size=16, cache_dir=tmp_path / "cache")
    assert data.train_x.shape == (20, 2, 16, 16, 2)
    # A damaged cache file is decoded again, not trusted.
    damaged = next((tmp_path / "cache").rglob("*.npy"))
    damaged.write_bytes(b"not an npy")
    again = cifar10_dvs.load_cifar10_dvs(tmp_path / "data", timesteps=2, size=16, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(again.train_x, data.train_x)
    np.testing.assert_array_equal(again.test_x, data.test_x)


def test_load_cifar10_dvs_split_is_nine_tenths_per_class(tmp_path):
    written = make_cifar_tree(tmp_path, n_events=5)
    for k in range(3, 21):  # airplane: 0, 2..20 = 20 recordings -> 18 train, 2 test; the other classes 3 -> 2 + 1
        events = random_events(5, seed=k)
        path = tmp_path / "airplane" / f"cifar10_airplane_{k}.aedat"
        aedat.write_aedat2(path, events)
        written[path] = events
    data = cifar10_dvs.load_cifar10_dvs(tmp_path, timesteps=1, size=8)
    np.testing.assert_array_equal(data.train_y, [0] * 18 + [k for k in range(1, 10) for _ in range(2)])
    np.testing.assert_array_equal(data.test_y, [0] + list(range(10)))
    # String order: 0, 10, ..., 19, 2, 20, 3, ..., 9: the test recordings are _8 and _9.
    for row, k in enumerate((8, 9)):
        events = written[tmp_path / "airplane" / f"cifar10_airplane_{k}.aedat"]
        np.testing.assert_array_equal(data.test_x[row], event_frames.events_to_frames(events, 1, 128, 128, "number", (8, 8)))


def test_load_cifar10_dvs_errors(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        cifar10_dvs.load_cifar10_dvs(tmp_path)
    message = str(info.value)
    assert "--data-dir" not in message and "Pass DIR as --data-dir" in info.value.rephrased("--data-dir").args[0]
    for part in ("data_dir", "airplane/*.aedat", "truck/*.aedat", "cannot be downloaded automatically"):
        assert part in message
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cifar10_dvs.load_cifar10_dvs(tmp_path / "nowhere")
    with pytest.raises(DataNotFoundError, match="no data_dir given"):
        cifar10_dvs.load_cifar10_dvs(None)
    for name in cifar10_dvs.CIFAR10_DVS_LABEL_NAMES:
        (tmp_path / name).mkdir()
    with pytest.raises(FileNotFoundError, match="no .aedat recordings"):
        cifar10_dvs.load_cifar10_dvs(tmp_path)
    make_cifar_tree(tmp_path / "data")
    bad = tmp_path / "data" / "ship" / "cifar10_ship_2.aedat"
    bad.write_bytes(bad.read_bytes()[:-4])
    with raises_naming(bad):
        cifar10_dvs.load_cifar10_dvs(tmp_path / "data", timesteps=2, size=16)
    with pytest.raises(ValueError, match="size"):
        cifar10_dvs.load_cifar10_dvs(tmp_path / "data", size=256)
    with pytest.raises(ValueError, match="split_by"):
        cifar10_dvs.load_cifar10_dvs(tmp_path / "data", split_by="frames")


def test_load_cifar10_dvs_split_70_30_in_number_order(tmp_path):
    """Per class the first 7n//10 recordings in the order of their trailing number train, the rest test."""
    written = make_cifar_tree(tmp_path, n_events=5)  # every class: _0, _10, _2
    for k in range(3, 10):  # airplane: 0, 2..10 = 10 recordings -> 7 train (0, 2..7), 3 test (8, 9, 10)
        events = random_events(5, seed=k)
        path = tmp_path / "airplane" / f"cifar10_airplane_{k}.aedat"
        aedat.write_aedat2(path, events)
        written[path] = events
    data = cifar10_dvs.load_cifar10_dvs(tmp_path, timesteps=1, size=8, split="70-30")
    np.testing.assert_array_equal(data.train_y, [0] * 7 + [k for k in range(1, 10) for _ in range(2)])
    np.testing.assert_array_equal(data.test_y, [0] * 3 + list(range(1, 10)))
    for row, k in enumerate((8, 9, 10)):
        events = written[tmp_path / "airplane" / f"cifar10_airplane_{k}.aedat"]
        np.testing.assert_array_equal(data.test_x[row],
                                      event_frames.events_to_frames(events, 1, 128, 128, "number", (8, 8)))
    # the other classes (3 recordings: 7 * 3 // 10 = 2 train): _0 and _2 train, _10 tests
    bird = written[tmp_path / "bird" / "cifar10_bird_10.aedat"]
    np.testing.assert_array_equal(data.test_x[3 + 1],
                                  event_frames.events_to_frames(bird, 1, 128, 128, "number", (8, 8)))
    with pytest.raises(ValueError, match="split must be one of"):
        cifar10_dvs.load_cifar10_dvs(tmp_path, timesteps=1, size=8, split="80-20")


def test_load_cifar10_dvs_max_norm_bilinear_frames_and_cache(tmp_path):
    written = make_cifar_tree(tmp_path / "data", n_events=200)
    data = cifar10_dvs.load_cifar10_dvs(tmp_path / "data", timesteps=2, size=12, frame_norm="max",
                                        resize="bilinear", cache_dir=tmp_path / "cache")
    path = tmp_path / "data" / "airplane" / "cifar10_airplane_0.aedat"
    full = event_frames.events_to_frames(written[path], 2, 128, 128, "number")
    np.testing.assert_array_equal(data.train_x[0],
                                  event_frames.resize_bilinear(event_frames.max_normalise(full), 12, 12))
    assert (tmp_path / "cache" / "dvs_cifar10-T2-12px-number-maxnorm-bilinear").is_dir()
    plain = cifar10_dvs.load_cifar10_dvs(tmp_path / "data", timesteps=2, size=12, cache_dir=tmp_path / "cache")
    assert not np.array_equal(plain.train_x, data.train_x)  # another cache entry, not the max-norm frames
    np.testing.assert_array_equal(plain.train_x[0], event_frames.events_to_frames(written[path], 2, 128, 128,
                                                                                  "number", (12, 12)))
