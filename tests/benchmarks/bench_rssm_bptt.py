"""CW-VAE's posterior recurrence: hand-written backward through time (the default) against autograd's loop.

The training step of the mmnist preset (batch 4 x 100 frames, 2 threads), timed one step at a time in turn
for each path in one process; prints the median seconds, the ratio autograd / hand-written, and the matmul
calls per step (what a GPU pays per kernel: the weight gradients become one matmul per layer).

Measured 2026-11-26 (2-core EPYC, a noisy hour: the authors' TF step was 1.10 s then, 0.84 s the day
before): fp32 0.862 -> 0.802 s (1.07x), bf16 autocast 0.616 -> 0.554 s (1.11x); matmul calls per step
2,213 -> 1,517.

    pytest -s -o addopts="" tests/benchmarks/bench_rssm_bptt.py
"""

from __future__ import annotations

import statistics
import time

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from vidbench.models import create_model
from vidbench.models.cwvae import RSSMCell
from vidbench.train import step_function

BATCH, FRAMES, THREADS, ROUNDS = 4, 100, 2, 6
MATMULS = ("aten::mm", "aten::addmm", "aten::bmm")


def matmul_calls(step, video) -> int:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(video)
    return sum(event.count for event in prof.key_averages() if event.key in MATMULS)


@pytest.mark.parametrize("amp", ["none", "bf16"])
def test_hand_written_backward_against_autograd(monkeypatch, amp):
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    step = step_function(create_model("cwvae", "mmnist").train(), amp=amp)
    video = torch.rand(BATCH, FRAMES, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    times, calls = {True: [], False: []}, {}
    for flag in (True, False):
        monkeypatch.setattr(RSSMCell, "hand_written_backward", flag)
        step(video)  # warm-up of each path
        calls[flag] = matmul_calls(step, video)
    for _ in range(ROUNDS):
        for flag in (True, False):
            monkeypatch.setattr(RSSMCell, "hand_written_backward", flag)
            start = time.perf_counter()
            step(video)
            times[flag].append(time.perf_counter() - start)
    hand, auto = statistics.median(times[True]), statistics.median(times[False])
    print(f"\ncwvae mmnist {BATCH} x {FRAMES}, amp {amp}: autograd {auto:.3f} s, hand-written {hand:.3f} s "
          f"({auto / hand:.2f}x); matmul calls per step {calls[False]:,} -> {calls[True]:,}")
    assert calls[True] < calls[False]  # the point of the hand-written backward, whatever the timings
