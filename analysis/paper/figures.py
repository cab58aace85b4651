"""The report's figures: one PNG per paper figure, error bars over seeds, claim and verdict in the title."""

from __future__ import annotations

import textwrap
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from analysis import plots  # noqa: E402


def caption(fig, claim: str, verdict: str, extra: str = "") -> float:
    """The claim and the verdict as the figure's title (wrapped); returns the top of the free area (fraction)."""
    width = int(fig.get_figwidth() * 15)
    text = textwrap.fill(f"Paper: {claim}", width) + f"\nMeasured verdict: {verdict}"
    if extra:
        text += "\n" + textwrap.fill(extra, width)
    fig.suptitle(text, fontsize=8, x=0.01, y=0.995, ha="left", va="top")
    lines = text.count("\n") + 1
    return 1.0 - (lines * 0.15 + 0.08) / fig.get_figheight()


def errorbar(ax, xs, groups: Sequence[Sequence[float]], label: str, **kwargs) -> None:
    """Mean +- std (ddof 1) over seeds of each group, at ``xs``."""
    means = [np.mean(g) if len(g) else np.nan for g in groups]
    stds = [np.std(g, ddof=1) if len(g) > 1 else 0.0 for g in groups]
    ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=label, **kwargs)


def save(fig, path: str) -> str:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def curves_and_finals(path, claim, verdict, curves: dict, finals: dict, xlabel: str, title_left: str,
                      title_right: str, extra: str = "", band: Optional[tuple] = None, log_x: bool = True) -> str:
    """Learning curves per noise level (left) and final accuracy against the level (right).

    Args:
      curves: label -> per-seed lists of test accuracy per epoch.
      finals: series name -> (levels, per-level lists of per-seed final accuracy).
      band: ``(low, high)`` shaded on the right panel (e.g. the range within noise of the best).
    """
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    cmap = plt.get_cmap("viridis")
    for index, (label, seeds) in enumerate(curves.items()):
        length = min(len(c) for c in seeds)
        per_epoch = [[c[e] for c in seeds] for e in range(length)]
        errorbar(left, np.arange(1, length + 1), per_epoch, label, color=cmap(index / max(len(curves) - 1, 1)))
    left.set(xlabel="epoch", ylabel="test accuracy (fraction)", title=title_left)
    left.xaxis.get_major_locator().set_params(integer=True)
    left.legend(fontsize=7)
    for name, (levels, groups) in finals.items():
        errorbar(right, levels, groups, name)
    if band:
        right.axvspan(band[0], band[1], color="C2", alpha=0.12, label="within 2 pooled std of the best")
    if log_x:
        right.set_xscale("log")
        levels = sorted({float(x) for xs, _ in finals.values() for x in xs})
        right.set_xticks(levels)
        right.set_xticklabels([f"{x:g}" for x in levels])
        right.minorticks_off()
    right.set(xlabel=xlabel, ylabel="final test accuracy (fraction)", title=title_right)
    right.legend(fontsize=7)
    top = caption(fig, claim, verdict, extra)
    fig.tight_layout(rect=(0, 0, 1, top))
    return save(fig, path)


def strength_panels(path, claim, verdict, panels: list, extra: str = "") -> str:
    """Accuracy (and loss) against perturbation strength.

    Args:
      panels: ``(title, xlabel, ylabel, {series: (strengths, per-strength per-seed values)})`` each.
    """
    cols = min(len(panels), 2)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.6 * rows + 0.8), squeeze=False)
    for ax, (title, xlabel, ylabel, series) in zip(axes.ravel(), panels):
        for name, (xs, groups) in series.items():
            errorbar(ax, xs, groups, name)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        ax.legend(fontsize=7)
    top = caption(fig, claim, verdict, extra)
    fig.tight_layout(rect=(0, 0, 1, top))
    return save(fig, path)


def differing_first(spikes: np.ndarray, n: int) -> np.ndarray:
    """Indices (ascending) of up to ``n`` neurons of two trials ``(2, T, K)``: those whose spikes differ most
    between the trials first, then the most active (ties: lower index), so that a raster shows the variability
    rather than neurons that fire at every step of both trials."""
    flat = spikes.astype(np.int64)
    differing = (flat[0] != flat[1]).sum(axis=0)
    counts = flat.sum(axis=(0, 1))
    order = np.lexsort((np.arange(flat.shape[-1]), -counts, -differing))
    return np.sort(order[: min(flat.shape[-1], n)])


def two_trials(path, claim, verdict, example: dict, layer: str, rates_note: str = "") -> str:
    """Fig. 5A: predictive distributions, firing rates and rasters of two repeated trials of one sample."""
    t, k = example["timesteps"], example["neurons"]
    spikes = np.zeros((2, t, k), np.uint8)
    for trial in range(2):
        for step, neuron in example["spikes"][trial]:
            spikes[trial, step, neuron] = 1
    shown = differing_first(spikes, 32)
    fig, axes = plt.subplots(3, 2, figsize=(10, 8.5))
    predictions = np.asarray(example["predictions"])
    for trial in range(2):
        ax = axes[0, trial]
        ax.bar(np.arange(predictions.shape[1]), predictions[trial], color=f"C{trial}")
        ax.set(xlabel="class", ylabel="predicted probability", title=f"trial {trial + 1}: predictive distribution",
               ylim=(0, 1))
        ax.set_xticks(np.arange(predictions.shape[1]))
        ax = axes[1, trial]
        ax.bar(np.arange(len(shown)), spikes[trial][:, shown].mean(axis=0), color=f"C{trial}")
        ax.set(xlabel=f"neuron ({layer}, index)", ylabel="firing rate (spikes / step)", ylim=(0, 1),
               title=f"trial {trial + 1}: firing rates")
        ax.set_xticks(np.arange(len(shown)))
        ax.set_xticklabels([str(int(n)) for n in shown], fontsize=6, rotation=90)
        plots.raster(axes[2, trial], spikes[trial][:, shown], neurons=shown, title=f"trial {trial + 1}: raster")
        axes[2, trial].set_ylabel(f"neuron ({layer}, index)")
    top = caption(fig, claim, verdict, rates_note)
    fig.tight_layout(rect=(0, 0, 1, top))
    return save(fig, path)


def fano_scatter(path, claim, verdict, panels: list) -> str:
    """Figs. 5B/C: per-sample average Fano factor against prediction similarity, with the fitted line.

    Args:
      panels: ``(title, fano per sample, similarity per sample, r, p)`` each.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4), squeeze=False)
    for ax, (title, ff, sim, r, p) in zip(axes[0], panels):
        ff, sim = np.asarray(ff), np.asarray(sim)
        ax.scatter(ff, sim, s=8, alpha=0.6)
        if np.ptp(ff) > 0 and np.isfinite(r):
            slope, intercept = np.polyfit(ff, sim, 1)
            xs = np.linspace(ff.min(), ff.max(), 50)
            ax.plot(xs, slope * xs + intercept, "--", color="C3")
        ax.set(xlabel="average Fano factor (Var / mean of spike counts)", ylabel="prediction cosine similarity",
               title=f"{title}\nr = {r:.3f}, p = {p:.2g} (seed 0)")
    top = caption(fig, claim, verdict)
    fig.tight_layout(rect=(0, 0, 1, top))
    return save(fig, path)


def jpsth_part(path, claim, verdict, grids: list, k: int = 4) -> str:
    """Fig. 5D: the first ``k`` neurons of each JPSTH grid side by side, one colour scale per grid."""
    fig = plt.figure(figsize=(6.2 * len(grids), 6.4))
    top = caption(fig, claim, verdict, plots.JPSTH_NOTE)
    subfigures = np.atleast_1d(fig.subfigures(1, len(grids)))
    for sub, (title, matrix, neurons) in zip(subfigures, grids):
        part = np.asarray(matrix)[:k, :k]
        plots.draw_jpsth(sub, part, neurons[:k], title, plots.colour_limit(part), top=top - 0.05)
    return save(fig, path)
