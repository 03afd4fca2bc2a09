"""Issue 24 at full sizes: coverage of every distance interval and direction errors of every paired verdict,
on Gaussian features of known distance (vidbench/metrics/distance_sim.py) with I3D's 400 dimensions, the
paper's 100 test videos, 256, and the field's 2,048; isotropic and decaying (1/j) spectra; model A with the
right covariance (true FVD 20), model B with half the variance (true FVD 34.3).

    PYTHONPATH=. python tests/benchmarks/bench_distance_simulations.py [--reps 40] [--reps-2048 40] [--sizes 100,256,2048]
        [--seed-draws 400]

and a third table: coverage of the intervals that pool training seeds (2, 3, 5 seeds; seed effect sd 0, 0.15
and 0.5 against a video-to-video sd of about 1.1).

Prints two markdown tables (docs/distances.md holds the last run's). Targets: "FVD at n" is the expected FVD
at that set size (Monte Carlo: the mean of the draws), "FVD-inf" and "KVD" the population distances. A
paired verdict is wrong when its interval excludes 0 on the side opposite the true difference. n = 2048 costs
~21 Fréchet distances of 400 x 400 covariances per model and draw (about 9 s a draw on one thread), hence
its own number of draws.
Never asserts: tests/test_distance_simulations.py does, at fast sizes.
"""

from __future__ import annotations

import argparse
import time

from vidbench.metrics import distance_sim as ds

DIM = 400


def _fmt(x: float) -> str:
    return "n/a" if x != x else f"{x:.2f}"


def seed_table(draws: int) -> str:
    """Coverage of the paired interval that pools training seeds (evaluate/paired.py), 100 test videos, true
    difference 0.2 (tests/test_distance_simulations.seed_world: video sd 1, model x video 0.5, noise 0.3)."""
    import numpy as np

    from tests.test_distance_simulations import seed_world
    from vidbench.evaluate.paired import paired_interval

    lines = ["| seeds per model | seed effect sd | draws | coverage (nominal 0.95) | mean width |", "|---|---|---|---|---|"]
    for seeds in (2, 3, 5):
        for seed_sd in (0.0, 0.15, 0.5):
            rng = np.random.default_rng(seeds)
            hits, width = 0, 0.0
            for _ in range(draws):
                a, b = seed_world(rng, seeds, seed_sd)
                _, low, high = paired_interval(a, b)
                hits += low <= 0.2 <= high
                width += (high - low) / draws
            lines.append(f"| {seeds} | {seed_sd} | {draws} | {hits / draws:.3f} | {width:.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=40, help="draws at 100 and 256 videos")
    ap.add_argument("--reps-2048", type=int, default=40, help="draws at 2048 videos")
    ap.add_argument("--sizes", default="100,256,2048")
    ap.add_argument("--spectra", default="isotropic,decaying")
    ap.add_argument("--seed-draws", type=int, default=400, help="draws per row of the seed-pooling table (0: none)")
    args = ap.parse_args()
    if args.seed_draws:
        print(seed_table(args.seed_draws) + "\n", flush=True)
    coverage = ["| n | spectrum | draws | model | true FVD | mean FVD | FVD at n covers E[FVD_n] | FVD-inf covers FVD | "
                "true KVD | KVD covers |", "|---|---|---|---|---|---|---|---|---|---|"]
    paired = ["| n | spectrum | draws | FVD A-B true | FVD mean est. | FVD wrong dir. | FVD right dir. | "
              "KVD A-B true | KVD wrong dir. | KVD right dir. |", "|---|---|---|---|---|---|---|---|---|---|"]
    for n in (int(s) for s in args.sizes.split(",") if s):
        for kind in args.spectra.split(","):
            v = ds.spectrum(kind, DIM)
            reps = args.reps_2048 if n >= 2048 else args.reps
            start = time.time()
            sim = ds.simulate(v, n=n, reps=reps, seed=n)
            for name, m in ds.MODELS.items():
                f, k = sim["fvd"][name], sim["kvd"][name]
                coverage.append(
                    f"| {n} | {kind} | {reps} | {name} | {ds.true_fvd(v, m):.1f} | {f[:, 0].mean():.1f} | "
                    f"{_fmt(ds.covered(f, f[:, 0].mean()))} | "
                    f"{'none (reason)' if sim['fvd_reason'] else _fmt(ds.covered(f, ds.true_fvd(v, m), (4, 5)))} | "
                    f"{ds.true_mmd2(v, m):.4f} | {_fmt(ds.covered(k, ds.true_mmd2(v, m)))} |")
            a, b = ds.MODELS.values()
            fvd_truth, kvd_truth = ds.true_fvd(v, a) - ds.true_fvd(v, b), ds.true_mmd2(v, a) - ds.true_mmd2(v, b)
            raw = sim["fvd"][list(ds.MODELS)[0]][:, 0] - sim["fvd"][list(ds.MODELS)[1]][:, 0]
            fp = sim["fvd_paired"]
            paired.append(
                f"| {n} | {kind} | {reps} | {fvd_truth:.1f} | {raw.mean():.1f} | "
                f"{'no verdict' if sim['fvd_reason'] else _fmt(ds.wrong_direction(fp, fvd_truth))} | "
                f"{'no verdict' if sim['fvd_reason'] else _fmt(ds.right_direction(fp, fvd_truth))} | "
                f"{kvd_truth:.4f} | {_fmt(ds.wrong_direction(sim['kvd_paired'], kvd_truth))} | "
                f"{_fmt(ds.right_direction(sim['kvd_paired'], kvd_truth))} |")
            print(f"# n={n} {kind}: {reps} draws in {time.time() - start:.0f} s", flush=True)
    print("\n".join(coverage))
    print()
    print("\n".join(paired))


if __name__ == "__main__":
    main()
