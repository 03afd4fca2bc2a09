"""Evaluate's (and train's) CUDA device selection, exercised on a CPU machine: torch.cuda's calls are replaced
by recorders, so the lines a GPU run takes (device choice, set_device per rank) run here too (issue 26 item 3: a misspelt
`torch.cuda.set_device` crashed every GPU evaluate and no CPU test reached it)."""

import torch

from vidbench.evaluate.distributed import pick_device


def _fake_cuda(monkeypatch, calls):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(torch.device(device)))


def test_pick_device_defaults_to_cuda_and_sets_it(monkeypatch):
    calls = []
    _fake_cuda(monkeypatch, calls)
    assert pick_device(None, 1) == torch.device("cuda")
    assert calls == [torch.device("cuda")]


def test_pick_device_one_gpu_per_rank_under_torchrun(monkeypatch):
    calls = []
    _fake_cuda(monkeypatch, calls)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert pick_device("cuda", 4) == torch.device("cuda", 3)
    assert calls == [torch.device("cuda", 3)]


def test_pick_device_cpu_touches_no_cuda(monkeypatch):
    calls = []
    _fake_cuda(monkeypatch, calls)
    assert pick_device("cpu", 1) == torch.device("cpu")
    assert calls == []


def test_train_takes_cuda_n_as_evaluate_does(monkeypatch):
    """`vidbench train --device cuda:N` (one process on GPU N), recorded on CPU with torch.cuda's answers
    replaced: cuda:1 on a 2-GPU machine is GPU 1; cuda under torchrun is each rank's LOCAL_RANK; cuda:N under
    torchrun, or past the machine's GPUs, is a one-line error (test_bad_options runs the CLI cases)."""
    import pytest

    from vidbench.errors import VidbenchError
    from vidbench.train.processes import _train_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert _train_device("cuda:1", world_size=1, local_rank=0) == torch.device("cuda", 1)
    assert _train_device("auto", world_size=1, local_rank=0) == torch.device("cuda", 0)
    assert _train_device("cuda", world_size=2, local_rank=1) == torch.device("cuda", 1)
    assert _train_device("cpu", world_size=2, local_rank=1) == torch.device("cpu")
    with pytest.raises(VidbenchError, match="under torchrun every rank takes its own GPU"):
        _train_device("cuda:1", world_size=2, local_rank=0)
    with pytest.raises(VidbenchError, match="2 CUDA device"):
        _train_device("cuda:2", world_size=1, local_rank=0)
