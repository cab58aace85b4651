"""Frame integration (by count, by time, down-sampling) and the frame cache."""

import os

import numpy as np
import pytest

from event_helpers import random_events
from nsnn_jax.data.events import aedat
from nsnn_jax.data.events import frames as event_frames


# --------------------------------------------------------------------------- frames


def ev(t, x, y, p):
    return aedat.Events(np.asarray(t, np.int64), np.asarray(x, np.int16), np.asarray(y, np.int16),
                      np.asarray(p, np.uint8))


def test_frames_split_by_number_hand_case():
    # 10 events, 3 frames: [0, 3), [3, 6), [6, 10).
    events = ev(t=np.arange(10) * 100, x=[0, 1, 0, 2, 2, 2, 3, 3, 0, 1], y=[0, 0, 0, 1, 1, 1, 2, 2, 2, 2],
                p=[0, 1, 0, 1, 1, 0, 0, 0, 1, 1])
    frames = event_frames.events_to_frames(events, 3, height=3, width=4, split_by="number")
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
    frames = event_frames.events_to_frames(events, 2, height=1, width=2, split_by="time")
    expected = np.zeros((2, 1, 2, 2), np.float32)
    expected[0, 0, 0, 1] = 2
    expected[0, 0, 1, 0] = 1
    expected[1, 0, 1, 0] = 1
    expected[1, 0, 1, 1] = 1
    expected[1, 0, 0, 1] = 1
    np.testing.assert_array_equal(frames, expected)
    # Same rule with an offset start, and every event at one time: all in frame 0.
    shifted = events._replace(t=events.t + 1_000_000)
    np.testing.assert_array_equal(event_frames.events_to_frames(shifted, 2, 1, 2, "time"), expected)
    # Windows of D / T = 10 / 3 us, not of D // T = 3 us: t = 3 is still in frame 0, t = 6 in frame 1.
    events = ev(t=[0, 3, 4, 6, 7, 9, 10], x=np.zeros(7), y=np.zeros(7), p=np.zeros(7))
    frames = event_frames.events_to_frames(events, 3, 1, 1, "time")
    np.testing.assert_array_equal(frames[:, 0, 0, 0], [2, 2, 3])
    same = events._replace(t=np.full(7, 42))
    frames = event_frames.events_to_frames(same, 3, 1, 1, "time")
    assert frames[0].sum() == 7 and frames[1:].sum() == 0


@pytest.mark.parametrize("split_by", ["number", "time"])
def test_frames_counts_add_up(split_by):
    events = random_events(1003, seed=6, t_max=10**6)
    frames = event_frames.events_to_frames(events, 7, 128, 128, split_by=split_by)
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
    frames = event_frames.events_to_frames(events, 4, 128, 128, downsample_to=(48, 48))
    assert frames.shape == (4, 48, 48, 2) and frames.sum() == 2000
    expected = np.zeros((4, 48, 48, 2))
    for i in range(2000):
        expected[i * 4 // 2000, events.y[i] * 48 // 128, events.x[i] * 48 // 128, events.p[i]] += 1
    np.testing.assert_array_equal(frames, expected)
    # Non-square sensor and target.
    events = ev(t=[0, 1, 2], x=[0, 239, 120], y=[0, 179, 90], p=[0, 1, 1])
    frames = event_frames.events_to_frames(events, 1, 180, 240, downsample_to=(2, 3))
    assert frames[0, 0, 0, 0] == 1 and frames[0, 1, 2, 1] == 1 and frames[0, 1, 1, 1] == 1


def test_frames_no_events_and_bad_input():
    frames = event_frames.events_to_frames(ev([], [], [], []), 5, 128, 128, "time", downsample_to=(32, 32))
    assert frames.shape == (5, 32, 32, 2) and frames.dtype == np.float32
    assert not np.isnan(frames).any() and frames.sum() == 0
    events = ev(t=[0, 1], x=[0, 128], y=[0, 0], p=[0, 1])
    with pytest.raises(ValueError, match="x must be in 0..127"):
        event_frames.events_to_frames(events, 2, 128, 128)
    with pytest.raises(ValueError, match="split_by"):
        event_frames.events_to_frames(events._replace(x=np.array([0, 1])), 2, 128, 128, split_by="frames")
    with pytest.raises(ValueError, match="timesteps"):
        event_frames.events_to_frames(events, 0, 128, 128)
    with pytest.raises(ValueError, match="downsample_to"):
        event_frames.events_to_frames(events, 2, 128, 128, downsample_to=(256, 256))


# --------------------------------------------------------------------------- frame cache


def write_tree(root, values):
    """One tiny "recording" per value: a file whose bytes give its frames."""
    root.mkdir(parents=True, exist_ok=True)
    recordings = []
    for k, value in enumerate(values):
        path = root / f"rec{k}.bin"
        path.write_bytes(bytes([value]))
        recordings.append(event_frames.Recording(path, (f"rec{k}",), (k,), "train" if k else "test"))
    return recordings


def counting_decode(decoded):
    def decode(recording):
        decoded.append(recording.path)
        value = recording.path.read_bytes()[0]
        return [np.full((2, 3, 3, 2), value, np.float32)]
    return decode


def test_cache_is_keyed_by_the_source_files(tmp_path):
    cache = tmp_path / "cache"
    decoded = []

    def build(recordings):
        return event_frames.build_dataset("toy", recordings, counting_decode(decoded), cache, (2, 3, 3, 2), ("a", "b"),
                                          "toy")

    recordings = write_tree(tmp_path / "a", [1, 2, 3])
    first = build(recordings)
    assert len(decoded) == 3 and first.test_x[0, 0, 0, 0, 0] == 1 and first.train_x[:, 0, 0, 0, 0].tolist() == [2, 3]
    assert first.label_names == ("a", "b") and first.train_y.tolist() == [1, 2]
    decoded.clear()
    np.testing.assert_array_equal(build(recordings).train_x, first.train_x)
    assert decoded == []  # unchanged files: read from the cache
    # Same size and bytes but another modification time: decoded again.
    stat = recordings[1].path.stat()
    os.utime(recordings[1].path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    np.testing.assert_array_equal(build(recordings).train_x, first.train_x)
    assert decoded == [recordings[1].path]
    decoded.clear()
    # A second tree with the same sample keys and the same cache folder gets its own frames.
    second = build(write_tree(tmp_path / "b", [7, 8, 9]))
    assert sorted(path.parent.name for path in decoded) == ["b", "b", "b"]
    assert second.test_x[0, 0, 0, 0, 0] == 7 and second.train_x[:, 0, 0, 0, 0].tolist() == [8, 9]
    decoded.clear()
    np.testing.assert_array_equal(build(recordings).train_x, first.train_x)  # the first tree's frames are kept
    assert decoded == []


def test_cache_follows_a_changed_dependency(tmp_path):
    cache, decoded = tmp_path / "cache", []
    [recording] = write_tree(tmp_path / "a", [4])
    labels = tmp_path / "a" / "rec0_labels.csv"
    labels.write_text("one")
    recording = recording._replace(depends=(labels,))
    build = lambda: event_frames.build_dataset(  # noqa: E731
        "toy", [recording], counting_decode(decoded), cache, (2, 3, 3, 2), ("a",), "toy")
    build()
    build()
    assert len(decoded) == 1
    labels.write_text("one, longer")  # another size
    build()
    assert len(decoded) == 2



# --------------------------------------------------------------------------- max normalisation and bilinear resize


def test_max_normalise_per_frame_over_both_polarities_and_empty_frames():
    frames = np.zeros((3, 4, 5, 2), np.float32)
    frames[0, 1, 2, 0], frames[0, 3, 3, 1] = 2.0, 4.0  # frame 0: max 4 on the ON channel
    frames[2, 0, 0, 1] = 1.0  # frame 1 stays empty
    frames[2, 2, 4, 0] = 5.0
    out = event_frames.max_normalise(frames)
    assert out.dtype == np.float32 and np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[0], frames[0] / 4.0)
    np.testing.assert_array_equal(out[1], 0.0)
    np.testing.assert_array_equal(out[2], frames[2] / 5.0)
    np.testing.assert_array_equal(out.max(axis=(1, 2, 3)), [1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="max_normalise expects"):
        event_frames.max_normalise(np.zeros((4, 5, 2)))


@pytest.mark.parametrize("shape, size", [((128, 128), (48, 48)), ((10, 7), (4, 3)), ((5, 6), (9, 11)),
                                         ((16, 16), (16, 16))])
def test_resize_bilinear_equals_pillow_float_resize_per_channel(shape, size):
    """Against Pillow's 'F'-mode (float32) bilinear resize of each channel: down (antialiased), up, identity."""
    image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    frames = ((rng.random((2,) + shape + (2,)) < 0.3) * rng.random((2,) + shape + (2,))).astype(np.float32)
    out = event_frames.resize_bilinear(frames, *size)
    assert out.shape == (2,) + size + (2,) and out.dtype == np.float32
    for t in range(2):
        for c in range(2):
            reference = image.fromarray(frames[t, :, :, c], mode="F").resize(size[::-1], image.BILINEAR)
            np.testing.assert_allclose(out[t, :, :, c], np.asarray(reference), atol=1e-6)


def test_resize_bilinear_keeps_the_mean_when_shrinking_by_an_integer_factor():
    """Antialiased: shrinking by k widens the triangle's support to k pixels, so every input pixel
    contributes and the frame's mean is kept up to the border (a two-tap bilinear would sample only
    some pixels)."""
    frames = (np.random.default_rng(1).random((1, 64, 64, 2)) < 0.2).astype(np.float32)
    out = event_frames.resize_bilinear(frames, 16, 16)
    np.testing.assert_allclose(out.mean(), frames.mean(), rtol=0.05)


def test_frames_maker_max_and_bilinear_and_their_cache_folder(tmp_path):
    events = random_events(500, seed=3, t_max=10**6)
    make = event_frames.frames_maker(4, 48, "number", frame_norm="max", resize="bilinear")
    full = event_frames.events_to_frames(events, 4, 128, 128, "number")
    expected = event_frames.resize_bilinear(event_frames.max_normalise(full), 48, 48)
    np.testing.assert_array_equal(make(events), expected)
    default = event_frames.frames_cache_folder("dvs_cifar10", tmp_path, 4, 48, "number")
    authors = event_frames.frames_cache_folder("dvs_cifar10", tmp_path, 4, 48, "number", None, "max", "bilinear")
    assert default.name == ".frames-T4-48px-number" and authors != default
    assert len({default, authors,
                event_frames.frames_cache_folder("dvs_cifar10", tmp_path, 4, 48, "number", None, "max"),
                event_frames.frames_cache_folder("dvs_cifar10", tmp_path, 4, 48, "number", None, "none",
                                                 "bilinear")}) == 4
    with pytest.raises(ValueError, match="frame_norm must be one of"):
        event_frames.frames_maker(4, 48, "number", frame_norm="sum")
    with pytest.raises(ValueError, match="resize must be one of"):
        event_frames.frames_maker(4, 48, "number", resize="nearest")
