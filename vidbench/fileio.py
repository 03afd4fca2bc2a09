"""Atomic file writes and checksums, shared by the store, checkpoints and results files.

Everything vidbench writes that another step reads is written to a temporary name in the same folder and
renamed into place, so a crash never leaves a half-written file under the final name. Temporary names carry
the writer's process id (`.<name>.<pid>.<random>.tmp[.<ext>]`), so the next run can tell the leftovers of a
killed writer from the files of one still running (clean_stale_tmp). A write that fails (full disk,
read-only folder) is one VidbenchError naming the file, and leaves no temporary file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vidbench.errors import VidbenchError

_UMASK = os.umask(0)
os.umask(_UMASK)


def write_error(path, e: OSError) -> VidbenchError:
    """An OSError of a write as the one line the user sees: the file and what the system said."""
    # numpy's short fwrite raises an OSError without errno ("N requested and M written")
    return VidbenchError(f"{path}: cannot write ({e.strerror or f'short write, disk full? {e}'})")


@contextmanager
def atomic_output(path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path` for a writer that wants a file name (`suffix` keeps the
    extension a writer like OpenCV picks its format by); on success it is fsynced and renamed to `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = new_tmp_file(path, suffix)
    except OSError as e:
        raise write_error(path, e) from e
    try:
        yield tmp
        move_into_place(tmp, path)
    except OSError as e:
        raise write_error(path, e) from e
    finally:
        tmp.unlink(missing_ok=True)


def new_tmp_file(path: Path, suffix: str = "") -> Path:
    """A new empty file beside `path` that only this writer uses: `.<name>.<pid>.<random>.tmp<suffix>`, the
    name clean_stale_tmp removes once its writer is gone. An OSError is raised as the system gave it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp" + suffix)
    os.close(fd)
    return Path(tmp)


def move_into_place(tmp: Path, path: Path) -> None:
    """fsync the finished temporary file, give it the permissions open() would (mkstemp creates 0600), and
    rename it to `path` in one step: readers see the old file or the whole new one."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.chmod(tmp, 0o666 & ~_UMASK)
    os.replace(tmp, path)


def atomic_write_bytes(path, data: bytes) -> None:
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_json(path, obj) -> None:
    """Deterministic JSON (sorted keys, fixed indent) so equal content gives equal bytes."""
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"
    atomic_write_bytes(path, text.encode())


def sha256_file(path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def git_blob_sha1(path, chunk: int = 1 << 22) -> str:
    """The id git gives a file's content: sha1 of b"blob <size>\\0" + bytes (used to verify weight files)."""
    path = Path(path)
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


_TMP_NAME = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp(\.\w+)?$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def clean_stale_tmp(folder, name: str | None = None) -> list[Path]:
    """Remove the temporary files (atomic_output's names) of writers that are no longer running; with
    `name`, only those of that one file."""
    folder = Path(folder)
    removed = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = _TMP_NAME.match(path.name)
        if name is not None and not path.name.startswith(f".{name}."):
            continue
        if match and path.is_file() and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
