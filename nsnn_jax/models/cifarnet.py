"""CIFARNet: ``128c3-256c3-ap2-512c3-ap2-1024c3-512c3-1024fc-512fc-fc``."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax

from nsnn_jax import neuron as neuron_lib
from nsnn_jax.models import blocks

__all__ = ["CIFARNet"]

# (channels, average-pool after) per conv layer.
_CONVS = ((128, False), (256, True), (512, True), (1024, False), (512, False))
_DENSE = (1024, 512)


class CIFARNet(nn.Module):
    """Five spiking conv layers, two spiking dense layers and a linear readout.

    Every spiking layer, dense ones included, is normalised (``norm``).

    Attributes:
      outputs: classes.
      timesteps: T for a static image (repeated over T).
      neuron: neuron settings of every spiking layer.
      norm: ``"bn"`` (STBP) or ``"tdbn"`` (STBP-tdBN, TET).
      width: channel multiplier (1.0 is the published network).
      sequence_input: inputs already ``(T, B, H, W, C)`` (event frames).
      remat: recompute each block in the backward pass (less memory).
      dtype: computation dtype (parameters stay float32).

    ``__call__(x, train, deterministic)`` returns the readout ``(T, B, outputs)``.
    """

    outputs: int = 10
    timesteps: int = 8
    neuron: neuron_lib.LIFParams = neuron_lib.LIFParams()
    norm: str = "tdbn"
    width: float = 1.0
    sequence_input: bool = False
    remat: bool = False
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, deterministic: bool = False) -> jax.Array:
        blocks.check_common(self.timesteps, self.norm, self.width)
        x = blocks.time_input(x, self.sequence_input).astype(self.dtype or "float32")
        conv = blocks.maybe_remat(blocks.SpikingConv, self.remat)
        for i, (channels, pool) in enumerate(_CONVS):
            x = conv(blocks.scaled(channels, self.width), self.neuron, self.norm,
                     timesteps=self.timesteps, dtype=self.dtype, name=f"conv{i}")(x, train, deterministic)
            if pool:
                x = blocks.avg_pool(x)
        x = blocks.flatten(x)
        for i, features in enumerate(_DENSE):
            x = blocks.SpikingDense(blocks.scaled(features, self.width), self.neuron, self.norm,
                                    self.dtype, name=f"fc{i}")(x, train, deterministic)
        return blocks.readout(x, self.outputs, self.dtype)
