"""Gaussian feature sets of known distance, for checking distance intervals and paired verdicts by simulation
(tests/test_distance_simulations.py at fast sizes, tests/benchmarks/bench_distance_simulations.py at I3D's).

    spectrum(kind, dim) -> [dim] variances with sum = dim ("isotropic": all 1; "decaying": proportional to 1/j)
    Model(shift, scale): generated features = shift * u + scale * (rho * real + sqrt(1 - rho^2) * noise)
        (u: a fixed unit direction; rho ties each generated video to its test video, as a prediction from that
        video's context is; shift^2 is the mean part of the distance, scale^2 the covariance ratio)
    draw(rng, variances, models, n, rho) -> real [n, d], {name: fake [n, d]}
    true_fvd(variances, model), true_mmd2(variances, model) -> the population distances
    simulate(variances, n, reps, seed) -> every interval and paired interval of A and B (MODELS) per draw
    covered(rows, truth), wrong_direction(rows, truth), right_direction(rows, truth) -> shares of draws

Real features ~ N(0, diag(variances)); a model's marginal is N(shift * u, scale^2 diag(variances)), so the
Fréchet distance is shift^2 + (1 - scale)^2 tr(variances) exactly. The issue's example: A right covariance
with true FVD 20 (shift sqrt(20)), B half the variance (scale sqrt(0.5): (1 - 0.707)^2 * 400 = 34.3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAIRING = 0.5  # correlation between a test video's features and its prediction's


@dataclass(frozen=True)
class Model:
    shift: float = 0.0
    scale: float = 1.0


# The pair (true FVD 20 and 34.3 at tr = 400), and the same ratios at any dimension.
RIGHT_COVARIANCE = Model(shift=np.sqrt(20.0), scale=1.0)
HALF_VARIANCE = Model(shift=0.0, scale=np.sqrt(0.5))


def spectrum(kind: str, dim: int) -> np.ndarray:
    if kind == "isotropic":
        values = np.ones(dim)
    elif kind == "decaying":
        values = 1.0 / np.arange(1, dim + 1)
    else:
        raise ValueError(f"spectrum {kind!r}: isotropic or decaying")
    return values * dim / values.sum()


def _direction(variances: np.ndarray) -> np.ndarray:
    u = np.zeros(len(variances))
    u[0] = 1.0  # the largest-variance axis: a mean shift along it is the hardest to tell from noise
    return u


def draw(rng, variances: np.ndarray, models: dict[str, Model], n: int, rho: float = PAIRING):
    sd = np.sqrt(variances)
    real = rng.standard_normal((n, len(sd))) * sd
    fakes = {}
    for name, m in models.items():
        own = rng.standard_normal((n, len(sd))) * sd
        fakes[name] = m.shift * _direction(variances) + m.scale * (rho * real + np.sqrt(1 - rho ** 2) * own)
    return real, fakes


def true_fvd(variances: np.ndarray, m: Model) -> float:
    return float(m.shift ** 2 + (1 - m.scale) ** 2 * variances.sum())


def true_mmd2(variances: np.ndarray, m: Model) -> float:
    """Population KVD: MMD^2 with kvd's kernel (x.y / d + 1)^3 between N(0, diag(v)) and the model's marginal,
    exactly. For independent x, y with independent coordinates, x.y is a sum of independent products x_j y_j
    whose first three moments are products of Gaussian moments; cumulants add over j."""
    v = np.asarray(variances, np.float64)
    shift = m.shift * _direction(v)
    return float(_poly3_mean(0 * v, v, 0 * v, v) + _poly3_mean(shift, m.scale ** 2 * v, shift, m.scale ** 2 * v)
                 - 2 * _poly3_mean(0 * v, v, shift, m.scale ** 2 * v))


def _poly3_mean(a, alpha, b, beta) -> float:
    """E[(x.y / d + 1)^3] for independent x ~ N(a, diag(alpha)), y ~ N(b, diag(beta))."""
    d = len(a)
    m1 = a * b
    m2 = (a ** 2 + alpha) * (b ** 2 + beta)
    m3 = (a ** 3 + 3 * a * alpha) * (b ** 3 + 3 * b * beta)
    k1, k2, k3 = m1.sum(), (m2 - m1 ** 2).sum(), (m3 - 3 * m2 * m1 + 2 * m1 ** 3).sum()
    s1, s2, s3 = k1 / d, (k2 + k1 ** 2) / d ** 2, (k3 + 3 * k2 * k1 + k1 ** 3) / d ** 3
    return float(s3 + 3 * s2 + 3 * s1 + 1)


# ------------------------------------------------------------------------------------------------ simulation
MODELS = {"A (right covariance)": RIGHT_COVARIANCE, "B (half the variance)": HALF_VARIANCE}


def simulate(variances: np.ndarray, n: int, reps: int, seed: int = 0, parts=("fvd", "kvd"), level: float = 0.95):
    """Draw `reps` test sets of n videos with models A and B, and score every interval and paired verdict.
    Returns a dict of arrays:
        fvd[model]: [reps, 6] at-n value, low, high, FVD-infinity value, low, high (NaN where none)
        fvd_paired: [reps, 3] A - B value, low, high;  kvd[model]: [reps, 3];  kvd_paired: [reps, 3]
    plus "fvd_reason" (the population reason, or None). One paired grouped jackknife per draw serves every
    FVD number (fvd_stats' own functions, shared leave-outs)."""
    from vidbench.metrics import fvd_stats as fs
    from vidbench.metrics.jackknife import jackknife_interval, u_statistic_interval
    from vidbench.metrics.kvd import pair_matrix

    rng = np.random.default_rng(seed)
    names = list(MODELS)
    out = {"fvd": {m: [] for m in names}, "fvd_paired": [], "kvd": {m: [] for m in names}, "kvd_paired": []}
    why = fs.population_reason(n, len(variances))
    out["fvd_reason"] = why
    nan3 = (np.nan,) * 3
    for _ in range(reps):
        real, fakes = draw(rng, variances, MODELS, n)
        if "fvd" in parts:
            full, leave = fs._leave_group_out(real, [fakes[m][:, None] for m in names], fs.JACKKNIFE_GROUPS)
            for i, m in enumerate(names):
                at_n = jackknife_interval(full[i], leave[i], level, False)
                out["fvd"][m].append(at_n + (nan3 if why else jackknife_interval(full[i], leave[i], level, True)))
            out["fvd_paired"].append(nan3 if why else jackknife_interval(full[0] - full[1], leave[0] - leave[1], level, True))
        if "kvd" in parts:
            h = {m: pair_matrix(real, fakes[m]) for m in names}
            for m in names:
                e = u_statistic_interval(h[m], level, "")
                out["kvd"][m].append((e.value, e.low, e.high))
            e = u_statistic_interval(h[names[0]] - h[names[1]], level, "")
            out["kvd_paired"].append((e.value, e.low, e.high))
    for key in ("fvd", "kvd"):
        out[key] = {m: np.array(v, dtype=float).reshape(-1, 6 if key == "fvd" else 3) for m, v in out[key].items()}
    out["fvd_paired"] = np.array(out["fvd_paired"], dtype=float).reshape(-1, 3)
    out["kvd_paired"] = np.array(out["kvd_paired"], dtype=float).reshape(-1, 3)
    return out


def covered(rows: np.ndarray, truth: float, cols=(1, 2)) -> float:
    """Share of intervals [rows[:, lo], rows[:, hi]] that contain truth (NaN intervals count as not covering)."""
    lo, hi = rows[:, cols[0]], rows[:, cols[1]]
    return float(np.mean((lo <= truth) & (truth <= hi)))


def wrong_direction(rows: np.ndarray, truth: float) -> float:
    """Share of paired intervals significant on the wrong side of 0 (truth's sign); NaN intervals: no verdict."""
    lo, hi = rows[:, 1], rows[:, 2]
    return float(np.mean(hi < 0) if truth > 0 else np.mean(lo > 0))


def right_direction(rows: np.ndarray, truth: float) -> float:
    lo, hi = rows[:, 1], rows[:, 2]
    return float(np.mean(lo > 0) if truth > 0 else np.mean(hi < 0))
