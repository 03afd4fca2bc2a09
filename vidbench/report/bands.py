"""Paired comparisons per band of predicted frames: is model A better than B early, and still late?

    vidbench compare cwvae.json rssm.json --bands default          # mmnist@1: frames 1-100, 101-500, 501-964
    vidbench compare cwvae.json rssm.json --bands 1-36,37-964

A band's value per test video is that video's mean over the band's predicted frames (counted from the first
predicted frame, 1-based), read from the per-frame file beside each results file (evaluate/per_frame.py).
Within a band the comparison is exactly `vidbench compare`'s: the paired t interval over the same test videos
(vidbench.evaluate.paired), one interval per band and metric. The intervals hold per band, not jointly:
three bands give three 95% intervals, and a claim over all three at once would need a wider level.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from vidbench.errors import VidbenchError
from vidbench.evaluate.paired import Comparison, check_comparable, compare
from vidbench.evaluate.per_frame import read_per_frame
from vidbench.evaluate.results import Result

DEFAULT_BANDS = ((1, 100), (101, 500), (501, 964))  # issue 23: early, middle and late frames of mmnist@1
BAND = re.compile(r"^\s*(\d+)\s*-\s*(\d+)\s*$")


def parse_bands(text: str, horizon: int) -> list[tuple[int, int]]:
    """'default' (the bands above, the last cut at the horizon, those past it dropped) or 'a-b,c-d'."""
    if text.strip() == "default":
        return [(a, min(b, horizon)) for a, b in DEFAULT_BANDS if a <= horizon]
    bands = []
    for item in text.split(","):
        match = BAND.match(item)
        if not match:
            raise VidbenchError(f"--bands {text!r}: expected 'default' or first-last frame ranges like 1-100,101-500")
        first, last = int(match[1]), int(match[2])
        if not 1 <= first <= last <= horizon:
            raise VidbenchError(f"--bands {item.strip()!r}: frames are 1..{horizon} (the predicted frames), "
                                f"first <= last")
        bands.append((first, last))
    return bands


def band_result(result: Result, band: tuple[int, int], frames: dict[str, np.ndarray]) -> Result:
    """The result with per-video values = mean over the band's frames (what compare() pairs)."""
    first, last = band
    per_video = {m: values[:, first - 1:last].astype(np.float64).mean(axis=1).tolist() for m, values in frames.items()}
    raw = {**result.raw, "per_video": per_video, "fvd_features_file": "(none: FVD is not split into bands)"}
    return dataclasses.replace(result, raw=raw)


def compare_bands(results: list[Result], bands: list[tuple[int, int]], level: float = 0.95) -> list[tuple[tuple[int, int], list[Comparison]]]:
    """[(band, comparisons of every model against the first, per metric)] for each band."""
    check_comparable(results)
    frames = [read_per_frame(r.path) for r in results]
    for r, f in zip(results, frames):
        lengths = {v.shape[1] for v in f.values()}
        if lengths != {r.horizon}:
            raise VidbenchError(f"{r.path}: per-frame values hold {sorted(lengths)} frames, the results {r.horizon}")
    out = []
    for band in bands:
        banded = [band_result(r, band, f) for r, f in zip(results, frames)]
        rows = [c for c in compare(banded, level=level)
                if not c.metric.startswith("fvd")]
        out.append((band, rows))
    return out
