"""The benchmark commands run end to end on tiny configurations (no timing is asserted)."""

import json

import pytest

from benchmarks import cifar as cifar_bench
from benchmarks import step as step_bench

pytestmark = [pytest.mark.standard_promotion,  # optax inside
              pytest.mark.usefixtures("fast_compilation")]




def last_json_line(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_mlp_step_benchmark_reports_ratios(capsys):
    result = step_bench.main(["--hidden", "8", "--timesteps", "2", "--batch-size", "4", "--rounds", "1", "--steps", "1"])
    assert last_json_line(capsys) == pytest.approx(result)
    assert result["ratio"] > 0 and result["floor_steps_per_s"] > 0


def test_cifar_benchmark_reports_images_per_second_memory_and_remat(capsys):
    result = cifar_bench.main(["--arch", "cifarnet", "--width", "0.0625", "--timesteps", "2", "--batch-size", "2",
                               "--remat", "both", "--rounds", "1", "--steps", "1"])
    printed = last_json_line(capsys)
    assert printed["arch"] == "cifarnet" and printed["timesteps"] == 2
    for name in ("nsnn", "dsnn", "nsnn_remat", "dsnn_remat"):
        assert result[f"{name}_images_per_s"] > 0 and result[f"{name}_ratio"] > 0
        assert result[f"{name}_memory_bytes"] > 0 and result[f"{name}_compile_s"] > 0
    assert result["floor_images_per_s"] > 0


def test_cifar_benchmark_rejects_bad_sizes(capsys):
    with pytest.raises(SystemExit):
        cifar_bench.main(["--timesteps", "0"])
    assert "--timesteps" in capsys.readouterr().err


def test_cifar_benchmark_sweeps_several_timesteps(capsys):
    result = cifar_bench.main(["--arch", "vggsnn", "--width", "0.0625", "--timesteps", "1,2", "--batch-size", "2",
                               "--remat", "on", "--rounds", "1", "--steps", "1"])
    assert [run["timesteps"] for run in result["runs"]] == [1, 2]
    assert all(run["nsnn_remat_memory_bytes"] > 0 for run in result["runs"])
    assert last_json_line(capsys) == result
