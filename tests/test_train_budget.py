"""`vidbench train --minutes` (wall-clock budget) and `--init-from` (start from exported weights, lineage kept)."""

import json

import pytest
import torch

from vidbench.errors import VidbenchError
from vidbench.train import loop as training_loop
from vidbench.train import train
from vidbench.train.checkpoint import export_weights, load_checkpoint
from vidbench.train.lineage import total_steps

FAST = dict(preset="tiny", batch_size=4, seq_len=12, progress=False, echo=lambda line: None)


class FakeClock:
    """The loop's clock: every call advances 1 s, so a budget ends after a known number of calls
    whatever the machine's speed (a real clock would make the stopping step depend on load)."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        self.now += 1.0
        return self.now


def test_minutes_budget_stops_with_a_checkpoint_and_the_same_command_resumes(tiny_mmnist, tmp_path, monkeypatch):
    monkeypatch.setattr(training_loop, "_now", FakeClock())
    lines = []
    run = train("cwvae", tiny_mmnist, steps=50, run_dir=tmp_path / "run",
                minutes=0.1, **{**FAST, "echo": lines.append})  # 6 fake seconds
    state = load_checkpoint(run / "checkpoint.pt")
    assert 1 <= state["step"] < 50  # stopped early, on the budget
    assert state["stopped"] == {"reason": "budget", "step": state["step"]}
    assert any("stopped on the --minutes budget at step" in line for line in lines)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == state["step"]  # every trained step is in the checkpoint
    lineage = json.loads((run / "lineage.json").read_text())
    assert lineage["sessions"][0]["stopped"] == "budget" and lineage["sessions"][0]["to_step"] == state["step"]
    first_stop = state["step"]
    # the same command, no budget: resumes at the stopped step and finishes; a second session is recorded
    train("cwvae", tiny_mmnist, steps=first_stop + 2, run_dir=run, **FAST)
    lineage = json.loads((run / "lineage.json").read_text())
    assert [(s["from_step"], s["to_step"], s["stopped"]) for s in lineage["sessions"]] == [
        (0, first_stop, "budget"), (first_stop, first_stop + 2, "steps")]
    assert load_checkpoint(run / "checkpoint.pt")["stopped"]["reason"] == "steps"


def test_minutes_must_be_positive(tiny_mmnist, tmp_path):
    with pytest.raises(VidbenchError, match="--minutes must be more than 0"):
        train("cwvae", tiny_mmnist, steps=2, run_dir=tmp_path / "run", minutes=0, **FAST)


@pytest.mark.parametrize("minutes", [float("nan"), float("inf")])
def test_minutes_must_be_finite(tiny_mmnist, tmp_path, minutes):
    # a NaN budget passed `minutes <= 0` and made a deadline no clock ever reaches: training past any budget
    with pytest.raises(VidbenchError, match="--minutes must be more than 0 and finite"):
        train("cwvae", tiny_mmnist, steps=2, run_dir=tmp_path / "run", minutes=minutes, **FAST)
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "run").exists()


def test_init_from_starts_from_the_exported_weights_and_carries_the_lineage(tiny_mmnist, tmp_path):
    first = train("cwvae", tiny_mmnist, steps=3, run_dir=tmp_path / "first", command="vidbench train first", **FAST)
    exported = export_weights(first, tmp_path / "first.pt", {"note": "n"}, dtype="bf16")
    state = load_checkpoint(exported)
    assert all(v.dtype == torch.bfloat16 for v in state["model"].values() if v.is_floating_point())
    [run_record] = state["record"]["lineage"]
    assert run_record["run"] == "first" and run_record["steps"] == 3
    assert run_record["sessions"][0]["command"] == "vidbench train first"
    assert run_record["sessions"][0]["device"].startswith("cpu")

    # one Adam step at learning rate 1e-30 moves each weight by at most ~1e-30 (Adam's step is about lr in size;
    # a learning rate of 0 is refused as an option), so the new run's weights are the exported ones (cast to fp32)
    second = train("cwvae", tiny_mmnist, steps=1, lr=1e-30, run_dir=tmp_path / "second", init_from=exported,
                   command="vidbench train second", **FAST)
    weights = load_checkpoint(second / "checkpoint.pt")["model"]
    for key, value in state["model"].items():
        if value.is_floating_point():
            assert weights[key].dtype == torch.float32
            # atol 1e-28: 100x the largest move one Adam step at lr 1e-30 can make (zero-initialised biases move
            # from 0 to about +-1e-30; every other weight is far above fp32's resolution of such a move)
            assert torch.allclose(weights[key], value.float(), rtol=0, atol=1e-28), key
    lineage = json.loads((second / "lineage.json").read_text())
    assert lineage["init_from"]["file"] == "first.pt" and lineage["init_from"]["step"] == 3
    assert lineage["earlier_runs"] == state["record"]["lineage"]
    config = json.loads((second / "config.json").read_text())
    assert config["train"]["init_from"] == lineage["init_from"]["sha256"]

    # an export of the continued run lists both runs, oldest first
    again = load_checkpoint(export_weights(second, tmp_path / "second.pt"))
    runs = again["record"]["lineage"]
    assert [r["run"] for r in runs] == ["first", "second"] and total_steps(runs) == 4
    assert runs[1]["sessions"][0]["command"] == "vidbench train second"
    assert runs[1]["init_from"]["sha256"] == lineage["init_from"]["sha256"]


def test_init_from_refuses_weights_of_another_model_config(tiny_mmnist, tmp_path):
    first = train("cwvae", tiny_mmnist, steps=1, run_dir=tmp_path / "first", **FAST)
    exported = export_weights(first, tmp_path / "first.pt")
    with pytest.raises(VidbenchError, match="--init-from .*model config differs.*dec_std"):
        train("cwvae", tiny_mmnist, steps=1, run_dir=tmp_path / "other", init_from=exported,
              overrides={"dec_std": 0.5}, **FAST)


def test_cli_minutes_init_from_and_bf16_export(tiny_mmnist, tmp_path):
    from click.testing import CliRunner

    from vidbench.cli import main

    common = ["train", "--model", "cwvae", "--preset", "tiny", "--dataset", str(tiny_mmnist), "--batch-size", "4",
              "--seq-len", "12", "--num-workers", "0"]
    # a budget of 0.06 s ends at the first step's check (set-up alone takes longer)
    result = CliRunner().invoke(main, [*common, "--steps", "1000", "--minutes", "0.001", "--run-dir", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    state = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    assert state["stopped"]["reason"] == "budget" and state["step"] < 1000
    result = CliRunner().invoke(main, ["export", str(tmp_path / "a"), "--out", str(tmp_path / "a.pt"), "--dtype", "bf16"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, [*common, "--steps", "1", "--init-from", str(tmp_path / "a.pt"),
                                       "--run-dir", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    lineage = json.loads((tmp_path / "b" / "lineage.json").read_text())
    assert lineage["init_from"]["file"] == "a.pt" and lineage["earlier_runs"][0]["steps"] == state["step"]


def test_the_recorded_command_is_what_a_user_would_retype(monkeypatch):
    import sys
    from pathlib import Path

    import vidbench
    from vidbench.train.lineage import this_command

    package = Path(vidbench.__file__).parent
    monkeypatch.setattr(sys, "argv", [str(package / "cli" / "__main__.py"), "train", "--model", "x y"])
    assert this_command() == "vidbench train --model 'x y'"
    monkeypatch.setattr(sys, "argv", [str(package / "zoo_job.py"), "--minutes", "1"])
    assert this_command() == "python -m vidbench.zoo_job --minutes 1"
