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

Rank 0 locks the cache folder and the results file for the whole run (vidbench.locking), so a second
evaluation of either stops with one line instead of both passing the checks and one losing its results.
The test shards are checked against the manifest's sha256 the first time they are read (the test split is
small: ~0.4 GB for Moving MNIST's 100 x 1000 frames), so a corrupt shard never changes scores silently.
"""

from __future__ import annotations

import json
import math
import re
from contextlib import ExitStack
from pathlib import Path

from vidbench.cpu_memory import keep_freed_memory
from vidbench.errors import VidbenchError
from vidbench.evaluate.accumulate import Accumulators
from vidbench.evaluate.assemble import assemble_results
from vidbench.evaluate.cache import FINGERPRINT, RunFolder
from vidbench.evaluate.contexts import protocol_split
from vidbench.evaluate.distributed import (
    close_distributed,
    init_distributed,
    on_rank0_then_share,
    pick_device,
    raise_if_any_rank_failed,
)
from vidbench.evaluate.feature_cache import GroundTruthFeatures, estimate_line
from vidbench.evaluate.fvd_features import add_fvd_statistics, write_features
from vidbench.evaluate.metric_set import MetricSet, resolve_metrics
from vidbench.evaluate.per_frame import write_per_frame
from vidbench.evaluate.scoring import batch_record, frames_scored, fvd_prefixes
from vidbench.evaluate.sources import open_source
from vidbench.fileio import atomic_write_json
from vidbench.locking import OutputLock, check_output_file, claim_folder
from vidbench.options import check_options

RESULTS_DIR = Path("leaderboard") / "results"  # where `vidbench leaderboard` reads by default


class WrittenResults(dict):
    """A results dict (as written) that also knows where it was written: `.path`."""

    def __init__(self, results: dict, path: Path):
        super().__init__(results)
        self.path = Path(path)


def evaluate(dataset, *, model=None, preset=None, checkpoint=None, predictions=None, protocol=None,
             horizon=None, last_frame=None, num_videos=None, num_samples=None, reduce=None, metrics=None, skip_unavailable=False,
             weights_dir=None, batch_size=8, out=None, results_dir=RESULTS_DIR, run_dir=None, replace=False, seed=0,
             device=None, progress=None, echo=None, feature_cache=None, parameters=None) -> dict:
    """Evaluate a model (name + optional checkpoint, or a VideoModel) or a predictions file on a protocol.

    dataset: a prepared dataset folder. Returns the results dict, also written atomically (rank 0) to
    `out`, or to results_dir/<run or model>-<protocol>.json (default leaderboard/results/, where
    `vidbench leaderboard` reads; results_dir=None: results.json in the cache folder); the returned dict's
    `.path` says where (an attribute, not a key: the dict equals the file's contents).
    horizon: frames predicted; last_frame: the paper's count from the first frame (see resolve_protocol).
    replace: overwrite an earlier result (and cache) of the same model and protocol from another
    checkpoint of it; results of another model or protocol are never overwritten.
    feature_cache: folder of the shared ground-truth I3D features (default: feature_cache.default_root()).
    parameters: a predictions file's model's parameter count, as its author states it (vidbench cannot count
    what it does not run): recorded with "parameters_stated", shown so on the page, never part of the scores.
    """
    check_options(seed=seed, batch_size=batch_size, num_videos=num_videos, num_samples=num_samples,
                  parameters=parameters)
    if parameters is not None and predictions is None:
        raise VidbenchError(f"--parameters {parameters}: only with --predictions (a model vidbench runs has its "
                            f"parameters counted)")
    if predictions is not None and checkpoint is not None:
        raise VidbenchError(f"--predictions {predictions} and --checkpoint {checkpoint}: give one; predictions are "
                            f"scored as they are, a checkpoint would be ignored")
    if metrics is not None and not list(metrics):
        raise VidbenchError("--metrics: names no metric; give e.g. --metrics ssim,psnr, or leave it out for the "
                            "protocol's")
    rank, world, started_dist = init_distributed(device)
    locks = ExitStack()
    try:
        device = pick_device(device, world)
        if device.type == "cpu":
            keep_freed_memory()  # prediction and I3D reuse freed activations (vidbench/cpu_memory.py)
        split, protocol = protocol_split(dataset, protocol, horizon, num_videos, num_samples, reduce, last_frame)
        names = resolve_metrics(protocol, metrics, split)
        frame_shape = tuple(split.info["shards"][0]["shape"][2:])
        source = open_source(model, preset, checkpoint, predictions, protocol, frame_shape, device, split)
        if parameters is not None:
            source.identity.update(parameters=int(parameters), parameters_stated=True)
        metric_set = MetricSet(names, device, weights_dir, skip_unavailable, split)
        fingerprint = _plain({
            "protocol": protocol.to_dict(), "model": {k: v for k, v in _unstated(source.identity).items() if k != "run"},
            "test_data_sha256": split.info["data_sha256"], "seed": seed, "batch_size": batch_size,
            "device_type": device.type, "metric_weights": metric_set.weights,
        })
        out, run_dir = _paths(out, run_dir, source.identity, protocol, checkpoint, results_dir)
        folder = RunFolder(run_dir, fingerprint)

        def claim():
            locks.enter_context(claim_folder(run_dir, ours=(FINGERPRINT, out.name), what="evaluation cache folder"))
            if out.parent.resolve() != run_dir.resolve():  # a results file inside the folder is covered by its lock
                locks.enter_context(OutputLock(check_output_file(out), "results file"))
            _check_out(out, protocol, source.identity, replace)
            folder.claim(replace)

        on_rank0_then_share(claim)

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
        if metric_set.i3d is not None:
            metric_set.gt_features = GroundTruthFeatures(split, metric_set.weights["fvd"], feature_cache)
            if echo is not None and rank == 0:
                samples = 1 if protocol.reduce.startswith("best:") else protocol.num_samples
                echo(estimate_line(protocol, prefixes, protocol.num_videos, samples, metric_set.gt_features, device.type))

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
        results = assemble_results(acc, protocol, source.identity, split, names, metric_set, seed, batch_size,
                                   device, world, dropped, {m: frames_scored(source, m) for m in metric_set.frame})
        results = _plain(add_fvd_statistics(results, acc, seed, out))
        if rank == 0:
            write_features(acc, out)
            write_per_frame(acc.per_frame, out)
            atomic_write_json(out, results)
            if echo is not None:
                echo(f"wrote {out}")
        return WrittenResults(results, out)
    finally:
        locks.close()
        if started_dist:
            close_distributed()


def _paths(out, run_dir, identity, protocol, checkpoint, results_dir=None) -> tuple[Path, Path]:
    """Where the results file and the cache folder go.

    Cache folder: eval-<protocol>/ inside a training run folder, else runs/evals/<label>-<protocol>/ (both
    git-ignored); with --out x.json alone, x.run/ beside it. Results file: --out; else, with results_dir,
    results_dir/<label>-<protocol>.json (label: the run folder's name, else model[-preset]); else
    results.json in the cache folder."""
    slug = re.sub(r"[^A-Za-z0-9._@-]+", "-", protocol.name).strip("-")
    preset = (identity.get("config") or {}).get("preset")
    label = identity.get("run") or identity["name"] + (f"-{preset}" if preset else "")
    label = re.sub(r"[^A-Za-z0-9._@-]+", "-", label)
    if run_dir is None and out is None:
        in_run = checkpoint is not None and Path(checkpoint).is_dir()
        # A model evaluated as it is (an object, an outside model's own weights): one cache folder per weights,
        # so re-weighting it re-scores instead of meeting the other weights' cached predictions.
        weights = f"-w{identity['weights_sha256'][:8]}" if identity.get("weights_sha256") else ""
        run_dir = Path(checkpoint) / f"eval-{slug}" if in_run else Path("runs") / "evals" / f"{label}-{slug}{weights}"
    if out is None:
        out = Path(results_dir) / f"{label}-{slug}.json" if results_dir is not None else Path(run_dir) / "results.json"
    out = Path(out)
    return out, Path(run_dir) if run_dir is not None else out.with_suffix(".run")


def _check_out(out: Path, protocol, identity, replace: bool = False) -> None:
    """Never overwrite the results of another protocol or model (with replace: of another checkpoint of
    the same model, on the same protocol, is allowed)."""
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
    if _unstated(old_model) != _plain(_unstated(identity)) and not (replace and old_model.get("name") == identity.get("name")):
        if old_model.get("name") == identity.get("name"):
            raise VidbenchError(f"{out}: holds results of model {identity.get('name')} with other weights (another "
                                f"checkpoint, or an object trained since); --replace (replace=True in Python) "
                                f"overwrites it, or choose another --out")
        raise VidbenchError(f"{out}: holds results of model {old_model.get('name')} (another model or checkpoint); "
                            f"choose another --out, or --replace to overwrite a result of the same model from another checkpoint")


def _unstated(identity: dict) -> dict:
    """The identity without a stated parameter count: the same predictions file scores the same, whatever its
    author says about the model (so the cache holds, and a corrected count rewrites the results in place)."""
    if not isinstance(identity, dict) or not identity.get("parameters_stated"):
        return identity
    return {k: v for k, v in identity.items() if k not in ("parameters", "parameters_stated")}


def _plain(obj):
    """As it reads back from JSON (tuples become lists), so stored and fresh values compare equal."""
    return json.loads(json.dumps(obj, sort_keys=True))
