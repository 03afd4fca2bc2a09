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


def exit_code(action) -> int:
    """Run a script's work (`python -m vidbench.zoo_job` and the like): 0, or 1 after printing a VidbenchError as
    the CLI does, one `error:` line on stderr (anything else keeps its traceback)."""
    import sys

    try:
        action()
    except VidbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
