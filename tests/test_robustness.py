"""``python -m analysis.robustness`` end to end on tiny Fashion-MNIST runs (figures reported, not asserted)."""

import csv
import json
import os

import pytest

from analysis import robustness
from helpers import TINY, make_idx_dir
from train import fmnist

pytestmark = pytest.mark.standard_promotion  # optax inside


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An NSNN and its DSNN baseline, trained on the same tiny data."""
    root = tmp_path_factory.mktemp("robust")
    data = make_idx_dir(root / "data")
    nsnn, dsnn = str(root / "nsnn"), str(root / "dsnn")
    fmnist.main(["--data-dir", data, "--workdir", nsnn, *TINY])
    fmnist.main(["--data-dir", data, "--workdir", dsnn, "--neuron", "lif", *TINY])
    return data, nsnn, dsnn


def test_fgsm_table_for_nsnn_and_dsnn(runs, tmp_path, capsys):
    data, nsnn, dsnn = runs
    out = str(tmp_path / "out")
    result = robustness.main(["--workdir", nsnn, "--workdir", dsnn, "--attack", "fgsm", "--strengths", "0,0.1",
                              "--seeds", "2", "--samples", "2", "--limit", "16", "--batch-size", "8", "--out", out])
    rows = result["rows"]
    # NSNN: single-sample and 2-sample (EOT) attacks; DSNN: single only. Two strengths each.
    assert [(r["neuron"], r["variant"]) for r in rows] == [
        ("noisy", "single"), ("noisy", "single"), ("noisy", "eot2"), ("noisy", "eot2"),
        ("lif", "single"), ("lif", "single")]
    for r in rows:
        assert 0.0 <= r["accuracy_mean"] <= 1.0 and r["accuracy_std"] >= 0.0 and r["loss_mean"] > 0
    # Strength 0 is the clean accuracy, whichever variant.
    assert rows[0]["accuracy_mean"] == rows[2]["accuracy_mean"]
    # The DSNN is deterministic: its seeds agree exactly.
    assert rows[4]["accuracy_std"] == 0.0
    saved = json.load(open(os.path.join(out, "robustness-fgsm.json")))
    assert saved["rows"] == rows
    with open(os.path.join(out, "robustness-fgsm.csv")) as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    assert os.path.getsize(os.path.join(out, "robustness-fgsm.png")) > 0
    assert "robustness-fgsm.json" in capsys.readouterr().out


def test_flip_sweep_changes_the_outputs_and_defaults_to_the_run_folder(runs, capsys):
    _, nsnn, _ = runs
    result = robustness.main(["--workdir", nsnn, "--attack", "flip", "--strengths", "0,0.5",
                              "--seeds", "2", "--limit", "16", "--batch-size", "16"])
    rows = result["rows"]
    assert [r["strength"] for r in rows] == [0.0, 0.5]
    assert rows[1]["loss_mean"] != rows[0]["loss_mean"]  # the flips reach the readout
    assert os.path.exists(os.path.join(nsnn, "analysis", "robustness-flip.json"))


def test_do_attack_runs(runs, tmp_path):
    _, _, dsnn = runs
    result = robustness.main(["--workdir", dsnn, "--attack", "do", "--strengths", "0,1.0", "--seeds", "1",
                              "--limit", "8", "--batch-size", "8", "--do-steps", "3", "--out", str(tmp_path)])
    assert [r["variant"] for r in result["rows"]] == ["single", "single"]


def test_sigma_family_trains_once_and_plots(runs, tmp_path, capsys):
    data, _, _ = runs
    out = str(tmp_path / "family")
    args = ["--sigmas", "0.2,0.5", "--experiment", "fmnist", "--out", out,
            "--train-args", f"--data-dir {data} --hidden 8 --timesteps 2 --batch-size 16 --epochs 2"]
    first = robustness.main(args)
    assert set(first["sigmas"]["final_test_accuracy"]) == {"0.2", "0.5"}
    assert all(len(c) == 2 for c in first["sigmas"]["learning_curves"].values())
    assert os.path.exists(os.path.join(out, "sigmas.png"))
    stamp = os.path.getmtime(os.path.join(out, "sigma-0.2", "metrics.jsonl"))
    second = robustness.main(args)  # reused, not retrained
    assert second["sigmas"] == first["sigmas"]
    assert os.path.getmtime(os.path.join(out, "sigma-0.2", "metrics.jsonl")) == stamp


@pytest.mark.parametrize("argv,expected", [
    (["--attack", "fgsm"], "--workdir"),
    (["--workdir", "x", "--attack", "flip", "--strengths", "0,2"], "strengths"),
    (["--workdir", "x", "--attack", "fgsm", "--seeds", "0"], "--seeds"),
    (["--workdir", "x"], "--attack"),
    (["--sigmas", "0.2", "--experiment", "mnist_mlp", "--out", "x"], "mnist_mlp"),
])
def test_bad_arguments(argv, expected, capsys):
    with pytest.raises(SystemExit) as error:
        robustness.main(argv)
    assert error.value.code == 2
    assert expected in capsys.readouterr().err


def test_eventdrop_needs_event_inputs(runs, capsys):
    _, nsnn, _ = runs
    with pytest.raises(SystemExit) as error:
        robustness.main(["--workdir", nsnn, "--attack", "eventdrop", "--strengths", "0.1", "--limit", "8"])
    assert error.value.code == 1
    assert "event inputs" in capsys.readouterr().err


class _FakeTask:
    def __init__(self, experiment):
        self.experiment = experiment


@pytest.mark.parametrize("experiment, expected", [
    ("train.cifar", ("per-step", "sphere", "exact", "exact", "rate")),
    ("train.dvs_cifar", ("per-step", "sphere", "exact", "exact", "rate")),
    ("train.dvs_gesture", ("per-step", "sphere", "exact", "exact", "rate")),
    ("train.fmnist", ("static", "zero", "bernoulli", "mixed", "run")),
])
def test_attack_settings_default_to_the_authors_for_vision_runs(experiment, expected):
    names = ("fgsm_sign", "do_start", "flip_mode", "eventdrop_mode", "attack_loss")
    args = robustness.build_parser().parse_args(["--workdir", "x", "--attack", "fgsm"])
    assert tuple(robustness.resolve_settings(_FakeTask(experiment), args)[n] for n in names) == expected
    flags = ["--fgsm-sign", "static", "--do-start", "zero", "--flip-mode", "bernoulli", "--eventdrop-mode", "time",
             "--attack-loss", "run"]
    given = robustness.build_parser().parse_args(["--workdir", "x", "--attack", "fgsm", *flags])
    assert tuple(robustness.resolve_settings(_FakeTask(experiment), given)[n] for n in names) == (
        "static", "zero", "bernoulli", "time", "run")


def test_authors_attacks_run_on_a_static_image_model(runs, tmp_path):
    """Per-step FGSM (sequence inputs scored by the same parameters), DO from the sphere, exact flips."""
    _, nsnn, _ = runs
    common = ["--workdir", nsnn, "--seeds", "1", "--limit", "8", "--batch-size", "8", "--out", str(tmp_path),
              "--attack-loss", "rate", "--samples", "1"]
    fgsm = robustness.main([*common, "--attack", "fgsm", "--strengths", "0,0.3", "--fgsm-sign", "per-step"])["rows"]
    assert fgsm[1]["settings"] == "fgsm_sign=per-step attack_loss=rate"
    assert fgsm[1]["loss_mean"] > fgsm[0]["loss_mean"]  # the attack raises the loss it ascends
    do = robustness.main([*common, "--attack", "do", "--strengths", "0,1.0", "--do-start", "sphere",
                          "--do-steps", "2"])["rows"]
    assert do[1]["settings"] == "do_start=sphere attack_loss=rate"
    flip = robustness.main([*common, "--attack", "flip", "--strengths", "0,0.3", "--flip-mode", "exact"])["rows"]
    assert flip[1]["settings"] == "flip_mode=exact" and flip[1]["loss_mean"] != flip[0]["loss_mean"]
