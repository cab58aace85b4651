"""Membrane-noise families.

A noisy neuron fires when ``v + eps > 0`` (``v = u - v_th``), so it fires with
probability ``P(eps > -v) = F(v)`` for the symmetric families below. The noise
PDF ``p(v) = F'(v)`` is what noise-driven learning (NDL) uses as the
post-synaptic factor ``dO/du``, which is why each family is paired with a
classic surrogate gradient (see :mod:`nsnn_jax.surrogate`).

A family is one class that owns everything about its law: ``cdf``, ``pdf``,
``sample``, ``quantile`` (JAX) and ``quantile_f64`` (NumPy float64, for the
tables of :mod:`nsnn_jax.sampling`), its surrogate twin (``surrogate_form``,
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
from typing import ClassVar

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
        """The inverse CDF at ``u`` in ``(0, 1)``, NumPy float64 (tables built once, off the device)."""
        return self.scale * self.unit_quantile_f64(np.asarray(u, np.float64))

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
