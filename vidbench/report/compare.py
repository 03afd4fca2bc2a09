"""`vidbench compare A.json B.json [more...]`: paired differences as a table (markdown or csv).

    vidbench compare leaderboard/results/cwvae-mmnist@1.json leaderboard/results/rssm-mmnist@1.json

Every model is compared with the first one given (the baseline): per metric the mean of the model minus the
baseline's, its paired t interval over test videos (and seeds), and the verdict. Files that are not
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


def compare_files(paths, level: float = 0.95):
    results = [read_result(p) for p in paths]
    return results, compare(results, level=level)


def _interval(c: Comparison) -> str:
    return "none (see note)" if c.low != c.low else f"[{_fmt(c.low)}, {_fmt(c.high)}]"


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
                     f"{_fmt(c.difference)} | {_interval(c)} | {c.verdict} |")
    notes = ["difference = model - baseline; t interval of the paired per-video differences over the same test "
             "videos (docs/intervals.md); several training seeds: a t interval adding each model's seed spread. "
             "FVD and KVD: paired jackknife over the stored per-video features (docs/distances.md)."]
    notes += [f"{c.metric}, {c.model}: {c.note}" for c in rows if c.note]
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
                "significant", "verdict", "note"])
    for c in rows:
        w.writerow([c.metric, c.model, c.baseline, repr(c.model_value), repr(c.baseline_value), repr(c.difference),
                    repr(c.low), repr(c.high), c.significant, c.verdict, c.note])
    return buf.getvalue()


def _count(results) -> str:
    per_video = results[0].raw.get("per_video") or {}
    return str(len(next(iter(per_video.values())))) if per_video else str(results[0].num_videos)


@click.command("compare")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["md", "csv"]), default="md", show_default=True)
@click.option("--resamples", type=int, default=None, hidden=True, help="ignored: no bootstrap since docs/intervals.md")
@click.option("--seed", type=int, default=None, hidden=True, help="ignored: no bootstrap since docs/intervals.md")
@click.option("--bands", default=None,
              help="per band of predicted frames: 'default' (1-100,101-500,501-964, cut at the horizon) or "
                   "ranges like 1-100,101-964 (vidbench/report/bands.py)")
def compare_command(files, fmt, resamples, seed, bands):
    """Is a difference real? Paired t intervals over the same test videos, every model against the first file.

    \b
    vidbench compare results/cwvae-mmnist@1.json results/rssm-mmnist@1.json
    Files of several training seeds of one model (run names ending in -seed<N>) are pooled into one model."""
    if resamples is not None or seed is not None:  # old scripts keep working; the intervals need neither now
        click.echo("compare: --resamples and --seed are ignored: frame-metric intervals are t intervals, FVD's "
                   "jackknife ones (docs/intervals.md)", err=True)
    if bands is not None:
        click.echo(_by_band(files, bands, fmt), nl=False)
        return
    results, rows = compare_files(files)
    click.echo(to_markdown(results, rows) if fmt == "md" else to_csv(rows), nl=False)
    if fmt == "csv":
        for line in left_out(results):  # the csv stays machine-readable; why a metric is missing goes to stderr
            click.echo(line, err=True)


def _by_band(files, bands: str, fmt: str) -> str:
    from vidbench.report.bands import compare_bands, parse_bands

    results = [read_result(p) for p in files]
    by_band = compare_bands(results, parse_bands(bands, results[0].horizon or 0))
    if fmt == "csv":  # one table, the band as its first column
        lines = []
        for i, ((a, b), rows) in enumerate(by_band):
            head, *body = to_csv(rows).splitlines()
            lines += ([f"band,{head}"] if i == 0 else []) + [f"{a}-{b},{line}" for line in body]
        return "\n".join(lines) + "\n"
    return "\n".join(f"### Predicted frames {a}-{b}\n\n" + to_markdown(results, rows) for (a, b), rows in by_band)
