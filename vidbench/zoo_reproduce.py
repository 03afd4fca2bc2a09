"""Reproduce a zoo model's results on this machine (issue 23: its weights load on CPU and its results reproduce
on CPU; say how close), from the results file the zoo's GPU job returned, in one command:

    python -m vidbench.zoo_reproduce leaderboard/results/cwvae-mmnist-6k-mmnist@1.json --out /tmp/repro
    python -m vidbench.zoo_reproduce RESULTS.json --checkpoint cwvae-mmnist-6k.pt --out /tmp/repro   # a file

Everything comes from the results file: the zoo name (its weights' record; the weights are found as
`--checkpoint zoo:<name>` finds them, sha256 checked), the protocol, the evaluation's seed and batch size (both
decide the samples drawn), its metrics, and the test videos, made again as the job made them (`prepare mmnist`
with seed 0: the first N test videos are byte-identical) and refused unless their sha256 is the results'.
It sits above the stages it runs (data, evaluate), as the zoo job does.

Evaluation draws its noise from a CPU generator on every device (evaluate/sources.py), so the samples are the
GPU's: a difference is arithmetic (another device's float order, carried through the rollout), never other
samples. The report, printed and written to <out>/reproduce.json: per metric, the summary there and here, their
difference against the half-width of the summary's 95% interval, and the largest and mean absolute per-video
difference over each band of predicted frames (1-100, 101-500, 501-964). On 2 CPU threads mmnist@1 takes ~6-8
minutes: the mmnist CW-VAE predicts 964 frames for 25 videos in 15.6 s (1.8 GB peak), the readout ~3 s a video.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from vidbench.errors import VidbenchError, exit_code

REPORT = "reproduce.json"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m vidbench.zoo_reproduce", description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path, help="a zoo job's results file (its .frames.npz beside it)")
    p.add_argument("--out", type=Path, required=True, help="folder for the reproduction's results and report")
    p.add_argument("--checkpoint", default=None, help="the weights (default: zoo:<name> from the results)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--work", type=Path, default=None, help="where the test videos are made (default: a temp folder)")
    return p.parse_args(argv)


def settings(results: dict, path: Path) -> dict:
    """What the job's evaluation used, from its results file: evaluate()'s arguments but the data."""
    model = results.get("model") if isinstance(results.get("model"), dict) else {}
    name = (model.get("record") or {}).get("zoo")
    protocol = results.get("protocol") or {}
    if not name or not protocol.get("name"):
        raise VidbenchError(f"{path}: not a zoo model's results (no zoo name in its weights' record)")
    return {"zoo": name, "protocol": str(protocol["name"]).split("[")[0], "horizon": protocol.get("horizon"),
            "num_videos": protocol.get("num_videos"), "num_samples": protocol.get("num_samples"),
            "reduce": protocol.get("reduce"), "metrics": list(results.get("metrics") or []),
            "batch_size": results.get("batch_size"), "seed": results.get("seed"),
            "test_data_sha256": (results.get("dataset") or {}).get("test_data_sha256")}


def bands(horizon: int) -> list[tuple[int, int]]:
    from vidbench.report.bands import parse_bands

    return parse_bands("default", horizon)


def compare_runs(there: Path, here: Path) -> dict:
    """Per metric: summaries, their difference against the 95% half-width, per-band per-video differences."""
    from vidbench.evaluate.per_frame import read_per_frame

    a, b = json.loads(there.read_text()), json.loads(here.read_text())
    frames_a, frames_b = read_per_frame(there), read_per_frame(here)
    report = {}
    for metric in sorted(set(frames_a) & set(frames_b)):
        fa, fb = frames_a[metric].astype(np.float64), frames_b[metric].astype(np.float64)
        low, high = (a.get("ci") or {}).get(metric, (np.nan, np.nan))
        per_band = {}
        for first, last in bands(fa.shape[1]):
            d = np.abs(fb[:, first - 1 : last].mean(axis=1) - fa[:, first - 1 : last].mean(axis=1))
            per_band[f"{first}-{last}"] = {"max_abs_per_video": float(d.max()), "mean_abs_per_video": float(d.mean())}
        difference = float(b["summary"][metric] - a["summary"][metric])
        report[metric] = {"there": a["summary"][metric], "here": b["summary"][metric], "difference": difference,
                          "ci_half_width": float((high - low) / 2), "bands": per_band,
                          "max_abs_per_frame": float(np.abs(fb - fa).max())}
    return report


def report_lines(report: dict, device_there: str, device_here: str) -> list[str]:
    lines = [f"reproduced on {device_here} (results from {device_there}): summary there -> here, difference / "
             f"half-width of its 95% interval; largest per-video difference per band"]
    for metric, r in report.items():
        share = abs(r["difference"]) / r["ci_half_width"] if r["ci_half_width"] > 0 else float("nan")
        worst = ", ".join(f"{band} {v['max_abs_per_video']:.3g}" for band, v in r["bands"].items())
        lines.append(f"  {metric}: {r['there']:.5g} -> {r['here']:.5g}, {r['difference']:+.3g} ({share:.1%} of "
                     f"{r['ci_half_width']:.3g}); per video {worst}")
    return lines


def run(args: argparse.Namespace) -> dict:
    from vidbench.evaluate import evaluate
    from vidbench.evaluate.per_frame import frames_path
    from vidbench.locking import check_output_folder
    from vidbench.zoo_job import make_data

    path = Path(args.results)
    if not path.is_file() or not frames_path(path).is_file():
        raise VidbenchError(f"{path}: needs the results file and its {frames_path(path).name} beside it")
    there = json.loads(path.read_text())
    s = settings(there, path)
    # --out: missing, empty, or an earlier reproduction of this file (its results file or report), never a
    # folder of someone else's files the report or the results could overwrite.
    check_output_folder(args.out, ours=(REPORT, path.name), what="zoo reproduction folder")
    work = Path(args.work or tempfile.mkdtemp(prefix="zoo-reproduce-"))
    data_root = work / "mmnist"
    make_data(data_root, num_train=1, num_test=int(s["num_videos"]))  # the test split does not depend on it
    made = json.loads((data_root / "manifest.json").read_text())["splits"]["test"]["data_sha256"]
    if made != s["test_data_sha256"]:
        raise VidbenchError(f"{path}: its test videos' sha256 is {s['test_data_sha256']}, the ones made here "
                            f"{made}: another generator or digit source; nothing to reproduce against")
    args.out.mkdir(parents=True, exist_ok=True)
    here = args.out / path.name
    evaluate(data_root, checkpoint=args.checkpoint or f"zoo:{s['zoo']}", protocol=s["protocol"],
             horizon=s["horizon"], num_videos=s["num_videos"], num_samples=s["num_samples"], reduce=s["reduce"],
             metrics=s["metrics"], batch_size=s["batch_size"], seed=s["seed"], out=here, run_dir=work / "eval",
             device=args.device, echo=print)
    report = compare_runs(path, here)
    device_there = (there.get("run") or {}).get("device", "?")
    lines = report_lines(report, device_there, args.device)
    print("\n".join(lines), flush=True)
    from vidbench.fileio import atomic_write_json

    atomic_write_json(args.out / REPORT, {"results": str(path), "device_there": device_there,
                                                    "device_here": args.device, "metrics": report})
    return report


def main(argv=None) -> int:
    return exit_code(lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
