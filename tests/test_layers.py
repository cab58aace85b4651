"""Flax layers, the ReLU floor and a jitted MLP training step."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nsnn_jax import layers, losses, models, neuron, noise


def test_time_distributed_equals_per_step_application():
    """Applying a Dense to (T*B, D) at once equals applying it at each step."""
    dense = nn.Dense(3)
    x = jax.random.normal(jax.random.key(0), (4, 2, 5))
    params = dense.init(jax.random.key(1), x[0])
    td = layers.TimeDistributed(nn.Dense(3))
    merged = td.apply({"params": {"layer": params["params"]}}, x)
    per_step = jnp.stack([dense.apply(params, x[t]) for t in range(4)])
    chex.assert_trees_all_close(merged, per_step, rtol=1e-6)


def test_time_distributed_rejects_rank_one():
    with pytest.raises(ValueError, match=r"\(T, B, \.\.\.\)"):
        layers.TimeDistributed(nn.Dense(3)).init(jax.random.key(0), jnp.ones((4,)))


def test_threshold_batch_norm_hand_computed():
    """tdBN normalises per channel over T, B and space to std alpha * v_th."""
    x = jnp.array([[[1.0, 10.0], [3.0, 30.0]], [[5.0, 50.0], [7.0, 70.0]]])  # (T=2, B=2, C=2)
    module = layers.ThresholdBatchNorm(v_th=0.5, alpha=2.0, epsilon=0.0)
    variables = module.init(jax.random.key(0), x)
    y, _ = module.apply(variables, x, mutable=["batch_stats"])
    # channel 0: values 1,3,5,7 -> mean 4, std sqrt(5); scaled by alpha * v_th = 1
    expected0 = (np.array([1.0, 3.0, 5.0, 7.0]) - 4.0) / np.sqrt(5.0) * 1.0
    np.testing.assert_allclose(np.asarray(y[..., 0]).reshape(-1), expected0, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(y[..., 1]).reshape(-1), expected0, rtol=1e-5)


def test_threshold_batch_norm_differs_from_plain_bn():
    """With alpha * v_th != 1 the output std is alpha * v_th, not 1."""
    x = jax.random.normal(jax.random.key(0), (3, 8, 4)) * 5 + 2
    module = layers.ThresholdBatchNorm(v_th=1.0, alpha=0.5)
    y, _ = module.apply(module.init(jax.random.key(0), x), x, mutable=["batch_stats"])
    np.testing.assert_allclose(np.std(np.asarray(y), axis=(0, 1)), 0.5, rtol=1e-3)
    plain = layers.TimeBatchNorm()
    z, _ = plain.apply(plain.init(jax.random.key(0), x), x, mutable=["batch_stats"])
    np.testing.assert_allclose(np.std(np.asarray(z), axis=(0, 1)), 1.0, rtol=1e-3)


def test_spiking_neuron_layer_uses_noise_rng_and_deterministic_flag():
    """Same 'noise' key, same spikes; other key, other spikes; deterministic ignores the key."""
    layer = layers.SpikingNeuron(neuron.LIFParams(noise=noise.Gaussian(0.5)))
    x = jnp.full((6, 4, 32), 0.9)
    run = lambda k, det=False: layer.apply({}, x, det, rngs={"noise": jax.random.key(k)})
    np.testing.assert_array_equal(run(0), run(0))
    assert not np.array_equal(run(0), run(1))
    np.testing.assert_array_equal(run(0, True), run(1, True))
    np.testing.assert_array_equal(run(0, True), neuron.lif_scan(x, None, layer.params, deterministic=True).spikes)


def test_layers_draw_independent_noise():
    """Two layers of one model never receive the same noise (Flax folds the path in)."""
    class Two(nn.Module):
        @nn.compact
        def __call__(self, x):
            p = neuron.LIFParams(noise=noise.Gaussian(0.5))
            return layers.SpikingNeuron(p, name="a")(x), layers.SpikingNeuron(p, name="b")(x)

    a, b = Two().apply({}, jnp.full((4, 8, 64), 0.9), rngs={"noise": jax.random.key(0)})
    assert not np.array_equal(a, b)


def test_spiking_neuron_without_params_raises_naming_the_floor():
    """``params=None`` is not a ReLU in disguise: the error names ReluFloor."""
    with pytest.raises(ValueError, match="ReluFloor"):
        layers.SpikingNeuron(None).init(jax.random.key(0), jnp.zeros((2, 3, 4)))


def test_relu_floor_is_a_relu_without_noise_or_sowing():
    x = jnp.asarray(np.linspace(-2.0, 2.0, 24, dtype=np.float32).reshape(2, 3, 4))
    out, state = layers.ReluFloor().apply({}, x, True, mutable=["intermediates", "spikes"])
    np.testing.assert_array_equal(out, np.maximum(np.asarray(x), 0.0))
    assert not jax.tree.leaves(state)


@pytest.mark.standard_promotion  # optax inside
def test_training_step_compiles_once_and_lowers_the_loss():
    """A jitted step traces once over several calls and lowers the loss on a fixed batch."""
    model = models.get_model("mlp", hidden=(32,), outputs=3, timesteps=4)
    x = jax.random.uniform(jax.random.key(0), (16, 6)) * 3
    y = jnp.arange(16) % 3
    params = model.init({"params": jax.random.key(1), "noise": jax.random.key(2)}, x)["params"]
    tx = optax.adam(1e-2)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, opt_state, key):
        def loss_fn(p):
            return jnp.mean(losses.rate_cross_entropy(model.apply({"params": p}, x, rngs={"noise": key}), y))
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state = tx.init(params)
    first = None
    for i in range(30):
        params, opt_state, loss = step(params, opt_state, jax.random.key(i))
        first = float(loss) if first is None else first
    assert float(loss) < 0.7 * first
