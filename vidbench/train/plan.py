"""The training plan: how many steps an epoch is, the order of its batches, and each step's RNG seed.

An epoch is the authors' (issue 12): one pass over every non-overlapping --seq-len window of every training video.
The order depends only on (seed, epoch) and the noise only on (seed, step, rank), so a resumed or distributed run
sees what an uninterrupted single-process one sees (vidbench/train/loop.py's docstring).
"""

from __future__ import annotations

import numpy as np


def planned_steps(video_lengths, seq_len: int, batch_size: int, epochs: int) -> tuple[int, int, int]:
    """(windows per epoch, steps per epoch, total steps) of `epochs` epochs, an epoch being one pass over every
    non-overlapping seq_len window of every video (the authors' epoch), the last partial batch of each epoch
    dropped. The authors repeat before batching, so their count is ceil(epochs * windows / batch): at most
    epochs - 1 steps more (minerl: 57,660 vs 57,600)."""
    from vidbench.data.loader import window_starts

    windows = sum(len(window_starts(n, seq_len)) for n in video_lengths)
    return windows, windows // batch_size, epochs * (windows // batch_size)


def plan_line(steps: int, windows: int, videos: int, seq_len: int, batch_size: int) -> str:
    """What training is about to do, printed before the first step."""
    per_epoch = windows // batch_size
    return (f"planned: {steps:,} steps of {batch_size} windows = {steps / per_epoch:g} epochs x {per_epoch:,} steps; "
            f"an epoch is every non-overlapping {seq_len}-frame window of the {videos:,} training videos "
            f"({windows:,} windows)")


def epoch_batches(num_items: int, global_batch: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The global batches of one epoch: a permutation seeded by (seed, epoch), remainder dropped."""
    order = np.random.default_rng([seed, epoch]).permutation(num_items)
    return [order[i * global_batch:(i + 1) * global_batch] for i in range(num_items // global_batch)]


def step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0] >> 1)
