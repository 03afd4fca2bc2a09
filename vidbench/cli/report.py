"""`vidbench leaderboard`, `vidbench compare` and `vidbench analyze kl|levels`."""

from __future__ import annotations

from pathlib import Path

import click

from vidbench.cli.group import dataset_dir, main
from vidbench.report.compare import compare_command

main.add_command(compare_command)  # `vidbench compare A.json B.json`: defined beside its tables (report/compare.py)


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
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N (as evaluate)")
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
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N (as evaluate)")
def analyze_levels(run, dataset, levels, video, num_videos, context, horizon, num_samples, seed, out, device):
    """Predictions where one level follows its prior instead of its posterior (paper Figure 7)."""
    from vidbench import analyze as analysis

    record = analysis.analyze_levels(run, dataset=dataset_dir(dataset) if dataset else None, level=levels,
                                     video=video, num_videos=num_videos, context=context, horizon=horizon,
                                     num_samples=num_samples, seed=seed, out=out, device=device)
    for name, value in record["mean_ssim_to_truth"].items():
        click.echo(f"{name:24} mean SSIM to ground truth {value:.4f}")
    click.echo(f"wrote {record['image']}", err=True)
