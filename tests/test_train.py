"""The shared trainer and ``python -m train.fmnist``: contract, resume, sharding, errors."""

import dataclasses
import json
import os
import textwrap

import chex
import jax
import numpy as np
import pytest

from helpers import TINY, compare_sharded, interrupt_after, make_idx_dir, read_metrics, without_timing
from nsnn_jax.data import Dataset
from train import fmnist
from train.common import command, loop, progress, registry, restore, rundir, steps
from train.common.config import TrainConfig

pytestmark = pytest.mark.standard_promotion  # optax inside


def run_main(argv, capsys):
    fmnist.main(argv)
    return capsys.readouterr()




def test_fmnist_command_keeps_the_run_contract(tmp_path, capsys):
    """config.json, metrics.jsonl (required keys per epoch), checkpoints, final line."""
    data = make_idx_dir(tmp_path / "data")
    workdir = str(tmp_path / "run")
    out = run_main(["--data-dir", data, "--workdir", workdir, *TINY], capsys)
    config = json.load(open(os.path.join(workdir, "config.json")))
    assert config["sigma"] == 0.3 and config["neuron"] == "noisy" and config["hidden"] == [16]
    records = read_metrics(workdir)
    assert [r["epoch"] for r in records] == [1, 2]
    for r in records:
        for name in ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr", "seconds", "firing_rate"):
            assert np.isfinite(r[name]), name
        assert 0 < r["firing_rate"] < 1 and set(r["firing_rate_layers"]) == {"lif0"}
    assert records[-1]["lr"] == 0.0  # cosine decay to 0
    assert os.listdir(os.path.join(workdir, "checkpoints"))
    last = out.out.strip().splitlines()[-1]
    best = max(records, key=lambda r: r["test_accuracy"])  # ties: the earliest
    assert records[-1]["best_epoch"] == best["epoch"] and records[-1]["best_test_accuracy"] == best["test_accuracy"]
    assert last == (f"final test_accuracy={records[-1]['test_accuracy']:.4f} (best epoch {best['epoch']}: "
                    f"{best['test_accuracy']:.4f}, selected on the test set)")
    assert os.listdir(os.path.join(workdir, "best_checkpoint"))


def test_same_seed_same_run_and_dsnn_baseline(tmp_path, capsys):
    """Two runs with one seed give identical metrics; --neuron lif trains the deterministic net."""
    data = make_idx_dir(tmp_path / "data")
    runs = []
    for name in ("a", "b"):
        run_main(["--data-dir", data, "--workdir", str(tmp_path / name), *TINY], capsys)
        runs.append(without_timing(read_metrics(str(tmp_path / name))))
    assert runs[0] == runs[1]
    run_main(["--data-dir", data, "--workdir", str(tmp_path / "lif"), "--neuron", "lif", *TINY], capsys)
    lif = read_metrics(str(tmp_path / "lif"))
    assert "test_accuracy_deterministic" not in lif[-1]
    assert lif[-1]["train_loss"] != runs[0][-1]["train_loss"]


@pytest.mark.parametrize("stop_at", [4, 6])  # end of epoch 1 (4 steps/epoch) and mid-epoch 2
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, capsys, monkeypatch, stop_at):
    """Ctrl-C after a step saves a checkpoint; --resume finishes with the same metrics and params."""
    data = make_idx_dir(tmp_path / "data")
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    run_main(["--data-dir", data, "--workdir", straight, *TINY], capsys)

    interrupt_after(monkeypatch, progress.Progress, stop_at)
    with pytest.raises(SystemExit) as stopped:
        run_main(["--data-dir", data, "--workdir", resumed, *TINY], capsys)
    assert stopped.value.code == 130
    assert "--resume" in capsys.readouterr().err
    assert len(read_metrics(resumed)) == stop_at // 4
    monkeypatch.undo()
    run_main(["--data-dir", data, "--workdir", resumed, "--resume", *TINY], capsys)
    assert without_timing(read_metrics(resumed)) == without_timing(read_metrics(straight))


def test_refuses_to_overwrite_and_checks_resume_settings(tmp_path, capsys):
    data = make_idx_dir(tmp_path / "data")
    workdir = str(tmp_path / "run")
    run_main(["--data-dir", data, "--workdir", workdir, *TINY[:-2], "--epochs", "1"], capsys)
    with pytest.raises(SystemExit):
        run_main(["--data-dir", data, "--workdir", workdir, *TINY[:-2], "--epochs", "1"], capsys)
    assert "--resume" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_main(["--data-dir", data, "--workdir", workdir, "--resume", *TINY[:-2], "--epochs", "1",
                  "--sigma", "0.5"], capsys)
    assert "sigma" in capsys.readouterr().err


def test_train_step_compiles_once(tmp_path):
    """chex.assert_max_traces: the jitted step traces once over several batches."""
    config = fmnist.FmnistConfig(hidden=(8,), timesteps=2, batch_size=8, workdir=str(tmp_path))
    rng = np.random.default_rng(0)
    data = Dataset(rng.integers(0, 255, (32, 28, 28), dtype=np.uint8), np.arange(32, dtype=np.int32) % 10,
                   rng.integers(0, 255, (8, 28, 28), dtype=np.uint8), np.arange(8, dtype=np.int32) % 10)
    run = loop.Trainer(config, fmnist.build_task(config, data))
    step = jax.jit(chex.assert_max_traces(steps.make_train_step(run.task, run.tx, jax.random.key(0)), n=1))
    state = run.init_state()
    for i in range(4):
        rows = slice(8 * i, 8 * i + 8)
        state = step(state, data.train_x[rows], data.train_y[rows])
    assert int(state["step"]) == 4


@pytest.mark.parametrize("flag,value,expected", [
    ("--sigma", "0", "sigma"), ("--sigma", "-1", "sigma"), ("--timesteps", "0", "timesteps"),
    ("--noise", "pink", "pink"), ("--neuron", "izhikevich", "izhikevich"), ("--hidden", "0", "hidden"),
])
def test_bad_flags_fail_before_any_work(flag, value, expected, capsys):
    with pytest.raises(SystemExit) as error:
        fmnist.main([flag, value])
    assert error.value.code == 2
    assert expected in capsys.readouterr().err


def test_missing_data_fails_fast_with_a_clear_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        fmnist.main(["--data-dir", str(tmp_path / "nothing"), "--workdir", str(tmp_path / "run")])
    assert error.value.code == 1
    assert "train-images-idx3-ubyte" in capsys.readouterr().err


def test_help_lists_every_flag_with_default(capsys):
    with pytest.raises(SystemExit):
        fmnist.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--sigma", "--noise", "--neuron", "--timesteps", "--data-dir", "--dataset", "--resume",
                 "--workdir", "--epochs", "--lr", "--sampler", "--firing"):
        assert flag in text, flag
    assert "(default: 0.3)" in text


SHARDED = textwrap.dedent("""
    import os, sys, json
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=" + sys.argv[1]
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax, numpy as np
    from nsnn_jax.data import Dataset
    from train import fmnist
    from train.common import loop
    rng = np.random.default_rng(0)
    data = Dataset(rng.integers(0, 255, (64, 28, 28), dtype=np.uint8), np.arange(64, dtype=np.int32) % 10,
                   rng.integers(0, 255, (16, 28, 28), dtype=np.uint8), np.arange(16, dtype=np.int32) % 10)
    config = fmnist.FmnistConfig(hidden=(32,), timesteps=3, batch_size=16, epochs=1, workdir=sys.argv[2])
    run = loop.Trainer(config, fmnist.build_task(config, data))
    record = run.run()
    params = jax.device_get(run.last_state["params"])
    np.savez(sys.argv[3], *jax.tree.leaves(params))
    print(json.dumps({"devices": jax.device_count(), "train_loss": record["train_loss"]}))
""")


def test_sharded_training_equals_single_device(tmp_path):
    """4 forced CPU devices (batch split over 'data') give the 1-device loss and params.

    Tolerance 1e-5: only the order of the cross-device gradient sum differs.
    """
    compare_sharded(SHARDED, tmp_path, rtol=1e-5, atol=1e-6)


def test_compile_cache_is_on_by_default_and_can_be_turned_off(tmp_path, monkeypatch):
    """The persistent compilation cache goes to $NSNN_JAX_COMPILE_CACHE; --compile-cache false leaves it alone."""
    folder = tmp_path / "xla"
    monkeypatch.setenv("NSNN_JAX_COMPILE_CACHE", str(folder))
    previous = jax.config.jax_compilation_cache_dir
    try:
        off = fmnist.FmnistConfig(compile_cache=False)
        assert command.enable_compile_cache(off) is None and not folder.exists()
        assert command.enable_compile_cache(fmnist.FmnistConfig()) == str(folder)
        assert jax.config.jax_compilation_cache_dir == str(folder) and folder.is_dir()
    finally:
        jax.config.update("jax_compilation_cache_dir", previous)


def test_trainer_leaves_the_config_as_given(tmp_path, monkeypatch, capsys):
    """Without --workdir the run goes to runs/NAME-<timestamp>; the config object keeps workdir=None."""
    monkeypatch.chdir(tmp_path)
    config = fmnist.FmnistConfig(hidden=(8,), timesteps=2, batch_size=8, epochs=1)
    given = dataclasses.asdict(config)
    rng = np.random.default_rng(0)
    data = Dataset(rng.integers(0, 255, (16, 28, 28), dtype=np.uint8), np.arange(16, dtype=np.int32) % 10,
                   rng.integers(0, 255, (8, 28, 28), dtype=np.uint8), np.arange(8, dtype=np.int32) % 10)
    run = loop.Trainer(config, fmnist.build_task(config, data))
    run.run()
    assert dataclasses.asdict(config) == given and config.workdir is None
    assert run.workdir.startswith(os.path.join("runs", "fashion_mnist-"))
    saved = json.load(open(os.path.join(run.workdir, "config.json")))
    assert saved["workdir"] == run.workdir and saved["experiment"] == "train.fmnist"


def test_registry_names_every_command_and_only_those():
    from train import cifar, dvs_cifar, dvs_gesture, sine

    commands = {"fmnist": fmnist, "sine": sine, "cifar": cifar, "dvs_cifar": dvs_cifar, "dvs_gesture": dvs_gesture}
    known = registry.experiments()
    assert set(known) == set(commands)
    for name, module in commands.items():
        experiment = known[name]
        assert experiment is module.EXPERIMENT and experiment.command == module.__name__ == f"train.{name}"
        assert experiment.build_task is module.build_task
        assert issubclass(experiment.config_class, TrainConfig)
        assert registry.get_experiment(f"train.{name}") is experiment
    with pytest.raises(ValueError, match=r"'train\.mnist_mlp'.*'cifar'"):
        registry.get_experiment("train.mnist_mlp")


@pytest.mark.parametrize("edit,expected", [
    (lambda c: c.update(experiment="train.mnist_mlp"), "names no known experiment.*mnist_mlp"),
    (lambda c: c.pop("experiment"), "names no known experiment"),
    (lambda c: c.update(depth=3), r"settings \['depth'\] that train.fmnist does not have"),
])
def test_restoring_a_config_the_registry_cannot_rebuild_is_a_clear_error(tmp_path, edit, expected):
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = rundir.config_record(fmnist.FmnistConfig(), "train.fmnist", str(workdir))
    edit(config)
    rundir.write_config(str(workdir), config)
    with pytest.raises(ValueError, match=expected):
        restore.load_run(str(workdir))
