"""The results file's contents, assembled from the reduced accumulators (the schema's writer; results.py
is its reader), and the few lines `vidbench evaluate` prints."""

from __future__ import annotations

import numpy as np
import torch

from vidbench import __version__
from vidbench.evaluate.intervals import T_INTERVAL, mean_interval
from vidbench.evaluate.metric_set import metric_outputs
from vidbench.evaluate.results import RESULTS_FORMAT
from vidbench.train.lineage import git_commit as _git_commit

CI_LEVEL = 0.95


def assemble_results(acc, protocol, identity, split, names, metric_set, seed, batch_size, device, world,
                     fvd_dropped=None, frames=None) -> dict:
    per_timestep, summary, ci, videos = {}, {}, {}, {}
    means = acc.per_video  # derived from the per-frame values: take it once
    for m in acc.frame_metrics:
        per_video = np.array([means[m][i] for i in sorted(means[m])])
        videos[m] = _floats(per_video)
        per_timestep[m] = {"mean": _floats(acc.stats[m].mean()), "std": _floats(acc.stats[m].std())}
        summary[m] = float(per_video.mean())  # = mean over frames and videos (every video has `horizon` frames)
        low, high = mean_interval(per_video, CI_LEVEL)
        if low == low:  # one video has no spread: no interval, rather than a point that claims certainty
            ci[m] = [low, high]
    fvd = {}
    if acc.fvd is not None:
        from vidbench.metrics.fvd import fvd_from_stats

        fvd = {str(p): float(fvd_from_stats(real, fake)) for p, (real, fake) in zip(acc.prefixes, acc.fvd)}
        summary["fvd"] = fvd[str(acc.prefixes[-1])]
    return {
        "format": RESULTS_FORMAT,
        "protocol": protocol.to_dict(),
        # Both ways of counting the horizon: predict()'s frames after the context, and the paper's "500 frames"
        # (MineRL), counted from the first frame, which `vidbench evaluate --horizon` takes.
        "frames": {"context": protocol.context, "predicted": protocol.horizon, "last_frame": protocol.length},
        "model": identity,
        "dataset": {"name": split.dataset, "split": "test", "test_data_sha256": split.info["data_sha256"]},
        "metrics": names,
        "higher_is_better": metric_set.higher_is_better,  # per output: the readout's two go opposite ways
        "summary": summary,
        "chance": metric_set.chance,  # per output, where the metric states one (readout)
        "gamed_levels": metric_set.gamed,  # beside chance: what hedging or a blob reaches (readout)
        "ci": ci,
        "ci_method": {"kind": f"{T_INTERVAL} of the summary mean", "level": CI_LEVEL},
        "per_timestep": per_timestep,
        "per_video": videos,  # mean over time per test video (file order): for CIs and paired comparisons
        "fvd": fvd,
        "fvd_prefixes": list(acc.prefixes) if acc.fvd is not None else [],
        "fvd_prefixes_dropped": {str(k): v for k, v in (fvd_dropped or {}).items()},  # length -> why
        "unavailable": metric_set.unavailable,
        "metric_weights": metric_set.weights,
        "num_videos": protocol.num_videos,
        "num_samples": protocol.num_samples,
        "seed": seed,
        "batch_size": batch_size,
        "conventions": {"frames": "scored as uint8 (the cached predictions), /255 to [0,1], except the metrics "
                                  "in raw_frames",
                        # the model's raw decoder floats (unclipped tanh), as the authors' eval scored them
                        "raw_frames": sorted(m for m, kind in (frames or {}).items() if kind == "raw"),
                        "std": "population std over videos (ddof 0)",
                        "fvd_samples": "the best sample per video" if protocol.reduce.startswith("best:")
                        else "every sample"},
        "environment": {"vidbench_version": __version__, "torch_version": torch.__version__,
                        "git_commit": _git_commit()},
        # Compute seconds summed over the cached batches: a rerun that recomputes nothing reports the same.
        "run": {"device": device.type, "world_size": world, "wall_time_s": round(acc.seconds, 3)},
    }


def _floats(values) -> list[float]:
    return [float(v) for v in values]


def summary_lines(results: dict) -> list[str]:
    """A few lines for the terminal: each summary scalar with its CI, then the FVD prefixes."""
    p = results["protocol"]
    lines = [f"{results['model']['name']} on {p['name']}: {results['num_videos']} videos x {results['num_samples']} "
             f"sample(s), context {p['context']}, {p['horizon']} predicted (frames {p['context'] + 1}-"
             f"{p['context'] + p['horizon']})"]
    scored = [out for name in results["metrics"] for out in metric_outputs(name) if out in results["ci"]]
    width = max([11] + [len(m) for m in scored])  # readout_position_error is longer than the classic names
    for m in scored:
        lo, hi = results["ci"][m]
        lines.append(f"  {m:{width}} {results['summary'][m]:9.4f}   {CI_LEVEL:.0%} CI [{lo:.4f}, {hi:.4f}]")
    if results["fvd"]:
        prefixes = sorted(results["fvd"], key=int)
        ci = results.get("fvd_ci") or {}  # fvd_features.add_fvd_statistics
        lines.append(f"  {'fvd':{width}} " + "  ".join(
            f"{k}: {results['fvd'][k]:.1f}" + (f" [{ci[k][0]:.1f}, {ci[k][1]:.1f}]" if k in ci else "") for k in prefixes))
        kvd = (results.get("kvd") or {}).get(prefixes[-1])  # fvd_features.add_fvd_statistics
        if kvd and kvd.get("value") is not None:
            shown = f" [{kvd['ci'][0]:.4g}, {kvd['ci'][1]:.4g}]" if kvd.get("ci") else f" ({kvd.get('reason')})"
            lines.append(f"  {'kvd':{width}} {prefixes[-1]}: {kvd['value']:.4g}{shown}")
        size = results.get("fvd_set_size")
        if size:
            lines.append(f"  {'':{width}} set size {size['real']} real / {size['generated']} generated videos")
    for warning in results.get("warnings") or []:
        lines.append(f"  warning: {warning}")
    for m, why in results["unavailable"].items():
        lines.append(f"  {m:{width}} unavailable: {why}")
    for length, why in (results.get("fvd_prefixes_dropped") or {}).items():
        lines.append(f"  warning: FVD prefix {length} dropped: {why}")
    return lines
