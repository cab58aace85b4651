"""Trial sampling, Fano factor, stability, Pearson, JPSTH, the SSF task and the analysis commands."""

import json
import math
import os

import chex
import jax
import numpy as np
import pytest

from analysis import fano as fano_cmd
from analysis import jpsth as jpsth_cmd
from analysis import stats
from nsnn_jax import models, neuron, noise, trials


def bernoulli_spikes(p, n_trials, timesteps, seed=0):
    """(N, T, B=1, K) spikes, neuron k firing i.i.d. with probability p[k]."""
    rng = np.random.default_rng(seed)
    return (rng.random((n_trials, timesteps, 1, len(p))) < np.asarray(p)).astype(np.uint8)


def test_fano_factor_of_bernoulli_trains_is_one_minus_p():
    """Counts of T Bernoulli(p) steps are Binomial(T, p): FF = 1 - p (closed form)."""
    p = np.array([0.1, 0.3, 0.5, 0.8])
    result = stats.fano_factor(stats.spike_counts(bernoulli_spikes(p, 8000, 20)))
    # the FF estimate's standard error is about FF * sqrt(2 / N) < 0.016 here
    np.testing.assert_allclose(result.per_neuron[0], 1 - p, atol=0.05)
    assert not result.silent.any()


def test_fano_factor_constant_and_silent_neurons():
    """A neuron firing at every step has FF 0; a silent one is flagged, never NaN."""
    spikes = np.zeros((50, 10, 1, 3), np.uint8)
    spikes[:, :, :, 0] = 1
    spikes[:, ::2, :, 1] = 1
    result = stats.fano_factor(stats.spike_counts(spikes))
    np.testing.assert_array_equal(result.per_neuron[0], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(result.silent[0], [False, False, True])
    assert np.isfinite(result.per_sample).all() and result.active_samples[0]
    all_silent = stats.fano_factor(np.zeros((5, 2, 4)))
    assert not all_silent.active_samples.any() and np.all(all_silent.per_sample == 0)


def test_fano_factor_rejects_single_trial():
    with pytest.raises(ValueError, match="N >= 2"):
        stats.fano_factor(np.ones((1, 3, 4)))


def test_prediction_stability_against_brute_force():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(5), size=(7, 3))  # (N=7, B=3, C=5)
    brute = np.zeros(3)
    for b in range(3):
        sims = [p[i, b] @ p[j, b] / np.linalg.norm(p[i, b]) / np.linalg.norm(p[j, b])
                for i in range(7) for j in range(7) if i != j]
        brute[b] = np.mean(sims)
    np.testing.assert_allclose(stats.prediction_stability(p), brute, rtol=1e-12)
    same = np.broadcast_to(p[:1], p.shape)
    np.testing.assert_allclose(stats.prediction_stability(same), 1.0)
    orthogonal = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    np.testing.assert_allclose(stats.prediction_stability(orthogonal), 0.0)


def test_pearson_hand_computed():
    """x = 1..5, y = 2,4,5,4,5: Sxy = 6, Sxx = 10, Syy = 6, r = 6/sqrt(60);
    t = r sqrt(3 / (1 - r^2)) = sqrt(4.5) with 3 dof, two-sided p = 0.1240 (t table)."""
    r, p = stats.pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5])
    assert r == pytest.approx(6 / math.sqrt(60), abs=1e-12)
    assert p == pytest.approx(0.12402706265755777, abs=1e-9)


def test_pearson_matches_scipy_on_random_data():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    x = rng.normal(size=40)
    y = 0.3 * x + rng.normal(size=40)
    r, p = stats.pearson(x, y)
    ref = scipy_stats.pearsonr(x, y)
    assert r == pytest.approx(ref.statistic, abs=1e-12) and p == pytest.approx(ref.pvalue, rel=1e-8)


def test_pearson_rejects_constant_input():
    with pytest.raises(ValueError, match="constant"):
        stats.pearson([1, 1, 1], [1, 2, 3])


def test_jpsth_independent_neurons_near_zero_copied_neuron_one():
    rng = np.random.default_rng(2)
    n, t = 4000, 5
    trains = (rng.random((n, t, 3)) < 0.3).astype(np.uint8)
    trains[:, :, 2] = trains[:, :, 0]  # neuron 2 copies neuron 0
    j = stats.jpsth(trains)
    assert j.shape == (3, 3, t, t)
    bound = 5 / math.sqrt(n)
    assert np.abs(j[0, 1]).max() < bound  # independent pair, every (u, v)
    np.testing.assert_allclose(np.diag(j[0, 2]), 1.0, atol=1e-12)  # copy at equal times
    off_time = j[0, 2][~np.eye(t, dtype=bool)]
    assert np.abs(off_time).max() < bound  # i.i.d. in time


def test_jpsth_zero_variance_is_zero_not_nan():
    trains = np.zeros((10, 4, 2))
    trains[:, :, 1] = 1
    assert np.all(stats.jpsth(trains) == 0)
    with pytest.raises(ValueError, match="16"):
        stats.jpsth(np.zeros((3, 2, 17)))


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
