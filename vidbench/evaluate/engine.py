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

import json
import math
import re
from pathlib import Path

from vidbench.data.loader import TestSequences
from vidbench.data.store import PreparedSplit
from vidbench.errors import VidbenchError
from vidbench.evaluate.accumulate import Accumulators
from vidbench.evaluate.assemble import assemble_results
from vidbench.evaluate.cache import RunFolder
from vidbench.evaluate.distributed import (
    close_distributed,
    init_distributed,
    on_rank0_then_share,
    pick_device,
    raise_if_any_rank_failed,
)
from vidbench.evaluate.metric_set import MetricSet, resolve_metrics
from vidbench.evaluate.protocols import resolve_protocol
from vidbench.evaluate.scoring import batch_record, frames_scored, fvd_prefixes
from vidbench.evaluate.sources import open_source
from vidbench.fileio import atomic_write_json


def evaluate(dataset, *, model=None, preset=None, checkpoint=None, predictions=None, protocol=None,
             horizon=None, num_videos=None, num_samples=None, reduce=None, metrics=None, skip_unavailable=False,
             weights_dir=None, batch_size=8, out=None, run_dir=None, seed=0, device=None, progress=None) -> dict:
    """Evaluate a model (name + optional checkpoint, or a VideoModel) or a predictions file on a protocol.

    dataset: a prepared dataset folder. Returns the results dict, also written atomically to `out` (rank 0).
    """
    rank, world, started_dist = init_distributed(device)
    try:
        device = pick_device(device, world)
        split = PreparedSplit(dataset, "test")
        protocol = resolve_protocol(split.dataset, protocol, horizon, num_videos, num_samples, reduce)
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
        on_rank0_then_share(lambda: (_check_out(out, protocol, source.identity), folder.claim()))

        frame_metrics = metric_set.per_frame
        prefixes, dropped = fvd_prefixes(protocol) if metric_set.i3d is not None else ((), {})
        if metric_set.i3d is not None and not prefixes:
            metric_set.unavailable["fvd"] = "every FVD clip of this protocol is too short for I3D"
            metric_set.i3d = None
        if dropped and rank == 0:
            import warnings

            for length, why in dropped.items():
                warnings.warn(f"{protocol.name}: FVD prefix {length} dropped: {why}", stacklevel=2)
        acc = Accumulators(protocol, frame_metrics, prefixes, metric_set.i3d is not None, metric_set.higher_is_better)

        num_batches = math.ceil(protocol.num_videos / batch_size)
        mine = range(rank, num_batches, world)
        error = None
        try:
            for b in progress(mine, desc="evaluate", total=len(mine)) if progress and rank == 0 else mine:
                videos = list(range(b * batch_size, min(protocol.num_videos, (b + 1) * batch_size)))
                acc.add(batch_record(b, videos, folder, source, split, protocol, metric_set, prefixes, seed, acc.hib))
        except VidbenchError as e:
            error = str(e)
        raise_if_any_rank_failed(error)
        acc.reduce()
        results = _plain(assemble_results(acc, protocol, source.identity, split, names, metric_set, seed, batch_size,
                                  device, world, dropped, {m: frames_scored(source, m) for m in metric_set.frame}))
        if rank == 0:
            atomic_write_json(out, results)
        return results
    finally:
        if started_dist:
            close_distributed()


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
