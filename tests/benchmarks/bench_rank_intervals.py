"""The leaderboard's mean-rank intervals (report/significance.py: rank_intervals) by simulation with known
truth: how often does a row's 95% interval hold the mean rank its model would get from population means?

    PYTHONPATH=. python tests/benchmarks/bench_rank_intervals.py [--draws 200] [--videos 16,100]

Five models score SSIM, PSNR (the blur-friendly half of the balanced mean rank) and LPIPS (the blur-robust
half) on the same test videos: per-video value = the model's population mean + a video effect shared by all
models (sd 2 units) + the model's own per-video noise (sd 1 unit); a unit is 0.05 SSIM, 1 dB PSNR, 0.03 LPIPS.
The true mean rank is table.rank_and_bold's competition ranking of the population means, rounded to the
table's display decimals, through ranking.balanced_mean_rank, exactly as the table ranks its displayed values.
Worlds, in units of the paired standard error se = sqrt(2) / sqrt(videos):

- separated: the models 4 se apart, in the same order on every metric;
- close: 1 se apart, same order;
- crossing: SSIM and PSNR order the models one way, LPIPS the reverse, 1.5 se apart;
- tied pair: models 1 and 2 equal on every metric (they share the better rank), the rest 2 se apart.

Each draw writes five results files and builds the leaderboard's tables (publish.build_tables) as
`vidbench leaderboard` does. Prints a markdown table (docs/intervals.md holds the last run's): per world and
set size, each model's coverage, and the mean interval width. Never asserts (tests/test_rank_intervals.py does).
"""

from __future__ import annotations

import argparse

from tests.test_rank_intervals import simulate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--videos", default="16,100")
    ap.add_argument("--worlds", default="separated,close,crossing,tied pair")
    args = ap.parse_args()
    print("| world | videos | draws | true mean ranks | coverage per model (nominal 0.95) | mean width |")
    print("|---|---|---|---|---|---|")
    for videos in (int(v) for v in args.videos.split(",") if v):
        for world in args.worlds.split(","):
            covered, width, truth = simulate(world, videos, args.draws, seed=videos)
            print(f"| {world} | {videos} | {args.draws} | {', '.join(f'{t:g}' for t in truth)} | "
                  f"{', '.join(f'{c:.2f}' for c in covered.mean(axis=0))} | {width.mean():.2f} |", flush=True)


if __name__ == "__main__":
    main()
