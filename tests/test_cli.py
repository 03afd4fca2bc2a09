"""The command line as a user meets it: exit codes, one-line errors, progress on stderr."""

import os
import subprocess
import sys


def vidbench(*args, cwd=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "vidbench.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_prepare_verify_and_ls(tmp_path):
    out = tmp_path / "mm"
    result = vidbench("prepare", "mmnist", "--limit", "3", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "test: 3 sequences" in result.stdout and "mmnist train" in result.stderr  # progress bar on stderr
    result = vidbench("verify", str(out))
    assert result.returncode == 0 and result.stdout.strip() == f"{out}: ok"
    again = vidbench("prepare", "mmnist", "--limit", "3", "--out", str(out))  # finished: nothing to do, exit 0
    assert again.returncode == 0 and "already there and complete" in again.stderr, again.stderr
    other = vidbench("prepare", "mmnist", "--limit", "2", "--out", str(out))  # another command: refused
    assert other.returncode == 1 and "pass --overwrite" in other.stderr
    assert vidbench("ls", "protocols").stdout.count("@1") >= 4


def test_default_location_is_datasets_folder(tmp_path):
    result = vidbench("prepare", "mmnist", "--limit", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "datasets" / "mmnist" / "manifest.json").exists()
    assert vidbench("verify", "mmnist", cwd=tmp_path).returncode == 0


def test_errors_are_one_line_and_nonzero(tmp_path):
    result = vidbench("prepare", "mmnist", "--idx-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'nope'}: MNIST IDX folder does not exist"
    assert "Traceback" not in result.stderr and list(tmp_path.iterdir()) == []  # nothing written at all
    result = vidbench("verify", str(tmp_path / "nothing"))
    assert result.returncode == 1 and "not a prepared dataset" in result.stderr


def test_verify_reports_corruption(tmp_path):
    out = tmp_path / "mm"
    assert vidbench("prepare", "mmnist", "--limit", "2", "--out", str(out)).returncode == 0
    shard = out / "test" / "shard-00000.npy"
    data = bytearray(shard.read_bytes())
    data[1000] ^= 1
    shard.write_bytes(bytes(data))
    result = vidbench("verify", str(out))
    assert result.returncode == 1
    assert f"{shard}: sha256 does not match the manifest" in result.stderr
