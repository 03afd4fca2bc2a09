"""FVD from stored per-video features: a fast Fréchet distance, honest intervals, and the small-set bias.

Public API:
    frechet_from_features(real [N,D], fake [M,D]) -> float     (same value as fvd.frechet_distance of their
                                                                mean/covariance, faster when N or M < D)
    fvd_estimates(real [V,D], fake [V,S,D], level) -> (at_n, population): kvd.Estimate each
    paired_fvd_difference(real [V,D], fake_a [V,S,D], fake_b [V,S',D], level) -> Estimate of FVD(a) - FVD(b)
    population_reason(videos, dim) -> str | None: why no population interval exists at this set size
    bias_curve(sizes, dim=400, repeats=..., seed=0) -> {n: mean FVD of two sets of n draws of one Gaussian}
    MIN_FVD_VIDEOS, fvd_set_warning(real_count, fake_count) -> str | None

What each interval covers (every Estimate says so in .covers):
- at_n: the *expected FVD at this set size* (V real, V x S generated videos). FVD is biased upward by order
  dim / n of the feature variance, and the bias depends on each model's own covariance, so this is not the
  population distance; it is what another draw of V test videos would give on average. Interval: grouped
  jackknife over videos (JACKKNIFE_GROUPS groups, t with K - 1 df): slightly conservative (the jackknife
  variance overestimates, Efron-Stein). The earlier bootstrap over videos with replacement duplicated
  videos, which shrinks the covariance: its basic interval over-corrected and covered 0/40 (issue 24).
- population: FVD-infinity, the jackknife's bias-corrected estimate (the line in 1 / n through the set sizes
  n and n (K - 1) / K, extrapolated to 1 / n = 0), with the t interval, only from POPULATION_MIN_RATIO x dim
  videos on: below that the bias does not fall like 1 / n yet (bias_curve), the extrapolation misses, and
  the Estimate has no value, no interval and the reason.
- paired difference: the population difference (the verdict's question: which model is closer to the
  data), under the same rule; below it no verdict, since the bias differs between models of different
  covariance (a half-variance model gets a smaller bias and wins wrongly). KVD (vidbench/metrics/kvd.py)
  answers at every set size.
Coverage and direction errors by simulation: docs/distances.md, tests/test_distance_simulations.py.
"""

from __future__ import annotations

import numpy as np

from vidbench.metrics.fvd import FEATURE_DIM, frechet_distance
from vidbench.metrics.jackknife import Estimate, as_samples, jackknife_interval

# Derived, not chosen: the smallest set size at which the expected FVD between two sets drawn from ONE
# distribution (true distance 0) falls below BIAS_TOLERANCE of tr(cov), for isotropic Gaussian features of
# I3D's 400 dimensions (bias_curve; numbers in docs/fvd-bias.md). Real I3D logits are anisotropic, so their
# bias in FVD units is smaller; isotropic features are the conservative case. Below this size an FVD is
# still recorded, with a warning beside it.
BIAS_TOLERANCE = 0.10
MIN_FVD_VIDEOS = 2048
# Groups of the jackknife over videos: K - 1 = 19 degrees of freedom for the t interval, K + 1 Fréchet
# distances per interval (2048 videos x 400 dims: ~21 eigendecompositions of 400 x 400 pairs).
JACKKNIFE_GROUPS = 20
MIN_JACKKNIFE_VIDEOS = 4  # every leave-out set keeps >= 2 videos (a covariance) and K - 1 >= 1 degree of freedom
# Videos per feature dimension from which FVD's bias falls like 1 / n closely enough for the extrapolation to
# remove it (FVD-infinity): coverage of the population distance measured at 2048 videos x 400 dimensions
# (ratio 5.1) and not at 256 (0.64) in docs/distances.md.
POPULATION_MIN_RATIO = 5
POPULATION = "the population FVD (bias extrapolated away in 1 / n)"


def _centered(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x - x.mean(axis=0)


def frechet_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance of the Gaussians fitted to two feature sets (unbiased covariances, as FeatureStats).

    With A, B the centred features (n x D, m x D): tr(C1) = |A|^2 / (n-1), and the nonzero eigenvalues of
    C1 C2 are the squared singular values of A B^T / sqrt((n-1)(m-1)), so tr((C1 C2)^(1/2)) is that matrix's
    nuclear norm: an n x m SVD instead of two D x D eigendecompositions when the sets are smaller than D.
    """
    a, b = _centered(real), _centered(fake)
    n, m = len(a), len(b)
    if n < 2 or m < 2:
        raise ValueError(f"FVD needs at least 2 feature vectors per set; got {n} and {m}")
    mu = np.asarray(real, np.float64).mean(axis=0) - np.asarray(fake, np.float64).mean(axis=0)
    if min(n, m) >= a.shape[1]:  # the covariance route is the cheaper one
        return frechet_distance(np.zeros_like(mu), a.T @ a / (n - 1), mu, b.T @ b / (m - 1))
    cross = (a @ b.T) / np.sqrt((n - 1) * (m - 1))
    trace_sqrt = np.linalg.svd(cross, compute_uv=False).sum()
    value = mu @ mu + (a * a).sum() / (n - 1) + (b * b).sum() / (m - 1) - 2 * trace_sqrt
    return float(max(value, 0.0))


def _flat(fake: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Features of every sample of the chosen videos: fake [V,S,D] -> [len(idx)*S, D]."""
    return fake[idx].reshape(-1, fake.shape[-1])


# ------------------------------------------------------------------------------------------------ jackknife
def _groups(videos: int, groups: int) -> list[np.ndarray]:
    return np.array_split(np.arange(videos), min(groups, videos))


def _leave_group_out(real, fakes, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Each fake set's FVD on all videos [F] and with each group of videos left out [F, K] (the same videos
    left out of the real set and of every model: paired)."""
    every = np.arange(len(real))
    full = np.array([frechet_from_features(real, _flat(f, every)) for f in fakes])
    parts = _groups(len(real), groups)
    out = np.empty((len(fakes), len(parts)))
    for k, part in enumerate(parts):
        keep = np.setdiff1d(every, part)
        out[:, k] = [frechet_from_features(real[keep], _flat(f, keep)) for f in fakes]
    return full, out


def population_reason(videos: int, dim: int, paired: bool = False) -> str | None:
    """Why no interval on the population distance (paired: no verdict on a difference) exists at this set
    size; None where one does."""
    if videos >= POPULATION_MIN_RATIO * dim:
        return None
    what = "no verdict on the FVD difference" if paired else "no interval on the population FVD"
    return (f"{what} from {videos} videos: FVD's small-set bias (order dim / n of the "
            f"feature variance, {dim} dimensions) is far larger than its spread, depends on each model's own "
            f"covariance, and does not yet fall like 1 / n, so it can be neither removed nor bounded; needs "
            f">= {POPULATION_MIN_RATIO * dim} videos (docs/distances.md). Read KVD for the population distance")


def fvd_estimates(real, fake, level: float = 0.95, groups: int = JACKKNIFE_GROUPS) -> tuple[Estimate, Estimate]:
    """(FVD with an interval on its expected value at this set size, FVD-infinity with an interval on the
    population distance, or without one and the reason). real [V,D]; fake [V,S,D] or [V,D]."""
    real, fake = np.asarray(real, np.float64), as_samples(fake)
    if len(real) < MIN_JACKKNIFE_VIDEOS:
        value = frechet_from_features(real, _flat(fake, np.arange(len(real))))
        why = f"no interval from {len(real)} videos (the jackknife needs {MIN_JACKKNIFE_VIDEOS})"
        return (Estimate(value, None, None, _at_n(len(real), fake.shape[1]), why),
                Estimate(float("nan"), None, None, POPULATION, why))
    full, leave_out = _leave_group_out(real, [fake], groups)
    at_n = Estimate(*jackknife_interval(full[0], leave_out[0], level, False), covers=_at_n(len(real), fake.shape[1]))
    why = population_reason(len(real), real.shape[1])
    if why:
        return at_n, Estimate(float("nan"), None, None, POPULATION, why)
    return at_n, Estimate(*jackknife_interval(full[0], leave_out[0], level, True), covers=POPULATION)


def _at_n(videos: int, samples: int) -> str:
    return (f"the expected FVD at this set size ({videos} real, {videos * samples} generated videos), "
            f"not the population distance")


def paired_fvd_difference(real, fake_a, fake_b, level: float = 0.95, groups: int = JACKKNIFE_GROUPS) -> Estimate:
    """FVD(a) - FVD(b) on the same videos. Its target is the population difference (the verdict users read:
    which model is closer to the data); the shared small-set bias cancels only when both models' features
    have the same covariance, so under POPULATION_MIN_RATIO x dim videos there is no interval and the reason
    says so. Above it: both FVD-infinity estimates from one paired grouped jackknife, t interval."""
    real, fake_a, fake_b = np.asarray(real, np.float64), as_samples(fake_a), as_samples(fake_b)
    why = population_reason(len(real), real.shape[1], paired=True)
    if len(real) < MIN_JACKKNIFE_VIDEOS:
        why = f"no interval from {len(real)} videos (the jackknife needs {MIN_JACKKNIFE_VIDEOS})"
    if why:
        every = np.arange(len(real))
        diff = frechet_from_features(real, _flat(fake_a, every)) - frechet_from_features(real, _flat(fake_b, every))
        return Estimate(float(diff), None, None, POPULATION + " difference", why)
    full, leave_out = _leave_group_out(real, [fake_a, fake_b], groups)
    return Estimate(*jackknife_interval(full[0] - full[1], leave_out[0] - leave_out[1], level, True),
                    covers=POPULATION + " difference")


def bias_curve(sizes, dim: int = FEATURE_DIM, repeats: int = 5, seed: int = 0) -> dict[int, float]:
    """Mean FVD between two independent sets of n draws from N(0, I_dim) (true distance 0), divided by
    tr(I) = dim: the small-set bias as a share of the total feature variance, for each n in sizes."""
    rng = np.random.default_rng(seed)
    out = {}
    for n in sizes:
        values = [frechet_from_features(rng.standard_normal((n, dim)), rng.standard_normal((n, dim)))
                  for _ in range(repeats)]
        out[int(n)] = float(np.mean(values)) / dim
    return out


def derive_min_videos(curve: dict[int, float], tolerance: float = BIAS_TOLERANCE) -> int | None:
    """The smallest measured set size whose relative bias is at most `tolerance` (None: none is)."""
    ok = [n for n, bias in sorted(curve.items()) if bias <= tolerance]
    return ok[0] if ok else None


def fvd_set_warning(real_count: int, fake_count: int, minimum: int = MIN_FVD_VIDEOS) -> str | None:
    """One line when either set is under the minimum; None otherwise."""
    smallest = min(real_count, fake_count)
    if smallest >= minimum:
        return None
    return (f"FVD from {real_count} real and {fake_count} generated videos: under the {minimum} where the "
            f"small-set bias falls below {BIAS_TOLERANCE:.0%} of the feature variance (FVD is biased upward "
            f"for small sets; compare FVDs only at equal set sizes)")
