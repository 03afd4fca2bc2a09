"""The interval after a leaderboard row's mean rank: a 95% set for the mean rank its model would get if every
cell were its population value (the mean over all test videos the protocol's distribution could draw), ranked
as the table ranks (competition ranks on displayed values, table.rank_and_bold; ranking.balanced_mean_rank).

Built from pairwise comparisons, as rank sets are in the rank-inference literature (Mogstad, Romano, Shaikh
and Wilhelm 2023): in each column, another row counts as surely better than this one when the paired interval
on their difference lies wholly beyond one display unit (then their displayed population values differ, in
that order), surely worse likewise. The column's rank then lies in [1 + surely better, rows - surely worse], and
the balanced mean rank, which never falls when a column's rank rises, between the mean of the lower ends and
the mean of the upper ends. The pairwise intervals are t intervals over the same test videos (adding training
seeds' spread where a row has several: evaluate/paired.py) at level 1 - 0.05 / m, m the row's comparisons
(Bonferroni), so all of one row's comparisons hold together with probability at least 0.95, and the set with them.

Why not the percentile bootstrap of the mean rank that vidbench used before: where two models are tied in
truth (equal population values, or values that display the same), both share the better rank, yet every
resample ranks one of them first, and the percentile interval of a row that the sample put second misses it.
Measured (tests/benchmarks/bench_rank_intervals.py, docs/intervals.md): a tied pair's coverage 0.66-0.72
at 16 and 100 videos; this interval covers in every world simulated, including ties.

A cell without per-video numbers (a results file written before they existed, another test-video count than
the column's others) and every distance cell (FVD: its small-set bias depends on each model's feature
covariance, docs/distances.md) takes part at its measured value, without spread; two such cells compare as
displayed. (From 2,000 videos FVD has an honest paired interval, fvd_stats.paired_fvd_difference; the sets do
not use it yet, so they carry the frame metrics' uncertainty only, and the notes under the table say so.)
"""

from __future__ import annotations

import numpy as np

from vidbench.evaluate.paired import paired_interval
from vidbench.report.ranking import balanced_mean_rank
from vidbench.report.table import Column, Row

LEVEL = 0.95


def rank_intervals(rows: list[Row], columns: list[Column], cell_data, held) -> bool:
    """row.rank_ci = (low, high) for every row with a mean rank, from cell_data(row, c) ("frame", [seeds, V])
    or None; held(c) is True for columns kept at their measured values (distances). Returns whether any cell
    had per-video data (if none did, every row keeps rank_ci None: its rank has no sampling spread)."""
    ranked = [c for c in columns if c.metric.ranked and any(c in r.ranks for r in rows)]
    data = {(i, c): None if held(c) else cell_data(r, c) for i, r in enumerate(rows) for c in ranked if c in r.ranks}
    if not any(d is not None for d in data.values()):
        return False
    videos = {}
    for (_, c), d in data.items():  # the column's test-video count: its first row with data
        if d is not None:
            videos.setdefault(c, d[1].shape[-1])
    data = {k: d if d is not None and d[1].shape[-1] == videos[k[1]] else None for k, d in data.items()}
    for i, row in enumerate(rows):
        if row.mean_rank is None:
            continue
        mine = [c for c in ranked if c in row.ranks]
        others = {c: [j for j in range(len(rows)) if j != i and (j, c) in data] for c in mine}
        uncertain = sum(1 for c in mine for j in others[c] if data[i, c] is not None or data[j, c] is not None)
        level = 1 - (1 - LEVEL) / max(1, uncertain)
        low, high = {}, {}
        for c in mine:
            better = worse = 0
            unit = 10.0 ** -c.metric.decimals * (1 - 1e-9)  # one display unit (less float rounding's error)
            for j in others[c]:
                lo, hi = _difference(rows, data, c, j, i, level)  # other minus this row, positive: better
                exact = data[i, c] is None and data[j, c] is None  # both held: their displayed values decide
                better += lo > 0 if exact else lo >= unit
                worse += hi < 0 if exact else hi <= -unit
            low[c], high[c] = 1 + better, 1 + len(others[c]) - worse
        row.rank_ci = (balanced_mean_rank(low), balanced_mean_rank(high))
    return True


def _difference(rows, data, c: Column, j: int, i: int, level: float) -> tuple[float, float]:
    """Interval on row j's population value minus row i's in column c, signed so that positive is better."""
    sign = 1.0 if c.metric.higher_is_better else -1.0
    dj, di = data[j, c], data[i, c]
    if dj is None and di is None:  # both held: as displayed
        d = sign * (round(rows[j].values[c], c.metric.decimals) - round(rows[i].values[c], c.metric.decimals))
        return d, d
    videos = (dj if dj is not None else di)[1].shape[-1]
    a = dj[1] if dj is not None else np.full((1, videos), rows[j].values[c])
    b = di[1] if di is not None else np.full((1, videos), rows[i].values[c])
    _, lo, hi = paired_interval(a, b, level)
    return (lo, hi) if sign > 0 else (-hi, -lo)
