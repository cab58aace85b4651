"""Surrogate gradients for the deterministic LIF (DSNN) and their noise twins.

A surrogate replaces ``dH(v)/dv`` (a Dirac delta) by a bump ``SG(v)`` in the
backward pass. Noise-driven learning explains each classic surrogate as the PDF
of a membrane-noise law (Ma, Yan & Tang 2023, Table 1):

=============  ==========================================  ======================
surrogate      ``SG(x)`` with sharpness ``alpha``            noise twin (scale)
=============  ==========================================  ======================
erf            ``alpha/sqrt(pi) * exp(-(alpha x)^2)``        Gaussian(1/(alpha sqrt 2))
sigmoid        ``alpha * s(alpha x) (1 - s(alpha x))``       Logistic(1/alpha)
rectangular    ``alpha/2 * 1[|x| <= 1/alpha]``               Uniform(1/alpha)
triangular     ``alpha^2 * max(0, 1/alpha - |x|)``           Triangular(1/alpha)
arctan         ``alpha/2 / (1 + (pi/2 alpha x)^2)``          Arctan(2/(pi alpha))
=============  ==========================================  ======================

``matching_surrogate(noise)`` and ``matching_noise(surrogate)`` convert between
the two columns; the surrogate then equals the noise PDF exactly. The
conversions live on the noise classes (:mod:`nsnn_jax.noise`): each declares
its ``surrogate_form`` and converts its scale to and from ``alpha``; defining a
family registers it here as the twin of its form.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

if TYPE_CHECKING:  # noise imports this module to name its twins
    from nsnn_jax import noise as noise_lib

__all__ = [
    "Surrogate",
    "SURROGATES",
    "get_surrogate",
    "matching_surrogate",
    "matching_noise",
    "register_twin",
    "twin_family",
]

_FORMS = ("erf", "sigmoid", "rectangular", "triangular", "arctan")

SURROGATES = _FORMS

# form -> the noise family class whose PDF it is, registered by the family classes.
_TWIN_FAMILIES: dict[str, type] = {}


def register_twin(form: str, family_class: type) -> None:
    """Records ``family_class`` (a :class:`nsnn_jax.noise.NoiseFamily` subclass) as the twin of ``form``.

    Raises:
      ValueError: ``form`` is not a surrogate form, or already has a twin.
    """
    if form not in _FORMS:
        raise ValueError(f"{family_class.__name__} names the surrogate form {form!r}; expected one of {list(_FORMS)}.")
    if form in _TWIN_FAMILIES and _TWIN_FAMILIES[form] is not family_class:
        raise ValueError(f"The surrogate {form!r} already has the twin {_TWIN_FAMILIES[form].__name__}.")
    _TWIN_FAMILIES[form] = family_class


def twin_family(form: str) -> type:
    """The noise family class whose PDF the surrogate ``form`` is.

    Raises:
      ValueError: no family declares ``form`` as its surrogate.
    """
    if form not in _TWIN_FAMILIES:
        raise ValueError(f"No noise family is the twin of the surrogate {form!r}; known: {sorted(_TWIN_FAMILIES)}.")
    return _TWIN_FAMILIES[form]


@dataclasses.dataclass(frozen=True)
class Surrogate:
    """A surrogate derivative of the Heaviside step.

    Attributes:
      form: one of ``erf, sigmoid, rectangular, triangular, arctan``.
      alpha: sharpness (> 0); larger is closer to the true (Dirac) derivative.
        Each form integrates to 1 over the real line for every alpha.
    """

    form: str = "erf"
    alpha: float = 1.0

    def __post_init__(self):
        if self.form not in _FORMS:
            raise ValueError(f"Unknown surrogate {self.form!r}; expected one of {list(_FORMS)}.")
        if not math.isfinite(self.alpha) or self.alpha <= 0:
            raise ValueError(f"Surrogate alpha must be finite and > 0, got {self.alpha!r}.")
        object.__setattr__(self, "alpha", float(self.alpha))

    def __call__(self, x: jax.Array) -> jax.Array:
        """``SG(x)``, element-wise, in the dtype of ``x``."""
        a = self.alpha
        if self.form == "erf":
            return jnp.exp(-jnp.square(a * x)) * (a / math.sqrt(math.pi))
        if self.form == "sigmoid":
            s = jax.nn.sigmoid(a * x)
            return s * (1.0 - s) * a
        if self.form == "rectangular":
            return jnp.where(jnp.abs(x) <= 1.0 / a, 0.5 * a, 0.0).astype(jnp.result_type(x))
        if self.form == "triangular":
            return jnp.maximum(1.0 / a - jnp.abs(x), 0.0) * (a * a)
        z = (0.5 * math.pi * a) * x
        return (0.5 * a) / (1.0 + z * z)


def get_surrogate(form: str, alpha: float = 1.0) -> Surrogate:
    """Returns the surrogate ``form`` with sharpness ``alpha`` (validated)."""
    return Surrogate(str(form).lower(), alpha)


def matching_surrogate(noise: "noise_lib.NoiseFamily") -> Surrogate:
    """The surrogate equal to ``noise.pdf`` everywhere (the NDL <-> SGL table): ``noise.surrogate()``."""
    return noise.surrogate()


def matching_noise(surrogate: Surrogate) -> "noise_lib.NoiseFamily":
    """The noise family whose PDF equals ``surrogate`` everywhere."""
    return twin_family(surrogate.form).from_surrogate_alpha(surrogate.alpha)
