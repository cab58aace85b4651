"""CIFARNet: ``128c3-256c3-ap2-512c3-ap2-1024c3-512c3-1024fc-512fc-fc``.

Two forms (``form``):

- ``"authors"`` (registered as ``cifarnet``): the network of the authors'
  code, 45,003,018 parameters on CIFAR-10. Five spiking convs with bias and no
  normalisation (``norm='none'`` by default; ``'bn'`` gives the authors' form
  before they removed BN, 45,007,882), Kaiming fan-out conv kernels; the head
  is three linear layers with PyTorch's default initialisation and **no
  neurons between them** (one linear map of rank <= 512).
- ``"table5"`` (registered as ``cifarnet_table5``): the reading of the
  paper's Table 5, every layer (the two hidden dense ones included)
  ``conv/dense -> norm -> LIF``, flax's default initialisation: 45,006,986.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from nsnn_jax.models import blocks

__all__ = ["CIFARNet", "cifarnet", "cifarnet_table5"]

# (channels, average-pool after) per conv layer.
_CONVS = ((128, False), (256, True), (512, True), (1024, False), (512, False))
_DENSE = (1024, 512)


class CIFARNet(blocks.ConvSNN):
    """Five spiking conv layers, then a dense head (see the module docstring for ``form``).

    Attributes: those of :class:`nsnn_jax.models.blocks.ConvSNN`.
    """

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, deterministic: bool = False) -> jax.Array:
        x = self.checked_input(x)
        authors = self.form == "authors"
        conv = blocks.maybe_remat(blocks.SpikingConv, self.remat)
        conv_options = dict(use_bias=True, init_scheme="kaiming") if authors else {}
        for i, (channels, pool) in enumerate(_CONVS):
            x = conv(self.channels(channels), self.neuron, self.norm, timesteps=self.timesteps,
                     name=f"conv{i}", **conv_options, **self.layer_options())(x, train, deterministic)
            if pool:
                x = blocks.avg_pool(x)
        x = blocks.flatten(x)
        if authors:
            for i, features in enumerate(_DENSE):
                x = blocks.readout(x, self.channels(features), self.dtype, name=f"fc{i}", init="torch")
            return blocks.readout(x, self.outputs, self.dtype, init="torch")
        for i, features in enumerate(_DENSE):
            x = blocks.SpikingDense(self.channels(features), self.neuron, self.norm,
                                    name=f"fc{i}", **self.dense_options())(x, train, deterministic)
        return blocks.readout(x, self.outputs, self.dtype)


def cifarnet(**kwargs) -> CIFARNet:
    """The authors' CIFARNet (``form='authors'``, ``norm='none'`` unless given)."""
    kwargs.setdefault("norm", "none")
    return CIFARNet(form="authors", **kwargs)


def cifarnet_table5(**kwargs) -> CIFARNet:
    """CIFARNet as read from the paper's Table 5 (``form='table5'``)."""
    return CIFARNet(form="table5", **kwargs)
