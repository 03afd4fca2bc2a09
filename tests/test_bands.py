"""`vidbench compare --bands`: paired intervals per band of predicted frames, on constructed results files with
a known truth (one model better early only), the per-frame file evaluate writes, and the bands' parsing."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from vidbench.cli import main
from vidbench.errors import VidbenchError
from vidbench.evaluate.per_frame import read_per_frame, write_per_frame
from vidbench.evaluate.results import read_result
from vidbench.report.bands import compare_bands, parse_bands

V, T = 100, 964  # mmnist@1: 100 test videos, 964 predicted frames


def write_banded(path, frames: np.ndarray, sha="abc"):
    """A results file (the fields compare reads) and its per-frame file; frames: ssim [V, T]."""
    per_video = frames.mean(axis=1)
    data = {"protocol": {"name": "mmnist@1", "dataset": "mmnist", "context": 36, "horizon": T, "num_videos": V},
            "model": {"name": "cwvae", "run": path.stem, "config": {}},
            "dataset": {"name": "mmnist", "split": "test", "test_data_sha256": sha},
            "summary": {"ssim": float(per_video.mean())}, "per_video": {"ssim": per_video.tolist()},
            "higher_is_better": {"ssim": True}, "conventions": {"std": "population"}, "metric_weights": {}}
    path.write_text(json.dumps(data))
    write_per_frame({"ssim": dict(enumerate(frames))}, path)
    return path


def pair(rng, early_gain: float):
    """Two models over the same videos: a video's own difficulty shared by both (what pairing removes), frame
    noise of each model, and model B better by `early_gain` on predicted frames 1-100 only."""
    video = 0.1 * rng.standard_normal((V, 1))
    a = 0.5 + video + 0.05 * rng.standard_normal((V, T))
    b = 0.5 + video + 0.05 * rng.standard_normal((V, T))
    b[:, :100] += early_gain
    return a, b


def test_parse_bands():
    assert parse_bands("default", 964) == [(1, 100), (101, 500), (501, 964)]
    assert parse_bands("default", 64) == [(1, 64)]  # the short protocol: one band, cut at its horizon
    assert parse_bands("1-36, 37-964", 964) == [(1, 36), (37, 964)]
    for bad in ("0-10", "10-5", "1-965", "early"):
        with pytest.raises(VidbenchError, match="--bands"):
            parse_bands(bad, 964)


def test_a_model_better_early_only_is_found_better_in_that_band_alone(tmp_path):
    a, b = pair(np.random.default_rng(0), early_gain=0.02)
    files = [write_banded(tmp_path / "a.json", a), write_banded(tmp_path / "b.json", b)]
    results = [read_result(f) for f in files]
    by_band = dict(compare_bands(results, parse_bands("default", T)))
    [early], [middle], [late] = by_band[(1, 100)], by_band[(101, 500)], by_band[(501, 964)]
    assert early.verdict == "b better" and early.difference == pytest.approx(0.02, abs=0.005)
    assert not middle.significant and not late.significant
    # the band's values are the per-frame file's, averaged over the band's frames
    assert early.model_value == pytest.approx(float(b[:, :100].mean()), rel=1e-6)  # float32 storage: ~1e-7
    result = CliRunner().invoke(main, ["compare", *map(str, files), "--bands", "default"])
    assert result.exit_code == 0, result.output
    assert result.output.count("### Predicted frames") == 3 and "b better" in result.output
    csv_out = CliRunner().invoke(main, ["compare", *map(str, files), "--bands", "1-100,101-964", "--format", "csv"])
    lines = csv_out.output.splitlines()
    assert lines[0].startswith("band,metric") and [line.split(",")[0] for line in lines[1:]] == ["1-100", "101-964"]


def test_band_intervals_cover_a_zero_difference_at_their_level():
    """Simulation at mmnist@1's size: where the truth is no difference (frames 501-964), the 95% interval
    excludes 0 in about 5% of repeats; where B is better by 0.003 (frames 1-100), it is found nearly always."""
    from vidbench.evaluate.paired import paired_interval

    rng = np.random.default_rng(1)
    repeats, false_alarms, found = 200, 0, 0
    for _ in range(repeats):
        a, b = pair(rng, early_gain=0.003)
        _, low, high = paired_interval(b[:, 500:].mean(axis=1), a[:, 500:].mean(axis=1))
        false_alarms += low > 0 or high < 0
        _, low, _ = paired_interval(b[:, :100].mean(axis=1), a[:, :100].mean(axis=1))
        found += low > 0
    # 200 repeats at a true rate of 5%: 10 expected, sd ~3.1; <= 22 is ~4 sd, so a sound interval never fails
    # here while a badly undercovering one (rate 15%: 30 expected) does.
    assert false_alarms <= 22
    # the 0.003 gain: per video the band-mean difference has sd 0.05 * sqrt(2 / 100) = 0.0071 (the video's own
    # difficulty cancels in the pair), so over 100 videos se 0.00071 and the gain is 4.2 se: power ~98%
    assert found >= 180


def test_per_frame_file_round_trips_and_its_absence_is_explained(tmp_path):
    frames = np.random.default_rng(2).random((3, 5))
    path = tmp_path / "r.json"
    write_per_frame({"psnr": dict(enumerate(frames))}, path)
    assert np.allclose(read_per_frame(path)["psnr"], frames, atol=1e-7)  # float32 storage
    with pytest.raises(VidbenchError, match="no per-frame values beside other.json"):
        read_per_frame(tmp_path / "other.json")
