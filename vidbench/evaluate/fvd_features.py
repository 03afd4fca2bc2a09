"""What `vidbench evaluate` adds to a results file about FVD beyond the point values, and the features file.

- fvd_ci: {prefix: [low, high]}, a bootstrap interval over test videos (vidbench.metrics.fvd_stats).
- fvd_set_size: {"real": V, "generated": V x S'} beside every FVD: FVD is biased by set size, so a number
  without its set size cannot be compared.
- warnings: one line when a set is under MIN_FVD_VIDEOS (the page and `vidbench compare` show it).
- fvd_features_file: <results stem>.fvd.npz beside the results file, with the per-video I3D features
  (prefixes [P], real [V,P,D], fake [V,S',P,D], video_index [V]); intervals, paired FVD tests and rank
  intervals are recomputed from it later without another network pass.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from vidbench.evaluate.paired import FEATURES_SUFFIX
from vidbench.fileio import atomic_write_bytes

FVD_RESAMPLES = 200  # each replicate is a Fréchet distance (an SVD), not a mean: fewer than the frame CIs


def stacked_features(acc) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    videos = np.array(sorted(acc.fvd_videos), dtype=np.int64)
    real = np.stack([acc.fvd_videos[i][0] for i in videos])
    fake = np.stack([acc.fvd_videos[i][1] for i in videos])
    return videos, real, fake


def add_fvd_statistics(results: dict, acc, seed: int, out: Path | None) -> dict:
    """Interval, set size and warning of every FVD prefix; names the features file (written by
    write_features). Results without FVD come back unchanged."""
    from vidbench.metrics.fvd_stats import fvd_interval, fvd_set_warning

    if acc.fvd is None or not acc.fvd_videos:
        return results
    _, real, fake = stacked_features(acc)
    ci = {str(p): list(fvd_interval(real[:, k], fake[:, :, k], seed, FVD_RESAMPLES))
          for k, p in enumerate(acc.prefixes)}
    sizes = {"real": int(real.shape[0]), "generated": int(fake.shape[0] * fake.shape[1])}
    warnings = list(results.get("warnings") or [])
    line = fvd_set_warning(sizes["real"], sizes["generated"])
    if line:
        warnings.append(line)
    extra = {"fvd_ci": ci, "fvd_set_size": sizes, "fvd_ci_method": {
        "kind": "basic bootstrap over test videos of the Fréchet distance (vidbench/metrics/fvd_stats.py)",
        "resamples": FVD_RESAMPLES, "level": 0.95, "seed": seed}, "warnings": warnings}
    if out is not None:
        extra["fvd_features_file"] = Path(out).with_suffix(FEATURES_SUFFIX).name
    return {**results, **extra}


def write_features(acc, out: Path) -> Path | None:
    if acc.fvd is None or not acc.fvd_videos:
        return None
    videos, real, fake = stacked_features(acc)
    buffer = io.BytesIO()
    np.savez(buffer, prefixes=np.asarray(acc.prefixes, dtype=np.int64), video_index=videos, real=real, fake=fake)
    path = Path(out).with_suffix(FEATURES_SUFFIX)
    atomic_write_bytes(path, buffer.getvalue())
    return path
