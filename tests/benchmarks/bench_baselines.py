"""Baselines' training speed and size: SVG-LP and VTA per preset, against CW-VAE measured in the same run.

One training step = loss forward + backward + (clip) + Adam, batch 4 x 100 frames of 64x64 (the paper's
training sequence length), 2 CPU threads. Prints parameters for every preset, and the median step time
for each distinct architecture (presets that differ only in name share one timing); CW-VAE (mmnist preset)
is the in-run reference, where its model is available. REFERENCE.md section 6 for the authors' TF figure.

Issue 11 restructurings (same loss and gradients within fp32 rounding, tests in test_svg.py / test_vta.py),
measured A/B alternating in one process (mmnist presets, 4 x 100, loss forward + backward, 2 rounds, load ~2
on a shared 2-core machine): SVG's teacher-forced LSTMs as one LSTM call each, old / new = 1.14; VTA
encoding each frame once (360 instead of 480 frames, BatchNorm statistics weighted), old / new = 1.02 (the
saved convolutions are mostly spent again on the weighted BatchNorm's unfused elementwise ops and VTA's
per-step recurrences dominate). Not done: SVG's frozen-skip half of the decoder convolutions computed once
per video.

Measured 2026-11-26 (quiet 2-core EPYC, the real training step with its CPU defaults: channels-last, kept
freed memory, fused Adam): cwvae 0.80 s/step, svg 4.53 s (5.67x), vta 2.88 s (3.60x); issue 11's goals
(SVG <= 4x, VTA <= 2.5x a CW-VAE step) are not met, and CW-VAE's own speed-ups widened the ratios. SVG's
step is its DCGAN decoder's k4 s2 transposed convolutions (1024->256 on 4x4, 512->128 on 8x8, 256->64 on
16x16: convolution_backward 2.47 s of 4.16 s profiled, forward 0.82 s; ~737 GFLOP a step at ~160 GFLOP/s);
their conv + pixel-shuffle form is slower for them (e.g. 1024->256: 351 / 795 ms vs 296 / 577 native).

    pytest -s -o addopts="" tests/benchmarks/bench_baselines.py
"""

from __future__ import annotations

import statistics
import time

import torch

from vidbench.errors import VidbenchError
from vidbench.models import create_model
from vidbench.registry import MODELS
from vidbench.train import step_function

BATCH, FRAMES, THREADS, TIMED_STEPS = 4, 100, 2, 2


def step_seconds(model, video: torch.Tensor) -> float:
    """Median wall time of TIMED_STEPS training steps after one warm-up step: the step `vidbench train` runs
    (vidbench.train.step_function: the family's optimiser and clip, channels-last on CPU)."""
    step = step_function(model)
    times = []
    for i in range(1 + TIMED_STEPS):
        start = time.perf_counter()
        step(video)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def video_for(model) -> torch.Tensor:
    return torch.rand(BATCH, FRAMES, model.config["channels"], 64, 64, generator=torch.Generator().manual_seed(0))


def test_baseline_step_time_and_parameters():
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        torch.manual_seed(0)
        try:
            reference = create_model("cwvae", "mmnist")
            ref_seconds = step_seconds(reference, video_for(reference))
            print(f"\nreference cwvae --preset mmnist: {reference.num_parameters():,} parameters, "
                  f"{ref_seconds:.2f} s/step")
        except (VidbenchError, ImportError, AttributeError, KeyError) as e:
            ref_seconds = None
            print(f"\nreference cwvae unavailable ({e}); absolute times only")
        timed: dict[tuple, float] = {}
        for name in ("svg", "vta"):
            for preset in MODELS.get(name).presets:
                if preset == "tiny":
                    continue
                model = create_model(name, preset)
                arch = (name, tuple(sorted((k, str(v)) for k, v in model.config.items() if k not in ("preset", "name"))))
                if arch not in timed:
                    timed[arch] = step_seconds(model, video_for(model))
                seconds = timed[arch]
                ratio = f", {seconds / ref_seconds:.2f}x cwvae" if ref_seconds else ""
                print(f"{name} --preset {preset:7} {model.num_parameters():>11,} parameters  "
                      f"{seconds:6.2f} s/step (batch {BATCH} x {FRAMES} frames, {THREADS} threads){ratio}")
                assert seconds > 0
    finally:
        torch.set_num_threads(threads)
