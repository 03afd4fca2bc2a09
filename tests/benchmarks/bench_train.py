"""Training-loop overhead: the full `train()` step against a bare model step, and checkpoint cost.

CW-VAE mmnist preset (12.47M parameters), batch 4 x 100 frames (the issue's CPU anchor: the authors' TF
code takes a median 8.3 s per step here, REFERENCE.md section 6), 2 CPU threads. Bare step = loss forward +
backward + global-norm clip + TF-style Adam on a fixed batch; loop step = what `train()` logs as step_s
(data loading from the prepared store, uint8 -> float, reseeding, the step, log reductions). The loop
should add almost nothing; the checkpoint (model + Adam moments, ~150 MB) is written every
--checkpoint-every steps.

    pytest -s -o addopts="" tests/benchmarks/bench_train.py
"""

from __future__ import annotations

import json
import statistics
import time

import torch

from vidbench.data.loader import TrainWindows, to_model_input
from vidbench.data.store import PreparedSplit
from vidbench.models import create_model
from vidbench.train import train
from vidbench.train.checkpoint import load_checkpoint, save_checkpoint
from vidbench.train.optim import TFAdam, clip_global_norm_

BATCH, FRAMES, THREADS, TIMED_STEPS = 4, 100, 2, 3


def bare_step_seconds(model, video) -> float:
    optimiser = TFAdam(model.parameters(), lr=3e-4, eps=1e-4)
    times = []
    for step in range(1 + TIMED_STEPS):
        start = time.perf_counter()
        loss = model.loss(video)["loss"]
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        clip_global_norm_(list(model.parameters()), 10000.0)
        optimiser.step()
        if step:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def test_loop_overhead_and_checkpoint_cost(tiny_mmnist, tmp_path):
    torch.set_num_threads(THREADS)
    split = PreparedSplit(tiny_mmnist, "train")
    video = to_model_input(torch.stack([TrainWindows(split, FRAMES)[i] for i in range(BATCH)]))
    torch.manual_seed(0)
    bare = bare_step_seconds(create_model("cwvae", "mmnist"), video)

    run = train("cwvae", tiny_mmnist, preset="mmnist", steps=1 + TIMED_STEPS, batch_size=BATCH, seq_len=FRAMES,
                run_dir=tmp_path / "run", checkpoint_every=10_000, progress=False, echo=lambda line: None)
    logged = [json.loads(line)["step_s"] for line in (run / "log.jsonl").read_text().splitlines()][1:]
    loop = statistics.median(logged)

    start = time.perf_counter()
    state = load_checkpoint(run / "checkpoint.pt")
    load_s = time.perf_counter() - start

    start = time.perf_counter()
    save_checkpoint(tmp_path / "again.pt", state)
    save_s = time.perf_counter() - start
    size_mb = (tmp_path / "again.pt").stat().st_size / 1e6

    print(f"\ncwvae mmnist, batch {BATCH} x {FRAMES}, {THREADS} threads (median of {TIMED_STEPS} steps)")
    print(f"  bare model step   {bare:7.3f} s")
    print(f"  train() loop step {loop:7.3f} s   ({loop / bare:.3f}x the bare step)")
    print(f"  authors' TF code  {8.3:7.3f} s   (REFERENCE.md section 6; speed-up {8.3 / loop:.2f}x)")
    print(f"  checkpoint {size_mb:.0f} MB: save {save_s:.2f} s, load {load_s:.2f} s "
          f"(= {save_s / loop:.2f} loop steps per save)")
