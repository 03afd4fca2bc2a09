"""Training loop: one code path for a single process and for `torchrun` (DistributedDataParallel).

    vidbench train --model cwvae --dataset mmnist --steps 2000           # preset "mmnist", run dir models/cwvae-mmnist-mmnist
    torchrun --nproc_per_node 2 -m vidbench.cli train --model cwvae --dataset mmnist --steps 2000
    vidbench train --model cwvae --preset tiny --dataset mmnist --steps 50 --batch-size 4 --seq-len 36

Defaults follow the authors' code (REFERENCE.md section 1): batch 50 x 100 frames, TF-style Adam with
eps 1e-4, the learning rate of the model's preset (mmnist 3e-4, minerl 1e-4), global-norm clip 10000.

Run folder (models/<model>-<preset>-<dataset> by default):
    config.json     the resolved config: model config, training config, dataset checksum. A rerun with a
                    different config is refused; the same command resumes.
    checkpoint.pt   latest state (vidbench/train/checkpoint.py), replaced atomically every --checkpoint-every steps
                    and at the end; a killed run loses at most the steps since it.
    log.jsonl       one line per step: step, epoch, loss, nll, kl per level, grad_norm, lr, time.
    data-check.json size, mtime and sha256 of each training shard when its sha256 was last checked: the
                    first run hashes every shard; a resume re-hashes only shards whose size or mtime changed.

The run folder is locked while training (vidbench.locking): a second train on it stops with one line.

Epoch: the authors' (issue 12): one pass over every non-overlapping --seq-len window of every training video
(vidbench.data.loader.TrainWindows); the planned step count is printed before the first step.

Determinism: the data order depends only on (seed, epoch): a permutation per epoch, cut into global
batches; rank r of W takes the r-th slice of each global batch, so the global batch is the same for any
W. The torch RNG is reseeded from (seed, step, rank) before every step, so a resumed run draws the same
noise as an uninterrupted one. With the same global batch, W processes match one process to float
tolerance when the loss is deterministic, or when the model shares its noise: a model with a
`noise_rows` attribute is told (first row, global batch) and should draw its training noise for the
whole global batch and keep its own rows; every rank then uses the same per-step seed. Other stochastic
models draw independent noise per rank (equal only in expectation).
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist

from vidbench.data.loader import TrainWindows, collate_windows, to_model_input
from vidbench.data.store import PreparedSplit, check_shard
from vidbench.errors import VidbenchError
from vidbench.fileio import atomic_write_bytes, atomic_write_json, write_error
from vidbench.locking import claim_folder
from vidbench.models.base import create_model
from vidbench.options import check_options
from vidbench.registry import MODELS
from vidbench.train.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from vidbench.train.config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    DEFAULT_SEQ_LEN,
    check_overrides,
    check_same_config,
    default_preset,
    default_run_dir,
    optimizer_config,
)
from vidbench.train.lineage import RunLineage, load_init_weights
from vidbench.train.plan import epoch_batches, plan_line, step_seed
from vidbench.train.processes import Processes, setup_processes
from vidbench.train.step import LossModule, check_amp, default_channels_last, step_function

CONFIG_NAME, LOG_NAME, DATA_CHECK = "config.json", "log.jsonl", "data-check.json"
RUN_FILES = (CONFIG_NAME, LOG_NAME, DATA_CHECK, "checkpoint.pt")


def train(model_name: str, dataset_root, *, preset: str | None = None, overrides: dict | None = None,
          steps: int | None = None, epochs: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
          seq_len: int = DEFAULT_SEQ_LEN, lr: float | None = None, run_dir=None, checkpoint_every: int = 1000,
          seed: int = 0, device: str = "auto", amp: str = "none", compile: bool = False,
          channels_last: bool | None = None, cuda_graphs: bool = False, num_workers: int = 0, progress: bool = True,
          minutes: float | None = None, init_from=None, command: str | None = None, echo=print) -> Path:
    """Train (or resume) a model on a prepared dataset's train split; returns the run folder.

    `steps` / `epochs` give the total budget (a rerun with a larger one continues the run). amp, compile,
    channels_last and cuda_graphs are the training step's options (vidbench/train/step.py).
    minutes: a wall-clock budget counted from this call (set-up, compile and capture included, as a rented
    GPU bills them): when it runs out, the checkpoint is written at that step and the run stops; the same
    command resumes. init_from: an exported weights file to start a new run from (fresh optimiser);
    its lineage and this run's sessions go to lineage.json (vidbench/train/lineage.py). command: the
    command line recorded in the lineage (default: this process's)."""
    if minutes is not None and not 0 < minutes < math.inf:  # NaN fails this too (a NaN deadline never comes)
        raise VidbenchError(f"--minutes must be more than 0 and finite, got {minutes}")
    deadline = _now() + 60.0 * minutes if minutes is not None else None
    check_amp(amp)
    if steps is not None and epochs is not None:
        raise VidbenchError("give --steps or --epochs, not both")
    # every option before anything is written: a rejected command leaves no run folder to block its fix
    check_options(steps=steps, epochs=epochs, batch_size=batch_size, seq_len=seq_len,
                  checkpoint_every=checkpoint_every, seed=seed, lr=lr, num_workers=num_workers)
    check_overrides(overrides)
    split = PreparedSplit(dataset_root, "train")
    dataset_name = split.dataset
    MODELS.get(model_name)  # unknown model: one-line error with suggestions, before anything else
    preset = preset if preset is not None else default_preset(model_name, dataset_name)
    run_dir = Path(run_dir) if run_dir else default_run_dir(model_name, preset, dataset_name)
    procs = setup_processes(device)
    try:
        fresh = not run_dir.exists()
        lock = claim_folder(run_dir, ours=RUN_FILES, what="training run folder") if procs.is_main else nullcontext()
        with lock:
            try:
                if procs.is_main:
                    check_train_data(split, run_dir / DATA_CHECK, echo)
                return _train(procs, model_name, split, preset=preset, overrides=overrides or {}, steps=steps,
                              epochs=epochs, batch_size=batch_size, seq_len=seq_len, lr=lr, run_dir=run_dir,
                              checkpoint_every=checkpoint_every, seed=seed, amp=amp, compile=bool(compile),
                              channels_last=channels_last, cuda_graphs=bool(cuda_graphs), num_workers=num_workers,
                              progress=progress, deadline=deadline, init_from=init_from,
                              command=command, echo=echo)
            except VidbenchError:
                if fresh and procs.is_main:
                    _remove_unstarted_run(run_dir)
                raise
    finally:
        procs.close()


def _remove_unstarted_run(run_dir: Path) -> None:
    """A run folder this command made and that never reached its first checkpoint (an option or the data was
    refused): removed, so the corrected command starts clean instead of meeting "made with another config"."""
    if (run_dir / "checkpoint.pt").exists():
        return
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    try:
        run_dir.rmdir()
    except OSError:
        pass  # something else is in it (nothing of ours): leave it


def check_train_data(split: PreparedSplit, record_path: Path, echo) -> None:
    """sha256 of every training shard on first use; later runs trust a shard whose size and mtime are those
    recorded when it was last hashed (hashing 8 GB of Moving MNIST at every resume would cost ~20 s)."""
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        record = {}
    fresh, hashed = {}, 0
    for shard in split.info["shards"]:
        path = split.root / shard["file"]
        check = record.get(shard["file"])
        stat = path.stat() if path.is_file() else None
        key = [stat.st_size, stat.st_mtime_ns, shard["sha256"]] if stat else None
        if key is None or check != key:
            check_shard(path, shard["sha256"])
            hashed += 1
        fresh[shard["file"]] = key
    if fresh != record:
        atomic_write_json(record_path, fresh)
    if hashed:
        echo(f"{split.root}: sha256 of {hashed} training shard(s) checked; unchanged shards (same size and mtime) "
             f"are not re-hashed by later runs")


def _train(procs: Processes, model_name, split: PreparedSplit, *, preset, overrides, steps, epochs, batch_size,
           seq_len, lr, run_dir: Path, checkpoint_every, seed, amp, compile, channels_last, cuda_graphs, num_workers,
           progress, deadline, init_from, command, echo) -> Path:
    session_start = _now()
    torch.manual_seed(seed)  # the same initial weights on every rank and in every rerun
    model = create_model(model_name, preset, **overrides)
    lineage_start = None
    if init_from is not None:
        lineage_start = load_init_weights(init_from, load_checkpoint(init_from), model)
    channels, frame_shape = model.config.get("channels"), split.info.get("frame_shape")
    if channels is not None and frame_shape and frame_shape[-1] != channels:
        raise VidbenchError(f"{split.root}: frames have {frame_shape[-1]} channel(s), model {model_name} "
                            f"(preset {preset}) takes {channels}; pick the dataset's preset or --set channels=...")
    windows = TrainWindows(split, length=seq_len, seed=seed)
    if batch_size % procs.world_size:
        raise VidbenchError(f"--batch-size {batch_size} (global) does not split evenly over {procs.world_size} processes")
    steps_per_epoch = len(windows) // batch_size
    if steps_per_epoch == 0:
        raise VidbenchError(f"{split.root}: --batch-size {batch_size} is larger than the {len(windows)} training "
                            f"windows of {seq_len} frames")
    if steps is None:
        epochs = epochs if epochs is not None else model.config.get("epochs", DEFAULT_EPOCHS.get(split.dataset))
        if epochs is None:
            raise VidbenchError(f"no default length for dataset {split.dataset!r}: pass --steps or --epochs")
        steps = epochs * steps_per_epoch
    if procs.is_main:
        echo(plan_line(steps, len(windows), len(split), seq_len, batch_size))
        if compile and not model.gradient_free:  # otherwise the bar sits at step 0 for minutes, unexplained
            echo("--compile: the first step compiles the loss before it trains (CW-VAE mmnist took 3-4 min on an "
                 "H100 and 8.5 min on 2 CPU cores, where the compiled step then ran no faster than eager)")
    if channels_last is None:
        channels_last = default_channels_last(procs.device.type, amp)
    config = {
        "model": model.config,
        "train": {"batch_size": batch_size, "seq_len": seq_len, "seed": seed, "amp": amp,
                  "compile": compile, "channels_last": channels_last, "cuda_graphs": cuda_graphs,
                  "lr": float(lr if lr is not None else model.config.get("lr", DEFAULT_LR)),
                  **optimizer_config(model.config),
                  # a run started from exported weights is another run than one from scratch (not resumable as it)
                  **({"init_from": lineage_start["init_from"]["sha256"]} if lineage_start else {})},
        "dataset": {"name": split.dataset, "root": str(split.root.resolve()),
                    "train_data_sha256": split.info["data_sha256"]},
    }
    config = json.loads(json.dumps(config))  # as it reads back from config.json (tuples -> lists)
    config_file, ckpt_file, log_file = run_dir / CONFIG_NAME, run_dir / "checkpoint.pt", run_dir / LOG_NAME
    if config_file.exists():  # every rank checks, so all fail together instead of hanging in a barrier
        try:
            stored = json.loads(config_file.read_text())
        except json.JSONDecodeError as e:
            raise VidbenchError(f"{config_file}: not valid JSON ({e})") from e
        check_same_config(stored, config, config_file)
    procs.barrier()
    if procs.is_main:
        atomic_write_json(config_file, config)
    procs.barrier()

    model.to(procs.device)
    train_cfg = config["train"]
    if cuda_graphs and procs.distributed:
        raise VidbenchError("--cuda-graphs is for one process: DistributedDataParallel's gradient hooks are not captured")
    trainer = step_function(model, amp=amp, compile=compile, channels_last=channels_last, cuda_graphs=cuda_graphs,
                            lr=train_cfg["lr"], device_type=procs.device.type)
    optimizer, scaler = trainer.optimizer, trainer.scaler
    step, elapsed = 0, 0.0
    if ckpt_file.exists():
        state = load_checkpoint(ckpt_file, map_location=procs.device)
        check_same_config(state["config"], config, ckpt_file)
        model.load_state_dict(state["model"])
        if optimizer is not None:
            optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        step, elapsed = int(state["step"]), float(state["elapsed"])
        if (state["epoch"], state["position"]) != divmod(step, steps_per_epoch):
            raise VidbenchError(f"{ckpt_file}: epoch/position {state['epoch']}/{state['position']} do not match "
                                f"step {step} at {steps_per_epoch} steps per epoch")
        if len(state["rng"]) == procs.world_size:
            restore_rng_state(state["rng"][procs.rank])
        if procs.is_main:
            echo(f"{run_dir}: resuming at step {step} of {steps}")
    lineage = RunLineage(run_dir, lineage_start) if procs.is_main else None
    if procs.is_main:
        _truncate_log(log_file, step)
        lineage.open_session(step, procs.device, command)
    if step >= steps:
        if procs.is_main:
            echo(f"{run_dir}: already trained for {step} steps (asked {steps}); pass a larger --steps to continue")
            lineage.update(step, _now() - session_start, "steps")
        return run_dir

    def save(at_step: int, stopped: str | None = None) -> None:
        rng = [capture_rng_state()]
        if procs.distributed:
            rng = [None] * procs.world_size
            dist.all_gather_object(rng, capture_rng_state())
        if procs.is_main:
            epoch, position = divmod(at_step, steps_per_epoch)
            lineage.update(at_step, _now() - session_start, stopped, write=False)
            save_checkpoint(ckpt_file, {
                "config": config, "model": model.state_dict(), "step": at_step, "epoch": epoch,
                "position": position, "elapsed": elapsed, "rng": rng,
                "optimizer": optimizer.state_dict() if optimizer is not None else {},
                "scaler": scaler.state_dict() if scaler is not None else {},
                "stopped": {"reason": stopped, "step": at_step} if stopped else None,
                "lineage": lineage.data,
            })
            lineage.update(at_step, _now() - session_start, stopped)  # after the checkpoint it describes

    if procs.distributed and not model.gradient_free:
        trainer.forward = torch.nn.parallel.DistributedDataParallel(
            LossModule(model), device_ids=[procs.device.index] if procs.device.type == "cuda" else None)
    local_batch = batch_size // procs.world_size
    shares_noise = hasattr(model, "noise_rows")
    if shares_noise:
        model.noise_rows = (procs.rank * local_batch, batch_size)
    bar = None
    if procs.is_main and progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, initial=step, desc=run_dir.name, dynamic_ncols=True)
    log = open(log_file, "a") if procs.is_main else None
    model.train()
    stopped = None
    try:
        while step < steps and stopped is None:
            epoch, position = divmod(step, steps_per_epoch)
            windows.set_epoch(epoch)
            rank_slice = slice(procs.rank * local_batch, (procs.rank + 1) * local_batch)
            batches = [b[rank_slice].tolist() for b in epoch_batches(len(windows), batch_size, seed, epoch)[position:]]
            loader = torch.utils.data.DataLoader(windows, batch_sampler=batches, num_workers=num_workers,
                                                 collate_fn=collate_windows, pin_memory=procs.device.type == "cuda")
            for batch in loader:
                started = time.perf_counter()
                torch.manual_seed(step_seed(seed, step, 0 if shares_noise else procs.rank))
                video = to_model_input(batch.to(procs.device, non_blocking=True))  # uint8 over the bus: 4x less
                logs = trainer(video)
                logs = _mean_over_ranks(logs, procs)
                step += 1
                elapsed += time.perf_counter() - started
                if procs.is_main:
                    record = {"step": step, "epoch": epoch, **logs, "lr": train_cfg["lr"],
                              "step_s": round(time.perf_counter() - started, 4), "time": round(elapsed, 3)}
                    try:
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                    except OSError as e:
                        raise write_error(log_file, e) from e
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(_postfix(logs), refresh=False)
                if step >= steps:
                    stopped = "steps"
                elif deadline is not None and _any_rank(_now() >= deadline, procs):
                    stopped = "budget"
                if stopped or step % checkpoint_every == 0:
                    save(step, stopped)
                if stopped:
                    break
    finally:
        if shares_noise:
            model.noise_rows = None  # prediction and evaluation draw noise for their own batch
        if log is not None:
            log.close()
        if bar is not None:
            bar.close()
    if procs.is_main and stopped == "budget":
        echo(f"{run_dir}: stopped on the --minutes budget at step {step} of {steps}; checkpoint {ckpt_file} "
             f"(the same command resumes)")
    elif procs.is_main:
        echo(f"{run_dir}: trained {step} steps; checkpoint {ckpt_file}")
    return run_dir


def _now() -> float:
    """The budget's clock (one name, so a test can drive it)."""
    return time.monotonic()


def _any_rank(flag: bool, procs: Processes) -> bool:
    """True on every rank when it is on any (ranks' clocks differ: all must stop at the same step, or the
    ones still training would wait for the others in DistributedDataParallel's all-reduce forever)."""
    if not procs.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=procs.device)
    dist.all_reduce(value)
    return bool(value.item() > 0)


def _mean_over_ranks(logs: dict, procs: Processes) -> dict[str, float]:
    """Log values as the mean over ranks (one all_reduce; the loss is a batch mean, so this is the global one)."""
    keys = sorted(logs)
    values = torch.stack([logs[k].reshape(()) for k in keys])
    if procs.distributed:
        dist.all_reduce(values)
        values /= procs.world_size
    return {k: round(v, 6) for k, v in zip(keys, values.tolist())}


def _postfix(logs: dict) -> dict[str, str]:
    return {k: f"{v:.4g}" for k, v in logs.items() if k in ("loss", "nll") or k.startswith("kl")}


def _truncate_log(log_file: Path, step: int) -> None:
    """Drop log lines past the checkpoint (a killed run's extra steps are redone by the resume)."""
    if not log_file.exists():
        return
    kept = []
    for line in log_file.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut off by the kill
    atomic_write_bytes(log_file, "".join(kept).encode())
