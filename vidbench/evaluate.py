"""Open-loop evaluation: a protocol's test videos -> predictions -> streamed metrics -> one results file.

    vidbench evaluate --model copy-last --dataset mmnist --protocol mmnist-short@1 --metrics ssim,psnr
    vidbench evaluate --checkpoint models/cwvae-mmnist-mmnist --dataset mmnist     # protocol mmnist@1
    vidbench evaluate --predictions preds.npy --dataset mmnist --protocol mmnist@1  # any framework's frames
    torchrun --nproc_per_node 2 -m vidbench.cli evaluate --checkpoint ... --dataset mmnist   # sharded

Videos are cut into fixed batches of --batch-size (batch b = videos [b*B, (b+1)*B)), each sampled with its
own seeded generator, so which videos and samples are scored depends neither on the number of ranks nor on
where a run was cut. The run folder caches per batch the uint8 predictions (batch-00000.pred.npy) and, in
batch-00000.npz, every sample's per-frame metric values and I3D features; a rerun reads them instead of
recomputing, and its results file equals an uninterrupted run's except the "run" section (wall time is
the sum of the cached batches' compute times, so rerunning a finished evaluation rewrites the same bytes).
Ranks take batches round-robin; accumulators are sums reduced with torch.distributed (per-timestep curves
then match one process to float rounding; summaries and CIs, from gathered per-video values, exactly).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from vidbench import __version__
from vidbench.accumulate import TimestepStats, all_reduce_sum, bootstrap_ci, reduce_samples
from vidbench.data.loader import TestSequences, to_model_input
from vidbench.data.store import PreparedSplit
from vidbench.errors import VidbenchError
from vidbench.eval_sources import PredictionsFile, batch_seed, open_source
from vidbench.fileio import atomic_write_bytes, atomic_write_json
from vidbench.registry import METRICS

RESULTS_FORMAT = 1
FINGERPRINT = "evaluation.fingerprint"  # not *.json: the leaderboard globs results folders for *.json
BOOTSTRAP_RESAMPLES = 1000
CI_LEVEL = 0.95
METRIC_CALL_FRAMES = 256  # frames per metric call: bounds float temporaries whatever the horizon


# ---------------------------------------------------------------------------------------------- setup


def resolve_protocol(dataset: str, protocol=None, horizon=None, num_videos=None, num_samples=None):
    """The named protocol (default `<dataset>@1`); overrides make a new name that says what changed,
    so a modified protocol is never compared with the published one."""
    from vidbench.protocols import Protocol, default_protocol, get_protocol

    p = protocol if isinstance(protocol, Protocol) else (get_protocol(protocol) if protocol else default_protocol(dataset))
    if p.dataset != dataset:
        raise VidbenchError(f"protocol {p.name} is for dataset {p.dataset!r}; the test videos given are {dataset!r}")
    changes = {k: v for k, v in (("horizon", horizon), ("num_videos", num_videos), ("num_samples", num_samples))
               if v is not None and v != getattr(p, k)}
    for key, value in changes.items():
        if value < 1:
            raise VidbenchError(f"--{key.replace('_', '-')} must be at least 1, got {value}")
    if not changes:
        return p
    label = ",".join(f"{k}={v}" for k, v in changes.items())
    prefixes = () if "horizon" in changes else p.fvd_prefixes  # recomputed for the new horizon
    return dataclasses.replace(p, name=f"{p.name}[{label}]", fvd_prefixes=prefixes, **changes)


def resolve_metrics(protocol, metrics=None) -> list[str]:
    import vidbench.metrics  # noqa: F401  (fills the registry)

    names = list(protocol.metrics) if metrics is None else list(metrics)
    for name in names:
        METRICS.info(name)  # unknown name -> "did you mean"
    key = protocol.reduce[5:]
    if protocol.reduce.startswith("best:") and not any(key in metric_outputs(n) for n in names):
        raise VidbenchError(f"protocol {protocol.name} keeps the best sample by {key}; add it to --metrics")
    return names


def metric_outputs(name: str) -> tuple[str, ...]:
    """The values a metric yields, each scored and summarised on its own: its name, or the registry's
    `outputs` (readout: readout_accuracy and readout_position_error)."""
    return tuple(METRICS.info(name).get("outputs", (name,)))


def higher_is_better(name: str) -> dict[str, bool]:
    """Direction of each output of a metric. The registry gives one bool, or a dict per output where they
    differ (readout: accuracy up, position error down), so best-of-N never picks the worst sample."""
    better = METRICS.info(name).get("higher_is_better", name not in ("lpips", "fvd"))
    return {out: bool(better[out] if isinstance(better, dict) else better) for out in metric_outputs(name)}


class MetricSet:
    """The metrics this run computes: per-frame callables (pred, target) [N,C,H,W] -> [N]; metadata metrics
    (predictions uint8 [V,S,T,H,W,C], split, videos, context) -> {output: [V,S,T]}, which read each test
    video's recorded metadata (readout: digit positions and labels); and I3D for FVD.
    A metric whose weights are missing, or whose metadata the test split lacks, stops the run, or with
    skip_unavailable is recorded with the reason."""

    def __init__(self, names, device, weights_dir=None, skip_unavailable=False, split=None):
        self.device = device
        self.frame: dict = {}
        self.metadata: dict = {}
        self.i3d = None
        self.unavailable: dict[str, str] = {}
        self.weights: dict[str, dict] = {}  # which weight file each network metric used (results + fingerprint)
        for name in names:
            try:
                kind = METRICS.info(name).get("kind", "frame")
                if kind == "frame":
                    self.frame[name] = METRICS.get(name)
                elif kind == "network":  # built once, then called like a frame metric (LPIPS)
                    self.frame[name] = METRICS.get(name)(weights_dir=weights_dir, device=device)
                    self.weights[name] = self.frame[name].weights
                elif kind == "metadata":
                    _check_metadata(name, split)
                    self.metadata[name] = METRICS.get(name)
                elif name == "fvd":
                    from vidbench.metrics.fvd import I3DFeatures

                    self.i3d = I3DFeatures(device=device, weights_dir=weights_dir)
                    self.weights[name] = self.i3d.weights
                else:
                    raise VidbenchError(f"metric {name!r} ({kind}) is not computed by `vidbench evaluate`")
            except VidbenchError as e:
                from vidbench.metrics.weights import MetricUnavailable

                if not isinstance(e, MetricUnavailable):
                    raise
                if not skip_unavailable:
                    raise VidbenchError(f"{e} (or pass --skip-unavailable to record {name} as unavailable)") from e
                self.unavailable[name] = str(e)
        # Per-frame values in the order asked for; each output is scored like a frame metric.
        self.per_frame = [out for name in names if name in self.frame or name in self.metadata
                          for out in metric_outputs(name)]
        self.higher_is_better = {out: better for name in names for out, better in higher_is_better(name).items()}


def _check_metadata(name: str, split) -> None:
    """A metadata metric needs the registry's `needs_metadata` keys in the test videos' metadata (readout:
    positions and labels, which only a Moving MNIST generated by vidbench records; the authors' mp4 archive
    has none). Checked on the first video before anything is predicted."""
    from vidbench.metrics.weights import MetricUnavailable

    needs = tuple(METRICS.info(name).get("needs_metadata", ()))
    meta = split.metadata(0) if split is not None and len(split) else {}
    lacking = [k for k in needs if k not in meta]
    if lacking:
        source = (split.manifest.get("source") or {}).get("kind", "unknown")
        raise MetricUnavailable(f"metric {name} needs {' and '.join(lacking)} in each test video's metadata; "
                                f"{split.root} ({split.dataset}, source: {source}) has none")


# ------------------------------------------------------------------------------------------ run folder


class RunFolder:
    """Per-batch cache of one evaluation. Its fingerprint (protocol, model, test data, seed, batch size)
    must match, so a folder is never resumed by a different evaluation."""

    def __init__(self, path: Path, fingerprint: dict):
        self.path = Path(path)
        self.fingerprint = fingerprint

    def claim(self) -> None:
        """Check the folder's fingerprint, or stamp a new folder. Metric weight files may be added (a metric
        skipped as unavailable can be filled in later from the cached predictions) but never changed."""
        stamp = self.path / FINGERPRINT
        new = dict(self.fingerprint)
        if stamp.exists():
            old = json.loads(stamp.read_text())
            old_weights, new_weights = old.pop("metric_weights", {}), new.pop("metric_weights", {})
            changed = sorted(m for m in old_weights.keys() & new_weights.keys() if old_weights[m] != new_weights[m])
            if changed:
                raise VidbenchError(f"{stamp}: this run folder scored {', '.join(changed)} with other weights "
                                    f"({', '.join(old_weights[m]['file'] for m in changed)}); use another --run-dir")
            if old != new:
                diffs = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
                what = ", ".join(_describe_diff(k, old.get(k), new.get(k)) for k in diffs)
                raise VidbenchError(f"{stamp}: this run folder belongs to another evaluation ({what}); "
                                    f"use another --run-dir or delete it")
            if not new_weights.keys() <= old_weights.keys():
                self._stamp({**old, "metric_weights": {**old_weights, **new_weights}})
        elif self.path.exists() and any(self.path.glob("batch-*")):
            raise VidbenchError(f"{self.path}: holds cached batches but no {FINGERPRINT}; use another --run-dir")
        else:
            self._stamp(self.fingerprint)

    def _stamp(self, fingerprint: dict) -> None:
        atomic_write_bytes(self.path / FINGERPRINT, (json.dumps(fingerprint, indent=2, sort_keys=True) + "\n").encode())

    def _file(self, b: int, suffix: str) -> Path:
        return self.path / f"batch-{b:05d}{suffix}"

    def load(self, b: int) -> dict:
        path = self._file(b, ".npz")
        if not path.exists():
            return {}
        try:
            with np.load(path) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError) as e:
            raise VidbenchError(f"{path}: unreadable cached batch ({e}); delete it to recompute") from e

    def save(self, b: int, record: dict) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **record)
        atomic_write_bytes(self._file(b, ".npz"), buffer.getvalue())

    def load_predictions(self, b: int):
        path = self._file(b, ".pred.npy")
        return np.load(path, mmap_mode="r") if path.exists() else None

    def save_predictions(self, b: int, predictions: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, predictions)
        atomic_write_bytes(self._file(b, ".pred.npy"), buffer.getvalue())


def _describe_diff(key, old, new) -> str:
    if key == "protocol":
        old_name, new_name = (old or {}).get("name"), (new or {}).get("name")
        if old_name != new_name:
            return f"written by protocol {old_name}, this command uses {new_name}"
        return f"protocol {new_name} fields differ"
    if key == "model":
        return f"model {(old or {}).get('name')} vs {(new or {}).get('name')} (or another checkpoint)"
    return f"{key} {old} vs {new}"


# ------------------------------------------------------------------------------------- one batch


def _frame_values(videos, predictions, split, context, fns, device) -> dict[str, np.ndarray]:
    """Per-frame values [V,S,T] (float64) of every frame metric, computed a few frames at a time."""
    v, s, horizon = predictions.shape[:3]
    out = {name: np.empty((v, s, horizon)) for name in fns}
    step = max(1, METRIC_CALL_FRAMES // (v * s))
    for t0 in range(0, horizon, step):
        t1 = min(horizon, t0 + step)
        target = np.stack([split.sequence(i)[context + t0 : context + t1] for i in videos])
        target = to_model_input(torch.from_numpy(target).to(device))                     # [V,t,C,H,W]
        pred = to_model_input(torch.from_numpy(np.array(predictions[:, :, t0:t1]))
                              .to(device).flatten(0, 1))                                  # [V*S,t,C,H,W]
        pred = pred.unflatten(0, (v, s))
        target = target.unsqueeze(1).expand_as(pred)
        for name, fn in fns.items():
            values = fn(pred.reshape(-1, *pred.shape[-3:]), target.reshape(-1, *pred.shape[-3:]))
            out[name][:, :, t0:t1] = torch.as_tensor(values).double().reshape(v, s, t1 - t0).cpu().numpy()
    return out


def _fvd_features(i3d, videos, predictions, chosen, split, protocol, prefixes) -> tuple[np.ndarray, np.ndarray]:
    """I3D features of the real and predicted clip of every prefix: real [V,P,400], fake [V,S',P,400] where
    S' is every sample (mean-of-N) or the chosen one (best-of-N)."""
    ctx = protocol.context
    lead = ctx if protocol.fvd_include_context else 0  # TECO style: both sets start with the real context
    fake_samples = predictions if chosen is None else predictions[np.arange(len(videos)), chosen][:, None]
    real_feats, fake_feats = [], []
    for length in prefixes:
        real = np.stack([split.sequence(i)[ctx - lead : ctx + length] for i in videos])     # [V,L',H,W,C]
        real_feats.append(_i3d(i3d, real))
        fake = fake_samples[:, :, :length]                                                 # [V,S',L,H,W,C]
        if lead:
            head = np.broadcast_to(real[:, None, :lead], (*fake.shape[:2], *real[:, :lead].shape[1:]))
            fake = np.concatenate([head, fake], axis=2)
        feats = _i3d(i3d, fake.reshape(-1, *fake.shape[2:]))
        fake_feats.append(feats.reshape(*fake.shape[:2], -1))
    return np.stack(real_feats, axis=1), np.stack(fake_feats, axis=2)


def _i3d(i3d, clips_uint8: np.ndarray) -> np.ndarray:
    """Features [N,400] of uint8 clips [N,L,H,W,C], made float a few clips at a time (4x the bytes)."""
    per_call = max(1, METRIC_CALL_FRAMES // clips_uint8.shape[1])
    feats = []
    for i in range(0, len(clips_uint8), per_call):
        clips = to_model_input(torch.from_numpy(np.ascontiguousarray(clips_uint8[i : i + per_call])))
        feats.append(torch.as_tensor(i3d.features(clips)).double().cpu().numpy())
    return np.concatenate(feats)


# -------------------------------------------------------------------------------------- accumulate


class Accumulators:
    """Everything the results need, fed one batch record at a time (in batch order, so reruns are exact)."""

    def __init__(self, protocol, frame_metrics: list[str], prefixes: tuple[int, ...], with_fvd: bool,
                 hib: dict[str, bool]):
        self.protocol = protocol
        self.frame_metrics = frame_metrics
        self.stats = {m: TimestepStats(protocol.horizon) for m in frame_metrics}
        self.per_video: dict[str, dict[int, float]] = {m: {} for m in frame_metrics}
        self.prefixes = prefixes
        self.fvd = None
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
            for i, value in zip(videos, values.mean(axis=1)):
                self.per_video[m][i] = float(value)
        if self.fvd is not None:
            for p, (real, fake) in enumerate(self.fvd):
                real.update(torch.from_numpy(record["fvd_real"][:, p]))
                fake.update(torch.from_numpy(record["fvd_fake"][:, :, p].reshape(-1, record["fvd_fake"].shape[-1])))
        self.seconds += float(record["seconds"])

    def reduce(self) -> None:
        """Sum every accumulator over ranks; gather the per-video values (needed whole for the bootstrap)."""
        import torch.distributed as dist

        tensors = [t for s in self.stats.values() for t in s.tensors()]
        for pair in self.fvd or []:
            tensors += [t for stats in pair for t in stats.tensors()]
        seconds = torch.tensor([self.seconds], dtype=torch.float64)
        all_reduce_sum(tensors + [seconds])
        self.seconds = float(seconds)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, self.per_video)
            self.per_video = {m: {i: v for part in gathered for i, v in part[m].items()} for m in self.frame_metrics}


# ------------------------------------------------------------------------------------------ evaluate


def evaluate(dataset, *, model=None, preset=None, checkpoint=None, predictions=None, protocol=None,
             horizon=None, num_videos=None, num_samples=None, metrics=None, skip_unavailable=False,
             weights_dir=None, batch_size=8, out=None, run_dir=None, seed=0, device=None, progress=None) -> dict:
    """Evaluate a model (name + optional checkpoint, or a VideoModel) or a predictions file on a protocol.

    dataset: a prepared dataset folder. Returns the results dict, also written atomically to `out` (rank 0).
    """
    rank, world, started_dist = _init_distributed(device)
    try:
        device = _device(device, world)
        split = PreparedSplit(dataset, "test")
        protocol = resolve_protocol(split.dataset, protocol, horizon, num_videos, num_samples)
        TestSequences(split, protocol.num_videos, protocol.length)  # every scored video long enough
        names = resolve_metrics(protocol, metrics)
        if batch_size < 1:
            raise VidbenchError(f"--batch-size must be at least 1, got {batch_size}")
        frame_shape = tuple(split.info["shards"][0]["shape"][2:])
        source = open_source(model, preset, checkpoint, predictions, protocol, frame_shape, device)
        metric_set = MetricSet(names, device, weights_dir, skip_unavailable, split)
        fingerprint = _plain({
            "protocol": protocol.to_dict(), "model": {k: v for k, v in source.identity.items() if k != "run"},
            "test_data_sha256": split.info["data_sha256"], "seed": seed, "batch_size": batch_size,
            "device_type": device.type, "metric_weights": metric_set.weights,
        })
        out, run_dir = _paths(out, run_dir, source.identity, protocol, checkpoint)
        folder = RunFolder(run_dir, fingerprint)
        _on_rank0_then_share(lambda: (_check_out(out, protocol, source.identity), folder.claim()))

        frame_metrics = metric_set.per_frame
        prefixes = _fvd_prefixes(protocol) if metric_set.i3d is not None else ()
        if metric_set.i3d is not None and not prefixes:
            metric_set.unavailable["fvd"] = "every FVD clip of this protocol is too short for I3D"
            metric_set.i3d = None
        acc = Accumulators(protocol, frame_metrics, prefixes, metric_set.i3d is not None, metric_set.higher_is_better)

        num_batches = math.ceil(protocol.num_videos / batch_size)
        mine = range(rank, num_batches, world)
        error = None
        try:
            for b in progress(mine, desc="evaluate", total=len(mine)) if progress and rank == 0 else mine:
                videos = list(range(b * batch_size, min(protocol.num_videos, (b + 1) * batch_size)))
                acc.add(_batch_record(b, videos, folder, source, split, protocol, metric_set, prefixes, seed, acc.hib))
        except VidbenchError as e:
            error = str(e)
        _raise_if_any_rank_failed(error)
        acc.reduce()
        results = _plain(_results(acc, protocol, source.identity, split, names, metric_set, seed, batch_size,
                                  device, world))
        if rank == 0:
            atomic_write_json(out, results)
        return results
    finally:
        if started_dist:
            import torch.distributed as dist

            dist.destroy_process_group()


def _batch_record(b, videos, folder, source, split, protocol, metric_set, prefixes, seed, hib) -> dict:
    """The batch's cached record, completed with whatever it lacks (nothing, on a rerun)."""
    record = folder.load(b)
    missing = [m for m in metric_set.frame if f"metric_{m}" not in record]
    missing_metadata = [name for name in metric_set.metadata
                        if any(f"metric_{out}" not in record for out in metric_outputs(name))]
    need_fvd = metric_set.i3d is not None and "fvd_real" not in record
    if not missing and not missing_metadata and not need_fvd:
        return record
    start = time.perf_counter()
    predictions = folder.load_predictions(b)
    if predictions is None:
        context = np.stack([split.sequence(i)[: protocol.context] for i in videos])
        predictions = source.predictions(videos, context, protocol.horizon, protocol.num_samples, batch_seed(seed, b))
        if not isinstance(source, PredictionsFile):  # a predictions file is its own cache
            folder.save_predictions(b, predictions)
    record = dict(record) or {"video_index": np.asarray(videos, dtype=np.int64), "seconds": np.float64(0.0)}
    fns = {m: metric_set.frame[m] for m in missing}
    for m, values in _frame_values(videos, predictions, split, protocol.context, fns, metric_set.device).items():
        record[f"metric_{m}"] = values
    for name in missing_metadata:
        values = metric_set.metadata[name](predictions, split, videos, protocol.context)
        for out in metric_outputs(name):
            record[f"metric_{out}"] = _metadata_values(name, out, values, predictions.shape[:3])
    if need_fvd:
        _, chosen = reduce_samples({m: record[f"metric_{m}"] for m in metric_set.per_frame}, protocol.reduce, hib)
        record["fvd_real"], record["fvd_fake"] = _fvd_features(metric_set.i3d, videos, predictions, chosen, split,
                                                               protocol, prefixes)
        record["fvd_prefixes"] = np.asarray(prefixes, dtype=np.int64)
    record["seconds"] = np.float64(float(record["seconds"]) + time.perf_counter() - start)
    folder.save(b, record)
    return record


def _metadata_values(name, out, values: dict, shape) -> np.ndarray:
    """One output of a metadata metric as float64 [V,S,T], like every cached frame metric."""
    if out not in values or np.shape(values[out]) != tuple(shape):
        got = np.shape(values[out]) if out in values else "nothing"
        raise VidbenchError(f"metric {name}: expected {out} of shape {tuple(shape)}, got {got}")
    return np.asarray(values[out], dtype=np.float64)


def _fvd_prefixes(protocol) -> tuple[int, ...]:
    """The protocol's prefix lengths whose clips I3D can take (REFERENCE.md 2: not under ~10 frames)."""
    from vidbench.metrics.fvd import MIN_FRAMES

    lead = protocol.context if protocol.fvd_include_context else 0
    return tuple(p for p in protocol.fvd_prefixes if p <= protocol.horizon and p + lead >= MIN_FRAMES)


# ------------------------------------------------------------------------------------------- results


def _results(acc, protocol, identity, split, names, metric_set, seed, batch_size, device, world) -> dict:
    per_timestep, summary, ci, videos = {}, {}, {}, {}
    for m in acc.frame_metrics:
        per_video = np.array([acc.per_video[m][i] for i in sorted(acc.per_video[m])])
        videos[m] = _floats(per_video)
        per_timestep[m] = {"mean": _floats(acc.stats[m].mean()), "std": _floats(acc.stats[m].std())}
        summary[m] = float(per_video.mean())  # = mean over frames and videos (every video has `horizon` frames)
        ci[m] = list(bootstrap_ci(per_video, seed, BOOTSTRAP_RESAMPLES, CI_LEVEL))
    fvd = {}
    if acc.fvd is not None:
        from vidbench.metrics.fvd import fvd_from_stats

        fvd = {str(p): float(fvd_from_stats(real, fake)) for p, (real, fake) in zip(acc.prefixes, acc.fvd)}
        summary["fvd"] = fvd[str(acc.prefixes[-1])]
    return {
        "format": RESULTS_FORMAT,
        "protocol": protocol.to_dict(),
        "model": identity,
        "dataset": {"name": split.dataset, "split": "test", "test_data_sha256": split.info["data_sha256"]},
        "metrics": names,
        "higher_is_better": metric_set.higher_is_better,  # per output: the readout's two go opposite ways
        "summary": summary,
        "ci": ci,
        "ci_method": {"kind": "percentile bootstrap over videos of the summary mean", "resamples": BOOTSTRAP_RESAMPLES,
                      "level": CI_LEVEL, "seed": seed},
        "per_timestep": per_timestep,
        "per_video": videos,  # mean over time per test video (file order): for CIs and paired comparisons
        "fvd": fvd,
        "fvd_prefixes": list(acc.prefixes) if acc.fvd is not None else [],
        "unavailable": metric_set.unavailable,
        "metric_weights": metric_set.weights,
        "num_videos": protocol.num_videos,
        "num_samples": protocol.num_samples,
        "seed": seed,
        "batch_size": batch_size,
        "conventions": {"frames": "scored as uint8 (the cached predictions), /255 to [0,1]",
                        "std": "population std over videos (ddof 0)",
                        "fvd_samples": "every sample" if protocol.reduce == "mean" else "the best sample per video"},
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
             f"sample(s), context {p['context']}, horizon {p['horizon']}"]
    scored = [out for name in results["metrics"] for out in metric_outputs(name) if out in results["ci"]]
    width = max([11] + [len(m) for m in scored])  # readout_position_error is longer than the classic names
    for m in scored:
        lo, hi = results["ci"][m]
        lines.append(f"  {m:{width}} {results['summary'][m]:9.4f}   {CI_LEVEL:.0%} CI [{lo:.4f}, {hi:.4f}]")
    if results["fvd"]:
        prefixes = sorted(results["fvd"], key=int)
        lines.append(f"  {'fvd':{width}} " + "  ".join(f"{k}: {results['fvd'][k]:.1f}" for k in prefixes))
    for m, why in results["unavailable"].items():
        lines.append(f"  {m:{width}} unavailable: {why}")
    return lines


# ---------------------------------------------------------------------------------------- plumbing


def _paths(out, run_dir, identity, protocol, checkpoint) -> tuple[Path, Path]:
    """Default cache folder: eval-<protocol>/ inside a training run folder, else runs/evals/<model>-<protocol>/
    (both git-ignored), with results.json inside; --out x.json alone caches in x.run/ beside it."""
    if out is None and run_dir is None:
        slug = re.sub(r"[^A-Za-z0-9._@-]+", "-", protocol.name).strip("-")
        if checkpoint is not None and Path(checkpoint).is_dir():
            run_dir = Path(checkpoint) / f"eval-{slug}"
        else:
            preset = (identity.get("config") or {}).get("preset")
            label = re.sub(r"[^A-Za-z0-9._@-]+", "-", identity["name"] + (f"-{preset}" if preset else ""))
            run_dir = Path("runs") / "evals" / f"{label}-{slug}"
    if out is None:
        out = Path(run_dir) / "results.json"
    out = Path(out)
    return out, Path(run_dir) if run_dir is not None else out.with_suffix(".run")


def _check_out(out: Path, protocol, identity) -> None:
    """Never overwrite the results of another protocol or model."""
    if not out.exists():
        return
    try:
        old = json.loads(out.read_text())
        old_protocol, old_model = old["protocol"], old["model"]
    except (OSError, ValueError, KeyError, TypeError):
        raise VidbenchError(f"{out}: exists and is not a vidbench results file; choose another --out") from None
    if old_protocol != _plain(protocol.to_dict()):
        raise VidbenchError(f"{out}: holds results of protocol {old_protocol.get('name')}, this command uses "
                            f"{protocol.name}; choose another --out")
    if old_model != _plain(identity):
        raise VidbenchError(f"{out}: holds results of model {old_model.get('name')} (another model or checkpoint); "
                            f"choose another --out")


def _plain(obj):
    """As it reads back from JSON (tuples become lists), so stored and fresh values compare equal."""
    return json.loads(json.dumps(obj, sort_keys=True))


def _git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _device(device, world) -> torch.device:
    import os

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def _init_distributed(device) -> tuple[int, int, bool]:
    """(rank, world size, whether this call started the process group). torchrun sets WORLD_SIZE."""
    import os

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), False
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, False
    use_cuda = (device is None and torch.cuda.is_available()) or str(device or "").startswith("cuda")
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return dist.get_rank(), dist.get_world_size(), True


def _on_rank0_then_share(step) -> None:
    """Run a check-and-write step on rank 0 only; every rank raises its error, so none waits forever."""
    import torch.distributed as dist

    distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    error = None
    if not distributed or dist.get_rank() == 0:
        try:
            step()
        except VidbenchError as e:
            error = str(e)
    if distributed:
        box = [error]
        dist.broadcast_object_list(box, src=0)
        error = box[0]
    if error:
        raise VidbenchError(error)


def _raise_if_any_rank_failed(error: str | None) -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        errors = [None] * dist.get_world_size()
        dist.all_gather_object(errors, error)
        error = next((e for e in errors if e), None)
    if error:
        raise VidbenchError(error)
