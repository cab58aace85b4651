"""Spiking residual networks: ResNet-18* and ResNet-19.

Block (Zheng et al. 2021): ``LIF(norm(conv(LIF(norm(conv(x))))) + shortcut(x))``,
the shortcut an identity or, where the shape changes, ``norm(conv1x1(x))``.
With tdBN both normalisations feeding a residual sum use ``alpha = 1/sqrt(2)``
so the sum keeps the ``N(0, v_th^2)`` pre-activation scale.

- ResNet-18*: a 3x3 first conv (no max-pool), two blocks per stage at widths
  64-128-256-512, global average pool, linear readout.
- ResNet-19, two forms (``form``):

  - ``"authors"`` (registered as ``resnet19``): the authors' code. A 3x3 stem
    of 64, then 3 blocks of 128 (the first 64->128 with a 1x1 shortcut), 3 of
    256 and 2 of 512 channels, global average pool, ``fc1`` = a dense layer of
    256 with bias and no norm, then LIF, then the linear readout: 12,630,858
    parameters on CIFAR-10.
  - ``"table5"`` (registered as ``resnet19_table5``): the paper's Table 5
    read as ``128c3``, the same stages, ``256fc`` without bias and normalised
    like the convs: 12,698,250.

  1 + 2*8 conv layers + 2 dense: the 19 weight layers of the name.

``form='authors'`` also gives the authors' initialisation: PyTorch's defaults,
``U(+-1/sqrt(fan_in))`` for every conv and dense weight and bias
(:mod:`nsnn_jax.models.init`); ``'table5'`` keeps flax's (``lecun_normal``,
zero biases). ResNet-18* has the same layers in both forms (11,173,962).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from nsnn_jax import neuron as neuron_lib
from nsnn_jax.models import blocks

__all__ = ["SpikingResNet", "BasicBlock", "resnet18", "resnet18_table5", "resnet19", "resnet19_table5",
           "RESNET18_STAGES", "RESNET19_STAGES"]

# (channels, blocks, stride of the first block) per stage.
RESNET18_STAGES = ((64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2))
RESNET19_STAGES = ((128, 3, 1), (256, 3, 2), (512, 2, 2))


class BasicBlock(nn.Module):
    """Two 3x3 spiking convs with a residual connection, on ``(T, B, H, W, C)``.

    ``activation``, ``weight_grad`` and ``init_scheme`` are those of
    :class:`nsnn_jax.models.blocks.SpikingConv`, for every conv of the block.
    """

    features: int
    neuron: neuron_lib.LIFParams
    norm: str = "tdbn"
    strides: int = 1
    dtype: Any = None
    activation: str = "lif"
    weight_grad: str = "xla"
    init_scheme: str = "lecun"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, deterministic: bool) -> jax.Array:
        alpha = 1.0 / math.sqrt(2.0) if self.norm == "tdbn" else 1.0
        options = dict(dtype=self.dtype, activation=self.activation, weight_grad=self.weight_grad,
                       init_scheme=self.init_scheme)
        out = blocks.SpikingConv(self.features, self.neuron, self.norm, strides=self.strides,
                                 name="conv0", **options)(x, train, deterministic)
        out = blocks.SpikingConv(self.features, self.neuron, self.norm, alpha=alpha, spike=False,
                                 name="conv1", **options)(out, train, deterministic)
        shortcut = x
        if self.strides != 1 or x.shape[-1] != self.features:
            shortcut = blocks.SpikingConv(self.features, self.neuron, self.norm, strides=self.strides,
                                          kernel=1, alpha=alpha, spike=False,
                                          name="shortcut", **options)(x, train, deterministic)
        summed = out + shortcut.astype(out.dtype)
        return blocks.neuron_layer(self.neuron, self.activation, name="lif")(summed, deterministic)


class SpikingResNet(blocks.ConvSNN):
    """A spiking ResNet for 32x32 images (no stem max-pool).

    Attributes:
      stem: channels of the first 3x3 conv.
      stages: ``(channels, blocks, stride)`` per stage.
      hidden: widths of spiking dense layers before the readout (with
        ``form='authors'``: with bias and without norm).
      and those of :class:`nsnn_jax.models.blocks.ConvSNN`; ``form`` picks the
      initialisation and the hidden dense layers' form (see the module docstring).
    """

    stem: int = 64
    stages: Sequence[tuple[int, int, int]] = RESNET18_STAGES
    hidden: Sequence[int] = ()
    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, deterministic: bool = False) -> jax.Array:
        x = self.checked_input(x)
        scheme = "torch" if self.form == "authors" else "lecun"
        x = blocks.SpikingConv(self.channels(self.stem), self.neuron, self.norm, timesteps=self.timesteps,
                               init_scheme=scheme, name="stem", **self.layer_options())(x, train, deterministic)
        block = blocks.maybe_remat(BasicBlock, self.remat)
        for s, (channels, count, stride) in enumerate(self.stages):
            for b in range(count):
                x = block(self.channels(channels), self.neuron, self.norm,
                          strides=stride if b == 0 else 1, init_scheme=scheme,
                          name=f"stage{s}_block{b}", **self.layer_options())(x, train, deterministic)
        x = jnp.mean(x, axis=(2, 3))  # global average pool: (T, B, C)
        dense = dict(norm="none", use_bias=True) if self.form == "authors" else dict(norm=self.norm)
        for i, features in enumerate(self.hidden):
            x = blocks.SpikingDense(self.channels(features), self.neuron, init_scheme=scheme, name=f"fc{i}",
                                    **dense, **self.dense_options())(x, train, deterministic)
        return blocks.readout(x, self.outputs, self.dtype, init=scheme)


def resnet18(**kwargs) -> SpikingResNet:
    """ResNet-18*: 3x3 stem of 64, widths 64-128-256-512, no max-pool; the authors' initialisation."""
    kwargs.setdefault("form", "authors")
    return SpikingResNet(stem=64, stages=RESNET18_STAGES, hidden=(), **kwargs)


def resnet18_table5(**kwargs) -> SpikingResNet:
    """ResNet-18* with flax's default initialisation (the same layers as :func:`resnet18`)."""
    return SpikingResNet(stem=64, stages=RESNET18_STAGES, hidden=(), form="table5", **kwargs)


def resnet19(**kwargs) -> SpikingResNet:
    """The authors' ResNet-19: stem 64, (128)x3-(256)x3-(512)x2 blocks, fc1 256 (bias, no norm)."""
    return SpikingResNet(stem=64, stages=RESNET19_STAGES, hidden=(256,), form="authors", **kwargs)


def resnet19_table5(**kwargs) -> SpikingResNet:
    """ResNet-19 as read from Table 5: stem 128, the same stages, 256fc normalised and without bias."""
    return SpikingResNet(stem=128, stages=RESNET19_STAGES, hidden=(256,), form="table5", **kwargs)
