"""Checkpoint files: weights_only loading, RNG states round-trip, atomic replacement, clear errors."""

import random
from collections import Counter

import numpy as np
import pytest
import torch

from vidbench import fileio
from vidbench.errors import VidbenchError
from vidbench.train.checkpoint import (
    capture_rng_state,
    checkpoint_path,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)


def _draws():
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)], np.random.randn()


def test_rng_states_survive_a_weights_only_round_trip(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.randn()  # leaves a cached gauss value in numpy's legacy state
    save_checkpoint(tmp_path / "c.pt", {"model": {}, "rng": [capture_rng_state()]})
    expected = _draws()
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    state = torch.load(tmp_path / "c.pt", weights_only=True)  # plain types and tensors only
    restore_rng_state(state["rng"][0])
    assert _draws() == expected


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(2)}, "step": 1})

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio.os, "fsync", disk_full)
    with pytest.raises(VidbenchError, match="checkpoint.pt: cannot write .No space left on device"):
        save_checkpoint(path, {"model": {"w": torch.zeros(2)}, "step": 2})
    assert load_checkpoint(path)["step"] == 1
    assert Counter(p.name for p in tmp_path.iterdir()) == Counter(["checkpoint.pt"])  # no temp file left


@pytest.mark.parametrize("content,message", [
    (lambda good: good[: len(good) // 2], "not a readable checkpoint"),
    (lambda good: b"\x00" * 64, "not a readable checkpoint"),
])
def test_damaged_files_give_one_line_errors(tmp_path, content, message):
    save_checkpoint(tmp_path / "good.pt", {"model": {"w": torch.ones(1000)}})
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content((tmp_path / "good.pt").read_bytes()))
    with pytest.raises(VidbenchError, match=message) as error:
        load_checkpoint(bad)
    assert str(error.value).startswith(str(bad)) and "\n" not in str(error.value)


class NotAllowed:  # arbitrary classes are what weights_only=True refuses to unpickle
    pass


def test_files_that_are_not_vidbench_checkpoints_are_refused(tmp_path):
    torch.save(torch.ones(3), tmp_path / "tensor.pt")
    with pytest.raises(VidbenchError, match="not a vidbench checkpoint"):
        load_checkpoint(tmp_path / "tensor.pt")
    torch.save({"model": NotAllowed()}, tmp_path / "code.pt")
    with pytest.raises(VidbenchError, match="not a readable checkpoint: it holds pickled") as error:
        load_checkpoint(tmp_path / "code.pt")
    assert "weights_only=False" not in str(error.value)  # never advise running the file's code
    with pytest.raises(VidbenchError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_path_accepts_a_run_dir_or_a_file(tmp_path):
    assert checkpoint_path(tmp_path) == tmp_path / "checkpoint.pt"
    assert checkpoint_path(tmp_path / "x.pt") == tmp_path / "x.pt"


def test_an_exported_weights_file_evaluates_like_its_run_and_is_labelled_on_the_page(tiny_mmnist, tmp_path):
    """`vidbench export`: the file drops the optimiser, keeps the model, and carries its training record to
    the results and the page (the demo's shipped reference checkpoint is one)."""
    import json

    from click.testing import CliRunner

    from vidbench.cli import main
    from vidbench.evaluate import evaluate
    from vidbench.report.publish import write_leaderboard
    from vidbench.train import train

    run = train("cwvae", tiny_mmnist, preset="tiny", steps=2, batch_size=4, seq_len=12, run_dir=tmp_path / "run",
                progress=False, echo=lambda line: None)
    out = tmp_path / "cwvae-reference.pt"
    result = CliRunner().invoke(main, ["export", str(run), "--out", str(out), "--command", "vidbench train --seed 0",
                                       "--note", "2 steps"])
    assert result.exit_code == 0, result.output
    state = load_checkpoint(out)
    assert "optimizer" not in state and "rng" not in state and state["step"] == 2
    given = {k: v for k, v in state["record"].items() if k != "lineage"}
    assert given == {"command": "vidbench train --seed 0", "note": "2 steps"}
    # the run's sessions (tests/test_train_budget.py checks them)
    assert [(r["run"], r["steps"]) for r in state["record"]["lineage"]] == [("run", 2)]

    common = dict(protocol="mmnist-short@1", metrics=["psnr"], num_videos=2, device="cpu")
    from_run = evaluate(tiny_mmnist, checkpoint=run, out=tmp_path / "a" / "run.json", **common)
    results = tmp_path / "results"
    from_file = evaluate(tiny_mmnist, checkpoint=out, out=results / "ref.json", **common)
    assert from_file["summary"] == from_run["summary"]  # the same weights predict the same frames
    assert from_file["model"]["run"] == "cwvae-reference" and from_file["model"]["record"] == state["record"]
    write_leaderboard(results, tmp_path / "page", protocols=[from_file["protocol"]["name"]])
    page = (tmp_path / "page" / "index.html").read_text()
    assert "Shipped checkpoints</b>: cwvae-reference" in page and "vidbench train --seed 0; 2 steps" in page
    assert json.loads((results / "ref.json").read_text())["model"]["record"]["note"] == "2 steps"


def test_export_refuses_a_name_that_is_not_a_weights_file(tmp_path):
    from vidbench.train.checkpoint import export_weights

    save_checkpoint(tmp_path / "checkpoint.pt", {"model": {}, "config": {}, "step": 0})
    with pytest.raises(VidbenchError, match="ends in .pt"):
        export_weights(tmp_path, tmp_path / "weights.bin")
