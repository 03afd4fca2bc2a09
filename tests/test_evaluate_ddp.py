"""`torchrun --nproc_per_node 2 -m vidbench.cli evaluate ...` (2 gloo processes on CPU) against one process.

Batches are fixed by --batch-size and go to ranks round-robin, so both runs score the same videos with the
same seeds; sums reduced across ranks differ from one process's running sums only by float rounding, while
per-video values (summaries, CIs) are gathered and come out bitwise equal.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vidbench.evaluate import evaluate

TORCHRUN = Path(sys.executable).with_name("torchrun")
ARGS = ["--model", "copy-last", "--protocol", "mmnist-short@1", "--horizon", "48", "--num-videos", "4",
        "--metrics", "ssim,psnr", "--batch-size", "1", "--device", "cpu"]


@pytest.mark.skipif(not TORCHRUN.exists() and shutil.which("torchrun") is None, reason="torchrun not installed")
def test_two_gloo_ranks_equal_one_process(tiny_mmnist, tmp_path):
    out = tmp_path / "ddp.json"
    command = [str(TORCHRUN if TORCHRUN.exists() else shutil.which("torchrun")), "--standalone", "--nproc_per_node", "2",
               "-m", "vidbench.cli", "evaluate", "--dataset", str(tiny_mmnist), *ARGS, "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    ddp = json.loads(out.read_text())
    assert ddp["run"]["world_size"] == 2
    assert done.stdout.count("ssim ") == 1  # only rank 0 prints the summary

    single = evaluate(tiny_mmnist, model="copy-last", protocol="mmnist-short@1", horizon=12, num_videos=4,
                      metrics=["ssim", "psnr"], batch_size=1, device="cpu", out=tmp_path / "single.json")
    assert single["run"]["world_size"] == 1
    assert ddp["summary"] == single["summary"] and ddp["ci"] == single["ci"]
    for name in ("ssim", "psnr"):
        for stat in ("mean", "std"):
            # float64 sums of the same per-video values, added rank by rank then all-reduced: regrouped additions,
            # ~1e-16 relative (measured 4e-14 on the std, whose E[x^2] - E[x]^2 cancels).
            np.testing.assert_allclose(ddp["per_timestep"][name][stat], single["per_timestep"][name][stat],
                                       rtol=1e-12, atol=1e-12)
    drop = ("per_timestep", "run")
    assert {k: v for k, v in ddp.items() if k not in drop} == {k: v for k, v in single.items() if k not in drop}
    # Each rank cached its own batches into the shared run folder: videos 0, 2 (rank 0) and 1, 3 (rank 1).
    assert sorted(p.name for p in (tmp_path / "ddp.run").glob("batch-*.npz")) == [f"batch-0000{i}.npz" for i in range(4)]
