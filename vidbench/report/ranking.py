"""Ranking rules of the leaderboard (table.py builds the table with them, significance.py resamples them).

- Bold needs a value at least as good as chance where chance is known (the readout): a cell worse than
  chance is never bold, and a column whose best is worse than chance has no bold at all.
- Rank per column: 1 + the number of rows strictly better, on the values as displayed (so tied values
  share the better rank: this reproduces the paper's mean ranks 2.25, 3.62, 2.75, 3.31, 2.62 from its
  own numbers).
- Mean rank, balanced so that blur cannot win it (issue 25): the mean of two halves, the blur-friendly
  metrics (SSIM, PSNR: a blurred mean frame scores well on both) and the blur-robust ones (LPIPS, FVD and,
  on Moving MNIST, the readout's digit accuracy). With all four of Table 1 it equals the plain mean over the
  four (the paper's ranks are reproduced); with LPIPS and FVD unavailable the digit accuracy is the second
  half; a row with no blur-robust cell gets no mean rank, and the notes say why.
"""

from __future__ import annotations

from vidbench.report import paper


def balanced_mean_rank(ranks: dict) -> float | None:
    """{Column: rank} -> the mean of the blur-friendly half's mean and the blur-robust half's mean (the
    module's rules); None without a blur-robust rank."""
    robust = [r for c, r in ranks.items() if c.metric.blur_robust]
    friendly = [r for c, r in ranks.items() if not c.metric.blur_robust]
    if not robust:
        return None
    halves = [sum(h) / len(h) for h in (friendly, robust) if h]
    return sum(halves) / len(halves)


def worse_than_chance(c, value: float, chance: dict[str, float]) -> bool:
    """A value on the wrong side of table.Column c's chance level (where the results state one)."""
    if c.key not in chance:
        return False
    return value < chance[c.key] if c.metric.higher_is_better else value > chance[c.key]


def rank_and_bold(rows: list, columns: list, chance: dict[str, float] | None = None) -> None:
    """Competition ranking ("1224") per table.Column over the table.Rows that have the cell, and the 5% bold rule among
    the cells no worse than chance."""
    chance = chance or {}
    for c in columns:
        sign = 1 if c.metric.higher_is_better else -1
        present = [(row, round(row.values[c], c.metric.decimals)) for row in rows if c in row.values]
        if not present:
            continue
        for row, v in present:
            row.ranks[c] = 1 + sum(1 for _, w in present if sign * w > sign * v)
        best = max(sign * v for _, v in present) * sign
        for row, v in present:
            if abs(v - best) <= paper.BOLD_WITHIN * abs(best) + 1e-12 and not worse_than_chance(c, row.values[c], chance):
                row.bold.add(c)
