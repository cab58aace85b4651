"""CIFARNet: ``128c3-256c3-ap2-512c3-ap2-1024c3-512c3-1024fc-512fc-fc``."""

from __future__ import annotations

import flax.linen as nn
import jax

from nsnn_jax.models import blocks

__all__ = ["CIFARNet"]

# (channels, average-pool after) per conv layer.
_CONVS = ((128, False), (256, True), (512, True), (1024, False), (512, False))
_DENSE = (1024, 512)


class CIFARNet(blocks.ConvSNN):
    """Five spiking conv layers, two spiking dense layers and a linear readout.

    Every spiking layer, dense ones included, is normalised (``norm``).
    Attributes: those of :class:`nsnn_jax.models.blocks.ConvSNN`.
    """

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, deterministic: bool = False) -> jax.Array:
        x = self.checked_input(x)
        conv = blocks.maybe_remat(blocks.SpikingConv, self.remat)
        for i, (channels, pool) in enumerate(_CONVS):
            x = conv(self.channels(channels), self.neuron, self.norm, timesteps=self.timesteps,
                     name=f"conv{i}", **self.layer_options())(x, train, deterministic)
            if pool:
                x = blocks.avg_pool(x)
        x = blocks.flatten(x)
        for i, features in enumerate(_DENSE):
            x = blocks.SpikingDense(self.channels(features), self.neuron, self.norm,
                                    name=f"fc{i}", **self.dense_options())(x, train, deterministic)
        return blocks.readout(x, self.outputs, self.dtype)
