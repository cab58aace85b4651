"""nsnn_jax: noisy spiking neural networks and noise-driven learning in JAX."""

# Before anything can start a JAX backend: XLA reads its CPU flags once, at that point.
from nsnn_jax import xla_cpu

xla_cpu.configure()

from nsnn_jax import layers, losses, models, neuron, noise, perturb, surrogate
from nsnn_jax.layers import SpikingNeuron, ThresholdBatchNorm, TimeBatchNorm, TimeDistributed
from nsnn_jax.losses import accuracy, mse_loss, rate_cross_entropy, tet_loss
from nsnn_jax.models import get_model, register_model
from nsnn_jax.neuron import LIFOutput, LIFParams, lif_scan, ndl_spike, sg_spike
from nsnn_jax.noise import (
    Arctan,
    Gaussian,
    Logistic,
    NoiseFamily,
    Triangular,
    Uniform,
    get_noise,
)
from nsnn_jax.surrogate import Surrogate, get_surrogate, matching_noise, matching_surrogate

__version__ = "0.1.0"
