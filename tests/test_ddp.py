"""DistributedDataParallel on CPU: 2 gloo processes with the same global batch match one process.

The workers get torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR ...) and call the same train() that
`vidbench train` calls, so this is the torchrun code path. The model is test-linear (tests/conftest.py)
with noise in its loss, drawn for the whole global batch through the trainer's `noise_rows`, so the
match is exact up to float rounding, noise included.
"""

import json
import os
import socket

import conftest
import pytest
import torch
import torch.multiprocessing as mp

from vidbench.train import train
from vidbench.train.checkpoint import load_checkpoint

# 6 steps at global batch 4 over 16 windows (one 60-frame window per 100-frame sequence) cross an epoch boundary;
# a checkpoint at 3 and 6.
RUN = dict(steps=6, batch_size=4, seq_len=60, checkpoint_every=3, device="cpu", progress=False,
           overrides={"noise": 0.5})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world_size, port, dataset, run_dir, run, model="test-linear"):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    conftest.register_linear_model()
    train(model, dataset, run_dir=run_dir, echo=lambda line: None, **run)


@pytest.mark.timeout(300)
def test_two_gloo_processes_match_one_process(tiny_mmnist, tmp_path, linear_model):
    single = train(linear_model, tiny_mmnist, run_dir=tmp_path / "single", echo=lambda line: None, **RUN)
    mp.spawn(_worker, args=(2, _free_port(), tiny_mmnist, tmp_path / "ddp", RUN), nprocs=2, join=True)

    one, two = load_checkpoint(single / "checkpoint.pt"), load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")
    assert two["step"] == 6 and len(two["rng"]) == 2  # every rank's RNG state is kept
    torch.manual_seed(0)
    initial = conftest.linear_test_model(noise=0.5).state_dict()  # train() seeds 0 before building the model
    moved = 0.0
    for key, value in one["model"].items():
        # The linear test model's gradients are sums of a few well-conditioned terms: reassociating them
        # over 2 ranks changes them at float32 rounding (~1e-7 relative), and 6 Adam steps carry that into
        # the weights at a few 1e-7; 1e-5 / 1e-6 leave room while a wrong reduction (a missing rank's
        # share) moves them by order lr = 3e-4, the default the test model gets).
        torch.testing.assert_close(two["model"][key], value, rtol=1e-5, atol=1e-6)
        moved = max(moved, float((value - initial[key]).abs().max()))
    assert moved > 1e-3  # the weights did train, so the match is not trivial
    losses = [[json.loads(line)["loss"] for line in (run / "log.jsonl").read_text().splitlines()]
              for run in (single, tmp_path / "ddp")]
    assert len(losses[1]) == 6  # only rank 0 logs, the mean over ranks
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)  # the same weights up to the rounding above


@pytest.mark.timeout(300)
def test_cwvae_under_two_gloo_processes_matches_one_process(tiny_mmnist, tmp_path):
    """The real model, noise included: each rank draws the global batch's noise and keeps its rows."""
    run = dict(steps=2, batch_size=4, seq_len=8, checkpoint_every=2, device="cpu", progress=False, preset="tiny")
    single = train("cwvae", tiny_mmnist, run_dir=tmp_path / "single", echo=lambda line: None, **run)
    mp.spawn(_worker, args=(2, _free_port(), tiny_mmnist, tmp_path / "ddp", run, "cwvae"), nprocs=2, join=True)
    one, two = load_checkpoint(single / "checkpoint.pt"), load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")
    # Adam moves each weight by at most about lr per step, whatever the gradient's size: m / (sqrt(v) + eps)
    # is near +-1 in the first steps. Gradients that are sums of cancelling terms (most of CW-VAE's, near
    # zero at initialisation) change in their leading digits when 2 ranks reassociate the sums, which kernel
    # family and thread count also do, so such a weight may differ by a fraction of lr. Measured: 3.5e-6
    # on one AVX-512 machine. 1% of the most a weight can move (steps x lr) separates that rounding from a
    # real mismatch (a missing or doubled rank share moves weights by order lr).
    lr, steps = float(one["config"]["train"]["lr"]), run["steps"]
    for key, value in one["model"].items():
        torch.testing.assert_close(two["model"][key], value, rtol=1e-4, atol=0.01 * steps * lr)
    losses = [[json.loads(line)["loss"] for line in (r / "log.jsonl").read_text().splitlines()]
              for r in (single, tmp_path / "ddp")]
    # Step 1: identical weights, the loss mean only reassociated (~1e-7 relative). Step 2: weights apart by
    # at most the atol above, over ~1e4 terms of the loss; 1e-4 relative bounds both.
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
