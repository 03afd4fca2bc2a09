"""Streaming accumulators, sample reduction and the per-model interval, against direct numpy computations."""

import numpy as np
import pytest

from vidbench.errors import VidbenchError
from vidbench.evaluate.accumulate import TimestepStats, reduce_samples
from vidbench.evaluate.intervals import mean_interval


def test_timestep_stats_streamed_in_batches_equal_direct_mean_and_std():
    rng = np.random.default_rng(0)
    values = rng.normal(20, 3, size=(11, 7))
    stats = TimestepStats(7)
    for start in range(0, 11, 4):  # batches of 4, 4, 3 videos
        stats.update(values[start : start + 4])
    # float64 sums of 11 values ~20 in another order than numpy's: ~1e-16 relative for the mean. The std comes from
    # E[x^2] - E[x]^2, whose cancellation (mean^2 / var ~ 44) costs ~100x that (measured 2.3e-14 relative).
    np.testing.assert_allclose(stats.mean(), values.mean(0), rtol=1e-13)
    np.testing.assert_allclose(stats.std(), values.std(0), rtol=1e-10)


def test_timestep_stats_of_two_shards_sum_to_the_whole():
    rng = np.random.default_rng(1)
    values = rng.uniform(size=(9, 5))
    a, b, whole = TimestepStats(5), TimestepStats(5), TimestepStats(5)
    a.update(values[:4]), b.update(values[4:]), whole.update(values)
    for ta, tb in zip(a.tensors(), b.tensors()):
        ta += tb  # what all_reduce(SUM) does across ranks
    # Row-by-row float64 sums: shard 4 + 5 regroups one addition (measured exact for the mean, 5.5e-16 for the
    # std); the std's tolerance is the cancellation allowance of the test above.
    np.testing.assert_allclose(a.mean(), whole.mean(), rtol=1e-14)
    np.testing.assert_allclose(a.std(), whole.std(), rtol=1e-10)


def test_reduce_mean_of_samples():
    rng = np.random.default_rng(2)
    values = {"ssim": rng.uniform(size=(3, 4, 6)), "psnr": rng.uniform(10, 30, size=(3, 4, 6))}
    reduced, chosen = reduce_samples(values, "mean", {"ssim": True, "psnr": True})
    assert chosen is None
    np.testing.assert_array_equal(reduced["psnr"], values["psnr"].mean(1))


@pytest.mark.parametrize("higher", [True, False])
def test_reduce_best_of_samples_by_mean_over_time(higher):
    rng = np.random.default_rng(3)
    values = {"lpips": rng.uniform(size=(5, 3, 8)), "psnr": rng.uniform(10, 30, size=(5, 3, 8))}
    reduced, chosen = reduce_samples(values, "best:lpips", {"lpips": higher, "psnr": True})
    scores = values["lpips"].mean(2)
    expected = scores.argmax(1) if higher else scores.argmin(1)
    np.testing.assert_array_equal(chosen, expected)
    for v in range(5):  # every metric is read from the chosen sample
        np.testing.assert_array_equal(reduced["psnr"][v], values["psnr"][v, expected[v]])
        np.testing.assert_array_equal(reduced["lpips"][v], values["lpips"][v, expected[v]])


def test_best_per_metric_picks_each_metrics_own_best_sample():
    """Issue 12 item 4: the authors' eval keeps the best sample by mean SSIM and, separately, by mean PSNR."""
    rng = np.random.default_rng(4)
    values = {"ssim": rng.uniform(size=(6, 4, 5)), "psnr": rng.uniform(10, 30, size=(6, 4, 5)),
              "lpips": rng.uniform(size=(6, 4, 5))}
    better = {"ssim": True, "psnr": True, "lpips": False}
    reduced, chosen = reduce_samples(values, "best-per-metric", better)
    assert chosen is None  # no single sample per video: FVD takes every sample
    rows = np.arange(6)
    picks = {m: (v.mean(2).argmax(1) if better[m] else v.mean(2).argmin(1)) for m, v in values.items()}
    for m, v in values.items():
        np.testing.assert_array_equal(reduced[m], v[rows, picks[m]])
    assert (picks["ssim"] != picks["psnr"]).any()  # the case where it differs from best:ssim
    by_ssim, _ = reduce_samples(values, "best:ssim", better)
    assert (reduced["psnr"].mean(1) >= by_ssim["psnr"].mean(1)).all() and not np.array_equal(reduced["psnr"],
                                                                                             by_ssim["psnr"])


def test_reduce_rejects_unknown_rule_and_metric():
    values = {"ssim": np.zeros((1, 2, 3))}
    with pytest.raises(VidbenchError, match="best:<metric>' or 'best-per-metric'"):
        reduce_samples(values, "median", {})
    with pytest.raises(VidbenchError, match="'psnr' is not computed"):
        reduce_samples(values, "best:psnr", {})


def test_mean_interval_is_the_t_interval_and_brackets_the_mean():
    from scipy import stats

    per_video = np.random.default_rng(4).normal(0.6, 0.1, size=40)
    low, high = mean_interval(per_video)
    se = per_video.std(ddof=1) / np.sqrt(len(per_video))
    half = stats.t.ppf(0.975, 39) * se  # t with n - 1 degrees of freedom: 2.023, not the normal 1.96
    assert low == pytest.approx(per_video.mean() - half, rel=1e-12) and high == pytest.approx(per_video.mean() + half, rel=1e-12)
    assert mean_interval(per_video) == (low, high)  # deterministic: no resampling seed


def test_mean_interval_of_constant_values_is_a_point_and_of_one_video_is_none():
    assert mean_interval(np.full(10, 0.25)) == (0.25, 0.25)
    low, high = mean_interval([0.5])
    assert np.isnan(low) and np.isnan(high)  # no spread from one video: no interval, never a point
