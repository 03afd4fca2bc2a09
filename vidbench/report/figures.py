"""The paper's figures, redrawn from results files (matplotlib, Agg backend: no display needed).

- ranks.png              mean rank per model (paper Figure 5)
- curves-<protocol>.png  every per-frame metric over the prediction horizon with 95% bands (Figure E.1)
- fvd-<protocol>.png     FVD of growing prefixes of the prediction (Figure E.1's FVD panel)
- abstraction-<protocol>.png  one metric over the horizon for CW-VAEs with different temporal abstraction
                         factors k, beside the baselines (Figure 1); only where two or more k were evaluated
- kl-levels.png          KL per level from `vidbench analyze kl` beside the paper's Table 2

Each function returns the path it wrote, or None when there is nothing to draw.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidbench.evaluate.results import Result
from vidbench.report import paper

# Per-frame metrics in the order of the paper's figure, then the readout (beyond the paper).
CURVE_ORDER = ("ssim", "ssim_cwvae", "psnr", "psnr_cwvae", "lpips", "readout_accuracy", "readout_position_error")
LABELS = {"ssim": "SSIM", "ssim_cwvae": "SSIM (authors' eval)", "psnr": "PSNR (dB)", "psnr_cwvae": "PSNR (authors' eval)",
          "lpips": "LPIPS", "readout_accuracy": "digit accuracy (readout)", "readout_position_error": "position error (px)",
          "fvd": "FVD"}
BASELINE_FAMILIES = ("rssm", "svg", "vta", "notmpabs", "random-frame", "copy-last")
Z95 = 1.959964  # two-sided 95% normal quantile


@dataclass
class Figure:
    path: Path
    title: str
    caption: str


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    import io

    from vidbench.fileio import atomic_write_bytes

    buffer = io.BytesIO()
    # No timestamp or version in the PNG: the same inputs give the same bytes.
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    _plt().close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _colors(labels) -> dict[str, tuple]:
    cmap = _plt().get_cmap("tab10")
    return {label: cmap(i % 10) for i, label in enumerate(sorted(labels))}


def rank_bars(tables, path: Path) -> Path | None:
    """Mean rank per row, one panel per table (measured; the paper's), each titled with the protocols its
    ranks rest on; every bar says how many cells its mean rank averages."""
    from vidbench.report.table import PAPER

    panels = [(t, [r for r in t.rows if r.mean_rank is not None]) for t in tables]
    panels = [(t, rows) for t, rows in panels if rows]
    if not panels:
        return None
    pools = [rows for _, rows in panels]
    plt = _plt()
    fig, axes = plt.subplots(1, len(pools), figsize=(5.5 * len(pools), 0.45 * max(len(p) for p in pools) + 1.6),
                             squeeze=False)
    for ax, (table, pool) in zip(axes[0], panels):
        pool = sorted(pool, key=lambda r: (r.mean_rank, r.display_label))
        colors = ["0.6" if r.source == PAPER else "tab:blue" for r in pool]
        ax.barh(range(len(pool)), [r.mean_rank for r in pool], color=colors)
        spread = [(i, r) for i, r in enumerate(pool) if r.rank_ci is not None]  # report/rank_intervals.py
        if spread:
            ax.errorbar([r.mean_rank for _, r in spread], [i for i, _ in spread], fmt="none", ecolor="black",
                        capsize=3, xerr=np.array([[r.mean_rank - r.rank_ci[0], r.rank_ci[1] - r.mean_rank]
                                                  for _, r in spread]).T.clip(0))
        ax.set_yticks(range(len(pool)), [f"{r.display_label} ({r.num_ranked})" for r in pool])
        ax.invert_yaxis()
        ax.set_xlabel("mean rank (lower is better; cells it rests on in brackets)")
        ax.set_xlim(0, max(max(r.mean_rank, (r.rank_ci or (0, 0))[1]) for r in pool) + 0.5)
        sources = {r.source for r in pool}
        ranked = [p for p in table.protocols() if any(c.protocol == p for r in pool for c in r.ranks)]
        where = "; ".join(ranked) if len(ranked) <= 2 else f"{len(ranked)} protocols"
        ax.set_title(("paper's Table 1 (reported)" if sources == {PAPER} else
                      "measured + paper" if len(sources) > 1 else "measured (vidbench)") + f"\non {where}",
                     fontsize=9)
        for i, r in enumerate(pool):
            ax.text(r.mean_rank + 0.05, i, f"{r.mean_rank:.2f}", va="center", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _band(result: Result, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """mean, low, high over the horizon: a 95% normal band of the mean over videos when the number of
    videos is known, else +-1 std over videos."""
    curve = result.per_timestep[metric]
    mean = np.asarray(curve["mean"], dtype=float)
    std = np.asarray(curve.get("std") or np.zeros_like(mean), dtype=float)
    if result.num_videos and result.num_videos > 1:
        half, kind = Z95 * std / math.sqrt(result.num_videos), "95% CI of the mean over videos"
    else:
        half, kind = std, "+-1 std over videos"
    return mean, mean - half, mean + half, kind


def metric_curves(results: list[Result], protocol: str, path: Path) -> Figure | None:
    results = [r for r in results if r.protocol == protocol and r.per_timestep]
    metrics = [m for m in CURVE_ORDER if any(m in r.per_timestep for r in results)]
    metrics += sorted({m for r in results for m in r.per_timestep} - set(metrics))
    if not metrics:
        return None
    plt = _plt()
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.3 * rows), squeeze=False)
    colors = _colors(r.model for r in results)
    kinds = set()
    for ax, metric in zip(axes.flat, metrics):
        for r in sorted(results, key=lambda r: r.model):
            if metric not in r.per_timestep:
                continue
            mean, lo, hi, kind = _band(r, metric)
            kinds.add(kind)
            x = np.arange(1, len(mean) + 1)
            ax.plot(x, mean, color=colors[r.model], label=r.model, lw=1.3)
            ax.fill_between(x, lo, hi, color=colors[r.model], alpha=0.2, lw=0)
        chance = next((r.chance[metric] for r in results if metric in r.chance), None)
        if chance is not None:  # the level stated in the results file (readout: identity guessed at random)
            ax.axhline(chance, color="0.4", ls=":", lw=1, label="chance")
        ax.set_title(LABELS.get(metric, metric))
        ax.set_xlabel("frames predicted")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"{protocol}: metrics over the prediction horizon", fontsize=10)
    fig.tight_layout()
    return Figure(_save(fig, path), f"Metrics over the horizon ({protocol})",
                  f"Per-frame mean over test videos; bands: {' / '.join(sorted(kinds))}.")


def fvd_prefixes(results: list[Result], protocol: str, path: Path) -> Figure | None:
    results = [r for r in results if r.protocol == protocol and len(r.fvd) > 1]
    if not results:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    colors = _colors(r.model for r in results)
    for r in sorted(results, key=lambda r: r.model):
        lengths = sorted(r.fvd)
        ax.plot(lengths, [r.fvd[n] for n in lengths], "o-", color=colors[r.model], label=r.model, ms=3)
        ci = r.raw.get("fvd_ci") or {}  # expected FVD at this set size (evaluate/fvd_features.py)
        shown = [n for n in lengths if str(n) in ci]
        if shown:
            ax.fill_between(shown, [ci[str(n)][0] for n in shown], [ci[str(n)][1] for n in shown],
                            color=colors[r.model], alpha=0.15, lw=0)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("prefix length (frames predicted)")
    ax.set_ylabel("FVD (lower is better)")
    ax.set_title(f"{protocol}: FVD of growing prefixes")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return Figure(_save(fig, path), f"FVD over growing prefixes ({protocol})",
                  "FVD of the first n predicted frames against the same frames of the test videos (paper: "
                  "'FVD for growing sub-sequences along the prediction horizon'); bands: 95% intervals on "
                  "the expected FVD at this set size (jackknife over test videos) where the results have them.")


def abstraction_curves(results: list[Result], protocol: str, path: Path) -> Figure | None:
    """Figure 1: CW-VAEs that differ in their temporal abstraction factor k, and the baselines."""
    results = [r for r in results if r.protocol == protocol]
    cwvaes = [r for r in results if r.family == "cwvae" and r.config.get("k") and (r.config.get("levels") or 1) > 1]
    if len({r.config["k"] for r in cwvaes}) < 2:
        return None
    baselines = [r for r in results if r.family in BASELINE_FAMILIES]
    metric = next((m for m in ("readout_accuracy", "ssim", "ssim_cwvae", "psnr")
                   if all(m in r.per_timestep for r in cwvaes + baselines)), None)
    if metric is None:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    shades = plt.get_cmap("viridis")
    for i, r in enumerate(sorted(cwvaes, key=lambda r: (r.config["k"], r.model))):
        mean = np.asarray(r.per_timestep[metric]["mean"])
        ax.plot(np.arange(1, len(mean) + 1), mean, color=shades(i / max(1, len(cwvaes) - 1)),
                label=f"CW-VAE k={r.config['k']} ({r.model})", lw=1.5)
    for r in sorted(baselines, key=lambda r: r.model):
        mean = np.asarray(r.per_timestep[metric]["mean"])
        style = ":" if r.family in ("random-frame", "copy-last") else "--"
        ax.plot(np.arange(1, len(mean) + 1), mean, style, color="0.3" if style == ":" else None, label=r.model, lw=1.2)
    ax.set_xlabel("frames predicted (distance)")
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.set_title(f"{protocol}: temporal abstraction vs. distance", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return Figure(_save(fig, path), f"Temporal abstraction ({protocol})",
                  f"{LABELS.get(metric, metric)} over the horizon for CW-VAEs with different k (paper Figure 1).")


def kl_levels(records: list[dict], path: Path) -> Figure | None:
    """Grouped bars of KL per level: records of `vidbench analyze kl`, and the paper's Table 2 beside them."""
    plt = _plt()
    panels = [("measured (vidbench analyze kl)", [(f"{r['model']} (L={len(r['kl_per_level'])}, k={r.get('k')})",
                                                   r["kl_per_level"]) for r in records])] if records else []
    panels.append(("paper Table 2 (reported, Moving MNIST)",
                   [(f"{n}-level" + (f", k={v['k']}" if v["k"] else ""), list(v["kl"]))
                    for n, v in sorted(paper.TABLE2.items(), reverse=True)]))
    # One shared log axis: a measured model's KL reads directly against the paper's.
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False, sharey=True)
    top = max(max(kl) for _, groups in panels for _, kl in groups) * 100  # headroom for the legend
    level_colors = plt.get_cmap("Blues")
    for ax, (title, groups) in zip(axes[0], panels):
        width = 0.8 / max(len(kl) for _, kl in groups)
        for g, (_, kl) in enumerate(groups):
            for level, value in enumerate(kl):
                ax.bar(g + (level - (len(kl) - 1) / 2) * width, max(value, 1e-4), width,
                       color=level_colors(0.35 + 0.6 * level / 3), edgecolor="k", lw=0.4,
                       label=f"level {level + 1}" if g == 0 or level >= len(groups[0][1]) else None)
        ax.set_xticks(range(len(groups)), [name for name, _ in groups], rotation=15, fontsize=7, ha="right")
        ax.set_xlim(-0.6, max(len(groups), 3) - 0.4)  # one measured model still gets bars of the paper's width
        ax.set_yscale("log")
        ax.set_ylim(1e-4, top)
        ax.set_ylabel("KL summed over a sequence (nats)")
        ax.set_title(title, fontsize=9)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=7, ncol=4, loc="upper center")
    fig.tight_layout()
    return Figure(_save(fig, path), "KL per level (Table 2)",
                  "KL(q||p) per level (level 1 = lowest, fastest), summed over the time steps of a sequence and "
                  "averaged over test sequences; an upper bound on the information each level takes in.")


def all_figures(tables, results: list[Result], kl_records: list[dict], out: Path) -> list[Figure]:
    """Every figure the inputs allow, in the page's order. Text is drawn as written: model and run names come
    from results files, and a name like `$\\foo$` must not reach matplotlib's mathtext (which fails the page)."""
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False}):
        return _all_figures(tables, results, kl_records, Path(out))


def _all_figures(tables, results, kl_records, out: Path) -> list[Figure]:
    figures = []
    ranks = rank_bars(tables, out / "ranks.png")
    if ranks:
        figures.append(Figure(ranks, "Mean rank (Figure 5)",
                              "Mean rank over the SSIM, PSNR, LPIPS and FVD cells of each row (count in brackets); "
                              "error bars: 95% set for the mean rank from population values (docs/intervals.md; none "
                              "for the paper's rows, which have no per-video numbers)."))
    for protocol in sorted({r.protocol for r in results}):
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", protocol)
        for make, name in ((metric_curves, "curves"), (fvd_prefixes, "fvd"), (abstraction_curves, "abstraction")):
            fig = make(results, protocol, out / f"{name}-{safe}.png")
            if fig:
                figures.append(fig)
    figures.append(kl_levels(kl_records, out / "kl-levels.png"))
    return figures
