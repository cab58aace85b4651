"""Noise samplers: exact ``jax.random`` draws, or a cheap counter-based one.

Drawing the membrane noise is a large share of a noisy step on CPU: threefry
spends ~7 ns per 32-bit word there, and ``jax.random.normal`` adds an inverse
error function on top. The ``"hash16"`` sampler instead

1. derives two 32-bit seed words from the key with one tiny threefry draw
   (so keys stay explicit: same key, same noise; split keys, independent noise),
2. hashes the element counter with two rounds of the murmur3 finaliser
   (a bijective mixer with full avalanche) keyed by those words, and
3. cuts each 32-bit word into two 16-bit levels ``k``, mapped to noise by the
   family's quantile at ``(k + 1/2) / 2^16`` through a 65 536-entry table of
   those quantiles computed in float64 and rounded once (:func:`quantile_table`).

``"hash16_quantile"`` maps the same levels with ``family.level_quantile``
instead: a few float32 operations per element (no table, no gather), within
``family.level_quantile_rtol`` (at most ``1e-6``) of the table. It is faster
for one noisy layer alone, but slower inside whole training steps on CPU
(``python -m benchmarks.noise_cost``, benchmarks/README.md), so the table
stays the default.

Either way the result is the family's law quantised to 2^16 equiprobable values: the
firing probability ``P(v + eps > 0)`` differs from ``F(v)`` by at most
``2^-16``, far below the Monte-Carlo error of any realistic experiment; the
tails are cut at the ``2^-17`` quantile (4.1 sigma for a Gaussian). It is not
a cryptographic generator. ``"threefry"`` draws exactly with ``jax.random``.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from nsnn_jax import noise as noise_lib

__all__ = ["SAMPLERS", "counter_bits", "quantile_table", "draw_noise"]

SAMPLERS = ("hash16", "hash16_quantile", "threefry")
_LEVELS = 1 << noise_lib.LEVEL_BITS


def _fmix32(h: jax.Array) -> jax.Array:
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def counter_bits(key: jax.Array, size: int) -> jax.Array:
    """``size`` pseudo-random uint32 words from ``key`` (counter-based hash).

    Args:
      key: a JAX PRNG key.
      size: number of words, < 2^32.

    Returns:
      ``(size,)`` uint32.
    """
    if size >= 1 << 32:
        raise ValueError(f"counter_bits draws fewer than 2^32 words at once, asked for {size}.")
    seed = jax.random.bits(key, (2,), jnp.uint32)
    counter = jax.lax.iota(jnp.uint32, size)
    return _fmix32(_fmix32(counter * jnp.uint32(0x9E3779B9) + seed[0]) ^ seed[1])


@functools.lru_cache(maxsize=64)
def quantile_table(family: noise_lib.NoiseFamily) -> np.ndarray:
    """The family's quantiles at ``(k + 1/2) / 2^16``, ``k = 0 .. 2^16 - 1`` (float32).

    Computed in float64 with ``family.quantile_f64``, then rounded once: what
    ``hash16`` gathers from, and the reference ``family.level_quantile`` is checked against.
    """
    u = (np.arange(_LEVELS, dtype=np.float64) + 0.5) / _LEVELS
    return family.quantile_f64(u).astype(np.float32)


def draw_noise(family: noise_lib.NoiseFamily, key: jax.Array, shape, dtype=jnp.float32,
               sampler: str = "hash16") -> jax.Array:
    """Draws i.i.d. noise of ``family`` with the chosen sampler.

    Args:
      family: the noise law.
      key: PRNG key.
      shape: output shape.
      dtype: floating output dtype.
      sampler: ``"hash16"`` (fast, 16-bit quantised law, table gather),
        ``"hash16_quantile"`` (the same levels through ``family.level_quantile``)
        or ``"threefry"`` (``family.sample``, exact).

    Returns:
      Noise of the given shape and dtype.
    """
    if sampler == "threefry":
        return family.sample(key, shape, dtype)
    if sampler not in ("hash16", "hash16_quantile"):
        raise ValueError(f"Unknown sampler {sampler!r}; expected one of {SAMPLERS}.")
    size = math.prod(shape)
    words = counter_bits(key, (size + 1) // 2)
    levels = jnp.concatenate([words >> 16, words & jnp.uint32(0xFFFF)])[:size]
    if sampler == "hash16_quantile":
        return family.level_quantile(levels).astype(dtype).reshape(shape)
    return jnp.asarray(quantile_table(family), dtype)[levels].reshape(shape)
