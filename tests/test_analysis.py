"""Trial sampling, the SSF task and the analysis commands (the statistics: test_stats.py)."""

import json
import os

import chex
import jax
import numpy as np
import pytest

from analysis import fano as fano_cmd
from analysis import jpsth as jpsth_cmd
from nsnn_jax import models, neuron, noise, trials


def tiny_model():
    params = neuron.LIFParams(noise=noise.Gaussian(0.4))
    model = models.get_model("mlp", hidden=(12, 6), outputs=3, timesteps=5, neuron=params)
    x = jax.random.uniform(jax.random.key(0), (4, 10)) * 2
    variables = model.init({"params": jax.random.key(1), "noise": jax.random.key(2)}, x)
    return model, {"params": variables["params"]}, x


@pytest.mark.usefixtures("fast_compilation")
def test_trials_equal_a_python_loop_whatever_the_chunk_and_width():
    """Trial i is the model applied with split(key, n)[i]: in chunks, vectorised or not, on a mesh or not."""
    model, variables, x = tiny_model()
    key = jax.random.key(7)
    result = trials.sample_trials(model, variables, x, key, 6, layers=["lif0", "lif1"], chunk=6)
    for i, trial_key in enumerate(jax.random.split(key, 6)):
        out, state = model.apply(variables, x, rngs={"noise": trial_key}, mutable=["spikes"])
        np.testing.assert_array_equal(result.spikes["lif1"][i], state["spikes"]["lif1"]["spikes"][0])
        np.testing.assert_array_equal(result.spikes["lif0"][i], state["spikes"]["lif0"]["spikes"][0])
        np.testing.assert_allclose(result.outputs[i], out, rtol=1e-6)
    mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("data",))
    for options in (dict(vector_width=4, chunk=6), dict(vector_width=6, chunk=6), dict(mesh=mesh, chunk=2)):
        other = trials.sample_trials(model, variables, x, key, 6, layers=["lif0", "lif1"], **options)
        for name in ("lif0", "lif1"):
            np.testing.assert_array_equal(other.spikes[name], result.spikes[name], err_msg=str(options))
        np.testing.assert_allclose(other.outputs, result.outputs, rtol=1e-6, err_msg=str(options))
    assert result.predictions.shape == (6, 4, 3)
    np.testing.assert_allclose(result.predictions.sum(-1), 1.0, rtol=1e-5)
    assert not np.array_equal(result.spikes["lif1"][0], result.spikes["lif1"][1])


@pytest.mark.usefixtures("fast_compilation")
def test_a_second_call_with_the_same_shapes_compiles_nothing():
    model, variables, x = tiny_model()
    sampler = trials.trial_sampler(model, variables, x, ["lif1"])
    first = trials.sample_trials(model, variables, x, jax.random.key(0), 5, layers=["lif1"])
    traces = sampler.traces
    assert traces >= 1
    other_values = jax.tree.map(lambda a: a * 0.5, variables)
    second = trials.sample_trials(model, other_values, x + 1, jax.random.key(1), 5, layers=["lif1"])
    assert trials.trial_sampler(model, variables, x, ["lif1"]) is sampler and sampler.traces == traces
    assert not np.array_equal(first.outputs, second.outputs)


def tiny_conv():
    params = neuron.LIFParams(noise=noise.Gaussian(0.4))
    model = models.get_model("cifarnet", neuron=params, timesteps=2, width=1 / 64, outputs=3)
    x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
    variables = model.init({"params": jax.random.key(1), "noise": jax.random.key(2)}, x)
    return model, {"params": variables["params"]}, x


@pytest.mark.usefixtures("fast_compilation")
def test_conv_chunks_keep_the_compiled_plan_within_a_small_budget():
    """The chosen chunk's own XLA memory analysis (activations and noise too) fits the budget; below one trial: an error."""
    model, variables, x = tiny_conv()
    sampler = trials.TrialSampler(model, variables, x, layers=["conv0/lif", "conv4/lif"], memory_budget=1 << 40)
    one, two, three = (sampler.planned_bytes(c) for c in (1, 2, 3))
    assert three > two
    budget = two + 2 * (three - two) + (three - two) // 2  # room for 4 trials, not 5
    chunk = sampler.plan(6, budget)
    assert chunk == 3 and sampler.planned_bytes(chunk) <= budget  # two balanced chunks
    key = jax.random.key(3)
    planned = sampler(variables, x, key, 6, chunk=chunk)
    single = sampler(variables, x, key, 6, chunk=1)
    for name in planned.spikes:
        np.testing.assert_array_equal(planned.spikes[name], single.spikes[name])
    assert not np.array_equal(planned.spikes["conv0/lif"][0], planned.spikes["conv0/lif"][1])
    with pytest.raises(ValueError, match="memory budget"):
        sampler.plan(6, one - 1)


@pytest.mark.usefixtures("fast_compilation")
def test_chunks_stay_within_the_target_size_under_a_large_budget():
    """A huge budget still gives chunks of at most chunk_target_bytes, or one trial if that alone is larger."""
    model, variables, x = tiny_conv()
    sampler = trials.TrialSampler(model, variables, x, memory_budget=1 << 40)
    one, two, three = (sampler.planned_bytes(c) for c in (1, 2, 3))
    sampler.chunk_target_bytes = two + (three - two) // 2  # room for 2 trials, not 3
    chunk = sampler.plan(8)
    assert chunk == 2 and sampler.planned_bytes(chunk) <= sampler.chunk_target_bytes
    sampler.chunk_target_bytes = one - 1
    assert sampler.plan(9) == 1
    sampler.chunk_target_bytes = 1 << 40
    assert sampler.plan(10) == 10


@pytest.mark.usefixtures("fast_compilation")
def test_a_budget_smaller_than_one_trial_is_a_clear_error():
    model, variables, x = tiny_model()
    with pytest.raises(ValueError, match="memory budget"):
        trials.sample_trials(model, variables, x, jax.random.key(0), 10, memory_budget=1000)
    with pytest.raises(ValueError, match="memory_budget"):
        trials.TrialSampler(model, variables, x, memory_budget=0)


@pytest.mark.standard_promotion
def test_sine_forecasting_learns(tmp_path, capsys):
    """SSF (32fc-16fc, T = 48): 320 Adam steps bring the test MSE below 0.05.

    Predicting 0 gives 0.5; the command's default run reaches ~0.016.
    """
    from train import sine
    from train.common import restore
    workdir = str(tmp_path / "run")
    sine.main(["--workdir", workdir, "--epochs", "5"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("final test_mse=")
    final_mse = float(last.split()[1].split("=")[1])  # "final test_mse=X (best epoch E: Y, ...)"
    assert final_mse < 0.05
    # The registry rebuilds the run from its folder: the same test MSE from the checkpoint.
    assert restore.evaluate_run(workdir)["test_mse"] == pytest.approx(final_mse, abs=1e-6)


@pytest.mark.standard_promotion
def test_fano_and_jpsth_commands_on_a_trained_run(tmp_path, capsys):
    from helpers import TINY, make_idx_dir
    from train import fmnist
    data = make_idx_dir(tmp_path / "data")
    workdir = str(tmp_path / "run")
    fmnist.main(["--data-dir", data, "--workdir", workdir, *TINY])
    result = fano_cmd.main(["--workdir", workdir, "--samples", "20", "--trials", "10"])
    saved = json.load(open(os.path.join(workdir, "analysis", "fano.json")))
    assert saved["samples"] == 20 and saved["trials"] == 10 and saved["layer"] == "lif0"
    assert len(saved["fano_factor_per_sample"]) == 20
    assert saved["mean_stability"] == pytest.approx(result["mean_stability"])
    for figure in saved["figures"]:
        assert os.path.getsize(figure) > 1000
    jp = jpsth_cmd.main(["--workdir", workdir, "--trials", "50", "--neurons", "4"])
    assert np.asarray(jp["jpsth"]).shape == (4, 4, 2, 2)
    assert "wrote" in capsys.readouterr().out


def test_analysis_errors_are_clear(tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        fano_cmd.main(["--workdir", str(tmp_path / "nope")])
    assert error.value.code == 1 and "config.json" in capsys.readouterr().err


@pytest.mark.standard_promotion
def test_checkpoint_of_another_model_is_a_clear_error(tmp_path, capsys):
    """A config.json that no longer matches its checkpoint (other widths) exits 1 and says so."""
    from helpers import TINY, make_idx_dir
    from train import fmnist
    data = make_idx_dir(tmp_path / "data")
    workdir = str(tmp_path / "run")
    fmnist.main(["--data-dir", data, "--workdir", workdir, *TINY[:-2], "--epochs", "1"])
    path = os.path.join(workdir, "config.json")
    config = json.load(open(path))
    config["hidden"] = [32]
    json.dump(config, open(path, "w"))
    capsys.readouterr()
    with pytest.raises(SystemExit) as error:
        fano_cmd.main(["--workdir", workdir, "--samples", "5", "--trials", "2"])
    assert error.value.code == 1 and "does not match" in capsys.readouterr().err


def test_jpsth_chooses_the_neurons_that_vary_across_trials_not_saturated_ones():
    trials, steps = 200, 3
    rng = np.random.default_rng(0)
    saturated = np.ones((trials, steps, 2))                      # fire at every step of every trial
    silent = np.zeros((trials, steps, 1))
    varying = (rng.random((trials, steps, 2)) < np.array([0.5, 0.3])).astype(float)
    trains = np.concatenate([saturated, varying, silent], axis=-1)  # neurons 0, 1 saturated; 2, 3 vary
    np.testing.assert_array_equal(jpsth_cmd.choose_neurons(trains, 2, "variable"), [2, 3])
    np.testing.assert_array_equal(jpsth_cmd.choose_neurons(trains, 2, "active"), [0, 1])
    np.testing.assert_array_equal(jpsth_cmd.choose_neurons(trains, 16), np.arange(5))  # a small layer: all of it
    with pytest.raises(ValueError, match="select"):
        jpsth_cmd.choose_neurons(trains, 2, "loud")
