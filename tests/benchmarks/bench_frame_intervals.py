"""Frame-metric intervals at the sizes users run: coverage of 95% intervals on a mean over test videos, by
simulation with known truth, for vidbench's t interval (evaluate/intervals.py) against the percentile
bootstrap it used before and three other candidates (the expanded percentile bootstrap, the studentized
bootstrap, BCa).

    PYTHONPATH=. python tests/benchmarks/bench_frame_intervals.py [--draws 2000] [--sizes 16,32,100]

Worlds (tests/test_frame_intervals.py has the first three and asserts on them at fast sizes):
- normal: paired per-video differences N(0.3, 1);
- readout, paired: per-video digit accuracies Binomial(128, p) / 128, p ~ Beta(0.6, 3), the other model's
  p + N(0.03, 0.05) clipped, the same videos;
- readout, one model: the first of those alone (the results file's per-model "ci");
- lognormal(0, 0.5) and lognormal(0, 1): skewed per-video differences, where no interval on a mean holds at 16;
- the demo's own: each committed leaderboard/results/*-mmnist-short@1.json's per-video PSNR and digit accuracy
  minus copy-last's, resampled with replacement as the population (truth: their mean).
Prints a markdown table (docs/intervals.md holds the last run's). Never asserts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

from tests.test_frame_intervals import readout_pair, readout_true_difference
from vidbench.evaluate.intervals import mean_interval

RESAMPLES = 1000
METHODS = ("percentile bootstrap (old)", "t (vidbench)", "expanded percentile", "studentized bootstrap", "BCa")


def intervals(x: np.ndarray, rng) -> list[tuple[float, float]]:
    """95% intervals on the mean of x, one per METHODS entry (bootstrap ones from RESAMPLES draws)."""
    n, mean = len(x), x.mean()
    se = x.std(ddof=1) / np.sqrt(n)
    boots = x[rng.integers(0, n, (RESAMPLES, n))]
    means = boots.mean(axis=1)
    out = [tuple(np.quantile(means, [0.025, 0.975])), mean_interval(x)]
    # Expanded percentile (Hesterberg): the percentile interval at the level whose normal quantile is
    # sqrt(n / (n - 1)) t_{n-1}, undoing its two narrownesses.
    tail = stats.norm.sf(np.sqrt(n / (n - 1)) * stats.t.ppf(0.975, n - 1))
    out.append(tuple(np.quantile(means, [tail, 1 - tail])))
    ses = boots.std(axis=1, ddof=1) / np.sqrt(n)
    ok = ses > 0
    upper, lower = np.quantile((means[ok] - mean) / ses[ok], [0.975, 0.025]) if ok.any() else (0.0, 0.0)
    out.append((mean - upper * se, mean - lower * se))
    z0 = stats.norm.ppf(np.clip((means < mean).mean() + 0.5 * (means == mean).mean(), 1e-6, 1 - 1e-6))
    jack = (x.sum() - x) / (n - 1)
    u = jack.mean() - jack
    accel = (u ** 3).sum() / (6 * ((u ** 2).sum()) ** 1.5) if (u ** 2).sum() > 0 else 0.0
    z = stats.norm.ppf([0.025, 0.975])
    out.append(tuple(np.quantile(means, stats.norm.cdf(z0 + (z0 + z) / (1 - accel * (z0 + z))))))
    return out


def demo_worlds(root: Path) -> dict:
    base = json.loads((root / "copy-last-mmnist-short@1.json").read_text())["per_video"]
    worlds = {}
    for path in sorted(root.glob("*-mmnist-short@1.json")):
        model = path.name.split("-mmnist-short")[0]
        if model == "copy-last":
            continue
        mine = json.loads(path.read_text())["per_video"]
        for metric in ("psnr", "readout_accuracy"):
            population = np.asarray(mine[metric]) - np.asarray(base[metric])
            worlds[f"demo {model} - copy-last, {metric}"] = (
                lambda rng, n, pop=population: rng.choice(pop, n), float(population.mean()))
    return worlds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=2000)
    ap.add_argument("--sizes", default="16,32,100")
    ap.add_argument("--results", default="leaderboard/results", help="where the demo's results files are")
    args = ap.parse_args()
    worlds = {
        "normal, paired": (lambda rng, n: rng.normal(0.3, 1.0, n), 0.3),
        "readout, paired": (lambda rng, n: np.subtract(*readout_pair(rng, n)[::-1]), readout_true_difference()),
        "readout, one model": (lambda rng, n: readout_pair(rng, n)[0], 0.6 / 3.6),
        "lognormal(0, 0.5)": (lambda rng, n: rng.lognormal(0.0, 0.5, n), float(np.exp(0.125))),
        "lognormal(0, 1)": (lambda rng, n: rng.lognormal(0.0, 1.0, n), float(np.exp(0.5))),
        **demo_worlds(Path(args.results)),
    }
    print(f"| world | videos | draws | {' | '.join(METHODS)} |")
    print("|---|---|---|" + "---|" * len(METHODS))
    for n in (int(s) for s in args.sizes.split(",") if s):
        for name, (draw, truth) in worlds.items():
            rng = np.random.default_rng(n)
            hits = np.zeros(len(METHODS))
            for _ in range(args.draws):
                hits += [low <= truth <= high for low, high in intervals(draw(rng, n), rng)]
            print(f"| {name} | {n} | {args.draws} | " + " | ".join(f"{h / args.draws:.3f}" for h in hits) + " |",
                  flush=True)


if __name__ == "__main__":
    main()
