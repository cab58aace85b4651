"""``python -m benchmarks.step --model mlp``: training steps/s of a spiking MLP vs its ANN floor.

The trainer's training step (forward, BPTT, Adam) of a 784-512-512-10 NSNN at T = 8,
batch 128, against the same layers as a plain ReLU network on T*B samples,
timed interleaved in one process.
"""

from __future__ import annotations

import argparse
import json
from typing import Optional, Sequence

import jax

from nsnn_jax import cpu, models
from nsnn_jax import neuron as neuron_lib
from nsnn_jax import noise as noise_lib
from benchmarks.common import make_step, time_interleaved


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default="mlp", choices=["mlp"], help="workload")
    parser.add_argument("--hidden", default="512,512", help="hidden widths")
    parser.add_argument("--timesteps", type=int, default=8, help="T")
    parser.add_argument("--batch-size", type=int, default=128, help="B")
    parser.add_argument("--sigma", type=float, default=0.3, help="Gaussian noise scale")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--steps", type=int, default=10, help="steps per round")
    args = parser.parse_args(argv)
    cpu.configure()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    if args.timesteps < 1 or args.batch_size < 1:
        parser.error("--timesteps and --batch-size must be >= 1")
    common = dict(hidden=hidden, outputs=10, timesteps=args.timesteps)
    noisy = neuron_lib.LIFParams(noise=noise_lib.Gaussian(args.sigma))
    candidates = {
        "nsnn": models.get_model("mlp", neuron=noisy, **common),
        "dsnn": models.get_model("mlp", neuron=noisy._replace(noise=None), **common),
        "floor": models.get_model("ann_mlp", **common),
    }
    steps = {name: make_step(m, args.batch_size, args.timesteps, input_shape=(784,))[0] for name, m in candidates.items()}
    timings = time_interleaved(steps, rounds=args.rounds, steps_per_round=args.steps)
    floor = timings["floor"]["median_s"]
    print(f"MLP 784-{'-'.join(map(str, hidden))}-10, T={args.timesteps}, B={args.batch_size}, "
          f"{jax.device_count()} {jax.devices()[0].platform} device(s)")
    print(f"{'step':8s} {'steps/s':>9s} {'min-max ms':>15s} {'compile s':>10s} {'x floor time':>13s}")
    for name, t in timings.items():
        print(f"{name:8s} {1 / t['median_s']:9.1f} {1e3 * t['min_s']:7.2f}-{1e3 * t['max_s']:<7.2f} "
              f"{t['first_call_s']:10.2f} {t['median_s'] / floor:13.3f}")
    result = {
        "nsnn_steps_per_s": 1 / timings["nsnn"]["median_s"],
        "dsnn_steps_per_s": 1 / timings["dsnn"]["median_s"],
        "floor_steps_per_s": 1 / floor,
        "ratio": timings["nsnn"]["median_s"] / floor,
        "dsnn_ratio": timings["dsnn"]["median_s"] / floor,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
