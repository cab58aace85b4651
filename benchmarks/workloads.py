"""The two peer-benchmark workloads and this library's three candidates for them.

``mlp``: 784-512-512-10, T = 8, B = 128. ``conv``: conv3x3 3->64-BN-LIF,
conv3x3 64->128-BN-LIF-avgpool2, conv3x3 128->256-BN-LIF-avgpool2,
linear->10 on a 32x32x3 image, T = 4, B = 32. Every candidate runs a full
training step: forward, BPTT, rate cross-entropy (readout averaged over T), Adam.

How every spiking candidate (here and in :mod:`benchmarks.torch_peers`) computes:
the input is static, so the first synaptic layer (and its BN) runs once on
``B`` samples and its currents are repeated over T; every later layer runs on
``T*B`` samples and the neuron loops over T. The floors are the same layers with
ReLU on the input repeated over T (``T*B`` samples in every layer).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import flax.linen as nn
import jax

from benchmarks.common import make_step
from nsnn_jax import models
from nsnn_jax import neuron as neuron_lib
from nsnn_jax import noise as noise_lib
from nsnn_jax.models import blocks

__all__ = ["Workload", "WORKLOADS", "PeerConvNet", "JAX_CANDIDATES", "build_jax"]


class Workload(NamedTuple):
    """Sizes of one benchmark workload.

    Attributes:
      kind: ``"mlp"`` or ``"conv"``.
      timesteps: T.
      batch: B.
      widths: hidden widths (mlp) or conv channels (conv; an average pool
        follows every conv but the first).
      inputs: input features of the MLP.
      image_size: side of the square RGB image of the conv net.
      classes: readout width.
    """

    kind: str
    timesteps: int
    batch: int
    widths: tuple[int, ...]
    inputs: int = 784
    image_size: int = 32
    classes: int = 10

    def input_shape(self) -> tuple[int, ...]:
        """One example, channels last: ``(inputs,)`` or ``(H, W, 3)``."""
        return (self.inputs,) if self.kind == "mlp" else (self.image_size, self.image_size, 3)

    def describe(self) -> str:
        if self.kind == "mlp":
            layers = "-".join(map(str, (self.inputs, *self.widths, self.classes)))
            return f"MLP {layers}, T={self.timesteps}, B={self.batch}"
        return (f"conv {'-'.join(map(str, self.widths))} (BN, avgpool after all but the first)-fc{self.classes}, "
                f"{self.image_size}x{self.image_size}x3, T={self.timesteps}, B={self.batch}")


WORKLOADS = {
    "mlp": Workload("mlp", timesteps=8, batch=128, widths=(512, 512)),
    "conv": Workload("conv", timesteps=4, batch=32, widths=(64, 128, 256)),
}


class PeerConvNet(blocks.ConvSNN):
    """The ``conv`` workload: ``conv3x3-BN-LIF`` per entry of ``conv_channels``,
    average pooling after all but the first, then a linear readout.

    Attributes: those of :class:`nsnn_jax.models.blocks.ConvSNN` (``remat``
    included), plus ``conv_channels``.
    """

    conv_channels: Sequence[int] = (64, 128, 256)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, deterministic: bool = False) -> jax.Array:
        x = self.checked_input(x)
        conv = blocks.maybe_remat(blocks.SpikingConv, self.remat)
        for i, channels in enumerate(self.conv_channels):
            x = conv(channels, self.neuron, self.norm, timesteps=self.timesteps,
                                   name=f"conv{i}", **self.layer_options())(x, train, deterministic)
            if i > 0:
                x = blocks.avg_pool(x)
        return blocks.readout(blocks.flatten(x), self.outputs, self.dtype)


JAX_CANDIDATES = ("jax_nsnn", "jax_dsnn", "jax_floor")


def _model(name: str, workload: Workload, sigma: float, conv_weight_grad: str = "xla"):
    noisy = neuron_lib.LIFParams(noise=noise_lib.Gaussian(sigma))
    neuron = {"jax_nsnn": noisy, "jax_dsnn": noisy._replace(noise=None), "jax_floor": None}[name]
    if workload.kind == "mlp":
        kind = "ann_mlp" if neuron is None else "mlp"
        return models.get_model(kind, hidden=workload.widths, outputs=workload.classes,
                                timesteps=workload.timesteps, **({} if neuron is None else {"neuron": neuron}))
    floor = dict(activation="relu") if neuron is None else dict(neuron=neuron)
    return PeerConvNet(outputs=workload.classes, timesteps=workload.timesteps, norm="bn", **floor,
                       conv_channels=workload.widths, sequence_input=neuron is None,
                       conv_weight_grad=conv_weight_grad)


def build_jax(name: str, workload: Workload, sigma: float = 0.3, seed: int = 0, conv_weight_grad: str = "xla"):
    """A compiled training step of candidate ``name``: ``(run, compile seconds)``.

    ``run()`` performs one step of the trainer's step function and returns its running loss sum
    (a JAX array, not waited on; :func:`benchmarks.common.step_loss` gives one step's loss).
    """
    model = _model(name, workload, sigma, conv_weight_grad)
    # ReluMLP repeats its (B, D) input itself; the conv floor takes the (T, B, ...) repeat.
    repeat = name == "jax_floor" and workload.kind == "conv"
    run, _, compile_s = make_step(model, workload.batch, workload.timesteps, workload.classes,
                                              repeat_input=repeat, seed=seed, input_shape=workload.input_shape())
    return run, compile_s
