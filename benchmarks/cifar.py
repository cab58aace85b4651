"""``python -m benchmarks.cifar``: images/s of the CIFAR training steps against a plain-ANN floor.

A full training step (augmented-free 32x32x3 batch, forward, BPTT, Adam, BN
statistics) of CIFARNet or ResNet-18* as an NSNN and as a deterministic LIF
network (DSNN), against the same layers with ReLU on ``T*B`` images (the
input repeated over T), timed interleaved in one process. Memory is XLA's
compiled estimate (arguments + outputs + temporaries), the figure that decides
whether a batch fits; ``--remat both`` also times the rematerialised models.
"""

from __future__ import annotations

import argparse
import json
from typing import Optional, Sequence

import jax
import jax.numpy as jnp

from benchmarks.common import conv_engine, describe_devices, make_step, parse_positive_ints, time_interleaved
from nsnn_jax import cpu, models
from nsnn_jax import neuron as neuron_lib
from nsnn_jax import noise as noise_lib

# The authors' forms under the paper names, and the Table 5 readings.
ARCHS = tuple(f"{name}{suffix}" for name in ("cifarnet", "resnet18", "resnet19", "vggsnn") for suffix in ("", "_table5"))


def build_candidates(arch: str, timesteps: int, sigma: float, remat_modes: Sequence[bool], dtype,
                     width: float = 1.0, conv_weight_grad: str = "xla") -> dict:
    noisy = neuron_lib.LIFParams(noise=noise_lib.Gaussian(sigma))
    common = dict(outputs=10, timesteps=timesteps, width=width, dtype=None if dtype == jnp.float32 else dtype,
                  conv_weight_grad=conv_weight_grad)
    candidates = {}
    for remat in remat_modes:
        suffix = "+remat" if remat else ""
        candidates["nsnn" + suffix] = (models.get_model(arch, neuron=noisy, remat=remat, **common), False)
        candidates["dsnn" + suffix] = (models.get_model(arch, neuron=noisy._replace(noise=None), remat=remat, **common), False)
    candidates["floor"] = (models.get_model(arch, activation="relu", sequence_input=True, **common), True)
    return candidates


def measure(args, timesteps: int, remat_modes: Sequence[bool], dtype, conv_weight_grad: str = "xla") -> dict:
    """Times every candidate at ``timesteps``, prints the table, returns the figures."""
    steps, memory, compile_s = {}, {}, {}
    for name, (model, repeat) in build_candidates(
            args.arch, timesteps, args.sigma, remat_modes, dtype, args.width, conv_weight_grad).items():
        steps[name], memory[name], compile_s[name] = make_step(
            model, args.batch_size, timesteps, repeat_input=repeat, dtype=dtype)
    timings = time_interleaved(steps, rounds=args.rounds, steps_per_round=args.steps)
    floor = timings["floor"]["median_s"]
    print(f"{args.arch} train step, T={timesteps}, B={args.batch_size}, {args.dtype}, "
          f"{describe_devices()}")
    print(f"{'step':12s} {'images/s':>9s} {'min-max ms':>17s} {'compile s':>10s} {'x floor time':>13s} {'memory MiB':>11s}")
    for name, t in timings.items():
        mib = f"{memory[name] / 2**20:11.1f}" if memory[name] is not None else f"{'n/a':>11s}"
        print(f"{name:12s} {args.batch_size / t['median_s']:9.1f} {1e3 * t['min_s']:8.1f}-{1e3 * t['max_s']:<8.1f} "
              f"{compile_s[name]:10.2f} {t['median_s'] / floor:13.3f} {mib}")
    result = {"arch": args.arch, "timesteps": timesteps, "batch_size": args.batch_size,
              "platform": jax.devices()[0].platform, "conv_engine": conv_engine(),
              "floor_images_per_s": args.batch_size / floor, "floor_memory_bytes": memory["floor"]}
    for name in steps:
        if name == "floor":
            continue
        key = name.replace("+", "_")
        result[f"{key}_images_per_s"] = args.batch_size / timings[name]["median_s"]
        result[f"{key}_ratio"] = timings[name]["median_s"] / floor
        result[f"{key}_memory_bytes"] = memory[name]
        result[f"{key}_compile_s"] = compile_s[name]
    return result


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--arch", default="cifarnet", choices=ARCHS, help="architecture")
    parser.add_argument("--timesteps", type=parse_positive_ints, default=[2],
                        help="T, or several (e.g. 2,4,8: one table each, e.g. for the remat trade-off)")
    parser.add_argument("--batch-size", type=int, default=32, help="B")
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier (1: the published network)")
    parser.add_argument("--sigma", type=float, default=0.3, help="Gaussian noise scale")
    parser.add_argument("--remat", default="off", choices=("off", "on", "both"),
                        help="rematerialise blocks in the backward pass (both: time each)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="computation dtype")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--steps", type=int, default=3, help="steps per round")
    args = parser.parse_args(argv)
    setup = cpu.configure()
    if args.batch_size < 1 or args.rounds < 1 or args.steps < 1:
        parser.error("--batch-size, --rounds and --steps must be >= 1")
    if not args.width > 0:
        parser.error("--width must be > 0")
    dtype = jnp.bfloat16 if args.dtype == "bfloat16" else jnp.float32
    remat_modes = {"off": (False,), "on": (True,), "both": (False, True)}[args.remat]
    runs = [measure(args, timesteps, remat_modes, dtype, setup.conv_weight_grad) for timesteps in args.timesteps]
    result = runs[0] if len(runs) == 1 else {"arch": args.arch, "runs": runs}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
