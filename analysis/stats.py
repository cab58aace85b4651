"""Trial-to-trial statistics of spike trains (numpy; inputs from :mod:`nsnn_jax.trials`).

Conventions: ``spikes`` are ``(N trials, T, B samples, K neurons...)``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import stats as scipy_stats

__all__ = [
    "spike_counts", "FanoResult", "fano_factor", "prediction_stability", "pearson",
    "psth", "jpsth",
]


def spike_counts(spikes: np.ndarray) -> np.ndarray:
    """Counts over T: ``(N, T, B, ...)`` -> ``(N, B, K)`` (neuron axes flattened)."""
    spikes = np.asarray(spikes)
    if spikes.ndim < 3:
        raise ValueError(f"Expected spikes (N, T, B, ...), got shape {spikes.shape}.")
    counts = spikes.sum(axis=1, dtype=np.int32)  # half the memory of int64: 500 x 100 trials of 32768 neurons
    return counts.reshape(counts.shape[0], counts.shape[1], -1)


class FanoResult(NamedTuple):
    """Fano factors across trials.

    Attributes:
      per_neuron: ``(B, K)`` ``Var[n] / E[n]`` across trials; 0 where silent.
      silent: ``(B, K)`` True where the neuron never fired in any trial (FF undefined).
      per_sample: ``(B,)`` mean FF over the sample's active neurons; 0 where none is active.
      active_samples: ``(B,)`` True where at least one neuron fired.
    """

    per_neuron: np.ndarray
    silent: np.ndarray
    per_sample: np.ndarray
    active_samples: np.ndarray


def fano_factor(counts: np.ndarray) -> FanoResult:
    """Fano factor of spike counts ``(N, B, K)`` across the N trials (unbiased variance).

    Raises:
      ValueError: fewer than 2 trials or a wrong rank.
    """
    counts = np.asarray(counts)
    if counts.ndim != 3 or counts.shape[0] < 2:
        raise ValueError(f"Expected counts (N >= 2 trials, B, K), got shape {counts.shape}.")
    # In float64, a block of samples at a time: a float64 copy of every count would not fit in memory
    # for a conv layer (100 trials x 500 samples x 32768 neurons: 13 GB).
    mean = np.empty(counts.shape[1:], np.float64)
    var = np.empty(counts.shape[1:], np.float64)
    block = max(1, (1 << 26) // max(1, counts.shape[0] * counts.shape[2]))
    for start in range(0, counts.shape[1], block):
        part = counts[:, start:start + block].astype(np.float64)
        mean[start:start + block] = part.mean(axis=0)
        var[start:start + block] = part.var(axis=0, ddof=1)
    silent = mean == 0
    per_neuron = np.where(silent, 0.0, var / np.where(silent, 1.0, mean))
    active = (~silent).sum(axis=1)
    per_sample = np.where(active > 0, (per_neuron * ~silent).sum(axis=1) / np.maximum(active, 1), 0.0)
    return FanoResult(per_neuron, silent, per_sample, active > 0)


def prediction_stability(predictions: np.ndarray) -> np.ndarray:
    """Mean pairwise cosine similarity of predictive distributions across trials.

    Args:
      predictions: ``(N, B, C)``, N >= 2.

    Returns:
      ``(B,)`` in [0, 1] for non-negative distributions; 1 means every trial
      predicted the same distribution.
    """
    p = np.asarray(predictions, np.float64)
    if p.ndim != 3 or p.shape[0] < 2:
        raise ValueError(f"Expected predictions (N >= 2 trials, B, C), got shape {p.shape}.")
    unit = p / np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-30)
    total = unit.sum(axis=0)
    n = p.shape[0]
    # sum over ordered pairs i != j of <u_i, u_j> = |sum u|^2 - sum |u|^2
    pair_sum = (total * total).sum(-1) - (unit * unit).sum(axis=(0, -1))
    return pair_sum / (n * (n - 1))


def pearson(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Pearson correlation ``r`` and its two-sided p-value (t test, ``n - 2`` dof).

    The p-value is Student's t survival function from :mod:`scipy.stats`.

    Raises:
      ValueError: fewer than 3 pairs, unequal lengths, or a constant input.
    """
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    if x.shape != y.shape or x.size < 3:
        raise ValueError(f"pearson needs two equal-length samples of >= 3 values, got {x.size} and {y.size}.")
    dx, dy = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float((dx * dx).sum() * (dy * dy).sum()))
    if denominator == 0.0:
        raise ValueError("pearson is undefined for a constant input.")
    r = float(np.clip((dx * dy).sum() / denominator, -1.0, 1.0))
    df = x.size - 2
    if abs(r) == 1.0:
        return r, 0.0
    t = r * math.sqrt(df / (1.0 - r * r))
    return r, float(2.0 * scipy_stats.t.sf(abs(t), df))


def psth(spikes: np.ndarray) -> np.ndarray:
    """Peri-stimulus time histogram: firing probability per step, ``(T, B, ...)``."""
    return np.asarray(spikes, np.float64).mean(axis=0)


def jpsth(spikes: np.ndarray) -> np.ndarray:
    """Normalised JPSTH of every neuron pair of one sample's layer.

    ``J[i, j, u, v]`` is the Pearson correlation, across trials, of neuron
    ``i`` at step ``u`` with neuron ``j`` at step ``v``. Where either
    neuron-step has no variance across trials (always or never fired) the
    correlation is undefined and reported as 0.

    Args:
      spikes: ``(N, T, K)`` with ``K <= 16`` neurons, N >= 2.

    Returns:
      ``(K, K, T, T)`` float64.
    """
    s = np.asarray(spikes, np.float64)
    if s.ndim != 3 or s.shape[0] < 2:
        raise ValueError(f"Expected one sample's spikes (N >= 2 trials, T, K), got shape {s.shape}.")
    if s.shape[2] > 16:
        raise ValueError(f"jpsth takes at most 16 neurons, got {s.shape[2]}.")
    n, t, k = s.shape
    centred = s - s.mean(axis=0)
    std = centred.std(axis=0)  # (T, K)
    z = np.where(std > 0, centred / np.where(std > 0, std, 1.0), 0.0)
    flat = z.reshape(n, t * k)
    corr = flat.T @ flat / n  # (T*K, T*K), index = u * K + i
    return corr.reshape(t, k, t, k).transpose(1, 3, 0, 2)
