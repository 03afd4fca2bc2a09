"""Ground-truth I3D features, computed once and shared by every model evaluated on the same clips.

FVD compares a model's clips with the real clips of the same test videos; the real half of the I3D work
is the same for every model (and for every rerun). Features are cached per test video and clip under

    <root>/<key>/frames-<start>-<end>/v<video>.npz      root: $VIDBENCH_FEATURE_CACHE, else
                                                        $VIDBENCH_CACHE/gt-features, else ~/.cache/vidbench/gt-features

where <key> hashes what decides a real clip's features: the prepared test data (its sha256), and the I3D
weight file (name, git blob id, kind, and the preprocessing version vidbench applies). A protocol and prefix
fix the clip's frames [start, end) (start = context - pasted context), so protocols sharing a clip share its
features. Each file stores the features with the sha256 of their bytes; a file that does not verify is
recomputed, never trusted.

    cache = GroundTruthFeatures(split, i3d_weights)
    feats = cache.features(videos, start, end, compute)   # compute(missing_videos) -> [n, D]; returns [V, D]
    cache.computed                                         # how many clips this object sent to I3D
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from vidbench.fileio import atomic_write_bytes

# Bump when vidbench changes how frames reach I3D (resize, scaling, BN epsilon): old features then miss.
PREPROCESSING_VERSION = 1
I3D_CPU_FRAMES_PER_SECOND = 34.0  # 2-core development machine, 2 threads (bench_fvd_prefixes.py); estimates only


def default_root() -> Path:
    if os.environ.get("VIDBENCH_FEATURE_CACHE"):
        return Path(os.environ["VIDBENCH_FEATURE_CACHE"])
    return Path(os.environ.get("VIDBENCH_CACHE", Path.home() / ".cache" / "vidbench")) / "gt-features"


class GroundTruthFeatures:
    def __init__(self, split, i3d_weights: dict, root=None):
        key = {"dataset": split.dataset, "test_data_sha256": split.info["data_sha256"],
               "i3d": dict(i3d_weights),  # file, git blob id, kind and, where recorded, resize and bn_eps
               "preprocessing": PREPROCESSING_VERSION}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        self.folder = Path(root if root is not None else default_root()) / f"{split.dataset}-{digest}"
        self.key = key
        self.computed = 0  # clips sent to I3D by this object (tests count them)
        self.reused = 0

    def _path(self, video: int, start: int, end: int) -> Path:
        return self.folder / f"frames-{start}-{end}" / f"v{video:06d}.npz"

    def load(self, video: int, start: int, end: int) -> np.ndarray | None:
        path = self._path(video, start, end)
        if not path.is_file():
            return None
        try:
            with np.load(path) as data:
                feats, checksum = data["features"], str(data["sha256"])
        except (OSError, ValueError, KeyError):
            return None
        return feats if hashlib.sha256(feats.tobytes()).hexdigest() == checksum else None

    def save(self, video: int, start: int, end: int, feats: np.ndarray) -> None:
        feats = np.ascontiguousarray(feats, dtype=np.float64)
        buffer = io.BytesIO()
        np.savez(buffer, features=feats, sha256=np.asarray(hashlib.sha256(feats.tobytes()).hexdigest()))
        if not (self.folder / "key.json").exists():  # for a person looking at the folder
            atomic_write_bytes(self.folder / "key.json", (json.dumps(self.key, indent=2, sort_keys=True) + "\n").encode())
        atomic_write_bytes(self._path(video, start, end), buffer.getvalue())

    def features(self, videos, start: int, end: int, compute) -> np.ndarray:
        """Features [V, D] of the real clips frames [start, end) of `videos`; compute(missing) -> [n, D]
        runs I3D on the clips not cached (or not verifying) and they are stored."""
        found = {v: self.load(v, start, end) for v in videos}
        missing = [v for v, f in found.items() if f is None]
        self.reused += len(videos) - len(missing)
        if missing:
            fresh = np.asarray(compute(missing), dtype=np.float64)
            self.computed += len(missing)
            for v, f in zip(missing, fresh):
                self.save(v, start, end, f)
                found[v] = f
        return np.stack([found[v] for v in videos])

    def has_all(self, video: int, clips) -> bool:
        """Whether every clip (start, end) of this video has a cached file (for estimates: not verified)."""
        return all(self._path(video, start, end).is_file() for start, end in clips)


def i3d_work(protocol, prefixes, num_videos: int, samples_scored: int, cache: GroundTruthFeatures | None):
    """(real frames still to compute, generated frames) through I3D for this evaluation: every prefix of a
    clip shares one pass (vidbench.metrics.i3d.prefix_pass_frames), and a real clip missing any prefix from
    the cache gets them all computed."""
    from vidbench.metrics.i3d import prefix_pass_frames

    if not prefixes:
        return 0, 0
    lead = protocol.context if protocol.fvd_include_context else 0
    per_clip = prefix_pass_frames([lead + p for p in prefixes])
    start = protocol.context - lead
    todo = num_videos
    if cache:
        clips = [(start, protocol.context + p) for p in prefixes]
        todo = sum(not cache.has_all(v, clips) for v in range(num_videos))
    return todo * per_clip, num_videos * samples_scored * per_clip


def estimate_line(protocol, prefixes, num_videos: int, samples_scored: int, cache, device_type: str) -> str:
    real, generated = i3d_work(protocol, prefixes, num_videos, samples_scored, cache)
    line = (f"FVD: I3D on {generated:,} generated and {real:,} real frames "
            f"({len(prefixes)} prefixes; real features cached in {cache.folder if cache else 'no cache'})")
    if device_type == "cpu":
        hours = (real + generated) / I3D_CPU_FRAMES_PER_SECOND / 3600
        line += f"; about {hours:.1f} h on CPU at ~{I3D_CPU_FRAMES_PER_SECOND:.0f} frames/s"
    return line
