"""The event-camera emulator, its AEDAT files, the emulated Fashion-MNIST loader and its training command."""

import math

import numpy as np
import pytest

from event_helpers import assert_events_equal
from helpers import make_idx_dir
from nsnn_jax.data import idx
from nsnn_jax.data.events import aedat, emulate, fashion_mnist_dvs, frames

EPS = 0.01
C = 0.3
SAMPLE_US = 1000
SACCADE_US = 30_000


def edge_image(height=12, width=16, edge=6):
    """Black for x < edge, white from x = edge on."""
    image = np.zeros((height, width), np.float32)
    image[:, edge:] = 1.0
    return image


def edge_settings(**changes):
    """Right by 3 px, then back, 10 samples per pixel of motion, no border, no refractory period."""
    base = dict(threshold=C, refractory_us=0, saccade_us=SACCADE_US, sample_rate_hz=1e6 / SAMPLE_US,
                vertices=((0.0, 0.0), (3.0, 0.0), (0.0, 0.0)), pad=0, eps=EPS)
    return emulate.EmulatorSettings(**{**base, **changes})


def test_a_moving_edge_fires_off_then_on_at_the_pixels_it_crosses():
    height, width, edge, shift = 12, 16, 6, 3
    events = emulate.emulate(edge_image(height, width, edge), edge_settings())
    assert isinstance(events, aedat.Events) and len(events.t)
    # Moved right by `shift`, pixel x sees image(x - s): it turns from white to black iff edge <= x < edge + shift.
    crossed = set((x, y) for x in range(edge, edge + shift) for y in range(height))
    first = events.t <= SACCADE_US  # the first saccade ends at SACCADE_US
    assert set(zip(events.x[first].tolist(), events.y[first].tolist())) == crossed
    assert set(zip(events.x[~first].tolist(), events.y[~first].tolist())) == crossed
    assert (events.p[first] == 0).all() and (events.p[~first] == 1).all()  # darker: OFF; brighter again: ON
    # Sub-pixel motion (bilinear): pixel edge + j is at intensity j + 1 - s while the offset s crosses it, so
    # its first OFF event comes at the first sample where log((j + 1 - s + eps) / (1 + eps)) <= -C.
    level = math.exp(-C) * (1 + EPS) - EPS
    speed = shift / SACCADE_US  # px per us
    for j in range(shift):
        expected = math.ceil((j + 1 - level) / speed / SAMPLE_US) * SAMPLE_US
        column = first & (events.x == edge + j)
        assert (events.t[column].min() == expected), (j, events.t[column].min(), expected)
    # Ordered by time, then row, then column, as the readers return recordings.
    order = np.lexsort((events.x, events.y, events.t))
    np.testing.assert_array_equal(order, np.arange(len(order)))


def test_a_still_image_gives_no_events():
    image = np.random.default_rng(0).random((10, 10)).astype(np.float32)
    for vertices in (((1.5, 0.5), (1.5, 0.5), (1.5, 0.5)), emulate.triangle(0.0)):
        events = emulate.emulate(image, edge_settings(vertices=vertices, pad=2, threshold=0.01))
        assert len(events.t) == 0 and events.t.dtype == np.int64 and events.p.dtype == np.uint8


def test_counts_fall_as_the_threshold_rises():
    images = np.random.default_rng(1).integers(0, 256, (3, 14, 14)).astype(np.uint8)
    counts = [sum(len(e.t) for e in emulate.emulate_batch(images, emulate.EmulatorSettings(
        threshold=c, saccade_us=20_000))) for c in (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)]
    assert all(a > b for a, b in zip(counts, counts[1:])), counts
    assert counts[-1] > 0


def test_the_refractory_period_suppresses_repeats():
    image = edge_image()
    free = emulate.emulate(image, edge_settings(threshold=0.02))
    refractory = 3 * SAMPLE_US
    held = emulate.emulate(image, edge_settings(threshold=0.02, refractory_us=refractory))

    def gaps(events):
        out = []
        for pixel in set(zip(events.x.tolist(), events.y.tolist())):
            times = events.t[(events.x == pixel[0]) & (events.y == pixel[1])]
            out.extend(np.diff(times).tolist())
        return np.asarray(out)

    assert gaps(free).min() == SAMPLE_US  # without it, pixels fire on consecutive samples
    assert gaps(held).min() == refractory  # with it, never sooner, and as soon as it ends
    assert len(held.t) < len(free.t)
    # The change during the period is not lost: every crossed pixel still ends at its new level's events.
    assert set(zip(held.x.tolist(), held.y.tolist())) == set(zip(free.x.tolist(), free.y.tolist()))


def test_threshold_mismatch_is_seeded_and_off_by_default():
    image = np.random.default_rng(2).integers(0, 256, (10, 10)).astype(np.uint8)
    settings = emulate.EmulatorSettings(saccade_us=10_000)
    plain = emulate.emulate(image, settings)
    assert_events_equal(emulate.emulate(image, emulate.EmulatorSettings(saccade_us=10_000, seed=5)), plain)
    a = emulate.emulate(image, emulate.EmulatorSettings(saccade_us=10_000, mismatch=0.3, seed=1))
    assert_events_equal(emulate.emulate(image, emulate.EmulatorSettings(saccade_us=10_000, mismatch=0.3, seed=1)), a)
    b = emulate.emulate(image, emulate.EmulatorSettings(saccade_us=10_000, mismatch=0.3, seed=2))
    assert len(a.t) != len(b.t) or not np.array_equal(a.x, b.x)


def test_bad_settings_and_images_are_named():
    with pytest.raises(ValueError, match="threshold"):
        emulate.EmulatorSettings(threshold=0.0)
    with pytest.raises(ValueError, match="vertices"):
        emulate.EmulatorSettings(vertices=((0.0, 0.0),))
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        emulate.emulate(np.full((4, 4), 2.0, np.float32))
    with pytest.raises(ValueError, match="shape"):
        emulate.emulate(np.zeros((2, 4, 4), np.uint8))


def test_emulated_recordings_read_back_through_the_aedat_readers(tmp_path):
    image = np.random.default_rng(3).integers(0, 256, (28, 28)).astype(np.uint8)
    events = emulate.emulate(image, emulate.EmulatorSettings(saccade_us=20_000))
    assert len(events.t) > 100 and int(events.x.max()) <= 33 and int(events.y.max()) <= 33  # 34 x 34 sensor
    assert set(np.unique(events.p).tolist()) == {0, 1}
    aedat.write_aedat31(tmp_path / "a31.aedat", events)
    assert_events_equal(aedat.read_aedat31(tmp_path / "a31.aedat"), events)
    aedat.write_aedat2(tmp_path / "a2.aedat", events)
    assert_events_equal(aedat.read_aedat2(tmp_path / "a2.aedat"), events)


def expected_frames(images, timesteps, size, settings):
    """The loader's frames built here from the emulator and the frame integration directly."""
    out = []
    for events in emulate.emulate_batch(images, settings):
        out.append(frames.events_to_frames(events, timesteps, size, size, "number"))
    return np.stack(out)


def test_fashion_mnist_dvs_frames_shapes_and_a_cache_per_image_tree(tmp_path, monkeypatch):
    first = make_idx_dir(tmp_path / "a", n_train=14, n_test=6, seed=0)
    second = make_idx_dir(tmp_path / "b", n_train=14, n_test=6, seed=1)
    cache = tmp_path / "cache"
    settings = emulate.EmulatorSettings(saccade_us=10_000)
    options = dict(timesteps=3, size=30, cache_dir=cache, train_limit=10, settings=settings)
    data = fashion_mnist_dvs.load_fashion_mnist_dvs(first, **options)
    assert data.train_x.shape == (10, 3, 30, 30, 2) and data.test_x.shape == (6, 3, 30, 30, 2)
    assert data.train_x.dtype == np.float32 and data.label_names == idx.FASHION_MNIST_LABEL_NAMES
    raw = idx.load_idx_dataset("fashion_mnist", data_dir=first)
    np.testing.assert_array_equal(data.train_y, raw.train_y[:10])
    padded = emulate.EmulatorSettings(saccade_us=10_000, pad=1)  # size 30: one black pixel per side
    np.testing.assert_array_equal(data.train_x, expected_frames(raw.train_x[:10], 3, 30, padded))
    other = fashion_mnist_dvs.load_fashion_mnist_dvs(second, **options)
    raw_other = idx.load_idx_dataset("fashion_mnist", data_dir=second)
    np.testing.assert_array_equal(other.test_x, expected_frames(raw_other.test_x, 3, 30, padded))
    assert not np.array_equal(other.train_x, data.train_x)
    folders = list(cache.iterdir())
    assert len(folders) == 1 and settings.tag().split("-")[0] in folders[0].name
    assert len(list(folders[0].rglob("*.npy"))) == 2 * (10 + 6)
    # Both trees are cached: loading again emulates nothing.
    monkeypatch.setattr(emulate, "emulate_batch", lambda *a, **k: pytest.fail("emulated again"))
    again = fashion_mnist_dvs.load_fashion_mnist_dvs(first, **options)
    np.testing.assert_array_equal(again.train_x, data.train_x)
    # Other emulator settings: their own folder, and other frames.
    monkeypatch.undo()
    finer = fashion_mnist_dvs.load_fashion_mnist_dvs(
        first, **{**options, "train_limit": 2, "settings": emulate.EmulatorSettings(saccade_us=10_000, threshold=0.1)})
    assert len(list(cache.iterdir())) == 2 and finer.train_x[:2].sum() > data.train_x[:2].sum()
    with pytest.raises(ValueError, match="size"):
        fashion_mnist_dvs.load_fashion_mnist_dvs(first, size=31, cache_dir=cache)
    with pytest.raises(ValueError, match="train_limit"):
        fashion_mnist_dvs.load_fashion_mnist_dvs(first, train_limit=0, cache_dir=cache)


def test_dvs_cifar_command_builds_its_task_on_emulated_fashion_mnist(tmp_path):
    """The command's flags -> config -> task on a tiny IDX tree; training itself is the event path that
    test_dvs_train runs (a full run here costs ~20 s of compilation)."""
    import jax
    import jax.numpy as jnp

    from train import dvs_cifar
    from train.common import cli

    data = make_idx_dir(tmp_path / "fmnist", n_train=40, n_test=20)
    argv = ["--dataset", "fashion_mnist_dvs", "--data-dir", data, "--cache-dir", str(tmp_path / "cache"),
            "--workdir", str(tmp_path / "run"), "--width", "0.0625", "--timesteps", "2", "--train-limit", "32",
            "--test-limit", "16"]
    config = cli.parse_config(dvs_cifar.DvsCifarConfig, "test", argv)
    assert (config.dataset, config.recipe, config.size, config.dvs_split) == (
        "fashion_mnist_dvs", "fashion_mnist_dvs/vggsnn/tdbn/noisy", 34, "60k10k")
    assert config.recipe_sources["lr"].startswith("small-scale setting")
    task = dvs_cifar.build_task(config)
    assert task.name == "fashion_mnist_dvs-vggsnn"
    assert task.data.train_x.shape == (32, 2, 34, 34, 2) and task.data.test_x.shape == (16, 2, 34, 34, 2)
    inputs = jax.ShapeDtypeStruct((2, 2, 34, 34, 2), jnp.float32)  # (T, B, H, W, 2), what preprocess gives
    assert jax.eval_shape(lambda x: task.preprocess(x, jax.random.key(0), True), task.data.train_x[:2]) == inputs
    rngs = {"params": jax.random.key(1), "noise": jax.random.key(2)}
    # The model takes the 2-polarity 34 x 34 frames (shapes only: compiling the network costs ~20 s).
    out = jax.eval_shape(lambda x: task.model.apply(task.model.init(rngs, x), x, rngs={"noise": rngs["noise"]}),
                         inputs)
    assert out.shape == (2, 2, 10)


def test_dvs_cifar_config_checks_the_emulated_settings():
    from train import dvs_cifar

    config = dvs_cifar.DvsCifarConfig(dataset="fashion_mnist_dvs")
    config.validate()
    assert (config.size, config.timesteps, config.epochs, config.frame_norm, config.lr) == (34, 4, 10, "none", 0.001)
    assert all(source.startswith("small-scale setting") for name, source in config.recipe_sources.items()
               if name in ("size", "timesteps", "epochs", "lr", "batch_size", "dvs_split"))
    bad = [dict(dataset="fashion_mnist_dvs", size=31), dict(dataset="fashion_mnist_dvs", resize="bilinear"),
           dict(dataset="fashion_mnist_dvs", dvs_split="9k1k"), dict(dataset="cifar10_dvs", train_limit=5),
           dict(dataset="cifar10_dvs", arch="sevenb"), dict(dataset="fashion_mnist_dvs", arch="sevenb", size=28)]
    for flags in bad:
        with pytest.raises(ValueError):
            dvs_cifar.DvsCifarConfig(**flags).validate()
    dvs_cifar.DvsCifarConfig(dataset="fashion_mnist_dvs", arch="sevenb").validate()
