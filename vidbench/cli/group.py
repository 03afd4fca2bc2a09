"""The `vidbench` command group and what every command shares: progress bars, dataset names, one-line errors.

Thin, like every module of vidbench/cli/: parse options, call the library, print. No logic of its own.
"""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import click

from vidbench.errors import VidbenchError

USER_FIXABLE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS,
                       errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG}


def progress(iterable, desc: str = "", total: int | None = None, **kwargs):
    """Progress bar for long work (stderr, so stdout stays clean for results)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, dynamic_ncols=True, **kwargs)


def dataset_dir(name_or_path: str) -> Path:
    """A dataset name ("mmnist" -> datasets/mmnist) or a path to a prepared folder."""
    from vidbench.data.store import default_dataset_dir

    path = Path(name_or_path)
    return path if path.exists() or "/" in name_or_path else default_dataset_dir(name_or_path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vidbench")
def main():
    """vidbench: long-horizon video prediction benchmarks (Clockwork VAE and baselines)."""


@main.command("ls")
@click.argument("what", type=click.Choice(["datasets", "models", "metrics", "protocols"]))
@click.option("--params", is_flag=True, help="models: build every preset and print its trainable parameters")
@click.option("--verbose", is_flag=True, help="protocols: every convention, and the card saying where it comes from")
def ls_command(what, params, verbose):
    """List registered datasets, models, metrics or protocols."""
    from vidbench import catalog

    for line in catalog.describe(what, with_params=params, verbose=verbose):
        click.echo(line)


def run_guarded(fn, *args) -> int:
    """Run fn; user errors become one line on stderr and exit 1; Ctrl-C says how to resume (exit 130)."""
    try:
        return fn(*args) or 0
    except VidbenchError as e:
        click.echo(f"error: {e}", err=True)
        return 1
    except OSError as e:
        if e.errno not in USER_FIXABLE_ERRNOS:
            raise
        # A write vidbench does not wrap itself (a library's own file): still one line naming the file.
        click.echo(f"error: {e.filename or 'output'}: {e.strerror}", err=True)
        return 1
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("interrupted; run the same command again to resume", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code


def run():
    """Console-script entry point."""
    sys.exit(run_guarded(lambda: main(standalone_mode=False)))
