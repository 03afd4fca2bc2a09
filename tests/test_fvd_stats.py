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
    fvd_estimates,
    fvd_set_warning,
    paired_fvd_difference,
    population_reason,
)


@pytest.mark.parametrize("n, m, d", [(30, 45, 64), (200, 150, 8)])
def test_fast_frechet_equals_the_covariance_route(n, m, d):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, d)), 0.3 + 1.5 * rng.standard_normal((m, d))
    want = fvd.frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    assert frechet_from_features(a, b) == pytest.approx(want, rel=1e-7)


def test_fvd_interval_says_what_it_covers_and_narrows_with_more_videos():
    rng = np.random.default_rng(1)
    widths = []
    for n in (100, 400):
        at_n, population = fvd_estimates(rng.standard_normal((n, 8)), 1.0 + rng.standard_normal((n, 8)))
        assert "expected FVD at this set size" in at_n.covers and at_n.low > 1.0  # true distance 8
        assert population.low is not None and "population" in population.covers  # n >= 5 x 8 dims
        widths.append(at_n.high - at_n.low)
    assert widths[1] < widths[0] / 1.5  # sd ~ 1 / sqrt(n): 2x narrower expected, 1.5x allows jackknife noise


def test_fvd_interval_takes_every_sample_of_a_video():
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((50, 8)), rng.standard_normal((50, 3, 8))
    every, _ = fvd_estimates(real, fake)
    first, _ = fvd_estimates(real, fake[:, 0])
    assert "150 generated" in every.covers and every.high - every.low < first.high - first.low


def test_no_population_interval_below_five_videos_per_dimension_and_the_reason_says_why():
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((100, 40)), rng.standard_normal((100, 40))
    at_n, population = fvd_estimates(real, fake)
    assert at_n.low is not None
    assert population.low is None and population.as_dict()["value"] is None
    assert "100 videos" in population.reason and ">= 200 videos" in population.reason
    paired = paired_fvd_difference(real, fake, fake * 0.7)
    assert paired.low is None and "no verdict" in paired.reason
    assert population_reason(200, 40) is None


def test_too_few_videos_for_a_jackknife():
    rng = np.random.default_rng(0)
    at_n, population = fvd_estimates(rng.standard_normal((3, 4)), rng.standard_normal((3, 4)))
    assert at_n.low is None and "jackknife needs 4" in at_n.reason and population.low is None


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


def test_kvd_interval_is_the_shared_public_u_statistic_jackknife():
    """KVD and the distance simulations (vidbench/metrics/distance_sim.py) share one public jackknife of a pair
    matrix (vidbench/metrics/jackknife.py); no metrics module imports another's private (_underscore) name."""
    import ast
    from pathlib import Path

    from vidbench.metrics import jackknife, kvd

    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(12, 4)), rng.normal(size=(12, 2, 4))
    estimate = kvd.kvd_with_interval(real, fake)
    assert estimate == jackknife.u_statistic_interval(kvd.pair_matrix(real, fake), 0.95, estimate.covers)
    assert estimate.value == pytest.approx(kvd.mmd2_over_videos(real, fake), rel=1e-12)  # the same sum, float rounding
    private = [(path.name, alias.name) for path in sorted(Path(kvd.__file__).parent.glob("*.py"))
               for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.ImportFrom)
               and (node.module or "").startswith("vidbench") for alias in node.names if alias.name.startswith("_")]
    assert private == []
