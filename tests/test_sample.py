"""`vidbench sample`: the side-by-side panel holds the truth and the model's own open-loop prediction."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from vidbench.analyze.sample import BAR, PREDICTION_COLOUR, sample, side_by_side
from vidbench.data.loader import TestSequences, to_model_input, to_uint8_frames
from vidbench.data.store import PreparedSplit
from vidbench.data.video import read_video
from vidbench.errors import VidbenchError
from vidbench.train import load_trained, train

CONTEXT, HORIZON = 4, 6


@pytest.fixture(scope="module")
def tiny_run(tiny_mmnist, tmp_path_factory):
    run = tmp_path_factory.mktemp("sample") / "run"
    return train("cwvae", tiny_mmnist, preset="tiny", steps=2, batch_size=2, seq_len=8, run_dir=run, progress=False,
                 echo=lambda line: None)


def test_panel_is_truth_then_context_and_the_models_prediction(tiny_run, tiny_mmnist):
    truth = torch.stack([TestSequences(PreparedSplit(tiny_mmnist, "test"), 2, CONTEXT + HORIZON)[i] for i in range(2)])
    model = load_trained(tiny_run)
    predicted = model.predict(to_model_input(truth[:, :CONTEXT]), HORIZON, 1, torch.Generator().manual_seed(0))[:, 0]
    shown = np.concatenate([truth[:, :CONTEXT].numpy(), to_uint8_frames(predicted).numpy()], 1)
    panel = side_by_side(truth.numpy(), shown, CONTEXT)
    assert panel.shape == (CONTEXT + HORIZON, 2 * 64 + BAR, 2 * 64 + BAR, 3)
    second_row = slice(64 + BAR, 2 * 64 + BAR)
    assert np.array_equal(panel[:, second_row, :64, 0], truth[1, ..., 0].numpy())
    assert np.array_equal(panel[:CONTEXT, second_row, 64 + BAR:, 1], truth[1, :CONTEXT, ..., 0].numpy())
    assert np.array_equal(panel[CONTEXT:, second_row, 64 + BAR:, 2], shown[1, CONTEXT:, ..., 0])
    assert tuple(panel[-1, 0, 64]) == PREDICTION_COLOUR

    gif = sample(tiny_run, tiny_run / "s.gif", num_videos=2, context=CONTEXT, horizon=HORIZON, seed=0)
    with Image.open(gif) as image:
        assert image.n_frames == CONTEXT + HORIZON
        image.seek(CONTEXT + 1)
        frame = np.asarray(image.convert("RGB"))
    # the file shows this same panel: GIF keeps a 256-colour palette; these panels have fewer colours and came back
    # exact (measured), 2 grey levels on average allows a PIL quantiser that merges near colours
    assert np.abs(frame.astype(int) - panel[CONTEXT + 1]).mean() < 2


def test_mp4_output_and_argument_errors(tiny_run):
    out = sample(tiny_run, num_videos=1, context=CONTEXT, horizon=HORIZON)
    assert out == tiny_run / "sample.mp4"
    video = read_video(out)
    assert video.shape == (CONTEXT + HORIZON, 64, 2 * 64 + BAR, 3)
    with pytest.raises(VidbenchError, match="not a multiple of 4"):
        sample(tiny_run, tiny_run / "x.gif", num_videos=1, context=6, horizon=2)
    with pytest.raises(VidbenchError, match=r"--out .*x.avi: choose a .mp4 or .gif"):
        sample(tiny_run, tiny_run / "x.avi")
    with pytest.raises(VidbenchError, match="--num-videos 9: the test split of .* has 4 sequences"):
        sample(tiny_run, tiny_run / "x.gif", num_videos=9, context=CONTEXT, horizon=HORIZON)


def _vidbench(*args, cwd):
    return subprocess.run([sys.executable, "-m", "vidbench.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)


def test_cli_train_and_sample(tiny_mmnist, tmp_path):
    args = ["train", "--model", "cwvae", "--preset", "tiny", "--dataset", str(tiny_mmnist), "--steps", "2",
            "--batch-size", "2", "--seq-len", "8", "--num-workers", "0", "--checkpoint-every", "1"]
    result = _vidbench(*args, cwd=tmp_path)
    run = tmp_path / "models" / "cwvae-tiny-mmnist"
    assert result.returncode == 0, result.stderr
    assert "kl_l2=" in result.stderr and (run / "checkpoint.pt").exists()  # progress bar shows the KL per level
    wrong = _vidbench(*[("cwvea" if a == "cwvae" else a) for a in args], cwd=tmp_path)
    assert wrong.returncode == 1 and wrong.stderr.startswith("error: unknown model 'cwvea'; did you mean 'cwvae'")
    assert wrong.stderr.count("\n") == 1  # one line, no traceback
    result = _vidbench("sample", str(run), "--out", "s.gif", "--num-videos", "1", "--context", "4", "--horizon", "4",
                       cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "s.gif" and (tmp_path / "s.gif").exists()
