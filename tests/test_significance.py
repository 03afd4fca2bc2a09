"""Leaderboard statistics (issue 14): the "not significantly different from the best" marker and mean-rank
intervals, from per-video numbers; the paper's rows, which have none, are left as printed."""

import json

import numpy as np
import pytest

from vidbench.evaluate.results import load_results
from vidbench.report import paper
from vidbench.report.publish import build_tables, write_leaderboard
from vidbench.report.render import to_csv, to_markdown
from vidbench.report.table import PAPER

V = 80


def write(folder, name, ssim, psnr, fvd_fake=None, real=None, lpips=None):
    data = {
        "protocol": {"name": "mmnist@1", "dataset": "mmnist", "context": 36, "horizon": 964, "num_videos": V},
        "model": {"name": name, "config": {}},
        "dataset": {"test_data_sha256": "abc"},
        "summary": {"ssim": float(np.mean(ssim)), "psnr": float(np.mean(psnr))},
        "per_video": {"ssim": list(map(float, ssim)), "psnr": list(map(float, psnr))},
        "num_videos": V,
    }
    if lpips is not None:  # a blur-robust metric: without one a row gets no mean rank (issue 25)
        data["summary"]["lpips"] = float(np.mean(lpips))
        data["per_video"]["lpips"] = list(map(float, lpips))
    path = folder / f"{name}-mmnist@1.json"
    if fvd_fake is not None:
        from vidbench.metrics.fvd_stats import frechet_from_features
        from vidbench.metrics.kvd import mmd2_over_videos

        data["fvd"] = {"964": frechet_from_features(real, fvd_fake.reshape(-1, real.shape[-1]))}
        data["summary"]["kvd"] = mmd2_over_videos(real, fvd_fake)
        data["fvd_set_size"] = {"real": V, "generated": V}
        data["warnings"] = ["FVD from 80 real and 80 generated videos: under the 2048 ..."]
        np.savez(path.with_suffix(".fvd.npz"), prefixes=np.array([964]), real=real[:, None],
                 fake=fvd_fake[:, None, None], video_index=np.arange(V))
    path.write_text(json.dumps(data))


def three_models(folder, with_fvd=False):
    rng = np.random.default_rng(0)
    ssim = 0.6 + 0.1 * rng.standard_normal(V)
    psnr = 15 + 2 * rng.standard_normal(V)
    real = rng.standard_normal((V, 8))
    fakes = {"a": real + 0.2 * rng.standard_normal((V, 8)), "b": real + 0.2 * rng.standard_normal((V, 8)),
             "c": real + 1.0}
    shifts = {"a": 0.0, "b": -0.001, "c": -0.05}  # b: within the noise of a; c: clearly worse
    for name, shift in shifts.items():
        noise = 0.004 * rng.standard_normal(V)
        write(folder, name, ssim + shift + noise, psnr + 20 * shift + noise, fakes[name] if with_fvd else None,
              real)


def test_marker_and_rank_intervals_from_per_video_numbers(tmp_path):
    three_models(tmp_path, with_fvd=True)
    measured, paper_table = build_tables(load_results(tmp_path))
    rows = {r.label: r for r in measured.rows}
    ssim = next(c for c in measured.columns if c.key == "ssim")
    fvd = next(c for c in measured.columns if c.key == "fvd" and c.protocol == "mmnist@1")
    assert ssim in rows["a"].tied and ssim in rows["b"].tied and ssim not in rows["c"].tied
    assert fvd in rows["a"].tied and fvd in rows["b"].tied and fvd not in rows["c"].tied
    for row in rows.values():
        low, high = row.rank_ci
        assert low <= row.mean_rank <= high
    assert rows["c"].rank_ci == (3.0, 3.0)  # last in every column, surely (far below a and b)
    assert any(n.startswith("[a, b] after a mean rank: a 95% set") for n in measured.stat_notes)
    assert rows["b"].rank_ci[1] > rows["b"].rank_ci[0]  # b ties or trails a, depending on the replicate
    md = to_markdown(measured)
    assert "≈" in md and "not significantly different" in md and "FVD set size on mmnist@1: 80 real / 80 generated" in md
    assert "Warning, mmnist@1: FVD from 80 real" in md
    assert "mean_rank_low" in to_csv(measured).splitlines()[0]


def test_fvd_column_without_an_honest_test_has_no_marks_and_says_why(tmp_path):
    """80 videos x 40 dimensions: under 5 videos per dimension no paired FVD test holds (a model with less
    feature variance would win wrongly), so no ≈ in the FVD column and a note with the reason."""
    rng = np.random.default_rng(0)
    real = rng.standard_normal((V, 40))
    fakes = {"a": real + 0.2 * rng.standard_normal((V, 40)), "b": real + 0.2 * rng.standard_normal((V, 40))}
    for name, fake in fakes.items():
        write(tmp_path, name, 0.6 + 0.1 * rng.standard_normal(V), 15 + rng.standard_normal(V), fake, real)
    measured, _ = build_tables(load_results(tmp_path))
    fvd = next(c for c in measured.columns if c.key == "fvd" and c.protocol == "mmnist@1")
    assert not any(fvd in r.tied for r in measured.rows)
    kvd = next(c for c in measured.columns if c.key == "kvd")  # KVD's column, with its paired test: a ≈ b
    assert all(kvd in r.tied for r in measured.rows) and "| mmnist@1 KVD ↓ |" in to_markdown(measured)
    assert any(n.startswith("mmnist@1 FVD: no ≈ marks; no verdict on the FVD difference from 80 videos")
               for n in measured.stat_notes)


def test_paper_rows_keep_their_printed_ranks_and_say_why_no_interval(tmp_path):
    three_models(tmp_path)
    _, paper_table = build_tables(load_results(tmp_path))
    for row in paper_table.rows:
        assert row.source == PAPER and row.rank_ci is None and not row.tied
        assert f"{row.mean_rank:.2f}" == f"{paper.MEAN_RANK[row.label]:.2f}"
    assert any("paper publishes no per-video numbers" in n for n in paper_table.stat_notes)
    write_leaderboard(tmp_path, tmp_path / "board")
    html = (tmp_path / "board" / "index.html").read_text()
    assert "paper publishes no per-video numbers" in html and "not significantly different from the best" in html


def test_results_without_per_video_numbers_get_no_marker_or_interval(tmp_path):
    for name, value in (("x", 0.5), ("y", 0.6)):
        (tmp_path / f"{name}.json").write_text(json.dumps({
            "protocol": {"name": "mmnist@1"}, "model": {"name": name}, "summary": {"ssim": value}}))
    measured, _ = build_tables(load_results(tmp_path))
    assert all(r.rank_ci is None and not r.tied for r in measured.rows)
    assert any("carry no per-video numbers" in n for n in measured.stat_notes)


def test_training_seeds_aggregate_into_one_row_with_their_spread(tmp_path):
    rng = np.random.default_rng(1)
    ssim, psnr = 0.6 + 0.1 * rng.standard_normal(V), 15 + 2 * rng.standard_normal(V)
    write(tmp_path, "a", ssim, psnr)
    for seed, offset in enumerate((-0.02, 0.0, 0.03)):
        write(tmp_path, f"m-seed{seed}", ssim + offset, psnr + offset)
    measured, _ = build_tables(load_results(tmp_path))
    assert sorted(r.label for r in measured.rows) == ["a", "m"]  # the three seed files are one row
    m = next(r for r in measured.rows if r.label == "m")
    col = next(c for c in measured.columns if c.key == "ssim")
    assert m.values[col] == pytest.approx(np.mean(ssim) + 0.01 / 3)
    low, high, n = m.spread[col]
    assert n == 3 and high - low == pytest.approx(0.05)
    assert "(3 seeds 0." in to_markdown(measured) and not measured.warnings
    assert col in m.tied  # seed spread (0.05) swamps the 0.003 mean difference: not significantly different


def test_rank_intervals_count_training_seeds_spread_too(tmp_path):
    """m's seeds sit at a - 0.02, a + 0.00, a + 0.03 on every video: its mean (a + 0.0033) beats a on every
    video, but its seeds' spread makes the difference uncertain (the paired interval adds it), so m's set must
    hold rank 2 as well as 1."""
    rng = np.random.default_rng(2)
    ssim, psnr = 0.6 + 0.1 * rng.standard_normal(V), 15 + 2 * rng.standard_normal(V)
    write(tmp_path, "a", ssim, psnr, lpips=0.5 - ssim / 4)
    for seed, offset in enumerate((-0.02, 0.0, 0.03)):
        write(tmp_path, f"m-seed{seed}", ssim + offset, psnr + 100 * offset, lpips=0.5 - (ssim + offset) / 4)
    measured, _ = build_tables(load_results(tmp_path))
    m = next(r for r in measured.rows if r.label == "m")
    assert m.mean_rank == 1.0 and m.rank_ci == (1.0, 2.0)


def test_rank_intervals_hold_fvd_at_its_measured_value(tmp_path):
    """a beats b by far on SSIM, PSNR and LPIPS; their FVDs differ by noise only. FVD has no honest paired
    interval at 80 videos (its small-set bias depends on each model's covariance: issue 24), so it is held at
    its measured value: a's rank set is a point, and a note says why."""
    rng = np.random.default_rng(3)
    real = 30 * rng.standard_normal((V, 8))  # FVDs near 200, so rounding to the table's decimals leaves no tie
    ssim, psnr = 0.6 + 0.01 * rng.standard_normal(V), 15 + 0.1 * rng.standard_normal(V)
    fake = real + 15 * rng.standard_normal((V, 8))
    for name, shift in (("a", 0.0), ("b", -0.2)):  # b's features: a's plus a little noise, so the FVDs are close
        fake = fake + 1.5 * rng.standard_normal((V, 8))
        write(tmp_path, name, ssim + shift, psnr + 10 * shift, fake, real, lpips=np.full(V, 0.3 - shift))
    measured, _ = build_tables(load_results(tmp_path))
    rows = {r.label: r for r in measured.rows}
    for row in rows.values():
        assert row.rank_ci == (row.mean_rank, row.mean_rank)
    assert any(n.startswith("Mean-rank intervals hold FVD at its measured value") for n in measured.stat_notes)
