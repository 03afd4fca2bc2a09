"""`vidbench sample`: a side-by-side video of a trained model's open-loop predictions on test videos.

    vidbench sample models/cwvae-mmnist-mmnist                        # -> models/cwvae-mmnist-mmnist/sample.mp4
    vidbench sample models/cwvae-tiny-mmnist --out pred.gif --num-videos 2 --context 36 --horizon 100

One row per test video: ground truth | prediction. The prediction side shows the context frames the model
was given, then its open-loop prediction (as the authors' eval: posteriors over the context, priors after,
no frame fed back). The bar between the halves is green while both sides show ground truth (context) and
red once the right side is predicted.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from vidbench.data.loader import TestSequences, to_model_input, to_uint8_frames
from vidbench.data.store import PreparedSplit
from vidbench.errors import VidbenchError
from vidbench.evaluate.distributed import pick_device
from vidbench.fileio import atomic_write_bytes
from vidbench.locking import check_output_file
from vidbench.models.base import sampling_generator
from vidbench.options import check_options
from vidbench.train.checkpoint import checkpoint_path, load_checkpoint

DEFAULT_CONTEXT = 36   # authors' eval: 36 context frames (one top-level step at k=6, 3 levels)
DEFAULT_HORIZON = 64   # REFERENCE.md section 6's prediction anchor: 64 frames after 36
BAR = 2                # pixels between the halves and between rows
CONTEXT_COLOUR, PREDICTION_COLOUR = (0, 200, 0), (220, 0, 0)
FORMATS = (".mp4", ".gif")


def sample(run_dir_or_checkpoint, out=None, *, dataset=None, num_videos: int = 4, context: int = DEFAULT_CONTEXT,
           horizon: int = DEFAULT_HORIZON, seed: int = 0, fps: float = 10.0, device: str = "cpu") -> Path:
    """Write the side-by-side video; returns its path. `dataset`: a prepared folder (default: the run's)."""
    from vidbench.train import model_from_checkpoint

    check_options(num_videos=num_videos, context=context, horizon=horizon, seed=seed, fps=fps)
    device = pick_device(device, 1)
    ckpt = checkpoint_path(run_dir_or_checkpoint)
    state = load_checkpoint(ckpt, map_location=device)
    model = model_from_checkpoint(state, ckpt).to(device)
    out = check_output_file(Path(out) if out is not None else ckpt.parent / "sample.mp4")
    if out.suffix.lower() not in FORMATS:
        raise VidbenchError(f"--out {out}: choose a .mp4 or .gif file name")
    root = dataset if dataset is not None else state["config"]["dataset"]["root"]
    videos = TestSequences(PreparedSplit(root, "test"), num_videos, length=context + horizon)
    truth = torch.stack([videos[i] for i in range(len(videos))])  # uint8 [N,T,H,W,C]
    inputs = to_model_input(truth[:, :context]).to(device)
    generator = sampling_generator(seed)  # the same samples on every device
    with torch.no_grad():
        predicted = model.predict(inputs, horizon, num_samples=1, generator=generator)[:, 0]
    predicted = to_uint8_frames(predicted.cpu())  # [N,horizon,H,W,C]
    panel = side_by_side(truth.numpy(), np.concatenate([truth[:, :context].numpy(), predicted.numpy()], 1), context)
    if out.suffix.lower() == ".gif":
        write_gif(out, panel, fps)
    else:
        from vidbench.data.video import write_video

        write_video(out, panel, fps=fps)
    return out


def side_by_side(truth: np.ndarray, shown: np.ndarray, context: int) -> np.ndarray:
    """uint8 [N,T,H,W,C] twice -> RGB frames [T, N*(H+BAR)-BAR, 2W+BAR, 3]: rows of truth | shown."""
    n, t, h, w, _ = truth.shape
    rgb = lambda v: np.repeat(v, 3, -1) if v.shape[-1] == 1 else v  # noqa: E731
    truth, shown = rgb(truth), rgb(shown)
    frames = np.full((t, n * (h + BAR) - BAR, 2 * w + BAR, 3), 255, np.uint8)
    for row in range(n):
        top = row * (h + BAR)
        frames[:, top : top + h, :w] = truth[row]
        frames[:, top : top + h, w + BAR :] = shown[row]
    frames[:context, :, w : w + BAR] = CONTEXT_COLOUR
    frames[context:, :, w : w + BAR] = PREDICTION_COLOUR
    return frames


def write_gif(path, frames: np.ndarray, fps: float) -> None:
    """RGB uint8 [T,H,W,3] -> looping GIF (Pillow, which matplotlib already depends on)."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    atomic_write_bytes(path, buffer.getvalue())
