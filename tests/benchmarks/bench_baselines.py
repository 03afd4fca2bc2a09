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
fused kernels, the 1x1 layers of all three models as matmuls, and SVG's skip half of its last layer in the
parity form. In-process A/B: VTA 2.74 -> 2.30 -> 2.18 s, SVG 3.07 -> 3.01 -> 2.98 s, CW-VAE 0.698 -> 0.679 s.
This file, load ~1.5: cwvae 0.68 s, svg 2.96 s (4.38x), vta 2.24 s (3.32x; 2.18 s, 3.20x in a quieter run).

test_convolution_floors shows why the goals stay out of reach: it counts each model's step FLOPs
(torch.utils.flop_counter: convolutions forward and backward, and matmuls) and divides by the best
convolution throughput this CPU reaches in the same run (SVG's middle encoder convs, forward + backward).
Session 6: cwvae 72 + 28 (matmul) GFLOP, svg 573 + 5, vta 367 + 2; at 227 GFLOP/s SVG's convolutions alone
take 2.52 s (3.7 CW-VAE steps of 0.68 s) and VTA's 1.62 s (2.4 steps). Their remaining work (batch norms,
activations, LSTMs or VTA's recurrences, Adam: ~0.25 s and ~0.4 s, measured per op) puts the floors at
~4.1x and ~3.0x, with every convolution at the best speed any of them reaches.

    pytest -s -o addopts="" tests/benchmarks/bench_baselines.py
"""

from __future__ import annotations

import resource
import statistics
import time

import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from vidbench.cpu_memory import keep_freed_memory
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


def step_flops(model, video: torch.Tensor) -> tuple[float, float]:
    """(convolution, other matmul) FLOPs of one warm training step, forward and backward."""
    step = step_function(model)
    step(video)
    with FlopCounterMode(display=False) as counter:
        step(video)
    counts = counter.get_flop_counts()["Global"]
    conv = sum(n for op, n in counts.items() if "convolution" in str(op))
    return conv, sum(counts.values()) - conv


def convolution_throughput() -> float:
    """This CPU's convolution FLOP/s, forward + backward: the best of 5 runs of SVG's three middle encoder
    convs (64 -> 128 k4 s2 on 32x32, 128 -> 256 on 16x16, 256 -> 512 on 8x8; 400 frames, channels-last),
    counted by the same FLOP counter; freed memory kept as in training."""
    keep_freed_memory()
    best = 0.0
    for cin, size in ((64, 32), (128, 16), (256, 8)):
        x = torch.randn(400, cin, size, size).contiguous(memory_format=torch.channels_last).requires_grad_()
        w = torch.randn(2 * cin, cin, 4, 4).contiguous(memory_format=torch.channels_last).requires_grad_()
        grad = torch.randn(400, 2 * cin, size // 2, size // 2).contiguous(memory_format=torch.channels_last)

        def run(x=x, w=w, grad=grad):
            F.conv2d(x, w, None, 2, 1).backward(grad)

        run()
        with FlopCounterMode(display=False) as counter:
            run()
        for _ in range(5):
            start = time.perf_counter()
            run()
            best = max(best, counter.get_total_flops() / (time.perf_counter() - start))
    return best


def test_convolution_floors():
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        peak = convolution_throughput()
        reference = create_model("cwvae", "mmnist")
        ref_seconds = step_seconds(reference, video_for(reference))
        print(f"\nconvolution throughput (best reference conv, forward + backward): {peak / 1e9:.0f} GFLOP/s; "
              f"cwvae step {ref_seconds:.2f} s (measured here)")
        for name in ("cwvae", "svg", "vta"):
            model = create_model(name, "mmnist")
            conv, other = step_flops(model, video_for(model))
            floor = conv / peak
            print(f"{name:6} {conv / 1e9:6.1f} GFLOP in convolutions a step (+{other / 1e9:.1f} in matmuls): "
                  f"{floor:.2f} s at that throughput = {floor / ref_seconds:.2f} cwvae steps")
            assert conv > 0
    finally:
        torch.set_num_threads(threads)
