"""Faults a run survives or reports clearly: damaged checkpoints, unusable run folders, NaN losses."""

import json
import os
import types

import jax.numpy as jnp
import numpy as np
import pytest

from helpers import TINY, make_idx_dir, read_metrics, without_timing
from train import fmnist
from train.common import loop, restore, steps

pytestmark = pytest.mark.standard_promotion  # optax inside


def run_main(argv, capsys):
    fmnist.main(argv)
    return capsys.readouterr()


def damage(checkpoint_dir):
    """Overwrites every file of one saved step with bytes that are neither JSON nor array data."""
    for root, _, files in os.walk(checkpoint_dir):
        for name in files:
            path = os.path.join(root, name)
            size = max(os.path.getsize(path), 16)
            with open(path, "wb") as f:
                f.write(b"{\x00garbage" + b"\xff" * size)


@pytest.fixture
def finished(tmp_path, capsys):
    """A finished two-epoch run (checkpoints at steps 4 and 8) and its data folder."""
    data = make_idx_dir(tmp_path / "data")
    workdir = str(tmp_path / "run")
    run_main(["--data-dir", data, "--workdir", workdir, *TINY], capsys)
    return data, workdir


def test_damaged_newest_checkpoint_falls_back_with_a_warning(finished, capsys):
    data, workdir = finished
    straight = without_timing(read_metrics(workdir))
    damage(os.path.join(workdir, "checkpoints", "8"))
    out = run_main(["--data-dir", data, "--workdir", workdir, "--resume", *TINY], capsys)
    assert "warning: checkpoint step 8 is damaged, restored step 4" in out.err
    assert os.path.join(workdir, "checkpoints", "8") in out.err
    assert "resumed at step 4" in out.err
    assert without_timing(read_metrics(workdir)) == straight  # epoch 2 trained again, identically


def test_every_checkpoint_damaged_is_an_error_naming_the_folder(finished, capsys):
    data, workdir = finished
    for step in ("4", "8"):
        damage(os.path.join(workdir, "checkpoints", step))
    with pytest.raises(SystemExit) as stopped:
        run_main(["--data-dir", data, "--workdir", workdir, "--resume", *TINY], capsys)
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert f"No intact checkpoint in {os.path.join(workdir, 'checkpoints')}" in err
    assert "step 8" in err and "step 4" in err


def test_resume_on_an_empty_folder_says_it_starts_anew(tmp_path, capsys):
    data = make_idx_dir(tmp_path / "data")
    workdir = str(tmp_path / "new")
    out = run_main(["--data-dir", data, "--workdir", workdir, "--resume", *TINY[:-2], "--epochs", "1"], capsys)
    assert "no checkpoint in" in out.err and "starting a new run" in out.err
    assert [r["epoch"] for r in read_metrics(workdir)] == [1]


def test_unusable_run_folder_is_an_error_before_training(tmp_path, capsys, monkeypatch):
    data = make_idx_dir(tmp_path / "data")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as stopped:
        run_main(["--data-dir", data, "--workdir", str(blocker / "run"), *TINY], capsys)
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert "Cannot create the run folder" in err and str(blocker / "run") in err and "epoch 1" not in err

    class Usage:
        free = 1000  # bytes: less than one checkpoint
    monkeypatch.setattr(loop.shutil, "disk_usage", lambda path: Usage)
    with pytest.raises(SystemExit):
        run_main(["--data-dir", data, "--workdir", str(tmp_path / "full"), *TINY], capsys)
    err = capsys.readouterr().err
    assert "MiB free" in err and str(tmp_path / "full") in err and "epoch 1" not in err
    assert not os.path.exists(tmp_path / "full" / "metrics.jsonl")


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    """A loss poisoned from step 6 on (epoch 2, its 2nd step): error naming it, step 4 kept and restorable."""
    data = make_idx_dir(tmp_path / "data")
    workdir = str(tmp_path / "run")
    make = steps.make_train_step

    def poisoned(*args, **kwargs):
        step = make(*args, **kwargs)

        def run(state, x, y):
            new = step(state, x, y)
            loss = new["sums"]["loss"]
            new["sums"]["loss"] = jnp.where(new["step"] >= 6, jnp.nan, loss)
            return new
        return run

    monkeypatch.setattr(loop.steps, "make_train_step", poisoned)
    with pytest.raises(SystemExit) as stopped:
        run_main(["--data-dir", data, "--workdir", workdir, *TINY], capsys)
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert "NaN/Inf at step 6 (epoch 2, step 2 of 4)" in err
    assert "the last good checkpoint, step 4" in err
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["4"]
    monkeypatch.undo()
    result = restore.evaluate_run(workdir)
    assert result["step"] == 4 and np.isfinite(result["test_loss"])


def test_huge_learning_rate_diverges_with_an_error(tmp_path, capsys):
    data = make_idx_dir(tmp_path / "data")
    with pytest.raises(SystemExit) as stopped:
        run_main(["--data-dir", data, "--workdir", str(tmp_path / "run"), *TINY, "--lr", "1e38"], capsys)
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert "Training diverged" in err and "at step" in err and "--lr" in err


def test_best_and_final_checkpoints_are_scored(tmp_path, capsys):
    """Four epochs whose best test accuracy (epoch 2) is not the final one's."""
    data = make_idx_dir(tmp_path / "data")
    workdir = str(tmp_path / "run")
    out = run_main(["--data-dir", data, "--workdir", workdir, *TINY[:-2], "--epochs", "4"], capsys)
    records = read_metrics(workdir)
    best = max(records, key=lambda r: r["test_accuracy"])
    assert best["epoch"] != records[-1]["epoch"]
    assert f"(best epoch {best['epoch']}: {best['test_accuracy']:.4f}, selected on the test set)" in out.out
    final = restore.evaluate_run(workdir, checkpoint="final")
    chosen = restore.evaluate_run(workdir, checkpoint="best")
    assert final["step"] == records[-1]["step"] and final["test_accuracy"] == records[-1]["test_accuracy"]
    assert chosen["checkpoint"] == "best" and chosen["step"] == best["step"]
    assert chosen["test_accuracy"] == best["test_accuracy"]
    # --eval-only --checkpoint best: the same figures, in eval_best.json next to the final's eval.json.
    options = types.SimpleNamespace(workdir=workdir, eval_trials=1, data_dir=None, checkpoint="best")
    restore.evaluate_only(options)
    with open(os.path.join(workdir, "eval_best.json")) as f:
        assert json.load(f)["test_accuracy"] == best["test_accuracy"]
    with pytest.raises(ValueError, match="--checkpoint='middle'"):
        restore.evaluate_run(workdir, checkpoint="middle")
