"""One batch of test videos: predictions (cached or made), every metric's per-frame values, I3D features."""

from __future__ import annotations

import time

import numpy as np
import torch

from vidbench.data.loader import to_model_input
from vidbench.errors import VidbenchError
from vidbench.evaluate.accumulate import reduce_samples
from vidbench.evaluate.metric_set import metric_outputs
from vidbench.evaluate.sources import PredictionsFile, batch_seed

METRIC_CALL_FRAMES = 256  # frames per metric call: bounds float temporaries whatever the horizon


def batch_record(b, videos, folder, source, split, protocol, metric_set, prefixes, seed, hib) -> dict:
    """The batch's cached record, completed with whatever it lacks (nothing, on a rerun)."""
    record = folder.load(b)
    frames = {m: frames_scored(source, m) for m in metric_set.frame}  # "raw" or "uint8" per frame metric
    missing = [m for m in metric_set.frame
               if f"metric_{m}" not in record or str(record.get(f"frames_{m}", "uint8")) != frames[m]]
    missing_metadata = [name for name in metric_set.metadata
                        if any(f"metric_{out}" not in record for out in metric_outputs(name))
                        or str(record.get(f"definition_{name}", "1")) != _definition(name)]
    need_fvd = metric_set.i3d is not None and "fvd_real" not in record
    if not missing and not missing_metadata and not need_fvd:
        return record
    start = time.perf_counter()
    needs_raw = any(frames[m] == "raw" for m in missing)
    predictions = folder.load_predictions(b)
    raw = folder.load_predictions(b, raw=True) if needs_raw else None
    if predictions is None or (needs_raw and raw is None):  # seeded per batch: the same frames again
        context = np.stack([split.sequence(i)[: protocol.context] for i in videos])
        predictions = source.predictions(videos, context, protocol.horizon, protocol.num_samples, batch_seed(seed, b))
        raw = source.last_raw if needs_raw else None
        if not isinstance(source, PredictionsFile):  # a predictions file is its own cache
            folder.save_predictions(b, predictions)
            if raw is not None:
                folder.save_predictions(b, raw, raw=True)
    record = dict(record) or {"video_index": np.asarray(videos, dtype=np.int64), "seconds": np.float64(0.0)}
    for kind, frames_in in (("uint8", predictions), ("raw", raw)):
        fns = {m: metric_set.frame[m] for m in missing if frames[m] == kind}
        if not fns:
            continue
        for m, values in _frame_values(videos, frames_in, split, protocol.context, fns, metric_set.device).items():
            record[f"metric_{m}"] = values
            record[f"frames_{m}"] = np.str_(kind)
    for name in missing_metadata:
        values = metric_set.metadata[name](predictions, split, videos, protocol.context)
        for out in metric_outputs(name):
            record[f"metric_{out}"] = _metadata_values(name, out, values, predictions.shape[:3])
        record[f"definition_{name}"] = np.str_(_definition(name))
    if need_fvd:
        _, chosen = reduce_samples({m: record[f"metric_{m}"] for m in metric_set.per_frame}, protocol.reduce, hib)
        record["fvd_real"], record["fvd_fake"] = _fvd_features(metric_set.i3d, videos, predictions, chosen, split,
                                                               protocol, prefixes, metric_set.gt_features)
        record["fvd_prefixes"] = np.asarray(prefixes, dtype=np.int64)
    record["seconds"] = np.float64(float(record["seconds"]) + time.perf_counter() - start)
    folder.save(b, record)
    return record


def frames_scored(source, metric: str) -> str:
    """"raw" where a metric registered with `scores_raw` (the *_cwvae conventions) meets a source with raw decoder
    floats (a model run in-process that has them), else "uint8" (predictions files, standard conventions)."""
    from vidbench.registry import METRICS

    return "raw" if getattr(source, "raw", False) and METRICS.info(metric).get("scores_raw") else "uint8"


def _definition(name) -> str:
    """The registry's `definition` of a metadata metric ("1" if none): values cached under another definition
    (the readout's first design) are recomputed, never mixed in."""
    from vidbench.registry import METRICS

    return str(METRICS.info(name).get("definition", "1"))


def _metadata_values(name, out, values: dict, shape) -> np.ndarray:
    """One output of a metadata metric as float64 [V,S,T], like every cached frame metric."""
    if out not in values or np.shape(values[out]) != tuple(shape):
        got = np.shape(values[out]) if out in values else "nothing"
        raise VidbenchError(f"metric {name}: expected {out} of shape {tuple(shape)}, got {got}")
    return np.asarray(values[out], dtype=np.float64)


def fvd_prefixes(protocol) -> tuple[tuple[int, ...], dict[int, str]]:
    """The protocol's prefix lengths whose clips I3D can take, and {dropped length: why} for the others (longer
    than the horizon, or clips under the network's minimum, vidbench.metrics.fvd.MIN_FRAMES): the engine warns
    and the results file lists them, so no prefix disappears silently."""
    from vidbench.metrics.fvd import MIN_FRAMES

    lead = protocol.context if protocol.fvd_include_context else 0
    kept, dropped = [], {}
    for p in protocol.fvd_prefixes:
        if p > protocol.horizon:
            dropped[p] = f"longer than the horizon ({protocol.horizon} frames)"
        elif p + lead < MIN_FRAMES:
            dropped[p] = f"a {p + lead}-frame clip is under the {MIN_FRAMES} frames I3D takes"
        else:
            kept.append(p)
    return tuple(kept), dropped


def _frame_values(videos, predictions, split, context, fns, device) -> dict[str, np.ndarray]:
    """Per-frame values [V,S,T] (float64) of every frame metric, computed a few frames at a time. predictions:
    uint8 [V,S,T,H,W,C] (scored /255), or float raw decoder frames of that shape (scored as they are)."""
    v, s, horizon = predictions.shape[:3]
    out = {name: np.empty((v, s, horizon)) for name in fns}
    step = max(1, METRIC_CALL_FRAMES // (v * s))
    for t0 in range(0, horizon, step):
        t1 = min(horizon, t0 + step)
        target = np.stack([split.sequence(i)[context + t0 : context + t1] for i in videos])
        target = to_model_input(torch.from_numpy(target).to(device))                     # [V,t,C,H,W]
        chunk = torch.from_numpy(np.array(predictions[:, :, t0:t1])).to(device).flatten(0, 1)
        pred = to_model_input(chunk) if chunk.dtype == torch.uint8 else chunk.float().permute(0, 1, 4, 2, 3)
        pred = pred.unflatten(0, (v, s))
        target = target.unsqueeze(1).expand_as(pred)
        for name, fn in fns.items():
            values = fn(pred.reshape(-1, *pred.shape[-3:]), target.reshape(-1, *pred.shape[-3:]))
            out[name][:, :, t0:t1] = torch.as_tensor(values).double().reshape(v, s, t1 - t0).cpu().numpy()
    return out


def _fvd_features(i3d, videos, predictions, chosen, split, protocol, prefixes, gt=None) -> tuple[np.ndarray, np.ndarray]:
    """I3D features of the real and predicted clip of every prefix: real [V,P,400], fake [V,S',P,400] where
    S' is every sample (mean-of-N) or the chosen one (best-of-N). All prefixes of a clip share one I3D pass
    (I3DFeatures.prefix_features). gt: the shared ground-truth feature cache (feature_cache.py); real clips
    found there are not run through I3D again."""
    ctx = protocol.context
    lead = ctx if protocol.fvd_include_context else 0  # TECO style: both sets start with the real context
    lengths = [lead + p for p in prefixes]             # clip lengths, context included where pasted
    fake_samples = predictions if chosen is None else predictions[np.arange(len(videos)), chosen][:, None]
    real = np.stack([split.sequence(i)[ctx - lead : ctx + max(prefixes)] for i in videos])   # [V,L',H,W,C]
    fake = fake_samples[:, :, : max(prefixes)]                                                 # [V,S',L,H,W,C]
    if lead:
        head = np.broadcast_to(real[:, None, :lead], (*fake.shape[:2], *real[:, :lead].shape[1:]))
        fake = np.concatenate([head, fake], axis=2)
    fake_feats = _i3d(i3d, fake.reshape(-1, *fake.shape[2:]), lengths).reshape(*fake.shape[:2], len(lengths), -1)
    if gt is None:
        return _i3d(i3d, real, lengths), fake_feats
    row, done = {v: k for k, v in enumerate(videos)}, {}

    def all_prefixes(missing, k):  # a video missing from the cache gets every prefix computed in one pass
        todo = [v for v in missing if v not in done]
        if todo:
            done.update(zip(todo, _i3d(i3d, real[[row[v] for v in todo]], lengths)))
        return np.stack([done[v][k] for v in missing])

    real_feats = [gt.features(videos, ctx - lead, ctx + p, lambda missing, k=k: all_prefixes(missing, k))
                  for k, p in enumerate(prefixes)]
    return np.stack(real_feats, axis=1), fake_feats


def _i3d(i3d, clips_uint8: np.ndarray, lengths: list[int]) -> np.ndarray:
    """Features [N,P,400] of the prefixes `lengths` of uint8 clips [N,L,H,W,C], made float a few clips at a
    time (4x the bytes)."""
    per_call = max(1, METRIC_CALL_FRAMES // clips_uint8.shape[1])
    feats = []
    for i in range(0, len(clips_uint8), per_call):
        clips = to_model_input(torch.from_numpy(np.ascontiguousarray(clips_uint8[i : i + per_call])))
        feats.append(torch.as_tensor(i3d.prefix_features(clips, lengths)).double().cpu().numpy())
    return np.concatenate(feats)
