"""`vidbench compare A.json B.json [more...]`: paired differences as a table (markdown or csv).

    vidbench compare leaderboard/results/cwvae-mmnist@1.json leaderboard/results/rssm-mmnist@1.json

Every model is compared with the first one given (the baseline): per metric the mean of the model minus the
baseline's, its paired bootstrap interval over test videos (and seeds), and the verdict. Files that are not
comparable (other protocol or test videos) are refused before anything is computed
(vidbench.evaluate.paired.check_comparable); comparability is decided per metric beyond that: a metric the
files scored differently (`ssim_cwvae` on a CW-VAE's raw decoder floats against a predictions file's uint8
frames, another LPIPS weight file) is left out with the reason printed, and the rest compare.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import click

from vidbench.evaluate.paired import Comparison, compare, metric_exclusions, seed_groups
from vidbench.evaluate.results import read_result


def compare_files(paths, seed: int = 0, resamples: int = 1000, level: float = 0.95):
    results = [read_result(p) for p in paths]
    return results, compare(results, seed=seed, resamples=resamples, level=level)


def _fmt(v: float) -> str:
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.0f}"


def to_markdown(results, rows: list[Comparison], level: float = 0.95) -> str:
    protocol = results[0].protocol
    groups = seed_groups(results)
    head = f"Paired comparison on {protocol} ({_count(results)} test videos; baseline: {next(iter(groups))})"
    lines = [head, "", f"| metric | model | model value | baseline value | difference | {level:.0%} interval | verdict |",
             "|---|---|---|---|---|---|---|"]
    for c in rows:
        arrow = "↑" if c.higher_is_better else "↓"
        seeds = f" ({c.seeds[0]} seeds)" if c.seeds[0] > 1 else ""
        lines.append(f"| {c.metric} {arrow} | {c.model}{seeds} | {_fmt(c.model_value)} | {_fmt(c.baseline_value)} | "
                     f"{_fmt(c.difference)} | [{_fmt(c.low)}, {_fmt(c.high)}] | {c.verdict} |")
    notes = ["difference = model - baseline; paired percentile bootstrap over test videos (the same draw for "
             "both models; several training seeds are resampled per model). FVD: basic bootstrap of the "
             "Fréchet distance from the stored per-video features."]
    if not any(c.metric.startswith("fvd") for c in rows):
        notes.append("FVD not compared: it needs each file's per-video features (<results>.fvd.npz, written by "
                     "`vidbench evaluate` with FVD) and one evaluation per model.")
    notes += left_out(results)
    notes += sorted({w for r in results for w in (r.raw.get("warnings") or [])})
    return "\n".join(lines) + "\n\n" + "".join(f"- {n}\n" for n in notes)


def left_out(results) -> list[str]:
    """One line per metric the files scored differently (compare leaves it out)."""
    metrics = sorted({m for r in results for m in (r.raw.get("per_video") or {})})
    return list(metric_exclusions(results, metrics + ["fvd"]).values())


def to_csv(rows: list[Comparison]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["metric", "model", "baseline", "model_value", "baseline_value", "difference", "low", "high",
                "significant", "verdict"])
    for c in rows:
        w.writerow([c.metric, c.model, c.baseline, repr(c.model_value), repr(c.baseline_value), repr(c.difference),
                    repr(c.low), repr(c.high), c.significant, c.verdict])
    return buf.getvalue()


def _count(results) -> str:
    per_video = results[0].raw.get("per_video") or {}
    return str(len(next(iter(per_video.values())))) if per_video else str(results[0].num_videos)


@click.command("compare")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["md", "csv"]), default="md", show_default=True)
@click.option("--resamples", type=int, default=1000, show_default=True, help="bootstrap replicates (frame metrics)")
@click.option("--seed", type=int, default=0, show_default=True, help="seed of the bootstrap draws")
def compare_command(files, fmt, resamples, seed):
    """Is a difference real? Paired bootstrap over the same test videos, every model against the first file.

    \b
    vidbench compare results/cwvae-mmnist@1.json results/rssm-mmnist@1.json
    Files of several training seeds of one model (run names ending in -seed<N>) are pooled into one model."""
    results, rows = compare_files(files, seed=seed, resamples=resamples)
    click.echo(to_markdown(results, rows) if fmt == "md" else to_csv(rows), nl=False)
    if fmt == "csv":
        for line in left_out(results):  # the csv stays machine-readable; why a metric is missing goes to stderr
            click.echo(line, err=True)
