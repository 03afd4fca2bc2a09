"""The CUDA paths of `vidbench sample` and `vidbench analyze`, exercised on a CPU machine as
tests/test_evaluate_device.py does for evaluate (issue 26): torch.cuda's calls are replaced by recorders, and the
checkpoint read is stopped once it has been asked for the device, so the lines a GPU run takes (device choice,
set_device, loading onto the GPU) run here too. Without a GPU, `--device cuda` is one error line."""

import pytest
import torch
from test_bad_inputs import assert_one_line_error, cli

from vidbench.errors import VidbenchError
from vidbench.train import checkpoint as checkpoint_module


class Loaded(VidbenchError):
    """Raised by the recording reader once the device a checkpoint is loaded onto is known."""


def _fake_cuda(monkeypatch, calls):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("set_device", torch.device(device))))

    def read_checkpoint(path, map_location="cpu"):
        calls.append(("map_location", torch.device(map_location)))
        raise Loaded("stopped after the device was chosen")

    monkeypatch.setattr(checkpoint_module, "read_checkpoint", read_checkpoint, raising=False)  # absent before issue 26
    monkeypatch.setattr(checkpoint_module, "load_checkpoint", lambda path, map_location="cpu":
                        read_checkpoint(path, map_location)[0])


COMMANDS = {
    "sample": ["sample", "RUN", "--out", "OUT/s.gif", "--context", "4", "--horizon", "4"],
    "analyze-kl": ["analyze", "kl", "RUN", "--out", "OUT/kl.json", "--num-videos", "1", "--length", "8"],
    "analyze-levels": ["analyze", "levels", "RUN", "--out", "OUT/levels.png", "--num-videos", "1"],
}


def _args(name, tmp_path, device):
    return [str(a).replace("RUN", str(tmp_path / "run")).replace("OUT", str(tmp_path))
            for a in COMMANDS[name]] + ["--device", device]


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])  # cuda:N as evaluate takes it (was refused by the CLI)
@pytest.mark.parametrize("name", COMMANDS)
def test_cuda_device_is_set_and_the_checkpoint_loaded_onto_it(monkeypatch, tmp_path, capsys, name, device):
    import vidbench.analyze.sample as sample_module

    calls = []
    _fake_cuda(monkeypatch, calls)
    monkeypatch.setattr(sample_module, "load_checkpoint", checkpoint_module.load_checkpoint)  # imported by name
    code, _, err = cli(capsys, *_args(name, tmp_path, device))
    assert "stopped after the device was chosen" in assert_one_line_error(code, err)
    assert calls == [("set_device", torch.device(device)), ("map_location", torch.device(device))]


@pytest.mark.parametrize("name", COMMANDS)
def test_a_device_that_is_neither_cpu_nor_cuda_is_one_error_line(tmp_path, capsys, name):
    code, _, err = cli(capsys, *_args(name, tmp_path, "tpu"))
    assert "choose cpu, cuda or cuda:N" in assert_one_line_error(code, err, "--device tpu")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
@pytest.mark.parametrize("name", COMMANDS)
def test_cuda_without_a_gpu_is_one_error_line(monkeypatch, tmp_path, capsys, name, device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = cli(capsys, *_args(name, tmp_path, device))
    assert "no CUDA device is available" in assert_one_line_error(code, err, f"--device {device}")
    assert list(tmp_path.iterdir()) == []
