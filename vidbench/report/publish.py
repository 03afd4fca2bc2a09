"""`vidbench leaderboard`: results folder -> the table in every format, the figures and the page.

Above table.py, figures.py and page.py: the table builder knows nothing of figures or pages, and the page
renderer takes the table and figures this module hands it.

All or nothing: every input is read and checked first, every output is rendered into a staging folder
inside OUT, and only then are the files renamed into place, so a bad results file or a full disk never
leaves half the outputs rewritten. OUT is locked while it is written and must be empty or a leaderboard
folder (vidbench.locking).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from vidbench.errors import VidbenchError
from vidbench.evaluate.results import load_results
from vidbench.fileio import atomic_write_bytes, write_error
from vidbench.locking import claim_folder
from vidbench.report import figures as figs
from vidbench.report import page
from vidbench.report.render import FORMATS, table_title
from vidbench.report.table import Table, build_table

SAMPLE_SUFFIXES = (".gif", ".png", ".mp4")
MARKER = ".vidbench-leaderboard"  # written into OUT: the files beside it are vidbench's to replace
REPLACED = ("table.md", "table.tex", "table.csv", "index.html", "figures")  # what a run writes over
OURS = (MARKER, *REPLACED, "results", "analysis", "samples")
STAGING = ".staging-"


def check_replaceable(out: Path) -> None:
    """OUT's files that a run would replace must be vidbench's: OUT carries the marker, or (a folder made before
    the marker) its index.html is vidbench's page. A user's index.html or table.md is never overwritten."""
    present = [name for name in REPLACED if (out / name).exists()]
    if not present or (out / MARKER).is_file():
        return
    try:
        ours = page.TITLE in (out / "index.html").read_text(errors="replace")
    except OSError:
        ours = False
    if not ours:
        raise VidbenchError(f"{out}: holds {', '.join(present)} that vidbench did not write (no {MARKER} there); "
                            f"refusing to overwrite them: choose another --out")


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


def build_tables(results, *, with_paper: bool = True, rank_paper: bool = False,
                 convention: str = "standard") -> list[Table]:
    """The measured rows in a table of their own protocols, then the paper's Table 1 as a separate table
    (unless --rank-paper asks for both in one table, ranked together)."""
    from vidbench.report.significance import annotate

    if rank_paper:
        tables = [build_table(results, with_paper=True, rank_paper=True, convention=convention)]
    else:
        tables = [build_table(results, with_paper=False, convention=convention)]
        if with_paper:
            tables.append(build_table([], with_paper=True, convention=convention))
    return [annotate(t) for t in tables]  # markers "not different from the best" and mean-rank intervals


def render_text(fmt: str, tables: list[Table]) -> str:
    """md and tex: every table, each under a line that says what it holds. csv: the measured table alone, as
    plain data for other tools (the paper's numbers are data in vidbench/report/paper.py)."""
    render = FORMATS[fmt][1]
    if fmt == "csv":
        return render(tables[0])
    comment = {"md": "## {}\n\n", "tex": "% {}\n"}[fmt]
    return "\n".join(comment.format(table_title(t)) + render(t) for t in tables)


def write_leaderboard(results_dir, out, *, protocols=None, with_paper: bool = True, rank_paper: bool = False,
                      convention: str = "standard", analysis_dir=None,
                      samples_dir=None) -> tuple[list[Table], list[Path]]:
    """Results folder -> OUT/table.{md,tex,csv}, OUT/figures/*.png and OUT/index.html. Returns the tables
    (measured first) and the files written (every file is written atomically)."""
    out = Path(out)
    with claim_folder(out, ours=OURS, what="leaderboard folder"):
        check_replaceable(out)
        for old in out.glob(STAGING + "*"):  # a killed run's (we hold the lock, so no live run's)
            shutil.rmtree(old, ignore_errors=True)
        results = load_results(results_dir, protocols)
        tables = build_tables(results, with_paper=with_paper, rank_paper=rank_paper, convention=convention)
        analysis_dir = Path(analysis_dir) if analysis_dir else out / "analysis"
        kl_records = load_kl_records(analysis_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(out, e) from e
        with tempfile.TemporaryDirectory(dir=out, prefix=STAGING) as stage:
            stage = Path(stage)
            try:
                for fmt, (name, _) in FORMATS.items():
                    atomic_write_bytes(stage / name, render_text(fmt, tables).encode())
                figures = figs.all_figures(tables, results, kl_records, stage / "figures")
                samples = media_files(samples_dir if samples_dir else out / "samples")
                html = page.render(tables, results, figures, samples, out, media_files(analysis_dir, "levels-"))
                atomic_write_bytes(stage / "index.html", html.encode())
            except VidbenchError as e:
                raise VidbenchError(str(e).replace(str(stage), str(out))) from e
            atomic_write_bytes(out / MARKER, b"made by `vidbench leaderboard`, which replaces its own files here\n")
            written = []
            for path in sorted(p for p in stage.rglob("*") if p.is_file()):
                final = out / path.relative_to(stage)
                final.parent.mkdir(exist_ok=True)
                os.replace(path, final)
                written.append(final)
    return tables, written
