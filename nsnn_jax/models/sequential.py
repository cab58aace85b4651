"""A spiking network given as a list of layers: the form exchanged through NIR.

:class:`SpikingSequential` runs a chain of synaptic layers (dense, conv,
pooling, flatten) and spiking layers on time-major activations ``(T, B, ...)``
in NHWC layout. Each spiking layer carries its own decay and threshold; the
rest of the neuron (noise law, surrogate, firing form, sampler) is the model's
``neuron``, so a network imported from a deterministic graph becomes an NSNN by
giving it a noise law: ``model.clone(neuron=LIFParams(noise=Gaussian(0.3)))``.

Parameters are ``params['layer{i}'] = {'kernel', 'bias'}`` with Flax's
conventions: a dense kernel ``(in, out)``, a conv kernel ``(kh, kw, in, out)``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from nsnn_jax import conv as conv_lib
from nsnn_jax import layers as layers_lib
from nsnn_jax import neuron as neuron_lib

__all__ = ["Dense", "Conv", "AvgPool", "SumPool", "Flatten", "Spiking", "Layer", "SpikingSequential"]

Pairs = tuple[tuple[int, int], tuple[int, int]]


@dataclasses.dataclass(frozen=True)
class Dense:
    """``x @ kernel (+ bias)`` on the last axis."""

    features: int
    use_bias: bool = True


@dataclasses.dataclass(frozen=True)
class Conv:
    """2-D convolution of NHWC activations with explicit padding ``((top, bottom), (left, right))``."""

    features: int
    kernel: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: Pairs = ((0, 0), (0, 0))
    use_bias: bool = True


@dataclasses.dataclass(frozen=True)
class AvgPool:
    """Average over ``window`` tiles; zero padding counts in the average (as PyTorch's ``AvgPool2d``)."""

    window: tuple[int, int]
    strides: tuple[int, int]
    padding: Pairs = ((0, 0), (0, 0))


@dataclasses.dataclass(frozen=True)
class SumPool:
    """Sum over ``window`` tiles."""

    window: tuple[int, int]
    strides: tuple[int, int]
    padding: Pairs = ((0, 0), (0, 0))


@dataclasses.dataclass(frozen=True)
class Flatten:
    """``(..., H, W, C)`` -> ``(..., H * W * C)`` (NHWC order)."""


@dataclasses.dataclass(frozen=True)
class Spiking:
    """A LIF population: ``u_t = tau * u_{t-1} * (1 - o_{t-1}) + I_t``, spike above ``v_th``, reset to 0."""

    tau: float = 0.5
    v_th: float = 1.0


Layer = Union[Dense, Conv, AvgPool, SumPool, Flatten, Spiking]
_SYNAPTIC = (Dense, Conv, AvgPool, SumPool, Flatten)


def _pairs(padding) -> Pairs:
    return tuple(tuple(int(v) for v in p) for p in padding)


def _pool(spec: Union[AvgPool, SumPool], x: jax.Array) -> jax.Array:
    """Sum (or average, zero padding counted) over windows of ``(N, H, W, C)``."""
    window = (1,) + tuple(spec.window) + (1,)
    strides = (1,) + tuple(spec.strides) + (1,)
    padding = ((0, 0),) + _pairs(spec.padding) + ((0, 0),)
    total = jax.lax.reduce_window(x, jnp.zeros((), x.dtype), jax.lax.add, window, strides, padding)
    if isinstance(spec, AvgPool):
        return total / jnp.asarray(spec.window[0] * spec.window[1], x.dtype)
    return total


def _merged(fn, x: jax.Array, time_major: bool) -> jax.Array:
    """``fn`` on ``(N, ...)``; a time-major ``(T, B, ...)`` input is merged to ``(T*B, ...)`` and split back."""
    if not time_major:
        return fn(x)
    t, b = x.shape[:2]
    y = fn(x.reshape((t * b,) + x.shape[2:]))
    return y.reshape((t, b) + y.shape[1:])


class SpikingSequential(nn.Module):
    """A chain of synaptic and spiking layers.

    A static input ``(B, ...)`` passes the layers before the first spiking one
    once and is broadcast over ``timesteps`` (as in the other models); a
    sequence input ``(T, B, ...)`` (``sequence_input=True``) is used as it is.

    Attributes:
      layers: the chain, e.g. ``(Flatten(), Dense(128), Spiking(), Dense(10))``.
      timesteps: T for static inputs.
      neuron: noise law, surrogate, firing form and sampler of every spiking
        layer; each layer's ``tau`` and ``v_th`` come from its :class:`Spiking`.
      sequence_input: whether inputs are already time-major.
      dtype: computation dtype (parameters stay float32).

    Returns from ``__call__``: the last layer's output ``(T, B, ...)``: the
    readout for a network ending in a dense layer, spikes for one ending in a
    spiking layer.
    """

    layers: Sequence[Layer] = ()
    timesteps: int = 8
    neuron: neuron_lib.LIFParams = neuron_lib.LIFParams()
    sequence_input: bool = False
    dtype: Optional[jnp.dtype] = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, deterministic: bool = False) -> jax.Array:
        del train  # no batch statistics or dropout
        if not self.layers:
            raise ValueError("SpikingSequential needs at least one layer.")
        for i, spec in enumerate(self.layers):
            if not isinstance(spec, _SYNAPTIC + (Spiking,)):
                raise ValueError(f"SpikingSequential layer {i} is {spec!r}; expected one of "
                                 f"{[c.__name__ for c in _SYNAPTIC + (Spiking,)]}.")
        if not isinstance(self.timesteps, int) or self.timesteps < 1:
            raise ValueError(f"timesteps must be an integer >= 1, got {self.timesteps!r}.")
        if not isinstance(self.neuron, neuron_lib.LIFParams):
            raise ValueError(f"neuron must be LIFParams, got {self.neuron!r}.")
        expected = 3 if self.sequence_input else 2
        if x.ndim < expected:
            layout = "(T, B, features...)" if self.sequence_input else "(B, features...)"
            raise ValueError(f"SpikingSequential expects {layout}, got shape {x.shape}.")
        x = x.astype(self.dtype or jnp.float32)
        time_major = self.sequence_input
        for i, spec in enumerate(self.layers):
            if isinstance(spec, Spiking):
                if not time_major:
                    x = jnp.broadcast_to(x, (self.timesteps,) + x.shape)
                    time_major = True
                params = self.neuron._replace(tau=float(spec.tau), v_th=float(spec.v_th))
                x = layers_lib.SpikingNeuron(params, name=f"layer{i}")(x, deterministic)
            elif isinstance(spec, Dense):
                x = _merged(nn.Dense(spec.features, use_bias=spec.use_bias, dtype=self.dtype, name=f"layer{i}"),
                            x, time_major)
            elif isinstance(spec, Conv):
                conv = conv_lib.Conv(spec.features, tuple(spec.kernel), strides=tuple(spec.strides),
                                     padding=_pairs(spec.padding), use_bias=spec.use_bias, dtype=self.dtype,
                                     name=f"layer{i}")
                x = _merged(conv, x, time_major)
            elif isinstance(spec, Flatten):
                x = x.reshape(x.shape[:2 if time_major else 1] + (-1,))
            else:
                x = _merged(functools.partial(_pool, spec), x, time_major)
        if not time_major:
            x = jnp.broadcast_to(x, (self.timesteps,) + x.shape)
        return x
