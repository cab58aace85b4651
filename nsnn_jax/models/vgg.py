"""VGGSNN: ``64c3-128c3-ap2-256c3-256c3-ap2-512c3-512c3-ap2-512c3-512c3-ap2-fc``.

Two forms (``form``):

- ``"authors"`` (registered as ``vggsnn``): conv with bias, then the norm,
  then LIF; Kaiming fan-out conv kernels, PyTorch's default for the conv
  biases and the readout. 9,271,498 parameters on DVS-CIFAR (2x48x48 input,
  10 classes); 9,246,474 on CIFAR-10 (3x32x32).
- ``"table5"`` (registered as ``vggsnn_table5``): conv without bias, flax's
  default initialisation: 9,268,746 on DVS-CIFAR, 9,243,722 on CIFAR-10.
"""

from __future__ import annotations

import flax.linen as nn
import jax

from nsnn_jax.models import blocks

__all__ = ["VGGSNN", "vggsnn", "vggsnn_table5"]

# Conv channels per stage; every stage ends with a 2x2 average pool.
_STAGES = ((64, 128), (256, 256), (512, 512), (512, 512))


class VGGSNN(blocks.ConvSNN):
    """The VGG-style SNN used for CIFAR and DVS-CIFAR10 (Deng et al. 2022).

    The readout's input size follows the input (``512 * (H//16) * (W//16)``
    for sides that halve evenly). Each 2x2 pool drops an odd last row and
    column, so a side that is not a multiple of 16 loses border pixels (28:
    28-14-7-3-1, the last two pools ignore a row and column each); a side
    below 16 leaves nothing to pool and raises ``ValueError``. ``train.cifar``
    zero-pads Fashion-MNIST's 28x28 images to 32x32 for this network.
    Attributes: those of :class:`nsnn_jax.models.blocks.ConvSNN`.
    """

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, deterministic: bool = False) -> jax.Array:
        x = self.checked_input(x)
        authors = self.form == "authors"
        conv = blocks.maybe_remat(blocks.SpikingConv, self.remat)
        conv_options = dict(use_bias=True, init_scheme="kaiming") if authors else {}
        index = 0
        for stage in _STAGES:
            for channels in stage:
                x = conv(self.channels(channels), self.neuron, self.norm, timesteps=self.timesteps,
                         name=f"conv{index}", **conv_options, **self.layer_options())(x, train, deterministic)
                index += 1
            x = blocks.avg_pool(x)
        return blocks.readout(blocks.flatten(x), self.outputs, self.dtype, init="torch" if authors else "lecun")


def vggsnn(**kwargs) -> VGGSNN:
    """The authors' VGGSNN (``form='authors'``)."""
    return VGGSNN(form="authors", **kwargs)


def vggsnn_table5(**kwargs) -> VGGSNN:
    """VGGSNN as read from the paper's Table 5 (``form='table5'``)."""
    return VGGSNN(form="table5", **kwargs)
