"""``python -m analysis.jpsth --workdir DIR``: normalised JPSTH of a layer's neurons (Figs. 7/8).

For one test sample, runs ``--trials`` stochastic passes and computes, for
every pair of up to 16 neurons of a layer, the Pearson correlation across trials
of neuron i at step u with neuron j at step v. ``--select variable`` (default)
takes the neurons whose spikes vary most across trials (largest mean over steps
of ``p (1 - p)``, ``p`` the per-step firing frequency): a neuron that fires at
every step of every trial has no variance and so no correlation, and in a
trained conv net the most active neurons of the last layer are exactly those.
``--select active`` takes the highest firing rates instead. In a layer of at
most ``--neurons`` units (the paper's 16-unit layers) both take every unit.
Writes ``DIR/analysis/jpsth.json`` and ``jpsth.png`` (self pairs masked: their
diagonal is 1 by definition; a colour bar gives the scale). ``chance_abs_correlation``
is ``sqrt(2 / (pi N))``, the mean ``|r|`` of independent neurons over N trials.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

import jax
import numpy as np

from analysis import common, plots, stats

SELECTIONS = ("variable", "active")


def choose_neurons(trains: np.ndarray, count: int, select: str = "variable") -> np.ndarray:
    """Indices (ascending) of the ``count`` neurons a JPSTH grid shows.

    Args:
      trains: spikes of one input, ``(N trials, T, K neurons)``.
      count: how many neurons.
      select: ``"variable"``, the largest mean over steps of ``p (1 - p)`` with
        ``p`` the per-step firing frequency across trials, or ``"active"``, the
        highest firing rates; ties keep the lower index.

    Returns:
      ``(min(count, K),)`` int indices.
    """
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {SELECTIONS}, got {select!r}")
    frequency = np.asarray(trains, np.float64).mean(axis=0)  # (T, K)
    score = (frequency * (1.0 - frequency)).mean(axis=0) if select == "variable" else frequency.mean(axis=0)
    return np.sort(np.argsort(-score, kind="stable")[:count])


def main(argv: Optional[Sequence[str]] = None) -> dict:
    model_options = common.start()
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--sample", type=int, default=0, help="index of the test sample")
    p.add_argument("--neurons", type=int, default=8, help="how many neurons (<= 16)")
    p.add_argument("--select", choices=SELECTIONS, default="variable",
                   help="which neurons: those whose spikes vary most across trials, or the most active")
    p.add_argument("--trials", type=int, default=1000, help="stochastic trials")
    args = p.parse_args(argv)
    if not 1 <= args.neurons <= 16 or args.trials < 2 or args.sample < 0:
        p.error("need 1 <= --neurons <= 16, --trials >= 2 and --sample >= 0")
    config, task, variables = common.load(args.workdir, model_options=model_options)
    if args.sample >= len(task.data.test_x):
        p.error(f"--sample {args.sample} is past the {len(task.data.test_x)} test samples")
    raw = task.data.test_x[args.sample:args.sample + 1]
    layer, spikes, _ = common.run_trials(
        task, variables, raw, jax.random.key(args.seed), args.trials, args.layer, label="jpsth",
        memory_budget=args.memory_budget)
    trains = spikes[:, :, 0, :]  # (N, T, K)
    rates = trains.mean(axis=(0, 1))
    chosen = choose_neurons(trains, args.neurons, args.select)
    matrix = stats.jpsth(trains[:, :, chosen])
    k = len(chosen)
    folder = common.output_dir(args.workdir)
    figure = os.path.join(folder, "jpsth.png")
    limit = None
    if common.writes_files():
        limit = plots.jpsth_grid(matrix, chosen.tolist(),
                                 f"normalised JPSTH, {layer}, sample {args.sample}, {args.trials} trials", figure)
    off_diagonal = ~np.eye(k, dtype=bool)
    result = {
        "workdir": args.workdir, "layer": layer, "sample": args.sample, "trials": args.trials,
        "select": args.select, "neurons": chosen.tolist(), "firing_rates": rates[chosen].tolist(),
        "mean_abs_correlation_between_neurons": float(np.abs(matrix[off_diagonal]).mean()) if k > 1 else 0.0,
        "chance_abs_correlation": float(np.sqrt(2.0 / (np.pi * args.trials))),
        "colour_limit": limit, "jpsth": matrix.tolist(), "figures": [figure],
    }
    path = os.path.join(folder, "jpsth.json")
    common.write_json(path, result)
    print(f"wrote {path} and {figure}")
    return result


if __name__ == "__main__":
    main()
