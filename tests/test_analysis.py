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


def test_trials_from_vmap_equal_a_python_loop_and_chunking():
    """sample_trials (vmapped, chunked) equals applying the model with each split key in turn."""
    model, variables, x = tiny_model()
    key = jax.random.key(7)
    result = trials.sample_trials(model, variables, x, key, 6, layers=["lif0", "lif1"])
    chunked = trials.sample_trials(model, variables, x, key, 6, layers=["lif0", "lif1"], max_bytes=1)
    for i, trial_key in enumerate(jax.random.split(key, 6)):
        out, state = model.apply(variables, x, rngs={"noise": trial_key}, mutable=["spikes"])
        np.testing.assert_array_equal(result.spikes["lif1"][i], state["spikes"]["lif1"]["spikes"][0])
        np.testing.assert_array_equal(result.spikes["lif0"][i], state["spikes"]["lif0"]["spikes"][0])
        np.testing.assert_allclose(result.outputs[i], out, rtol=1e-6)
    chex.assert_trees_all_close(result._asdict(), chunked._asdict())
    assert result.predictions.shape == (6, 4, 3)
    np.testing.assert_allclose(result.predictions.sum(-1), 1.0, rtol=1e-5)
    assert not np.array_equal(result.spikes["lif1"][0], result.spikes["lif1"][1])


def test_trials_default_layer_and_errors():
    model, variables, x = tiny_model()
    assert trials.spiking_layers(model, variables, x) == ["lif0", "lif1"]
    result = trials.sample_trials(model, variables, x, jax.random.key(0), 2)
    assert list(result.spikes) == ["lif1"] and result.spikes["lif1"].shape == (2, 5, 4, 6)
    with pytest.raises(ValueError, match="lif9"):
        trials.sample_trials(model, variables, x, jax.random.key(0), 2, layers=["lif9"])
    with pytest.raises(ValueError, match="n_trials"):
        trials.sample_trials(model, variables, x, jax.random.key(0), 0)


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
