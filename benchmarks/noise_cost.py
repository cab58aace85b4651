"""``python -m benchmarks.noise_cost``: what the membrane noise adds to a step, float32 quantile vs table gather.

Candidates, built and timed interleaved in one process: the deterministic
neuron (DSNN), the NSNN with the ``hash16`` sampler (the levels mapped through
the float64-derived table :func:`nsnn_jax.sampling.quantile_table` by a gather)
and the NSNN with ``hash16_quantile`` (the same levels through
``family.level_quantile``, no gather). ``--what layer`` times forward + BPTT of one
``lif_scan`` on ``--layer-shape`` currents (``(T, B, H, W, C)``, default
``(4, 32, 32, 32, 64)``) for each of ``--families``;
``conv`` the conv workload's training step (:mod:`benchmarks.workloads`);
``cifarnet`` / ``resnet18`` the CIFAR nets' training step at T = 2, B = 32
(Gaussian noise). Each row: median and fastest round, and their ratio to the
DSNN's. ``--parts`` adds stand-in draws that locate the draw's cost (not
samplers: their noise does not follow the law): ``free`` (one random scalar
broadcast), ``bits_only`` (the counter hash, levels scaled linearly, no
gather), ``interleaved`` (a word's two levels for neighbouring elements, no
concatenation) and ``per_element`` (one hashed word per element, its top 16 bits).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
from typing import Optional, Sequence

import jax
import jax.numpy as jnp

from benchmarks import workloads
from benchmarks.common import describe_devices, make_step, parse_positive_ints, time_interleaved
from nsnn_jax import cpu, models, sampling
from nsnn_jax import neuron as neuron_lib
from nsnn_jax import noise as noise_lib

__all__ = ["main", "forced_sampler"]

TARGETS = ("layer", "conv", "cifarnet", "resnet18")
LAYER_SHAPE = (4, 32, 32, 32, 64)


@contextlib.contextmanager
def patched_draw(draw):
    """While tracing inside: ``sampling.draw_noise`` is ``draw(original, family, key, shape, dtype, sampler)``."""
    original = sampling.draw_noise
    sampling.draw_noise = lambda family, key, shape, dtype=jnp.float32, sampler="hash16": draw(
        original, family, key, shape, dtype, sampler)
    try:
        yield
    finally:
        sampling.draw_noise = original


def forced_sampler(name: str):
    """While tracing inside: every ``hash16`` draw uses sampler ``name`` (e.g. ``"hash16_quantile"``)."""
    return patched_draw(lambda original, family, key, shape, dtype, sampler: original(
        family, key, shape, dtype, name if sampler == "hash16" else sampler))


def _levels(key, size: int, layout: str) -> jax.Array:
    if layout == "per_element":
        seed = jax.random.bits(key, (2,), jnp.uint32)
        counter = jax.lax.iota(jnp.uint32, size)
        return sampling._fmix32(sampling._fmix32(counter * jnp.uint32(0x9E3779B9) + seed[0]) ^ seed[1]) >> 16
    words = sampling.counter_bits(key, (size + 1) // 2)
    halves = [words >> 16, words & jnp.uint32(0xFFFF)]
    if layout == "interleaved":
        return jnp.stack(halves, axis=-1).reshape(-1)[:size]
    return jnp.concatenate(halves)[:size]


def stand_in(part: str):
    """A stand-in for ``draw_noise`` (``--parts``): what a draw costs without some of its pieces. Not a sampler."""
    def draw(original, family, key, shape, dtype, sampler):
        if part == "free":
            return jnp.broadcast_to(jax.random.normal(key, (), dtype) * family.scale, shape)
        size = math.prod(shape)
        if part == "bits_only":
            levels = _levels(key, size, "halves")
            return ((levels.astype(dtype) - 32767.5) * (family.scale / 20000)).reshape(shape)
        levels = _levels(key, size, part)
        return jnp.asarray(sampling.quantile_table(family), dtype)[levels].reshape(shape)
    return patched_draw(draw)


PARTS = ("free", "bits_only", "interleaved", "per_element")


def _layer_run(params, shape):
    key = jax.random.key(0)
    x = jax.random.normal(key, tuple(shape))
    grad = jax.jit(jax.grad(lambda x, k: jnp.sum(neuron_lib.lif_scan(x, k, params).spikes * x)))
    compiled = grad.lower(x, key).compile()
    return lambda: compiled(x, key)


def candidates(what: str, families: Sequence[str], sigma: float, layer_shape: Sequence[int] = LAYER_SHAPE,
               parts: bool = False) -> dict:
    built = {}
    if what == "layer":
        built["dsnn"] = _layer_run(neuron_lib.LIFParams(noise=None), layer_shape)
        for name in families:
            params = neuron_lib.LIFParams(noise=noise_lib.get_noise(name, sigma))
            built[f"{name}_table"] = _layer_run(params, layer_shape)
            with forced_sampler("hash16_quantile"):
                built[f"{name}_quantile"] = _layer_run(params, layer_shape)
            for part in PARTS if parts else ():
                with stand_in(part):
                    built[f"{name}_{part}"] = _layer_run(params, layer_shape)
        return built

    def step(noisy: bool):
        if what == "conv":
            return workloads.build_jax("jax_nsnn" if noisy else "jax_dsnn", workloads.WORKLOADS["conv"], sigma)[0]
        neuron = neuron_lib.LIFParams(noise=noise_lib.Gaussian(sigma) if noisy else None)
        return make_step(models.get_model(what, neuron=neuron, outputs=10, timesteps=2), 32, 2)[0]

    built["dsnn"] = step(False)
    built["nsnn_table"] = step(True)
    with forced_sampler("hash16_quantile"):
        built["nsnn_quantile"] = step(True)
    for part in PARTS if parts else ():
        with stand_in(part):
            built[part] = step(True)
    return built


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--what", default="layer", help=f"comma-separated subset of {', '.join(TARGETS)}")
    parser.add_argument("--families", default="gaussian,logistic,triangular,arctan",
                        help=f"noise families of --what layer ({', '.join(sorted(noise_lib.NOISE_FAMILIES))})")
    parser.add_argument("--layer-shape", type=parse_positive_ints, default=list(LAYER_SHAPE),
                        help="T,B,... of --what layer")
    parser.add_argument("--sigma", type=float, default=0.3, help="noise scale")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    parser.add_argument("--parts", action="store_true",
                        help="also time stand-in draws that locate the draw's cost (not samplers)")
    args = parser.parse_args(argv)
    targets = [part.strip() for part in args.what.split(",") if part.strip()]
    families = [part.strip() for part in args.families.split(",") if part.strip()]
    if not targets or any(t not in TARGETS for t in targets):
        parser.error(f"--what takes a comma-separated subset of {', '.join(TARGETS)}, got {args.what!r}")
    if any(f not in noise_lib.NOISE_FAMILIES for f in families):
        parser.error(f"--families takes names from {sorted(noise_lib.NOISE_FAMILIES)}, got {args.families!r}")
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps must be >= 1")
    cpu.configure()
    print(f"noise cost, {describe_devices()}")
    result = {"platform": jax.devices()[0].platform, "results": {}}
    for what in targets:
        if what == "layer" and len(args.layer_shape) < 2:
            parser.error(f"--layer-shape needs at least T,B, got {args.layer_shape}")
        timings = time_interleaved(candidates(what, families, args.sigma, args.layer_shape, args.parts), rounds=args.rounds,
                                   steps_per_round=args.steps)
        base = timings["dsnn"]
        rows = {}
        for name, t in timings.items():
            rows[name] = {"median_ms": 1e3 * t["median_s"], "min_ms": 1e3 * t["min_s"],
                          "median_x_dsnn": t["median_s"] / base["median_s"], "min_x_dsnn": t["min_s"] / base["min_s"]}
            print(f"{what:9s} {name:20s} median {rows[name]['median_ms']:9.1f} ms (x dsnn "
                  f"{rows[name]['median_x_dsnn']:.3f})  fastest {rows[name]['min_ms']:9.1f} ms (x dsnn "
                  f"{rows[name]['min_x_dsnn']:.3f})", flush=True)
        result["results"][what] = rows
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
