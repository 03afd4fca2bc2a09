"""`vidbench analyze kl|levels` on a tiny CW-VAE trained for a few steps on the tiny prepared Moving MNIST."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from vidbench.analyze import latents as analyze
from vidbench.cli import main
from vidbench.errors import VidbenchError
from vidbench.report.publish import load_kl_records
from vidbench.train import load_trained, train


@pytest.fixture(scope="module")
def run(tiny_mmnist, tmp_path_factory):
    torch.set_num_threads(1)
    return train("cwvae", tiny_mmnist, preset="tiny", steps=2, batch_size=2, seq_len=8,
                 run_dir=tmp_path_factory.mktemp("runs") / "cwvae-tiny", progress=False, echo=lambda line: None)


def test_kl_per_level_matches_the_training_loss(run, tiny_mmnist):
    """The loss logs kl_l<i> = KL of level i summed over its steps, batch mean, / T: the same numbers when
    the posterior noise is the same (one batch, same seed)."""
    model = load_trained(run)
    videos = analyze._videos(analyze._test_split(tiny_mmnist, {}), 0, 3, 16, "--length 16", str)
    per_video = analyze.kl_per_level(model, videos, batch_size=3, seed=5)
    torch.manual_seed(5)
    with torch.no_grad():
        logs = model.loss(videos)
    expected = [float(logs[f"kl_l{level}"]) * videos.shape[1] for level in range(3)]
    assert per_video.shape == (3, 3) and (per_video >= 0).all()
    # float32 KLs summed per video and then averaged vs the loss's batch sums (other order, and whole-tensor sums
    # depend on the thread count): measured 6.5e-8 relative; 1e-5 leaves 100x, a level mix-up is O(1).
    np.testing.assert_allclose(per_video.mean(0), expected, rtol=1e-5)


def test_analyze_kl_writes_a_record_the_leaderboard_reads(run, tmp_path):
    out = tmp_path / "analysis" / "kl-tiny.json"
    record = analyze.analyze_kl(run, num_videos=2, length=16, out=out)  # dataset: the run's own
    saved = json.loads(out.read_text())
    assert saved["model"] == "cwvae-tiny" and saved["levels"] == 3 and saved["k"] == 2
    assert len(saved["kl_per_level"]) == 3 and saved["paper_table2"]["kl"] == [366.70, 45.28, 6.29]
    assert record["kl_per_level"] == saved["kl_per_level"]
    assert load_kl_records(tmp_path / "analysis")[0]["kl_per_level"] == saved["kl_per_level"]
    lines = analyze.kl_lines(record)
    assert len(lines) == 4 and "paper (3-level, k=6): 366.70" in lines[1]


def test_analyze_levels_draws_normal_and_blind_level_predictions(run, tmp_path):
    out = tmp_path / "levels.png"
    record = analyze.analyze_levels(run, level=["top", "1"], num_videos=2, horizon=8, num_samples=2,
                                    frames_shown=4, out=out)
    assert set(record["mean_ssim_to_truth"]) == {"normal", "level 3 from prior", "level 1 from prior"}
    assert all(0 <= v <= 1 for v in record["mean_ssim_to_truth"].values())
    assert record["context"] == 4  # the tiny preset's minimum: k^(levels-1) = 2^2
    image = np.asarray(Image.open(out))
    assert image.ndim == 3 and image.shape[0] > image.shape[1] / 2  # 7 rows: truth + 3 runs x 2 samples
    assert json.loads(out.with_suffix(".json").read_text())["image"] == str(out)
    with pytest.raises(VidbenchError, match="levels 1..3"):
        analyze.analyze_levels(run, level=["4"], horizon=4, out=out)


def test_analyze_commands(run, tmp_path):
    out = tmp_path / "kl.json"
    done = CliRunner().invoke(main, ["analyze", "kl", str(run), "--num-videos", "2", "--length", "8", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert "level 3:" in done.stdout and out.exists()
    done = CliRunner().invoke(main, ["analyze", "levels", str(run), "--horizon", "4", "--num-samples", "1",
                                     "--out", str(tmp_path / "lv.png")])
    assert done.exit_code == 0, done.output
    assert "level 3 from prior" in done.stdout and (tmp_path / "lv.png").exists()
