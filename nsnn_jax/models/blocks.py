"""Building blocks shared by the convolutional spiking networks.

Every block works on time-major activations ``(T, B, H, W, C)``: synaptic
operations (conv, BN, pooling, dense) merge T into the batch, the neuron scans
over T. Normalisation is either plain batch norm over ``T*B`` (``"bn"``) or
threshold-dependent BN (``"tdbn"``, Zheng et al. 2021), which scales the
normalised pre-activations to ``alpha * v_th``, or none (``"none"``).
"""

from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from nsnn_jax import conv as conv_lib
from nsnn_jax import layers
from nsnn_jax import neuron as neuron_lib
from nsnn_jax.models import init as init_lib

__all__ = ["ACTIVATIONS", "ConvSNN", "NORMS", "check_common", "make_norm", "neuron_layer", "time_input",
           "SpikingConv", "SpikingDense", "scaled"]

NORMS = ("bn", "tdbn", "none")
# "authors": the layer forms of the authors' PyTorch networks (the paper's Table 1);
# "table5": the reading of the paper's Table 5 (every layer conv/dense -> norm -> LIF).
FORMS = ("authors", "table5")
# "lif": spiking neurons; "relu": the same layers with ReLU, the plain-ANN floor of the benchmarks.
ACTIVATIONS = ("lif", "relu")


def check_common(timesteps: int, norm: str, width: float, activation: str = "lif",
                 conv_weight_grad: str = "xla", neuron: Optional[neuron_lib.LIFParams] = None,
                 form: str = "table5") -> None:
    """Raises ``ValueError`` for settings every conv model shares."""
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}.")
    if not isinstance(timesteps, int) or timesteps < 1:
        raise ValueError(f"timesteps must be an integer >= 1, got {timesteps!r}.")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}.")
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width!r}.")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}.")
    if activation == "lif" and not isinstance(neuron, neuron_lib.LIFParams):
        raise ValueError(f"neuron must be LIFParams, got {neuron!r} (for the ReLU floor use activation='relu').")
    conv_lib.check_weight_grad(conv_weight_grad, "conv_weight_grad")


def scaled(features: int, width: float) -> int:
    """Channel count ``features * width``, at least 1 (``width`` shrinks models for tests)."""
    return max(1, int(round(features * width)))


def v_th_of(neuron: Optional[neuron_lib.LIFParams], activation: str = "lif") -> float:
    """The threshold tdBN scales to; 1 for the ReLU floor (``activation='relu'``)."""
    return 1.0 if activation == "relu" or neuron is None else neuron.v_th


def neuron_layer(neuron: neuron_lib.LIFParams, activation: str = "lif", name: Optional[str] = None) -> nn.Module:
    """The layer after a synaptic operation: ``SpikingNeuron(neuron)``, or ``ReluFloor`` for ``'relu'``."""
    if activation == "relu":
        return layers.ReluFloor(name=name)
    return layers.SpikingNeuron(neuron, name=name)


def make_norm(norm: str, v_th: float, alpha: float = 1.0, dtype: Any = None,
              name: Optional[str] = None) -> Optional[nn.Module]:
    """The normalisation layer for ``norm``: ``"bn"``, ``"tdbn"`` (threshold ``v_th``, factor ``alpha``) or
    ``None`` for ``"none"``."""
    if norm == "none":
        return None
    if norm == "tdbn":
        return layers.ThresholdBatchNorm(v_th=v_th, alpha=alpha, dtype=dtype, name=name)
    return layers.TimeBatchNorm(dtype=dtype, name=name)


def time_input(x: jax.Array, sequence_input: bool, spatial_dims: int = 3) -> jax.Array:
    """Checks an image batch: static ``(B, H, W, C)`` or, with ``sequence_input``, ``(T, B, H, W, C)``."""
    expected = spatial_dims + (2 if sequence_input else 1)
    if x.ndim != expected:
        layout = "(T, B, H, W, C)" if sequence_input else "(B, H, W, C)"
        raise ValueError(f"Expected images {layout}, got shape {x.shape}.")
    return x


def _normalised(norm: Optional[nn.Module], x: jax.Array, train: bool) -> jax.Array:
    return x if norm is None else norm(x, use_running_average=not train)


class SpikingConv(nn.Module):
    """``conv3x3 -> norm -> LIF`` on ``(T, B, H, W, C)`` (by default no conv bias: a norm follows).

    A static input ``(B, H, W, C)`` (the encoding layer of a static image) is
    convolved and normalised once and broadcast over ``timesteps``: the result
    is the same at every step, and BN's statistics over ``T*B`` equal those
    over ``B`` for a repeated input.

    Attributes:
      features: output channels.
      neuron: neuron settings.
      norm: ``"bn"`` or ``"tdbn"``.
      strides: convolution stride.
      kernel: kernel size.
      alpha: tdBN factor (``1/sqrt(2)`` before a residual sum).
      timesteps: T for a static input.
      spike: apply the neuron (``False``: return the normalised currents).
      dtype: computation dtype.
      activation: ``'lif'`` (``SpikingNeuron(neuron)``) or ``'relu'`` (the floor).
      weight_grad: the conv weight gradient, ``'xla'`` or ``'shifted'``
        (:func:`nsnn_jax.conv.conv2d`).
      use_bias: add a conv bias.
      init_scheme: initialisation, one of :data:`nsnn_jax.models.init.INITS`.
    """

    features: int
    neuron: neuron_lib.LIFParams
    norm: str = "tdbn"
    strides: int = 1
    kernel: int = 3
    alpha: float = 1.0
    timesteps: int = 1
    spike: bool = True
    dtype: Any = None
    activation: str = "lif"
    weight_grad: str = "xla"
    use_bias: bool = False
    init_scheme: str = "lecun"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, deterministic: bool) -> jax.Array:
        pad = self.kernel // 2
        # nsnn_jax.conv.Conv: nn.Conv's parameters, with the weight gradient chosen explicitly.
        kernel_init, bias_init = init_lib.initializers(self.init_scheme, x.shape[-1] * self.kernel * self.kernel)
        conv = conv_lib.Conv(self.features, (self.kernel, self.kernel), strides=self.strides,
                             padding=((pad, pad), (pad, pad)), use_bias=self.use_bias, dtype=self.dtype,
                             kernel_init=kernel_init, bias_init=bias_init,
                             weight_grad=self.weight_grad, name="conv")
        norm = make_norm(self.norm, v_th_of(self.neuron, self.activation), self.alpha, self.dtype, name="norm")
        if x.ndim == 4:  # static (B, H, W, C)
            currents = _normalised(norm, conv(x), train)
            currents = jnp.broadcast_to(currents, (self.timesteps,) + currents.shape)
        else:
            currents = _normalised(norm, layers.TimeDistributed(conv)(x), train)
        if not self.spike:
            return currents
        return neuron_layer(self.neuron, self.activation, name="lif")(currents, deterministic)


class SpikingDense(nn.Module):
    """``dense (no bias) -> norm -> LIF`` on ``(T, B, D)``.

    The norm matters: spike rates of ~0.15 into a dense layer with a
    fan-in-scaled initialisation give currents of std ~0.15, and such a layer
    is silent at initialisation (measured 0-0.4% firing) so nothing below it
    learns. As in the reference tdBN networks, hidden dense layers are
    normalised like the convolutions. ``activation='relu'`` gives the floor.
    ``use_bias`` and ``init_scheme`` as in :class:`SpikingConv` (the authors' ResNet-19
    ``fc1`` is ``norm='none'``, ``use_bias=True``, ``init_scheme='torch'``).
    """

    features: int
    neuron: neuron_lib.LIFParams
    norm: str = "tdbn"
    dtype: Any = None
    activation: str = "lif"
    use_bias: bool = False
    init_scheme: str = "lecun"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, deterministic: bool) -> jax.Array:
        kernel_init, bias_init = init_lib.initializers(self.init_scheme, x.shape[-1])
        currents = layers.TimeDistributed(nn.Dense(self.features, use_bias=self.use_bias, dtype=self.dtype,
                                                   kernel_init=kernel_init, bias_init=bias_init, name="dense"))(x)
        norm = make_norm(self.norm, v_th_of(self.neuron, self.activation), dtype=self.dtype, name="norm")
        currents = _normalised(norm, currents, train)
        return neuron_layer(self.neuron, self.activation, name="lif")(currents, deterministic)


def _check_pool_input(x: jax.Array, window: int, kind: str) -> None:
    if x.ndim != 5 or x.shape[2] < window or x.shape[3] < window:
        raise ValueError(f"{kind} of {window}x{window} needs (T, B, H, W, C) maps of at least {window}x{window}, "
                         f"got shape {x.shape}: the input is too small for the network's poolings.")


def avg_pool(x: jax.Array, window: int = 2) -> jax.Array:
    """Average pooling of ``(T, B, H, W, C)`` over ``window x window`` tiles (stride ``window``, VALID).

    Rows and columns past the last whole tile are dropped (an odd side loses one).

    Raises:
      ValueError: a map smaller than ``window``.
    """
    _check_pool_input(x, window, "average pooling")
    t, b, h, w, c = x.shape
    h, w = h // window * window, w // window * window
    tiles = x[:, :, :h, :w].reshape(t, b, h // window, window, w // window, window, c)
    return jnp.mean(tiles, axis=(3, 5))


def max_pool(x: jax.Array, window: int = 2) -> jax.Array:
    """Max pooling of ``(T, B, H, W, C)`` over ``window x window`` tiles (stride ``window``, VALID).

    Raises:
      ValueError: a map smaller than ``window``.
    """
    _check_pool_input(x, window, "max pooling")
    t, b, h, w, c = x.shape
    h, w = h // window * window, w // window * window
    tiles = x[:, :, :h, :w].reshape(t, b, h // window, window, w // window, window, c)
    return jnp.max(tiles, axis=(3, 5))


def flatten(x: jax.Array) -> jax.Array:
    """``(T, B, ...)`` -> ``(T, B, features)``."""
    return x.reshape(x.shape[:2] + (-1,))


def readout(x: jax.Array, outputs: int, dtype: Any, name: str = "readout", init: str = "lecun") -> jax.Array:
    """A linear layer (with bias) per step: ``(T, B, D)`` -> ``(T, B, outputs)``; ``init`` from
    :data:`nsnn_jax.models.init.INITS`."""
    kernel_init, bias_init = init_lib.initializers(init, x.shape[-1])
    return layers.TimeDistributed(nn.Dense(outputs, dtype=dtype, kernel_init=kernel_init, bias_init=bias_init,
                                           name=name))(x)


__all__ += ["avg_pool", "max_pool", "flatten", "readout"]


class ConvSNN(nn.Module):
    """Settings every convolutional SNN shares (subclasses add their layers).

    Attributes:
      outputs: classes.
      timesteps: T for a static image (repeated over T).
      neuron: neuron settings of every spiking layer.
      norm: ``"bn"`` (STBP), ``"tdbn"`` (STBP-tdBN, TET) or ``"none"``.
      form: ``"authors"`` (the layers and initialisation of the authors'
        PyTorch network, which produced the paper's Table 1) or ``"table5"``
        (the reading of the paper's Table 5: every layer conv/dense -> norm ->
        LIF, flax's default initialisation). Subclasses say what differs.
      width: channel multiplier (1.0 is the published network).
      sequence_input: inputs already ``(T, B, H, W, C)`` (event frames).
      remat: recompute each block in the backward pass (less memory on some backends).
      dtype: computation dtype (parameters stay float32).
      activation: ``'lif'`` (spiking layers) or ``'relu'``: the same layers
        with ReLU in place of the neurons, the plain-ANN floor of the
        benchmarks (``neuron`` is then unused).
      conv_weight_grad: the weight gradient of every convolution, ``'xla'``
        (default) or ``'shifted'`` (matrix products, faster with XLA's default
        CPU engine); :func:`nsnn_jax.cpu.configure` returns the one to pass.

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
    activation: str = "lif"
    conv_weight_grad: str = "xla"
    form: str = "table5"

    def checked_input(self, x: jax.Array) -> jax.Array:
        """Validates the settings and the image batch, and casts it to the computation dtype."""
        check_common(self.timesteps, self.norm, self.width, self.activation, self.conv_weight_grad, self.neuron,
                     self.form)
        return time_input(x, self.sequence_input).astype(self.dtype or jnp.float32)

    def channels(self, features: int) -> int:
        return scaled(features, self.width)

    def layer_options(self) -> dict[str, Any]:
        """What every spiking conv layer of the model takes from it: dtype, activation, weight gradient."""
        return dict(dtype=self.dtype, activation=self.activation, weight_grad=self.conv_weight_grad)

    def dense_options(self) -> dict[str, Any]:
        """What every spiking dense layer of the model takes from it: dtype and activation."""
        return dict(dtype=self.dtype, activation=self.activation)


def maybe_remat(module_class: type, remat: bool) -> type:
    """``module_class`` under ``nn.remat`` when ``remat``.

    Rematerialised blocks keep only their input for the backward pass and
    recompute the conv, norm and the neuron's scan over T: less memory for
    about one more forward pass. Blocks are called as ``block(x, train,
    deterministic)`` (positional: the flags are static).
    """
    return nn.remat(module_class, static_argnums=(2, 3)) if remat else module_class


__all__ += ["maybe_remat"]
