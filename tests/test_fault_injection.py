"""Fault injection: SIGKILL prepare, train, evaluate and export at seeded moments, rerun, and compare with an
uninterrupted run; and two commands on one output, the second started while the first holds it.

Moments are calls of os.fsync (a shard, checkpoint, cache or results file written but not yet renamed)
and os.replace (the rename that publishes it; for prepare the last one is the commit that renames the
finished store into place), counted in an uninterrupted run of the same command (tests/fault_launcher.py
arms the fault; vidbench has no test hooks). After each kill the same command is run again without a
fault, and must give:
- prepare: a store byte-identical to the uninterrupted one, and nothing else beside it;
- train: bit-identical weights and optimizer state at the same step;
- evaluate: a results file equal to the uninterrupted one outside its "run" section;
- export: a weights file with the same tensors and record (issue 26: a killed export's temporary file is removed);
and leave no temporary, lock, .partial or .old file; prepare keeps every shard finished before the kill
(also when the kill hits the commit: the rerun renames the same files into place). The kill matrix
(18 kills, ~3 min on 2 otherwise idle cores) is marked slow and still runs in CI; the lock tests are not.
"""

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import write_glyph_idx

from vidbench.train import train
from vidbench.train.checkpoint import load_checkpoint

LAUNCHER = Path(__file__).parent / "fault_launcher.py"
REPO = Path(__file__).parent.parent
SEED = 13
RANDOM_KILLS = 4  # per command, besides the chosen moments (see MOMENTS)
SURVIVALS = []    # (command, moment) of every kill whose rerun matched; reported by the last test


def launch(args, cwd, fault=None, counts=None, paused=None, wait=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "VB_SHARD_BYTES": "900000"}
    env.pop("VB_FAULT", None)
    if fault:
        env["VB_FAULT"] = fault
    if counts:
        env["VB_COUNTS"] = str(counts)
    if paused:
        env["VB_PAUSED"] = str(paused)
    command = [sys.executable, str(LAUNCHER), *map(str, args)]
    if not wait:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def inputs(tiny_mmnist, tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("faults")
    write_glyph_idx(root / "idx")
    train("cwvae", tiny_mmnist, preset="tiny", steps=2, batch_size=2, seq_len=8, run_dir=root / "model",
          progress=False, echo=lambda line: None)
    return root, tiny_mmnist


def command(name, inputs, out: Path) -> list:
    root, data = inputs
    return {
        # 6 + 3 sequences in shards of 900 kB: 3 train shards of 2 x 100 frames, 3 test shards of 1 x 1000
        "prepare": ["prepare", "mmnist", "--idx-dir", root / "idx", "--num-train", "6", "--num-test", "3",
                    "--out", out],
        "train": ["train", "--model", "cwvae", "--preset", "tiny", "--dataset", data, "--steps", "4",
                  "--batch-size", "2", "--seq-len", "8", "--checkpoint-every", "1", "--num-workers", "0",
                  "--device", "cpu", "--run-dir", out],
        "evaluate": ["evaluate", "--checkpoint", root / "model", "--dataset", data, "--protocol", "mmnist-short@1",
                     "--horizon", "42", "--num-videos", "3", "--batch-size", "1", "--metrics", "ssim,psnr",
                     "--device", "cpu", "--run-dir", out, "--out", out / "results.json"],
        "export": ["export", root / "model", "--out", exported(out), "--note", "fault injection"],
    }[name]


def exported(out: Path) -> Path:
    return out.with_name(out.name + ".pt")


def outcome(name, out: Path):
    """What must equal the uninterrupted run's."""
    if name == "prepare":
        return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    if name == "export":
        state = load_checkpoint(exported(out))
        return state["step"], {**{f"model.{k}": v for k, v in state["model"].items()}, "record": state["record"]}
    if name == "train":
        state = load_checkpoint(out / "checkpoint.pt")
        flat = {f"model.{k}": v for k, v in state["model"].items()}
        flat.update({f"optimizer.{k}": v for k, v in _flatten(state["optimizer"]["state"]).items()})
        return state["step"], flat
    results = json.loads((out / "results.json").read_text())
    results.pop("run")
    return results


def _flatten(tree, prefix=""):
    if isinstance(tree, dict):
        return {k2: v2 for k, v in tree.items() for k2, v2 in _flatten(v, f"{prefix}{k}.").items()}
    return {prefix: tree}


def same(a, b) -> bool:
    if isinstance(a, tuple):
        step_a, flat_a = a
        step_b, flat_b = b
        return step_a == step_b and flat_a.keys() == flat_b.keys() and all(
            torch.equal(flat_a[k], flat_b[k]) if torch.is_tensor(flat_a[k]) else flat_a[k] == flat_b[k] for k in flat_a)
    return a == b


def finished_shards(out: Path) -> dict[str, int]:
    """Inode of each shard of prepare's partial folder that is complete (its .meta.json is written)."""
    partial = out.parent / f".{out.name}.partial"
    return {str(p.relative_to(partial)): p.stat().st_ino for p in partial.glob("*/shard-*.npy")
            if p.with_name(p.name.replace(".npy", ".meta.json")).exists()}


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# The chosen moments of each command: prepare inside its final commit (the rename of the finished store)
# and inside its first shard write (fsync 1 is the partial folder's stamp, 2 the shard's .npy); train
# inside a checkpoint write (the 3rd of 4 checkpoints, written but not renamed); evaluate inside the
# write of the results file (its last fsync); export inside its one write (an fsync and a rename in all, so
# its one random moment is the rename).
MOMENTS = {"prepare": lambda c: [f"replace:{c['replace']}", "fsync:2"], "train": lambda c: [f"fsync:{c['fsync'] - 1}"],
           "evaluate": lambda c: [f"fsync:{c['fsync']}"], "export": lambda c: ["fsync:1"]}
KILLS = 3 * RANDOM_KILLS + 4 + 2  # the random ones and the chosen ones


@pytest.mark.slow
@pytest.mark.parametrize("name", ["prepare", "train", "evaluate", "export"])
def test_kill_at_seeded_moments_and_rerun(inputs, tmp_path, name):
    reference = tmp_path / "reference" / "out"
    reference.parent.mkdir()
    result = launch(command(name, inputs, reference), tmp_path, counts=tmp_path / "counts.json")
    assert result.returncode == 0, result.stderr
    counts = json.loads((tmp_path / "counts.json").read_text())
    expected, expected_files = outcome(name, reference), files(reference.parent)
    chosen = MOMENTS[name](counts)
    pool = [f"{fn}:{n}" for fn in ("fsync", "replace") for n in range(1, counts[fn] + 1)]
    rest = [m for m in pool if m not in chosen]
    moments = chosen + random.Random(f"{SEED}-{name}").sample(rest, min(RANDOM_KILLS, len(rest)))
    for i, moment in enumerate(moments):
        out = tmp_path / f"kill-{i}" / "out"
        out.parent.mkdir()
        killed = launch(command(name, inputs, out), tmp_path, fault=f"{moment}:kill")
        assert killed.returncode == -9, f"{moment}: not killed ({killed.returncode}): {killed.stderr[-500:]}"
        finished = finished_shards(out)
        if moment == chosen[0] and name == "prepare":  # the kill in the commit: all 3 + 3 shards were finished
            assert len(finished) == 6, finished
        rerun = launch(command(name, inputs, out), tmp_path)
        assert rerun.returncode == 0, f"{moment}: {rerun.stderr[-2000:]}"
        assert same(outcome(name, out), expected), f"{name} killed at {moment}: rerun differs"
        if name == "train":  # the log of a resumed run lists each step once, as an uninterrupted one
            assert [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()] == [1, 2, 3, 4]
        assert files(out.parent) == expected_files, f"{name} killed at {moment}: stray files"
        # Shards finished before the kill are kept, not rewritten (the same file, renamed into the store).
        assert {f: (out / f).stat().st_ino for f in finished} == finished, f"{moment}: finished shards redone"
        SURVIVALS.append((name, moment))
    assert len(set(moments)) == len(chosen) + min(RANDOM_KILLS, len(rest))  # distinct moments


@pytest.mark.parametrize("name", ["prepare", "train", "evaluate", "export"])
def test_second_command_on_a_held_output_stops_with_one_line(inputs, tmp_path, name):
    """Issue 13 items 2 and 4: the first command pauses at its first fsync (lock held, files half made);
    a second one on the same output stops at once naming the first's pid; the first then finishes."""
    out = tmp_path / "out"
    paused = tmp_path / "paused"
    first = launch(command(name, inputs, out), tmp_path, fault="fsync:1:pause", paused=paused, wait=False)
    try:
        deadline = time.monotonic() + 120
        while not paused.exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        second = launch(command(name, inputs, out), tmp_path)
        errors = [line for line in second.stderr.splitlines() if line.startswith("error:")]
        assert second.returncode == 1 and len(errors) == 1 and "Traceback" not in second.stderr, second.stderr
        assert f"is in use by another vidbench (pid {first.pid}: vidbench {command(name, inputs, out)[0]}" in errors[0]
    finally:
        paused.unlink(missing_ok=True)
        _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    if name == "prepare":
        assert launch(["verify", out], tmp_path).returncode == 0
    assert not [f for f in files(tmp_path) if f.endswith(".lock") or ".tmp" in f]


@pytest.mark.slow
def test_kill_count_report():
    """Runs after the kill matrix (file order): every kill survived. The count goes in the issue's note."""
    if not SURVIVALS:
        pytest.skip("the kill matrix did not run in this session (-m 'not slow' or -k)")
    print(f"\nfault injection: {len(SURVIVALS)} kills, {len(SURVIVALS)} survivals: "
          + ", ".join(f"{name}@{moment}" for name, moment in SURVIVALS))
    assert len(SURVIVALS) == KILLS
