"""Gaussian feature sets of known distance, for checking distance intervals and paired verdicts by simulation
(tests/test_distance_simulations.py at fast sizes, tests/benchmarks/bench_distance_simulations.py at I3D's).

    spectrum(kind, dim) -> [dim] variances with sum = dim ("isotropic": all 1; "decaying": proportional to 1/j)
    Model(shift, scale): generated features = shift * u + scale * (rho * real + sqrt(1 - rho^2) * noise)
        (u: a fixed unit direction; rho ties each generated video to its test video, as a prediction from that
        video's context is; shift^2 is the mean part of the distance, scale^2 the covariance ratio)
    draw(rng, variances, models, n, rho) -> real [n, d], {name: fake [n, d]}
    true_fvd(variances, model), true_mmd2(variances, model, mc) -> the population distances

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
