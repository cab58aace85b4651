"""The NDL spike, the surrogate spike and the LIF scan against plain references.

The noisy LIF: ``m_t = tau u_{t-1} (1 - o_{t-1}) + I_t``, ``u_t = m_t + eps_t``,
``o_t = H(u_t - v_th)``, firing probability ``F(m_t - v_th)``. The reference is
a NumPy loop over these equations fed with the same noise lif_scan draws.
"""

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from nsnn_jax import neuron, noise, sampling, surrogate
from helpers import fast_jit, scipy_law

FAMILIES = sorted(noise.NOISE_FAMILIES)
SCALE = {"gaussian": 0.3, "logistic": 0.2, "uniform": 0.5, "triangular": 0.6, "arctan": 0.15}


# --------------------------------------------------------------------------- helpers




def family_of(name, scale=None):
    """The family ``name`` with its default test scale, or ``scale``."""
    return noise.get_noise(name, SCALE[name] if scale is None else scale)



def currents_of(seed, shape, low=0.1, high=1.1):
    """Random input currents, float64 NumPy."""
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def lif_noise(params, key, shape, dtype):
    """The noise lif_scan draws, ``(eps, eps')`` (``eps'`` only for reference firing):
    ``family.sample`` for the threefry sampler, ``sampling.draw_noise`` otherwise;
    the key is split into (membrane, firing) keys for reference firing."""
    draw = (
        (lambda k: params.noise.sample(k, shape, dtype))
        if params.sampler == "threefry"
        else (lambda k: sampling.draw_noise(params.noise, k, shape, dtype, params.sampler))
    )
    if params.firing == "reference":
        k_membrane, k_firing = jax.random.split(key)
        return draw(k_membrane), draw(k_firing)
    return draw(key), None


@functools.partial(fast_jit, static_argnums=(2,))
def lif_and_noise(currents, key, settings):
    """For each LIFParams in ``settings``: lif_scan (membrane and probability) and
    the noise it drew; one compile for all."""
    return [
        (
            neuron.lif_scan(currents, key, params, return_membrane=True, return_probability=True),
            lif_noise(params, key, currents.shape, currents.dtype),
        )
        for params in settings
    ]


def reference_lif(currents, params, eps=None, eps_firing=None):
    """NumPy loop of the LIF equations; returns ``(spikes, u, probability)``.

    ``eps=None``: deterministic neuron. ``eps_firing``: reference firing, where
    ``u_t = m_t + eps_t`` and the spike is ``H(u_t - v_th + eps'_t)``.
    """
    law = scipy_law(params.noise.name, params.noise.scale) if eps is not None else None
    u = np.zeros(currents.shape[1:])
    o = np.zeros(currents.shape[1:])
    spikes, membranes, probs = [], [], []
    for t in range(currents.shape[0]):
        m = params.tau * u * (1.0 - o) + currents[t]
        if eps is None:
            u, o, p = m, (m - params.v_th > 0).astype(float), (m - params.v_th > 0).astype(float)
        elif eps_firing is None:
            u = m + eps[t]
            o = ((m - params.v_th) + eps[t] > 0).astype(float)  # = H(u_t - v_th)
            p = law.cdf(m - params.v_th)
        else:
            u = m + eps[t]
            o = ((u - params.v_th) + eps_firing[t] > 0).astype(float)
            p = law.cdf(u - params.v_th)
        spikes.append(o), membranes.append(u), probs.append(p)
    return np.stack(spikes), np.stack(membranes), np.stack(probs)


def assert_lif_equal(got, want):
    """Spikes exactly, membranes and probabilities to float64 rounding."""
    spikes, membrane, prob = got
    np.testing.assert_array_equal(spikes, want[0])
    np.testing.assert_allclose(membrane, want[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(prob, want[2], rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- spikes


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("name", FAMILIES)
def test_ndl_spike_forward_is_heaviside_of_noisy_potential(name, dtype):
    """``ndl_spike(v, eps) == H(v + eps)`` exactly, in the dtype of ``v``."""
    rng = np.random.default_rng(0)
    v, eps = rng.normal(size=(2, 50)).astype(np.float32)
    v, eps = jnp.asarray(v, dtype), jnp.asarray(eps, dtype)
    out = neuron.ndl_spike(v, eps, family_of(name))
    assert out.dtype == dtype
    expected = (np.asarray(v + eps).astype(np.float32) > 0).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(out).astype(np.float32), expected)


@pytest.mark.parametrize("name", FAMILIES)
def test_ndl_spike_vjp_is_pdf_times_cotangent(name):
    """Backward of ``ndl_spike``: ``g * p(v)`` for ``v`` (scipy density), zero for
    the noise sample, whatever the sample."""
    family = family_of(name)
    rng = np.random.default_rng(1)
    v, eps, g = rng.normal(scale=0.5, size=(3, 40))
    with jax.enable_x64():
        out, vjp = jax.vjp(lambda v, e: neuron.ndl_spike(v, e, family), jnp.asarray(v), jnp.asarray(eps))
        dv, deps = vjp(jnp.asarray(g))
    np.testing.assert_array_equal(out, (v + eps > 0).astype(float))
    np.testing.assert_allclose(dv, g * scipy_law(name, family.scale).pdf(v), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(deps, np.zeros_like(eps))
    assert np.abs(np.asarray(dv)).max() > 0.1


@pytest.mark.parametrize("form", surrogate.SURROGATES)
def test_sg_spike_forward_heaviside_backward_surrogate(form):
    """``sg_spike(v) == H(v)``; its VJP is ``g * SG(v)``, SG the twin density (scipy)."""
    sg = surrogate.Surrogate(form, 2.5)
    twin = surrogate.matching_noise(sg)
    rng = np.random.default_rng(2)
    v, g = rng.normal(scale=0.5, size=(2, 40))
    with jax.enable_x64():
        out, vjp = jax.vjp(lambda v: neuron.sg_spike(v, sg), jnp.asarray(v))
        (dv,) = vjp(jnp.asarray(g))
    np.testing.assert_array_equal(out, (v > 0).astype(float))
    np.testing.assert_allclose(dv, g * scipy_law(twin.name, twin.scale).pdf(v), rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- lif_scan


@pytest.mark.parametrize("firing", neuron.FIRING_MODES)
@pytest.mark.parametrize("name", FAMILIES)
def test_lif_scan_matches_reference_loop(name, firing):
    """Spikes, membranes ``u_t`` and probabilities equal the NumPy loop fed with the
    same noise, for both samplers (``threefry`` draws with ``family.sample``)."""
    currents = currents_of(3, (6, 3, 4))
    settings = tuple(
        neuron.LIFParams(tau=0.6, v_th=1.0, noise=family_of(name), firing=firing, sampler=sampler)
        for sampler in sampling.SAMPLERS
    )
    with jax.enable_x64():
        results = lif_and_noise(jnp.asarray(currents), jax.random.key(4), settings)
    for params, (out, (eps, eps_firing)) in zip(settings, results):
        got = tuple(np.asarray(x) for x in out)
        eps_firing = None if eps_firing is None else np.asarray(eps_firing)
        assert_lif_equal(got, reference_lif(currents, params, np.asarray(eps), eps_firing))
        assert 0.1 < got[0].mean() < 0.9


@pytest.mark.parametrize("name", FAMILIES)
def test_deterministic_modes_match_reference_loop(name):
    """``deterministic=True`` and ``noise=None`` (no key needed) run the noise-free
    LIF; probabilities are ``H(v)``; the T = 1 gradient is the matching surrogate,
    i.e. the family's density (scipy)."""
    currents = currents_of(5, (6, 3, 4))
    family = family_of(name)
    params = neuron.LIFParams(tau=0.6, v_th=1.0, noise=family)

    @fast_jit
    def run(c):
        kw = dict(return_membrane=True, return_probability=True)
        step1 = jax.grad(lambda c: neuron.lif_scan(c, None, params, deterministic=True).spikes.sum())(c[:1])
        return (
            neuron.lif_scan(c, None, params, deterministic=True, **kw),
            neuron.lif_scan(c, None, params._replace(noise=None), **kw),
            step1,
        )

    with jax.enable_x64():
        deterministic, noiseless, grad = jax.tree.map(np.asarray, run(jnp.asarray(currents)))
    want = reference_lif(currents, params)
    assert_lif_equal(tuple(deterministic), want)
    assert_lif_equal(tuple(noiseless), want)
    np.testing.assert_allclose(grad, scipy_law(name, family.scale).pdf(currents[:1] - 1.0), rtol=1e-12)


@pytest.mark.parametrize("name", FAMILIES)
def test_noise_accumulates_until_first_spike(name):
    """tau = 1, zero input: ``u_t`` is the running sum of the noise up to and
    including the first spike (which is the first time it exceeds v_th); after a
    spike the sum restarts from 0."""
    params = neuron.LIFParams(tau=1.0, v_th=1.0, noise=family_of(name, 2 * SCALE[name]), sampler="threefry")
    shape = (12, 64)
    with jax.enable_x64():
        [(out, (eps, _))] = lif_and_noise(jnp.zeros(shape, jnp.float64), jax.random.key(6), (params,))
    spikes, membrane = np.asarray(out.spikes), np.asarray(out.membrane)
    walk = np.cumsum(np.asarray(eps), axis=0)  # eps = family.sample(key) (threefry)
    fired = spikes.any(0)
    first = np.where(fired, spikes.argmax(0), shape[0] - 1)
    assert fired.mean() > 0.2 and (first[fired] >= 2).any()  # non-trivial walks
    for j in range(shape[1]):
        t = first[j]
        np.testing.assert_allclose(membrane[: t + 1, j], walk[: t + 1, j], rtol=1e-12, atol=1e-12)
        assert np.all(walk[:t, j] <= 1.0) and spikes[:t, j].sum() == 0
        if fired[j] and t + 1 < shape[0]:  # restart: u_{t+1} = eps_{t+1}
            assert membrane[t + 1, j] == pytest.approx(walk[t + 1, j] - walk[t, j], abs=1e-12)


def reference_loss(currents, noise_pair, params, weights):
    """``sum_t w_t . o_t`` through a jnp loop of ndl_spike fed with the same noise;
    reference firing spikes on ``u_t - v_th`` with the second sample ``eps'_t``."""
    eps, eps_firing = noise_pair
    u = jnp.zeros(currents.shape[1:], currents.dtype)
    o = jnp.zeros(currents.shape[1:], currents.dtype)
    total = jnp.zeros((), currents.dtype)
    for t in range(currents.shape[0]):
        reset = jax.lax.stop_gradient(o) if params.detach_reset else o
        m = params.tau * u * (1.0 - reset) + currents[t]
        u = m + eps[t]
        if eps_firing is None:
            o = neuron.ndl_spike(m - params.v_th, eps[t], params.noise)
        else:
            o = neuron.ndl_spike(u - params.v_th, eps_firing[t], params.noise)
        total = total + jnp.sum(weights[t] * o)
    return total


@pytest.mark.parametrize("name", FAMILIES)
def test_gradients_match_a_jnp_loop_and_detach_reset_only_changes_them(name):
    """The gradient of a loss on the spikes equals ``jax.grad`` of a jnp loop of
    the equations (``stop_gradient`` on the reset iff ``detach_reset``; reference
    firing: density at the noisy potential). ``detach_reset`` leaves the spikes
    unchanged but changes the gradient."""
    currents = currents_of(7, (5, 2, 3), 0.4, 1.2)
    weights = np.random.default_rng(8).normal(size=currents.shape)
    base = neuron.LIFParams(tau=0.8, v_th=1.0, noise=family_of(name, 0.6))
    settings = {
        "attached": base,
        "detached": base._replace(detach_reset=True),
        "reference": base._replace(firing="reference"),
    }

    @fast_jit
    def run(c, w, key):
        out = {}
        for tag, p in settings.items():

            def loss(c):
                spikes = neuron.lif_scan(c, key, p).spikes
                return jnp.sum(w * spikes), spikes

            out[f"grad_{tag}"], out[f"spikes_{tag}"] = jax.grad(loss, has_aux=True)(c)
            out[f"want_{tag}"] = jax.grad(reference_loss)(c, lif_noise(p, key, c.shape, c.dtype), p, w)
        return out

    with jax.enable_x64():
        out = jax.tree.map(np.asarray, run(jnp.asarray(currents), jnp.asarray(weights), jax.random.key(9)))
    for tag in settings:
        np.testing.assert_allclose(out[f"grad_{tag}"], out[f"want_{tag}"], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(out["spikes_attached"], out["spikes_detached"])
    assert np.abs(out["grad_attached"] - out["grad_detached"]).max() > 1e-2
    assert 0.1 < out["spikes_attached"].mean() < 0.9


@pytest.mark.parametrize("name", FAMILIES)
def test_keys_determine_spikes_and_vmap_equals_loop(name):
    """Same key, same spikes; another key, other spikes; vmap over keys equals a
    Python loop over them."""
    params = neuron.LIFParams(tau=0.6, v_th=1.0, noise=family_of(name))
    currents = jnp.asarray(currents_of(10, (5, 2, 8)), jnp.float32)
    keys = jax.random.split(jax.random.key(11), 4)
    run = fast_jit(lambda k: neuron.lif_scan(currents, k, params).spikes)
    looped = np.stack([np.asarray(run(k)) for k in keys])
    np.testing.assert_array_equal(np.asarray(jax.vmap(run)(keys)), looped)
    np.testing.assert_array_equal(np.asarray(run(keys[0])), looped[0])
    assert all(not np.array_equal(looped[0], looped[i]) for i in (1, 2, 3))


@pytest.mark.parametrize("firing", neuron.FIRING_MODES)
def test_unrolling_the_time_loop_changes_nothing(firing):
    """Spikes, membranes and gradients are the same for a rolled loop, a partial
    unroll that does not divide T, and the automatic (full) unroll."""
    params = neuron.LIFParams(tau=0.7, noise=family_of("gaussian", 0.5), firing=firing)
    currents = currents_of(12, (7, 2, 3), 0.3, 1.2)
    weights = np.random.default_rng(13).normal(size=currents.shape)
    key = jax.random.key(14)

    @functools.partial(fast_jit, static_argnums=(1,))
    def run(c, unroll):
        def loss(c):
            out = neuron.lif_scan(c, key, params, return_membrane=True, unroll=unroll)
            return jnp.sum(weights * out.spikes), out

        return jax.grad(loss, has_aux=True)(c)

    with jax.enable_x64():  # float64: fusion order within an iteration may differ by an ulp
        currents, weights = jnp.asarray(currents), jnp.asarray(weights)
        rolled = run(currents, 1)
        for unroll in (3, None):
            chex.assert_trees_all_close(run(currents, unroll), rolled, rtol=1e-12, atol=1e-12)
    assert 0.1 < np.asarray(rolled[1].spikes).mean() < 0.9
    assert neuron.scan_unroll(7) == 7 and neuron.scan_unroll(7, 3) == 3 and neuron.scan_unroll(2, 8) == 2
    assert neuron.scan_unroll(neuron.MAX_FULL_UNROLL + 1) == neuron.PARTIAL_UNROLL


@pytest.mark.parametrize("unroll", [0, -1, 2.0, True])
def test_bad_unroll_raises(unroll):
    with pytest.raises(ValueError, match="unroll"):
        neuron.lif_scan(jnp.ones((2, 3)), jax.random.key(0), neuron.LIFParams(), unroll=unroll)


@pytest.mark.parametrize("name", FAMILIES)
def test_trials_with_split_keys_are_independent(name):
    """2000 trials (split keys), 2 neurons, T = 8: spike counts of neighbouring
    trials and of the two neurons of a trial have |correlation| < 4/sqrt(2000)."""
    n = 2000
    params = neuron.LIFParams(tau=0.5, v_th=1.0, noise=family_of(name))
    currents = jnp.full((8, 1, 2), 0.8, jnp.float32)
    counts = np.asarray(
        fast_jit(jax.vmap(lambda k: neuron.lif_scan(currents, k, params).spikes.sum(0)[0]))(
            jax.random.split(jax.random.key(12), n)
        )
    )
    assert counts.std(0).min() > 0.5
    bound = 4 / math.sqrt(n)
    assert abs(np.corrcoef(counts[:-1, 0], counts[1:, 0])[0, 1]) < bound
    assert abs(np.corrcoef(counts[:, 0], counts[:, 1])[0, 1]) < bound


@pytest.mark.parametrize("name", FAMILIES)
def test_vanishing_noise_gives_the_deterministic_lif(name):
    """Scale 1e-4 (Cauchy 1e-8, heavy tails) and potentials >= 0.03 from threshold
    in the noise-free run: the noisy spikes equal the deterministic ones."""
    pattern = np.random.default_rng(0).choice([0.25, 0.6, 1.35], size=(10, 4, 5))
    params = neuron.LIFParams(tau=0.5, v_th=1.0, noise=family_of(name, 1e-8 if name == "arctan" else 1e-4))

    @fast_jit
    def run(c, keys):
        det = neuron.lif_scan(c, None, params, deterministic=True, return_membrane=True)
        return det, jax.vmap(lambda k: neuron.lif_scan(c, k, params).spikes)(keys)

    det, noisy = run(jnp.asarray(pattern, jnp.float32), jax.random.split(jax.random.key(16), 3))
    det_spikes = np.asarray(det.spikes)
    assert np.abs(np.asarray(det.membrane) - 1.0).min() >= 0.03 and 0.2 < det_spikes.mean() < 0.8
    for spikes in np.asarray(noisy):
        np.testing.assert_array_equal(spikes, det_spikes)


@pytest.mark.parametrize("firing", neuron.FIRING_MODES)
def test_outputs_and_gradients_keep_the_current_dtype(firing):
    """bfloat16 currents give bfloat16 spikes, membranes, probabilities and gradients
    (no silent promotion under strict dtype rules)."""
    params = neuron.LIFParams(noise=family_of("gaussian"), firing=firing)
    c = jnp.full((3, 2, 4), 0.9, jnp.bfloat16)

    @fast_jit
    def run(c, key):
        out = neuron.lif_scan(c, key, params, return_membrane=True, return_probability=True)
        return out, jax.grad(lambda c: jnp.sum(neuron.lif_scan(c, key, params).spikes))(c)

    out, grad = run(c, jax.random.key(0))
    assert {x.dtype for x in (*out, grad)} == {jnp.dtype(jnp.bfloat16)}


@pytest.mark.parametrize("name", FAMILIES)
def test_firing_rate_at_t1_is_the_cdf(name):
    """T = 1 over 4000 keys: the firing rate of each current is ``F(I - v_th)``
    (scipy) within 4 binomial standard errors (+ 2^-16 for the 16-bit sampler)."""
    n, v_th = 4000, 1.0
    family = family_of(name)
    offsets = family.scale * np.array([-0.8, -0.3, 0.0, 0.4, 0.9])
    params = neuron.LIFParams(tau=0.5, v_th=v_th, noise=family)
    currents = jnp.asarray((v_th + offsets)[None, None], jnp.float32)
    run = fast_jit(jax.vmap(lambda k: neuron.lif_scan(currents, k, params).spikes[0, 0]))
    rate = np.asarray(run(jax.random.split(jax.random.key(14), n))).mean(0)
    f = scipy_law(name, family.scale).cdf(offsets.astype(np.float32).astype(np.float64))
    assert np.all(np.abs(rate - f) <= 4 * np.sqrt(f * (1 - f) / n) + 2.0**-16), (rate, f)


@pytest.mark.parametrize(
    "name, effective",
    [("gaussian", stats.norm(scale=0.3 * math.sqrt(2))), ("uniform", stats.triang(0.5, -1.0, 2.0))],
)
def test_reference_firing_sees_the_noise_twice(name, effective):
    """``firing='reference'`` at T = 1 fires with the law of ``eps + eps'``:
    N(0, 2 sigma^2) for Gaussian(0.3), triangular on [-2a, 2a] for Uniform(0.5);
    4000 keys, 4 binomial standard errors."""
    n = 4000
    params = neuron.LIFParams(tau=0.5, v_th=1.0, noise=family_of(name), firing="reference")
    offsets = np.array([-0.5, -0.2, 0.0, 0.3, 0.6])
    currents = jnp.asarray((1.0 + offsets)[None, None], jnp.float32)
    run = fast_jit(jax.vmap(lambda k: neuron.lif_scan(currents, k, params).spikes[0, 0]))
    rate = np.asarray(run(jax.random.split(jax.random.key(15), n))).mean(0)
    f = effective.cdf(offsets.astype(np.float32).astype(np.float64))
    assert np.all(np.abs(rate - f) <= 4 * np.sqrt(f * (1 - f) / n) + 2.0**-15), (rate, f)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "currents, key, params, match",
    [
        (np.ones(5, np.float32), "key", neuron.LIFParams(), r"\(5,\)"),
        (np.ones((0, 3), np.float32), "key", neuron.LIFParams(), r"\(0, 3\)"),
        (np.ones((2, 3), np.int32), "key", neuron.LIFParams(), "int32"),
        (np.ones((2, 3), np.float32), None, neuron.LIFParams(), "None"),
        (np.ones((2, 3), np.float32), "key", neuron.LIFParams(tau=1.5), "1.5"),
        (np.ones((2, 3), np.float32), "key", neuron.LIFParams(tau=-0.1), "-0.1"),
        (np.ones((2, 3), np.float32), "key", neuron.LIFParams(tau=math.nan), "nan"),
        (np.ones((2, 3), np.float32), "key", neuron.LIFParams(firing="bogus"), "'bogus'"),
        (np.ones((2, 3), np.float32), "key", neuron.LIFParams(noise="gaussian"), "'gaussian'"),
    ],
    ids=["rank1", "T0", "int", "no-key", "tau>1", "tau<0", "tau-nan", "firing", "noise-str"],
)
def test_bad_input_raises_naming_the_value(currents, key, params, match):
    """Invalid currents, a missing key or invalid settings -> ValueError quoting them."""
    key = jax.random.key(0) if key == "key" else key
    with pytest.raises(ValueError, match=match):
        neuron.lif_scan(jnp.asarray(currents), key, params)
