"""The user's command as the mission writes it: `vidbench evaluate --model cwvae --horizon 500`.

After `vidbench prepare minerl` and `vidbench train --model cwvae --dataset minerl`, evaluate finds the run
under models/, takes its dataset, predicts up to frame 500 (464 frames after 36 of context: minerl@1), and
writes where `vidbench leaderboard` reads. Small settings: a tiny CW-VAE trained 2 steps, 2 test videos.
"""

import json
import os
import subprocess
import sys

import pytest
from test_data_minerl import make_cwvae_archive

from vidbench.errors import VidbenchError
from vidbench.evaluate.protocols import get_protocol, resolve_protocol

TRAIN = ["train", "--model", "cwvae", "--dataset", "minerl", "--preset", "tiny", "--set", "channels=3", "--steps", "2",
         "--batch-size", "2", "--seq-len", "8", "--num-workers", "0"]


def vidbench(*args, cwd, ok=True):
    """The command as a user runs it: its own process, exit code, stdout and stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "vidbench.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)
    assert (done.returncode == 0) == ok, done.stderr
    return done


def test_horizon_counts_from_the_first_frame_as_the_paper_does():
    assert resolve_protocol("minerl", last_frame=500) is get_protocol("minerl@1")  # keeps the protocol's name
    assert resolve_protocol("mmnist", last_frame=1000) is get_protocol("mmnist@1")
    shorter = resolve_protocol("minerl", last_frame=100)
    assert (shorter.context, shorter.horizon, shorter.name) == (36, 64, "minerl@1[horizon=64]")
    with pytest.raises(VidbenchError, match="must exceed the 36 context frames"):
        resolve_protocol("minerl", last_frame=36)


@pytest.mark.timeout(600)
def test_mission_command_evaluates_the_trained_minerl_run(tmp_path):
    make_cwvae_archive(tmp_path / "raw", counts=(2, 2))
    vidbench("prepare", "minerl", "--path", "raw/minerl_navigate", cwd=tmp_path)

    missing = vidbench("evaluate", "--model", "cwvae", "--horizon", "500", cwd=tmp_path, ok=False)
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
    assert "`vidbench prepare minerl` then `vidbench train --model cwvae --dataset minerl`" in missing.stderr

    vidbench(*TRAIN, cwd=tmp_path)
    done = vidbench("evaluate", "--model", "cwvae", "--horizon", "500", "--num-videos", "2", "--metrics", "ssim,psnr",
                    cwd=tmp_path)
    assert "context 36, 464 predicted (frames 37-500)" in done.stdout
    written = sorted((tmp_path / "leaderboard" / "results").glob("*.json"))
    assert [p.name for p in written] == ["cwvae-tiny-minerl-minerl@1-num_videos-2.json"], done.stderr
    assert f"wrote {written[0].relative_to(tmp_path)}" in done.stderr
    results = json.loads(written[0].read_text())
    assert results["frames"] == {"context": 36, "predicted": 464, "last_frame": 500}
    assert results["protocol"]["horizon"] == 464 and len(results["per_timestep"]["psnr"]["mean"]) == 464

    board = vidbench("leaderboard", "--no-paper", cwd=tmp_path)
    assert "cwvae-tiny-minerl" in board.stdout and "minerl@1[num_videos=2]" in board.stdout

    # A second run of the same model: evaluate asks which one instead of guessing.
    vidbench(*TRAIN, "--run-dir", "models/cwvae-tiny-minerl-2", cwd=tmp_path)
    ambiguous = vidbench("evaluate", "--model", "cwvae", "--horizon", "500", cwd=tmp_path, ok=False)
    assert "2 trained cwvae runs" in ambiguous.stderr
    assert "models/cwvae-tiny-minerl-2" in ambiguous.stderr and "--checkpoint" in ambiguous.stderr
