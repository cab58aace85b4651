"""``python -m benchmarks.peers --workload mlp|conv``: this library's training step against other SNN libraries.

Candidates (see :mod:`benchmarks.workloads` for what each one computes):
``jax_nsnn`` (noisy LIF, NDL), ``jax_dsnn`` (deterministic LIF, surrogate
gradient), ``jax_floor`` (the same layers as a ReLU network in JAX),
``torch_floor`` (the same in PyTorch), and, when installed, ``spikingjelly``,
``snntorch`` and ``norse`` (:mod:`benchmarks.torch_peers`). All are timed in one
process in interleaved rounds, the order reshuffled each round; the table gives
medians, min-max, the ratio to the JAX floor, the first step (after JAX's
ahead-of-time compile, which has its own column) and the peak memory of a fresh
process running the step (peak RSS above the RSS after importing the
framework). The last line is a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from typing import Optional, Sequence

import jax

from benchmarks import torch_peers
from benchmarks.common import (conv_engine, describe_devices, parse_positive_ints, proc_status_kib, step_loss,
                               time_interleaved)
from benchmarks.workloads import JAX_CANDIDATES, WORKLOADS, Workload, build_jax
from nsnn_jax import cpu

CANDIDATES = JAX_CANDIDATES + torch_peers.TORCH_CANDIDATES
SNN_PEERS = ("spikingjelly", "snntorch", "norse")


def parse_candidates(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in CANDIDATES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"unknown candidate(s) {unknown or text!r}; choose from {', '.join(CANDIDATES)}")
    return names


def build(name: str, workload: Workload, sigma: float, conv_weight_grad: str = "xla"):
    """``(run, compile seconds or None)`` for candidate ``name``."""
    if name in JAX_CANDIDATES:
        return build_jax(name, workload, sigma, conv_weight_grad=conv_weight_grad)
    return torch_peers.build_torch(name, workload)


def probe_memory(name: str, workload: Workload, sigma: float, conv_weight_grad: str = "xla") -> Optional[int]:
    """In this process: bytes of peak RSS above the RSS once the framework is loaded,
    over building ``name`` and running three steps (None where /proc is missing)."""
    if name in JAX_CANDIDATES:
        jax.devices()
    else:
        import torch

        torch.zeros(1)
    baseline = proc_status_kib("VmRSS")
    run, _ = build(name, workload, sigma, conv_weight_grad)
    for _ in range(3):
        jax.block_until_ready(run())
    peak = proc_status_kib("VmHWM")
    return None if baseline is None or peak is None else 1024 * (peak - baseline)


def workload_args(workload: Workload, sigma: float) -> list[str]:
    return ["--workload", workload.kind, "--timesteps", str(workload.timesteps),
            "--batch-size", str(workload.batch), "--widths", ",".join(map(str, workload.widths)),
            "--image-size", str(workload.image_size), "--sigma", str(sigma)]


def peak_memory(name: str, workload: Workload, sigma: float) -> Optional[int]:
    """:func:`probe_memory` of ``name`` in a fresh Python process."""
    command = [sys.executable, "-m", "benchmarks.peers", "--probe-memory", name, *workload_args(workload, sigma)]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"memory probe of {name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_bytes"]


def summarise(workload: Workload, timings: dict, compile_s: dict, memory: dict, losses: dict,
              skipped: dict) -> dict:
    """The JSON figures: per candidate, then the ratios the targets are stated in."""
    floor = timings["jax_floor"]["median_s"] if "jax_floor" in timings else None
    results = {}
    for name, t in timings.items():
        results[name] = {
            "steps_per_s": 1 / t["median_s"], "median_ms": 1e3 * t["median_s"],
            "min_ms": 1e3 * t["min_s"], "max_ms": 1e3 * t["max_s"],
            "ratio_to_jax_floor": t["median_s"] / floor if floor else None,
            "compile_s": compile_s.get(name), "first_step_s": t["first_call_s"],
            "peak_memory_bytes": memory.get(name), "final_loss": losses.get(name),
        }
    summary = {"workload": workload.kind, "timesteps": workload.timesteps, "batch_size": workload.batch,
               "widths": list(workload.widths), "platform": jax.devices()[0].platform,
               "conv_engine": conv_engine(), "results": results, "skipped": skipped}
    median = {name: t["median_s"] for name, t in timings.items()}
    if "jax_nsnn" in median:
        if floor:
            summary["nsnn_ratio_to_jax_floor"] = median["jax_nsnn"] / floor
        if "torch_floor" in median:
            summary["nsnn_ratio_to_torch_floor"] = median["jax_nsnn"] / median["torch_floor"]
        peers = {name: median[name] for name in SNN_PEERS if name in median}
        if peers:
            fastest = min(peers, key=peers.get)
            summary["fastest_peer"] = fastest
            summary["nsnn_speedup_over_fastest_peer"] = peers[fastest] / median["jax_nsnn"]
    return summary


def print_table(workload: Workload, summary: dict, threads: Optional[int]) -> None:
    print(f"{workload.describe()}; {describe_devices()}, "
          f"{os.cpu_count()} CPU(s)" + (f", torch threads {threads}" if threads else ""))
    print(f"{'candidate':13s} {'steps/s':>8s} {'median ms':>10s} {'min-max ms':>17s} {'x jax_floor':>11s} "
          f"{'compile s':>9s} {'1st step s':>10s} {'peak MiB':>9s} {'loss':>8s}")
    for name, r in summary["results"].items():
        ratio = "n/a" if r["ratio_to_jax_floor"] is None else f"{r['ratio_to_jax_floor']:.3f}"
        compile_text = "-" if r["compile_s"] is None else f"{r['compile_s']:.2f}"
        memory = "-" if r["peak_memory_bytes"] is None else f"{r['peak_memory_bytes'] / 2**20:.0f}"
        print(f"{name:13s} {r['steps_per_s']:8.2f} {r['median_ms']:10.2f} {r['min_ms']:8.2f}-{r['max_ms']:<8.2f} "
              f"{ratio:>11s} {compile_text:>9s} {r['first_step_s']:10.3f} {memory:>9s} {r['final_loss']:8.4f}")
    for name, why in summary["skipped"].items():
        print(f"skipped {name}: {why}")
    for key in ("nsnn_ratio_to_jax_floor", "nsnn_ratio_to_torch_floor", "nsnn_speedup_over_fastest_peer"):
        if key in summary:
            extra = f" ({summary['fastest_peer']})" if key == "nsnn_speedup_over_fastest_peer" else ""
            print(f"{key}: {summary[key]:.3f}{extra}")


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--workload", default="mlp", choices=sorted(WORKLOADS), help="workload")
    parser.add_argument("--timesteps", type=int, help="T (default: 8 for mlp, 4 for conv)")
    parser.add_argument("--batch-size", type=int, help="B (default: 128 for mlp, 32 for conv)")
    parser.add_argument("--widths", type=lambda text: tuple(parse_positive_ints(text)),
                        help="hidden widths (mlp, default 512,512) or conv channels (conv, default 64,128,256)")
    parser.add_argument("--image-size", type=int, default=32, help="image side (conv)")
    parser.add_argument("--sigma", type=float, default=0.3, help="Gaussian noise scale of jax_nsnn")
    parser.add_argument("--candidates", type=parse_candidates, default=CANDIDATES,
                        help="comma-separated subset of " + ", ".join(CANDIDATES))
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--steps", type=int, default=None, help="steps per round (default: 10 mlp, 3 conv)")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                        help="measure peak memory, one fresh process per candidate")
    parser.add_argument("--probe-memory", metavar="NAME", choices=CANDIDATES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    setup = cpu.configure()
    base = WORKLOADS[args.workload]
    workload = base._replace(
        timesteps=base.timesteps if args.timesteps is None else args.timesteps,
        batch=base.batch if args.batch_size is None else args.batch_size,
        widths=args.widths or base.widths, image_size=args.image_size)
    steps_per_round = (10 if workload.kind == "mlp" else 3) if args.steps is None else args.steps
    if min(workload.timesteps, workload.batch, workload.image_size, args.rounds, steps_per_round) < 1:
        parser.error("--timesteps, --batch-size, --rounds and --steps must be >= 1")
    if workload.kind == "conv" and (len(workload.widths) < 1 or workload.image_size % 2 ** (len(workload.widths) - 1)):
        parser.error(f"--image-size {workload.image_size} must be divisible by 2**{len(workload.widths) - 1} "
                     "(one average pool per conv after the first)")
    if not args.sigma > 0:
        parser.error("--sigma must be > 0")
    if args.probe_memory:
        result = {"peak_bytes": probe_memory(args.probe_memory, workload, args.sigma, setup.conv_weight_grad)}
        print(json.dumps(result))
        return result

    steps, compile_s, skipped = {}, {}, {}
    for name in args.candidates:
        why = None if name in JAX_CANDIDATES else torch_peers.available(name)
        if why:
            skipped[name] = why
            continue
        try:
            steps[name], compile_s[name] = build(name, workload, args.sigma, setup.conv_weight_grad)
        except Exception as error:  # a peer whose API moved: report it, time the others
            if name in JAX_CANDIDATES:
                raise
            skipped[name] = f"failed to build: {type(error).__name__}: {error}"
            continue
        print(f"built {name}" + (f" (compiled in {compile_s[name]:.2f} s)" if compile_s[name] else ""), flush=True)
    if not steps:
        parser.error("no candidate could run: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    timings = time_interleaved(steps, rounds=args.rounds, steps_per_round=steps_per_round)
    # The JAX steps return the trainer's running loss sum; the torch peers their step's loss.
    losses = {name: step_loss(run, workload.batch) if name in JAX_CANDIDATES else float(run())
              for name, run in steps.items()}
    bad = [name for name, loss in losses.items() if not math.isfinite(loss)]
    if bad:
        raise FloatingPointError(f"non-finite training loss from {bad}: {losses}")
    memory = {}
    if args.memory:
        for name in steps:
            print(f"measuring the peak memory of {name} in a fresh process", flush=True)
            memory[name] = peak_memory(name, workload, args.sigma)
    threads = None
    if any(name in torch_peers.TORCH_CANDIDATES for name in steps):
        import torch

        threads = torch.get_num_threads()
    summary = summarise(workload, timings, compile_s, memory, losses, skipped)
    print_table(workload, summary, threads)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
