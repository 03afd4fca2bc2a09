"""leaderboard/index.html: the table, the figures and sample videos in one file that reads offline.

Images (figures, GIF samples) are embedded as base64 data URIs, so the page works when copied alone or
opened from a file:// URL with no network; mp4 samples are linked relative to the page (a browser can't
inline them reasonably). No scripts, no external fonts or styles.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from vidbench.evaluate.results import Result
from vidbench.report import paper
from vidbench.report.claim import find_claims
from vidbench.report.claim import render_html as render_claims
from vidbench.report.origin import SHIPPED, ZOO, origin_note, provenance
from vidbench.report.render import missing_notes, rules_text, table_title, to_html_table
from vidbench.report.table import PAPER, Table

MEDIA_TYPES = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
STYLE = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1500px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ccc; }
.banner { background: #fff6d6; border: 1px solid #e0c060; padding: 8px 12px; margin: 12px 0; }
table { border-collapse: collapse; font-size: 12px; margin: 8px 0; }
th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: right; }
th { background: #eef; } td.model { text-align: left; white-space: nowrap; }
tr.paper td { background: #f3f3f3; font-style: italic; color: #555; }
td.missing { color: #999; } td.rank { font-weight: bold; }
ul.notes { font-size: 12px; color: #444; }
figure { display: inline-block; margin: 8px; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; border: 1px solid #ddd; } figcaption { font-size: 12px; max-width: 700px; }
"""

TITLE = "<title>vidbench leaderboard</title>"  # also how `vidbench leaderboard` recognises its own page


def data_uri(path: Path) -> str:
    kind = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _figure(path: Path, title: str, caption: str, page_dir: Path) -> str:
    if path.suffix.lower() == ".mp4":
        try:
            src = path.resolve().relative_to(page_dir.resolve()).as_posix()
        except ValueError:
            src = path.resolve().as_uri()
        media = f'<video src="{escape(src)}" controls loop muted width="512"></video>'
    else:
        media = f'<img src="{data_uri(path)}" alt="{escape(title)}">'
    return f"<figure>{media}<figcaption><b>{escape(title)}</b> {escape(caption)}</figcaption></figure>"


def _provenance(results: list[Result]) -> str:
    head = ["model", "family", "protocol", "context", "horizon", "videos", "samples", "parameters",
            "trained steps", "training (min)", "how it was trained", "sha256 (checkpoint / weights / predictions file)", "git commit", "device", "eval time (s)", "file"]
    rows = []
    for r in sorted(results, key=lambda r: (r.protocol, r.model)):
        raw = r.raw
        model = raw.get("model") if isinstance(raw.get("model"), dict) else {}
        env, run = raw.get("environment") or {}, raw.get("run") or {}
        sha = str(model.get("checkpoint_sha256") or model.get("weights_sha256") or model.get("predictions_sha256") or "")[:12]
        seconds = model.get("training_seconds")
        record = model.get("record") if isinstance(model.get("record"), dict) else {}
        how = "; ".join(str(record[k]) for k in ("command", "note") if record.get(k))  # exported weights only
        stated = " (stated)" if model.get("parameters_stated") else ""  # a predictions file's: its author's count
        trained = [f"{model['parameters']:,}{stated}" if model.get("parameters") is not None else None,
                   model.get("trained_steps"), None if seconds is None else f"{seconds / 60:.1f}", how or None]
        cells = [r.model, r.family, r.protocol, r.context, r.horizon, r.num_videos, raw.get("num_samples"), *trained, sha,
                 str(env.get("git_commit") or "")[:10], run.get("device"), run.get("wall_time_s"), r.path.name]
        rows.append("<tr>" + "".join(f"<td>{escape('' if c is None else str(c))}</td>" for c in cells) + "</tr>")
    return ("<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _protocols(results: list[Result]) -> str:
    seen = {}
    for r in results:
        p = r.raw.get("protocol")
        if isinstance(p, dict):
            seen.setdefault(r.protocol, p)
    items = []
    for name, p in sorted(seen.items()):
        items.append(f"<li><b>{escape(name)}</b>: dataset {escape(str(p.get('dataset')))}, context "
                     f"{p.get('context')}, horizon {p.get('horizon')}, first {p.get('num_videos')} test videos, "
                     f"{p.get('num_samples')} sample(s) reduced by {escape(str(p.get('reduce')))}. "
                     f"{escape(str(p.get('note') or ''))}</li>")
    return "<ul class=notes>" + "".join(items) + "</ul>"


def render(tables: list[Table], results: list[Result], figures, samples: list[Path], page_dir: Path,
           analysis_images: list[Path] = ()) -> str:
    """The whole page as a string: the measured table first, then the paper's Table 1 as its own table.
    `figures`: vidbench.report.figures.Figure list; `samples`: GIF/PNG/mp4 files."""
    page_dir = Path(page_dir)
    measured = [r for t in tables for r in t.rows if r.source != PAPER]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        TITLE, f"<style>{STYLE}</style></head><body>",
        "<h1>vidbench leaderboard: long-horizon video prediction</h1>",
        '<div class="banner"><b>Measured rows</b> are computed by vidbench from the results files listed below '
        "(whatever models were trained and evaluated here; a short demo protocol or tiny models are not comparable "
        "to the paper). <b>The paper's Table 1</b> holds the numbers printed in "
        f"{escape(paper.SOURCE)}, with the authors' SSIM/PSNR conventions ({paper.CONVENTION}), shown for "
        "reference and never measured here.</div>",
    ]
    zoo = sorted({r.model for r in results if provenance(r) == ZOO})
    shipped = sorted({r.model for r in results if provenance(r) == SHIPPED} - set(zoo))
    if shipped:  # exported weights files (vidbench export): say they were not trained by whoever ran this
        parts[-1] = parts[-1][:-len("</div>")] + (
            f" <b>Shipped checkpoints</b>: {escape(', '.join(shipped))}, evaluated from weights files that came "
            "with the code, trained earlier by the command in 'how it was trained' below; every other trained row "
            "was trained by the run that made this page.</div>")
    if zoo:  # GPU-trained (vidbench/zoo_job.py), apart from the CPU demo runs: the notes under the table say how long
        parts[-1] = parts[-1][:-len("</div>")] + (
            f" <b>Zoo models</b> (source 'zoo'): {escape(', '.join(zoo))}, trained on a GPU by vidbench/zoo_job.py; "
            "their weights are checked against vidbench/zoo/&lt;name&gt;.json, which records the data, commands and "
            "lineage.</div>")
    for table in tables:
        notes = rules_text(table) + table.stat_notes + [f"n/a: {n}" for n in missing_notes(table)] + table.warnings
        notes += [n for row in table.rows for r in row.results if (n := origin_note(r))]  # zoo; seen test scores
        table_id = "paper-table1" if {r.source for r in table.rows} == {PAPER} else "leaderboard"
        parts += [f"<h2>{escape(table_title(table))}</h2>", to_html_table(table, table_id),
                  "<ul class=notes>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>"]
    if not measured:
        parts.append("<p><i>No measured results yet: run `vidbench evaluate` and put its results.json files in "
                     "the results folder.</i></p>")
    parts.append(render_claims(find_claims(results)))  # issue 23: CW-VAE vs RSSM / NoTmpAbs, zoo rows only
    if figures:
        parts.append("<h2>Figures</h2>")
        parts += [_figure(f.path, f.title, f.caption, page_dir) for f in figures]
    if analysis_images:
        parts.append("<h2>What each level stores (Figure 7: one level follows its prior)</h2>")
        parts += [_figure(p, p.stem, "rows: ground truth, normal prediction, then predictions where the named level "
                          "follows its prior instead of its posterior over the context (vidbench analyze levels).",
                          page_dir) for p in analysis_images]
    if samples:
        parts.append("<h2>Samples</h2>")
        parts += [_figure(p, p.stem, "left: ground truth; right: context then open-loop prediction "
                          "(vidbench sample).", page_dir) for p in samples]
    if results:
        parts += ["<h2>Protocols</h2>", _protocols(results), "<h2>What each measured row is (model, training, provenance)</h2>",
                  _provenance(results)]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
