"""Repeated stochastic trials of a model: ``jax.vmap`` over split keys, chunked.

Every trial ``i`` uses ``jax.random.split(key, n_trials)[i]`` as its ``'noise'``
key, whatever the chunk size, so the same key gives the same trials and a
chunked run equals an unchunked one.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from nsnn_jax import layers as layers_lib

__all__ = ["Trials", "sample_trials", "spiking_layers"]


class Trials(NamedTuple):
    """Results of ``N`` trials on a batch of ``B`` inputs.

    Attributes:
      spikes: ``{layer: (N, T, B, ...)}`` uint8 spikes of the chosen layers.
      outputs: readout ``(N, T, B, C)`` float32.
      predictions: predictive distributions ``(N, B, C)``: softmax of the
        rate-coded logits (mean readout over T).
    """

    spikes: dict[str, np.ndarray]
    outputs: np.ndarray
    predictions: np.ndarray


def spiking_layers(model: nn.Module, variables: Any, inputs: jax.Array) -> list[str]:
    """Names of the model's spiking layers, in the order they fire (shape inference only)."""
    def run(x):
        _, state = model.apply(variables, x, rngs={"noise": jax.random.key(0)}, mutable=["spikes"])
        return layers_lib.sown_by_layer(state.get("spikes", {}), "spikes")
    return list(jax.eval_shape(run, inputs))


def sample_trials(
    model: nn.Module,
    variables: Any,
    inputs: jax.Array,
    key: jax.Array,
    n_trials: int,
    layers: Optional[Sequence[str]] = None,
    max_bytes: int = 1 << 30,
    progress: Optional[Any] = None,
    mesh: Optional[Mesh] = None,
) -> Trials:
    """Runs ``n_trials`` stochastic forward passes of ``model`` on ``inputs``.

    Args:
      model: a Flax module whose spiking layers are :class:`nsnn_jax.layers.SpikingNeuron`.
      variables: its variables (``params``, maybe ``batch_stats``).
      inputs: one batch, as the model takes it (e.g. ``(B, H, W)``).
      key: PRNG key; trial ``i`` uses ``split(key, n_trials)[i]``.
      n_trials: number of trials ``N`` (>= 1).
      layers: spiking layers to keep (names as in :func:`spiking_layers`);
        default: the last spiking layer.
      max_bytes: memory budget of one chunk of trials; chunks are sized so
        that ``N = 1000`` trials fit.
      progress: optional object with ``update(n)`` called per chunk.
      mesh: a 1-D mesh (e.g. over every device of every process) to share the
        trials of each chunk over; ``variables`` and ``inputs`` must then be
        host (or fully replicated) arrays, copied to every device. The trials,
        and so the results, are those without a mesh.

    Returns:
      :class:`Trials` with numpy arrays.

    Raises:
      ValueError: ``n_trials < 1``, the model has no spiking layer, or an unknown layer.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}.")
    # Sown collections (e.g. from model.init) would be appended to, not replaced.
    variables = {k: v for k, v in variables.items() if k not in ("spikes", "intermediates")}
    available = spiking_layers(model, variables, inputs)
    if not available:
        raise ValueError("The model has no spiking layer to record.")
    chosen = list(layers) if layers else [available[-1]]
    unknown = [name for name in chosen if name not in available]
    if unknown:
        raise ValueError(f"Unknown spiking layers {unknown}; the model has {available}.")

    def trial_of(variables, inputs, trial_key):
        outputs, state = model.apply(variables, inputs, rngs={"noise": trial_key}, mutable=["spikes"])
        spikes = layers_lib.sown_by_layer(state["spikes"], "spikes")
        return {name: spikes[name].astype(jnp.uint8) for name in chosen}, outputs.astype(jnp.float32)

    def one_trial(trial_key):
        return trial_of(variables, inputs, trial_key)

    shapes = jax.eval_shape(one_trial, jax.random.key(0))
    per_trial = sum(math.prod(s.shape) * s.dtype.itemsize for s in jax.tree.leaves(shapes))
    chunk = int(max(1, min(n_trials, max_bytes // max(per_trial, 1))))
    keys = jax.random.split(key, n_trials)
    if mesh is None:
        batched, fetch = jax.jit(jax.vmap(one_trial)), jax.device_get
    else:
        chunk = -(-chunk // mesh.size) * mesh.size  # whole trials on every device
        batched, fetch = _sharded(trial_of, variables, inputs, mesh)
    padded = -(-n_trials // chunk) * chunk  # equal chunks: one compilation
    keys = jnp.concatenate([keys, jnp.repeat(keys[-1:], padded - n_trials, axis=0)])

    spike_chunks: dict[str, list] = {name: [] for name in chosen}
    output_chunks = []
    for start in range(0, padded, chunk):
        spikes, outputs = fetch(batched(keys[start:start + chunk]))
        for name in chosen:
            spike_chunks[name].append(spikes[name])
        output_chunks.append(outputs)
        if progress is not None:
            progress.update(1)
    outputs = np.concatenate(output_chunks)[:n_trials]
    predictions = np.asarray(jax.nn.softmax(jnp.asarray(outputs.mean(axis=1)), axis=-1))
    spikes = {name: np.concatenate(parts)[:n_trials] for name, parts in spike_chunks.items()}
    return Trials(spikes, outputs, predictions)


def _sharded(trial_of, variables, inputs, mesh: Mesh):
    """``(run, fetch)``: the trials of a chunk split over ``mesh``, gathered back to every process as numpy."""
    split = NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))
    everywhere = NamedSharding(mesh, PartitionSpec())

    def place(leaf, sharding):
        host = np.asarray(leaf)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    # Arrays of one process cannot enter a computation over all processes: pass them in, replicated.
    placed = (jax.tree.map(lambda leaf: place(leaf, everywhere), variables), place(inputs, everywhere))
    trials = jax.jit(jax.vmap(trial_of, in_axes=(None, None, 0)), out_shardings=split)

    def run(keys):
        data = place(jax.random.key_data(keys), split)
        return trials(*placed, jax.random.wrap_key_data(data, impl=jax.random.key_impl(keys)))

    def fetch(tree):
        if jax.process_count() == 1:
            return jax.device_get(tree)
        from jax.experimental import multihost_utils
        return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))

    return run, fetch
