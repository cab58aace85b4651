"""Membrane-noise families.

A noisy neuron fires when ``v + eps > 0`` (``v = u - v_th``), so it fires with
probability ``P(eps > -v) = F(v)`` for the symmetric families below. The noise
PDF ``p(v) = F'(v)`` is what noise-driven learning (NDL) uses as the
post-synaptic factor ``dO/du``, which is why each family is paired with a
classic surrogate gradient (see :mod:`nsnn_jax.surrogate`).

Every family is a frozen dataclass: hashable, so it can be a static argument of
``jax.jit`` and of ``jax.custom_vjp``. All have zero median (and zero mean where
the mean exists; the Cauchy law has none).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Callable

import jax
import jax.numpy as jnp

__all__ = [
    "NoiseFamily",
    "Gaussian",
    "Logistic",
    "Uniform",
    "Triangular",
    "Arctan",
    "NOISE_FAMILIES",
    "get_noise",
]


@dataclasses.dataclass(frozen=True)
class NoiseFamily:
    """Base class: a symmetric, zero-median noise law with one scale parameter.

    Attributes:
      scale: the family's scale (sigma, logistic scale, half-width, ...); > 0.
    """

    scale: float

    name = "base"

    def __post_init__(self):
        scale = self.scale
        if (isinstance(scale, bool) or not isinstance(scale, numbers.Real)
                or not math.isfinite(scale) or scale <= 0):
            raise ValueError(
                f"{type(self).__name__} noise needs a finite scale > 0, got {scale!r}."
            )
        object.__setattr__(self, "scale", float(scale))

    def cdf(self, x: jax.Array) -> jax.Array:
        """``P(eps <= x)``, element-wise; also the firing probability at ``v = x``."""
        raise NotImplementedError

    def pdf(self, x: jax.Array) -> jax.Array:
        """Density of ``eps`` at ``x``: the NDL post-synaptic factor at ``v = x``."""
        raise NotImplementedError

    def sample(self, key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        """Draws i.i.d. noise of the given shape and floating dtype."""
        raise NotImplementedError

    @property
    def std(self) -> float:
        """Standard deviation of the law (``inf`` for the Cauchy law)."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class Gaussian(NoiseFamily):
    """Gaussian noise ``N(0, sigma^2)``; ``scale`` is sigma. Surrogate: ERF."""

    name = "gaussian"

    def cdf(self, x):
        return 0.5 * (1.0 + jax.lax.erf(x * (1.0 / (self.scale * math.sqrt(2.0)))))

    def pdf(self, x):
        z = x * (1.0 / self.scale)
        return jnp.exp(-0.5 * z * z) * (1.0 / (self.scale * math.sqrt(2.0 * math.pi)))

    def sample(self, key, shape, dtype=jnp.float32):
        return self.scale * jax.random.normal(key, shape, dtype)

    @property
    def std(self):
        return self.scale


@dataclasses.dataclass(frozen=True)
class Logistic(NoiseFamily):
    """Logistic noise with scale ``s`` (std ``s * pi / sqrt(3)``). Surrogate: sigmoid."""

    name = "logistic"

    def cdf(self, x):
        return jax.nn.sigmoid(x * (1.0 / self.scale))

    def pdf(self, x):
        s = jax.nn.sigmoid(x * (1.0 / self.scale))
        return s * (1.0 - s) * (1.0 / self.scale)

    def sample(self, key, shape, dtype=jnp.float32):
        return self.scale * jax.random.logistic(key, shape, dtype)

    @property
    def std(self):
        return self.scale * math.pi / math.sqrt(3.0)


@dataclasses.dataclass(frozen=True)
class Uniform(NoiseFamily):
    """Uniform noise on ``[-a, a]``; ``scale`` is ``a``. Surrogate: rectangular."""

    name = "uniform"

    def cdf(self, x):
        return jnp.clip((x + self.scale) * (0.5 / self.scale), 0.0, 1.0)

    def pdf(self, x):
        inside = jnp.abs(x) <= self.scale
        return jnp.where(inside, 0.5 / self.scale, 0.0).astype(jnp.result_type(x))

    def sample(self, key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -self.scale, self.scale)

    @property
    def std(self):
        return self.scale / math.sqrt(3.0)


@dataclasses.dataclass(frozen=True)
class Triangular(NoiseFamily):
    """Triangular noise on ``[-a, a]`` with its mode at 0. Surrogate: triangular."""

    name = "triangular"

    def cdf(self, x):
        a = self.scale
        xc = jnp.clip(x, -a, a)
        left = 0.5 * ((a + xc) / a) ** 2
        right = 1.0 - 0.5 * ((a - xc) / a) ** 2
        return jnp.where(xc < 0, left, right)

    def pdf(self, x):
        a = self.scale
        return jnp.maximum(a - jnp.abs(x), 0.0) * (1.0 / (a * a))

    def sample(self, key, shape, dtype=jnp.float32):
        # Inverse CDF of one uniform: one draw per element instead of two.
        u = jax.random.uniform(key, shape, dtype)
        a = self.scale
        return jnp.where(
            u < 0.5, a * (jnp.sqrt(2.0 * u) - 1.0), a * (1.0 - jnp.sqrt(2.0 * (1.0 - u)))
        )

    @property
    def std(self):
        return self.scale / math.sqrt(6.0)


@dataclasses.dataclass(frozen=True)
class Arctan(NoiseFamily):
    """Cauchy noise with scale ``gamma``; its CDF is ``1/2 + arctan(x/gamma)/pi``.

    Surrogate: arctangent. Heavy-tailed: no mean or variance, median 0.
    """

    name = "arctan"

    def cdf(self, x):
        return 0.5 + jnp.arctan(x * (1.0 / self.scale)) * (1.0 / math.pi)

    def pdf(self, x):
        z = x * (1.0 / self.scale)
        return (1.0 / (math.pi * self.scale)) / (1.0 + z * z)

    def sample(self, key, shape, dtype=jnp.float32):
        return self.scale * jax.random.cauchy(key, shape, dtype)

    @property
    def std(self):
        return math.inf


NOISE_FAMILIES: dict[str, Callable[[float], NoiseFamily]] = {
    cls.name: cls for cls in (Gaussian, Logistic, Uniform, Triangular, Arctan)
}


def get_noise(name: str, scale: float) -> NoiseFamily:
    """Returns the noise family called ``name`` with the given scale.

    Args:
      name: one of ``gaussian, logistic, uniform, triangular, arctan`` (any case).
      scale: the family's scale parameter, > 0.

    Raises:
      ValueError: unknown name or a scale <= 0.
    """
    key = str(name).lower()
    if key not in NOISE_FAMILIES:
        raise ValueError(
            f"Unknown noise family {name!r}; expected one of {sorted(NOISE_FAMILIES)}."
        )
    return NOISE_FAMILIES[key](scale)
