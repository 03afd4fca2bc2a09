"""The one slow smoke test: the README's main job (the demo) end to end, at a tiny scale, then again.

prepare -> train (3 models + random-frame) -> evaluate (those, copy-last, the shipped reference) -> analyze
kl -> sample -> page. It starts from the committed leaderboard/, as a fresh clone does.
The rerun must redo nothing and leave every results file byte-identical (everything is resumable).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

COMMITTED = Path(__file__).parents[1] / "leaderboard"


def run_demo(tmp_path, cache):
    env = {**os.environ, "VIDBENCH_CACHE": str(cache), "OMP_NUM_THREADS": "2"}
    args = ["--steps-scale", "0.005", "--num-train", "24", "--out", str(tmp_path / "lb"),
            "--data", str(tmp_path / "data" / "mmnist-demo"), "--runs", str(tmp_path / "runs")]
    return subprocess.run([sys.executable, "-m", "vidbench.demo", *args], capture_output=True, text=True,
                          env=env, timeout=1200, cwd=tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_demo_end_to_end_and_resume(tmp_path, readout_cache):
    # As in a fresh clone: the committed results, made from other checkpoints, are already there.
    # Plus a result of the user's own (README "Your model"): the demo leaves it alone, and so does this test,
    # which checks the demo's own files by name, never the folder's count.
    shutil.copytree(COMMITTED, tmp_path / "lb")
    own = tmp_path / "lb" / "results" / "my-own-model-mmnist-short@1.json"
    mine = json.loads((tmp_path / "lb" / "results" / "copy-last-mmnist-short@1.json").read_text())
    own.write_text(json.dumps({**mine, "model": {**mine["model"], "name": "my-own-model"}}))
    committed = {p.name: p.read_bytes() for p in (tmp_path / "lb" / "results").glob("*.json")}
    first = run_demo(tmp_path, readout_cache)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    names = [f"{m}-mmnist-short@1.json" for m in ("copy-last", "cwvae", "cwvae-reference", "notmpabs",
                                                   "random-frame", "rssm")]
    results = [tmp_path / "lb" / "results" / name for name in names]
    assert all(p.exists() for p in results)
    assert any(p.read_bytes() != committed.get(p.name) for p in results)  # regenerated, not kept
    assert own.read_bytes() == committed[own.name]  # the user's file untouched
    for path in results:
        data = json.loads(path.read_text())
        assert data["protocol"]["name"] == "mmnist-short@1"
        assert 0 <= data["summary"]["ssim"] <= 1 and data["summary"]["psnr"] > 0
        assert "readout_accuracy" in data["summary"]
    page = (tmp_path / "lb" / "index.html").read_text()
    assert "cwvae" in page and "CW-VAE (paper, cwvae convention)" in page
    assert "Shipped checkpoints</b>: cwvae-reference" in page  # the shipped row says what it is
    for name in ("cwvae", "cwvae-reference"):
        assert (tmp_path / "lb" / "samples" / f"{name}.gif").stat().st_size > 0
        assert (tmp_path / "lb" / "analysis" / f"kl-{name}.json").exists()
    if "lpips" in json.loads(results[0].read_text()).get("unavailable", {}):  # no weights here: said, not faked
        assert "skipped lpips: alexnet-owt-7be5be79.pth not found" in first.stdout

    before = {p.name: p.read_bytes() for p in results}
    second = run_demo(tmp_path, readout_cache)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "already prepared and verified" in second.stdout
    assert "(preset demo, 2,534,033 parameters) from scratch" in first.stdout  # cwvae's size, said up front
    assert "cwvae: already trained (2 steps)" in second.stdout and "trained in" not in second.stdout
    after = {p.name: p.read_bytes() for p in results}
    strip = lambda blob: {k: v for k, v in json.loads(blob).items() if k != "run"}  # noqa: E731  wall time etc.
    assert {k: strip(v) for k, v in after.items()} == {k: strip(v) for k, v in before.items()}
