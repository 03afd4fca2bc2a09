"""Mean-rank intervals by simulation with known truth (report/rank_intervals.py). The worlds and the full
table are tests/benchmarks/bench_rank_intervals.py's (its docstring; docs/intervals.md); the functions that
draw them live here, where the assertions are.

Five models score SSIM, PSNR and LPIPS on the same test videos: per-video value = the model's population mean +
a video effect shared by all models (sd 2 units) + the model's own per-video noise (sd 1 unit); a unit is
0.05 SSIM, 1 dB PSNR, 0.03 LPIPS. The true mean rank is the table's rule applied to the population means.

Tolerances: DRAWS = 60 draws of a set with coverage at least 0.95 give at least 57 covered on average, sd 1.7;
the bar 0.85 (51/60) sits 3.5 sd below, while the percentile bootstrap vidbench used before covered a tied
pair 0.66-0.72 (400 draws), 3 sd below the bar even at 60 draws.
"""

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from vidbench.evaluate.results import load_results
from vidbench.report.publish import build_tables
from vidbench.report.ranking import balanced_mean_rank
from vidbench.report.table import TABLE1_METRICS, Column

MODELS = 5
UNIT = {"ssim": 0.05, "psnr": 1.0, "lpips": 0.03}
BASE = {"ssim": 0.6, "psnr": 15.0, "lpips": 0.3}
KEYS = {"ssim": "SSIM", "psnr": "PSNR", "lpips": "LPIPS"}
VIDEO_SD, NOISE_SD = 2.0, 1.0  # in units


def world_means(world: str, videos: int) -> np.ndarray:
    """[models, metric] population means in units: a larger number is better on every metric (LPIPS is
    flipped when written)."""
    se = np.sqrt(2) * NOISE_SD / np.sqrt(videos)
    order = np.arange(MODELS, 0, -1, dtype=np.float64)  # model 0 best
    if world == "separated":
        return np.repeat((4 * se * order)[:, None], 3, axis=1)
    if world == "close":
        return np.repeat((se * order)[:, None], 3, axis=1)
    if world == "crossing":
        return np.stack([1.5 * se * order, 1.5 * se * order, 1.5 * se * order[::-1]], axis=1)
    if world == "tied pair":
        gaps = 2 * se * order
        gaps[1] = gaps[0]
        return np.repeat(gaps[:, None], 3, axis=1)
    raise ValueError(world)


def values(means_units: np.ndarray) -> dict[str, np.ndarray]:
    """Units -> metric values (LPIPS: lower is better, so its value falls as the units rise)."""
    out = {}
    for j, key in enumerate(("ssim", "psnr", "lpips")):
        sign = -1.0 if key == "lpips" else 1.0
        out[key] = BASE[key] + sign * UNIT[key] * means_units[..., j]
    return out


def true_mean_ranks(means_units: np.ndarray) -> list[float]:
    """table.rank_and_bold's ranks on the rounded population means, then balanced_mean_rank."""
    population = values(means_units)
    columns = {key: Column("mmnist@1", key, TABLE1_METRICS[KEYS[key]]) for key in KEYS}
    ranks = [{} for _ in range(MODELS)]
    for key, c in columns.items():
        sign = 1 if c.metric.higher_is_better else -1
        shown = [round(float(v), c.metric.decimals) for v in population[key]]
        for i, v in enumerate(shown):
            ranks[i][c] = 1 + sum(1 for w in shown if sign * w > sign * v)
    return [balanced_mean_rank(r) for r in ranks]


def draw_rank_intervals(means_units: np.ndarray, videos: int, rng, folder: Path) -> list[tuple[float, float]]:
    """One draw of per-video values, written as results files, through build_tables: each model's rank_ci."""
    video_effect = rng.normal(0.0, VIDEO_SD, (videos, 3))
    for i in range(MODELS):
        per_video = values(means_units[i] + video_effect + rng.normal(0.0, NOISE_SD, (videos, 3)))
        data = {
            "protocol": {"name": "mmnist@1", "dataset": "mmnist", "context": 36, "horizon": 964, "num_videos": videos},
            "model": {"name": f"m{i}", "config": {}}, "dataset": {"test_data_sha256": "sim"}, "num_videos": videos,
            "summary": {k: float(v.mean()) for k, v in per_video.items()},
            "per_video": {k: [float(x) for x in v] for k, v in per_video.items()},
        }
        (folder / f"m{i}-mmnist@1.json").write_text(json.dumps(data))
    measured, _ = build_tables(load_results(folder))
    by_label = {r.label: r for r in measured.rows}
    return [by_label[f"m{i}"].rank_ci for i in range(MODELS)]


def simulate(world: str, videos: int, draws: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """(covered [draws, models] bool, width [draws, models], true mean ranks)."""
    means = world_means(world, videos)
    truth = true_mean_ranks(means)
    rng = np.random.default_rng(seed)
    covered, width = np.zeros((draws, MODELS), bool), np.zeros((draws, MODELS))
    with tempfile.TemporaryDirectory() as tmp:
        for d in range(draws):
            for i, (low, high) in enumerate(draw_rank_intervals(means, videos, rng, Path(tmp))):
                covered[d, i] = low - 1e-9 <= truth[i] <= high + 1e-9
                width[d, i] = high - low
    return covered, width, truth



DRAWS = 60
MIN_COVERAGE = 0.85  # see the module docstring: 3.5 binomial sd under 0.95 at 60 draws


@pytest.mark.parametrize("world", ["tied pair", "close", "separated"])
def test_rank_intervals_cover_the_true_mean_rank(world):
    covered, width, truth = simulate(world, 16, DRAWS, seed=1)
    assert covered.mean(axis=0).min() >= MIN_COVERAGE
    if world == "separated":  # 4 paired se apart on every metric: the set is nearly a point (measured 0.48 wide)
        assert width.mean() < 1.0
