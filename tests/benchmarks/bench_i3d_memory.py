"""Peak memory of I3D features against the clip length: one whole-clip pass (before issue 14's chunking)
vs time chunks of at most fvd.MAX_PASS_FRAMES frames (the default after). Each measurement runs in its own
process (peak RSS only grows within one), RANDOM weights, 64x64 frames, 1 thread.

Measured 2026-11-26 (2-core EPYC, the other core busy; chunked figures with the per-chunk resize): whole clip 500 frames 3.29 GB, 964 frames 5.80 GB;
chunked 250 frames 1.65 GB, 500 2.72 GB, 964 3.27 GB (any longer clip: one 576-frame pass's worth).

    PYTHONPATH=. python tests/benchmarks/bench_i3d_memory.py            # or: pytest -s -o addopts="" ...
"""

from __future__ import annotations

import json
import subprocess
import sys

LENGTHS = (250, 500, 964)
WHOLE = 100_000  # a pass limit no clip reaches: the whole clip in one pass


def one(max_pass: int, frames: int) -> dict:
    import resource
    import time

    import torch

    from vidbench.metrics import fvd

    torch.set_num_threads(1)
    fvd.MAX_PASS_FRAMES = max_pass
    feats = fvd.I3DFeatures.random_for_speed_test()
    start = time.perf_counter()
    feats.features(torch.rand(1, frames, 1, 64, 64))
    return {"peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "s": time.perf_counter() - start}


def measure(lengths=LENGTHS) -> dict:
    from vidbench.metrics import fvd

    out = {}
    for name, limit in (("whole clip", WHOLE), (f"chunks <= {fvd.MAX_PASS_FRAMES}", fvd.MAX_PASS_FRAMES)):
        for frames in lengths:
            proc = subprocess.run([sys.executable, __file__, str(limit), str(frames)], capture_output=True, text=True,
                                  check=True)
            out[name, frames] = json.loads(proc.stdout.splitlines()[-1])
            print(f"{name:>16} {frames:5d} frames: peak RSS {out[name, frames]['peak_gb']:.2f} GB, "
                  f"{out[name, frames]['s']:.0f} s", flush=True)
    return out


def test_print_i3d_memory_against_clip_length():
    measure()


if __name__ == "__main__":
    if len(sys.argv) == 3:
        print(json.dumps(one(int(sys.argv[1]), int(sys.argv[2]))))
    else:
        measure()
