"""analysis.stats: Fano factor, prediction stability, Pearson, JPSTH; checked by hand and against scipy."""

import math

import numpy as np
import pytest
from scipy import spatial as scipy_spatial
from scipy import stats as scipy_stats

from analysis import stats


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


@pytest.mark.parametrize("seed", [0, 1])
def test_fano_factor_matches_scipy_variance_over_mean(seed):
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rng.uniform(0.5, 6.0, (1, 3, 5)), (30, 3, 5))
    counts[:, 0, 0] = 0  # a silent neuron
    result = stats.fano_factor(counts)
    for b in range(3):
        for k in range(5):
            column = counts[:, b, k]
            expected = 0.0 if column.mean() == 0 else scipy_stats.tvar(column) / column.mean()
            assert result.per_neuron[b, k] == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_prediction_stability_matches_scipy_cosine_distances():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(4), size=(6, 2))  # (N=6, B=2, C=4)
    for b in range(2):
        expected = 1.0 - scipy_spatial.distance.pdist(p[:, b], metric="cosine").mean()
        assert stats.prediction_stability(p)[b] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("n,slope", [(5, 0.0), (12, 0.8), (200, -0.1)])
def test_pearson_r_and_p_match_scipy(n, slope):
    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    y = slope * x + rng.normal(size=n)
    r, p = stats.pearson(x, y)
    ref = scipy_stats.pearsonr(x, y)
    assert r == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-9)


def test_pearson_of_a_perfect_line_has_p_zero():
    r, p = stats.pearson([1.0, 2.0, 3.0, 4.0], [3.0, 5.0, 7.0, 9.0])
    assert r == pytest.approx(1.0) and p == 0.0


def test_jpsth_matches_scipy_pearson_per_neuron_step_pair():
    rng = np.random.default_rng(4)
    n, t, k = 60, 3, 3
    trains = (rng.random((n, t, k)) < 0.4).astype(np.uint8)
    trains[:, 1, 2] = trains[:, 0, 0] ^ (rng.random(n) < 0.2)  # correlated with neuron 0 at step 0
    trains[:, 2, 1] = 1  # no variance: reported as 0
    j = stats.jpsth(trains)
    for i in range(k):
        for jj in range(k):
            for u in range(t):
                for v in range(t):
                    a, b = trains[:, u, i], trains[:, v, jj]
                    if a.std() == 0 or b.std() == 0:
                        assert j[i, jj, u, v] == 0.0
                    else:
                        expected = scipy_stats.pearsonr(a, b).statistic
                        assert j[i, jj, u, v] == pytest.approx(expected, abs=1e-12)
