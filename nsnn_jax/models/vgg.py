"""VGGSNN: ``64c3-128c3-ap2-256c3-256c3-ap2-512c3-512c3-ap2-512c3-512c3-ap2-fc``."""

from __future__ import annotations

import flax.linen as nn
import jax

from nsnn_jax.models import blocks

__all__ = ["VGGSNN"]

# Conv channels per stage; every stage ends with a 2x2 average pool.
_STAGES = ((64, 128), (256, 256), (512, 512), (512, 512))


class VGGSNN(blocks.ConvSNN):
    """The VGG-style SNN used for CIFAR and DVS-CIFAR10 (Deng et al. 2022).

    Attributes: those of :class:`nsnn_jax.models.blocks.ConvSNN`.
    """

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, deterministic: bool = False) -> jax.Array:
        x = self.checked_input(x)
        conv = blocks.maybe_remat(blocks.SpikingConv, self.remat)
        index = 0
        for stage in _STAGES:
            for channels in stage:
                x = conv(self.channels(channels), self.neuron, self.norm, timesteps=self.timesteps,
                         name=f"conv{index}", **self.layer_options())(x, train, deterministic)
                index += 1
            x = blocks.avg_pool(x)
        return blocks.readout(blocks.flatten(x), self.outputs, self.dtype)
