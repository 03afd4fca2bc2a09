"""Evaluate's CUDA device selection, exercised on a CPU machine: torch.cuda's calls are replaced by recorders, so
the lines a GPU run takes (device choice, set_device per rank) run here too (issue 26 item 3: a misspelt
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
