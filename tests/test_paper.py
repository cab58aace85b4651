"""``python -m analysis.paper``: the verdict rule, a tiny --quick reproduction and its rerun, --scale paper without data."""

import dataclasses
import json
import os

import numpy as np
import pytest

from analysis.paper import __main__ as paper
from analysis.paper import figures, sections
from analysis.paper import verdict as V
from helpers import make_idx_dir


def test_verdict_rule_on_synthetic_numbers():
    win = V.compare([0.80, 0.81, 0.79], [0.70, 0.71, 0.69])
    assert win.verdict == V.HOLDS and win.difference == pytest.approx(0.10) and win.seeds == 3
    assert V.compare([0.70, 0.71, 0.69], [0.80, 0.81, 0.79]).verdict == V.FAILS
    assert V.compare([0.70, 0.80, 0.75], [0.72, 0.78, 0.74]).verdict == V.UNSURE  # overlap
    assert V.compare([0.9], [0.1]).verdict == V.ONE_SEED  # one seed: never a verdict
    # 'less': a lower loss is the claim
    assert V.compare([1.0, 1.1, 0.9], [2.0, 2.1, 1.9], "less").verdict == V.HOLDS
    assert V.compare([2.0, 2.1, 1.9], [1.0, 1.1, 0.9], "less").verdict == V.FAILS
    # the threshold is 2 pooled std: a difference of 1.5 pooled std is inconclusive
    a, b = [1.0, 2.0, 3.0], [-0.5, 0.5, 1.5]  # pooled std 1, difference 1.5
    assert V.pooled_std(a, b) == pytest.approx(1.0) and V.compare(a, b).verdict == V.UNSURE
    assert V.compare([x + 1.0 for x in a], b).verdict == V.HOLDS  # difference 2.5
    assert V.below([-0.5, -0.6, -0.4], 0.0).verdict == V.HOLDS
    assert V.combine([V.HOLDS, V.HOLDS]) == V.HOLDS
    assert V.combine([V.HOLDS, V.FAILS]) == V.FAILS
    assert V.combine([V.HOLDS, V.ONE_SEED]) == V.ONE_SEED
    with pytest.raises(ValueError, match="direction"):
        V.compare([1.0], [1.0], "up")


@pytest.fixture(scope="module")
def reproduction(tmp_path_factory, fast_compilation):
    root = tmp_path_factory.mktemp("paper")
    data = make_idx_dir(root / "data", n_train=48, n_test=16)
    out = str(root / "out")
    argv = ["--scale", "small", "--quick", "--tiny", "--data-dir", data, "--out", out, "--in-process"]
    first = paper.main(argv)
    return argv, out, first


@pytest.mark.standard_promotion
@pytest.mark.slow
def test_quick_tiny_reproduction_has_every_section_with_numbers(reproduction):
    _, out, first = reproduction
    saved = json.load(open(os.path.join(out, "report.json")))
    assert list(saved["sections"]) == sections.KEYS
    assert saved["step_counts"]["failed"] == 0 and saved["step_counts"]["trained"] > 0
    unavailable = {"table2"} if any("fashion_mnist_dvs" in n for n in saved["notes"]) else set()
    for key, section in saved["sections"].items():
        assert section["claim"] and section["verdict"]
        if key in unavailable:
            assert section["status"].startswith("not measured")
            continue
        assert section["status"] == "measured", (key, section["status"])
        assert section["rows"] and section["parts"]
        assert any(any(ch.isdigit() for ch in cell) for row in section["rows"] for cell in row[1:])
        assert section["verdict"].startswith("inconclusive")  # 1 seed
        assert os.path.getsize(os.path.join(out, section["figure"])) > 5000
    report = open(os.path.join(out, "report.md")).read()
    for section in saved["sections"].values():
        assert section["title"] in report


@pytest.mark.standard_promotion
@pytest.mark.slow
def test_rerun_trains_nothing_again(reproduction, capsys):
    argv, out, first = reproduction
    metrics = {name: os.path.getmtime(os.path.join(out, "runs", name, "metrics.jsonl"))
               for name in os.listdir(os.path.join(out, "runs"))}
    capsys.readouterr()
    second = paper.main(argv)
    assert set(second["steps"].values()) == {"reused"}
    assert f"reused {len(second['steps'])}" in capsys.readouterr().err
    assert {name: os.path.getmtime(os.path.join(out, "runs", name, "metrics.jsonl")) for name in metrics} == metrics
    for key in ("fig5bc", "table7_fig6"):
        assert second["sections"][key]["rows"] == first["sections"][key]["rows"]


def test_a_folder_of_other_settings_is_refused(reproduction, capsys):
    argv, out, _ = reproduction
    with pytest.raises(SystemExit, match="other settings"):
        paper.main([a for a in argv if a != "--tiny"])


def test_a_folder_whose_settings_changed_is_refused(tmp_path):
    """Same scale and seeds, one epoch more: the old runs must not be reused (their names lack the epochs)."""
    from analysis.paper import plan as plan_lib

    out = str(tmp_path)
    paper.check_folder(out, paper.folder_record(plan_lib.TINY))
    paper.check_folder(out, paper.folder_record(plan_lib.TINY))  # read back (tuples as lists): the same settings
    changed = dataclasses.replace(plan_lib.TINY, dvs_epochs=plan_lib.TINY.dvs_epochs + 1)
    with pytest.raises(SystemExit, match="other settings"):
        paper.check_folder(out, paper.folder_record(changed))


def test_paper_scale_without_data_names_what_is_missing(tmp_path, capsys):
    empty = tmp_path / "data"
    empty.mkdir()
    with pytest.raises(SystemExit) as error:
        paper.main(["--scale", "paper", "--data-dir", str(empty), "--out", str(tmp_path / "out")])
    assert error.value.code == 1
    err = capsys.readouterr().err
    for name in ("cifar-10-python.tar.gz", "cifar-100-python", "cifar10_dvs", "dvs_gesture"):
        assert name in err
    assert str(empty) in err


def test_paper_scale_on_a_cpu_lists_the_commands(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "cifar10").mkdir(parents=True)
    result = paper.main(["--scale", "paper", "--data-dir", str(data), "--out", str(tmp_path / "out"), "--seeds", "2"])
    assert result["backend"] == "cpu" and not result["started"]
    assert set(result["missing"]) == {"cifar100", "cifar10_dvs", "dvs_gesture"}
    printed = capsys.readouterr().out
    assert "python -m train.cifar --dataset cifar10 --arch cifarnet --algorithm stbp --neuron noisy" in printed
    # 6 CIFAR-10 rows of Table 1 (NSNN and DSNN) x T = 2, 4 x 2 seeds
    assert len(result["commands"]) == 6 * 2 * 2 and result["estimated_cpu_hours"] > 0
    rows = result["table1"]["rows"]
    assert ["cifar10", "yes", "stbp", "cifarnet", "2", "93.90 +- 0.12", "not run"] in rows
    assert not os.path.exists(tmp_path / "out" / "runs")


def test_event_nets_take_their_own_image_limits_or_the_conv_ones():
    from analysis.paper import plan as plan_lib

    have = {"conv": True, "dvs": True}

    def dvs_args(settings):
        step = next(s for s in plan_lib.Plan(settings, "OUT", None, have).steps if s.module == "train.dvs_cifar")
        args = list(step.args)
        return step.name, args[args.index("--train-limit") + 1], args[args.index("--test-limit") + 1]

    own = dataclasses.replace(plan_lib.TINY, conv_images=300, conv_test_images=60, dvs_images=40, dvs_test_images=20)
    name, train, test = dvs_args(own)
    assert (train, test) == ("40", "20") and "-n40-" in name
    inherited = dataclasses.replace(own, dvs_images=0, dvs_test_images=0)
    name, train, test = dvs_args(inherited)
    assert (train, test) == ("300", "60") and "-n300-" in name


def test_fig5a_shows_the_neurons_that_differ_between_the_two_trials_first():
    spikes = np.zeros((2, 3, 6), np.uint8)  # uint8 as the report stores them: counts must not wrap when negated
    spikes[:, :, 0] = 1                    # fires at every step of both trials: no variability
    spikes[0, :2, 3] = 1                   # differs in two steps
    spikes[1, 0, 5] = 1                    # differs in one step
    spikes[:, 1, 2] = 1                    # same in both trials
    assert figures.differing_first(spikes, 2).tolist() == [3, 5]
    assert figures.differing_first(spikes, 3).tolist() == [0, 3, 5]   # then the most active
    assert figures.differing_first(spikes, 10).tolist() == list(range(6))
