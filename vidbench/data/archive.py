"""Video files from an archive (.zip) or its extracted folder, in a stable natural order.

OpenCV decodes only from a path, so zip members are copied one at a time to a temporary file that is
deleted right after decoding: memory and disk stay flat however large the archive. Members whose path is
absolute or climbs out with ".." are refused (a crafted archive must not write or read outside).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from vidbench.errors import VidbenchError, check_file


def natural_key(name: str):
    """'test/10.mp4' after 'test/9.mp4': digits compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def safe_member(zip_path: Path, name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name):
        raise VidbenchError(f"{zip_path}: member {name!r} escapes the archive folder; refusing to read it")
    return path


def zip_names(zip_path: Path) -> list[str]:
    """The file members of a zip; the whole archive is refused if any member escapes its folder."""
    try:
        with zipfile.ZipFile(zip_path) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
    except zipfile.BadZipFile as e:
        raise VidbenchError(f"{zip_path}: not a readable zip archive ({e})") from e
    for name in names:
        safe_member(zip_path, name)
    return names


def list_videos(source, folder: str, suffixes=(".mp4",)) -> list[str]:
    """Names of the video files directly under `folder` (searched at any depth, e.g. 'minerl_navigate/train')."""
    source = check_file(source, "archive or folder")
    if source.is_dir():
        names = [p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()]
    else:
        names = zip_names(source)
    wanted = [n for n in names if PurePosixPath(n).parent.name == PurePosixPath(folder).name
              and PurePosixPath(n).parent.as_posix().endswith(folder) and n.lower().endswith(suffixes)]
    return sorted(wanted, key=natural_key)


@contextmanager
def opened_video(source, name: str) -> Iterator[Path]:
    """A filesystem path to one video of the archive or folder, valid inside the `with` block."""
    source = Path(source)
    if source.is_dir():
        yield source / name
        return
    with zipfile.ZipFile(source) as z, tempfile.NamedTemporaryFile(suffix=PurePosixPath(name).suffix) as tmp:
        try:
            with z.open(str(safe_member(source, name))) as member:
                shutil.copyfileobj(member, tmp)
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise VidbenchError(f"{source}:{name}: cannot extract ({e})") from e
        tmp.flush()
        yield Path(tmp.name)
