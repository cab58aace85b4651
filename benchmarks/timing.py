"""Interleaved timing of several step functions in one process.

Machines are noisy, so candidates are timed in alternating rounds with the
order reshuffled each round, and ratios are formed from medians of the same run.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Callable

import jax

from nsnn_jax import cpu


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
