"""Issue 13's bad outputs: a read-only output folder (prepare, train, evaluate, leaderboard, sample, analyze)
and a full disk (prepare, train, evaluate, leaderboard, sample) each end in exit 1 and one `error:` line naming the
file or folder, with no final output and no temporary file left.

Both need a real process: the command runs as `python -m vidbench.cli`.
- Read-only: the folder is chmod 555. Root ignores permissions through CAP_DAC_OVERRIDE, so the command
  runs with that capability (and CAP_DAC_READ_SEARCH) dropped from its bounding set: as root it then
  meets the permissions any user does, while still reading its root-owned inputs.
- Full disk: RLIMIT_FSIZE caps every file the command writes (with SIGXFSZ ignored, a write past it fails
  with EFBIG, as one on a full disk fails with ENOSPC): the same short write, at a size chosen so the
  small files of the command (lock, config) fit and its main output does not.
"""

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from conftest import write_glyph_idx

import vidbench
from vidbench.evaluate import evaluate
from vidbench.train import train

REPO = Path(vidbench.__file__).parent.parent
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2  # linux/prctl.h, linux/capability.h


def run_cli(args, cwd: Path, *, obey_permissions=False, file_limit=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "HOME": str(cwd),
           "MPLCONFIGDIR": str(cwd / "mpl"), "PYTHONDONTWRITEBYTECODE": "1"}

    def setup():
        if file_limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))
        if obey_permissions and os.geteuid() == 0:
            libc = ctypes.CDLL(None, use_errno=True)
            for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
                if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                    raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return subprocess.run([sys.executable, "-m", "vidbench.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, preexec_fn=setup, timeout=300)


def assert_one_line_error(result, name):
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 1, result.stderr
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(name) in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def scratch(tiny_mmnist, tmp_path_factory):
    """The inputs: digit IDX files, a trained tiny CW-VAE and a results file written by `vidbench evaluate`."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bad_outputs")
    write_glyph_idx(root / "idx")
    train("cwvae", tiny_mmnist, preset="tiny", steps=2, batch_size=2, seq_len=8, run_dir=root / "run",
          progress=False, echo=lambda line: None)
    evaluate(tiny_mmnist, model="copy-last", protocol="mmnist-short@1", horizon=12, num_videos=2,
             metrics=["ssim", "psnr"], out=root / "results" / "copy-last.json", run_dir=root / "eval-cache")
    (root / "mpl").mkdir()
    (root / "data").symlink_to(tiny_mmnist)
    return root


def commands(scratch, out: Path) -> dict[str, list]:
    data = scratch / "data"
    return {
        "prepare": ["prepare", "mmnist", "--idx-dir", scratch / "idx", "--limit", "2", "--num-test", "2",
                    "--out", out / "mm"],
        "train": ["train", "--model", "cwvae", "--preset", "tiny", "--dataset", data, "--steps", "2",
                  "--batch-size", "2", "--seq-len", "8", "--num-workers", "0", "--device", "cpu",
                  "--checkpoint-every", "1", "--run-dir", out / "run"],
        "evaluate": ["evaluate", "--model", "copy-last", "--dataset", data, "--protocol", "mmnist-short@1",
                     "--horizon", "48", "--num-videos", "2", "--metrics", "ssim,psnr", "--out", out / "r.json"],
        "leaderboard": ["leaderboard", "--results", scratch / "results", "--out", out / "board"],
        "sample": ["sample", scratch / "run", "--out", out / "s.mp4", "--context", "4", "--horizon", "4"],
        "analyze": ["analyze", "kl", scratch / "run", "--out", out / "kl.json", "--num-videos", "1", "--length", "8"],
    }


@pytest.mark.parametrize("command", ["prepare", "train", "evaluate", "leaderboard", "sample", "analyze"])
def test_read_only_output_folder(scratch, command):
    folder = Path(tempfile.mkdtemp(dir=scratch, prefix="ro-"))
    os.chmod(folder, 0o555)
    try:
        result = run_cli(commands(scratch, folder)[command], scratch, obey_permissions=True)
        assert "Permission denied" in assert_one_line_error(result, folder)
        assert list(folder.iterdir()) == []
    finally:
        os.chmod(folder, 0o755)


# Each limit sits between the command's small files (lock, config.json, fingerprint: < 8 kB) and its
# main output: a 2-sequence Moving MNIST shard (2 x 1000 x 64 x 64 = 8 MB), a tiny CW-VAE checkpoint
# (~1 MB), a batch of cached predictions (2 x 12 x 64 x 64 = 98 kB), a leaderboard figure (> 20 kB) and
# an 8-frame sample video (OpenCV's writer fails silently there: vidbench counts the frames it stored).
FULL_DISK = {"prepare": (1 << 20, "shard-00000.npy"), "train": (200_000, "checkpoint.pt"),
             "evaluate": (50_000, "batch-00000"), "leaderboard": (12_000, ".png"), "sample": (2_000, "s.mp4")}


@pytest.mark.parametrize("command", FULL_DISK)
def test_full_disk(scratch, command):
    limit, failing = FULL_DISK[command]
    folder = Path(tempfile.mkdtemp(dir=scratch, prefix="full-"))
    result = run_cli(commands(scratch, folder)[command], scratch, file_limit=limit)
    line = assert_one_line_error(result, folder)
    assert failing in line and "cannot write (" in line
    left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert not [p for p in left if ".tmp" in p or p.endswith(".lock")], left
    final = {"prepare": "mm/manifest.json", "train": "run/checkpoint.pt", "evaluate": "r.json",
             "leaderboard": "board/table.md", "sample": "s.mp4"}[command]
    assert final not in left, left
    if command == "prepare":  # the interrupted store is kept for a resume, and rerunning finishes it
        assert run_cli(commands(scratch, folder)[command], scratch).returncode == 0
        assert json.loads((folder / "mm" / "manifest.json").read_text())["splits"]["test"]["num_sequences"] == 2
