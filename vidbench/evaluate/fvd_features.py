"""What `vidbench evaluate` adds to a results file about FVD beyond the point values, and the features file.

- fvd_ci: {prefix: [low, high]}, an interval on the expected FVD at this set size (fvd_ci_method["covers"]):
  grouped jackknife over test videos (vidbench.metrics.fvd_stats).
- fvd_inf: {prefix: {value, ci, covers, reason}}: FVD-infinity (bias extrapolated away) with an interval on the
  population FVD, or value NaN, ci null and the reason where the set is too small for one.
- kvd: {prefix: {value, ci, covers, reason}} and summary["kvd"] (the longest prefix): the kernel distance on
  the same features (vidbench.metrics.kvd), with an interval on the population KVD.
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

CI_LEVEL = 0.95


def stacked_features(acc) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    videos = np.array(sorted(acc.fvd_videos), dtype=np.int64)
    real = np.stack([acc.fvd_videos[i][0] for i in videos])
    fake = np.stack([acc.fvd_videos[i][1] for i in videos])
    return videos, real, fake


def add_fvd_statistics(results: dict, acc, seed: int, out: Path | None) -> dict:
    """Intervals, set size and warning of every FVD prefix, KVD from the same features; names the features
    file (written by write_features). Results without FVD come back unchanged. `seed` is unused by the
    jackknife intervals (deterministic groups) and kept for the caller's signature."""
    from vidbench.metrics.fvd_stats import JACKKNIFE_GROUPS, fvd_estimates, fvd_set_warning
    from vidbench.metrics.kvd import kvd_with_interval

    if acc.fvd is None or not acc.fvd_videos:
        return results
    _, real, fake = stacked_features(acc)
    ci, fvd_inf, kvd = {}, {}, {}
    for k, p in enumerate(acc.prefixes):
        at_n, population = fvd_estimates(real[:, k], fake[:, :, k], CI_LEVEL)
        if at_n.low is not None:
            ci[str(p)] = [at_n.low, at_n.high]
        fvd_inf[str(p)] = population.as_dict()
        kvd[str(p)] = kvd_with_interval(real[:, k], fake[:, :, k], CI_LEVEL).as_dict()
    sizes = {"real": int(real.shape[0]), "generated": int(fake.shape[0] * fake.shape[1])}
    warnings = list(results.get("warnings") or [])
    line = fvd_set_warning(sizes["real"], sizes["generated"])
    if line:
        warnings.append(line)
    last = str(acc.prefixes[-1])
    extra = {
        "fvd_ci": ci, "fvd_set_size": sizes,
        "fvd_ci_method": {"kind": f"grouped jackknife over test videos ({JACKKNIFE_GROUPS} groups), t interval "
                                  f"(vidbench/metrics/fvd_stats.py)", "level": CI_LEVEL,
                          "covers": at_n.covers},
        # FVD-infinity: the population FVD with its interval, or null and the reason (too few videos)
        "fvd_inf": fvd_inf,
        # KVD (vidbench/metrics/kvd.py): value, interval on the population KVD, per prefix
        "kvd": kvd,
        "summary": {**results.get("summary", {}), "kvd": kvd[last]["value"]},
        "higher_is_better": {**(results.get("higher_is_better") or {}), "kvd": False},
        "warnings": warnings}
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
