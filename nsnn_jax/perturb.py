"""Perturbations for robustness studies: input attacks, spike flips, EventDrop.

* Adversarial inputs: :func:`fgsm` (one signed-gradient step, L-inf budget),
  :func:`fgsm_per_step` (the same on a static image repeated over T, one sign
  per time step, as the NSNN authors' code) and :func:`direct_optimisation`
  ("DO": Adam ascent on a perturbation held on the L2 sphere of radius
  ``gamma`` per example, from zero or from a uniform point of the sphere). Both take ``loss_fn(x, key)``,
  where ``key`` is the model's noise key, and average the input gradient over
  ``samples`` noise keys (expectation over transformation, EOT) for noisy models.
* Random baselines of the same size: :func:`add_gaussian`, :func:`random_sphere`.
* Internal noise: :func:`flip_spikes` flips the output spikes of every
  :class:`~nsnn_jax.layers.SpikingNeuron` while active, either independently
  with probability ``beta`` (:func:`flip`) or exactly ``int(beta * n1)`` spikes
  and ``int(beta * n0)`` silences per example (:func:`flip_exact`).
* EventDrop (Gu et al. 2021) on time-major event frames ``(T, B, H, W, P)``:
  :func:`drop_events`, :func:`drop_by_time`, :func:`drop_by_area`,
  :func:`drop_exact` (exactly ``int(rho * n)`` of the non-zero entries of each
  example zeroed, the authors' test script), :func:`event_drop`.

All randomness comes from explicit keys. Probabilities and ``gamma`` may be
traced values (the functions work under ``jax.jit``); concrete values are
validated and raise ``ValueError`` when out of range.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterator, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from nsnn_jax import layers

__all__ = [
    "EVENT_DROP_MODES",
    "input_gradient",
    "DO_STARTS",
    "FLIP_MODES",
    "fgsm",
    "fgsm_per_step",
    "repeat_over_time",
    "uniform_sphere",
    "direct_optimisation",
    "add_gaussian",
    "random_sphere",
    "flip",
    "flip_exact",
    "flip_spikes",
    "drop_events",
    "drop_exact",
    "drop_by_time",
    "drop_by_area",
    "event_drop",
]

LossFn = Callable[[jax.Array, Optional[jax.Array]], jax.Array]

EVENT_DROP_MODES = ("exact", "random", "time", "area", "mixed")
DO_STARTS = ("sphere", "zero")
FLIP_MODES = ("exact", "bernoulli")
# fold_in index of the DO start's key (the steps use fold_in(key, step) with step < steps).
_START_STREAM = 2**31 - 1


# ----------------------------------------------------------------------------- checks


def _concrete(value) -> Optional[float]:
    """``float(value)``, or ``None`` when ``value`` is traced."""
    try:
        return float(value)
    except jax.errors.ConcretizationTypeError:
        return None


def _check_nonnegative(name: str, value) -> None:
    v = _concrete(value)
    if v is not None and not v >= 0.0:  # also rejects NaN
        raise ValueError(f"{name} must be >= 0, got {value!r}.")


def _check_probability(name: str, value) -> None:
    v = _concrete(value)
    if v is not None and not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} is a probability in [0, 1], got {value!r}.")


def _check_count(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")


def _check_floating(x: jax.Array) -> None:
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"Expected a floating-point input, got dtype {x.dtype}; cast it first.")


def _check_noise_key(key: Optional[jax.Array], samples: int) -> None:
    _check_count("samples", samples)
    if samples > 1 and key is None:
        raise ValueError(f"samples={samples} averages over noise keys split from key; got key=None.")


def _batch_axes(x: jax.Array, batch_axis: int) -> Tuple[int, ...]:
    if x.ndim < 1 or not -x.ndim <= batch_axis < x.ndim:
        raise ValueError(f"batch_axis {batch_axis} is not an axis of an input of shape {x.shape}.")
    batch_axis %= x.ndim
    return tuple(a for a in range(x.ndim) if a != batch_axis)


# ----------------------------------------------------------------------------- attacks


def input_gradient(
    loss_fn: LossFn, x: jax.Array, key: Optional[jax.Array] = None, samples: int = 1
) -> jax.Array:
    """Gradient of ``loss_fn`` with respect to its input, averaged over noise keys.

    Args:
      loss_fn: ``loss_fn(x, key) -> scalar``, ``key`` being the model's noise key.
      x: input, any shape.
      key: noise key; ``None`` for a deterministic model (with ``samples=1``).
      samples: K. ``1`` uses ``key`` itself; ``K > 1`` averages the gradients
        for the K keys ``jax.random.split(key, K)`` (vmapped).

    Returns:
      The (mean) gradient, shape and dtype of ``x``.
    """
    _check_noise_key(key, samples)
    grad_fn = jax.grad(loss_fn)
    if samples == 1:
        return grad_fn(x, key)
    keys = jax.random.split(key, samples)
    grads = jax.vmap(grad_fn, in_axes=(None, 0))(x, keys)
    return jnp.mean(grads, axis=0).astype(grads.dtype)


def fgsm(
    loss_fn: LossFn,
    x: jax.Array,
    gamma: float,
    key: Optional[jax.Array] = None,
    samples: int = 1,
    clip: Optional[Tuple[float, float]] = None,
) -> jax.Array:
    """Fast gradient sign method: ``x + gamma * sign(grad_x loss)``.

    With a noisy model the gradient is taken for one noise key (``samples=1``)
    or averaged over ``samples`` keys before the sign (EOT), see
    :func:`input_gradient`. The loss may be the mean over the batch: that scales
    every example's gradient by ``1/B``, which does not change its sign.

    Args:
      loss_fn: ``loss_fn(x, key) -> scalar`` loss of the batch ``x``.
      x: floating input ``(B, ...)`` (any shape).
      gamma: L-inf budget, ``>= 0``: every entry moves by exactly ``gamma``
        where the gradient is non-zero (and stays put where it is zero).
      key: the model's noise key (``None`` for a deterministic model).
      samples: number of noise keys in the EOT average, ``>= 1``.
      clip: optional ``(lo, hi)``; the result is clipped to it.

    Returns:
      The adversarial input, shape and dtype of ``x``.
    """
    x = jnp.asarray(x)
    _check_floating(x)
    _check_nonnegative("gamma", gamma)
    _check_noise_key(key, samples)
    if clip is not None:
        lo, hi = clip
        lo_c, hi_c = _concrete(lo), _concrete(hi)
        if lo_c is not None and hi_c is not None and not lo_c <= hi_c:
            raise ValueError(f"clip must be (lo, hi) with lo <= hi, got {clip!r}.")
    grad = input_gradient(loss_fn, x, key, samples)
    x_adv = x + jnp.asarray(gamma).astype(x.dtype) * jnp.sign(grad).astype(x.dtype)
    if clip is not None:
        x_adv = jnp.clip(x_adv, jnp.asarray(lo).astype(x.dtype), jnp.asarray(hi).astype(x.dtype))
    return x_adv


def repeat_over_time(x: jax.Array, timesteps: int) -> jax.Array:
    """A static batch ``(B, ...)`` repeated over time: ``(timesteps, B, ...)`` (time-major)."""
    _check_count("timesteps", timesteps)
    x = jnp.asarray(x)
    return jnp.broadcast_to(x, (timesteps,) + x.shape)


def fgsm_per_step(
    loss_fn: LossFn,
    x: jax.Array,
    gamma: float,
    timesteps: int,
    key: Optional[jax.Array] = None,
    samples: int = 1,
    clip: Optional[Tuple[float, float]] = None,
) -> jax.Array:
    """FGSM with one sign per time step: :func:`fgsm` on ``x`` repeated over ``timesteps``.

    The gradient is taken with respect to the time-major sequence
    ``(T, B, ...)`` (the static image at every step), so each step gets its own
    sign and the adversarial input is a sequence, as in the NSNN authors' code
    (they differentiate the repeated input). ``loss_fn`` takes that sequence:
    e.g. the model with ``sequence_input=True``.

    Args:
      loss_fn: ``loss_fn(x_seq, key) -> scalar`` on ``(T, B, ...)``.
      x: static floating input ``(B, ...)``.
      gamma: L-inf budget, ``>= 0``.
      timesteps: T.
      key, samples, clip: as for :func:`fgsm`.

    Returns:
      The adversarial sequence ``(T, B, ...)``, dtype of ``x``.
    """
    return fgsm(loss_fn, repeat_over_time(x, timesteps), gamma, key=key, samples=samples, clip=clip)


def _unit(d: jax.Array, axes: Tuple[int, ...]) -> jax.Array:
    norm = jnp.sqrt(jnp.sum(jnp.square(d), axis=axes, keepdims=True))
    return d / jnp.where(norm > 0, norm, 1.0)


def uniform_sphere(key: jax.Array, shape: Tuple[int, ...], gamma: float = 1.0, batch_axis: int = 0,
                   dtype=jnp.float32) -> jax.Array:
    """Independent points uniform on the L2 sphere of radius ``gamma``, one per example.

    A standard normal of ``shape`` normalised per example (norm over all axes
    but ``batch_axis``): its direction is uniform by rotational symmetry.

    Args:
      key: PRNG key.
      shape: the shape of the batch, e.g. ``(B, ...)``.
      gamma: radius, ``>= 0``.
      batch_axis: the batch axis.
      dtype: the result's dtype.

    Returns:
      ``(shape)`` with every example of L2 norm ``gamma``.
    """
    _check_nonnegative("gamma", gamma)
    axes = _batch_axes(jnp.zeros(shape, jnp.bool_), batch_axis)
    direction = jax.random.normal(key, shape, jnp.float32)
    return (jnp.asarray(gamma).astype(jnp.float32) * _unit(direction, axes)).astype(dtype)


def _project_to_sphere(dx: jax.Array, gamma, axes: Tuple[int, ...]) -> jax.Array:
    """Rescales every example of ``dx`` to L2 norm ``gamma`` (norm over ``axes``).

    An example that is exactly zero has no direction; it takes the uniform
    direction ``ones / sqrt(n)``.
    """
    d = dx.astype(jnp.float32)
    norm = jnp.sqrt(jnp.sum(jnp.square(d), axis=axes, keepdims=True))
    n = math.prod(dx.shape[a] for a in axes)
    unit = jnp.where(norm > 0, d / jnp.where(norm > 0, norm, 1.0), 1.0 / math.sqrt(n))
    return (jnp.asarray(gamma).astype(jnp.float32) * unit).astype(dx.dtype)


def direct_optimisation(
    loss_fn: LossFn,
    x: jax.Array,
    gamma: float,
    key: Optional[jax.Array] = None,
    samples: int = 1,
    steps: int = 30,
    lr: float = 0.002,
    batch_axis: int = 0,
    optimizer: Optional[optax.GradientTransformation] = None,
    start: str = "zero",
    start_key: Optional[jax.Array] = None,
) -> jax.Array:
    """Direct optimisation ("DO") attack on the L2 sphere of radius ``gamma``.

    Maximises the loss over perturbations ``dx`` with ``||dx_i||_2 = gamma`` for
    every example ``i`` (norm over all axes but ``batch_axis``) by Adam ascent.

    ``start='sphere'`` (the NSNN authors' attack, which holds the perturbation
    on a geotorch sphere): ``dx = gamma * v / ||v||`` per example, ``v`` starts
    at a uniform point of the unit sphere (:func:`uniform_sphere`) and Adam
    steps ``v`` up the gradient of the loss through that map, so every iterate,
    the start included, lies on the sphere. ``v`` starts at norm 1 so that
    Adam's ``lr`` is an angle on the unit sphere, as in the exponential-map
    parametrisation (whose free parameter starts at 0 in the tangent space of
    the random start). The start is drawn from ``start_key``, or from
    ``fold_in(key, 2**31 - 1)`` when ``start_key`` is None.

    ``start='zero'`` (the default): projected Adam ascent, ``dx`` starts at zero; each iteration takes an Adam step up
    the gradient of the loss at ``x + dx`` and rescales every example of ``dx``
    back onto the sphere. The first step starts from zero, where there is no
    direction to project: the step itself gives it (Adam's first update is
    ``lr * sign(g)`` entry-wise, so after the projection ``dx_i`` is the
    L2-normalised signed gradient). An example whose step is exactly zero
    (zero gradient) takes the uniform direction ``gamma * ones / sqrt(n)``.
    The result is the last iterate.

    ``loss_fn`` may return the sum or the mean of per-example losses: each
    example's perturbation changes only its own term, so the gradient with
    respect to ``dx_i`` is that example's gradient (times ``1/B`` for the mean,
    which Adam's per-entry normalisation cancels up to its ``eps``). A loss
    that mixes examples (e.g. batch statistics in training mode) would couple
    the perturbations.

    Iteration ``s`` uses the noise key ``jax.random.fold_in(key, s)`` (fresh
    noise every step), split into ``samples`` keys for EOT as in
    :func:`input_gradient`. The loop is a ``lax.fori_loop``.

    Args:
      loss_fn: ``loss_fn(x, key) -> scalar``, a sum or mean of per-example losses.
      x: floating input with a batch axis, e.g. ``(B, ...)``.
      gamma: L2 radius per example, ``>= 0``.
      key: the model's noise key (``None`` for a deterministic model).
      samples: number of noise keys in the EOT average per step, ``>= 1``.
      steps: Adam iterations, ``>= 1``.
      lr: Adam learning rate (ignored when ``optimizer`` is given).
      batch_axis: the batch axis of ``x`` (``1`` for time-major ``(T, B, ...)``).
      optimizer: an optax optimizer to use instead of ``optax.adam(lr)``.
      start: ``'zero'`` or ``'sphere'`` (see above).
      start_key: key of the ``'sphere'`` start.

    Returns:
      ``x + dx``, shape and dtype of ``x``, with every ``||dx_i||_2 = gamma``.

    Raises:
      ValueError: bad settings, or ``start='sphere'`` with neither key.
    """
    if start not in DO_STARTS:
        raise ValueError(f"start must be one of {DO_STARTS}, got {start!r}.")
    if start == "sphere" and start_key is None and key is None:
        raise ValueError("start='sphere' draws a random start: give start_key (or key).")
    x = jnp.asarray(x)
    _check_floating(x)
    _check_nonnegative("gamma", gamma)
    _check_noise_key(key, samples)
    _check_count("steps", steps)
    if optimizer is None:
        lr_c = _concrete(lr)
        if lr_c is not None and not lr_c > 0.0:
            raise ValueError(f"lr must be > 0, got {lr!r}.")
        optimizer = optax.adam(lr)
    axes = _batch_axes(x, batch_axis)

    def perturbed_loss(dx, k):
        return loss_fn(x + dx, k)

    def body(step, carry):
        dx, state = carry
        k = None if key is None else jax.random.fold_in(key, step)
        grad = input_gradient(perturbed_loss, dx, k, samples)
        updates, state = optimizer.update(jax.tree_util.tree_map(jnp.negative, grad), state, dx)
        dx = _project_to_sphere(optax.apply_updates(dx, updates), gamma, axes)
        return dx, state

    if start == "sphere":
        if start_key is None:
            start_key = jax.random.fold_in(key, _START_STREAM)
        gamma32 = jnp.asarray(gamma).astype(jnp.float32)

        def on_sphere(v):
            return (gamma32 * _unit(v, axes)).astype(x.dtype)

        def sphere_body(step, carry):
            v, state = carry
            k = None if key is None else jax.random.fold_in(key, step)
            grad = input_gradient(lambda v_, k_: loss_fn(x + on_sphere(v_), k_), v, k, samples)
            updates, state = optimizer.update(jax.tree_util.tree_map(jnp.negative, grad), state, v)
            return optax.apply_updates(v, updates), state

        v0 = uniform_sphere(start_key, x.shape, 1.0, batch_axis)
        v, _ = jax.lax.fori_loop(0, steps, sphere_body, (v0, optimizer.init(v0)))
        return x + on_sphere(v)

    dx0 = jnp.zeros_like(x)
    dx, _ = jax.lax.fori_loop(0, steps, body, (dx0, optimizer.init(dx0)))
    return x + dx


def add_gaussian(x: jax.Array, key: jax.Array, gamma: float) -> jax.Array:
    """Adds i.i.d. Gaussian noise of standard deviation ``gamma`` to every entry.

    Args:
      x: floating input, any shape.
      key: PRNG key.
      gamma: noise standard deviation, ``>= 0``.

    Returns:
      ``x + gamma * N(0, 1)``, shape and dtype of ``x``.
    """
    x = jnp.asarray(x)
    _check_floating(x)
    _check_nonnegative("gamma", gamma)
    noise = jax.random.normal(key, x.shape, jnp.float32)
    return x + (jnp.asarray(gamma).astype(jnp.float32) * noise).astype(x.dtype)


def random_sphere(x: jax.Array, key: jax.Array, gamma: float, batch_axis: int = 0) -> jax.Array:
    """Adds a random perturbation of L2 norm ``gamma`` per example.

    The direction is uniform on the sphere (a normalised Gaussian), drawn
    independently for every example; the same budget as
    :func:`direct_optimisation`, for comparison.

    Args:
      x: floating input with a batch axis, e.g. ``(B, ...)``.
      key: PRNG key.
      gamma: L2 radius per example, ``>= 0``.
      batch_axis: the batch axis of ``x``.

    Returns:
      ``x + dx``, shape and dtype of ``x``, with every ``||dx_i||_2 = gamma``
      (norm over all axes but ``batch_axis``).
    """
    x = jnp.asarray(x)
    _check_floating(x)
    _check_nonnegative("gamma", gamma)
    axes = _batch_axes(x, batch_axis)
    direction = jax.random.normal(key, x.shape, jnp.float32)
    return x + _project_to_sphere(direction, gamma, axes).astype(x.dtype)


# ----------------------------------------------------------------------------- spike flips


def flip(spikes: jax.Array, key: jax.Array, beta: float) -> jax.Array:
    """Flips every spike (``1 -> 0``, ``0 -> 1``) independently with probability ``beta``.

    Args:
      spikes: spikes in ``{0, 1}``, any shape and dtype.
      key: PRNG key.
      beta: flip probability in ``[0, 1]``. A concrete ``0`` returns ``spikes``
        itself without drawing.

    Returns:
      The flipped spikes, shape and dtype of ``spikes``. The gradient passes
      through unflipped entries and is negated through flipped ones.
    """
    _check_probability("beta", beta)
    if _concrete(beta) == 0.0:
        return spikes
    mask = jax.random.bernoulli(key, jnp.asarray(beta).astype(jnp.float32), spikes.shape)
    return jnp.where(mask, 1 - spikes, spikes)


def _per_example(x: jax.Array, batch_axis: int) -> jax.Array:
    """``x`` as ``(B, N)``: the batch axis first, everything else flattened."""
    return jnp.moveaxis(x, batch_axis, 0).reshape(x.shape[batch_axis], -1)


def _from_per_example(rows: jax.Array, like: jax.Array, batch_axis: int) -> jax.Array:
    shape = (like.shape[batch_axis],) + tuple(d for a, d in enumerate(like.shape) if a != batch_axis % like.ndim)
    return jnp.moveaxis(rows.reshape(shape), 0, batch_axis)


def _choose_exactly(key: jax.Array, eligible: jax.Array, count: jax.Array) -> jax.Array:
    """``(B, N)`` mask: per row, ``count[b]`` of the ``eligible`` entries, uniformly without replacement.

    Entries are ranked by a random permutation, so exactly
    ``min(count, eligible.sum())`` are chosen whatever the ties of the draws.
    """
    draws = jax.random.uniform(key, eligible.shape)
    order = jnp.where(eligible, draws, 2.0)  # ineligible entries rank last
    # One sort: the rank of each entry is the inverse of the sorting permutation,
    # written by a scatter (O(N)) rather than by sorting the permutation again.
    permutation = jnp.argsort(order, axis=1, stable=True)
    positions = jnp.broadcast_to(jnp.arange(order.shape[1], dtype=permutation.dtype), order.shape)
    rows = jnp.arange(order.shape[0])[:, None]
    rank = jnp.zeros_like(permutation).at[rows, permutation].set(positions, unique_indices=True)
    return eligible & (rank < count[:, None])


def _exact_count(fraction, n: jax.Array, n_max: int) -> jax.Array:
    """``int(fraction * n)`` per example for counts ``0 <= n <= n_max``, as Python computes it.

    The product is taken in float32 on the device. For a concrete
    ``fraction`` the counts where that differs from Python's float64
    ``int(fraction * n)`` (e.g. ``int(0.29 * 100) == 28``, float32 gives 29)
    are found on the host for every possible ``n`` and corrected, so the
    result equals Python's. A traced ``fraction`` gets the float32 floor
    (which can differ by one).
    """
    estimate = jnp.floor(jnp.asarray(fraction).astype(jnp.float32) * n.astype(jnp.float32)).astype(jnp.int32)
    concrete = _concrete(fraction)
    if concrete is None:
        return estimate
    counts = np.arange(n_max + 1)
    exact = np.floor(concrete * counts)  # float64, as Python's int() of the product
    device = np.floor(np.float32(concrete) * counts.astype(np.float32))  # IEEE float32, as on the device
    wrong = np.flatnonzero(exact != device)
    if wrong.size == 0:
        return estimate
    index = jnp.clip(jnp.searchsorted(jnp.asarray(wrong, jnp.int32), n), 0, wrong.size - 1)
    hit = jnp.asarray(wrong, jnp.int32)[index] == n
    return jnp.where(hit, jnp.asarray(exact[wrong], jnp.int32)[index], estimate)


def flip_exact(spikes: jax.Array, key: jax.Array, beta: float, batch_axis: int = 1) -> jax.Array:
    """Flips exactly ``int(beta * n1)`` spikes to 0 and ``int(beta * n0)`` silences to 1 per example.

    ``n1`` and ``n0`` count the ones and zeros of each example over every other
    axis (all time steps and neurons of the layer); the flipped entries are
    drawn uniformly without replacement, the two sets from the original spikes
    (so they are disjoint). This is what the NSNN authors' test scripts do to
    the output of each spiking layer; :func:`flip` is the i.i.d. Bernoulli
    version of the paper's text.

    Args:
      spikes: spikes in ``{0, 1}``, e.g. time-major ``(T, B, ...)``.
      key: PRNG key.
      beta: fraction in ``[0, 1]``. A concrete ``0`` returns ``spikes`` itself.
      batch_axis: the example axis (``1`` for time-major spikes).

    Returns:
      The flipped spikes, shape and dtype of ``spikes``; the gradient passes
      through unflipped entries and is negated through flipped ones.
    """
    _check_probability("beta", beta)
    if _concrete(beta) == 0.0:
        return spikes
    _batch_axes(spikes, batch_axis)
    rows = _per_example(spikes, batch_axis)
    ones = rows != 0
    k_on, k_off = jax.random.split(key)
    size = rows.shape[1]
    to_zero = _choose_exactly(k_on, ones, _exact_count(beta, jnp.sum(ones, axis=1), size))
    to_one = _choose_exactly(k_off, ~ones, _exact_count(beta, jnp.sum(~ones, axis=1), size))
    flipped = jnp.where(to_zero | to_one, 1 - rows, rows)
    return _from_per_example(flipped, spikes, batch_axis)


@contextlib.contextmanager
def flip_spikes(beta: float, key_name: str = "flip", mode: str = "bernoulli") -> Iterator[None]:
    """Context in which every :class:`~nsnn_jax.layers.SpikingNeuron` flips its output spikes.

    While active, each ``SpikingNeuron.__call__`` returns :func:`flip`
    (``mode='bernoulli'``) or :func:`flip_exact` (``mode='exact'``, counts per
    example over the layer's ``(T, B, ...)`` output, batch axis 1) of its
    spikes with the key ``module.make_rng(key_name)``, so the model is applied
    with ``rngs={'noise': k1, key_name: k2}``. The flips happen inside the
    network: the next layer receives the flipped spikes. What a layer sows
    (``firing_rate``, ``spikes``) is its output before the flip. The ReLU
    floor's layers (:class:`~nsnn_jax.layers.ReluFloor`) are left alone. ``beta = 0`` installs nothing and
    draws nothing: the model is exactly the same and needs no ``key_name`` rng.
    The ``'noise'`` stream is not touched, so the membrane noise is the same
    with and without flips for the same ``'noise'`` key.

    The interception happens when the model is traced. Under ``jax.jit``, enter
    the context inside the jitted function::

        @jax.jit
        def forward(variables, x, keys):
            with flip_spikes(0.1):
                return model.apply(variables, x, rngs={'noise': keys[0], 'flip': keys[1]})

    (a function traced outside the context and cached does not flip, and one
    first traced inside it keeps flipping when called outside).

    Args:
      beta: flip probability (or fraction, ``'exact'``) in ``[0, 1]`` (may be traced).
      key_name: the Flax rng stream the flips draw from.
      mode: ``'bernoulli'`` or ``'exact'``.

    Yields:
      None.
    """
    _check_probability("beta", beta)
    if mode not in FLIP_MODES:
        raise ValueError(f"mode must be one of {FLIP_MODES}, got {mode!r}.")
    if _concrete(beta) == 0.0:
        yield
        return

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        module = context.module
        if context.method_name != "__call__" or not isinstance(module, layers.SpikingNeuron):
            return out
        if mode == "exact":
            return flip_exact(out, module.make_rng(key_name), beta, batch_axis=1)
        return flip(out, module.make_rng(key_name), beta)

    with nn.intercept_methods(interceptor):
        yield


# ----------------------------------------------------------------------------- EventDrop


def drop_events(events: jax.Array, key: jax.Array, rho: float, counts: bool = True) -> jax.Array:
    """Random drop: every event is dropped independently with probability ``rho``.

    Args:
      events: event frames, any shape (e.g. ``(T, B, H, W, P)``); with
        ``counts=True`` the entries are non-negative event counts (binary frames
        are counts of 0 or 1).
      key: PRNG key.
      rho: drop probability in ``[0, 1]``. Concrete ``0`` returns ``events``,
        concrete ``1`` zeros.
      counts: ``True``: each count ``n`` is thinned to ``Binomial(n, 1 - rho)``
        (each of the ``n`` events kept with probability ``1 - rho``; for binary
        frames this is a Bernoulli mask). ``False``: each entry, whatever its
        value, is zeroed with probability ``rho`` (for frames that are not counts).

    Returns:
      The remaining events, shape and dtype of ``events``.
    """
    events = jnp.asarray(events)
    _check_probability("rho", rho)
    r = _concrete(rho)
    if r == 0.0:
        return events
    if r == 1.0:
        return jnp.zeros_like(events)
    keep = 1.0 - jnp.asarray(rho).astype(jnp.float32)
    if counts:
        return jax.random.binomial(key, events.astype(jnp.float32), keep).astype(events.dtype)
    mask = jax.random.bernoulli(key, keep, events.shape)
    return jnp.where(mask, events, jnp.zeros_like(events))


def drop_exact(events: jax.Array, key: jax.Array, rho: float, batch_axis: int = 1) -> jax.Array:
    """Zeros exactly ``int(rho * n)`` of the ``n`` non-zero entries of each example.

    The entries are drawn uniformly without replacement among the example's
    non-zero entries (all frames, pixels and polarities), as the NSNN authors'
    DVS-CIFAR test script does to its preprocessed frames.

    Args:
      events: event frames, e.g. time-major ``(T, B, H, W, P)``.
      key: PRNG key.
      rho: fraction in ``[0, 1]``. Concrete ``0`` returns ``events``.
      batch_axis: the example axis (``1`` for time-major frames).

    Returns:
      The frames with the chosen entries zeroed, shape and dtype of ``events``.
    """
    events = jnp.asarray(events)
    _check_probability("rho", rho)
    if _concrete(rho) == 0.0:
        return events
    _batch_axes(events, batch_axis)
    rows = _per_example(events, batch_axis)
    nonzero = rows != 0
    dropped = _choose_exactly(key, nonzero, _exact_count(rho, jnp.sum(nonzero, axis=1), rows.shape[1]))
    return _from_per_example(jnp.where(dropped, jnp.zeros_like(rows), rows), events, batch_axis)


def _window_mask(key: jax.Array, length: int, fraction, batch: int) -> jax.Array:
    """``(batch, length)`` bools, True in a random window of ``round(fraction * length)`` per row."""
    size = jnp.floor(jnp.asarray(fraction).astype(jnp.float32) * length + 0.5).astype(jnp.int32)
    start = jax.random.randint(key, (batch,), 0, length - size + 1)
    idx = jnp.arange(length)
    return (idx >= start[:, None]) & (idx < (start + size)[:, None])


def drop_by_time(events: jax.Array, key: jax.Array, rho: float) -> jax.Array:
    """Drop by time: all events in a random window of ``rho * T`` frames, per example.

    The window has ``round(rho * T)`` consecutive frames (half rounds up) and
    starts uniformly in ``[0, T - round(rho * T)]``, independently per example.

    Args:
      events: time-major event frames ``(T, B, ...)``.
      key: PRNG key.
      rho: fraction of the T frames to drop, in ``[0, 1]``.

    Returns:
      The events with the window zeroed, shape and dtype of ``events``.
    """
    events = jnp.asarray(events)
    _check_probability("rho", rho)
    if events.ndim < 2:
        raise ValueError(f"drop_by_time expects time-major (T, B, ...) events, got shape {events.shape}.")
    t, b = events.shape[:2]
    dropped = _window_mask(key, t, rho, b).T  # (T, B)
    dropped = dropped.reshape(dropped.shape + (1,) * (events.ndim - 2))
    return jnp.where(dropped, jnp.zeros_like(events), events)


def drop_by_area(events: jax.Array, key: jax.Array, rho: float) -> jax.Array:
    """Drop by area: all events in a random rectangle covering ``rho`` of the frame, per example.

    The rectangle has ``round(sqrt(rho) * H)`` rows and ``round(sqrt(rho) * W)``
    columns (the frame's aspect ratio; the covered fraction is exactly ``rho``
    when both are integers, otherwise the nearest such box), lies inside the
    frame at a uniformly random position drawn per example, and is the same for
    every frame and polarity of the example. (The EventDrop reference code
    sizes the box by ``rho`` per side; here ``rho`` is the fraction of the area,
    as for the other modes.)

    Args:
      events: event frames ``(T, B, H, W, ...)`` (e.g. ``(T, B, H, W, P)``).
      key: PRNG key.
      rho: fraction of the ``H * W`` pixels to drop, in ``[0, 1]``.

    Returns:
      The events with the rectangle zeroed, shape and dtype of ``events``.
    """
    events = jnp.asarray(events)
    _check_probability("rho", rho)
    if events.ndim < 4:
        raise ValueError(f"drop_by_area expects (T, B, H, W, ...) events, got shape {events.shape}.")
    _, b, h, w = events.shape[:4]
    side = jnp.sqrt(jnp.asarray(rho).astype(jnp.float32))
    k_rows, k_cols = jax.random.split(key)
    rows = _window_mask(k_rows, h, side, b)  # (B, H)
    cols = _window_mask(k_cols, w, side, b)  # (B, W)
    dropped = rows[:, :, None] & cols[:, None, :]  # (B, H, W)
    dropped = dropped.reshape((1,) + dropped.shape + (1,) * (events.ndim - 4))
    return jnp.where(dropped, jnp.zeros_like(events), events)


def event_drop(
    events: jax.Array,
    key: jax.Array,
    rho: float,
    mode: str = "random",
    counts: bool = True,
    include_identity: bool = False,
) -> jax.Array:
    """EventDrop (Gu et al. 2021) on time-major event frames ``(T, B, H, W, P)``.

    Args:
      events: event frames ``(T, B, H, W, P)`` (``'random'`` and ``'time'``
        accept any ``(T, B, ...)``).
      key: PRNG key.
      rho: drop ratio in ``[0, 1]``: the probability of dropping each event
        (``'random'``), the fraction of frames (``'time'``) or of pixels
        (``'area'``); each mode drops a fraction ``rho`` of the events in
        expectation. ``0`` keeps all events, ``1`` drops all.
      mode: ``'exact'`` (:func:`drop_exact`: exactly ``int(rho * n)`` of each
        example's ``n`` non-zero entries), ``'random'`` (:func:`drop_events`), ``'time'`` (:func:`drop_by_time`),
        ``'area'`` (:func:`drop_by_area`), or ``'mixed'``: one of the three
        chosen uniformly and independently per example.
      counts: how ``'random'`` drops, see :func:`drop_events`.
      include_identity: with ``'mixed'``, also choose "drop nothing" as a
        fourth option, as the EventDrop reference code does.

    Returns:
      The remaining events, shape and dtype of ``events``.
    """
    if mode not in EVENT_DROP_MODES:
        raise ValueError(f"Unknown EventDrop mode {mode!r}; expected one of {EVENT_DROP_MODES}.")
    _check_probability("rho", rho)
    if mode == "exact":
        return drop_exact(events, key, rho)
    if mode == "random":
        return drop_events(events, key, rho, counts)
    if mode == "time":
        return drop_by_time(events, key, rho)
    if mode == "area":
        return drop_by_area(events, key, rho)
    events = jnp.asarray(events)
    if events.ndim < 4:
        raise ValueError(
            f"event_drop(mode='mixed') expects (T, B, H, W, ...) events, got shape {events.shape}."
        )
    k_choice, k_random, k_time, k_area = jax.random.split(key, 4)
    options = 4 if include_identity else 3
    choice = jax.random.randint(k_choice, (events.shape[1],), 0, options)
    choice = choice.reshape((1, -1) + (1,) * (events.ndim - 2))
    out = jnp.where(choice == 0, drop_events(events, k_random, rho, counts), events)
    out = jnp.where(choice == 1, drop_by_time(events, k_time, rho), out)
    return jnp.where(choice == 2, drop_by_area(events, k_area, rho), out)
