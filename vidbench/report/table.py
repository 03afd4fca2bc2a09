"""Table 1 from results files: rows = models, column groups = protocols (datasets) x {SSIM, PSNR, LPIPS, FVD}.

    vidbench leaderboard                                  # leaderboard/results -> leaderboard/{table.*,figures,index.html}
    vidbench leaderboard --protocol mmnist-short@1 --format tex

Rules (the paper's, Table 1 caption, made exact):
- Bold: the best value of a column and every value within 5% of it (|v - best| <= 0.05 |best|), with the
  direction per metric (SSIM, PSNR higher is better; LPIPS, FVD lower).
- Bold (never a value worse than chance) and the balanced mean rank: ranking.py; each row's provenance: origin.py.
- A missing cell (metric not computed, unavailable, or the model not run on that protocol) is shown as
  missing and is not ranked: it neither takes a rank nor pushes other rows down; the row's mean rank
  averages the cells it has, and the count is shown beside it.
- Each column holds one protocol, so only results of the same protocol are compared.
- The paper's rows are ranked among themselves, never with measured rows, unless `rank_paper=True`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vidbench.evaluate.paired import seed_of
from vidbench.evaluate.results import Result
from vidbench.report import paper
from vidbench.report.origin import ZOO, provenance
from vidbench.report.ranking import balanced_mean_rank, rank_and_bold

MEASURED, PAPER = "measured", "paper"


@dataclass(frozen=True)
class Metric:
    label: str                 # column header: "SSIM"
    higher_is_better: bool
    decimals: int              # display precision; ranks compare values at this precision
    ranked: bool = True        # counts in the mean rank
    blur_robust: bool = True   # False: SSIM and PSNR, which a blurred mean frame scores well on


# Summary keys per convention: "standard" (tf.image.ssim, per-frame PSNR) or "cwvae" (the authors' eval,
# which produced the paper's numbers; see ../shared/REFERENCE.md section 2).
CONVENTIONS = {
    "standard": {"SSIM": "ssim", "PSNR": "psnr", "LPIPS": "lpips", "FVD": "fvd"},
    "cwvae": {"SSIM": "ssim_cwvae", "PSNR": "psnr_cwvae", "LPIPS": "lpips", "FVD": "fvd"},
}
TABLE1_METRICS = {
    "SSIM": Metric("SSIM", True, 3, blur_robust=False), "PSNR": Metric("PSNR", True, 2, blur_robust=False),
    "LPIPS": Metric("LPIPS", False, 3), "FVD": Metric("FVD", False, 0),
}
# Beyond the paper (issue 7): the Moving MNIST readout, shown where a result has it. Digit accuracy joins the mean
# rank's blur-robust half (issue 25); the position error, coupled to it by design, does not count twice.
EXTRA_METRICS = {
    "readout_accuracy": Metric("Digit acc.", True, 3),
    "readout_position_error": Metric("Pos. err. (px)", False, 2, ranked=False),
    # KVD (issue 24): the kernel distance on FVD's features, unbiased at every set size (metrics/kvd.py)
    "kvd": Metric("KVD", False, 3, ranked=False),
}


@dataclass(frozen=True)
class Column:
    protocol: str
    key: str                   # summary key read from results ("ssim", "fvd", "readout_accuracy")
    metric: Metric

    @property
    def dataset(self) -> str:
        return self.protocol.split("@")[0]


@dataclass
class Row:
    label: str
    source: str                                       # MEASURED, ZOO (report/origin.py) or PAPER
    family: str = ""
    values: dict[Column, float] = field(default_factory=dict)
    notes: dict[Column, str] = field(default_factory=dict)  # why a cell is missing
    ranks: dict[Column, int] = field(default_factory=dict)
    bold: set[Column] = field(default_factory=set)
    results: list[Result] = field(default_factory=list)
    tied: set[Column] = field(default_factory=set)       # not significantly different from the best (significance.py)
    rank_ci: tuple[float, float] | None = None            # 95% set for the mean rank (report/rank_intervals.py)
    spread: dict[Column, tuple[float, float, int]] = field(default_factory=dict)  # training seeds: min, max, count
    kind: str = ""                                        # provenance shown: measured / shipped / zoo / paper
    raw: set[Column] = field(default_factory=set)         # cells scored on raw decoder floats (*_cwvae of a CW-VAE)

    @property
    def mean_rank(self) -> float | None:
        return balanced_mean_rank({c: r for c, r in self.ranks.items() if c.metric.ranked})

    @property
    def shown_kind(self) -> str:
        return self.kind or self.source

    @property
    def num_ranked(self) -> int:
        return sum(1 for c in self.ranks if c.metric.ranked)

    @property
    def display_label(self) -> str:
        return f"{self.label} (paper, {paper.CONVENTION} convention)" if self.source == PAPER else self.label


@dataclass
class Table:
    columns: list[Column]
    rows: list[Row]
    convention: str
    rank_paper: bool
    warnings: list[str] = field(default_factory=list)
    chance: dict[str, float] = field(default_factory=dict)  # column key -> chance level, from the results files
    stat_notes: list[str] = field(default_factory=list)  # what significance.annotate computed, and what not

    def protocols(self) -> list[str]:
        return list(dict.fromkeys(c.protocol for c in self.columns))


def protocol_order(protocols) -> list[str]:
    """The paper's dataset order first (MineRL, KTH, Mazes, Moving MNIST), then by name: stable output."""
    datasets = list(paper.DATASETS)

    def key(p):
        d = p.split("@")[0]
        return (datasets.index(d) if d in datasets else len(datasets), p)

    return sorted(set(protocols), key=key)


def paper_protocol(dataset: str) -> str:
    """The protocol that reproduces the authors' evaluation of a dataset (the paper's rows sit there)."""
    return f"{dataset}@1"


def build_table(results: list[Result], *, with_paper: bool = True, rank_paper: bool = False,
                convention: str = "standard") -> Table:
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(CONVENTIONS)}, got {convention!r}")
    keys = CONVENTIONS[convention]
    warnings = []
    # One row per model label; a second result for the same (model, protocol, training seed) replaces the
    # first in path order, and says so. Training seeds of one model (run names ending in -seed<N>) share a
    # row: its cell is the mean over seeds, with their spread beside it.
    rows: dict[str, Row] = {}
    seen: dict[tuple[str, str, int | None], Result] = {}
    for r in results:
        model, seed = seed_of(r)
        if (model, r.protocol, seed) in seen:
            warnings.append(f"{r.path.name}: replaces {seen[model, r.protocol, seed].path.name} for {r.model} on {r.protocol}")
        seen[model, r.protocol, seed] = r
    for (model, _, _), r in seen.items():
        # a zoo model's row says so in the source column (report/origin.py): GPU-trained, not a CPU demo run
        kind = provenance(r)
        row = rows.setdefault(model, Row(model, ZOO if kind == ZOO else MEASURED, family=r.family))
        row.results.append(r)
        row.kind = ", ".join(dict.fromkeys([*filter(None, row.kind.split(", ")), kind]))

    protocols = {r.protocol for r in seen.values()}
    if with_paper:
        protocols |= {paper_protocol(d) for d in paper.DATASETS}
    columns = []
    for p in protocol_order(protocols):
        columns += [Column(p, keys[m], TABLE1_METRICS[m]) for m in paper.METRICS]
        columns += [Column(p, key, metric) for key, metric in EXTRA_METRICS.items()
                    if any(r.protocol == p and key in r.summary for r in seen.values())]

    for row in rows.values():
        for c in columns:
            mine = [r for r in row.results if r.protocol == c.protocol]
            values = [r.value(c.key) for r in mine]
            if mine and all(v is not None for v in values):
                row.values[c] = sum(values) / len(values)
                if any(c.key in ((r.raw.get("conventions") or {}).get("raw_frames") or []) for r in mine):
                    row.raw.add(c)
                if len(values) > 1:
                    row.spread[c] = (min(values), max(values), len(values))
            elif mine:
                r = next(r for r, v in zip(mine, values) if v is None)
                row.notes[c] = short_reason(r.unavailable[c.key]) if c.key in r.unavailable else f"{c.key} not computed"
    paper_rows = []
    if with_paper:
        # Exactly `<dataset>@1`: a modified protocol ("mmnist@1[horizon=64]") is not the paper's evaluation.
        at = {(c.protocol, c.metric.label): c for c in columns if c.metric.ranked}
        for model, cells in paper.table1_rows().items():
            row = Row(model, PAPER, family=paper.MODEL_FAMILY[model])
            for (dataset, metric), v in cells.items():
                row.values[at[paper_protocol(dataset), metric]] = v
            paper_rows.append(row)

    measured = sorted(rows.values(), key=lambda r: r.label)
    keys_shown = {c.key for c in columns}
    chance = {k: v for r in seen.values() for k, v in r.chance.items() if k in keys_shown}
    pools = [measured + paper_rows] if rank_paper else [measured, paper_rows]
    for pool in pools:
        rank_and_bold(pool, columns, chance)
    measured.sort(key=lambda r: (r.mean_rank is None, r.mean_rank or 0.0, r.label))
    return Table(columns, measured + paper_rows, convention, rank_paper, warnings, chance)

def short_reason(why: str) -> str:
    """A results file's reason for a missing metric, cut to its first clause with no path of the machine that
    wrote it (the full text, with where to put the weight file, stays in the results file)."""
    first = re.split(r" \(|; |\. ", str(why), maxsplit=1)[0]
    return re.sub(r"(?:[A-Za-z]:)?(?:/[^/\s]+)+/([^/\s]+)", r"\1", first).strip()

