"""The paper's claim, tested at equal budget (issue 23): a zoo CW-VAE against zoo RSSM and NoTmpAbs models
trained by the zoo's GPU job with the same wall-clock budget on the same device, compared on mmnist@1 per metric
and per band of predicted frames (1-100, 101-500, 501-964) with paired intervals, exactly as
`vidbench compare rival.json cwvae.json --bands default` does, beside the paper's Table 1 rows, and with each
verdict also at the level that holds jointly over every interval of the table (Bonferroni): a claim over
several bands and metrics rests on that one. The page shows it from the zoo rows the leaderboard reads; with
no such pair yet it says the claim is untested there.

Equal budget: the zoo job's budget is wall-clock (`--minutes`), so two models are at equal budget when their
lineages ran as many training runs on the same devices for training times within SAME_BUDGET of each other.
A pair that is not is still shown (the closest rival by training time), headed by why it is not equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from vidbench.errors import VidbenchError
from vidbench.evaluate.paired import Comparison
from vidbench.evaluate.results import Result
from vidbench.report import paper
from vidbench.report.origin import ZOO, Budget, provenance, training_budget

PROTOCOL = "mmnist@1"
CLAIMANT, RIVALS = "cwvae", ("rssm", "notmpabs")
PAPER_NAMES = {"cwvae": "CW-VAE", "rssm": "RSSM", "notmpabs": "NoTmpAbs"}
# Shown in this order where both files have them: the authors' conventions first (Table 1's), then vidbench's.
METRICS = ("ssim_cwvae", "psnr_cwvae", "ssim", "psnr", "readout_accuracy", "readout_position_error")
# Two training times this close are one budget: a wall-clock budget ends at the first step past it, and one
# step of the paper's mmnist preset is 0.04 s on an H100, so equal --minutes land well within 1%.
SAME_BUDGET = 0.05
LEVEL = 0.95


@dataclass
class Claim:
    claimant: Result
    rival: Result
    unequal: str | None                      # why the budgets differ; None: an equal-budget pair
    bands: list = field(default_factory=list)  # [((first, last), [Comparison])], difference = CW-VAE - rival
    joint: dict = field(default_factory=dict)  # (band, metric) -> Comparison at the Bonferroni level of the table
    error: str | None = None                 # why no comparison could be made (not comparable, no per-frame file)

    @property
    def shown(self) -> int:
        """How many intervals the table shows (bands x metrics): the joint verdicts hold over all of them."""
        return sum(len(_rows(rows)) for _, rows in self.bands)


def why_unequal(a: Budget, b: Budget) -> str | None:
    if a.devices != b.devices:
        return f"trained on other devices ({', '.join(a.devices) or '?'} vs {', '.join(b.devices) or '?'})"
    if a.runs != b.runs:
        return f"{a.runs} vs {b.runs} training runs"
    longer = max(a.wall_s, b.wall_s)
    if longer > 0 and abs(a.wall_s - b.wall_s) > SAME_BUDGET * longer:
        return f"training times differ by more than {SAME_BUDGET:.0%} ({a.wall_s / 60:.1f} vs {b.wall_s / 60:.1f} min)"
    return None


def find_claims(results: list[Result]) -> list[Claim]:
    """Every zoo CW-VAE on PROTOCOL against, per rival family, the zoo model closest to it in training time."""
    from vidbench.report.bands import compare_bands, parse_bands

    zoo = [r for r in results if r.protocol == PROTOCOL and provenance(r) == ZOO]
    claims = []
    for claimant in sorted((r for r in zoo if r.family == CLAIMANT), key=lambda r: training_budget(r).steps):
        mine = training_budget(claimant)
        for family in RIVALS:
            rivals = [r for r in zoo if r.family == family]
            if not rivals:
                continue
            rival = min(rivals, key=lambda r: abs(training_budget(r).wall_s - mine.wall_s))
            claim = Claim(claimant, rival, why_unequal(mine, training_budget(rival)))
            try:  # the rival is the baseline: differences read CW-VAE minus rival
                bands = parse_bands("default", claimant.horizon or 0)
                claim.bands = compare_bands([rival, claimant], bands, level=LEVEL)
                joint = compare_bands([rival, claimant], bands, level=1 - (1 - LEVEL) / max(1, claim.shown))
                claim.joint = {(band, c.metric): c for band, rows in joint for c in rows}
            except VidbenchError as e:
                claim.error = str(e)
            claims.append(claim)
    return claims


def _rows(comparisons: list[Comparison]) -> list[Comparison]:
    order = {m: i for i, m in enumerate(METRICS)}
    return sorted((c for c in comparisons if c.metric in order), key=lambda c: order[c.metric])


def _paper_line(families: tuple[str, str]) -> str:
    parts = []
    for family in families:
        name = PAPER_NAMES[family]
        values = paper.TABLE1.get(name, {}).get("mmnist")
        if values:
            parts.append(f"{name} " + ", ".join(f"{m} {v:g}" for m, v in zip(paper.METRICS, values)))
    return (f"The paper's Table 1 on Moving MNIST (authors' conventions, {paper.CONVENTION}; 2.5 GPU-days each): "
            + "; ".join(parts) + ".")


def render_html(claims: list[Claim]) -> str:
    head = f"<h2>The paper's claim at equal budget ({PROTOCOL})</h2>"
    if not claims:
        return head + ("<p><i>Not tested on this page: it holds no zoo CW-VAE with a zoo RSSM or NoTmpAbs on "
                       f"{PROTOCOL} (trained on a GPU by vidbench/zoo_job.py; README: Zoo and the GPU job).</i></p>")
    parts = [head, "<p>Difference = CW-VAE minus the rival, per band of predicted frames, with its paired 95% "
                   "interval over the same test videos (t interval: <code>vidbench compare RIVAL.json CWVAE.json "
                   "--bands default</code>). Each interval holds on its own; with many in one table some exclude 0 "
                   "by chance, so the last column gives the verdict that holds jointly over every interval of the "
                   "table (Bonferroni: each at 1 - 0.05 / their number). A claim over several bands or metrics "
                   "rests on that column.</p>"]
    for claim in claims:
        title = (f"{claim.claimant.model} vs {claim.rival.model}: "
                 + ("equal budget" if claim.unequal is None else f"NOT an equal-budget pair: {claim.unequal}"))
        lines = [f"{r.model}: {training_budget(r)}" for r in (claim.claimant, claim.rival)]
        lines.append(_paper_line((CLAIMANT, claim.rival.family)))
        parts.append(f"<h3>{escape(title)}</h3><ul class=notes>" + "".join(f"<li>{escape(x)}</li>" for x in lines)
                     + "</ul>")
        if claim.error:
            parts.append(f"<p><i>No comparison: {escape(claim.error)}</i></p>")
            continue
        cells = ["<table><thead><tr><th>frames</th><th>metric</th><th>CW-VAE</th><th>rival</th><th>difference</th>"
                 f"<th>95% interval</th><th>verdict</th><th>jointly, over the {claim.shown}</th></tr></thead><tbody>"]
        for (first, last), comparisons in claim.bands:
            for c in _rows(comparisons):
                joint = claim.joint.get(((first, last), c.metric))
                interval = "none" if c.low != c.low else f"[{c.low:.4g}, {c.high:.4g}]"
                arrow = "↑" if c.higher_is_better else "↓"
                cells.append(f"<tr><td>{first}-{last}</td><td class=model>{escape(c.metric)} {arrow}</td>"
                             f"<td>{c.model_value:.4g}</td><td>{c.baseline_value:.4g}</td><td>{c.difference:+.4g}</td>"
                             f"<td>{interval}</td><td class=model>{escape(c.verdict)}</td>"
                             f"<td class=model>{escape(joint.verdict if joint else 'none')}</td></tr>")
        parts.append("".join(cells) + "</tbody></table>")
    return "".join(parts)
