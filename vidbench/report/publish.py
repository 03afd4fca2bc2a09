"""`vidbench leaderboard`: results folder -> the table in every format, the figures and the page.

Above table.py, figures.py and page.py: the table builder knows nothing of figures or pages, and the page
renderer takes the table and figures this module hands it.
"""

from __future__ import annotations

import json
from pathlib import Path

from vidbench.errors import VidbenchError
from vidbench.evaluate.results import load_results
from vidbench.fileio import atomic_write_bytes
from vidbench.report import figures as figs
from vidbench.report import page
from vidbench.report.table import FORMATS, Table, build_table

SAMPLE_SUFFIXES = (".gif", ".png", ".mp4")


def load_kl_records(folder) -> list[dict]:
    """The JSON files `vidbench analyze kl` writes (kl-*.json), sorted by name."""

    folder = Path(folder)
    records = []
    for path in sorted(folder.glob("kl-*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
            record["kl_per_level"] = [float(v) for v in record["kl_per_level"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise VidbenchError(f"{path}: not a `vidbench analyze kl` output ({e})") from e
        records.append(record)
    return records


def media_files(folder, prefix: str = "") -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SAMPLE_SUFFIXES and p.name.startswith(prefix))


def write_leaderboard(results_dir, out, *, protocols=None, with_paper: bool = True, rank_paper: bool = False,
                      convention: str = "standard", analysis_dir=None, samples_dir=None) -> tuple[Table, list[Path]]:
    """Results folder -> OUT/table.{md,tex,csv}, OUT/figures/*.png and OUT/index.html. Returns the table
    and the files written (every file is written atomically)."""
    out = Path(out)
    results = load_results(results_dir, protocols)
    table = build_table(results, with_paper=with_paper, rank_paper=rank_paper, convention=convention)
    written = []
    for name, render in FORMATS.values():
        atomic_write_bytes(out / name, render(table).encode())
        written.append(out / name)
    analysis_dir = Path(analysis_dir) if analysis_dir else out / "analysis"
    figures = figs.all_figures(table, results, load_kl_records(analysis_dir), out / "figures")
    written += [f.path for f in figures]
    samples = media_files(samples_dir if samples_dir else out / "samples")
    html = page.render(table, results, figures, samples, out, media_files(analysis_dir, "levels-"))
    atomic_write_bytes(out / "index.html", html.encode())
    written.append(out / "index.html")
    return table, written
