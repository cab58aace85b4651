"""``python -m benchmarks.trials``: repeated stochastic trials, ``sample_trials`` against plain loops.

Configurations: CIFARNet (the authors' form, T = 2, B = 32, ``--width`` of the
channels) and the Fashion-MNIST MLP 784-512-10 (T = 8) at B = 8 and B = 256,
each run for ``--trials`` trials recording the last spiking layer. Candidates:

* ``sample_trials``: :func:`nsnn_jax.trials.sample_trials` as the analysis
  commands call it (compiled once per shape, chunks sized to the memory budget);
* ``vmap``: the same with ``--vmap-width`` trials vectorised together;
* ``loop``: a Python loop of one jitted trial per key ``split(key, N)[i]``,
  each fetched to the host and kept in arrays of all the trials, as
  ``sample_trials`` returns them (trial 0 is asserted to give the same spikes);
* ``chunk=C`` (``--chunks``): ``sample_trials`` with ``C`` trials per chunk
  instead of the planned size;
* ``torch_loop``: a PyTorch loop of the same network (random weights) with
  the authors' neuron (membrane and firing noise drawn each step), under
  ``torch.inference_mode``, every trial's spikes kept (when PyTorch is installed).

All are timed in one process in interleaved rounds (order reshuffled each
round): trials/s of the median round, compile seconds, XLA's planned bytes of
what runs (one compiled chunk, or one trial) and, with ``--memory``, the peak
RSS of a fresh process running the candidate once (above the RSS after
building the model). The last line is a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import describe_devices, parse_positive_ints, proc_status_kib
from nsnn_jax import cpu, models, trials
from nsnn_jax import neuron as neuron_lib
from nsnn_jax import noise as noise_lib

CONFIGS = ("cifarnet", "mlp_b8", "mlp_b256")
CANDIDATES = ("sample_trials", "vmap", "loop", "torch_loop")
SIGMA = 0.3


def build_config(name: str, width: float, tiny: bool = False):
    """``(model, variables, inputs, description)`` of configuration ``name`` (``tiny``: test-sized)."""
    family = noise_lib.Gaussian(SIGMA)
    params = neuron_lib.LIFParams(noise=family)
    if name == "cifarnet":
        batch, side = (2, 8) if tiny else (32, 32)
        width = 1 / 64 if tiny else width
        model = models.get_model("cifarnet", neuron=params, timesteps=2, width=width, outputs=10)
        x = jax.random.normal(jax.random.key(0), (batch, side, side, 3))
        text = f"CIFARNet (authors' form, width {width:g}), T=2, B={batch}, {side}x{side}"
    elif name in ("mlp_b8", "mlp_b256"):
        batch = 8 if name == "mlp_b8" else 256
        hidden, inputs = ((16,), 20) if tiny else ((512,), 784)
        batch = min(batch, 6) if tiny else batch
        model = models.get_model("mlp", hidden=hidden, outputs=10, timesteps=8, neuron=params)
        x = jax.random.uniform(jax.random.key(0), (batch, inputs))
        text = f"MLP {inputs}-{hidden[0]}-10, T=8, B={batch}"
    else:
        raise ValueError(f"Unknown configuration {name!r}; expected one of {CONFIGS}.")
    variables = model.init({"params": jax.random.key(1), "noise": jax.random.key(2)}, x)
    return model, {"params": variables["params"]}, x, text


def build_candidate(candidate: str, config: str, width: float, n_trials: int, vmap_width: int,
                    tiny: bool = False, memory_budget: Optional[int] = None) -> tuple[Callable[[], object], dict]:
    """``(run, info)``: ``run()`` performs the ``n_trials`` trials and returns trial 0's spikes (numpy)."""
    model, variables, x, _ = build_config(config, width, tiny)
    key = jax.random.key(3)
    info: dict = {"compile_s": None, "planned_bytes": None}
    if candidate in ("sample_trials", "vmap") or candidate.startswith("chunk="):
        width_ = min(vmap_width, n_trials) if candidate == "vmap" else None
        start = time.perf_counter()
        sampler = trials.trial_sampler(model, variables, x, memory_budget=memory_budget, vector_width=width_)
        chunk = (min(int(candidate[len("chunk="):]), n_trials) if candidate.startswith("chunk=")
                 else sampler.plan(n_trials))
        sampler.compiled(chunk)  # a chosen chunk compiles here, as a planned one does in plan()
        info.update(compile_s=time.perf_counter() - start, planned_bytes=sampler.planned_bytes(chunk), chunk=chunk)

        def run():
            result = sampler(variables, x, key, n_trials, chunk=chunk)
            return next(iter(result.spikes.values()))[0]
        return run, info
    if candidate == "loop":
        sampler = trials.trial_sampler(model, variables, x)
        spec = jax.ShapeDtypeStruct(sampler.key_spec.shape, sampler.key_spec.dtype)
        start = time.perf_counter()
        one = jax.jit(sampler._trial).lower(sampler.variables_spec, sampler.inputs_spec, spec).compile()
        info["compile_s"] = time.perf_counter() - start
        stats = one.memory_analysis()
        info["planned_bytes"] = int(stats.argument_size_in_bytes + stats.output_size_in_bytes
                                    + stats.temp_size_in_bytes - stats.alias_size_in_bytes)

        def run():
            # Keeps every trial's spikes and readout, as sample_trials does, in arrays of all the trials.
            keys = jax.random.key_data(jax.random.split(key, n_trials))
            kept = None
            for i in range(n_trials):
                trial = jax.device_get(one(variables, x, keys[i]))
                if kept is None:
                    kept = jax.tree.map(lambda a: np.empty((n_trials,) + a.shape, a.dtype), trial)
                for store, values in zip(jax.tree.leaves(kept), jax.tree.leaves(trial)):
                    store[i] = values
            return next(iter(kept[0].values()))[0]
        return run, info
    if candidate == "torch_loop":
        from benchmarks import torch_trials
        return torch_trials.build_loop(model, x, n_trials), info
    raise ValueError(f"Unknown candidate {candidate!r}; expected one of {CANDIDATES}.")


def torch_missing() -> Optional[str]:
    try:
        import torch  # noqa: F401
    except ImportError:
        return "PyTorch is not installed (pip install -e .[bench])"
    return None


def peak_memory(candidate: str, args) -> Optional[int]:
    """Peak RSS above the RSS once the model is built, of a fresh process running ``candidate`` once."""
    command = [sys.executable, "-m", "benchmarks.trials", "--probe-memory", candidate, "--configs", args.config_now,
               "--trials", str(args.trials), "--width", str(args.width), "--vmap-width", str(args.vmap_width),
               "--memory-budget", str(args.memory_budget)]
    command += ["--tiny"] if args.tiny else []
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"memory probe of {candidate} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_bytes"]


def probe_memory(candidate: str, args) -> dict:
    build_config(args.configs[0], args.width, args.tiny)  # the framework and one model loaded
    baseline = proc_status_kib("VmRSS")
    run, _ = build_candidate(candidate, args.configs[0], args.width, args.trials, args.vmap_width, args.tiny,
                             args.memory_budget)
    run()
    peak = proc_status_kib("VmHWM")
    return {"peak_bytes": None if baseline is None or peak is None else 1024 * (peak - baseline)}


def measure(config: str, args) -> dict:
    names = [name for name in args.candidates if not (name == "torch_loop" and torch_missing())]
    names += [f"chunk={c}" for c in args.chunks]
    skipped = {name: torch_missing() for name in args.candidates if name not in names}
    runs, infos, first = {}, {}, {}
    for name in list(names):
        try:
            runs[name], infos[name] = build_candidate(name, config, args.width, args.trials, args.vmap_width,
                                                      args.tiny, args.memory_budget)
        except ValueError as error:  # e.g. a vmap too wide for the memory budget
            names.remove(name)
            skipped[name] = str(error)
            continue
        first[name] = np.asarray(runs[name]())  # warm-up, and trial 0's spikes
    if "loop" in first:
        for name in ("sample_trials", "vmap", *(f"chunk={c}" for c in args.chunks)):
            if name in first and not np.array_equal(first[name], first["loop"]):
                raise AssertionError(f"{name} and the loop of single trials differ on trial 0 of {config}")
    times = {name: [] for name in names}
    order, rng = list(names), random.Random(0)
    for _ in range(args.rounds):
        rng.shuffle(order)
        for name in order:
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
    memory = {}
    if args.memory:
        args.config_now = config
        for name in names:
            memory[name] = peak_memory(name, args)
    text = build_config(config, args.width, args.tiny)[3]
    print(f"{text}, {args.trials} trials; {describe_devices()}")
    print(f"{'candidate':14s} {'trials/s':>10s} {'min-max':>17s} {'x loop':>7s} {'compile s':>10s} "
          f"{'planned MiB':>12s} {'peak MiB':>9s}")
    results = {}
    loop = statistics.median(times["loop"]) if "loop" in times else None
    for name in names:
        median = statistics.median(times[name])
        results[name] = {"trials_per_s": args.trials / median, "median_s": median,
                         "min_trials_per_s": args.trials / max(times[name]),
                         "max_trials_per_s": args.trials / min(times[name]),
                         "speedup_over_loop": loop / median if loop else None,
                         "peak_memory_bytes": memory.get(name), **infos[name]}
        r = results[name]
        fmt = lambda v, f: (f"{v:{f}}" if v is not None else "n/a")  # noqa: E731
        print(f"{name:14s} {r['trials_per_s']:10.2f} {r['min_trials_per_s']:8.2f}-{r['max_trials_per_s']:<8.2f} "
              f"{fmt(r['speedup_over_loop'], '7.2f'):>7s} {fmt(r['compile_s'], '10.2f'):>10s} "
              f"{fmt(r['planned_bytes'] and r['planned_bytes'] / 2**20, '12.1f'):>12s} "
              f"{fmt(r['peak_memory_bytes'] and r['peak_memory_bytes'] / 2**20, '9.1f'):>9s}")
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    return {"config": config, "description": text, "trials": args.trials, "results": results, "skipped": skipped}


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--configs", type=lambda t: [p.strip() for p in t.split(",") if p.strip()],
                        default=list(CONFIGS), help="comma-separated subset of " + ", ".join(CONFIGS))
    parser.add_argument("--candidates", type=lambda t: [p.strip() for p in t.split(",") if p.strip()],
                        default=list(CANDIDATES), help="comma-separated subset of " + ", ".join(CANDIDATES))
    parser.add_argument("--chunks", type=parse_positive_ints, default=[],
                        help="also time sample_trials at these chunk sizes (candidates chunk=C)")
    parser.add_argument("--trials", type=int, default=1000, help="trials per configuration")
    parser.add_argument("--quick", action="store_true", help="50 trials and 1 round")
    parser.add_argument("--width", type=float, default=1.0, help="CIFARNet channel multiplier")
    parser.add_argument("--vmap-width", type=int, default=32, help="trials vectorised together by 'vmap'")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                        help="measure peak memory, one fresh process per candidate")
    parser.add_argument("--tiny", action="store_true", help="test-sized models (for the test suite)")
    parser.add_argument("--probe-memory", metavar="NAME", help=argparse.SUPPRESS)
    # the parent's budget, so that a memory probe plans the chunks the timed run planned
    parser.add_argument("--memory-budget", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.rounds = min(args.trials, 50), 1
    bad = [c for c in args.configs if c not in CONFIGS] + [c for c in args.candidates if c not in CANDIDATES]
    if bad or not args.configs or not args.candidates:
        parser.error(f"unknown configuration(s) or candidate(s) {bad}; choose from {CONFIGS} and {CANDIDATES}")
    if min(args.trials, args.rounds, args.vmap_width) < 1 or not args.width > 0:
        parser.error("--trials, --rounds and --vmap-width must be >= 1 and --width > 0")
    cpu.configure()
    if args.memory_budget is None:
        args.memory_budget = trials.default_memory_budget()
    if args.probe_memory:
        result = probe_memory(args.probe_memory, args)
        print(json.dumps(result))
        return result
    summary = {"date": time.strftime("%Y-%m-%d"), "platform": jax.devices()[0].platform,
               "devices": describe_devices(), "configs": []}
    for config in args.configs:
        summary["configs"].append(measure(config, args))
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
