"""nsnn_jax: noisy spiking neural networks and noise-driven learning in JAX.

Importing the package changes nothing in the process. CPU tuning is opt-in:
call :func:`nsnn_jax.cpu.configure` before the first JAX computation and pass
the ``conv_weight_grad`` it returns to the convolutional models.
"""

from nsnn_jax import conv, cpu, layers, losses, models, neuron, noise, perturb, sampling, surrogate
from nsnn_jax.cpu import CpuSetup
from nsnn_jax.layers import ReluFloor, SpikingNeuron, ThresholdBatchNorm, TimeBatchNorm, TimeDistributed
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
