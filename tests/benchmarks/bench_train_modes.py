"""CW-VAE mmnist training step per `vidbench train` mode, A/B alternating in one process: ratios only.

The step is vidbench.train.step_function(model, **options), what the loop and ../shared/perf/ time; batch
4 x 100 frames, 2 threads (the issue-11 anchor: the authors' TF 2.15 step is 1.007 s on a quiet 2-core EPYC,
REFERENCE.md section 6; run ../shared/perf/bench_step.sh for the side-by-side). Modes are timed one step at a
time in turn, so a busy machine slows all of them alike; the printed ratios are default / mode. --compile
is left out unless VIDBENCH_BENCH_COMPILE=1 (compiling the 300-step unrolled recurrence takes minutes on 2
cores).

Profile of one default fp32 step (torch.profiler, self CPU time, OMP_WAIT_POLICY=PASSIVE, measured on a
shared 2-core machine at load ~6, so shares not seconds; 47.6k aten calls):
    convolution_backward 39%, mkldnn_convolution (encoder + last decoder layer) 15%, _convolution self
    (the two generic transposed convs of the decoder) 11%  -> convolutions ~65%
    mm 13% + addmm 5% (1475 + 738 calls: the 3-level recurrence's GRU and dense layers, forward + backward)
    copy_ 4.5% (1818 calls: layout conversions between NCHW and channels-last, stacks)
    leaky_relu forward + backward 4.4%, Adam's elementwise ops ~1.5%
With --channels-last (every conv weight channels-last, so oneDNN runs forward and both backward convs
channels-last with no layout conversions): convolution_backward 38%, mkldnn_convolution 12%, _convolution
11%, mm + addmm 20%, leaky_relu 7.8%, copy_ 1.7% (the conversions are gone).
Measured A/B on the shared machine (same process, alternating): default / --channels-last = 1.18 (5 rounds,
load ~5) and 0.96 (4 rounds, load ~4): within the machine's noise, to be settled by bench_step.sh on a quiet
machine. bf16 autocast on this CPU: default / bf16 = 0.29 (NCHW bf16 convolutions are slow in oneDNN here)
and default / (bf16 + channels-last) = 0.89: bf16 is not a CPU speed-up on this machine without more work.
Channels-last input for the decoder's transposed convs alone (weights NCHW): 1.00 (not kept). What remains:
convolutions dominate (the fp32 floor of ~0.6 s is mostly them); the recurrence's ~2.2k small matmuls are
~20% and are what --compile (or CUDA graphs on a GPU) can fuse.

    pytest -s -o addopts="" tests/benchmarks/bench_train_modes.py
"""

from __future__ import annotations

import os
import statistics
import time

import torch

from vidbench.models import create_model
from vidbench.train import step_function

BATCH, FRAMES, THREADS, ROUNDS = 4, 100, 2, 4
MODES = {"default": {}, "channels-last": {"channels_last": True}, "bf16": {"amp": "bf16"},
         "bf16 + channels-last": {"amp": "bf16", "channels_last": True}}
if os.environ.get("VIDBENCH_BENCH_COMPILE") == "1":
    MODES["compile"] = {"compile": True}


def test_training_step_per_mode_ratios():
    torch.set_num_threads(THREADS)
    video = torch.rand(BATCH, FRAMES, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    steps = {}
    for name, options in MODES.items():
        torch.manual_seed(0)
        steps[name] = step_function(create_model("cwvae", "mmnist").train(), **options)
        steps[name](video)  # warm-up (and compile)
    times = {name: [] for name in MODES}
    for _ in range(ROUNDS):
        for name, step in steps.items():
            start = time.perf_counter()
            step(video)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["default"])
    print(f"\nCW-VAE mmnist step, batch {BATCH} x {FRAMES}, {THREADS} threads, {ROUNDS} alternating rounds "
          f"(load {os.getloadavg()[0]:.1f}):")
    for name, values in times.items():
        print(f"  {name:22s} median {statistics.median(values):6.2f} s   default / mode {base / statistics.median(values):5.2f}")
    assert all(len(v) == ROUNDS for v in times.values())
