"""torch Datasets over a prepared split: random training windows and whole test sequences.

Items are uint8 tensors [T,H,W,C] (cheap to move between DataLoader workers); `to_model_input` turns a
batch into the float [B,T,C,H,W] in [0,1] that every model takes (uint8 / 255, no centering, as the
authors' code does).
"""

from __future__ import annotations

import numpy as np
import torch

from vidbench.data.store import PreparedSplit
from vidbench.errors import VidbenchError


def window_starts(video_length: int, length: int) -> range:
    """First frames of the non-overlapping windows of `length` frames the authors' loader cuts from a video:
    from frame 0, the last partial window dropped (500 frames -> 5 windows of 100, 300 -> 3, 100 -> 1)."""
    return range(0, video_length - length + 1, length)


class TrainWindows(torch.utils.data.Dataset):
    """Every non-overlapping window of `length` frames of every training sequence, from frame 0 (the last
    partial one dropped): one epoch is one pass over them, as in the authors' loader (data_loader.py
    `_process_seq`: reshape each video to [L // length, length, ...], then repeat per epoch). Item i is
    window `starts[i]` of sequence `indices[i]`; the order of items within an epoch is the trainer's
    (seeded by seed and epoch). set_epoch() is kept for callers; the windows are the same every epoch.
    """

    def __init__(self, split: PreparedSplit, length: int = 100, seed: int = 0):
        self.split = split
        self.length = length
        self.seed = seed
        self.epoch = 0
        pairs = [(i, s) for i in range(len(split)) for s in window_starts(split.length(i), length)]
        self.indices = [i for i, _ in pairs]
        self.starts = [s for _, s in pairs]
        if not self.indices:
            raise VidbenchError(
                f"{split.root}: no {split.split} sequence has {length} frames (longest: "
                f"{split.info['max_length']}); use a shorter --seq-len"
            )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> torch.Tensor:
        index, start = self.indices[i], self.starts[i]
        return torch.from_numpy(np.array(self.split.sequence(index)[start : start + self.length]))


class TestSequences(torch.utils.data.Dataset):
    """The first `num_videos` sequences in file order, each cut to its first `length` frames when given.
    The authors' eval also takes "the first 100", but in TFDS's order (its builder's hashed example keys),
    which vidbench cannot reproduce: the same count, not the same videos (vidbench.evaluate.protocols)."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, split: PreparedSplit, num_videos: int | None = None, length: int | None = None):
        self.split = split
        self.length = length
        count = len(split) if num_videos is None else num_videos
        if count > len(split):
            raise VidbenchError(f"--num-videos {count}: the {split.split} split of {split.root} has {len(split)} "
                                f"sequences")
        self.indices = list(range(count))
        if length is not None:
            short = [i for i in self.indices if split.length(i) < length]
            if short:
                raise VidbenchError(
                    f"{split.root}: {len(short)} {split.split} videos are shorter than {length} frames "
                    f"(first: #{short[0]} with {split.length(short[0])})"
                )

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> torch.Tensor:
        video = self.split.sequence(self.indices[i])
        return torch.from_numpy(np.array(video if self.length is None else video[: self.length]))


def collate_windows(items: list[torch.Tensor]) -> torch.Tensor:
    """DataLoader collate for uint8 windows: numpy's stack into the batch tensor, in shared memory inside a
    worker (as default_collate does, so the batch reaches the main process without another copy).
    torch.stack of uint8 [T,H,W,1] items takes a slow strided path: ~10x slower at batch 50 x 100 frames,
    ~160 ms per batch against ~15 ms here on 2 cores (bench_loader.py)."""
    out = torch.empty((len(items), *items[0].shape), dtype=items[0].dtype)
    if torch.utils.data.get_worker_info() is not None:
        out.share_memory_()
    np.stack([item.numpy() for item in items], out=out.numpy())
    return out


def to_model_input(batch: torch.Tensor) -> torch.Tensor:
    """uint8 [B,T,H,W,C] -> float32 [B,T,C,H,W] in [0,1]."""
    return batch.permute(0, 1, 4, 2, 3).float().div_(255.0)


def to_uint8_frames(video: torch.Tensor) -> torch.Tensor:
    """float [...,C,H,W] in [0,1] -> uint8 [...,H,W,C], rounded (the inverse of to_model_input)."""
    return video.clamp(0, 1).mul(255).round().to(torch.uint8).movedim(-3, -1)
