"""Membrane-noise families.

A noisy neuron fires when ``v + eps > 0`` (``v = u - v_th``), so it fires with
probability ``P(eps > -v) = F(v)`` for the symmetric families below. The noise
PDF ``p(v) = F'(v)`` is what noise-driven learning (NDL) uses as the
post-synaptic factor ``dO/du``, which is why each family is paired with a
classic surrogate gradient (see :mod:`nsnn_jax.surrogate`).

A family is one class that owns everything about its law: ``cdf``, ``pdf``,
``sample``, ``quantile`` (JAX), ``quantile_f64`` (NumPy float64, the exact
reference) and ``level_quantile`` (the float32 quantile at the 16-bit levels
``(k + 1/2) / 2^16`` of :mod:`nsnn_jax.sampling`, element-wise arithmetic
without a table, its error against ``quantile_f64`` bounded by
``level_quantile_rtol``), its surrogate twin (``surrogate_form``,
``surrogate_alpha``, ``from_surrogate_alpha``) and ``std``. Defining a subclass
with a ``name`` registers it in :data:`NOISE_FAMILIES` (so :func:`get_noise`
finds it) and as the twin of its surrogate form.

Every family is a frozen dataclass: hashable, so it can be a static argument of
``jax.jit`` and of ``jax.custom_vjp``. All have zero median (and zero mean where
the mean exists; the Cauchy law has none).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import statistics
from typing import ClassVar, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from nsnn_jax import surrogate as surrogate_lib

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

# name -> family class, filled as the classes are defined.
NOISE_FAMILIES: dict[str, type] = {}

LEVEL_BITS = 16
_HALF = float(1 << LEVEL_BITS)  # 2^16: the odd numerator m = 2k + 1 of u = m / 2^17 is below 2 * _HALF


def _odd_numerators(levels: jax.Array) -> jax.Array:
    """``m = 2k + 1`` as float32 (exact: m < 2^17), so that ``u = m / 2^17``."""
    return (jnp.asarray(levels).astype(jnp.uint32) * 2 + 1).astype(jnp.float32)


def _nearer_end(m: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(n, sign)``: ``n = min(m, 2^17 - m)`` (``n / 2^17`` is the probability to the nearer end,
    exact) and ``sign = -1`` below the median, ``+1`` above (``m`` is odd, never the median)."""
    upper = m > _HALF
    return jnp.where(upper, 2 * _HALF - m, m), jnp.where(upper, 1.0, -1.0).astype(jnp.float32)


def _sin_cos_quarter(r: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(sin r, cos r)`` for ``r`` in ``[0, pi/4]``: Taylor series to ``r^9`` and ``r^10``
    (truncation below ``3e-9`` relative), only products and sums."""
    r2 = r * r
    sin = r * (1.0 + r2 * (-1.0 / 6 + r2 * (1.0 / 120 + r2 * (-1.0 / 5040 + r2 * (1.0 / 362880)))))
    cos = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24 + r2 * (-1.0 / 720 + r2 * (1.0 / 40320 + r2 * (-1.0 / 3628800)))))
    return sin, cos


def _erfinv_giles(x: jax.Array, w: jax.Array) -> jax.Array:
    """``erfinv(x)`` given ``w = -log(1 - x^2)``: M. Giles' single-precision polynomials
    ("Approximating the erfinv function", GPU Computing Gems Jade, 2011)."""
    central = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
               -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
    tail = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
            -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)
    wc, wt = w - 2.5, jnp.sqrt(w) - 3.0
    pc, pt = jnp.float32(central[0]), jnp.float32(tail[0])
    for c, t in zip(central[1:], tail[1:]):
        pc, pt = c + pc * wc, t + pt * wt
    return jnp.where(w < 5.0, pc, pt) * x


@dataclasses.dataclass(frozen=True)
class NoiseFamily:
    """Base class: a symmetric, zero-median noise law with one scale parameter.

    Attributes:
      scale: the family's scale (sigma, logistic scale, half-width, ...); > 0.
    """

    scale: float

    name: ClassVar[str] = "base"
    # The surrogate form whose sharpness alpha makes it equal to this family's PDF.
    surrogate_form: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            if cls.name in NOISE_FAMILIES:
                raise ValueError(f"A noise family named {cls.name!r} is already defined.")
            surrogate_lib.register_twin(cls.surrogate_form, cls)
            NOISE_FAMILIES[cls.name] = cls

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

    def quantile(self, u: jax.Array) -> jax.Array:
        """The inverse CDF at probabilities ``u`` in ``(0, 1)``, element-wise, in the dtype of ``u``."""
        raise NotImplementedError

    @staticmethod
    def unit_quantile_f64(u: np.ndarray) -> np.ndarray:
        """The inverse CDF of the family with scale 1 at ``u`` in ``(0, 1)``, NumPy float64."""
        raise NotImplementedError

    def quantile_f64(self, u: np.ndarray) -> np.ndarray:
        """The inverse CDF at ``u`` in ``(0, 1)``, NumPy float64: the exact reference, off the device."""
        return self.scale * self.unit_quantile_f64(np.asarray(u, np.float64))

    # Bound on |level_quantile(k) - quantile_f64((k + 1/2) / 2^16)| / |quantile_f64(...)| over all
    # 2^16 levels and any scale (tests check every level); None: not stated (the generic version).
    level_quantile_rtol: ClassVar[Optional[float]] = None

    def level_quantile(self, levels: jax.Array) -> jax.Array:
        """The quantile at ``u = (k + 1/2) / 2^16`` of integer levels ``k`` in ``[0, 2^16)``, float32.

        Element-wise arithmetic (no table, no gather), so XLA fuses it with the
        hash that draws the levels. Its relative error against
        :meth:`quantile_f64` is at most :attr:`level_quantile_rtol` at every level.
        This generic version evaluates :meth:`quantile` in float32 (no stated
        bound); the families below use forms that keep the tails' and the
        centre's relative precision.

        Args:
          levels: unsigned or non-negative integer levels, any shape.

        Returns:
          float32 noise values, the shape of ``levels``.
        """
        return self.quantile(_odd_numerators(levels) * (0.5 / _HALF))

    @property
    def std(self) -> float:
        """Standard deviation of the law (``inf`` for the Cauchy law)."""
        raise NotImplementedError

    def surrogate_alpha(self) -> float:
        """The sharpness alpha of :attr:`surrogate_form` that makes it equal to :meth:`pdf`."""
        raise NotImplementedError

    @classmethod
    def from_surrogate_alpha(cls, alpha: float) -> "NoiseFamily":
        """The family whose PDF equals the :attr:`surrogate_form` surrogate with sharpness ``alpha``."""
        raise NotImplementedError

    def surrogate(self) -> surrogate_lib.Surrogate:
        """The surrogate gradient equal to :meth:`pdf` everywhere, its twin (Ma, Yan & Tang 2023, Table 1)."""
        return surrogate_lib.Surrogate(self.surrogate_form, self.surrogate_alpha())


@dataclasses.dataclass(frozen=True)
class Gaussian(NoiseFamily):
    """Gaussian noise ``N(0, sigma^2)``; ``scale`` is sigma. Surrogate: ERF."""

    name = "gaussian"
    surrogate_form = "erf"

    def cdf(self, x):
        return 0.5 * (1.0 + jax.lax.erf(x * (1.0 / (self.scale * math.sqrt(2.0)))))

    def pdf(self, x):
        z = x * (1.0 / self.scale)
        return jnp.exp(-0.5 * z * z) * (1.0 / (self.scale * math.sqrt(2.0 * math.pi)))

    def sample(self, key, shape, dtype=jnp.float32):
        return self.scale * jax.random.normal(key, shape, dtype)

    def quantile(self, u):
        return self.scale * ndtri(u)

    @staticmethod
    def unit_quantile_f64(u):
        return np.vectorize(statistics.NormalDist().inv_cdf, otypes=[np.float64])(u)

    level_quantile_rtol = 1e-6  # Giles' polynomial; 3.0e-7 measured on CPU

    def level_quantile(self, levels):
        # sigma * sqrt(2) * erfinv(2u - 1), with 2u - 1 = (m - 2^16) / 2^16 and
        # 1 - (2u - 1)^2 = m (2^17 - m) / 2^32 formed from exact integers (no cancellation).
        m = _odd_numerators(levels)
        w = -jnp.log(m * (2 * _HALF - m) * (1.0 / _HALF**2))
        return (self.scale * math.sqrt(2.0)) * _erfinv_giles((m - _HALF) * (1.0 / _HALF), w)

    @property
    def std(self):
        return self.scale

    def surrogate_alpha(self):
        return 1.0 / (self.scale * math.sqrt(2.0))

    @classmethod
    def from_surrogate_alpha(cls, alpha):
        return cls(1.0 / (alpha * math.sqrt(2.0)))


@dataclasses.dataclass(frozen=True)
class Logistic(NoiseFamily):
    """Logistic noise with scale ``s`` (std ``s * pi / sqrt(3)``). Surrogate: sigmoid."""

    name = "logistic"
    surrogate_form = "sigmoid"

    def cdf(self, x):
        return jax.nn.sigmoid(x * (1.0 / self.scale))

    def pdf(self, x):
        s = jax.nn.sigmoid(x * (1.0 / self.scale))
        return s * (1.0 - s) * (1.0 / self.scale)

    def sample(self, key, shape, dtype=jnp.float32):
        return self.scale * jax.random.logistic(key, shape, dtype)

    def quantile(self, u):
        return self.scale * (jnp.log(u) - jnp.log1p(-u))

    @staticmethod
    def unit_quantile_f64(u):
        return np.log(u) - np.log1p(-u)

    level_quantile_rtol = 5e-7  # 2.6e-7 measured on CPU

    def level_quantile(self, levels):
        # log(u / (1 - u)) = sign * log1p((2^17 - 2n) / n) from the nearer end n: exact integers
        # into one division and log1p, so the centre keeps its relative precision.
        n, sign = _nearer_end(_odd_numerators(levels))
        return (sign * self.scale) * jnp.log1p((2 * _HALF - 2 * n) / n)

    @property
    def std(self):
        return self.scale * math.pi / math.sqrt(3.0)

    def surrogate_alpha(self):
        return 1.0 / self.scale

    @classmethod
    def from_surrogate_alpha(cls, alpha):
        return cls(1.0 / alpha)


@dataclasses.dataclass(frozen=True)
class Uniform(NoiseFamily):
    """Uniform noise on ``[-a, a]``; ``scale`` is ``a``. Surrogate: rectangular."""

    name = "uniform"
    surrogate_form = "rectangular"

    def cdf(self, x):
        return jnp.clip((x + self.scale) * (0.5 / self.scale), 0.0, 1.0)

    def pdf(self, x):
        inside = jnp.abs(x) <= self.scale
        return jnp.where(inside, 0.5 / self.scale, 0.0).astype(jnp.result_type(x))

    def sample(self, key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -self.scale, self.scale)

    def quantile(self, u):
        return self.scale * (2.0 * u - 1.0)

    @staticmethod
    def unit_quantile_f64(u):
        return 2.0 * u - 1.0

    level_quantile_rtol = 2e-7  # two roundings (scale, product); 9.6e-8 measured

    def level_quantile(self, levels):
        # a (2u - 1) = a (m - 2^16) / 2^16: exact up to the one product.
        return (_odd_numerators(levels) - _HALF) * jnp.float32(self.scale / _HALF)

    @property
    def std(self):
        return self.scale / math.sqrt(3.0)

    def surrogate_alpha(self):
        return 1.0 / self.scale

    @classmethod
    def from_surrogate_alpha(cls, alpha):
        return cls(1.0 / alpha)


@dataclasses.dataclass(frozen=True)
class Triangular(NoiseFamily):
    """Triangular noise on ``[-a, a]`` with its mode at 0. Surrogate: triangular."""

    name = "triangular"
    surrogate_form = "triangular"

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
        return self.quantile(jax.random.uniform(key, shape, dtype))

    def quantile(self, u):
        a = self.scale
        return jnp.where(
            u < 0.5, a * (jnp.sqrt(2.0 * u) - 1.0), a * (1.0 - jnp.sqrt(2.0 * (1.0 - u)))
        )

    @staticmethod
    def unit_quantile_f64(u):
        return np.where(u < 0.5, np.sqrt(2.0 * u) - 1.0, 1.0 - np.sqrt(2.0 * (1.0 - u)))

    level_quantile_rtol = 5e-7  # 2.0e-7 measured on CPU

    def level_quantile(self, levels):
        # sign * a * (1 - sqrt(y)) with y = 2n / 2^17 from the nearer end, written
        # (1 - y) / (1 + sqrt(y)) so that the centre does not cancel.
        n, sign = _nearer_end(_odd_numerators(levels))
        y = n * (1.0 / _HALF)
        return (sign * self.scale) * ((_HALF - n) * (1.0 / _HALF)) / (1.0 + jnp.sqrt(y))

    @property
    def std(self):
        return self.scale / math.sqrt(6.0)

    def surrogate_alpha(self):
        return 1.0 / self.scale

    @classmethod
    def from_surrogate_alpha(cls, alpha):
        return cls(1.0 / alpha)


@dataclasses.dataclass(frozen=True)
class Arctan(NoiseFamily):
    """Cauchy noise with scale ``gamma``; its CDF is ``1/2 + arctan(x/gamma)/pi``.

    Surrogate: arctangent. Heavy-tailed: no mean or variance, median 0.
    """

    name = "arctan"
    surrogate_form = "arctan"

    def cdf(self, x):
        return 0.5 + jnp.arctan(x * (1.0 / self.scale)) * (1.0 / math.pi)

    def pdf(self, x):
        z = x * (1.0 / self.scale)
        return (1.0 / (math.pi * self.scale)) / (1.0 + z * z)

    def sample(self, key, shape, dtype=jnp.float32):
        return self.scale * jax.random.cauchy(key, shape, dtype)

    def quantile(self, u):
        # tan(pi (u - 1/2)) = -1 / tan(pi u): from the nearer end, so the tails keep their
        # relative precision (u - 1/2 would round away the small distance to 0 or 1).
        tail = jnp.where(u < 0.5, u, 1.0 - u)
        return jnp.where(u < 0.5, -self.scale, self.scale) / jnp.tan(math.pi * tail)

    @staticmethod
    def unit_quantile_f64(u):
        return np.tan(math.pi * (u - 0.5))

    level_quantile_rtol = 1e-6  # 2.4e-7 measured on CPU

    def level_quantile(self, levels):
        # gamma tan(pi (u - 1/2)) = sign * gamma * cot(pi t), t = n / 2^17 the nearer end's
        # probability: tan(pi (1/2 - t)) for t >= 1/4, 1 / tan(pi t) below, so only angles in
        # (0, pi/4] occur, where short Taylor series give sin and cos (XLA's tan is a slow
        # scalar loop on CPU).
        n, sign = _nearer_end(_odd_numerators(levels))
        near_centre = n >= _HALF / 2
        r = jnp.where(near_centre, _HALF - n, n) * (math.pi / (2 * _HALF))
        sin, cos = _sin_cos_quarter(r)
        return (sign * self.scale) * jnp.where(near_centre, sin, cos) / jnp.where(near_centre, cos, sin)

    @property
    def std(self):
        return math.inf

    def surrogate_alpha(self):
        return 2.0 / (math.pi * self.scale)

    @classmethod
    def from_surrogate_alpha(cls, alpha):
        return cls(2.0 / (math.pi * alpha))


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
