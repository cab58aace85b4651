"""``train.dvs_cifar`` and ``train.dvs_gesture`` on recordings generated in the published formats."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from analysis import robustness
from helpers import fast_jit
from nsnn_jax.data.events import aedat, cifar10_dvs
from nsnn_jax.data.events import dvs_gesture as gesture_data
from train import dvs_cifar, dvs_gesture
from train.common import dvs as dvs_common
from train.common import loop, restore, steps

pytestmark = [pytest.mark.standard_promotion,  # optax inside
              pytest.mark.usefixtures("fast_compilation")]




def class_events(label, rng, n=600, duration=200_000, classes=10):
    """Events concentrated in a class-specific band of the 128x128 sensor (learnable)."""
    band = (label * 128) // classes
    t = np.sort(rng.integers(0, duration, n)).astype(np.int64)
    x = rng.integers(0, 128, n).astype(np.int16)
    y = np.clip(band + rng.integers(0, 128 // classes, n), 0, 127).astype(np.int16)
    p = (rng.random(n) < 0.5).astype(np.uint8)
    return aedat.Events(t, x, y, p)


def make_cifar10_dvs(root, per_class=2, seed=0):
    rng = np.random.default_rng(seed)
    for label, name in enumerate(cifar10_dvs.CIFAR10_DVS_LABEL_NAMES):
        os.makedirs(root / name, exist_ok=True)
        for i in range(per_class):
            aedat.write_aedat2(root / name / f"cifar10_{name}_{i}.aedat", class_events(label, rng))
    return str(root)


def make_gesture(root, seed=0):
    """Two users' recordings, each holding all 11 gestures one after another."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    names = {"train": ["user01_fluorescent.aedat"], "test": ["user02_led.aedat"]}
    for split, files in names.items():
        for name in files:
            parts, rows = [], []
            for gesture in range(11):
                events = class_events(gesture, rng, n=300, duration=100_000, classes=11)
                start = 1_000_000 + gesture * 150_000
                parts.append(events._replace(t=events.t + start))
                rows.append((gesture + 1, start, start + 100_000))
            merged = aedat.Events(*(np.concatenate([getattr(e, f) for e in parts]) for f in aedat.Events._fields))
            aedat.write_aedat31(root / name, merged)
            gesture_data.write_gesture_labels(root / name.replace(".aedat", "_labels.csv"), rows)
        with open(root / f"trials_to_{split}.txt", "w") as f:
            f.write("\n".join(files) + "\n")
    return str(root)


def one_step_lowers_the_loss(task, config):
    """The trainer's own step on a fixed batch; loss averaged over 8 noise keys before and after."""
    run = loop.Trainer(config, task)
    state = run.init_state()
    x, y = jnp.asarray(task.data.train_x[:config.batch_size]), jnp.asarray(task.data.train_y[:config.batch_size])
    keys = jax.random.split(jax.random.key(7), 8)

    def mean_loss(state):
        inputs = task.preprocess(x, keys[0], False)
        variables = {"params": state["params"], **state["batch_stats"]}

        def one(key):
            out, _ = task.model.apply(variables, inputs, train=True, rngs={"noise": key}, mutable=["batch_stats"])
            return task.loss(out, y)

        return jnp.mean(jax.vmap(one)(keys))

    before = float(fast_jit(mean_loss)(state))
    step = fast_jit(steps.make_train_step(task, run.tx, jax.random.key(0)))
    after = float(fast_jit(mean_loss)(step(state, x, y)))
    assert np.isfinite(before) and after < before


def test_dvs_cifar_command_trains_evaluates_and_caches(tmp_path, capsys):
    data = make_cifar10_dvs(tmp_path / "cifar10_dvs", per_class=10)  # 9 train, 1 test per class
    workdir = str(tmp_path / "run")
    # Counts and binning: frames any loader makes (the recipe's max + bilinear is checked in test_recipes).
    frames = ["--frame-norm", "none", "--resize", "bin"]
    argv = ["--data-dir", data, "--workdir", workdir, "--size", "16", "--timesteps", "2", "--width", "0.0625",
            "--batch-size", "10", "--epochs", "3", *frames]  # 27 steps: BN running statistics settle enough to fire at eval
    dvs_cifar.main(argv)
    config = json.load(open(os.path.join(workdir, "config.json")))
    assert (config["experiment"], config["arch"], config["algorithm"], config["sigma"]) == (
        "train.dvs_cifar", "vggsnn", "tdbn", 0.2)
    assert (config["recipe"], config["lr"], config["loss"], config["dvs_split"]) == (
        "cifar10_dvs/vggsnn/tdbn/noisy", 0.0003, "per-step", "9k1k")
    assert config["recipe_sources"]["lr"].startswith("Table 4") and config["recipe_sources"]["frame_norm"] == "given"
    record = json.loads(open(os.path.join(workdir, "metrics.jsonl")).readlines()[-1])
    assert np.isfinite(record["train_loss"]) and 0 <= record["test_accuracy"] <= 1
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("final test_accuracy=")
    # EventDrop through the robustness command on this run: rho = 1 leaves no events at all.
    rows = robustness.main(["--workdir", workdir, "--attack", "eventdrop", "--strengths", "0,1", "--seeds", "2",
                            "--limit", "10", "--batch-size", "10", "--eventdrop-mode", "random"])["rows"]
    assert [r["strength"] for r in rows] == [0.0, 1.0]
    assert rows[0]["loss_mean"] != rows[1]["loss_mean"]
    # The frames are cached: a second task is built without decoding any recording.
    cfg = dvs_cifar.DvsCifarConfig(data_dir=data, size=16, timesteps=2, width=0.0625, batch_size=10,
                                   frame_norm="none", resize="bin")
    cfg.validate()
    original = aedat.read_aedat2
    try:
        aedat.read_aedat2 = lambda path: pytest.fail(f"decoded {path} again")
        task = dvs_cifar.build_task(cfg)
    finally:
        aedat.read_aedat2 = original
    assert task.data.train_x.shape == (90, 2, 16, 16, 2) and task.data.test_x.shape == (10, 2, 16, 16, 2)
    one_step_lowers_the_loss(task, cfg)


def test_dvs_gesture_command_trains_and_one_step_lowers_the_loss(tmp_path, capsys):
    data = make_gesture(tmp_path / "gesture")
    workdir = str(tmp_path / "run")
    argv = ["--data-dir", data, "--workdir", workdir, "--size", "32", "--timesteps", "2", "--width", "0.0625",
            "--batch-size", "11", "--epochs", "1"]
    dvs_gesture.main(argv)
    config = json.load(open(os.path.join(workdir, "config.json")))
    assert (config["experiment"], config["arch"], config["timesteps"]) == ("train.dvs_gesture", "sevenb", 2)
    assert (config["recipe"], config["sigma"], config["firing"]) == ("dvs_gesture/sevenb/stbp/noisy", 0.3, "reference")
    assert config["recipe_sources"]["lr"].startswith("not published: our choice")
    # The registry rebuilds the run from its folder: the checkpoint scores as the last epoch did.
    rescored = restore.evaluate_run(workdir)
    last = json.loads(open(os.path.join(workdir, "metrics.jsonl")).readlines()[-1])
    assert rescored["test_accuracy"] == pytest.approx(last["test_accuracy"], abs=1e-9)
    assert rescored["test_loss"] == pytest.approx(last["test_loss"], rel=1e-5)
    # Adam's first step moves every weight by about lr: at the recipe's 1e-3 it overshoots on a 7B-Net this small.
    cfg = dvs_gesture.DvsGestureConfig(data_dir=data, size=32, timesteps=2, width=0.0625, batch_size=11,
                                       lr=1e-4, workdir=str(tmp_path / "unused"))
    cfg.validate()
    task = dvs_gesture.build_task(cfg)
    assert task.data.train_x.shape == (11, 2, 32, 32, 2)
    assert sorted(task.data.train_y.tolist()) == list(range(11))
    one_step_lowers_the_loss(task, cfg)


def test_flip_and_roll_moves_whole_frames():
    frames = jnp.arange(2 * 6 * 6 * 2, dtype=jnp.float32).reshape(2, 6, 6, 2)
    seen = set()
    for i in range(40):
        out = np.asarray(dvs_common.flip_and_roll(frames, jax.random.key(i), 2))
        matches = []
        for flipped in (False, True):
            base = np.asarray(frames)[:, :, ::-1] if flipped else np.asarray(frames)
            for dy in range(-2, 3):
                for dx in range(-2, 3):
                    if np.array_equal(out, np.roll(base, (dy, dx), axis=(1, 2))):
                        matches.append((flipped, dy, dx))
        assert len(matches) == 1  # exactly one flip and roll, the same at every step and polarity
        seen.add(matches[0])
    assert len(seen) > 10 and {m[0] for m in seen} == {False, True}


def test_preprocess_makes_inputs_time_major():
    frames = np.random.default_rng(0).random((3, 4, 8, 8, 2)).astype(np.float32)
    out = dvs_common.make_preprocess(0)(jnp.asarray(frames), jax.random.key(0), True)
    np.testing.assert_array_equal(out, frames.transpose(1, 0, 2, 3, 4))


def test_missing_data_names_the_flag(tmp_path, capsys):
    for main, extra in ((dvs_cifar.main, ["--frame-norm", "none", "--resize", "bin"]), (dvs_gesture.main, [])):
        with pytest.raises(SystemExit) as error:
            main(["--data-dir", str(tmp_path / "none"), "--workdir", str(tmp_path / "run"), *extra])
        assert error.value.code == 1
        assert "--data-dir" in capsys.readouterr().err
