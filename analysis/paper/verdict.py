"""The verdict rule: does a measured difference support a claim, given the spread over seeds?

A claim "A > B" **holds** when ``mean(A) - mean(B)`` exceeds ``K`` pooled
standard deviations (:data:`K` = 2), **does not hold** when it is below
``-K`` pooled standard deviations, and is **inconclusive** otherwise. With
one seed on either side there is no spread to judge by: the verdict is
always ``"inconclusive (1 seed)"``.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np

K = 2.0
HOLDS, FAILS, UNSURE, ONE_SEED = "holds", "does not hold", "inconclusive", "inconclusive (1 seed)"
RULE = (f"holds when the difference in the claimed direction exceeds {K:g} pooled std over seeds, "
        f"does not hold when it exceeds {K:g} pooled std the other way, else inconclusive; "
        "with 1 seed always 'inconclusive (1 seed)'")


class Comparison(NamedTuple):
    """One comparison: ``difference`` is in the claimed direction (positive supports the claim)."""

    verdict: str
    difference: float
    pooled_std: float
    seeds: int


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (ddof 1; 0 for a single value) of finite ``values``; NaN when none."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
    if x.size == 0:
        return float("nan"), float("nan")
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0


def pooled_std(a: Sequence[float], b: Sequence[float]) -> float:
    """``sqrt(((na-1) var_a + (nb-1) var_b) / (na + nb - 2))``, sample variances."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    dof = a.size + b.size - 2
    if a.size < 2 or b.size < 2:
        return float("nan")
    return float(math.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / dof))


def judge(difference: float, spread: float, seeds: int) -> str:
    """The verdict of ``difference`` (claimed direction positive) against ``K * spread``."""
    if seeds < 2:
        return ONE_SEED
    if not (math.isfinite(difference) and math.isfinite(spread)):
        return UNSURE
    if difference > K * spread and difference > 0:
        return HOLDS
    if difference < -K * spread and difference < 0:
        return FAILS
    return UNSURE


def compare(a: Sequence[float], b: Sequence[float], direction: str = "greater") -> Comparison:
    """Whether ``a`` is larger (``direction='greater'``) or smaller (``'less'``) than ``b`` over seeds.

    Args:
      a, b: one value per seed (e.g. final accuracies); NaNs are dropped.
      direction: the claim, ``a > b`` or ``a < b``.

    Raises:
      ValueError: an unknown direction, or an empty side.
    """
    if direction not in ("greater", "less"):
        raise ValueError(f"direction must be 'greater' or 'less', got {direction!r}")
    a = [v for v in a if v is not None and math.isfinite(v)]
    b = [v for v in b if v is not None and math.isfinite(v)]
    if not a or not b:
        raise ValueError(f"compare needs at least one value on each side, got {len(a)} and {len(b)}")
    sign = 1.0 if direction == "greater" else -1.0
    difference = sign * (float(np.mean(a)) - float(np.mean(b)))
    seeds = min(len(a), len(b))
    spread = pooled_std(a, b)
    return Comparison(judge(difference, spread, seeds), difference, spread, seeds)


def below(values: Sequence[float], threshold: float) -> Comparison:
    """Whether ``values`` lie below ``threshold``: the mean against ``K`` sample std of the seeds."""
    mean, std = mean_std(values)
    n = len([v for v in values if v is not None and math.isfinite(v)])
    return Comparison(judge(threshold - mean, std, n), threshold - mean, std, n)


def within_noise(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether the means of ``a`` and ``b`` differ by at most ``K`` pooled std (False with one seed)."""
    spread = pooled_std(a, b)
    return math.isfinite(spread) and abs(float(np.mean(a)) - float(np.mean(b))) <= K * spread


def combine(verdicts: Sequence[str]) -> str:
    """Several parts of one claim: holds when every part holds, does not hold when any part does not."""
    verdicts = list(verdicts)
    if not verdicts:
        return UNSURE
    if any(v == FAILS for v in verdicts):
        return FAILS
    if all(v == HOLDS for v in verdicts):
        return HOLDS
    if any(v == ONE_SEED for v in verdicts):
        return ONE_SEED
    return UNSURE
