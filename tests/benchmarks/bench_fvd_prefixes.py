"""I3D work of FVD over growing prefixes: every prefix through its own pass (before) against one shared pass
per residue class plus short tails (InceptionI3d.prefix_logits, the default), on one clip, in one run.

The paper's protocols score FVD over prefixes 16, 32, 64 ... and the whole horizon, so the separate passes
read the horizon about twice over. RANDOM weights (speed only), 64x64 grey frames resized to 224, 2 threads.

Measured 2026-11-26 on the 2-core EPYC, nothing else running: mmnist@1's prefixes (horizon 964): separate
passes 1,972 frames in 75.3 s (26.2 frames/s), shared 1,460 frames in 53.1 s: 1.42x, features equal to
2.5e-10 relative (random weights; tests/test_fvd.py checks equality on a network with live activations).
With freed memory kept (vidbench/cpu_memory.py, later that day): separate 57.4 s (34.3 frames/s), shared
38.6 s (1.49x): the prefixes of one clip went from 75.3 s to 38.6 s in all.
The nox bench session runs a 244-frame horizon to stay short (BENCH_FVD_HORIZON).

    PYTHONPATH=. python tests/benchmarks/bench_fvd_prefixes.py [horizon]   # or: pytest -s -o addopts="" ...
"""

from __future__ import annotations

import sys
import time

import torch

from vidbench.evaluate.protocols import doubling_prefixes
from vidbench.metrics import fvd, i3d


def measure(horizon: int = 964) -> dict:
    torch.set_num_threads(2)
    feats = fvd.I3DFeatures.random_for_speed_test()
    lengths = list(doubling_prefixes(horizon))
    video = torch.rand(1, horizon, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    separate = torch.stack([feats.features(video[:, :n]) for n in lengths], 1)
    separate_s = time.perf_counter() - start
    start = time.perf_counter()
    shared = feats.prefix_features(video, lengths)
    shared_s = time.perf_counter() - start
    return {"lengths": lengths, "separate_frames": sum(lengths), "separate_s": separate_s,
            "shared_frames": i3d.prefix_pass_frames(lengths), "shared_s": shared_s,
            "relative_difference": float((shared - separate).norm() / separate.norm())}


def report(r: dict) -> None:
    print(f"prefixes {r['lengths']}")
    print(f"separate passes: {r['separate_frames']:,} frames in {r['separate_s']:.1f} s "
          f"({r['separate_frames'] / r['separate_s']:.1f} frames/s)")
    print(f"shared pass:     {r['shared_frames']:,} frames in {r['shared_s']:.1f} s -> "
          f"{r['separate_s'] / r['shared_s']:.2f}x; features differ by {r['relative_difference']:.1e} relative")


def test_prefix_sharing_speed():
    report(measure(int(__import__("os").environ.get("BENCH_FVD_HORIZON", "244"))))


if __name__ == "__main__":
    report(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 964))
