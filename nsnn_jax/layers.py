"""Flax (linen) layers: spiking neurons, time distribution, batch norms over T*B.

Randomness: a :class:`SpikingNeuron` takes its key with ``self.make_rng('noise')``,
so a model is applied with ``rngs={'noise': key}``; Flax folds the module path
into that key, so every layer draws independent noise. Inference is stochastic
unless ``deterministic=True``.
"""

from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from nsnn_jax import neuron as neuron_lib

__all__ = ["ReluFloor", "SpikingNeuron", "TimeDistributed", "TimeBatchNorm", "ThresholdBatchNorm", "sown_by_layer"]


class SpikingNeuron(nn.Module):
    """A population of LIF neurons over time, noisy (NSNN) or deterministic (DSNN).

    Attributes:
      params: the neuron settings (noise law, tau, v_th, ...).
      deterministic: default for ``__call__``; ``True`` turns the noise off.

    Sows ``firing_rate`` (mean spikes, a scalar) into the ``'intermediates'``
    collection and, when ``'spikes'`` is mutable, the spikes ``(T, B, ...)``.
    """

    params: neuron_lib.LIFParams = neuron_lib.LIFParams()
    deterministic: bool = False

    @nn.compact
    def __call__(self, currents: jax.Array, deterministic: Optional[bool] = None) -> jax.Array:
        """Args: currents ``(T, B, ...)``. Returns: spikes ``(T, B, ...)``.

        Raises:
          ValueError: ``params`` is not a ``LIFParams`` (a ReLU is :class:`ReluFloor`).
        """
        if not isinstance(self.params, neuron_lib.LIFParams):
            raise ValueError(f"SpikingNeuron needs params=LIFParams(...), got {self.params!r}; for a ReLU in "
                             f"place of the neurons use ReluFloor (models: activation='relu').")
        if deterministic is None:
            deterministic = self.deterministic
        noisy = self.params.noise is not None and not deterministic
        key = self.make_rng("noise") if noisy else None
        spikes = neuron_lib.lif_scan(currents, key, self.params, deterministic=deterministic).spikes
        self.sow("intermediates", "firing_rate", jnp.mean(spikes.astype(jnp.float32)))
        if self.is_mutable_collection("spikes"):
            self.sow("spikes", "spikes", spikes)
        return spikes


class ReluFloor(nn.Module):
    """A ReLU in place of a :class:`SpikingNeuron`: the plain-ANN floor of the benchmarks.

    Called like a :class:`SpikingNeuron` (``currents (T, B, ...)``, an ignored
    ``deterministic``), it draws no noise and sows nothing, so the same model
    code builds the floor (``activation='relu'`` of the conv models).
    """

    @nn.compact
    def __call__(self, currents: jax.Array, deterministic: Optional[bool] = None) -> jax.Array:
        """Args: currents ``(T, B, ...)``; deterministic: unused. Returns: ``max(currents, 0)``."""
        del deterministic
        return nn.relu(currents)


def sown_by_layer(collection: Any, name: str) -> dict[str, jax.Array]:
    """``{'lif0': {name: (value,)}}`` -> ``{'lif0': value}`` for every value sown as ``name``.

    Nested modules give ``'block1/lif0'``-style keys; when a value was sown
    more than once (e.g. by ``init`` and again by ``apply``) the last one wins.
    """
    found = {}
    for path, value in jax.tree_util.tree_flatten_with_path(collection)[0]:
        names = [str(getattr(p, "key", getattr(p, "idx", p))) for p in path]
        if name in names:
            found["/".join(names[: names.index(name)])] = value
    return found


class TimeDistributed(nn.Module):
    """Applies a per-sample module to ``(T*B, ...)`` at once and restores ``(T, B, ...)``.

    Synaptic operations (dense, conv, pooling, BN) do not depend on time, so
    merging T into the batch gives one large matmul/conv instead of T small ones.
    """

    layer: nn.Module

    def __call__(self, x: jax.Array, *args, **kwargs) -> jax.Array:
        if x.ndim < 2:
            raise ValueError(f"TimeDistributed expects (T, B, ...), got shape {x.shape}.")
        t, b = x.shape[:2]
        y = self.layer(x.reshape((t * b,) + x.shape[2:]), *args, **kwargs)
        return y.reshape((t, b) + y.shape[1:])


class TimeBatchNorm(nn.Module):
    """Batch norm whose statistics pool over time and batch (and space).

    Input ``(T, B, ..., C)``; statistics per channel over all other axes.
    ``use_running_average=True`` at evaluation.
    """

    momentum: float = 0.9
    epsilon: float = 1e-5
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, use_running_average: bool = False) -> jax.Array:
        # Statistics in float32 whatever the computation dtype (bfloat16 sums of T*B*H*W terms drift).
        out = nn.BatchNorm(
            use_running_average=use_running_average,
            momentum=self.momentum,
            epsilon=self.epsilon,
            axis=-1,
            dtype=jnp.float32,
        )(x.astype(jnp.float32))
        return out.astype(self.dtype or x.dtype)


class ThresholdBatchNorm(nn.Module):
    """Threshold-dependent batch norm (tdBN, Zheng et al. 2021).

    ``y = lambda * (alpha * v_th * (x - mean) / sqrt(var + eps)) + beta``, with the
    statistics per channel over ``T``, ``B`` and space, so pre-activations are
    normalised to ``N(0, (alpha * v_th)^2)`` rather than ``N(0, 1)``.

    Attributes:
      v_th: threshold of the neurons the layer feeds.
      alpha: 1 for most layers; ``1/sqrt(2)`` before a residual sum.
    """

    v_th: float = 1.0
    alpha: float = 1.0
    momentum: float = 0.9
    epsilon: float = 1e-5
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, use_running_average: bool = False) -> jax.Array:
        normalised = nn.BatchNorm(
            use_running_average=use_running_average,
            momentum=self.momentum,
            epsilon=self.epsilon,
            use_scale=False,
            use_bias=False,
            axis=-1,
            dtype=jnp.float32,  # statistics in float32 whatever the computation dtype
        )(x.astype(jnp.float32))
        channels = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (channels,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (channels,), jnp.float32)
        out = normalised * (self.alpha * self.v_th) * scale + bias
        return out.astype(self.dtype or x.dtype)

