"""vidbench/models/fast_layers.py against torch's own layers, forward + backward at the shapes the models train
with (batch 4 x 100 frames, channels-last, 2 threads, freed memory kept as in CPU training).

    nox -s bench -- -k fast_layers          # or: pytest -s -o addopts="" tests/benchmarks/bench_fast_layers.py

Prints each layer's torch time, the fast form's, and their ratio (the reference is torch's layer, timed in the
same run); never asserts on time. Measured on the 2-core development machine (session 6): VTA's ELU 237 ->
84 ms (2.8x), its weighted BatchNorm (a graph of elementwise ops -> one node) 239 -> 100 ms (2.4x), CW-VAE's
last encoder conv (2x2 output) 44 -> 34 ms (1.3x), SVG's last encoder conv (1x1 output) 53 -> 19 ms and first
decoder layer (1x1 input) 60 -> 20 ms, VTA's first decoder layer 9.3 -> 3.4 ms. Whole training steps,
in-process A/B: VTA 2.74 -> 2.30 s (ELU), 2.31 -> 2.18 s (BatchNorm), SVG 3.07 -> 3.01 s and CW-VAE 0.698 ->
0.679 s (the matmul convs).
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

from vidbench.cpu_memory import keep_freed_memory
from vidbench.models.fast_layers import ELU, PixelConvTranspose2d, SmallOutputConv2d, weighted_batch_norm

CL = torch.channels_last


def fwd_bwd_ms(fn, x: torch.Tensor, repeats: int = 5) -> float:
    """Median wall time of fn(x) and its backward against a fixed random gradient."""
    grad = torch.randn_like(fn(x))
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        fn(x).backward(grad)
        if i:  # the first one warms up
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def report(name: str, torch_fn, fast_fn, x: torch.Tensor) -> None:
    slow, fast = fwd_bwd_ms(torch_fn, x), fwd_bwd_ms(fast_fn, x)
    print(f"{name:54} torch {slow:7.1f} ms   fast {fast:7.1f} ms   {slow / fast:5.2f}x")


def test_fast_layers_against_torch():
    keep_freed_memory()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    print(f"\n[fast layers bench] torch {torch.__version__}, {torch.get_num_threads()} threads, forward + backward")

    act = torch.randn(360, 128, 32, 32).contiguous(memory_format=CL).requires_grad_()
    report("VTA ELU, 360 x 128 x 32 x 32", F.elu, ELU(), act)

    bn, counts = nn.BatchNorm2d(128), torch.randint(1, 4, (360,))

    def composed(x):  # the weighted statistics as a graph of elementwise ops (vidbench before session 6)
        w = counts.to(x.dtype)[:, None]
        n = float(counts.sum()) * x.shape[2] * x.shape[3]
        centred = x - ((x.sum((2, 3)) * w).sum(0) / n)[:, None, None]
        var = ((centred * centred).sum((2, 3)) * w).sum(0) / n
        return centred * (bn.weight * torch.rsqrt(var + bn.eps))[:, None, None] + bn.bias[:, None, None]

    report("VTA weighted BatchNorm, 360 x 128 x 32 x 32", composed, lambda x: weighted_batch_norm(x, bn, counts), act)

    for name, (cin, cout, stride, size, frames) in {
        "CW-VAE last encoder conv 128 -> 256 k4 s2, 6x6 -> 2x2": (128, 256, 2, 6, 400),
        "SVG last encoder conv 512 -> 128 k4, 4x4 -> 1x1": (512, 128, 1, 4, 400),
    }.items():
        conv = SmallOutputConv2d(cin, cout, 4, stride).to(memory_format=CL)
        x = torch.randn(frames, cin, size, size).contiguous(memory_format=CL).requires_grad_()
        report(name, lambda x, conv=conv: nn.Conv2d.forward(conv, x), conv, x)

    for name, (cin, cout, frames) in {
        "SVG first decoder layer 128 -> 512 k4, 1x1 -> 4x4": (128, 512, 396),
        "VTA first decoder layer 128 -> 128 k4, 1x1 -> 4x4": (128, 128, 320),
    }.items():
        deconv = PixelConvTranspose2d(cin, cout, 4).to(memory_format=CL)
        x = torch.randn(frames, cin, 1, 1).requires_grad_()
        report(name, lambda x, deconv=deconv: nn.ConvTranspose2d.forward(deconv, x), deconv, x)
