"""7B-Net (Fang et al. 2021) for DVS128 Gesture.

``{c128k3s1-BN-LIF-MPk2s2}x5 - DP - FC512 - LIF - DP - FC110 - APk10s10``: five
spiking conv layers with 2x2 max pooling, a spiking dense layer and a voting
readout (110 linear outputs averaged in groups of 10 into 11 classes). The
published network ends with a spiking layer and an MSE loss on firing rates;
here, as in every model of this package, the last layer is a linear readout
trained with the rate-coded loss. Dropout masks are shared over time.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from nsnn_jax.models import blocks

__all__ = ["SevenBNet", "TimeSharedDropout"]


class TimeSharedDropout(nn.Module):
    """Dropout whose mask is drawn once per sample and reused at every step.

    Active only when ``train`` is true and ``rate > 0``. The mask's key comes
    from the ``'dropout'`` stream (``rngs={'noise': ..., 'dropout': ...}``), so
    it is independent of the membrane noise. A caller that passes no
    ``'dropout'`` stream gets the mask from the ``'noise'`` stream instead, as
    in earlier versions (same key, same mask as before).
    """

    rate: float = 0.5

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        if not train or self.rate == 0.0:
            return x
        stream = "dropout" if self.has_rng("dropout") else "noise"
        keep = jax.random.bernoulli(self.make_rng(stream), 1.0 - self.rate, x.shape[1:])
        return jnp.where(keep, x / jnp.asarray(1.0 - self.rate, x.dtype), jnp.zeros((), x.dtype))


class SevenBNet(blocks.ConvSNN):
    """7B-Net; attributes those of :class:`nsnn_jax.models.blocks.ConvSNN` plus:

    Attributes:
      channels_conv: channels of every conv layer (128).
      hidden: width of the spiking dense layer (512).
      votes: readout units per class (10).
      dropout: rate of the time-shared dropout before each dense layer.
    """

    outputs: int = 11
    norm: str = "bn"
    sequence_input: bool = True
    channels_conv: int = 128
    hidden: int = 512
    votes: int = 10
    dropout: float = 0.5

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, deterministic: bool = False) -> jax.Array:
        x = self.checked_input(x)
        conv = blocks.maybe_remat(blocks.SpikingConv, self.remat)
        for i in range(5):
            x = conv(self.channels(self.channels_conv), self.neuron, self.norm, timesteps=self.timesteps,
                     name=f"conv{i}", **self.layer_options())(x, train, deterministic)
            x = blocks.max_pool(x)
        x = TimeSharedDropout(self.dropout, name="dropout0")(blocks.flatten(x), train)
        x = blocks.SpikingDense(self.channels(self.hidden), self.neuron, self.norm,
                                name="fc0", **self.dense_options())(x, train, deterministic)
        x = TimeSharedDropout(self.dropout, name="dropout1")(x, train)
        votes = blocks.readout(x, self.outputs * self.votes, self.dtype)
        return jnp.mean(votes.reshape(votes.shape[:2] + (self.outputs, self.votes)), axis=-1)
