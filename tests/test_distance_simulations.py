"""Issue 24 by simulation: Gaussian features of known distance (vidbench/metrics/distance_sim.py), models A
(right covariance, true FVD 20 at tr = 400) and B (half the variance, true FVD 34.3).

Fast sizes: the KVD tests run at the paper's 100 videos and I3D's 400 dimensions. The FVD tests keep the
ratio of videos to dimensions that decides FVD's bias (bias_curve: order dim / n) and shrink both: 25 videos x
100 dimensions for the paper's 100 x 400 (ratio 0.25), 100 x 20 for 2048 x 400 (ratio 5, where FVD-infinity's
population interval starts); one check of the issue's pair runs at 100 x 400 itself, with 3 draws. The full
sizes are in tests/benchmarks/bench_distance_simulations.py, with the tables in docs/distances.md.

Tolerances: 60 draws of an interval with true coverage 0.95 give 57 covered on average, sd 1.7; the bar
0.85 (51/60) sits 3.5 sd below, so a calibrated interval fails it about once in 4000 seeds, while the
failures these tests guard against covered 0/40 (issue 24). Direction errors: at most 3 of 60 (5%).
"""

import numpy as np
import pytest

from vidbench.evaluate.paired import paired_interval, seed_note
from vidbench.metrics import distance_sim as ds
from vidbench.metrics.kvd import kvd_with_interval, mmd2_unbiased, paired_kvd_difference

A, B = ds.MODELS
DRAWS = 60
MIN_COVERAGE = 0.85  # see the module docstring: 3.5 binomial sd under 0.95 at 60 draws
MAX_WRONG = 0.05


def _expected(rows):
    """Monte Carlo expected FVD at this set size: the mean of the draws (its error, sd / sqrt(60), is an
    eighth of one sd while the intervals are about +-2 sd)."""
    return rows[:, 0].mean()


@pytest.mark.parametrize("kind", ["isotropic", "decaying"])
def test_fvd_interval_coverage_quarter_video_per_dimension(kind):
    v = ds.spectrum(kind, 100)
    sim = ds.simulate(v, n=25, reps=DRAWS, seed=1, parts=("fvd",))
    for m in (A, B):
        rows = sim["fvd"][m]
        assert ds.covered(rows, _expected(rows)) >= MIN_COVERAGE
        # the population distance is far below: no interval claims it, and the reason says so
        assert rows[:, 0].min() > ds.true_fvd(v, ds.MODELS[m]) + 3 * rows[:, 0].std()
        assert np.isnan(rows[:, 4]).all()
    assert "no interval on the population FVD from 25 videos" in sim["fvd_reason"]


@pytest.mark.parametrize("kind", ["isotropic", "decaying"])
def test_fvd_population_interval_coverage_five_videos_per_dimension(kind):
    v = ds.spectrum(kind, 20)
    sim = ds.simulate(v, n=100, reps=DRAWS, seed=2, parts=("fvd",))
    assert sim["fvd_reason"] is None
    for m in (A, B):
        rows = sim["fvd"][m]
        assert ds.covered(rows, _expected(rows)) >= MIN_COVERAGE
        assert ds.covered(rows, ds.true_fvd(v, ds.MODELS[m]), cols=(4, 5)) >= MIN_COVERAGE


def test_paired_fvd_direction_underdispersed_n100():
    """The issue's pair at 100 videos x 400 dims: the raw difference points the wrong way every time (B's
    smaller covariance gets a smaller bias), so there is no verdict, never a wrong one."""
    v = ds.spectrum("isotropic", 400)
    sim = ds.simulate(v, n=100, reps=3, seed=3, parts=("fvd",))
    truth = ds.true_fvd(v, ds.MODELS[A]) - ds.true_fvd(v, ds.MODELS[B])
    assert truth < 0 and (sim["fvd_paired"][:, 0] == sim["fvd_paired"][:, 0]).sum() == 0  # no value: no verdict
    a, b = sim["fvd"][A][:, 0], sim["fvd"][B][:, 0]
    assert (a - b > 0).all()  # why: the estimate is confidently wrong in direction
    assert ds.wrong_direction(sim["fvd_paired"], truth) == 0


def _check_paired(distance: str, dim: int, n: int, seed: int) -> None:
    """A - B's paired intervals on the issue's pair: wrong in direction <= 5%, covering the true difference."""
    v = ds.spectrum("isotropic", dim)
    sim = ds.simulate(v, n=n, reps=DRAWS, seed=seed, parts=(distance,))
    true = ds.true_fvd if distance == "fvd" else ds.true_mmd2
    truth = true(v, ds.MODELS[A]) - true(v, ds.MODELS[B])
    assert ds.wrong_direction(sim[f"{distance}_paired"], truth) <= MAX_WRONG
    assert ds.covered(sim[f"{distance}_paired"], truth) >= MIN_COVERAGE


def test_paired_fvd_direction_underdispersed_five_videos_per_dimension():
    _check_paired("fvd", dim=20, n=100, seed=4)


def test_kvd_truth_is_the_large_sample_value():
    v = ds.spectrum("decaying", 20)
    rng = np.random.default_rng(0)
    m = ds.MODELS[A]
    real, fakes = ds.draw(rng, v, {"a": m}, 3000, rho=0.0)
    # one U-statistic of 3000 draws: sd ~ 2% of this distance (measured over seeds), so 10% is 5 sd
    assert mmd2_unbiased(real, fakes["a"]) == pytest.approx(ds.true_mmd2(v, m), rel=0.1)


@pytest.mark.parametrize("kind", ["isotropic", "decaying"])
def test_kvd_interval_coverage_n100(kind):
    v = ds.spectrum(kind, 400)
    sim = ds.simulate(v, n=100, reps=DRAWS, seed=5, parts=("kvd",))
    for m in (A, B):
        assert ds.covered(sim["kvd"][m], ds.true_mmd2(v, ds.MODELS[m])) >= MIN_COVERAGE


def test_paired_kvd_direction_underdispersed_n100():
    _check_paired("kvd", dim=400, n=100, seed=6)


def test_kvd_interval_coverage_perfect_model_and_no_false_verdicts_between_equal_models():
    """True KVD 0: the U-statistic is degenerate there (its spread shrinks like 1 / n, not 1 / sqrt(n)); the
    jackknife interval stays valid, conservatively (0.99 over 100 draws at 100 x 400 and 100 x 40)."""
    v = ds.spectrum("decaying", 100)
    rng = np.random.default_rng(7)
    hits = wrong = 0
    for _ in range(DRAWS):
        real, fakes = ds.draw(rng, v, {"p": ds.Model(), "q": ds.Model()}, 100)
        e = kvd_with_interval(real, fakes["p"])
        hits += e.low <= 0 <= e.high
        d = paired_kvd_difference(real, fakes["p"], fakes["q"])
        wrong += not d.low <= 0 <= d.high
    assert hits / DRAWS >= MIN_COVERAGE and wrong / DRAWS <= MAX_WRONG


# ----------------------------------------------------------------------------------------------- seeds
def seed_world(rng, seeds: int, seed_sd: float, videos: int = 100, effect: float = 0.2):
    """Per-video values of two models over the same videos: a video difficulty shared by both, a model x
    video effect fixed across seeds, a training-seed offset (sd seed_sd) and seed x video noise. The
    population difference (over videos and seeds) is `effect`."""
    shared = rng.standard_normal(videos)

    def model(mean):
        fixed = 0.5 * rng.standard_normal(videos)
        return (mean + shared + fixed + seed_sd * rng.standard_normal((seeds, 1))
                + 0.3 * rng.standard_normal((seeds, videos)))

    return model(effect), model(0.0)


SEED_DRAWS = 400  # cheap t intervals: sd of a coverage of 0.95 is 0.011, the bar 0.90 is 4.6 sd below
# Old (percentile bootstrap resampling seeds), same worlds, 200 draws: 0.825 at 2 seeds and seed sd 0.15,
# 0.90 at 3 seeds (docs/distances.md); the audit, with a larger seed effect: 0.77 and 0.86.


@pytest.mark.parametrize("seeds", [2, 3, 5])
@pytest.mark.parametrize("seed_sd", [0.0, 0.15, 0.5])
def test_seed_pooling_coverage(seeds, seed_sd):
    rng = np.random.default_rng(seeds)
    hits = 0
    for _ in range(SEED_DRAWS):
        a, b = seed_world(rng, seeds, seed_sd)
        _, low, high = paired_interval(a, b)
        hits += low <= 0.2 <= high
    assert 0.90 <= hits / SEED_DRAWS <= 0.99  # not too wide either (the old one: 0.99 without a seed effect)


def test_seed_note_says_what_a_pooled_interval_covers():
    assert seed_note((1, 1), ("a", "b")) == ""
    assert "training seeds (3 and 2 seeds" in seed_note((3, 2), ("a", "b"))
    single = seed_note((3, 1), ("a", "b"))
    assert "seed spread not estimable from 1 seed of b" in single
    rng = np.random.default_rng(0)
    a, b = seed_world(rng, 3, 0.5)
    _, low, high = paired_interval(a, b[:1])  # b's seed offset is not in the interval: narrower
    _, low3, high3 = paired_interval(a, b)
    assert high - low < high3 - low3
