"""What the distances' intervals share: an estimate that says what its interval covers, and the jackknife over
videos that gives FVD's (grouped, vidbench/metrics/fvd_stats.py) and KVD's (delete-one, vidbench/metrics/kvd.py).

    jackknife_interval(full, leave_out [K], level, correct_bias) -> (value, low, high)
    u_statistic_interval(h [V,V], level, covers) -> Estimate   # KVD's, and vidbench/metrics/distance_sim.py's
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float | None
    high: float | None
    covers: str               # what the interval is for
    reason: str | None = None  # why there is no interval (low, high None)

    def as_dict(self) -> dict:
        return {"value": None if np.isnan(self.value) else self.value, "ci": None if self.low is None else [self.low, self.high],
                "covers": self.covers, "reason": self.reason}


def as_samples(fake) -> np.ndarray:
    """Generated features as [V, S, D] float64 ([V, D]: one sample per video)."""
    fake = np.asarray(fake, dtype=np.float64)
    return fake[:, None] if fake.ndim == 2 else fake


def jackknife_interval(full: float, leave_out: np.ndarray, level: float, correct_bias: bool = False
                       ) -> tuple[float, float, float]:
    """Jackknife over K leave-out values (K groups of videos, or K = V single videos): standard error from their
    spread, t with K - 1 degrees of freedom. With correct_bias, the estimate is K * full - (K - 1) *
    mean(leave_out): the straight line in 1 / n through the set sizes n and n (K - 1) / K, extrapolated to
    1 / n = 0 (FVD-infinity's extrapolation, Chong & Forsyth 2020, with the leave-out sets as the smaller sizes)."""
    k = len(leave_out)
    se = np.sqrt((k - 1) / k * ((leave_out - leave_out.mean()) ** 2).sum())
    value = k * full - (k - 1) * leave_out.mean() if correct_bias else full
    half = stats.t.ppf(0.5 + level / 2, k - 1) * se
    return float(value), float(value - half), float(value + half)


def u_statistic_interval(h: np.ndarray, level: float, covers: str) -> Estimate:
    """The mean of a pair matrix h [V,V] (zero diagonal) over distinct videos, with its delete-one jackknife
    interval over videos; under 3 videos, no interval and the reason why."""
    v = len(h)
    if v < 3:
        value = h.sum() / (v * (v - 1)) if v == 2 else float("nan")
        return Estimate(float(value), None, None, covers, f"no interval from {v} videos (the jackknife needs 3)")
    total, rows = h.sum(), h.sum(axis=1)
    leave_out = (total - 2 * rows) / ((v - 1) * (v - 2))  # delete-one values: exact from the pair matrix's rows
    return Estimate(*jackknife_interval(total / (v * (v - 1)), leave_out, level), covers)
