"""What every benchmark shares: the trainer's own step on a fixed batch, and interleaved timing.

Machines are noisy, so candidates are timed in alternating rounds with the
order reshuffled each round, and ratios are formed from medians of the same run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import optax

from nsnn_jax import cpu, losses
from nsnn_jax.data import Dataset
from train.common import steps
from train.common.task import Task

__all__ = ["compiled_bytes", "conv_engine", "describe_devices", "make_step", "parse_positive_ints", "step_loss",
           "time_interleaved"]


def compiled_bytes(compiled) -> Optional[int]:
    """Peak device memory XLA plans for a compiled step (None where the backend does not say)."""
    try:
        stats = compiled.memory_analysis()
        return int(stats.argument_size_in_bytes + stats.output_size_in_bytes
                   - stats.alias_size_in_bytes + stats.temp_size_in_bytes)
    except Exception:  # not every backend reports it
        return None


def proc_status_kib(field: str) -> Optional[int]:
    """A ``/proc/self/status`` figure in KiB (e.g. ``"VmRSS"``, ``"VmHWM"``: the peak), or ``None`` off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _as_is(x: jax.Array, key: jax.Array, train: bool) -> jax.Array:
    del key, train  # the synthetic batch needs no preprocessing
    return x


def make_step(model, batch: int, timesteps: int, classes: int = 10, repeat_input: bool = False,
              dtype=jnp.float32, seed: int = 0, input_shape: Sequence[int] = (32, 32, 3)):
    """The trainer's compiled training step on a fixed batch: ``(run, planned bytes, compile seconds)``.

    The step is :func:`train.common.steps.make_train_step` (forward, BPTT, the
    batch mean of the rate cross-entropy, Adam, BN statistics, the epoch sums),
    jitted with its state donated, as the trainer runs it. The batch is
    ``(batch, *input_shape)`` standard-normal inputs, repeated over ``timesteps``
    for ``repeat_input`` (the floors that see ``T*B`` inputs), with random labels.
    ``run()`` performs one step and returns the epoch's running loss sum (not
    waited on); :func:`step_loss` turns two of those into one step's loss.
    """
    data_key, label_key, init_key, train_key = jax.random.split(jax.random.key(seed), 4)
    x = jax.random.normal(data_key, (batch, *input_shape), dtype)
    if repeat_input:
        x = jnp.broadcast_to(x, (timesteps,) + x.shape)
    y = jax.random.randint(label_key, (batch,), 0, classes)
    task = Task("benchmark", model, Dataset(x, y, x, y), losses.rate_cross_entropy, _as_is)
    tx = optax.adam(1e-3)
    state = steps.initial_state(task, tx, init_key, x)
    start = time.perf_counter()
    compiled = jax.jit(steps.make_train_step(task, tx, train_key), donate_argnums=(0,)).lower(state, x, y).compile()
    compile_s = time.perf_counter() - start
    holder = {"state": state}

    def run():
        holder["state"] = compiled(holder["state"], x, y)
        return holder["state"]["sums"]["loss"]

    return run, compiled_bytes(compiled), compile_s


def step_loss(run: Callable[[], jax.Array], batch: int) -> float:
    """Runs two more steps of a :func:`make_step` ``run`` and returns the last one's batch-mean loss."""
    before = float(jax.device_get(run()))
    return (float(jax.device_get(run())) - before) / batch


def time_interleaved(candidates: dict[str, Callable[[], object]], rounds: int = 5,
                     steps_per_round: int = 10, seed: int = 0) -> dict[str, dict[str, float]]:
    """Times each ``candidates[name]()`` (which must block or return arrays).

    Returns ``{name: {"median_s", "min_s", "max_s", "first_call_s"}}``, per call,
    where ``first_call_s`` includes compilation.
    """
    results = {name: [] for name in candidates}
    first = {}
    for name, fn in candidates.items():
        start = time.perf_counter()
        jax.block_until_ready(fn())
        first[name] = time.perf_counter() - start
    order = list(candidates)
    rng = random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            fn = candidates[name]
            start = time.perf_counter()
            for _ in range(steps_per_round):
                out = fn()
            jax.block_until_ready(out)
            results[name].append((time.perf_counter() - start) / steps_per_round)
    return {
        name: {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
               "first_call_s": first[name]}
        for name, times in results.items()
    }


def conv_engine() -> str | None:
    """XLA's CPU convolution engine (``'eigen'`` or ``'xla-default'``), or ``None`` off the CPU."""
    return cpu.convolution_engine() if jax.default_backend() == "cpu" else None


def describe_devices() -> str:
    """``'1 cpu device(s) [cpu], convolutions: eigen'``: where a benchmark ran."""
    device = jax.devices()[0]
    engine = conv_engine()
    return (f"{jax.device_count()} {device.platform} device(s) [{device.device_kind}]"
            + (f", convolutions: {engine}" if engine else ""))


def parse_positive_ints(text: str) -> list[int]:
    """Comma-separated integers >= 1 (an argparse ``type``), e.g. ``"2,4,8"``."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from error
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values
