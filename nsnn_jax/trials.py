"""Repeated stochastic trials of a model, compiled once per shape and sized to a memory budget.

Every trial ``i`` uses ``jax.random.split(key, n_trials)[i]`` as its ``'noise'``
key, whatever the chunk size, so the same key gives the same trials and a
chunked run equals an unchunked one.

A chunk of trials is one compiled call. Inside it the trials run in groups of
``vector_width`` (``jax.lax.map`` with that batch size): the trials of a group
are vectorised (``jax.vmap``), the groups run one after another. On a CPU a
width of 1 is the fastest (a wide ``vmap`` multiplies the working set of every
activation and noise draw by the width, and falls out of the caches, while
inside one compiled loop the layers that see only the static input, and the
per-call overheads, are paid once); on accelerators the whole chunk is one
``vmap``. The chunk is sized from XLA's memory analysis of the compiled chunk
(arguments, outputs and temporaries: activations and noise included), so a
chunk never plans more than the budget.

:class:`TrialSampler` holds the compiled chunks of one model, layer choice and
input shape; :func:`sample_trials` keeps the samplers it builds, so a second
call with the same shapes compiles nothing.
"""

from __future__ import annotations

import collections
import math
import os
from typing import Any, NamedTuple, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from nsnn_jax import layers as layers_lib

__all__ = ["Trials", "TrialSampler", "default_memory_budget", "sample_trials", "spiking_layers", "trial_sampler"]

# A chunk plans at most this much (when one group of trials fits in it), however large the budget:
# on this CPU 1000 MLP trials (B 256) ran 1.55x faster in chunks of 250 (283 MiB planned) than in one
# chunk of 1.1 GiB, whose fresh output buffers are paged in at every call (benchmarks/README.md).
CHUNK_TARGET_BYTES = 256 << 20

# Samplers kept by :func:`trial_sampler` (each holds compiled executables, not the variables).
_CACHE_SIZE = 8
_samplers: "collections.OrderedDict[tuple, TrialSampler]" = collections.OrderedDict()


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
    def run(variables, x):
        _, state = model.apply(variables, x, rngs={"noise": jax.random.key(0)}, mutable=["spikes"])
        return layers_lib.sown_by_layer(state.get("spikes", {}), "spikes")
    return list(jax.eval_shape(run, variables, inputs))


def default_memory_budget(fraction: float = 0.5) -> int:
    """``fraction`` of the memory a chunk of trials may use on the default device, in bytes.

    On a CPU: of the available RAM (``MemAvailable`` of ``/proc/meminfo``, else
    the physical memory); elsewhere: of the device's memory limit.
    """
    device = jax.devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(fraction * stats["bytes_limit"])
    return int(fraction * _available_ram())


def _available_ram() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _spec(leaf: Any) -> jax.ShapeDtypeStruct:
    """Shape and dtype of an array (or of a ``jax.ShapeDtypeStruct``)."""
    dtype = leaf.dtype if hasattr(leaf, "dtype") else jnp.result_type(leaf)
    return jax.ShapeDtypeStruct(tuple(np.shape(leaf)), dtype)


def _signature(tree: Any) -> tuple:
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((spec.shape, str(spec.dtype)) for spec in map(_spec, leaves))


def _without_sown(variables: Any) -> dict:
    # Sown collections (e.g. from model.init) would be appended to, not replaced.
    return {k: v for k, v in variables.items() if k not in ("spikes", "intermediates")}


class TrialSampler:
    """Trials of one model, layer choice, variables shape and input shape, compiled once per chunk size.

    Args:
      model: a Flax module whose spiking layers are :class:`nsnn_jax.layers.SpikingNeuron`.
      variables: its variables (``params``, maybe ``batch_stats``), or arrays of
        their shapes; only shapes are kept.
      inputs: one batch (or a ``jax.ShapeDtypeStruct``), as the model takes it.
      layers: spiking layers to keep (names as in :func:`spiking_layers`);
        default: the last spiking layer.
      memory_budget: bytes one compiled chunk may plan (per device), as XLA's
        memory analysis counts them; default :func:`default_memory_budget`.
      vector_width: trials vectorised together inside a chunk (>= 1); default:
        1 on a CPU, the whole chunk elsewhere.
      mesh: a 1-D mesh (e.g. over every device of every process) to share the
        trials of each chunk over; ``variables`` and ``inputs`` must then be
        host (or fully replicated) arrays, copied to every device. The trials,
        and so the results, are those without a mesh.

    Raises:
      ValueError: the model has no spiking layer, an unknown layer, a budget
        or width < 1.
    """

    def __init__(self, model: nn.Module, variables: Any, inputs: Any, layers: Optional[Sequence[str]] = None,
                 memory_budget: Optional[int] = None, vector_width: Optional[int] = None,
                 mesh: Optional[Mesh] = None):
        variables = _without_sown(variables)
        self.model, self.mesh = model, mesh
        self.variables_spec = jax.tree.map(_spec, variables)
        self.inputs_spec = _spec(inputs)
        available = spiking_layers(model, self.variables_spec, self.inputs_spec)
        if not available:
            raise ValueError("The model has no spiking layer to record.")
        self.layers = list(layers) if layers else [available[-1]]
        unknown = [name for name in self.layers if name not in available]
        if unknown:
            raise ValueError(f"Unknown spiking layers {unknown}; the model has {available}.")
        self.memory_budget = int(default_memory_budget() if memory_budget is None else memory_budget)
        if self.memory_budget < 1:
            raise ValueError(f"memory_budget must be >= 1 byte, got {memory_budget!r}.")
        if vector_width is not None and vector_width < 1:
            raise ValueError(f"vector_width must be >= 1 (or None), got {vector_width!r}.")
        self.vector_width = vector_width if vector_width is not None else (
            1 if jax.devices()[0].platform == "cpu" else None)
        self.key_spec = jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0)))
        self.key_impl = jax.random.key_impl(jax.random.key(0))
        self.devices = 1 if mesh is None else mesh.size
        self.chunk_target_bytes = CHUNK_TARGET_BYTES
        self.traces = 0  # how often the trial function was traced (one per compiled chunk size)
        self._compiled: dict[int, Any] = {}
        self._plans: dict[int, int] = {}

    # One trial, and one chunk of trials, as traced functions.
    def _trial(self, variables, inputs, key_data):
        self.traces += 1
        key = jax.random.wrap_key_data(key_data, impl=self.key_impl)
        outputs, state = self.model.apply(variables, inputs, rngs={"noise": key}, mutable=["spikes"])
        spikes = layers_lib.sown_by_layer(state["spikes"], "spikes")
        return {name: spikes[name].astype(jnp.uint8) for name in self.layers}, outputs.astype(jnp.float32)

    def _local_chunk(self, variables, inputs, key_data):
        """The trials of ``key_data (c, ...)`` on one device, in groups of the vector width."""
        width = self.vector_width
        if width is None:
            return jax.vmap(self._trial, in_axes=(None, None, 0))(variables, inputs, key_data)
        if width == 1:
            return jax.lax.map(lambda k: self._trial(variables, inputs, k), key_data)
        return jax.lax.map(lambda k: self._trial(variables, inputs, k), key_data, batch_size=width)

    def compiled(self, chunk: int):
        """The compiled call running ``chunk`` trials: ``(variables, inputs, key_data (chunk, ...)) -> (spikes, outputs)``."""
        if chunk not in self._compiled:
            keys = jax.ShapeDtypeStruct((chunk,) + self.key_spec.shape, self.key_spec.dtype)
            if self.mesh is None:
                fn = jax.jit(self._local_chunk)
            else:
                axis = self.mesh.axis_names[0]
                every, split = PartitionSpec(), PartitionSpec(axis)
                mapped = jax.shard_map(self._local_chunk, mesh=self.mesh, in_specs=(every, every, split),
                                       out_specs=split, check_vma=False)
                fn = jax.jit(mapped, in_shardings=(NamedSharding(self.mesh, every), NamedSharding(self.mesh, every),
                                                   NamedSharding(self.mesh, split)),
                             out_shardings=NamedSharding(self.mesh, split))
            self._compiled[chunk] = fn.lower(self.variables_spec, self.inputs_spec, keys).compile()
        return self._compiled[chunk]

    def planned_bytes(self, chunk: int) -> int:
        """Bytes XLA plans for one compiled chunk (per device): arguments + outputs + temporaries - aliases."""
        stats = self.compiled(chunk).memory_analysis()
        if stats is None:
            raise ValueError("This backend gives no memory analysis to size the chunks by; pass chunk=.")
        return int(stats.argument_size_in_bytes + stats.output_size_in_bytes
                   + stats.temp_size_in_bytes - stats.alias_size_in_bytes)

    def _fits(self, chunk: int, budget: int) -> bool:
        if self.planned_bytes(chunk) <= budget:
            return True
        self._compiled.pop(chunk, None)
        return False

    def trial_bytes(self) -> int:
        """Bytes of the results of one trial (the recorded spikes and the readout)."""
        shapes = jax.eval_shape(self._trial, self.variables_spec, self.inputs_spec, self.key_spec)
        return sum(math.prod(s.shape) * s.dtype.itemsize for s in jax.tree.leaves(shapes))

    def _group(self) -> int:
        """The smallest chunk: one group of trials per device."""
        return (self.vector_width or 1) * self.devices

    def plan(self, n_trials: int, memory_budget: Optional[int] = None) -> int:
        """The trials per chunk for ``n_trials`` trials: the most within the budget, the chunks balanced.

        A chunk plans at most ``chunk_target_bytes`` (the budget if smaller)
        unless one group alone needs more. Compiles a chunk of one group
        (``vector_width`` trials per device),
        then one of every trial; if that is over the budget, chunks of two and
        three groups (a chunk's memory is affine in its size from two groups
        on), extrapolates, and checks the chosen chunk's own analysis,
        shrinking it if needed.

        Args:
          n_trials: ``N >= 1``.
          memory_budget: bytes (default: the sampler's budget).

        Raises:
          ValueError: one group of trials alone plans more than the budget.
        """
        budget = self.memory_budget if memory_budget is None else int(memory_budget)
        asked = (n_trials, budget)
        if asked in self._plans:
            return self._plans[asked]
        group = self._group()
        one = self.planned_bytes(group)
        if one > budget:
            raise ValueError(
                f"One chunk of {group} trial(s) on inputs {self.inputs_spec.shape} plans {one / 2**20:.2f} MiB, "
                f"more than the memory budget of {budget / 2**20:.2f} MiB; raise the budget or pass "
                f"fewer inputs at once.")
        budget = min(budget, max(self.chunk_target_bytes, one))
        groups = -(-n_trials // group)
        fit = 1
        if groups > 1 and self._fits(groups * group, budget):  # every trial in one chunk
            fit = groups
        elif groups > 1 and self.planned_bytes(2 * group) <= budget:
            fit = 2
            if groups > 2:
                two = self.planned_bytes(2 * group)
                per_group = max(1, self.planned_bytes(3 * group) - two)
                for _ in range(4):
                    fit = max(2, min(groups, 2 + (budget - two) // per_group))
                    fit = -(-groups // -(-groups // fit))  # balanced: the fewest chunks, each as equal as possible
                    planned = self.planned_bytes(fit * group)
                    if planned <= budget or fit == 2:
                        break
                    self._compiled.pop(fit * group, None)
                    per_group = max(per_group + 1, -(-(planned - two) // (fit - 2)))
                else:
                    fit = 2
        chunk = fit * group
        self._plans[asked] = chunk
        return chunk

    def __call__(self, variables: Any, inputs: jax.Array, key: jax.Array, n_trials: int,
                 chunk: Optional[int] = None, progress: Optional[Any] = None) -> Trials:
        """Runs ``n_trials`` trials; trial ``i`` uses ``split(key, n_trials)[i]``.

        Args:
          variables: the model's variables, of the shapes the sampler was built for.
          inputs: one batch of the sampler's input shape.
          key: PRNG key.
          n_trials: ``N >= 1``.
          chunk: trials per compiled call (default: :meth:`plan`); rounded up
            to whole groups per device.
          progress: optional object with ``update(n)`` called per chunk.

        Returns:
          :class:`Trials` with numpy arrays.
        """
        if n_trials < 1:
            raise ValueError(f"n_trials must be >= 1, got {n_trials}.")
        variables = _without_sown(variables)
        if _signature(variables) != _signature(self.variables_spec) or np.shape(inputs) != self.inputs_spec.shape:
            raise ValueError(f"This sampler was built for inputs {self.inputs_spec.shape} and other variables; "
                             f"got inputs {np.shape(inputs)}.")
        if chunk is None:
            chunk = self.plan(n_trials)
        else:
            if chunk < 1:
                raise ValueError(f"chunk must be >= 1, got {chunk}.")
            group = self._group()
            chunk = -(-min(chunk, n_trials) // group) * group
        keys = jax.random.key_data(jax.random.split(key, n_trials))
        padded = -(-n_trials // chunk) * chunk  # equal chunks: one compilation
        keys = jnp.concatenate([keys, jnp.repeat(keys[-1:], padded - n_trials, axis=0)])
        run = self.compiled(chunk)
        if self.mesh is None:
            args, fetch = (variables, inputs), jax.device_get
        else:
            args, fetch = _replicated(self.mesh, (variables, inputs)), _gather
            split = NamedSharding(self.mesh, PartitionSpec(self.mesh.axis_names[0]))
            keys = np.asarray(keys)
        kept = None  # (spikes, outputs) of all the trials: each chunk is copied into it once
        for start in range(0, padded, chunk):
            part = keys[start:start + chunk]
            if self.mesh is not None:
                part = _place(part, split)
            result = fetch(run(*args, part))
            if kept is None:
                kept = jax.tree.map(lambda a: np.empty((n_trials,) + a.shape[1:], a.dtype), result)
            stop = min(start + chunk, n_trials)
            for store, values in zip(jax.tree.leaves(kept), jax.tree.leaves(result)):
                store[start:stop] = values[:stop - start]
            if progress is not None:
                progress.update(1)
        spikes, outputs = kept
        predictions = np.asarray(jax.nn.softmax(jnp.asarray(outputs.mean(axis=1)), axis=-1))
        return Trials(spikes, outputs, predictions)


def trial_sampler(model: nn.Module, variables: Any, inputs: Any, layers: Optional[Sequence[str]] = None,
                  memory_budget: Optional[int] = None, vector_width: Optional[int] = None,
                  mesh: Optional[Mesh] = None) -> TrialSampler:
    """The :class:`TrialSampler` for these arguments, built once and kept (the last few are kept)."""
    key = (model, tuple(layers) if layers else None, _signature(_without_sown(variables)),
           _signature(inputs), memory_budget, vector_width, mesh)
    try:
        hash(key)
    except TypeError:  # an unhashable model: build afresh
        return TrialSampler(model, variables, inputs, layers, memory_budget, vector_width, mesh)
    if key in _samplers:
        _samplers.move_to_end(key)
        return _samplers[key]
    sampler = TrialSampler(model, variables, inputs, layers, memory_budget, vector_width, mesh)
    _samplers[key] = sampler
    while len(_samplers) > _CACHE_SIZE:
        _samplers.popitem(last=False)
    return sampler


def sample_trials(
    model: nn.Module,
    variables: Any,
    inputs: jax.Array,
    key: jax.Array,
    n_trials: int,
    layers: Optional[Sequence[str]] = None,
    memory_budget: Optional[int] = None,
    progress: Optional[Any] = None,
    mesh: Optional[Mesh] = None,
    chunk: Optional[int] = None,
    vector_width: Optional[int] = None,
) -> Trials:
    """Runs ``n_trials`` stochastic forward passes of ``model`` on ``inputs``.

    Compiles once per model, layer choice, shapes and chunk size: the sampler
    (:func:`trial_sampler`) is kept between calls.

    Args:
      model: a Flax module whose spiking layers are :class:`nsnn_jax.layers.SpikingNeuron`.
      variables: its variables (``params``, maybe ``batch_stats``).
      inputs: one batch, as the model takes it (e.g. ``(B, H, W)``).
      key: PRNG key; trial ``i`` uses ``split(key, n_trials)[i]``.
      n_trials: number of trials ``N`` (>= 1).
      layers: spiking layers to keep (names as in :func:`spiking_layers`);
        default: the last spiking layer.
      memory_budget: bytes one compiled chunk may plan per device (XLA's memory
        analysis: activations, noise and outputs); default
        :func:`default_memory_budget`.
      progress: optional object with ``update(n)`` called per chunk.
      mesh: a 1-D mesh to share the trials of each chunk over (see
        :class:`TrialSampler`); the results are those without a mesh.
      chunk: trials per compiled call (default: the most within the budget).
      vector_width: trials vectorised together (default: 1 on a CPU, the
        whole chunk elsewhere).

    Returns:
      :class:`Trials` with numpy arrays.

    Raises:
      ValueError: ``n_trials < 1``, the model has no spiking layer, an unknown
        layer, or one trial needs more than ``memory_budget``.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}.")
    sampler = trial_sampler(model, variables, inputs, layers, memory_budget, vector_width, mesh)
    return sampler(variables, inputs, key, n_trials, chunk=chunk, progress=progress)


def _place(host: np.ndarray, sharding: NamedSharding) -> jax.Array:
    host = np.asarray(host)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def _replicated(mesh: Mesh, tree: Any) -> Any:
    # Arrays of one process cannot enter a computation over all processes: pass them in, replicated.
    everywhere = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(lambda leaf: _place(leaf, everywhere), tree)


def _gather(tree: Any) -> Any:
    """The trials of a chunk split over the mesh, gathered back to every process as numpy."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils
    return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))
