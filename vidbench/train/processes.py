"""Processes and devices: one process, or torchrun's (RANK, WORLD_SIZE, LOCAL_RANK) with DDP's process group."""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from vidbench.errors import VidbenchError


@dataclass
class Processes:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    owns_group: bool = False  # we initialised the process group, so we tear it down

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        """Tear down the group we started. Every rank first waits for the others, and objects that hold
        gloo work (DDP's reducer) are collected while the interpreter is whole: a process group left to
        interpreter shutdown can abort the process ("terminate called without an active exception")."""
        if self.owns_group and dist.is_initialized():
            gc.collect()
            dist.barrier()
            dist.destroy_process_group()
            self.owns_group = False


def setup_processes(device: str = "auto") -> Processes:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); one process when it is absent. device: auto,
    cpu, cuda (under torchrun: each rank its LOCAL_RANK's GPU) or cuda:N (one process on GPU N)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    torch_device = _train_device(str(device), world_size, local_rank)
    use_cuda = torch_device.type == "cuda"
    if use_cuda:
        torch.cuda.set_device(torch_device)
    owns = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")  # nccl on GPU, gloo on CPU
        owns = True
    return Processes(rank, world_size, torch_device, owns)


def _train_device(device: str, world_size: int, local_rank: int) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda") or (parsed.type == "cpu" and parsed.index):
        raise VidbenchError(f"--device {device}: choose auto, cpu, cuda or cuda:N")
    if parsed.type == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise VidbenchError(f"--device {device}: no CUDA GPU is visible to torch; use --device cpu")
    if parsed.index is None:
        return torch.device("cuda", local_rank)
    if world_size > 1:
        raise VidbenchError(f"--device {device}: under torchrun every rank takes its own GPU; give --device cuda "
                            f"(and CUDA_VISIBLE_DEVICES to choose which GPUs)")
    if parsed.index >= torch.cuda.device_count():
        raise VidbenchError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                            f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return parsed
