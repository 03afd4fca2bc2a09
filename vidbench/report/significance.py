"""Statistics on a built leaderboard table: which cells are not significantly different from the column's
best, and an interval on every row's mean rank (report/rank_intervals.py). Sits above table.py (which knows
nothing of it) and is called by publish.build_tables.

Both rest on per-video data: a frame metric's per-video means (results "per_video") and FVD's per-video I3D
features (<results>.fvd.npz). Rows of one protocol score the same test videos, so their differences are
paired (evaluate/paired.py: t intervals over the same videos, docs/intervals.md). A cell without per-video
data (the paper's rows, results written before per-video data existed, FVD without its features file) takes
part in the ranking at its value, adds no uncertainty, and gets no marker. FVD keeps its value in the rank
intervals even with its features (rank_intervals.py says why); its marker uses the paired jackknife test of
metrics/fvd_stats.py.
"""

from __future__ import annotations

import numpy as np

from vidbench.evaluate.paired import features_path, fvd_features, paired_interval, scored_as
from vidbench.report.rank_intervals import rank_intervals
from vidbench.report.ranking import worse_than_chance
from vidbench.report.table import PAPER, Column, Row, Table

LEVEL = 0.95
DISTANCES = ("fvd", "kvd")  # cells computed from the stored per-video I3D features
MARK = "≈"             # beside a value: not significantly different from the column's best


def cell_data(row: Row, c: Column):
    """("frame", per-video [seeds, V]) or ("fvd" | "kvd", real [V,D], fake [V,S,D]) or None, for a measured cell.
    A row of several training seeds has FVD data None: FVD is one evaluation's set statistic."""
    if row.source == PAPER or c not in row.values:
        return None
    mine = [r for r in row.results if r.protocol == c.protocol]
    if c.key in DISTANCES:
        stored = fvd_features(mine[0]) if _has_features(row, c) else None
        if stored is None:
            return None
        prefixes, real, fake = stored
        last = prefixes.index(max(prefixes))  # the summary FVD (and KVD) is the longest prefix's
        return c.key, real[:, last], fake[:, :, last]
    values = [(r.raw.get("per_video") or {}).get(c.key) for r in mine]
    if not values or any(not v for v in values) or len({len(v) for v in values}) > 1:
        return None
    return "frame", np.asarray(values, dtype=np.float64)


def _videos(data) -> int:
    return data[1].shape[-1] if data[0] == "frame" else len(data[1])


def _videos_key(row: Row, protocol: str):
    for r in row.results:
        if r.protocol == protocol:
            return (r.raw.get("dataset") or {}).get("test_data_sha256"), r.num_videos
    return None


def mark_not_different(rows: list[Row], columns: list[Column], chance: dict[str, float] | None = None) -> list[str]:
    """Fill row.tied[c] for the best row(s) of every column and every row whose paired difference to the
    best is not significant, among the cells no worse than chance (where the results state one: a value worse
    than chance is never marked, and a column whose best is worse than chance gets no marks). Returns notes on
    columns that could not be tested."""
    notes = []
    for c in columns:
        ranked = [r for r in rows if c in r.ranks]
        if any(r.ranks[c] == 1 and worse_than_chance(c, r.values[c], chance or {}) for r in ranked):
            notes.append(f"{c.protocol} {c.metric.label}: no {MARK} marks; the column's best is worse than chance")
            continue
        ranked = [r for r in ranked if not worse_than_chance(c, r.values[c], chance or {})]
        best = [r for r in ranked if r.ranks[c] == 1 and cell_data(r, c) is not None]
        if not best:
            if any(cell_data(r, c) is not None for r in ranked):  # else nothing here could be tested at all
                labels = ", ".join(r.label for r in ranked if r.ranks[c] == 1)
                notes.append(f"{c.protocol} {c.metric.label}: no {MARK} marks; the column's best ({labels}) has no "
                             f"per-video numbers to test the other rows against")
            continue
        ref = best[0]
        key = _videos_key(ref, c.protocol)
        ref_data = cell_data(ref, c)
        why = _no_distance_test(ref_data)
        if why:  # FVD at a set size with no honest paired test: no marks in the column (not even the best's)
            notes.append(f"{c.protocol} {c.metric.label}: no {MARK} marks; {why}")
            continue
        for row in ranked:
            data = cell_data(row, c)
            if data is None:
                continue
            if _videos_key(row, c.protocol) != key or _videos(data) != _videos(ref_data):
                notes.append(f"{c.protocol} {c.metric.label}: {row.label} scored other test videos than "
                             f"{ref.label}; not tested against the best")
                continue
            if row is ref:
                row.tied.add(c)
                continue
            if _scored(row, c) != _scored(ref, c):  # comparability per metric: another convention is not tested
                notes.append(f"{c.protocol} {c.metric.label}: {row.label} scored {c.key} on {_scored(row, c)}, "
                             f"{ref.label} (the best) on {_scored(ref, c)}; not tested against the best")
                continue
            if data[0] == "frame":
                _, low, high = paired_interval(data[1], ref_data[1], LEVEL)
            else:
                low, high = _distance_test(data, ref_data)
            if low <= 0 <= high:
                row.tied.add(c)
    return notes


def _no_distance_test(data) -> str | None:
    """Why a distance column has no paired test at its set size (FVD under 5 videos per dimension)."""
    if data[0] != "fvd":
        return None
    from vidbench.metrics.fvd_stats import population_reason  # torch: only where FVD features exist

    return population_reason(len(data[1]), data[1].shape[-1], paired=True)


def _distance_test(data, ref_data) -> tuple[float, float]:
    """Paired interval of a distance cell minus the best's (metrics/fvd_stats.py, metrics/kvd.py); both sets
    large enough (_no_distance_test)."""
    if data[0] == "kvd":
        from vidbench.metrics.kvd import paired_kvd_difference as paired
    else:
        from vidbench.metrics.fvd_stats import paired_fvd_difference as paired
    d = paired(ref_data[1], data[2], ref_data[2], LEVEL)
    return (d.low, d.high) if d.low is not None else (np.nan, np.nan)


def _scored(row: Row, c: Column) -> str:
    """How the row's results scored the column's metric (frames, weights), as one comparable string."""
    return "; ".join(sorted({", ".join(f"{k} {v}" for k, v in scored_as(r, c.key).items())
                             for r in row.results if r.protocol == c.protocol}))


def annotate(table: Table) -> Table:
    """Markers and rank intervals for a table's pools (measured rows, the paper's rows: as build_table ranked
    them), and the notes that say what was and was not computed."""
    pools = [table.rows] if table.rank_paper else [[r for r in table.rows if r.source != PAPER],
                                                    [r for r in table.rows if r.source == PAPER]]
    notes = []
    for pool in pools:
        if not pool:
            continue
        notes += mark_not_different(pool, table.columns, table.chance)
        varied = rank_intervals(pool, table.columns, cell_data, held=lambda c: c.key in DISTANCES)
        if varied and _held_distances(pool, table.columns):
            notes.append("Mean-rank intervals hold FVD at its measured value: its small-set bias depends on each "
                         "model's feature covariance (docs/distances.md), so the intervals carry the frame metrics' "
                         "sampling spread only.")
        if not varied and any(r.source == PAPER for r in pool):
            notes.append("Mean-rank intervals: none for the paper's rows; the paper publishes no per-video numbers, "
                         "so their ranks are shown as printed, without sampling spread.")
        elif not varied:
            notes.append("Mean-rank intervals: none; these results carry no per-video numbers.")
    if any(r.rank_ci is not None for r in table.rows):  # said whether or not any cell has a mark
        notes.insert(0, f"[a, b] after a mean rank: a {LEVEL:.0%} set for the mean rank the model would get from its "
                        f"population values, from the row's pairwise intervals held together (Bonferroni), so a tie "
                        f"in truth keeps its shared rank (docs/intervals.md).")
    if any(r.tied for r in table.rows):
        notes.insert(0, f"{MARK}: not significantly different from the column's best (paired over the same test "
                        f"videos, {LEVEL:.0%}: t interval for frame metrics, jackknife for FVD and KVD).")
    notes += fvd_set_notes(table)
    table.stat_notes = list(dict.fromkeys(notes))
    return table


def _has_features(row: Row, c: Column) -> bool:
    """Whether a measured distance cell has its per-video I3D features stored (checked, not loaded): one
    evaluation of the cell's protocol with its features file beside the results."""
    mine = [r for r in row.results if r.protocol == c.protocol]
    return row.source != PAPER and c in row.values and len(mine) == 1 and features_path(mine[0]).is_file()


def _held_distances(rows: list[Row], columns: list[Column]) -> bool:
    """Whether a ranked distance column has a row with per-video features that rank_intervals held fixed."""
    return any(c.key in DISTANCES and c.metric.ranked and c in r.ranks and _has_features(r, c)
               for r in rows for c in columns)


def fvd_set_notes(table: Table) -> list[str]:
    """The set size behind every measured FVD, why it has no population interval where it has none (the
    results' fvd_inf reason), and the results' small-set warnings, once per protocol."""
    sizes, warned, no_interval = {}, {}, {}
    for row in table.rows:
        for r in row.results:
            population = r.raw.get("fvd_inf") or {}
            last = population.get(str(max(r.fvd))) if r.fvd else None
            if isinstance(last, dict) and last.get("reason"):
                no_interval.setdefault(r.protocol, last["reason"])
            size = r.raw.get("fvd_set_size")
            if isinstance(size, dict) and r.fvd:
                sizes.setdefault(r.protocol, set()).add(f"{size.get('real')} real / {size.get('generated')} generated")
            for w in r.raw.get("warnings") or []:
                if str(w).startswith("FVD"):
                    warned.setdefault(r.protocol, str(w))
    lines = [f"FVD set size on {p}: {', '.join(sorted(s))} videos." for p, s in sorted(sizes.items())]
    lines += [f"FVD on {p}: {why}." for p, why in sorted(no_interval.items())]
    return lines + [f"Warning, {p}: {w}" for p, w in sorted(warned.items())]
