"""A trained model as a :class:`~nsnn_jax.models.sequential.SpikingSequential`, batch norm folded.

In inference mode a batch norm (plain or threshold-dependent) is an affine map
per channel, ``y = g * (x - mean) + beta`` with ``g = scale / sqrt(var + eps)``
(tdBN: times ``alpha * v_th``). Folded into the bias-free conv or dense layer
before it, the layer becomes ``W' = W * g`` (per output channel) and
``b' = beta - g * mean``: the same function, computed in float64 and stored in
float32, so the currents differ from the unfolded model only by float32
rounding.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from nsnn_jax import layers as layers_lib
from nsnn_jax.models import blocks
from nsnn_jax.models import sequential as seq
from nsnn_jax.models.cifarnet import _CONVS as _CIFARNET_CONVS
from nsnn_jax.models.cifarnet import _DENSE as _CIFARNET_DENSE
from nsnn_jax.models.cifarnet import CIFARNet
from nsnn_jax.models.mlp import SpikingMLP
from nsnn_jax.models.vgg import _STAGES as _VGG_STAGES
from nsnn_jax.models.vgg import VGGSNN

__all__ = ["to_sequential", "SUPPORTED_MODELS"]

SUPPORTED_MODELS = ("SpikingMLP", "CIFARNet", "VGGSNN", "SpikingSequential")
# The models build their norms with the default epsilon.
_EPSILON = {"bn": layers_lib.TimeBatchNorm.epsilon, "tdbn": layers_lib.ThresholdBatchNorm.epsilon}


def _array(tree: Mapping[str, Any], *path: str) -> np.ndarray:
    node = tree
    for key in path:
        if key not in node:
            raise ValueError(f"variables have no {'/'.join(path)!r} (found {sorted(node)} at {key!r}); "
                             f"are they this model's?")
        node = node[key]
    return np.asarray(node, np.float64)


def _fold_norm(kernel: np.ndarray, bias: np.ndarray, params: Mapping, stats: Mapping, norm: str, v_th: float,
               alpha: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(kernel * g, beta + g * (bias - mean))`` for the eval-mode norm after a layer with ``bias``."""
    mean, var = _array(stats, "BatchNorm_0", "mean"), _array(stats, "BatchNorm_0", "var")
    inv_std = 1.0 / np.sqrt(var + _EPSILON[norm])
    if norm == "tdbn":
        gain = inv_std * (alpha * v_th) * _array(params, "scale")
        shift = _array(params, "bias")
    else:
        gain = inv_std * _array(params, "BatchNorm_0", "scale")
        shift = _array(params, "BatchNorm_0", "bias")
    return kernel * gain, shift + gain * (bias - mean)


def _affine(model: blocks.ConvSNN, params: Mapping, stats: Mapping, name: str,
            kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Kernel and bias of layer ``name`` (``kind`` ``'conv'`` or ``'dense'``), its norm folded in (none for ``norm='none'``)."""
    kernel = _array(params, name, kind, "kernel")
    bias = _array(params, name, kind, "bias") if "bias" in params[name][kind] else np.zeros(kernel.shape[-1])
    if model.norm == "none":
        return kernel, bias
    return _fold_norm(kernel, bias, params[name]["norm"], stats.get(name, {}).get("norm", {}), model.norm,
                      float(model.neuron.v_th))


def _f32(**arrays: np.ndarray) -> dict:
    return {k: np.asarray(v, np.float32) for k, v in arrays.items()}


class _Builder:
    """Collects layers and their parameters in order."""

    def __init__(self, model):
        self.model = model
        self.layers: list = []
        self.params: dict = {}

    def add(self, layer, **params: np.ndarray) -> None:
        if params:
            self.params[f"layer{len(self.layers)}"] = _f32(**params)
        self.layers.append(layer)

    def spiking(self) -> None:
        self.add(seq.Spiking(tau=float(self.model.neuron.tau), v_th=float(self.model.neuron.v_th)))

    def result(self):
        model = seq.SpikingSequential(tuple(self.layers), timesteps=self.model.timesteps, neuron=self.model.neuron,
                                      sequence_input=self.model.sequence_input, dtype=self.model.dtype)
        return model, {"params": self.params}


def _mlp(model: SpikingMLP, params: Mapping) -> tuple:
    out = _Builder(model)
    out.add(seq.Flatten())
    for i, width in enumerate(model.hidden):
        out.add(seq.Dense(width), kernel=_array(params, f"dense{i}", "kernel"), bias=_array(params, f"dense{i}", "bias"))
        out.spiking()
    out.add(seq.Dense(model.outputs), kernel=_array(params, "readout", "kernel"), bias=_array(params, "readout", "bias"))
    return out.result()


def _conv_layer(out: _Builder, model: blocks.ConvSNN, params: Mapping, stats: Mapping, name: str) -> None:
    kernel, bias = _affine(model, params, stats, name, "conv")
    out.add(seq.Conv(kernel.shape[-1], (kernel.shape[0], kernel.shape[1]), (1, 1),
                     ((kernel.shape[0] // 2,) * 2, (kernel.shape[1] // 2,) * 2)), kernel=kernel, bias=bias)
    out.spiking()


def _dense_layer(out: _Builder, model: blocks.ConvSNN, params: Mapping, stats: Mapping, name: str) -> None:
    kernel, bias = _affine(model, params, stats, name, "dense")
    out.add(seq.Dense(kernel.shape[-1]), kernel=kernel, bias=bias)
    out.spiking()


def _readout(out: _Builder, params: Mapping, name: str = "readout") -> None:
    kernel, bias = _array(params, name, "kernel"), _array(params, name, "bias")
    out.add(seq.Dense(kernel.shape[-1]), kernel=kernel, bias=bias)


def _check_conv_model(model: blocks.ConvSNN) -> None:
    if model.activation != "lif":
        raise ValueError(f"{type(model).__name__}(activation={model.activation!r}) has no spiking layers to export; "
                         f"expected activation='lif'.")
    blocks.check_common(model.timesteps, model.norm, model.width, model.activation, model.conv_weight_grad,
                        model.neuron)


def _cifarnet(model: CIFARNet, params: Mapping, stats: Mapping) -> tuple:
    _check_conv_model(model)
    out = _Builder(model)
    for i, (_, pool) in enumerate(_CIFARNET_CONVS):
        _conv_layer(out, model, params, stats, f"conv{i}")
        if pool:
            out.add(seq.AvgPool((2, 2), (2, 2)))
    out.add(seq.Flatten())
    for i in range(len(_CIFARNET_DENSE)):
        if model.form == "authors":  # the authors' head: linear layers with no neurons between them
            _readout(out, params, f"fc{i}")
        else:
            _dense_layer(out, model, params, stats, f"fc{i}")
    _readout(out, params)
    return out.result()


def _vgg(model: VGGSNN, params: Mapping, stats: Mapping) -> tuple:
    _check_conv_model(model)
    out = _Builder(model)
    index = 0
    for stage in _VGG_STAGES:
        for _ in stage:
            _conv_layer(out, model, params, stats, f"conv{index}")
            index += 1
        out.add(seq.AvgPool((2, 2), (2, 2)))
    out.add(seq.Flatten())
    _readout(out, params)
    return out.result()


def to_sequential(model, variables: Mapping[str, Any]) -> tuple[seq.SpikingSequential, dict]:
    """The same network as a layer list, with every batch norm folded (inference mode).

    Args:
      model: a :class:`~nsnn_jax.models.SpikingMLP`, :class:`~nsnn_jax.models.CIFARNet`,
        :class:`~nsnn_jax.models.VGGSNN` or :class:`~nsnn_jax.models.SpikingSequential`
        (returned as it is).
      variables: its trained variables (``params`` and, with batch norm, ``batch_stats``).

    Returns:
      ``(SpikingSequential, {'params': ...})`` computing, in the deterministic
      limit and in inference mode, the function of ``model``: the same spikes
      unless a potential lies within float32 rounding of the threshold.

    Raises:
      ValueError: an unsupported model (ResNets: the residual sum; 7B-Net: max
        pooling and the voting readout), the ReLU floor, or variables that are
        not the model's.
    """
    if "params" not in variables:
        raise ValueError(f"variables need a 'params' collection, got {sorted(variables)}.")
    params = variables["params"]
    stats = variables.get("batch_stats", {})
    if isinstance(model, seq.SpikingSequential):
        return model, {"params": params}
    if isinstance(model, SpikingMLP):
        return _mlp(model, params)
    if isinstance(model, CIFARNet):
        return _cifarnet(model, params, stats)
    if isinstance(model, VGGSNN):
        return _vgg(model, params, stats)
    if isinstance(model, layers_lib.SpikingNeuron):
        raise ValueError("to_sequential takes a whole model, got a single SpikingNeuron.")
    raise ValueError(f"Cannot export {type(model).__name__}: supported models are {SUPPORTED_MODELS} "
                     f"(residual sums, max pooling and voting readouts have no exact NIR form here).")
