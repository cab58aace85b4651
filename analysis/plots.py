"""Plot helpers the analysis commands share: rasters and JPSTH grids that read at a glance."""

from __future__ import annotations

from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def raster(ax, spikes: np.ndarray, neurons: Optional[Sequence[int]] = None, title: str = "") -> None:
    """Spike raster of one trial on ``ax``, integer ticks on both axes.

    Args:
      ax: a matplotlib axis.
      spikes: ``(T, K)`` 0/1 spikes of one trial and sample.
      neurons: the neuron index of each of the K columns (default ``0..K-1``).
      title: axis title.
    """
    spikes = np.asarray(spikes)
    times, columns = np.nonzero(spikes)
    labels = np.arange(spikes.shape[1]) if neurons is None else np.asarray(neurons)
    ax.scatter(times, columns, marker="|", s=40, linewidths=1.2, color="k")
    ax.set_xlim(-0.5, spikes.shape[0] - 0.5)
    ax.set_ylim(-0.5, spikes.shape[1] - 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ticks = [int(t) for t in MaxNLocator(integer=True, nbins=8).tick_values(0, spikes.shape[1] - 1)
             if 0 <= t < spikes.shape[1]]
    ax.set_yticks(ticks)
    ax.set_yticklabels([str(int(labels[t])) for t in ticks])
    ax.set_xlabel("time step")
    if title:
        ax.set_title(title)


def draw_jpsth(fig, matrix: np.ndarray, neurons: Sequence[int], title: str, limit: float, colorbar: bool = True,
               top: float = 0.9):
    """Draws the JPSTH grid of every neuron pair on ``fig`` (a figure or a sub-figure); returns the image.

    The grid spans ``[0.07, 0.84]`` across and ``[0.07, top]`` up (fractions of ``fig``), the colour bar
    to its right, the title above it.
    """
    matrix = np.asarray(matrix)
    k = matrix.shape[0]
    axes = fig.subplots(k, k, squeeze=False, gridspec_kw={"wspace": 0.08, "hspace": 0.08, "left": 0.07,
                                                          "right": 0.84, "bottom": 0.07, "top": top})
    image = None
    for i in range(k):
        for j in range(k):
            ax = axes[i, j]
            if i == j:
                ax.set_facecolor("0.85")
                ax.text(0.5, 0.5, "self", ha="center", va="center", fontsize=6, color="0.4",
                        transform=ax.transAxes)
            else:
                image = ax.imshow(matrix[i, j], vmin=-limit, vmax=limit, cmap="RdBu_r", origin="lower",
                                  aspect="auto")
            ax.set_xticks([]); ax.set_yticks([])
            if i == k - 1:
                ax.set_xlabel(f"n{neurons[j]}", fontsize=7)
            if j == 0:
                ax.set_ylabel(f"n{neurons[i]}", fontsize=7)
    fig.text(0.45, top + 0.01, title, fontsize=8, ha="center", va="bottom")
    if image is not None and colorbar:
        bar = fig.colorbar(image, cax=fig.add_axes([0.87, 0.15, 0.025, top - 0.2]))
        bar.set_label("Pearson r across trials", fontsize=7)
        bar.ax.tick_params(labelsize=7)
    return image


def colour_limit(matrix: np.ndarray) -> float:
    """The largest ``|r|`` off the self pairs (at least 1e-3): the symmetric colour scale of a grid."""
    matrix = np.asarray(matrix)
    k = matrix.shape[0]
    off = ~np.eye(k, dtype=bool)
    return max(float(np.abs(matrix[off]).max()) if k > 1 else 1.0, 1e-3)


JPSTH_NOTE = ("panel (i, j): x = step v of neuron j, y = step u of neuron i; self pairs masked "
              "(their diagonal is 1 by definition); colour: Pearson r across trials")


def jpsth_grid(matrix: np.ndarray, neurons: Sequence[int], title: str, path: str,
               limit: Optional[float] = None, note: str = JPSTH_NOTE) -> float:
    """Draws the normalised JPSTH of every distinct neuron pair and saves it to ``path``.

    The self-pair panels (``i == i``) are masked out (grey, marked "self"):
    their main diagonal is the trivial correlation 1 of a neuron with itself
    and would dominate the colour scale. The colour scale is symmetric,
    ``[-limit, limit]``, and shown by a colour bar.

    Args:
      matrix: ``(K, K, T, T)`` correlations (:func:`analysis.stats.jpsth`).
      neurons: the K neuron indices, for the axis labels.
      title: figure title.
      path: PNG to write.
      limit: colour-scale bound (default: :func:`colour_limit`).
      note: the caption line under the grid.

    Returns:
      The colour-scale bound used.
    """
    k = np.asarray(matrix).shape[0]
    limit = colour_limit(matrix) if limit is None else max(limit, 1e-3)
    size = 0.8 * k + 2.2
    fig = plt.figure(figsize=(size + 1.2, size))
    lines = title.count("\n") + 1
    draw_jpsth(fig, matrix, neurons, title, limit, top=1.0 - (lines * 0.15 + 0.15) / size)
    fig.text(0.01, 0.005, note, fontsize=6, va="bottom", wrap=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return limit
