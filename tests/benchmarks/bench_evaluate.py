"""Evaluation memory and time against the horizon: peak RSS at horizon 1000 vs 100 (same videos), and time.

    pytest -q -s tests/benchmarks/bench_evaluate.py

Each configuration runs `vidbench.evaluate.evaluate` (copy-last, SSIM + PSNR, a fresh run folder) in its own
subprocess, which reports its peak RSS (VmHWM; importing torch alone is ~0.5 GB of it), the growth over
the RSS after imports, and the seconds spent inside evaluate(). The store is a
real prepared store of 64x64x1 videos of 1036 frames. Targets (issue 6): RSS(1000) <= 1.3 x RSS(100), and
time linear in the horizon (ratio ~10). With --batch-size B the model's own float output [B,S,horizon,C,H,W]
(the predict() interface returns the whole horizon at once) adds B x 16 MB at horizon 1000; the engine's
own buffers are chunked in time. Prints figures only; never asserts on time or memory.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from vidbench.data.store import DatasetWriter

VIDEOS, LENGTH, CONTEXT = 4, 1036, 36

CHILD = """
import json, sys, time
from vidbench.evaluate import evaluate
from vidbench.evaluate.protocols import Protocol

def status(key):  # MB; VmHWM is per process image, unlike ru_maxrss, which Linux carries over fork + exec
    return int(open("/proc/self/status").read().split(key + ":")[1].split()[0]) / 1024

store, run = sys.argv[1], sys.argv[2]
context, horizon, videos, batch = (int(a) for a in sys.argv[3:])
protocol = Protocol("bench@1", "mmnist", context, horizon, videos, metrics=("ssim", "psnr"))
base = status("VmRSS")
start = time.perf_counter()
evaluate(store, model="copy-last", protocol=protocol, batch_size=batch, out=run + "/results.json", device="cpu")
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rss_mb": status("VmHWM"), "base_mb": base}))
"""


@pytest.fixture(scope="module")
def long_store(tmp_path_factory):
    """Moving stripes plus noise, 64x64x1, VIDEOS x LENGTH frames, in the prepared-store format."""
    root = tmp_path_factory.mktemp("bench_eval") / "mmnist"
    writer = DatasetWriter(root, dataset="mmnist", source={"kind": "benchmark"}, params={})
    t, y, x = np.meshgrid(np.arange(LENGTH), np.arange(64), np.arange(64), indexing="ij")
    for v in range(VIDEOS):
        base = 128 + 100 * np.sin((x + (2 + v) * t) / 7.0) * np.cos((y - t) / 9.0)
        noise = np.random.default_rng(v).normal(0, 8, base.shape)
        writer.split("test").add(np.clip(base + noise, 0, 255).astype(np.uint8)[..., None])
    writer.commit()
    return root


def run_child(store, horizon: int, batch: int, run_dir) -> dict:
    args = [str(store), str(run_dir), str(CONTEXT), str(horizon), str(VIDEOS), str(batch)]
    done = subprocess.run([sys.executable, "-c", CHILD, *args],
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("batch", [1, 4])
def test_memory_flat_and_time_linear_in_horizon(long_store, tmp_path, batch):
    runs = {h: run_child(long_store, h, batch, tmp_path / f"h{h}") for h in (100, 500, 1000)}
    print(f"\nevaluate copy-last, ssim+psnr, {VIDEOS} videos 64x64x1, batch {batch}:")
    for horizon, r in runs.items():
        print(f"  horizon {horizon:5}: peak RSS {r['rss_mb']:7.1f} MB (+{r['rss_mb'] - r['base_mb']:6.1f} MB over "
              f"imports), {r['seconds']:7.2f} s, {VIDEOS * horizon / r['seconds']:7.0f} frames/s")
    short, long = runs[100], runs[1000]
    print(f"  memory ratio h1000/h100: {long['rss_mb'] / short['rss_mb']:.2f}x (target <= 1.3x); growth over "
          f"imports {long['rss_mb'] - long['base_mb']:.0f} vs {short['rss_mb'] - short['base_mb']:.0f} MB")
    # Linear time: the marginal cost per frame is the same over both stretches (fixed costs cancel out).
    first = (runs[500]["seconds"] - short["seconds"]) / (400 * VIDEOS)
    second = (long["seconds"] - runs[500]["seconds"]) / (500 * VIDEOS)
    print(f"  time ratio h1000/h100: {long['seconds'] / short['seconds']:.2f}x; marginal ms/frame "
          f"h100->500 {1000 * first:.3f}, h500->1000 {1000 * second:.3f} (linear: equal)")
