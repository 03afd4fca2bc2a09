"""I3D frames per second on CPU through I3DFeatures.features: the default memory layout (before issue 14)
vs channels-last 3D (fvd.FAST_LAYOUT, the CPU default after).

RANDOM weights: a SPEED figure only, never a feature or FVD number. The two layouts alternate round by
round, so a machine shared with other jobs slows both alike; each round's time is printed as it ends.
On a shared machine run it with OMP_WAIT_POLICY=PASSIVE (see bench_metrics.py).

    OMP_WAIT_POLICY=PASSIVE PYTHONPATH=. python tests/benchmarks/bench_i3d_layout.py --clips 1 --rounds 2
    pytest -s -o addopts="" tests/benchmarks/bench_i3d_layout.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vidbench.metrics import fvd

LAYOUTS = {"before (contiguous)": torch.contiguous_format, "after (channels_last_3d)": torch.channels_last_3d}


def measure(threads=2, clips=1, frames=16, rounds=2) -> dict[str, list[float]]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    video = torch.rand(clips, frames, 3, 64, 64)
    feats = fvd.I3DFeatures.random_for_speed_test()
    rates: dict[str, list[float]] = {name: [] for name in LAYOUTS}
    for r in range(rounds):
        for name, layout in LAYOUTS.items():
            feats.layout = layout  # the layout of the input I3DFeatures builds
            feats.model = feats.model.to(memory_format=layout)
            start = time.perf_counter()
            feats.features(video)
            rates[name].append(clips * frames / (time.perf_counter() - start))
            print(f"round {r}: {name}: {rates[name][-1]:.2f} frames/s", flush=True)
    return rates


def test_i3d_layout_throughput():
    for name, r in measure().items():
        print(f"{name}: best {max(r):.2f}, median {statistics.median(r):.2f} frames/s (RANDOM weights, speed only)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clips", type=int, default=1)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    for name, r in measure(a.threads, a.clips, a.frames, a.rounds).items():
        print(f"{name}: best {max(r):.2f}, median {statistics.median(r):.2f} frames/s "
              f"({a.clips} x {a.frames} frames 64x64 -> 224x224, {a.threads} threads; RANDOM weights, speed only)")
