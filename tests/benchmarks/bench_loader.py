"""Data loading against the model's appetite: training windows per second out of the memory-mapped store
through the training loop's DataLoader (the `vidbench train` default of 2 workers, and 0), against the
windows per second a CW-VAE mmnist step consumes at batch 50 x 100 measured in the same run.

On this CPU the model consumes far fewer windows than the loader delivers; on a GPU, tests/benchmarks/
gpu_check.py runs the same loader measurement against the GPU's steps/s (loader_windows_per_second below).

    pytest -s -o addopts="" tests/benchmarks/bench_loader.py
"""

from __future__ import annotations

import statistics
import time

import torch

from vidbench.data.loader import TrainWindows, collate_windows, to_model_input
from vidbench.data.store import PreparedSplit
from vidbench.models import create_model
from vidbench.train import step_function

CLI_DEFAULT_WORKERS = 2  # vidbench train --num-workers
BATCH, FRAMES = 50, 100


def loader_windows_per_second(dataset_root, workers: int = CLI_DEFAULT_WORKERS, batch: int = BATCH,
                              frames: int = FRAMES, seconds: float = 5.0, pin_memory: bool = False,
                              collate=collate_windows) -> float:
    """Windows/s through the training loop's DataLoader (uint8 windows, batch_sampler over a permutation, as
    the loop receives them; it converts to float on the device), over about `seconds` after one batch."""
    windows = TrainWindows(PreparedSplit(dataset_root, "train"), length=frames, seed=0)
    # One DataLoader over many permutations of a small store: like one long epoch of the real loop (which
    # starts its workers once per 400-batch epoch), so worker start-up is not what gets measured.
    generator = torch.Generator().manual_seed(0)
    order = torch.cat([torch.randperm(len(windows), generator=generator) for _ in range(1000)]).tolist()
    batches = [order[i:i + batch] for i in range(0, len(order) - batch + 1, batch)]
    loader = torch.utils.data.DataLoader(windows, batch_sampler=batches, num_workers=workers,
                                         pin_memory=pin_memory, collate_fn=collate)
    count, start = 0, None
    for item in loader:
        if start is None:
            start = time.perf_counter()  # after the first batch: worker start-up excluded
            continue
        count += item.shape[0]
        if time.perf_counter() - start > seconds:
            break
    return count / (time.perf_counter() - start)


def test_loader_keeps_up_with_the_model(tmp_path):
    from conftest import write_glyph_idx

    from vidbench.data import mmnist

    torch.set_num_threads(2)
    root = tmp_path / "mmnist"
    mmnist.prepare(root, idx_dir=write_glyph_idx(tmp_path / "idx"), num_train=200, num_test=2)
    rates = {workers: loader_windows_per_second(root, workers) for workers in (0, CLI_DEFAULT_WORKERS)}
    default_collate = loader_windows_per_second(root, CLI_DEFAULT_WORKERS, collate=None)

    torch.manual_seed(0)
    model = create_model("cwvae", "mmnist")
    step = step_function(model)
    video = to_model_input(torch.stack([TrainWindows(PreparedSplit(root, "train"), FRAMES)[i] for i in range(4)]))
    times = []
    for i in range(3):  # batch 4 on the CPU, scaled to 50: the CPU step is linear in the batch at this size
        start = time.perf_counter()
        step(video)
        if i:
            times.append(time.perf_counter() - start)
    consumed = 4 / statistics.median(times)
    print(f"\nloader, windows of {FRAMES} frames from the memory-mapped store (200 sequences, batch {BATCH}):")
    for workers, rate in rates.items():
        print(f"  {workers} workers: {rate:8.0f} windows/s = {rate / BATCH:6.1f} batches/s")
    print(f"  {CLI_DEFAULT_WORKERS} workers, torch's default_collate instead of collate_windows: "
          f"{default_collate:8.0f} windows/s (collate_windows / default = {rates[CLI_DEFAULT_WORKERS] / default_collate:.1f}x)")
    print(f"CW-VAE mmnist step on this CPU consumes {consumed:.1f} windows/s "
          f"(loader / model = {rates[CLI_DEFAULT_WORKERS] / consumed:.0f}x)")
    print("GPU: tests/benchmarks/gpu_check.py prints the same against the GPU's steps/s x 50")
    assert all(rate > 0 for rate in rates.values())
