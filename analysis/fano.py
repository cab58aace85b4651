"""``python -m analysis.fano --workdir DIR``: trial-to-trial variability of a trained run.

Runs ``--trials`` stochastic passes on ``--samples`` test inputs, then reports
per-sample Fano factor of the spike counts of one layer, the stability of the
predictions across trials (mean pairwise cosine similarity), and their Pearson
correlation (Figs. 5B/C of the paper); plots firing rates and rasters of two
repeated trials (Fig. 5A), whose spikes and predictions ``example`` records. Writes ``DIR/analysis/fano.json`` and PNGs.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

import jax
import matplotlib.pyplot as plt
import numpy as np

from analysis import common, plots, stats


def prediction_vectors(outputs: np.ndarray, classification: bool) -> np.ndarray:
    """Per trial and sample, what is compared across trials ``(N, B, D)``.

    Classification: the predictive distribution, softmax of the rate-coded
    logits. Regression: the readout trajectory over T.
    """
    if classification:
        logits = outputs.mean(axis=1)
        logits = logits - logits.max(axis=-1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=-1, keepdims=True)
    n, t, b, d = outputs.shape
    return outputs.transpose(0, 2, 1, 3).reshape(n, b, t * d)


def analyse(spikes: np.ndarray, outputs: np.ndarray, classification: bool) -> dict:
    """Figures of merit from spikes ``(N, T, B, K)`` and outputs ``(N, T, B, C)``."""
    fano = stats.fano_factor(stats.spike_counts(spikes))
    stability = stats.prediction_stability(prediction_vectors(outputs, classification))
    active = fano.active_samples
    result = {
        "samples": int(spikes.shape[2]),
        "trials": int(spikes.shape[0]),
        "active_samples": int(active.sum()),
        "silent_neuron_fraction": float(fano.silent.mean()),
        "mean_fano_factor": float(fano.per_sample[active].mean()) if active.any() else 0.0,
        "mean_stability": float(stability.mean()),
        "fano_factor_per_sample": fano.per_sample.tolist(),
        "stability_per_sample": stability.tolist(),
        "firing_rate_per_neuron": spikes.mean(axis=(0, 1, 2)).tolist(),
    }
    try:
        r, p = stats.pearson(fano.per_sample[active], stability[active])
    except ValueError as error:  # too few active samples, or no spread
        r, p = float("nan"), float("nan")
        result["pearson_note"] = str(error)
    result["pearson_r"], result["pearson_p"] = r, p
    return result


def example_trials(spikes: np.ndarray, outputs: np.ndarray, classification: bool, trials: int = 2) -> dict:
    """Two repeated trials of sample 0 (Fig. 5A): their spikes as ``[step, neuron]`` pairs and predictions."""
    predictions = prediction_vectors(outputs[:trials, :, :1], classification)[:, 0]
    return {
        "sample": 0, "timesteps": int(spikes.shape[1]), "neurons": int(spikes.shape[3]),
        "spikes": [np.argwhere(spikes[trial, :, 0]).tolist() for trial in range(trials)],
        "predictions": predictions.tolist(),
        "differing_spike_fraction": float(np.mean(spikes[0, :, 0] != spikes[1, :, 0])),
    }


def plot(result: dict, spikes: np.ndarray, layer: str, folder: str) -> list[str]:
    paths = []
    ff = np.asarray(result["fano_factor_per_sample"])
    sim = np.asarray(result["stability_per_sample"])
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(ff, sim, s=8, alpha=0.6)
    if np.isfinite(result["pearson_r"]) and np.ptp(ff) > 0:
        slope, intercept = np.polyfit(ff, sim, 1)
        xs = np.linspace(ff.min(), ff.max(), 50)
        ax.plot(xs, slope * xs + intercept, color="C3")
    ax.set_xlabel("average Fano factor")
    ax.set_ylabel("prediction similarity")
    ax.set_title(f"r = {result['pearson_r']:.3f}, p = {result['pearson_p']:.2g}")
    paths.append(os.path.join(folder, "fano_vs_similarity.png"))
    fig.tight_layout(); fig.savefig(paths[-1], dpi=120); plt.close(fig)

    rates = np.asarray(result["firing_rate_per_neuron"])
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(np.arange(len(rates)), rates, width=1.0)
    ax.set_xlabel(f"neuron ({layer})"); ax.set_ylabel("firing rate (spikes per step)")
    paths.append(os.path.join(folder, "fano_firing_rates.png"))
    fig.tight_layout(); fig.savefig(paths[-1], dpi=120); plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(8, 3), sharey=True)
    for trial, ax in enumerate(axes):
        plots.raster(ax, spikes[trial, :, 0], title=f"sample 0, trial {trial + 1}")
    axes[0].set_ylabel(f"neuron ({layer})")
    paths.append(os.path.join(folder, "fano_rasters.png"))
    fig.tight_layout(); fig.savefig(paths[-1], dpi=120); plt.close(fig)
    return paths


def main(argv: Optional[Sequence[str]] = None) -> dict:
    model_options = common.start()
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=500, help="test samples analysed")
    p.add_argument("--trials", type=int, default=100, help="stochastic trials per sample")
    args = p.parse_args(argv)
    if args.samples < 3 or args.trials < 2:
        p.error(f"need --samples >= 3 and --trials >= 2, got {args.samples} and {args.trials}")
    config, task, variables = common.load(args.workdir, model_options=model_options)
    raw = task.data.test_x[: args.samples]
    layer, spikes, outputs = common.run_trials(
        task, variables, raw, jax.random.key(args.seed), args.trials, args.layer, label="fano",
        memory_budget=args.memory_budget)
    result = {"workdir": args.workdir, "layer": layer, **analyse(spikes, outputs, task.classification),
              "example": example_trials(spikes, outputs, task.classification)}
    folder = common.output_dir(args.workdir)
    result["figures"] = plot(result, spikes, layer, folder) if common.writes_files() else []
    path = os.path.join(folder, "fano.json")
    common.write_json(path, result)
    print(f"mean Fano factor {result['mean_fano_factor']:.4f}, mean similarity {result['mean_stability']:.4f}, "
          f"r = {result['pearson_r']:.4f} (p = {result['pearson_p']:.3g}) over {result['active_samples']} samples",
          file=sys.stderr)
    print(f"wrote {path} and {len(result['figures'])} figures in {folder}")
    return result


if __name__ == "__main__":
    main()
