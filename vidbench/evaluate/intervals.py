"""Intervals on a frame metric's mean over test videos: one model's summary (the results file's "ci") and the
paired difference of two models on the same videos (evaluate/paired.py, `vidbench compare`, the leaderboard's
markers). Both are t intervals with n - 1 degrees of freedom over the per-video values (or their paired
differences): deterministic, and honest at the set sizes users run.

Why not the percentile bootstrap over videos that vidbench used before: it is too narrow at small sets
(its spread divides by n, not n - 1, and it takes normal rather than t quantiles). Measured by simulation with
known truth (PYTHONPATH=. python tests/benchmarks/bench_frame_intervals.py; docs/intervals.md has the table;
95% intervals, 2,000 draws per cell), coverage:

    world (per-video values)                             16 videos: bootstrap   t     100 videos: bootstrap   t
    normal, paired differences                                      0.910     0.946              0.947     0.953
    readout-like accuracies, paired differences                     0.921     0.947              0.942     0.946
    readout-like accuracies, one model (skewed)                     0.894     0.916              0.948     0.949
    the demo's own per-video differences (10 worlds)          0.875-0.927 0.910-0.952      0.942-0.953 0.948-0.956

The demo protocol (mmnist-short@1) has 16 test videos, the paper's protocols 100. Strongly skewed per-video
values under-cover with any interval on a mean at 16 videos (lognormal sigma 1: bootstrap 0.83, t 0.85, the
studentized bootstrap 0.92, which in turn fell to 0.88 on the demo's discrete digit accuracies); the t interval
is the one that held best across the worlds, and it needs no resampling seed.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

T_INTERVAL = "t interval over test videos (n - 1 degrees of freedom)"


def mean_interval(values, level: float = 0.95) -> tuple[float, float]:
    """t interval of the mean of per-video values; (nan, nan) from fewer than 2 videos (no spread to go on)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    mean = float(values.mean())
    spread = float(values.std(ddof=1))
    if spread == 0.0:
        return mean, mean
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * spread / np.sqrt(n)
    return mean - half, mean + half
