"""Streaming per-timestep accumulators and sample reduction.

torchmetrics convention: an accumulator holds sums (float64), so merging two of them, or reducing them
across torch.distributed ranks, is a sum. What grows with the number of videos is one float per video and
metric (its mean over time), kept for the intervals (evaluate/intervals.py); nothing grows with videos x frames.
"""

from __future__ import annotations

import numpy as np
import torch

from vidbench.errors import VidbenchError

REDUCTIONS = ("mean", "best:<metric>", "best-per-metric")
BEST_PER_METRIC = "best-per-metric"


class TimestepStats:
    """Sum and sum of squares over videos of one metric at every predicted frame, plus the video count."""

    def __init__(self, length: int):
        self.sum = torch.zeros(length, dtype=torch.float64)
        self.sumsq = torch.zeros(length, dtype=torch.float64)
        self.count = torch.zeros((), dtype=torch.float64)

    def update(self, values: np.ndarray) -> None:
        """values: [videos, T] per-frame metric values of already sample-reduced videos."""
        values = torch.as_tensor(np.asarray(values, dtype=np.float64))
        for row in values:  # one video at a time: the sums never depend on where batches were cut
            self.sum += row
            self.sumsq += row * row
        self.count += values.shape[0]

    def tensors(self) -> list[torch.Tensor]:
        """The state, for torch.distributed.all_reduce(SUM) in place."""
        return [self.sum, self.sumsq, self.count]

    def mean(self) -> np.ndarray:
        return (self.sum / self.count).numpy()

    def std(self) -> np.ndarray:
        """Population std over videos (ddof 0, numpy's default, as the authors' eval prints)."""
        mean = self.sum / self.count
        return (self.sumsq / self.count - mean * mean).clamp_min(0).sqrt().numpy()


def reduce_samples(values: dict[str, np.ndarray], reduce: str, higher_is_better: dict[str, bool]
                   ) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Per-sample values {metric: [V,S,T]} -> per-video values {metric: [V,T]} as a protocol says.

    "mean": every metric averaged over samples (mean-of-N).
    "best:<m>": per video, the sample with the best mean-over-time <m>; every metric is then read from that
    same sample (one sample per video: the SVG/SRVP way, and what FVD can use).
    "best-per-metric": per video and per metric, the sample with that metric's best mean over time, each in
    its own direction: the authors' eval (eval.py keeps the best sample by mean SSIM and, separately, by mean
    PSNR), so SSIM and PSNR may come from different samples.
    Returns the chosen sample per video for "best:<m>" (FVD uses the same samples), else None (FVD then
    uses every sample).
    """
    if reduce == "mean":
        return {name: v.mean(axis=1) for name, v in values.items()}, None
    if reduce == BEST_PER_METRIC:
        out = {}
        for name, v in values.items():
            score = v.mean(axis=2)  # [V,S]
            chosen = score.argmax(axis=1) if higher_is_better.get(name, True) else score.argmin(axis=1)
            out[name] = v[np.arange(len(chosen)), chosen]
        return out, None
    if not reduce.startswith("best:"):
        raise VidbenchError(f"protocol reduce {reduce!r}: use 'mean', 'best:<metric>' or '{BEST_PER_METRIC}'")
    key = reduce.split(":", 1)[1]
    if key not in values:
        raise VidbenchError(f"protocol reduce {reduce!r}: metric {key!r} is not computed (have {', '.join(values)})")
    score = values[key].mean(axis=2)  # [V,S]
    chosen = score.argmax(axis=1) if higher_is_better.get(key, True) else score.argmin(axis=1)
    rows = np.arange(len(chosen))
    return {name: v[rows, chosen] for name, v in values.items()}, chosen


def all_reduce_sum(tensors: list[torch.Tensor]) -> None:
    """Sum state tensors over torch.distributed ranks in place (no-op single-process). One flat float64
    buffer, so gloo and nccl see a single collective; nccl needs it on the GPU."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1 or not tensors:
        return
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    flat = torch.cat([t.reshape(-1).to(device, torch.float64) for t in tensors])
    dist.all_reduce(flat)
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset : offset + n].reshape(t.shape).to(t.dtype))
        offset += n


class Accumulators:
    """Everything the results need, fed one batch record at a time (in batch order, so reruns are exact)."""

    def __init__(self, protocol, frame_metrics: list[str], prefixes: tuple[int, ...], with_fvd: bool,
                 hib: dict[str, bool]):
        self.protocol = protocol
        self.frame_metrics = frame_metrics
        self.stats = {m: TimestepStats(protocol.horizon) for m in frame_metrics}
        # every predicted frame's value per video (vidbench/evaluate/per_frame.py: bands of frames); the per-video
        # means (per_video) are taken from it
        self.per_frame: dict[str, dict[int, np.ndarray]] = {m: {} for m in frame_metrics}
        self.prefixes = prefixes
        self.fvd = None
        # Per-video I3D features {video: (real [P,D], fake [S',P,D])}: a few KB per video, independent of the
        # horizon; kept for the FVD and KVD jackknife intervals and for the features file beside the results.
        self.fvd_videos: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if with_fvd:
            from vidbench.metrics.fvd import FEATURE_DIM, FeatureStats

            # dim given: a rank without batches still has tensors of the right size to all_reduce
            self.fvd = [(FeatureStats(FEATURE_DIM), FeatureStats(FEATURE_DIM)) for _ in prefixes]
        self.seconds = 0.0
        self.hib = {m: hib[m] for m in frame_metrics}

    def add(self, record: dict) -> None:
        videos = [int(i) for i in record["video_index"]]
        per_sample = {m: record[f"metric_{m}"] for m in self.frame_metrics}
        reduced, _ = reduce_samples(per_sample, self.protocol.reduce, self.hib)
        for m, values in reduced.items():
            bad = ~np.isfinite(values)
            if bad.any():
                v, t = np.argwhere(bad)[0]
                raise VidbenchError(f"{m} is NaN/inf for test video #{videos[v]} at predicted frame {t}; not averaged in")
            self.stats[m].update(values)
            for i, frames in zip(videos, values):
                self.per_frame[m][i] = np.array(frames, dtype=np.float64)
        if self.fvd is not None:
            for p, (real, fake) in enumerate(self.fvd):
                real.update(torch.from_numpy(record["fvd_real"][:, p]))
                fake.update(torch.from_numpy(record["fvd_fake"][:, :, p].reshape(-1, record["fvd_fake"].shape[-1])))
            for v, i in enumerate(videos):
                self.fvd_videos[i] = (np.asarray(record["fvd_real"][v]), np.asarray(record["fvd_fake"][v]))
        self.seconds += float(record["seconds"])

    @property
    def per_video(self) -> dict[str, dict[int, float]]:
        """metric -> {video: mean over its predicted frames}."""
        return {m: {i: float(frames.mean()) for i, frames in videos.items()} for m, videos in self.per_frame.items()}

    def reduce(self) -> None:
        """Sum every accumulator over ranks; gather the per-video values (needed whole for the intervals)."""
        import torch.distributed as dist

        tensors = [t for s in self.stats.values() for t in s.tensors()]
        for pair in self.fvd or []:
            tensors += [t for stats in pair for t in stats.tensors()]
        seconds = torch.tensor([self.seconds], dtype=torch.float64)
        all_reduce_sum(tensors + [seconds])
        self.seconds = float(seconds)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, self.per_frame)
            self.per_frame = {m: {i: v for part in gathered for i, v in part[m].items()} for m in self.frame_metrics}
            if self.fvd is not None:
                gathered = [None] * dist.get_world_size()
                dist.all_gather_object(gathered, self.fvd_videos)
                self.fvd_videos = {i: f for part in gathered for i, f in part.items()}
