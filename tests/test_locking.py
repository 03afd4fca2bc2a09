"""The output lock, the stale temporary files of dead writers, and the training data check (issue 13)."""

import fcntl
import json
import os
import shutil
import subprocess
import sys

import pytest

from vidbench.errors import VidbenchError
from vidbench.fileio import atomic_output, clean_stale_tmp
from vidbench.locking import OutputLock, _same_file, check_output_folder, claim_folder, lock_path
from vidbench.train import train


def test_a_held_output_refuses_a_second_lock_and_names_the_holder(tmp_path):
    target = tmp_path / "run"
    with OutputLock(target, "training run folder"):
        assert f"pid {os.getpid()}:" in lock_path(target).read_text()
        with pytest.raises(VidbenchError, match=rf"run: training run folder is in use by another vidbench \(pid {os.getpid()}"):
            OutputLock(target, "training run folder")
    assert not lock_path(target).exists()  # released and removed
    OutputLock(target).release()  # free again


def test_a_lock_file_removed_by_its_holder_is_not_trusted(tmp_path):
    """A process that opened the lock file just before its holder removed it locks a file no longer at
    the path: acquiring re-checks the inode, so it cannot think it holds the output."""
    target = tmp_path / "out"
    first = OutputLock(target)
    stale = os.open(lock_path(target), os.O_RDWR)  # opened, not yet locked, when the holder finishes
    first.release()
    second = OutputLock(target)  # a new process creates and locks a fresh file at the path
    try:
        fcntl.flock(stale, fcntl.LOCK_EX | fcntl.LOCK_NB)  # succeeds: it is the old, removed file
        assert not _same_file(stale, lock_path(target)) and _same_file(second._fd, lock_path(target))
    finally:
        os.close(stale)
        second.release()


def test_claim_folder_refuses_unrelated_content_and_releases(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    with pytest.raises(VidbenchError, match="is not a vidbench run folder; refusing"):
        claim_folder(folder, ours=("config.json",), what="run folder")
    assert not lock_path(folder).exists()
    (folder / "config.json").write_text("{}")
    claim_folder(folder, ours=("config.json",), what="run folder").release()
    assert check_output_folder(tmp_path / "new", ours=("x",)) == tmp_path / "new"


def test_only_dead_writers_temporary_files_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # exited: no process has this pid now (pids are not reused this fast)
    stale = tmp_path / f".checkpoint.pt.{dead_pid}.abc123.tmp"
    live = tmp_path / f".checkpoint.pt.{os.getpid()}.def456.tmp"
    other = tmp_path / f".notes.{dead_pid}.txt"  # not our name pattern: never touched
    for path in (stale, live, other):
        path.write_text("x")
    assert clean_stale_tmp(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])


def test_atomic_output_keeps_the_extension_and_leaves_nothing_on_error(tmp_path):
    with atomic_output(tmp_path / "v.mp4", suffix=".mp4") as tmp:
        assert tmp.name.endswith(".tmp.mp4") and f".{os.getpid()}." in tmp.name
        tmp.write_bytes(b"video")
    assert (tmp_path / "v.mp4").read_bytes() == b"video"
    with pytest.raises(RuntimeError), atomic_output(tmp_path / "w.bin") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_training_hashes_its_shards_on_first_use_and_then_trusts_size_and_mtime(tiny_mmnist, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(tiny_mmnist, store)
    lines = []
    kwargs = dict(preset="tiny", batch_size=2, seq_len=8, run_dir=tmp_path / "run", progress=False, echo=lines.append)
    train("cwvae", store, steps=1, **kwargs)
    assert any("sha256 of 1 training shard(s) checked" in line for line in lines), lines
    record = json.loads((tmp_path / "run" / "data-check.json").read_text())
    assert list(record) == ["train/shard-00000.npy"]
    lines.clear()
    train("cwvae", store, steps=2, **kwargs)  # resume: the shard is unchanged, not hashed again
    assert not any("sha256" in line for line in lines), lines
    shard = store / "train" / "shard-00000.npy"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0x01
    shard.write_bytes(bytes(data))  # a new mtime: hashed again, and the flipped bit is caught
    with pytest.raises(VidbenchError, match=f"{shard}: sha256 does not match the manifest"):
        train("cwvae", store, steps=3, **kwargs)
