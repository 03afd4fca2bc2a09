"""torch.distributed plumbing of evaluation: device per rank, the process group, and errors every rank sees."""

from __future__ import annotations

import gc
import os

import torch
import torch.distributed as dist

from vidbench.errors import VidbenchError


def pick_device(device, world) -> torch.device:
    """The device of this rank (evaluate, sample, analyze): --device, else cuda where there is one. A name
    that is neither cpu nor cuda[:N], or cuda on a machine without one, is a one-line error."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    name = str(device)
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise VidbenchError(f"--device {name}: choose cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VidbenchError(f"--device {device}: no CUDA device is available on this machine; use --device cpu")
    if device.type == "cuda" and device.index is None and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def init_distributed(device) -> tuple[int, int, bool]:
    """(rank, world size, whether this call started the process group). torchrun sets WORLD_SIZE."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), False
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, False
    use_cuda = (device is None and torch.cuda.is_available()) or str(device or "").startswith("cuda")
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return dist.get_rank(), dist.get_world_size(), True


def on_rank0_then_share(step) -> None:
    """Run a check-and-write step on rank 0 only; every rank raises its error, so none waits forever."""
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


def raise_if_any_rank_failed(error: str | None) -> None:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        errors = [None] * dist.get_world_size()
        dist.all_gather_object(errors, error)
        error = next((e for e in errors if e), None)
    if error:
        raise VidbenchError(error)


def close_distributed() -> None:
    """Tear down the group init_distributed started, once every rank is done with it; the group is not left
    to interpreter shutdown, where gloo's threads can abort the process."""
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()
