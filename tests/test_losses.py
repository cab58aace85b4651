"""Per-example losses ``(B,)``: values, batch means against independent computations, shapes, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nsnn_jax import losses


def readout(shape=(3, 4, 5), seed=0):
    return jax.random.normal(jax.random.key(seed), shape)


def test_rate_cross_entropy_is_ce_of_mean_logits():
    outputs = readout()
    labels = jnp.array([0, 1, 4, 2])
    mean = np.asarray(outputs).mean(0)
    logp = mean - np.log(np.exp(mean).sum(-1, keepdims=True))
    expected = -np.mean(logp[np.arange(4), np.asarray(labels)])
    np.testing.assert_allclose(jnp.mean(losses.rate_cross_entropy(outputs, labels)), expected, rtol=1e-5)


def test_rate_cross_entropy_per_example_against_optax_one_hot():
    """optax.softmax_cross_entropy on one-hot targets, example by example; the batch mean is the mean."""
    outputs = readout((5, 6, 7), seed=1)
    labels = jnp.array([0, 6, 3, 3, 1, 2])
    per_example = losses.rate_cross_entropy(outputs, labels)
    assert per_example.shape == (6,) and per_example.dtype == jnp.float32
    expected = optax.softmax_cross_entropy(jnp.mean(outputs, axis=0), jax.nn.one_hot(labels, 7))
    np.testing.assert_allclose(per_example, expected, rtol=1e-6)
    np.testing.assert_allclose(jnp.mean(per_example), jnp.mean(expected), rtol=1e-6)


def test_per_step_cross_entropy_is_the_mean_over_steps_of_optax_ce():
    """mean_t optax.softmax_cross_entropy(O_t, one_hot(y)), example by example; not the CE of the mean."""
    outputs = readout((4, 6, 5), seed=5) * 3.0
    labels = jnp.array([4, 0, 1, 1, 3, 2])
    per_example = losses.per_step_cross_entropy(outputs, labels)
    assert per_example.shape == (6,) and per_example.dtype == jnp.float32
    one_hot = jax.nn.one_hot(labels, 5)
    expected = np.mean([np.asarray(optax.softmax_cross_entropy(outputs[t], one_hot)) for t in range(4)], axis=0)
    np.testing.assert_allclose(per_example, expected, rtol=1e-6)
    assert np.max(np.abs(per_example - losses.rate_cross_entropy(outputs, labels))) > 1e-2
    np.testing.assert_allclose(per_example, losses.tet_loss(outputs, labels, lam=0.0), rtol=1e-6)
    with pytest.raises(ValueError, match=r"\(T, B, C\)"):
        losses.per_step_cross_entropy(outputs[0], labels)


def test_tet_loss_hand_computed():
    """T=2, B=1, C=2: (1 - lam) * mean_t CE_t + lam * mean (O - phi)^2."""
    outputs = jnp.array([[[0.0, 0.0]], [[2.0, 0.0]]])
    labels = jnp.array([0])
    ce0 = np.log(2.0)
    ce1 = -np.log(np.exp(2.0) / (np.exp(2.0) + 1.0))
    mse = np.mean((np.array([0.0, 0.0, 2.0, 0.0]) - 1.0) ** 2)
    lam = 0.05
    expected = (1 - lam) * (ce0 + ce1) / 2 + lam * mse
    np.testing.assert_allclose(losses.tet_loss(outputs, labels, lam=lam, phi=1.0), [expected], rtol=1e-6)
    # lam = 0 is the per-step CE, not the CE of the mean
    assert abs(float(losses.tet_loss(outputs, labels, lam=0.0)[0])
               - float(losses.rate_cross_entropy(outputs, labels)[0])) > 1e-3


@pytest.mark.parametrize("lam,phi", [(0.0, 1.0), (0.05, 1.0), (0.3, 0.5), (1.0, 2.0)])
def test_tet_loss_batch_mean_equals_the_mean_over_steps_and_examples(lam, phi):
    """The batch mean equals (1 - lam) * mean over (T, B) of optax's per-step CE + lam * global MSE."""
    outputs = readout((4, 6, 5), seed=2)
    labels = jnp.array([4, 0, 1, 1, 3, 2])
    per_example = losses.tet_loss(outputs, labels, lam=lam, phi=phi)
    assert per_example.shape == (6,)
    per_step_ce = optax.softmax_cross_entropy(outputs, jax.nn.one_hot(jnp.broadcast_to(labels, (4, 6)), 5))
    expected = (1 - lam) * jnp.mean(per_step_ce) + lam * jnp.mean(jnp.square(outputs - phi))
    np.testing.assert_allclose(jnp.mean(per_example), expected, rtol=1e-6)
    for b in range(6):  # each value is the loss of that example alone
        alone = losses.tet_loss(outputs[:, b:b + 1], labels[b:b + 1], lam=lam, phi=phi)
        np.testing.assert_allclose(per_example[b], alone[0], rtol=1e-6)


def test_mse_loss_uses_rate_readout():
    outputs = jnp.array([[[1.0]], [[3.0]]])
    np.testing.assert_allclose(losses.mse_loss(outputs, jnp.array([[1.0]])), [1.0])


@pytest.mark.parametrize("per_step_targets", [False, True])
def test_mse_loss_per_example_against_optax_l2(per_step_targets):
    """Per example: mean over D (and T) of optax.l2_loss * 2; the batch mean is the mean over everything."""
    outputs = readout((3, 4, 2), seed=3)
    targets = readout((3, 4, 2) if per_step_targets else (4, 2), seed=4)
    per_example = losses.mse_loss(outputs, targets)
    assert per_example.shape == (4,)
    prediction = outputs if per_step_targets else jnp.mean(outputs, axis=0)
    squared = 2.0 * optax.l2_loss(prediction, targets)
    axes = (0, 2) if per_step_targets else (1,)
    np.testing.assert_allclose(per_example, jnp.mean(squared, axis=axes), rtol=1e-6)
    np.testing.assert_allclose(jnp.mean(per_example), jnp.mean(squared), rtol=1e-6)


def test_correct_and_accuracy():
    outputs = jnp.array([[[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]]])  # T=1, B=3: predicts 0, 1, 0
    labels = jnp.array([0, 0, 0])
    np.testing.assert_array_equal(losses.correct(outputs, labels), [1.0, 0.0, 1.0])
    assert float(losses.accuracy(outputs, labels)) == pytest.approx(2 / 3)


def test_losses_reject_wrong_shapes():
    with pytest.raises(ValueError, match=r"\(T, B, C\)"):
        losses.rate_cross_entropy(jnp.zeros((4, 10)), jnp.zeros((4,), jnp.int32))
    with pytest.raises(ValueError, match="labels"):
        losses.tet_loss(jnp.zeros((2, 4, 10)), jnp.zeros((3,), jnp.int32))
    with pytest.raises(ValueError, match="lambda"):
        losses.tet_loss(jnp.zeros((2, 4, 10)), jnp.zeros((4,), jnp.int32), lam=2.0)
    with pytest.raises(ValueError, match=r"\(T, B, D\)"):
        losses.mse_loss(jnp.zeros((2, 4, 1)), jnp.zeros((3, 1)))
