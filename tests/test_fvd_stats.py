"""FVD statistics from per-video features: the fast Fréchet distance, interval coverage on Gaussian
features of known distance, the small-set bias, and what `vidbench evaluate` records (issue 14)."""

import numpy as np
import pytest

from vidbench.metrics import fvd
from vidbench.metrics.fvd_stats import (
    MIN_FVD_VIDEOS,
    bias_curve,
    derive_min_videos,
    frechet_from_features,
    fvd_interval,
    fvd_set_warning,
)


@pytest.mark.parametrize("n, m, d", [(30, 45, 64), (200, 150, 8)])
def test_fast_frechet_equals_the_covariance_route(n, m, d):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, d)), 0.3 + 1.5 * rng.standard_normal((m, d))
    want = fvd.frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert frechet_from_features(a, b) == pytest.approx(want, rel=1e-7)


def _known_pair(n, seed):
    """Real N(0, I_8), generated N(mu, diag(s^2)): Fréchet distance |mu|^2 + sum (1 - s)^2 exactly."""
    d = 8
    mu, s = np.full(d, 0.15), np.linspace(0.8, 1.2, d)
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), mu + s * rng.standard_normal((n, d)), mu @ mu + ((1 - s) ** 2).sum()


def test_fvd_interval_covers_the_known_distance():
    trials, covered, percentile_covered = 30, 0, 0
    for k in range(trials):
        real, fake, true = _known_pair(200, seed=100 + k)
        low, high = fvd_interval(real, fake, seed=k, resamples=100)
        covered += low <= true <= high
        # the percentile interval of the same replicates, for contrast: it sits on the biased side
        rng = np.random.default_rng(k)
        reps = [frechet_from_features(real[i], fake[i]) for i in (rng.integers(0, 200, 200) for _ in range(100))]
        percentile_covered += np.quantile(reps, 0.025) <= true <= np.quantile(reps, 0.975)
    assert covered / trials >= 0.9
    assert percentile_covered / trials <= 0.3


def test_fvd_interval_excludes_zero_for_a_large_distance_and_narrows_with_more_videos():
    widths = []
    for n in (100, 400):
        real, fake, true = _known_pair(n, seed=1)
        low, high = fvd_interval(real, fake + 1.0, seed=0, resamples=100)  # distance ~ 8 more
        assert low > 1.0
        widths.append(high - low)
    assert widths[1] < widths[0] / 1.5


def test_fvd_interval_takes_every_sample_of_a_video():
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((50, 8)), rng.standard_normal((50, 3, 8))
    every = fvd_interval(real, fake, seed=0, resamples=50)
    first = fvd_interval(real, fake[:, 0], seed=0, resamples=50)
    assert every != first and every[1] - every[0] < first[1] - first[0]  # 150 generated videos, not 50


def test_bias_falls_like_one_over_the_set_size():
    curve = bias_curve([64, 128, 256, 512], dim=16, repeats=20, seed=0)
    values = list(curve.values())
    assert all(a > b for a, b in zip(values, values[1:]))
    assert values[-2] / values[-1] == pytest.approx(2, rel=0.25)
    assert derive_min_videos(curve, tolerance=values[2]) == 256 and derive_min_videos(curve, 1e-9) is None


def test_minimum_set_size_is_where_the_400_dim_bias_crosses_ten_percent():
    curve = bias_curve([2048], dim=400, repeats=1, seed=0)  # docs/fvd-bias.md has the whole curve
    assert 0.09 < curve[2048] < 0.105
    assert MIN_FVD_VIDEOS == 2048


def test_set_size_warning():
    assert fvd_set_warning(2048, 4096) is None
    line = fvd_set_warning(100, 100)
    assert "100 real" in line and str(MIN_FVD_VIDEOS) in line
