"""``python -m benchmarks.long_t``: the NSNN training step at long T, per unroll policy and with ``--remat``.

For each workload (the MLP and conv workloads of :mod:`benchmarks.workloads`,
at a batch size of its own) and each T, the trainer's step of the NSNN is
compiled with each time-loop unroll in ``--unroll`` (``auto``: the library's
policy, :func:`nsnn_jax.neuron.scan_unroll`; ``full``: the whole of T in one
iteration; an integer: that many steps per iteration) and, for the conv net
with ``--remat``, also rematerialised. The candidates of one T are timed
interleaved in one process. Each row: step time, step time per time step
(linear in T when it stays level), compile time and XLA's planned memory of
the compiled step (arguments + outputs + temporaries).
"""

from __future__ import annotations

import argparse
import contextlib
import json
from typing import Optional, Sequence

import jax

from benchmarks.common import describe_devices, make_step, parse_positive_ints, time_interleaved
from benchmarks.workloads import WORKLOADS, PeerConvNet
from nsnn_jax import cpu, models
from nsnn_jax import neuron as neuron_lib
from nsnn_jax import noise as noise_lib

__all__ = ["main", "parse_unrolls", "unroll_policy"]

def parse_unrolls(text: str) -> list[str]:
    """``"auto,full,8"`` -> ``["auto", "full", "8"]`` (an argparse ``type``)."""
    values = [part.strip() for part in text.split(",") if part.strip()]
    for value in values:
        if value not in ("auto", "full") and not (value.isdigit() and int(value) >= 1):
            raise argparse.ArgumentTypeError(f"expected auto, full or an integer >= 1, got {value!r} in {text!r}")
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one unroll, got {text!r}")
    return values


@contextlib.contextmanager
def unroll_policy(unroll: str):
    """While tracing inside: every :func:`nsnn_jax.neuron.lif_scan` unrolls by ``unroll``
    (``auto`` leaves the library's policy)."""
    if unroll == "auto":
        yield
        return
    original = neuron_lib.scan_unroll

    def fixed(timesteps: int, requested: Optional[int] = None) -> int:
        if requested is not None:
            return original(timesteps, requested)
        return timesteps if unroll == "full" else min(int(unroll), timesteps)

    neuron_lib.scan_unroll = fixed
    try:
        yield
    finally:
        neuron_lib.scan_unroll = original


def build_model(kind: str, timesteps: int, sigma: float, remat: bool, widths: Sequence[int]):
    neuron = neuron_lib.LIFParams(noise=noise_lib.Gaussian(sigma))
    if kind == "mlp":
        return models.get_model("mlp", neuron=neuron, hidden=tuple(widths), outputs=10, timesteps=timesteps)
    return PeerConvNet(outputs=10, timesteps=timesteps, norm="bn", neuron=neuron, conv_channels=tuple(widths),
                       remat=remat)


def measure(kind: str, timesteps: int, args) -> list[dict]:
    workload = WORKLOADS[kind]
    batch = args.mlp_batch_size if kind == "mlp" else args.conv_batch_size
    widths = workload.widths if kind == "mlp" or args.conv_widths is None else args.conv_widths
    input_shape = (workload.inputs,) if kind == "mlp" else (args.image_size, args.image_size, 3)
    variants = [(unroll, False) for unroll in args.unroll]
    if kind == "conv" and args.remat:
        variants.append(("auto", True))
    steps, info = {}, {}
    for unroll, remat in variants:
        name = f"unroll={unroll}" + ("+remat" if remat else "")
        with unroll_policy(unroll):
            run, memory, compile_s = make_step(build_model(kind, timesteps, args.sigma, remat, widths), batch,
                                               timesteps, input_shape=input_shape)
        steps[name] = run
        resolved = neuron_lib.scan_unroll(timesteps) if unroll == "auto" else (
            timesteps if unroll == "full" else min(int(unroll), timesteps))
        info[name] = dict(unroll=unroll, steps_per_iteration=resolved, remat=remat, memory_bytes=memory,
                          compile_s=compile_s)
    timings = time_interleaved(steps, rounds=args.rounds, steps_per_round=args.steps)
    rows = []
    for name, t in timings.items():
        row = dict(workload=kind, timesteps=timesteps, batch_size=batch, candidate=name, **info[name],
                   median_ms=1e3 * t["median_s"], min_ms=1e3 * t["min_s"], max_ms=1e3 * t["max_s"],
                   ms_per_timestep=1e3 * t["median_s"] / timesteps)
        rows.append(row)
        mib = f"{row['memory_bytes'] / 2**20:10.1f}" if row["memory_bytes"] is not None else f"{'n/a':>10s}"
        print(f"{kind:5s} {timesteps:4d} {name:22s} {row['steps_per_iteration']:6d} {row['median_ms']:10.1f} "
              f"{row['ms_per_timestep']:9.2f} {row['compile_s']:9.2f} {mib}", flush=True)
    return rows


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--workloads", default="mlp,conv", help="comma-separated: mlp, conv")
    parser.add_argument("--timesteps", type=parse_positive_ints, default=[8, 16, 32, 48], help="the T to sweep")
    parser.add_argument("--unroll", type=parse_unrolls, default=["auto"],
                        help="time-loop unrolls to compare: auto (the library's policy), full, or integers")
    parser.add_argument("--remat", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the rematerialised conv net (the MLP has no remat option)")
    parser.add_argument("--mlp-batch-size", type=int, default=128, help="B of the MLP (784-512-512-10)")
    parser.add_argument("--conv-batch-size", type=int, default=8, help="B of the conv net")
    parser.add_argument("--conv-widths", type=parse_positive_ints, default=None,
                        help="conv channels (default: the conv workload's 64,128,256)")
    parser.add_argument("--image-size", type=int, default=32, help="image side of the conv net")
    parser.add_argument("--sigma", type=float, default=0.3, help="Gaussian noise scale")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--steps", type=int, default=2, help="steps per round")
    args = parser.parse_args(argv)
    kinds = [part.strip() for part in args.workloads.split(",") if part.strip()]
    if not kinds or any(kind not in WORKLOADS for kind in kinds):
        parser.error(f"--workloads takes a comma-separated subset of {sorted(WORKLOADS)}, got {args.workloads!r}")
    if min(args.mlp_batch_size, args.conv_batch_size, args.image_size, args.rounds, args.steps) < 1:
        parser.error("--mlp-batch-size, --conv-batch-size, --image-size, --rounds and --steps must be >= 1")
    cpu.configure()
    print(f"NSNN training step over T, {describe_devices()}")
    print(f"{'net':5s} {'T':>4s} {'candidate':22s} {'unroll':>6s} {'step ms':>10s} {'ms per T':>9s} "
          f"{'compile s':>9s} {'memory MiB':>10s}")
    rows = [row for kind in kinds for timesteps in args.timesteps for row in measure(kind, timesteps, args)]
    result = {"platform": jax.devices()[0].platform, "policy": {"max_full_unroll": neuron_lib.MAX_FULL_UNROLL,
                                                                  "partial_unroll": neuron_lib.PARTIAL_UNROLL},
              "rows": rows}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
