"""Per-example losses on time-major readouts ``(T, B, C)``.

Like optax, every loss returns one value per example, shape ``(B,)``; the
caller reduces (``jnp.mean`` for the batch mean, a weighted sum for padded
evaluation batches).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

__all__ = ["rate_cross_entropy", "per_step_cross_entropy", "tet_loss", "mse_loss", "correct", "accuracy"]


def _check(outputs: jax.Array, labels: jax.Array) -> None:
    if outputs.ndim != 3:
        raise ValueError(f"Expected time-major outputs (T, B, C), got shape {outputs.shape}.")
    if labels.shape != outputs.shape[1:2]:
        raise ValueError(
            f"Expected integer labels of shape (B,) = {outputs.shape[1:2]}, got {labels.shape}."
        )


def rate_cross_entropy(outputs: jax.Array, labels: jax.Array) -> jax.Array:
    """Cross-entropy of the rate-coded logits (mean over T), per example.

    Args:
      outputs: readout per step, ``(T, B, C)``.
      labels: integer classes, ``(B,)``.

    Returns:
      ``(B,)`` float32.
    """
    _check(outputs, labels)
    logits = jnp.mean(outputs.astype(jnp.float32), axis=0)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def per_step_cross_entropy(outputs: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean over steps of the cross-entropy of each step's logits, per example.

    ``mean_t CE(O_t, y)``: every step's readout is scored on its own, as the
    authors' STBP training loss does; :func:`rate_cross_entropy` scores the
    mean logits instead. It is :func:`tet_loss` with ``lam = 0``.

    Args:
      outputs: readout per step, ``(T, B, C)``.
      labels: integer classes, ``(B,)``.

    Returns:
      ``(B,)`` float32.
    """
    _check(outputs, labels)
    outputs = outputs.astype(jnp.float32)
    per_step = optax.softmax_cross_entropy_with_integer_labels(
        outputs, jnp.broadcast_to(labels, outputs.shape[:2])
    )  # (T, B)
    return jnp.mean(per_step, axis=0)


def tet_loss(
    outputs: jax.Array, labels: jax.Array, lam: float = 0.05, phi: float = 1.0
) -> jax.Array:
    """Temporal efficient training loss (Deng et al. 2022), per example.

    ``(1 - lam) * mean_t CE(O_t, y) + lam * mean_{t,c} (O_t - phi)^2``: every
    step's readout is pushed towards the label, and the MSE term keeps the
    readout near ``phi`` to regularise its magnitude.

    Args:
      outputs: readout per step, ``(T, B, C)``.
      labels: integer classes, ``(B,)``.
      lam: weight of the MSE term, in ``[0, 1]``.
      phi: MSE target.

    Returns:
      ``(B,)`` float32.
    """
    _check(outputs, labels)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"TET lambda must be in [0, 1], got {lam!r}.")
    outputs = outputs.astype(jnp.float32)
    ce = per_step_cross_entropy(outputs, labels)
    mse = jnp.mean(jnp.square(outputs - phi), axis=(0, 2))
    return (1.0 - lam) * ce + lam * mse


def mse_loss(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean squared error of a readout ``(T, B, D)``, per example.

    Args:
      outputs: readout per step, ``(T, B, D)``.
      targets: ``(B, D)``: compared with the rate-coded readout (mean over T);
        or ``(T, B, D)``: one target per step (sequence forecasting).

    Returns:
      ``(B,)`` float32: the mean over D (and T for per-step targets).
    """
    if outputs.ndim == 3 and targets.shape == outputs.shape:
        error = jnp.square(outputs.astype(jnp.float32) - targets.astype(jnp.float32))
        return jnp.mean(error, axis=(0, 2))
    if outputs.ndim == 3 and targets.shape == outputs.shape[1:]:
        prediction = jnp.mean(outputs.astype(jnp.float32), axis=0)
        return jnp.mean(jnp.square(prediction - targets.astype(jnp.float32)), axis=-1)
    raise ValueError(
        f"Expected outputs (T, B, D) and targets (B, D) or (T, B, D); got {outputs.shape} and {targets.shape}."
    )


def correct(outputs: jax.Array, labels: jax.Array) -> jax.Array:
    """Per example, 1.0 where the rate-coded logits pick the label: ``(B,)`` float32."""
    _check(outputs, labels)
    return (jnp.argmax(jnp.mean(outputs, axis=0), axis=-1) == labels).astype(jnp.float32)


def accuracy(outputs: jax.Array, labels: jax.Array) -> jax.Array:
    """Fraction of examples whose rate-coded logits pick the label. Scalar."""
    return jnp.mean(correct(outputs, labels))
