"""One exception type for every problem a user can fix (bad path, bad file, bad option).

The CLI prints these as a single line and exits non-zero; anything else is a bug and keeps its traceback.
"""


class VidbenchError(Exception):
    """A user-facing error. The message names the file (or option) and what is wrong with it."""


def check_file(path, what: str = "file"):
    """Return `path` as a Path if it exists, else raise a VidbenchError that names it."""
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        raise VidbenchError(f"{path}: {what} does not exist")
    return path
