"""Per-video, per-frame metric values beside a results file (<results>.frames.npz), so that intervals can be
taken over any band of predicted frames (`vidbench compare --bands`): the results JSON keeps per-video
means over the whole horizon (per_video) and per-frame means over videos (per_timestep), neither of which
pairs videos within a band.

    <results>.frames.npz = {video_index int64 [V], metric_<name> float32 [V, horizon]} (file order of videos)

float32: 100 videos x 964 frames x 6 metrics is 2.3 MB; a band mean from float32 values differs from the
float64 one by ~1e-7 relative, far below any interval's width.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from vidbench.errors import VidbenchError
from vidbench.fileio import atomic_write_bytes

FRAMES_SUFFIX = ".frames.npz"


def frames_path(results_path) -> Path:
    return Path(results_path).with_suffix(FRAMES_SUFFIX)


def write_per_frame(per_frame: dict[str, dict[int, np.ndarray]], out) -> Path | None:
    """per_frame: metric -> {video index: values [horizon]} (the accumulators' record of every frame)."""
    if not per_frame or not any(per_frame.values()):
        return None
    videos = sorted(next(iter(per_frame.values())))
    arrays = {f"metric_{m}": np.stack([np.asarray(v[i], dtype=np.float32) for i in videos]) for m, v in per_frame.items()}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, video_index=np.asarray(videos, dtype=np.int64), **arrays)
    path = frames_path(out)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def read_per_frame(results_path) -> dict[str, np.ndarray]:
    """metric -> float32 [V, horizon] from the file beside a results file; a clear error when it is missing."""
    path = frames_path(results_path)
    if not path.is_file():
        raise VidbenchError(f"{path}: no per-frame values beside {Path(results_path).name} (written by `vidbench "
                            f"evaluate` since per-band comparisons exist; re-run it: cached batches make it quick)")
    try:
        with np.load(path) as data:
            return {k[len("metric_"):]: data[k] for k in data.files if k.startswith("metric_")}
    except (OSError, ValueError, KeyError) as e:
        raise VidbenchError(f"{path}: not a readable per-frame values file ({e})") from e
