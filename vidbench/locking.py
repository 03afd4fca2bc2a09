"""Claiming an output before writing into it: one check of what is there, and one lock per output.

Every command that writes a lasting output (prepare's store, train's run folder, evaluate's results file and
cache folder, the leaderboard folder) claims it first:

- the path must be of the right kind (a folder, not a file) and, when it is a non-empty folder, hold
  something this command wrote (`ours`): vidbench never writes into, or deletes from, an unrelated folder;
- an exclusive `fcntl.flock` on `.<name>.lock` beside the output, so two commands on the same output
  exclude each other; the loser stops at once with one line naming the holder's pid and command. The
  kernel drops the lock when its holder dies (even by SIGKILL), so a killed run never blocks the next;
- the temporary files of killed writers in the output are removed (vidbench.fileio.clean_stale_tmp).
The lock comes first: the folder's contents are judged only once no other command is writing them.

The lock file is removed on release. A process that opened it just before is then holding a lock on a
file no longer in the folder, so acquiring re-checks that the locked file is still the one at the path.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from vidbench.errors import VidbenchError
from vidbench.fileio import clean_stale_tmp, write_error


def check_output_folder(path, *, ours=(), what: str = "output folder") -> Path:
    """`path` may be written into: missing, empty, or a folder holding one of the names in `ours`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise VidbenchError(f"{path}: is a file; the {what} must be a folder")
    if path.is_dir() and ours:
        entries = {p.name for p in path.iterdir()} - {".DS_Store"}
        if entries and not entries & set(ours):
            shown = ", ".join(sorted(entries)[:3]) + (" ..." if len(entries) > 3 else "")
            raise VidbenchError(f"{path}: folder is not empty ({shown}) and is not a vidbench {what}; "
                                f"refusing to write into it: choose another folder")
    return path


def check_output_file(path, what: str = "--out") -> Path:
    """`path` names a file to write (not an existing folder)."""
    path = Path(path)
    if path.is_dir():
        raise VidbenchError(f"{path}: is a folder; {what} takes a file name")
    return path


def lock_path(target) -> Path:
    target = Path(target)
    return target.parent / f".{target.name}.lock"


class OutputLock:
    """An exclusive lock on one output (see module docstring); release() or the end of the process frees it."""

    def __init__(self, target, what: str = "output"):
        self.target = Path(target)
        self.path = lock_path(self.target)
        self._fd = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            while self._fd is None:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise VidbenchError(f"{self.target}: {what} is in use by another vidbench ({holder}); wait for "
                                        f"it to finish or stop it") from None
                if _same_file(fd, self.path):
                    self._fd = fd
                else:
                    os.close(fd)  # its previous holder removed it between our open and flock: take the new one
            os.ftruncate(self._fd, 0)
            os.write(self._fd, f"pid {os.getpid()}: {_command()}".encode())
        except OSError as e:
            self.release()
            raise write_error(self.path.parent, e) from e
        if self.target.is_dir():
            clean_stale_tmp(self.target)
        clean_stale_tmp(self.target.parent, self.target.name)

    def release(self) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def __del__(self):
        try:
            self.release()
        except (OSError, TypeError, AttributeError):
            pass  # at interpreter shutdown os may be half torn down; the kernel drops the lock anyway


def claim_folder(path, *, ours=(), what: str = "output folder") -> OutputLock:
    """Lock the folder, then check it (under the lock: another command's half-made files are not judged)."""
    lock = OutputLock(path, what)
    try:
        check_output_folder(path, ours=ours, what=what)
    except VidbenchError:
        lock.release()
        raise
    return lock


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 500, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "holder unknown"


def _command() -> str:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return " ".join(["vidbench" if name in ("cli.py", "__main__.py") else name, *sys.argv[1:]])[:300]
