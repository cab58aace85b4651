"""Input attacks, random baselines, spike flips and EventDrop."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import fast_jit
from nsnn_jax import layers, losses, models, neuron, noise, perturb


# ----------------------------------------------------------------------------- helpers


def _softmax_regression(key, batch=8, features=(4, 5), classes=3):
    """A linear softmax model: data, labels, weights and its batch-mean CE loss."""
    kx, kw, kb, ky = jax.random.split(key, 4)
    d = math.prod(features)
    x = jax.random.normal(kx, (batch,) + features)
    w = jax.random.normal(kw, (d, classes))
    b = jax.random.normal(kb, (classes,))
    labels = jax.random.randint(ky, (batch,), 0, classes)

    def per_example(x_, key=None):
        del key
        logits = x_.reshape((x_.shape[0], -1)) @ w + b
        return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1)[:, 0]

    return x, labels, w, b, per_example


def _closed_form_gradient(x, labels, w, b):
    """d mean_i CE(softmax(x_i W + b), y_i) / dx = (softmax - onehot) W^T / B, in numpy float64."""
    x2 = np.asarray(x, np.float64).reshape((x.shape[0], -1))
    w64, b64 = np.asarray(w, np.float64), np.asarray(b, np.float64)
    logits = x2 @ w64 + b64
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    onehot = np.eye(w.shape[1])[np.asarray(labels)]
    return ((p - onehot) @ w64.T / x.shape[0]).reshape(x.shape)


def _noisy_mlp(timesteps=4, hidden=(16,), features=12, classes=3):
    model = models.SpikingMLP(
        hidden=hidden,
        outputs=classes,
        timesteps=timesteps,
        neuron=neuron.LIFParams(noise=noise.Gaussian(0.5), sampler="threefry"),
    )
    x = jax.random.uniform(jax.random.key(1), (4, features), minval=0.0, maxval=2.0)
    variables = model.init(jax.random.key(2), x)
    return model, variables, x


# ----------------------------------------------------------------------------- FGSM


def test_fgsm_moves_every_entry_by_gamma_along_closed_form_gradient(key):
    x, labels, w, b, per_example = _softmax_regression(key)
    loss_fn = lambda x_, k: jnp.mean(per_example(x_))
    gamma = 0.1
    x_adv = perturb.fgsm(loss_fn, x, gamma)
    expected_sign = np.sign(_closed_form_gradient(x, labels, w, b))
    assert np.all(expected_sign != 0)
    step = np.asarray(x_adv, np.float64) - np.asarray(x, np.float64)
    np.testing.assert_allclose(step, gamma * expected_sign, atol=1e-6)
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert float(loss_fn(x_adv, None)) > float(loss_fn(x, None))


def test_fgsm_clip(key):
    x, _, _, _, per_example = _softmax_regression(key)
    loss_fn = lambda x_, k: jnp.mean(per_example(x_))
    x_adv = perturb.fgsm(loss_fn, x, 0.5, clip=(-1.0, 1.0))
    np.testing.assert_array_equal(x_adv, jnp.clip(perturb.fgsm(loss_fn, x, 0.5), -1.0, 1.0))
    assert float(jnp.max(jnp.abs(x_adv))) <= 1.0


def test_fgsm_eot_is_sign_of_mean_of_single_key_gradients():
    """EOT with K keys equals the sign of the mean of K gradients computed one key at a time."""
    model, variables, x = _noisy_mlp()
    labels = jnp.array([0, 1, 2, 0])

    def loss_fn(x_, k):
        out = model.apply(variables, x_, deterministic=False, rngs={"noise": k})
        return jnp.mean(losses.rate_cross_entropy(out, labels))

    key, gamma, samples = jax.random.key(7), 0.05, 4
    attack = fast_jit(lambda x_, k, n: perturb.fgsm(loss_fn, x_, gamma, key=k, samples=n), static_argnums=2)
    x_adv = attack(x, key, samples)

    grad_fn = fast_jit(jax.grad(loss_fn))
    grads = [np.asarray(grad_fn(x, k), np.float64) for k in jax.random.split(key, samples)]
    mean = np.mean(grads, axis=0)
    assert np.any(mean != 0)
    clear = np.abs(mean) > 1e-6 * np.max(np.abs(mean))  # signs of near-zero means depend on summation order
    step = np.asarray(x_adv - x, np.float64)
    np.testing.assert_allclose(step[clear], gamma * np.sign(mean[clear]), atol=1e-6)
    # single keys disagree with each other, so the average matters
    assert not np.array_equal(np.sign(grads[0]), np.sign(grads[1]))
    single = np.asarray(attack(x, key, 1) - x, np.float64)
    g = np.asarray(grad_fn(x, key), np.float64)
    clear = np.abs(g) > 1e-6 * np.max(np.abs(g))
    np.testing.assert_allclose(single[clear], gamma * np.sign(g[clear]), atol=1e-6)


# ----------------------------------------------------------------------------- DO and random baselines


@pytest.mark.standard_promotion
def test_direct_optimisation_norm_and_beats_random_sphere(key):
    x, _, _, _, per_example = _softmax_regression(key, batch=8)
    loss_fn = lambda x_, k: jnp.mean(per_example(x_))
    gamma = 0.5
    attack = fast_jit(
        lambda x_, steps: perturb.direct_optimisation(loss_fn, x_, gamma, steps=steps), static_argnums=1
    )
    x_do = attack(x, 30)
    norms = np.linalg.norm(np.asarray(x_do - x, np.float64).reshape(8, -1), axis=1)
    np.testing.assert_allclose(norms, gamma, rtol=1e-5)

    random_losses = []
    for k in jax.random.split(jax.random.key(3), 10):
        x_rand = perturb.random_sphere(x, k, gamma)
        np.testing.assert_allclose(
            np.linalg.norm(np.asarray(x_rand - x, np.float64).reshape(8, -1), axis=1), gamma, rtol=1e-5
        )
        random_losses.append(np.asarray(per_example(x_rand)))
    random_mean = np.mean(random_losses, axis=0)  # (B,)
    do_losses = np.asarray(per_example(x_do))
    assert do_losses.mean() > random_mean.mean() + 0.1, (do_losses.mean(), random_mean.mean())
    assert np.all(do_losses > random_mean)
    # more Adam steps climb further than the first projected step
    x_one = attack(x, 1)
    assert float(loss_fn(x_do, None)) > float(loss_fn(x_one, None))


@pytest.mark.standard_promotion
def test_direct_optimisation_is_per_example(key):
    """With a summed loss, an example's perturbation does not depend on the rest of the batch."""
    x, _, _, _, per_example = _softmax_regression(key, batch=4)
    loss_fn = lambda x_, k: jnp.sum(per_example(x_))
    batch = perturb.direct_optimisation(loss_fn, x, 0.3, steps=5)
    first_only = lambda x0, k: per_example(jnp.concatenate([x0, x[1:]]))[0]  # example 0's loss alone
    alone = perturb.direct_optimisation(first_only, x[:1], 0.3, steps=5)
    np.testing.assert_allclose(batch[:1], alone, rtol=1e-5, atol=1e-6)


@pytest.mark.standard_promotion
def test_direct_optimisation_zero_gradient_and_time_major_batch_axis():
    """An example the loss ignores still gets norm gamma; batch_axis=1 norms per (T, B) example."""
    x = jax.random.normal(jax.random.key(0), (3, 2, 5))  # (T, B, D)
    loss_fn = lambda x_, k: jnp.sum(jnp.square(x_[:, 0] - 1.0))  # example 1 has zero gradient
    x_do = perturb.direct_optimisation(loss_fn, x, 0.7, steps=3, batch_axis=1)
    dx = np.asarray(x_do - x, np.float64)
    np.testing.assert_allclose(np.linalg.norm(dx.transpose(1, 0, 2).reshape(2, -1), axis=1), 0.7, rtol=1e-5)
    np.testing.assert_allclose(dx[:, 1], 0.7 / math.sqrt(15), rtol=1e-5)


@pytest.mark.standard_promotion
def test_direct_optimisation_eot_on_noisy_model_uses_fresh_keys():
    model, variables, x = _noisy_mlp()
    labels = jnp.array([0, 1, 2, 0])

    def loss_fn(x_, k):
        return jnp.mean(losses.rate_cross_entropy(
            model.apply(variables, x_, deterministic=False, rngs={"noise": k}), labels
        ))

    attack = fast_jit(lambda k: perturb.direct_optimisation(loss_fn, x, 0.4, key=k, samples=2, steps=3))
    a, b, c = attack(jax.random.key(5)), attack(jax.random.key(5)), attack(jax.random.key(6))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(a - x, np.float64), axis=1), 0.4, rtol=1e-5)


def test_add_gaussian_std(key):
    x = jnp.zeros((200, 500))
    y = perturb.add_gaussian(x, key, 0.3)
    # std of 1e5 samples: relative standard error ~ 1 / sqrt(2 n) = 2.2e-3
    assert abs(float(jnp.std(y)) / 0.3 - 1.0) < 5 * 2.3e-3
    np.testing.assert_array_equal(perturb.add_gaussian(x, key, 0.0), x)


# ----------------------------------------------------------------------------- spike flips


def test_flip_beta_zero_is_identity_and_needs_no_flip_key():
    model, variables, x = _noisy_mlp()
    rngs = {"noise": jax.random.key(3)}
    plain = model.apply(variables, x, rngs=rngs)
    with perturb.flip_spikes(0.0):
        inside = model.apply(variables, x, rngs=rngs)  # no 'flip' stream: nothing is drawn
    np.testing.assert_array_equal(plain, inside)
    s = jnp.array([0.0, 1.0, 1.0])
    assert perturb.flip(s, None, 0.0) is s


def test_flip_rate_matches_beta():
    """Flips of a deterministic layer: 1.28e5 spikes, beta = 0.1, 5-sigma bound (sigma = 8.4e-4)."""
    layer = layers.SpikingNeuron(neuron.LIFParams(noise=None), deterministic=True)
    currents = jax.random.normal(jax.random.key(0), (10, 100, 128)) + 0.8
    plain = layer.apply({}, currents)
    with perturb.flip_spikes(0.1):
        flipped = layer.apply({}, currents, rngs={"flip": jax.random.key(1)})
    assert 0.05 < float(jnp.mean(plain)) < 0.95  # both flip directions occur
    rate = float(jnp.mean(flipped != plain))
    sigma = math.sqrt(0.1 * 0.9 / plain.size)
    assert abs(rate - 0.1) < 5 * sigma, rate
    assert set(np.unique(np.asarray(flipped))) <= {0.0, 1.0}
    # both directions are flipped at the rate beta
    ones = np.asarray(plain) == 1
    for group in (ones, ~ones):
        diff = np.asarray(flipped != plain)[group]
        assert abs(diff.mean() - 0.1) < 5 * math.sqrt(0.09 / group.sum())
    # the pure function: beta = 1 flips everything
    np.testing.assert_array_equal(perturb.flip(plain, jax.random.key(2), 1.0), 1.0 - plain)


def test_flips_reach_later_layers_and_are_reproducible_under_jit():
    model = models.SpikingMLP(hidden=(32, 32), outputs=4, timesteps=4, neuron=neuron.LIFParams(noise=None))
    x = jax.random.uniform(jax.random.key(0), (8, 10), minval=0.0, maxval=2.0)
    variables = model.init(jax.random.key(1), x, deterministic=True)

    def forward(flip_key, beta):
        with perturb.flip_spikes(beta):
            return model.apply(
                variables, x, deterministic=True, rngs={"flip": flip_key}, mutable=["spikes"]
            )

    static_beta = fast_jit(forward, static_argnums=1)
    out0, sown0 = static_beta(jax.random.key(2), 0.0)
    out1, sown1 = static_beta(jax.random.key(2), 0.2)
    spikes0 = layers.sown_by_layer(sown0["spikes"], "spikes")
    spikes1 = layers.sown_by_layer(sown1["spikes"], "spikes")
    # lif0 sows its spikes before the flip; lif1 receives lif0's flipped spikes
    np.testing.assert_array_equal(spikes0["lif0"], spikes1["lif0"])
    assert not np.array_equal(spikes0["lif1"], spikes1["lif1"])
    assert not np.array_equal(out0, out1)
    # same keys, same flips; other flip key, other flips
    np.testing.assert_array_equal(static_beta(jax.random.key(2), 0.2)[0], out1)
    assert not np.array_equal(static_beta(jax.random.key(3), 0.2)[0], out1)
    # a traced beta draws the same flips as a static one
    traced_beta = fast_jit(lambda k, beta: forward(k, beta)[0])
    np.testing.assert_allclose(traced_beta(jax.random.key(2), 0.2), out1, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- EventDrop

MODES = ("random", "time", "area", "mixed")


@functools.cache
def _event_drop_jit():
    """event_drop compiled (with a traced rho): the binomial sampler is slow to compile op by op."""
    return fast_jit(perturb.event_drop, static_argnames=("mode", "counts", "include_identity"))


def _counts(seed, shape=(8, 64, 8, 8, 2), rate=1.0):
    """i.i.d. Poisson event counts (drawn with numpy: jax's sampler is slow to compile)."""
    return jnp.asarray(np.random.default_rng(seed).poisson(rate, shape), jnp.float32)


@pytest.mark.parametrize("mode", MODES)
def test_event_drop_extremes(mode):
    events = _counts(0, (5, 6, 8, 8, 2))
    np.testing.assert_array_equal(perturb.event_drop(events, jax.random.key(1), 0.0, mode), events)
    np.testing.assert_array_equal(perturb.event_drop(events, jax.random.key(1), 1.0, mode), 0.0)
    # the statistical path (traced rho) agrees at the extremes too
    traced = _event_drop_jit()
    np.testing.assert_array_equal(traced(events, jax.random.key(1), 0.0, mode=mode), events)
    np.testing.assert_array_equal(traced(events, jax.random.key(1), 1.0, mode=mode), 0.0)


@pytest.mark.parametrize("mode", MODES)
def test_event_drop_rate_matches_rho(mode):
    """The fraction of the ~6.6e4 events dropped is rho = 0.25 within 5 sigma.

    Each mode drops every event with probability rho: thinning directly, or
    (window modes, rho * T = 2 of 8 frames, rho * H * W = 4 x 4 of 8 x 8 pixels)
    because, given the total N of i.i.d. Poisson counts, each event lies in a
    uniformly random entry. So the count dropped is Binomial(N, rho) and
    sigma = sqrt(rho (1 - rho) / N).
    """
    rho = 0.25
    events = _counts(1)
    out = _event_drop_jit()(events, jax.random.key(4), rho, mode=mode)
    n = float(jnp.sum(events))
    rate = 1.0 - float(jnp.sum(out)) / n
    assert abs(rate - rho) < 5 * math.sqrt(rho * (1 - rho) / n), (mode, rate)
    assert np.all(np.asarray(out) <= np.asarray(events)) and np.all(np.asarray(out) >= 0)
    np.testing.assert_array_equal(np.asarray(out), np.round(np.asarray(out)))  # still counts


def test_drop_by_time_drops_one_contiguous_window_of_rho_t_frames():
    events = jnp.ones((10, 32, 4, 4, 2))
    out = np.asarray(perturb.drop_by_time(events, jax.random.key(0), 0.3))
    starts = set()
    for b in range(32):
        dropped = np.where(np.all(out[:, b] == 0, axis=(1, 2, 3)))[0]
        kept = np.all(out[:, b] == 1, axis=(1, 2, 3))
        assert len(dropped) == 3 and np.array_equal(dropped, np.arange(dropped[0], dropped[0] + 3))
        assert kept.sum() == 7
        starts.add(int(dropped[0]))
    assert len(starts) > 3  # the window moves between examples
    assert min(starts) >= 0 and max(starts) <= 7


def test_drop_by_area_drops_one_rectangle_of_rho_area():
    events = jnp.ones((3, 32, 8, 12, 2))
    out = np.asarray(perturb.drop_by_area(events, jax.random.key(0), 0.25))
    corners = set()
    for b in range(32):
        frame = out[0, b, :, :, 0]
        assert np.all(out[:, b] == frame[None, :, :, None])  # same box at every step and polarity
        rows, cols = np.where(frame == 0)
        r0, c0 = rows.min(), cols.min()
        assert rows.max() - r0 + 1 == 4 and cols.max() - c0 + 1 == 6  # sqrt(0.25) * (8, 12)
        assert len(rows) == 24  # a full rectangle: 0.25 * 8 * 12
        corners.add((int(r0), int(c0)))
    assert len(corners) > 5


def test_drop_events_binary_frames_and_non_count_mode(key):
    """Binary frames: a Bernoulli mask; counts=False zeroes entries with probability rho."""
    binary = (jax.random.uniform(key, (8, 64, 8, 8, 2)) < 0.5).astype(jnp.float32)
    out = _event_drop_jit()(binary, jax.random.key(1), 0.2, mode="random")
    assert set(np.unique(np.asarray(out))) <= {0.0, 1.0}
    values = jax.random.uniform(key, (8, 64, 8, 8, 2), minval=0.1, maxval=1.0)  # not counts
    out = np.asarray(perturb.drop_events(values, jax.random.key(1), 0.2, counts=False))
    zeroed = out == 0
    np.testing.assert_array_equal(out[~zeroed], np.asarray(values)[~zeroed])
    assert abs(zeroed.mean() - 0.2) < 5 * math.sqrt(0.16 / zeroed.size)


def _drop_kinds(out):
    """Classifies every example of dropped all-ones frames as time window, rectangle, scattered or none."""
    kinds = {"none": 0, "time": 0, "area": 0, "random": 0}
    for i in range(out.shape[1]):
        zero = out[:, i] == 0
        if not zero.any():
            kinds["none"] += 1
        elif np.all(zero.all(axis=(1, 2, 3)) == zero.any(axis=(1, 2, 3))):
            kinds["time"] += 1
        elif np.all(zero == zero[:1, :, :, :1]):
            kinds["area"] += 1
        else:
            kinds["random"] += 1
    return kinds


def test_event_drop_mixed_picks_a_mode_per_example():
    """Mixed: each example a time window, a rectangle or scattered drops, uniformly.

    Over B = 64 examples each count is Binomial(64, 1/3) (sd 3.8), or
    Binomial(64, 1/4) (sd 3.5) with the identity as a fourth option; bound 5 sd.
    """
    events = jnp.ones((8, 64, 8, 8, 2))
    kinds = _drop_kinds(np.asarray(_event_drop_jit()(events, jax.random.key(0), 0.25, mode="mixed")))
    assert kinds["none"] == 0
    assert all(abs(kinds[k] - 64 / 3) < 5 * 3.8 for k in ("time", "area", "random")), kinds
    out = _event_drop_jit()(events, jax.random.key(0), 0.25, mode="mixed", include_identity=True)
    kinds = _drop_kinds(np.asarray(out))
    assert all(abs(c - 16) < 5 * 3.5 for c in kinds.values()), kinds


# ----------------------------------------------------------------------------- validation


def _linear_loss(x, key=None):
    return jnp.sum(x)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: perturb.fgsm(_linear_loss, jnp.ones((2, 3)), -0.1), "gamma.*-0.1"),
        (lambda: perturb.fgsm(_linear_loss, jnp.ones((2, 3)), 0.1, jax.random.key(0), samples=0), "samples.*0"),
        (lambda: perturb.fgsm(_linear_loss, jnp.ones((2, 3)), 0.1, None, samples=2), "key=None"),
        (lambda: perturb.fgsm(_linear_loss, jnp.ones((2, 3)), 0.1, clip=(1.0, 0.0)), "clip"),
        (lambda: perturb.fgsm(_linear_loss, jnp.ones((2, 3), jnp.int32), 0.1), "floating"),
        (lambda: perturb.direct_optimisation(_linear_loss, jnp.ones((2, 3)), -1.0), "gamma.*-1.0"),
        (lambda: perturb.direct_optimisation(_linear_loss, jnp.ones((2, 3)), 1.0, steps=0), "steps.*0"),
        (lambda: perturb.direct_optimisation(_linear_loss, jnp.ones((2, 3)), 1.0, samples=1.5), "samples.*1.5"),
        (lambda: perturb.direct_optimisation(_linear_loss, jnp.ones((2, 3)), 1.0, lr=0.0), "lr.*0.0"),
        (lambda: perturb.direct_optimisation(_linear_loss, jnp.ones((2, 3)), 1.0, batch_axis=2), "batch_axis"),
        (lambda: perturb.add_gaussian(jnp.ones(3), jax.random.key(0), -0.5), "gamma.*-0.5"),
        (lambda: perturb.random_sphere(jnp.ones((2, 3)), jax.random.key(0), -0.5), "gamma.*-0.5"),
        (lambda: perturb.flip(jnp.ones(3), jax.random.key(0), 1.5), "beta.*1.5"),
        (lambda: perturb.flip_spikes(-0.1).__enter__(), "beta.*-0.1"),
        (lambda: perturb.drop_events(jnp.ones(3), jax.random.key(0), 1.1), "rho.*1.1"),
        (lambda: perturb.drop_by_time(jnp.ones((2, 3)), jax.random.key(0), -0.2), "rho.*-0.2"),
        (lambda: perturb.drop_by_area(jnp.ones((2, 3, 4, 4)), jax.random.key(0), 2.0), "rho.*2.0"),
        (lambda: perturb.drop_by_area(jnp.ones((2, 3, 4)), jax.random.key(0), 0.5), r"\(T, B, H, W"),
        (lambda: perturb.event_drop(jnp.ones((2, 3, 4, 4)), jax.random.key(0), 0.5, "cutout"), "cutout"),
        (lambda: perturb.event_drop(jnp.ones((2, 3, 4, 4)), jax.random.key(0), -1.0, "mixed"), "rho.*-1.0"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------- the authors' variants


def test_fgsm_per_step_sign_is_the_sign_of_the_gradient_wrt_the_repeated_input():
    """The gradient with respect to the (T, B, ...) sequence computed by hand with jax.grad, then its sign."""
    model, variables, x = _noisy_mlp(timesteps=3)
    sequence = models.SpikingMLP(hidden=model.hidden, outputs=model.outputs, timesteps=3, neuron=model.neuron,
                                 sequence_input=True)
    labels = jnp.array([0, 1, 2, 0])
    key = jax.random.key(5)

    def loss_fn(x_seq, k):
        return jnp.mean(losses.rate_cross_entropy(sequence.apply(variables, x_seq, rngs={"noise": k}), labels))

    gamma = 0.1
    x_adv = perturb.fgsm_per_step(loss_fn, x, gamma, timesteps=3, key=key)
    assert x_adv.shape == (3,) + x.shape
    by_hand = jax.grad(loss_fn)(jnp.stack([x, x, x]), key)
    np.testing.assert_array_equal(np.asarray(x_adv), np.asarray(x[None] + gamma * jnp.sign(by_hand)))
    # the signs differ between steps: one sign per time step, not one for the image
    signs = np.sign(np.asarray(by_hand))
    assert np.any(signs[0] != signs[1]) or np.any(signs[1] != signs[2])


def test_uniform_sphere_starts_are_uniform():
    """Per-example points on the radius-gamma sphere with a uniform direction.

    In d = 3 the projection of a uniform unit vector on any axis is U(-1, 1)
    (Archimedes); a Kolmogorov-Smirnov distance over N = 20000 draws above
    1.95 / sqrt(N) (the 0.1% critical value) fails. In d = 12: mean 0 and
    covariance I/d; each of the 12 means has std sqrt(1/(d N)) and each of
    the 78 covariance entries std about sqrt(2/(d^2 N)) (off-diagonal about
    sqrt(1/(d^2 N))); all must lie within 5 of their standard deviations.
    """
    n, gamma = 20000, 2.5
    points = np.asarray(perturb.uniform_sphere(jax.random.key(0), (n, 3), gamma), np.float64)
    np.testing.assert_allclose(np.linalg.norm(points, axis=1), gamma, rtol=1e-5)
    u = np.sort(points[:, 0] / gamma)
    cdf = (u + 1) / 2
    ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert ks < 1.95 / math.sqrt(n), ks
    d = 12
    unit = np.asarray(perturb.uniform_sphere(jax.random.key(1), (n, 2, 6), 1.0), np.float64).reshape(n, d)
    assert np.all(np.abs(unit.mean(axis=0)) < 5 * math.sqrt(1 / (d * n)))
    cov = unit.T @ unit / n
    assert np.all(np.abs(cov - np.eye(d) / d) < 5 * math.sqrt(2 / (d * d * n)))
    # time-major batch axis: the norm of each example b is taken over the other axes
    tm = perturb.uniform_sphere(jax.random.key(2), (4, 5, 6), 0.7, batch_axis=1)
    np.testing.assert_allclose(np.sqrt(np.sum(np.square(tm), axis=(0, 2))), 0.7, rtol=1e-5)


@pytest.mark.standard_promotion  # optax
def test_direct_optimisation_sphere_start_every_iterate_on_the_sphere(key):
    """The iterate after s = 1..6 steps (the same keys, so the s-th iterate of one run) has norm gamma per
    example; it moves and raises the loss; with zero gradient it stays at its uniform start."""
    x, labels, w, b, per_example = _softmax_regression(key)

    def loss_fn(x_, k=None):
        return jnp.mean(per_example(x_))

    gamma = 0.5
    attack = fast_jit(lambda steps: perturb.direct_optimisation(loss_fn, x, gamma, steps=steps, lr=0.05,
                                                                start="sphere",
                                                                start_key=jax.random.key(9)),
                      static_argnums=0)
    previous = None
    for steps in range(1, 7):
        dx = np.asarray(attack(steps) - x)
        np.testing.assert_allclose(np.linalg.norm(dx.reshape(len(x), -1), axis=1), gamma, rtol=1e-5)
        if previous is not None:
            assert not np.allclose(dx, previous)
        previous = dx
    start = np.asarray(perturb.uniform_sphere(jax.random.key(9), x.shape, gamma))
    assert float(loss_fn(attack(6))) > float(loss_fn(x + start))
    flat = perturb.direct_optimisation(lambda x_, k: jnp.float32(0.0) * jnp.sum(x_), x, gamma, steps=3,
                                       start="sphere", start_key=jax.random.key(9))
    np.testing.assert_allclose(np.asarray(flat - x), start, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="start_key"):
        perturb.direct_optimisation(loss_fn, x, gamma, start="sphere")
    with pytest.raises(ValueError, match="start must be one of"):
        perturb.direct_optimisation(loss_fn, x, gamma, start="random")


def _binary(seed, shape, p=0.3):
    return jnp.asarray(np.random.default_rng(seed).random(shape) < p, jnp.float32)


@pytest.mark.parametrize("beta", [0.0, 0.03, 0.2, 1.0])
def test_flip_exact_counts_per_example(beta):
    spikes = _binary(0, (4, 6, 7, 5))  # (T, B, ...): examples along axis 1
    out = np.asarray(perturb.flip_exact(spikes, jax.random.key(1), beta))
    s = np.asarray(spikes)
    for b in range(s.shape[1]):
        before, after = s[:, b].ravel(), out[:, b].ravel()
        n1, n0 = int(before.sum()), int((before == 0).sum())
        assert int(np.sum((before == 1) & (after == 0))) == int(beta * n1)
        assert int(np.sum((before == 0) & (after == 1))) == int(beta * n0)
    assert set(np.unique(out)) <= {0.0, 1.0}


def test_flip_exact_is_uniform_over_the_entries():
    """Over 400 draws each entry of a spike pattern is switched off with frequency beta."""
    spikes = jnp.ones((1, 1, 50))
    draws = jax.vmap(lambda k: perturb.flip_exact(spikes, k, 0.2))(jax.random.split(jax.random.key(3), 400))
    off = 1.0 - np.asarray(draws).reshape(400, 50).mean(axis=0)
    assert np.all(np.abs(off - 0.2) < 5 * math.sqrt(0.2 * 0.8 / 400))


def test_flip_spikes_exact_mode_inside_a_model():
    """Each spiking layer's (T, B, N) output: exactly int(beta n1) spikes off and int(beta n0) on, per example."""
    model, variables, x = _noisy_mlp(timesteps=4, hidden=(40,))
    keys = {"noise": jax.random.key(3), "flip": jax.random.key(4)}
    _, clean = model.apply(variables, x, rngs=keys, mutable=["intermediates"], capture_intermediates=True)
    with perturb.flip_spikes(0.1, mode="exact"):
        _, flipped = model.apply(variables, x, rngs=keys, mutable=["intermediates"], capture_intermediates=True)
    names = [n for n in clean["intermediates"] if "SpikingNeuron" in n or n.startswith("lif")]
    assert names, list(clean["intermediates"])
    before = np.asarray(clean["intermediates"][names[0]]["__call__"][0])
    after = np.asarray(flipped["intermediates"][names[0]]["__call__"][0])
    for b in range(before.shape[1]):
        s, t = before[:, b].ravel(), after[:, b].ravel()
        assert int(np.sum((s == 1) & (t == 0))) == int(0.1 * s.sum())
        assert int(np.sum((s == 0) & (t == 1))) == int(0.1 * (s == 0).sum())
    with pytest.raises(ValueError, match="mode must be one of"):
        perturb.flip_spikes(0.1, mode="gauss").__enter__()


@pytest.mark.parametrize("rho", [0.05, 0.25, 0.65, 1.0])
def test_drop_exact_zeros_exactly_int_rho_n_nonzero_entries_per_example(rho):
    frames = _binary(5, (3, 5, 6, 6, 2), p=0.4) * jnp.asarray(np.random.default_rng(6).random((3, 5, 6, 6, 2)),
                                                                jnp.float32)
    out = np.asarray(perturb.event_drop(frames, jax.random.key(2), rho, mode="exact"))
    f = np.asarray(frames)
    for b in range(f.shape[1]):
        before, after = f[:, b].ravel(), out[:, b].ravel()
        n = int(np.sum(before != 0))
        assert int(np.sum((before != 0) & (after == 0))) == int(rho * n)
        kept = after != 0
        np.testing.assert_array_equal(after[kept], before[kept])  # the rest untouched


@pytest.mark.parametrize("beta", [0.01, 0.03, 0.29, 0.57, 0.65, 1 / 3])
def test_exact_counts_equal_pythons_int_of_the_float64_product(beta):
    """int(beta * n) as Python computes it for every n up to the layer size: float32 alone gives
    int(0.29 * 100) = 29 where Python gives 28."""
    n = jnp.arange(5001, dtype=jnp.int32)
    counts = np.asarray(fast_jit(lambda n_: perturb._exact_count(beta, n_, 5000))(n))
    np.testing.assert_array_equal(counts, [int(beta * k) for k in range(5001)])


def test_flip_exact_count_where_float32_rounds_up():
    """A row of exactly 100 spikes at beta = 0.29: Python's int(0.29 * 100) = 28 spikes off."""
    spikes = jnp.ones((1, 1, 100))
    out = np.asarray(perturb.flip_exact(spikes, jax.random.key(0), 0.29))
    assert int(np.sum(out == 0)) == int(0.29 * 100) == 28
