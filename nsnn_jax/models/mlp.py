"""Spiking multilayer perceptron and its plain-ANN twin."""

from __future__ import annotations

from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from nsnn_jax import layers
from nsnn_jax import neuron as neuron_lib

__all__ = ["SpikingMLP", "ReluMLP"]


def _check_timesteps(timesteps: int) -> None:
    if not isinstance(timesteps, int) or timesteps < 1:
        raise ValueError(f"timesteps must be an integer >= 1, got {timesteps!r}.")


class SpikingMLP(nn.Module):
    """``D - hidden... - outputs`` with spiking hidden layers and a linear readout.

    A static input ``(B, ...)`` is presented at every one of ``timesteps`` steps.
    Because it does not change over time, the first layer's currents are
    computed once on ``(B, D)`` and broadcast over T (T times fewer FLOPs in the
    widest layer; the gradient sums over T before the one matmul). A sequence
    input ``(T, B, ...)`` (``sequence_input=True``) is used as it is.

    Attributes:
      hidden: widths of the spiking layers.
      outputs: readout width (classes, or regression targets).
      timesteps: T for static inputs.
      neuron: neuron settings shared by every spiking layer.
      sequence_input: whether inputs are already time-major ``(T, B, ...)``.
      dtype: computation dtype (parameters stay float32).

    Returns from ``__call__``: readout per step ``(T, B, outputs)``; losses
    average it over T (rate coding).
    """

    hidden: Sequence[int] = (512, 512)
    outputs: int = 10
    timesteps: int = 8
    neuron: neuron_lib.LIFParams = neuron_lib.LIFParams()
    sequence_input: bool = False
    dtype: Optional[jnp.dtype] = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, deterministic: bool = False) -> jax.Array:
        del train  # no batch statistics or dropout in this model
        _check_timesteps(self.timesteps)
        if not self.hidden:
            raise ValueError("SpikingMLP needs at least one hidden layer.")
        if self.sequence_input:
            if x.ndim < 3:
                raise ValueError(
                    f"SpikingMLP(sequence_input=True) expects (T, B, features...), got shape {x.shape}."
                )
            t, b = x.shape[:2]
            x = x.reshape((t, b, -1))
        else:
            if x.ndim < 2:
                raise ValueError(
                    f"SpikingMLP expects a batch (B, features...), got shape {x.shape}."
                )
            x = x.reshape((x.shape[0], -1))
        x = x.astype(self.dtype or jnp.float32)

        for i, width in enumerate(self.hidden):
            dense = nn.Dense(width, dtype=self.dtype, name=f"dense{i}")
            if i == 0 and not self.sequence_input:
                currents = dense(x)
                currents = jnp.broadcast_to(currents, (self.timesteps,) + currents.shape)
            else:
                currents = layers.TimeDistributed(dense)(x)
            x = layers.SpikingNeuron(self.neuron, name=f"lif{i}")(currents, deterministic)
        return layers.TimeDistributed(nn.Dense(self.outputs, dtype=self.dtype, name="readout"))(x)


class ReluMLP(nn.Module):
    """The same layers as :class:`SpikingMLP` with ReLU, on ``T*B`` samples.

    The plain-ANN floor for benchmarks: the input is repeated over T and every
    layer runs on ``(T*B, D)``.
    """

    hidden: Sequence[int] = (512, 512)
    outputs: int = 10
    timesteps: int = 8
    neuron: neuron_lib.LIFParams = neuron_lib.LIFParams()  # unused; same signature
    sequence_input: bool = False
    dtype: Optional[jnp.dtype] = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, deterministic: bool = False) -> jax.Array:
        del train, deterministic
        _check_timesteps(self.timesteps)
        if not self.sequence_input:
            x = jnp.broadcast_to(x, (self.timesteps,) + x.shape)
        t, b = x.shape[:2]
        x = x.reshape((t * b, -1)).astype(self.dtype or jnp.float32)
        for i, width in enumerate(self.hidden):
            x = nn.relu(nn.Dense(width, dtype=self.dtype, name=f"dense{i}")(x))
        x = nn.Dense(self.outputs, dtype=self.dtype, name="readout")(x)
        return x.reshape((t, b, -1))
