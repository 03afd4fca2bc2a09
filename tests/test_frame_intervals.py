"""Frame-metric intervals by simulation with known truth (vidbench/evaluate/intervals.py): the per-model
interval (results "ci") and the paired difference (`vidbench compare`, `--bands`, the leaderboard's markers),
at the demo protocol's 16 test videos and the paper's 100.

Worlds: per-video values N(mean, 1); and readout-like ones: a video's digit accuracy is Binomial(128, p) / 128
(64 frames x 2 digits) with p ~ Beta(0.6, 3) (mostly lost digits, a long right tail, as the demo's models read),
the second model's p = clip(p + N(0.03, 0.05), 0, 1), the same videos for both (paired).
The full table, with the percentile bootstrap vidbench used before and other intervals, is
tests/benchmarks/bench_frame_intervals.py's (docs/intervals.md).

Tolerances: DRAWS = 4000 draws of an interval with true coverage 0.95 give a coverage sd of 0.0034. The
bounds [0.935, 0.965] sit 4.4 sd either side, so a calibrated interval fails them about once in 100,000 seeds,
while the old percentile bootstrap covered 0.91 (normal) and 0.92 (readout-like) at 16 videos
(bench_frame_intervals, 2,000 draws), below the lower bound.
"""

import numpy as np
import pytest

from vidbench.evaluate.intervals import mean_interval
from vidbench.evaluate.paired import paired_interval

DRAWS = 4000
COVERAGE = (0.935, 0.965)  # see the module docstring: 4.4 binomial sd either side of 0.95 at 4000 draws
FRAMES_X_DIGITS = 128


def readout_pair(rng, n: int):
    """Per-video digit accuracies of two models on the same n videos (model b better by ~0.03)."""
    p_a = rng.beta(0.6, 3.0, n)
    p_b = np.clip(p_a + rng.normal(0.03, 0.05, n), 0.0, 1.0)
    return rng.binomial(FRAMES_X_DIGITS, p_a) / FRAMES_X_DIGITS, rng.binomial(FRAMES_X_DIGITS, p_b) / FRAMES_X_DIGITS


def readout_true_difference() -> float:
    """E[acc_b - acc_a] = E[p_b - p_a] (binomial noise has mean 0), by Monte Carlo on 4M draws: its error
    (sd 0.05 / 2,000 = 2.5e-5) is a thousandth of the intervals' half-widths (~0.02 at 100 videos)."""
    rng = np.random.default_rng(12345)
    p_a = rng.beta(0.6, 3.0, 4_000_000)
    return float((np.clip(p_a + rng.normal(0.03, 0.05, p_a.size), 0.0, 1.0) - p_a).mean())


def coverage(draw, truth: float, interval, draws: int = DRAWS, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(draws):
        low, high = interval(*draw(rng))
        hits += low <= truth <= high
    return hits / draws


def paired(a, b):
    return paired_interval(b, a)[1:]


@pytest.mark.parametrize("n", [16, 100])
def test_paired_interval_covers_the_true_difference(n):
    normal = coverage(lambda rng: (np.zeros(n), rng.normal(0.3, 1.0, n)), 0.3, paired, seed=n)
    readout = coverage(lambda rng: readout_pair(rng, n), readout_true_difference(), paired, seed=n + 1)
    assert COVERAGE[0] <= normal <= COVERAGE[1]
    assert COVERAGE[0] <= readout <= COVERAGE[1]


@pytest.mark.parametrize("n", [16, 100])
def test_per_model_interval_covers_the_true_mean(n):
    normal = coverage(lambda rng: (rng.normal(0.6, 0.1, n),), 0.6, mean_interval, seed=n + 2)
    # A model's accuracy alone: E = E[p] = 0.6 / 3.6 for Beta(0.6, 3), skewed right (skewness ~1.6).
    readout = coverage(lambda rng: (readout_pair(rng, n)[0],), 0.6 / 3.6, mean_interval, seed=n + 3)
    assert COVERAGE[0] <= normal <= COVERAGE[1]
    # One model's skewed accuracies at 16 videos: any interval on a mean under-covers a little. Measured (3
    # seeds of 4,000 draws) 0.913-0.925 (the old percentile bootstrap 0.894 in 2,000); 0.90 is ~3.5 sd under
    # the lowest. At 100 videos the usual bounds hold (measured 0.945-0.952).
    low = COVERAGE[0] if n >= 100 else 0.90
    assert low <= readout <= COVERAGE[1]


def test_paired_verdicts_are_rarely_wrong_in_direction_and_have_the_t_tests_power():
    """16 videos, paired differences N(0.5, 1): a verdict for the worse model (interval wholly below 0) is
    allowed at most the one-sided 2.5% of a zero difference, and with this real difference is far rarer; the
    difference is found (interval above 0) as often as the paired t test's power says (noncentral t)."""
    from scipy import stats

    n, effect = 16, 0.5
    rng = np.random.default_rng(7)
    wrong = found = 0
    for _ in range(DRAWS):
        a = rng.normal(0.0, 1.0, n)
        b = a + rng.normal(effect, 1.0, n)
        low, high = paired_interval(b, a)[1:]
        wrong += high < 0
        found += low > 0
    power = stats.nct.sf(stats.t.ppf(0.975, n - 1), n - 1, effect * np.sqrt(n))  # 0.46
    assert wrong / DRAWS <= 0.005  # 20 of 4,000; the exact rate here is ~1e-4 (t: a 2-sd miss the wrong way)
    # Power's sd at 4,000 draws is 0.008: 0.035 is 4.4 sd. A bootstrap too narrow would find it more often
    # (and err more at zero), a too wide one less.
    assert abs(found / DRAWS - power) <= 0.035
