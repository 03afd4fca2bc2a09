"""The leaderboard table rendered: markdown, LaTeX, CSV and the page's HTML table, with the rules and notes printed
under it (what bold, the marks and the mean rank mean). The table itself (rows, columns, ranks) is built by
table.py; nothing here decides a number.
"""

from __future__ import annotations

import csv
import io

from vidbench.report import paper
from vidbench.report.table import EXTRA_METRICS, PAPER, TABLE1_METRICS, Column, Metric, Row, Table


def format_value(row: Row, c: Column) -> str:
    if c not in row.values:
        return ""
    decimals = c.metric.decimals
    if row.source == PAPER and c.metric.label in ("SSIM", "LPIPS"):
        decimals = 2  # as printed in the paper
    return f"{row.values[c]:.{decimals}f}"


def format_spread(row: Row, c: Column) -> str:
    """' (3 seeds 0.641-0.662)' after a cell that averages several training seeds."""
    if c not in row.spread:
        return ""
    low, high, n = row.spread[c]
    return f" ({n} seeds {low:.{c.metric.decimals}f}-{high:.{c.metric.decimals}f})"


def format_rank(row: Row) -> str:
    # Python's format rounds exact halves to even: 3.625 -> "3.62", 2.625 -> "2.62", as the paper prints them.
    return "" if row.mean_rank is None else f"{row.mean_rank:.2f}"


def format_rank_ci(row: Row) -> str:
    return "" if row.rank_ci is None else f" [{row.rank_ci[0]:.2f}, {row.rank_ci[1]:.2f}]"


TIED_MARK = "≈"  # significance.MARK; here so the renderers need not import the statistics
RAW_MARK = "†"   # a cell scored on raw decoder floats (conventions.raw_frames), not on the uint8 frames
_RANKED = [*TABLE1_METRICS.values(), *EXTRA_METRICS.values()]


def _arrow(m: Metric) -> str:
    return "↑" if m.higher_is_better else "↓"


def rules_text(table: Table) -> list[str]:
    robust = sorted({c.metric.label for c in table.columns if c.metric.ranked and c.metric.blur_robust
                     and any(c in r.ranks for r in table.rows)}, key=lambda x: [m.label for m in _RANKED].index(x))
    lines = [
        "Bold: best per column and all within 5% of it" + (", never a value worse than chance" if table.chance else "")
        + ". Rank per column: 1 + number of strictly better rows, on displayed values (ties share the better rank). "
        "Mean rank (count of ranked cells in brackets; a missing cell is not ranked): the mean of two halves so "
        "that blur cannot win it, the blur-friendly SSIM/PSNR (a blurred mean frame scores well on both) and the "
        f"blur-robust {'/'.join(robust) if robust else 'LPIPS/FVD'}; with all four of Table 1 it is their plain mean.",
        f"SSIM/PSNR convention: {table.convention} "
        f"({'tf.image.ssim, per-frame PSNR' if table.convention == 'standard' else 'the authors eval: skimage 0.18 defaults'}).",
    ]
    if any(r.source == PAPER for r in table.rows):
        how = "ranked together with the measured rows (--rank-paper)" if table.rank_paper else \
            "ranked only among themselves"
        lines.append(f"Rows marked (paper, {paper.CONVENTION} convention) are the numbers printed in {paper.SOURCE}, "
                     f"with the authors' eval conventions, not measured by vidbench; {how}.")
        if table.convention != paper.CONVENTION:
            lines.append(f"The paper's SSIM/PSNR were computed with the {paper.CONVENTION} convention, not this "
                         f"table's {table.convention} one: compare them with --convention {paper.CONVENTION}.")
    unranked = [r.label for r in table.rows if r.mean_rank is None and r.ranks]
    if unranked:
        lines.append(f"No mean rank for {', '.join(unranked)}: none of its cells is blur-robust (LPIPS, FVD, digit "
                     f"accuracy unavailable), and SSIM/PSNR alone would reward blur.")
    if any(r.raw for r in table.rows):
        lines.append(f"{RAW_MARK}: scored on the model's raw decoder floats (the authors' *_cwvae eval of a CW-VAE "
                     f"run in-process); unmarked cells of that column on the uint8 frames, as a predictions file is.")
    if table.chance:
        shown = ", ".join(f"{EXTRA_METRICS[k].label} {v:.{EXTRA_METRICS[k].decimals}f}" if k in EXTRA_METRICS
                          else f"{k} {v:g}" for k, v in table.chance.items())
        lines.append(f"Chance level: {shown} (readout: a digit on every track, its identity guessed at random; "
                     f"a prediction that shows nothing reads 0 / 6 px; hedging, two digits drawn on one track, "
                     f"sharp or blurred, reads 0.03-0.07 / 5.69-5.90 px and a digit-free blob 0.00-0.01 / "
                     f"5.97-5.99 px, vidbench/metrics/readout.py).")
    return lines


def table_title(table: Table) -> str:
    sources = {r.source for r in table.rows}
    if sources == {PAPER}:
        return "The paper's Table 1 (reported by the authors, not measured here)"
    measured = [p for p in table.protocols() if any(c.protocol == p for r in table.rows if r.source != PAPER
                                                    for c in r.values)]
    what = "Measured by vidbench" + (f" on {', '.join(measured)}" if measured else ": no results yet")
    return what + (" and the paper's rows, ranked together" if PAPER in sources else "")


def missing_notes(table: Table) -> list[str]:
    """One line per distinct reason a measured cell is missing (e.g. FVD: I3D weights not found)."""
    notes = {}
    for row in table.rows:
        for c, why in row.notes.items():
            notes.setdefault(f"{c.protocol} {c.metric.label}: {why}", []).append(row.label)
    return [f"{k} ({', '.join(v)})" for k, v in notes.items()]


def to_markdown(table: Table) -> str:
    head = ["model", "source"] + [f"{c.protocol} {c.metric.label} {_arrow(c.metric)}" for c in table.columns] + ["mean rank"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in table.rows:
        cells = []
        for c in table.columns:
            text = format_value(row, c) or ("n/a" if c in row.notes else "–")
            text = f"**{text}**" if c in row.bold else text
            text += RAW_MARK if c in row.raw else ""
            cells.append((text + TIED_MARK if c in row.tied else text) + format_spread(row, c))
        rank = f"{format_rank(row)}{format_rank_ci(row)} ({row.num_ranked})" if row.mean_rank is not None else "–"
        lines.append("| " + " | ".join([row.display_label, row.shown_kind] + cells + [rank]) + " |")
    notes = rules_text(table) + table.stat_notes + [f"n/a: {n}" for n in missing_notes(table)]
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$",
        "{": r"\{", "}": r"\}", "~": r"\~{}", "^": r"\^{}"}


def _tex_escape(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in s)


def to_latex(table: Table) -> str:
    """A booktabs table like the paper's: one column group per protocol."""
    groups = [(p, [c for c in table.columns if c.protocol == p]) for p in table.protocols()]
    spec = "ll" + "".join("|" + "r" * len(cols) for _, cols in groups) + "|r"
    out = [r"\begin{tabular}{" + spec + "}", r"\toprule"]
    out.append(" & ".join(["", ""] + [rf"\multicolumn{{{len(cols)}}}{{c|}}{{{_tex_escape(p)}}}" for p, cols in groups]
                          + ["Mean"]) + r" \\")
    out.append(" & ".join(["Model", "Source"] + [_tex_escape(c.metric.label) + ("$\\uparrow$" if c.metric.higher_is_better
                                                                                else "$\\downarrow$")
                                                 for _, cols in groups for c in cols] + ["Rank"]) + r" \\")
    out.append(r"\midrule")
    previous = None
    for row in table.rows:
        if previous is not None and row.source != previous:
            out.append(r"\midrule")
        previous = row.source
        cells = []
        for _, cols in groups:
            for c in cols:
                text = format_value(row, c) or ("n/a" if c in row.notes else "--")
                text = rf"\textbf{{{text}}}" if c in row.bold else text
                text += r"$^{\dagger}$" if c in row.raw else ""
                cells.append(text + r"$^{\approx}$" if c in row.tied else text)
        out.append(" & ".join([_tex_escape(row.display_label), row.shown_kind] + cells
                              + [format_rank(row) or "--"]) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n" + "".join(f"% {n}\n" for n in rules_text(table) + table.stat_notes)


def to_csv(table: Table) -> str:
    """Full-precision values (not rounded), one row per model; bold and ranks as separate columns."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = [f"{c.protocol}/{c.key}" for c in table.columns]
    # the statistics columns sit before mean_rank, num_ranked, which stay last (readers take them from the end)
    w.writerow(["model", "source", "family"] + names + [f"rank:{n}" for n in names]
               + [f"not_different_from_best:{n}" for n in names] + ["mean_rank_low", "mean_rank_high"]
               + ["mean_rank", "num_ranked"])
    for row in table.rows:
        vals = [repr(row.values[c]) if c in row.values else "" for c in table.columns]
        ranks = [str(row.ranks[c]) if c in row.ranks else "" for c in table.columns]
        mean = "" if row.mean_rank is None else repr(row.mean_rank)
        ci = [repr(x) for x in row.rank_ci] if row.rank_ci else ["", ""]
        tied = [str(c in row.tied) if c in row.ranks else "" for c in table.columns]
        w.writerow([row.label, row.source, row.family] + vals + ranks + tied + ci + [mean, row.num_ranked])
    return buf.getvalue()


def to_html_table(table: Table, table_id: str = "leaderboard") -> str:
    """The table as an HTML fragment (the page wraps it); paper rows get their own class and label."""
    from html import escape

    groups = [(p, [c for c in table.columns if c.protocol == p]) for p in table.protocols()]
    out = [f'<table class="leaderboard" id="{escape(table_id, quote=True)}">', "<thead><tr><th rowspan=2>model</th><th rowspan=2>source</th>"]
    out += [f'<th colspan={len(cols)} class="group">{escape(p)}</th>' for p, cols in groups]
    out.append("<th rowspan=2>mean rank</th></tr><tr>")
    out += [f"<th>{escape(c.metric.label)} {_arrow(c.metric)}</th>" for _, cols in groups for c in cols]
    out.append("</tr></thead><tbody>")
    for row in table.rows:
        out.append(f'<tr class="{row.source}"><td class="model">{escape(row.display_label)}</td>'
                   f'<td>{escape(row.shown_kind)}</td>')
        for c in table.columns:
            text = format_value(row, c)
            if not text:
                title = escape(row.notes.get(c, "not run"), quote=True)
                out.append(f'<td class="missing" title="{title}">{"n/a" if c in row.notes else "–"}</td>')
            else:
                text = f"<b>{text}</b>" if c in row.bold else text
                text += f'<sup title="scored on raw decoder floats">{RAW_MARK}</sup>' if c in row.raw else ""
                mark = f'<sup title="not significantly different from the best">{TIED_MARK}</sup>' if c in row.tied else ""
                out.append(f"<td>{text}{mark}<small>{format_spread(row, c)}</small></td>")
        rank = (f"{format_rank(row)}<small>{format_rank_ci(row)} ({row.num_ranked})</small>"
                if row.mean_rank is not None else "–")
        out.append(f'<td class="rank">{rank}</td></tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


FORMATS = {"md": ("table.md", to_markdown), "tex": ("table.tex", to_latex), "csv": ("table.csv", to_csv)}
