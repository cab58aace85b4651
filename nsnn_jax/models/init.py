"""Weight initialisers of the published PyTorch networks, as flax initialisers.

- ``"torch"``: PyTorch's default for ``Conv2d`` and ``Linear``,
  ``kaiming_uniform(a=sqrt(5))`` for the weight, i.e. ``U(-1/sqrt(fan_in),
  1/sqrt(fan_in))``, and the same uniform law for the bias.
- ``"kaiming"``: Kaiming normal in fan-out mode for ReLU, ``N(0, 2/fan_out)``
  with ``fan_out = C_out * k * k`` (untruncated), for the weight; the bias keeps
  PyTorch's default. The authors' VGGSNN and CIFARNet convolutions.
- ``"lecun"``: flax's defaults (``lecun_normal`` kernel, zero bias), the
  initialisation of the ``*_table5`` forms.

Fans follow PyTorch: ``fan_in = C_in * kh * kw`` and ``fan_out = C_out * kh * kw``
for a conv kernel ``(kh, kw, C_in, C_out)``; ``D_in`` and ``D_out`` for a dense
kernel ``(D_in, D_out)``.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
from flax import linen as nn

__all__ = ["INITS", "torch_kernel", "torch_bias", "kaiming_fan_out", "initializers"]

INITS = ("torch", "kaiming", "lecun")


def torch_kernel() -> Callable:
    """PyTorch's default weight law: ``U(+-1/sqrt(fan_in))`` (variance ``1/(3 fan_in)``)."""
    return nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def torch_bias(fan_in: int) -> Callable:
    """PyTorch's default bias law for a layer with ``fan_in`` inputs: ``U(+-1/sqrt(fan_in))``."""
    if fan_in < 1:
        raise ValueError(f"fan_in must be >= 1, got {fan_in!r}.")
    bound = 1.0 / math.sqrt(fan_in)

    def init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def kaiming_fan_out() -> Callable:
    """``kaiming_normal_(mode='fan_out', nonlinearity='relu')``: ``N(0, 2/fan_out)``, untruncated."""
    return nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def initializers(scheme: str, fan_in: int) -> tuple[Callable, Callable]:
    """``(kernel_init, bias_init)`` of ``scheme`` (one of :data:`INITS`) for a layer with ``fan_in`` inputs.

    Raises:
      ValueError: unknown scheme.
    """
    if scheme == "torch":
        return torch_kernel(), torch_bias(fan_in)
    if scheme == "kaiming":
        return kaiming_fan_out(), torch_bias(fan_in)
    if scheme == "lecun":
        return nn.initializers.lecun_normal(), nn.initializers.zeros_init()
    raise ValueError(f"init must be one of {INITS}, got {scheme!r}.")
