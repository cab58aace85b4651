"""VGGSNN: ``64c3-128c3-ap2-256c3-256c3-ap2-512c3-512c3-ap2-512c3-512c3-ap2-fc``."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax

from nsnn_jax import neuron as neuron_lib
from nsnn_jax.models import blocks

__all__ = ["VGGSNN"]

# Conv channels per stage; every stage ends with a 2x2 average pool.
_STAGES = ((64, 128), (256, 256), (512, 512), (512, 512))


class VGGSNN(nn.Module):
    """The VGG-style SNN used for CIFAR and DVS-CIFAR10 (Deng et al. 2022).

    Attributes: as :class:`nsnn_jax.models.cifarnet.CIFARNet`.
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
        index = 0
        for stage in _STAGES:
            for channels in stage:
                x = conv(blocks.scaled(channels, self.width), self.neuron, self.norm,
                         timesteps=self.timesteps, dtype=self.dtype, name=f"conv{index}")(x, train, deterministic)
                index += 1
            x = blocks.avg_pool(x)
        return blocks.readout(blocks.flatten(x), self.outputs, self.dtype)
