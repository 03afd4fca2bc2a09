"""The paper's claim at equal budget on the page (report/claim.py, issue 23), on constructed zoo results files
with a known truth: CW-VAE better than RSSM on PSNR over predicted frames 501-964 only; a NoTmpAbs trained for
twice as long, which is shown but not called an equal-budget pair."""

import json

import numpy as np

from vidbench.evaluate.per_frame import write_per_frame
from vidbench.evaluate.results import load_results
from vidbench.report.claim import SAME_BUDGET, find_claims, render_html, why_unequal
from vidbench.report.origin import Budget
from vidbench.report.publish import write_leaderboard

V, T = 100, 964  # mmnist@1
H100 = "cuda: NVIDIA H100 80GB HBM3"


def write_zoo(folder, family: str, psnr: np.ndarray, wall_s: float, steps: int):
    """A zoo job's results file (the fields the leaderboard and compare read) and its per-frame file."""
    name = f"{family}-mmnist-{steps // 1000}k"
    path = folder / f"{name}-mmnist@1.json"
    per_video = psnr.mean(axis=1)
    session = {"command": "python -m vidbench.zoo_job ...", "device": H100, "from_step": 0, "to_step": steps}
    record = {"zoo": name, "command": "python -m vidbench.zoo_job ...",
              "lineage": [{"run": "run", "steps": steps, "wall_s": wall_s, "init_from": None, "sessions": [session]}]}
    data = {"protocol": {"name": "mmnist@1", "dataset": "mmnist", "context": 36, "horizon": T, "num_videos": V},
            "model": {"name": family, "run": name, "config": {"name": family}, "record": record,
                      "trained_steps": steps, "checkpoint_sha256": name},
            "provenance": "zoo", "dataset": {"name": "mmnist", "split": "test", "test_data_sha256": "abc"},
            "summary": {"psnr": float(per_video.mean())}, "per_video": {"psnr": per_video.tolist()},
            "higher_is_better": {"psnr": True}, "num_videos": V, "metric_weights": {}}
    path.write_text(json.dumps(data))
    write_per_frame({"psnr": dict(enumerate(psnr.astype(np.float32)))}, path)
    return path


def psnr_frames(rng, late_gain: float) -> np.ndarray:
    video = rng.standard_normal((V, 1))  # a video's own difficulty, shared by every model (what pairing removes)
    frames = 13 + video + 0.5 * rng.standard_normal((V, T))
    frames[:, 500:] += late_gain
    return frames


def test_the_claim_is_shown_per_band_for_an_equal_budget_pair(tmp_path):
    rng = np.random.default_rng(0)
    shared = psnr_frames(rng, 0.0)
    noise = lambda: 0.3 * rng.standard_normal((V, T))  # noqa: E731
    write_zoo(tmp_path, "cwvae", shared + noise() + np.where(np.arange(T) >= 500, 0.3, 0.0), 240.0, 5900)
    write_zoo(tmp_path, "rssm", shared + noise(), 241.0, 7100)  # same budget (0.4% apart), more steps
    write_zoo(tmp_path, "notmpabs", shared + noise(), 480.0, 11800)  # twice the training time
    claims = {c.rival.family: c for c in find_claims(load_results(tmp_path))}
    assert claims["rssm"].unequal is None and "training times differ" in claims["notmpabs"].unequal
    bands = dict(claims["rssm"].bands)
    [early], [late] = bands[(1, 100)], bands[(501, 964)]
    # The truth: equal over frames 1-500 (a 95% interval misses 0 for 5% of seeds; this seed's does not), +0.3 dB
    # over 501-964, 70 standard errors of the paired difference (0.0042 dB), so found at any seed.
    assert early.verdict == "no significant difference"
    assert late.verdict == "cwvae-mmnist-5k better" and late.low > 0
    html = render_html(list(claims.values()))
    assert "cwvae-mmnist-5k vs rssm-mmnist-7k: equal budget" in html
    assert "NOT an equal-budget pair" in html and "CW-VAE SSIM 0.68, PSNR 13.11" in html  # the paper beside it
    write_leaderboard(tmp_path, tmp_path / "board")
    page = (tmp_path / "board" / "index.html").read_text()
    assert "The paper's claim at equal budget (mmnist@1)" in page and "cwvae-mmnist-5k better" in page


def test_without_a_zoo_pair_the_page_says_the_claim_is_untested(tmp_path):
    rng = np.random.default_rng(1)
    write_zoo(tmp_path, "cwvae", psnr_frames(rng, 0.0), 240.0, 5900)  # no rival trained yet
    assert find_claims(load_results(tmp_path)) == []
    assert "Not tested on this page" in render_html([])


def test_budgets_are_equal_only_on_the_same_devices_runs_and_training_time():
    base = Budget(6000, 240.0, 1, (H100,))
    assert why_unequal(base, Budget(7000, 240.0 * (1 + SAME_BUDGET / 2), 1, (H100,))) is None
    assert "other devices" in why_unequal(base, Budget(6000, 240.0, 1, ("cpu: x86_64, 2 threads",)))
    assert "1 vs 2 training runs" == why_unequal(base, Budget(6000, 240.0, 2, (H100,)))
    assert "differ by more than 5%" in why_unequal(base, Budget(6000, 240.0 * 1.2, 1, (H100,)))


def test_a_difference_significant_alone_but_not_over_the_whole_table_is_not_claimed_jointly(tmp_path):
    """CW-VAE ahead over frames 101-500 by exactly 2.2 standard errors of the paired difference (per-video offsets
    with mean 0.22 and sd 1 over 100 videos), equal elsewhere: its own 95% interval excludes 0 (t > 1.98), but
    the table shows 3 intervals (1 metric x 3 bands), and jointly (each at 1 - 0.05/3: t > 2.43) it does not."""
    rng = np.random.default_rng(2)
    rival = psnr_frames(rng, 0.0)
    z = rng.standard_normal(V)
    z = (z - z.mean()) / z.std(ddof=1)  # exactly mean 0, sd 1: the t statistic is exactly 0.22 / (1 / 10) = 2.2
    ahead = rival.copy()
    ahead[:, 100:500] += (0.22 + z)[:, None]
    write_zoo(tmp_path, "cwvae", ahead, 240.0, 5900)
    write_zoo(tmp_path, "rssm", rival, 240.0, 7100)
    [claim] = find_claims(load_results(tmp_path))
    assert claim.shown == 3
    [alone] = dict(claim.bands)[(101, 500)]
    assert alone.verdict == "cwvae-mmnist-5k better"
    assert claim.joint[((101, 500), "psnr")].verdict == "no significant difference"
    assert "jointly, over the 3" in render_html([claim])
