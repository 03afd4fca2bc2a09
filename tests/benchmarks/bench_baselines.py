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
per-step recurrences dominate). SVG's decoder skip halves (DCGANDecoder.skip_terms): each up-block's
transposed conv of [input, skip] is split into its input half and its skip half, and the skip half runs once
per skip frame (36 per video at the mmnist preset's 36 context frames, instead of 99), its gradient summed
over the frames that share it; old / new = 1.39-1.46 (A/B in one process, mmnist, 4 x 100, the whole training
step; 5.76 / 3.95 s and 4.97 / 3.59 s). Then the last layer (64 -> 1 channels) through fast_layers.py's
conv_transpose_stride2 on CPU: forward 74.5 ms natively, and its native backward took 143 ms with the
1-channel gradient in the default layout (14.9 ms as the Function passes it): old / new = 1.48 (4.76 / 3.23 s).

Measured 2026-11-26 (quiet 2-core EPYC, the real training step with its CPU defaults: channels-last, kept
freed memory, fused Adam): cwvae 0.80 s/step, svg 4.53 s (5.67x), vta 2.88 s (3.60x); issue 11's goals
(SVG <= 4x, VTA <= 2.5x a CW-VAE step) are not met, and CW-VAE's own speed-ups widened the ratios. SVG's
step is its DCGAN decoder's k4 s2 transposed convolutions (1024->256 on 4x4, 512->128 on 8x8, 256->64 on
16x16: convolution_backward 2.47 s of 4.16 s profiled, forward 0.82 s; ~737 GFLOP a step at ~160 GFLOP/s);
their conv + pixel-shuffle form is slower for them (e.g. 1024->256: 351 / 795 ms vs 296 / 577 native).

Then (same day, a noisier hour: the CW-VAE step 0.92 s here, the authors' TF step 1.10 s in bench_step.sh
against 0.84 s before), with the skip halves and CW-VAE's hand-written backward through time: svg 4.06 s
(4.40x; another run 3.80 s, 4.12x), vta 3.39 s (3.67x; 3.37, 3.66x). SVG is now FLOP-bound like CW-VAE: ~500
GFLOP a step (six ~33.5 M-MAC convolutions per frame, forward and two backward passes, 400 frames) at ~140
GFLOP/s against CW-VAE's 102 GFLOP at ~130, so its FLOP ratio (~4.9x) bounds the wall-clock ratio; <= 4x
needs fewer FLOPs than the architecture has. VTA's step is a third elementwise work: its ELU forward is
compute-bound on expm1 (257 ms on a 360 x 128 x 32 x 32 tensor against 53 for ReLU; an exp-based form,
max(x, exp(min(x, 0)) - 1), is 185 ms but differs from torch's ELU by up to 6e-8 absolute), and all of VTA's
elementwise work together (~1.1 s) is less than the 1.4 s that 2.5x would need to cut.

Session 5 (warm-up now until the heap stops growing, load ~1.4): cwvae 0.73 s, svg 3.47 s (4.76x), vta 3.01 s
(4.13x). SVG's up-blocks add their biases apart (fast_layers.conv_transpose_bias_apart: 3.24 -> 3.13 s A/B) and
the shared skip's gradient is written in its own layout (78 -> 12 ms); per-op times without the profiler: its
convolutions are ~2.9 s of the step at ~205 GFLOP/s, this CPU's fp32 peak, so the ratio tracks the FLOP
ratio, and each CW-VAE speed-up widens it. VTA's ELU forwards are 0.53 s of its step (expm1-bound).

Session 6 (fast_layers.py; tests/benchmarks/bench_fast_layers.py times each layer against torch's): VTA's
ELU as max(x, exp(min(x, 0)) - 1) (the 185 ms above had been measured without the kept heap, whose page
faults hid the gain: 205 -> 49 ms forward with it), its weighted BatchNorm as one autograd node with torch's
fused kernels, and the 1x1 layers of all three models as matmuls. In-process A/B: VTA 2.74 -> 2.30 -> 2.18 s,
SVG 3.07 -> 3.01 s, CW-VAE 0.698 -> 0.679 s. This file, load ~1.2: cwvae 0.68 s, svg 3.03 s (4.44x), vta
2.18 s (3.20x). Both are now at their convolution floors: SVG's convolutions are ~576 GFLOP a step (encoder
41 GMAC forward over 400 frames, decoder 41 over 396, skip halves 15 over 144; backward twice that) at ~215
GFLOP/s = 2.7 s; VTA's are 1.76 s of its 2.18 (~215 GFLOP/s), above the 1.70 s that 2.5x a CW-VAE step
allows. Neither goal can be met without fewer FLOPs than the architectures have.

    pytest -s -o addopts="" tests/benchmarks/bench_baselines.py
"""

from __future__ import annotations

import resource
import statistics
import time

import torch

from vidbench.errors import VidbenchError
from vidbench.models import create_model
from vidbench.registry import MODELS
from vidbench.train import step_function

BATCH, FRAMES, THREADS, TIMED_STEPS = 4, 100, 2, 2
MAX_WARMUP_STEPS, WARM_FAULTS = 6, 1000


def minor_page_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def step_seconds(model, video: torch.Tensor) -> float:
    """Median wall time of TIMED_STEPS training steps (the step `vidbench train` runs: the family's optimiser
    and clip, channels-last on CPU) once warm: warm-up steps until one page-faults fewer than WARM_FAULTS
    times. With freed memory kept (vidbench/cpu_memory.py) the heap still grows for 3-4 steps while its free
    blocks fragment (SVG: 12-26 thousand faults a step, then 0); at ~5 us a fault on the development VM, two
    steps timed after one warm-up had read 0.1-0.4 s slow."""
    step = step_function(model)
    for _ in range(MAX_WARMUP_STEPS):
        before = minor_page_faults()
        step(video)
        if minor_page_faults() - before < WARM_FAULTS:
            break
    times = []
    for _ in range(TIMED_STEPS):
        start = time.perf_counter()
        step(video)
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
