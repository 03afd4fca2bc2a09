"""A new user's journey with their own model (README "Your model"; issue 25), as they would take it.

The model is examples/my_model.py copied into a package of its own on a temporary path (as a user's code is):
named on the command line as somepkg.mod:MyModel it trains, is evaluated and appears on the leaderboard with
the digit readout; the contexts file route (another framework's predictions) scores exactly what the model
scores in-process; the two believable-but-wrong predictions files (context frames included, --horizon
counted the other way) are refused with the fix; a model object given other weights is re-scored.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vidbench.data.loader import to_model_input, to_uint8_frames
from vidbench.data.store import PreparedSplit
from vidbench.errors import VidbenchError
from vidbench.evaluate import evaluate
from vidbench.registry import Registry

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "examples" / "my_model.py"
# mmnist-short@1 cut to the tiny store: its 4 test videos, 36 context + 12 predicted frames (--horizon 48).
SHORT = ["--protocol", "mmnist-short@1", "--horizon", "48", "--num-videos", "4"]


def user_package(folder: Path, package: str = "somepkg") -> Path:
    """folder/<package>/mod.py = the example. (Tests in one process that import it from different folders
    give it different names: sys.modules keeps the first.)"""
    (folder / package).mkdir(parents=True)
    (folder / package / "__init__.py").write_text("")
    shutil.copy(EXAMPLE, folder / package / "mod.py")
    return folder


def installed_record(folder: Path, package: str = "somepkg") -> Path:
    """What `pip install` of the user's package leaves: a dist-info declaring the entry point 'my-model'. Kept
    off this process's sys.path except where a test reads it, so the global registry never lists it."""
    dist = folder / f"{package}-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[vidbench.models]\nmy-model = {package}.mod:MyModel\n")
    return folder


def vidbench(*args, cwd, pythonpath, ok=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VIDBENCH_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([*map(str, pythonpath), str(ROOT)])}
    done = subprocess.run([sys.executable, "-m", "vidbench.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)
    assert (done.returncode == 0) == ok, done.stderr[-3000:]
    return done


@pytest.mark.timeout(600)
def test_new_users_journey(tiny_mmnist, tmp_path, readout_cache, monkeypatch):
    code, installed = user_package(tmp_path / "code"), installed_record(tmp_path / "site")
    work = tmp_path / "work"
    work.mkdir()
    run = lambda *args, ok=True: vidbench(*args, cwd=work, pythonpath=(code, installed), ok=ok)  # noqa: E731

    # 1. Named on the command line: trained, evaluated, on the leaderboard with the readout.
    assert "my-model" in run("ls", "models").stdout  # the installed package's entry point is listed
    run("train", "--model", "somepkg.mod:MyModel", "--dataset", tiny_mmnist, "--steps", "2", "--batch-size", "4",
        "--seq-len", "12", "--device", "cpu", "--num-workers", "0")
    evaluated = run("evaluate", "--model", "somepkg.mod:MyModel", "--dataset", tiny_mmnist, *SHORT,
                    "--metrics", "ssim,psnr,readout", "--device", "cpu")
    [written] = (work / "leaderboard" / "results").glob("somepkg.mod-MyModel-mmnist-mmnist-short@1*.json")
    assert f"wrote {written.relative_to(work)}" in evaluated.stderr
    results = json.loads(written.read_text())
    assert results["model"]["name"] == "somepkg.mod:MyModel" and "readout_accuracy" in results["summary"]
    board = run("leaderboard", "--no-paper").stdout
    assert "somepkg.mod-MyModel-mmnist" in board and "readout" in board.lower()

    # 2. Another framework's route: the contexts file, predictions from it, scored like the model in-process.
    monkeypatch.syspath_prepend(str(code))  # the user's code importable here too, as PYTHONPATH made it above
    from vidbench.train.checkpoint import load_checkpoint
    from vidbench.train.restore import model_from_checkpoint

    model = model_from_checkpoint(load_checkpoint(work / "models" / "somepkg.mod-MyModel-mmnist" / "checkpoint.pt"),
                                  "checkpoint.pt")
    said = run("contexts", "--dataset", tiny_mmnist, *SHORT, "--out", work / "ctx.npz").stdout
    assert "predictions to write: uint8 [4,12,64,64,1] (frames 37-48" in said
    with np.load(work / "ctx.npz") as ctx:
        context, shape = ctx["context"], tuple(ctx["predictions_shape"])
        assert context.shape == (4, 36, 64, 64, 1) and list(ctx["video"]) == [0, 1, 2, 3]
    with torch.no_grad():  # what a user's own loop does: [0,1] floats in, rounded uint8 frames out
        predicted = to_uint8_frames(model.predict(to_model_input(torch.from_numpy(context)), 12))[:, 0].numpy()
    assert (predicted.shape[0], 1, *predicted.shape[1:]) == shape
    np.save(work / "preds.npy", predicted)
    monkeypatch.chdir(work)
    common = dict(protocol="mmnist-short@1", last_frame=48, num_videos=4, metrics=["ssim", "psnr"], device="cpu")
    from_file = evaluate(tiny_mmnist, predictions=work / "preds.npy", model="mine-from-file", **common)
    in_process = evaluate(tiny_mmnist, model=model, **common)
    # The same uint8 frames (one batch of 4 in both) scored by the same code: equal, not merely close.
    assert from_file["summary"] == in_process["summary"]
    assert from_file["model"]["predictions_sha256"] and in_process["model"]["parameters"] == model.num_parameters()
    assert in_process.path == Path("leaderboard") / "results" / f"{in_process.path.name}"  # where the board reads

    # 3. The believable-but-wrong files are refused with the fix, nothing written.
    with_context = np.concatenate([context, predicted], 1)  # [4, 48, ...] = 36 context + 12 predicted
    np.save(work / "with_context.npy", with_context)
    with pytest.raises(VidbenchError, match=r"includes them; .*preds\[:, 36:\]"):
        evaluate(tiny_mmnist, predictions=work / "with_context.npy", model="ctx", out=work / "x.json", **common)
    np.save(work / "48_predicted.npy", np.concatenate([predicted] * 4, 1))  # 48 predicted frames, --horizon 48
    with pytest.raises(VidbenchError, match=r"48 frames per video, the protocol predicts 12.*--horizon 84"):
        evaluate(tiny_mmnist, predictions=work / "48_predicted.npy", model="h", out=work / "y.json", **common)
    np.save(work / "extra.npy", np.concatenate([predicted, predicted[:1]]))
    with pytest.raises(VidbenchError, match="5 videos, the protocol scores exactly 4"):
        evaluate(tiny_mmnist, predictions=work / "extra.npy", model="e", out=work / "z.json", **common)
    assert not any((work / name).exists() for name in ("x.json", "y.json", "z.json"))

    # 4. The same object with other weights is re-scored, never served from the first weights' cache.
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    with pytest.raises(VidbenchError, match="other weights.*replace"):  # its results file is kept unless replaced
        evaluate(tiny_mmnist, model=model, **common)
    zeroed = evaluate(tiny_mmnist, model=model, replace=True, **common)
    assert zeroed["summary"]["ssim"] != in_process["summary"]["ssim"]
    assert zeroed["model"]["weights_sha256"] != in_process["model"]["weights_sha256"]
    copy_last = evaluate(tiny_mmnist, model="copy-last", **common)  # zero weights: the example copies its last frame
    assert zeroed["summary"] == copy_last["summary"]


def test_entry_point_and_import_names(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(user_package(tmp_path, "entrypkg")))
    monkeypatch.syspath_prepend(str(installed_record(tmp_path / "site", "entrypkg")))
    models = Registry("model", entry_point_group="vidbench.models", import_names=True)
    assert "my-model" in models.names() and models.get("my-model").__name__ == "MyModel"
    assert models.get("entrypkg.mod:MyModel") is models.get("my-model")
    with pytest.raises(VidbenchError, match="no module named 'nopkg'.*PYTHONPATH"):
        models.get("nopkg.mod:X")
    with pytest.raises(VidbenchError, match="has no attribute 'MyModl'; did you mean 'MyModel'"):
        models.get("entrypkg.mod:MyModl")
    with pytest.raises(VidbenchError, match="unknown model 'my-modle'; did you mean 'my-model'"):
        models.get("my-modle")


def test_a_factory_must_return_a_video_model(monkeypatch):
    from vidbench.models import create_model
    from vidbench.registry import MODELS

    monkeypatch.setitem(MODELS._entries, "not-a-model", lambda: torch.nn.Linear(1, 1))
    with pytest.raises(VidbenchError, match="gave a Linear, not a vidbench.models.base.VideoModel"):
        create_model("not-a-model")


def test_messages_a_newcomer_meets(tiny_mmnist, tmp_path):
    from vidbench.data.store import PreparedSplit
    from vidbench.evaluate.metric_set import resolve_metrics
    from vidbench.evaluate.protocols import get_protocol
    from vidbench.evaluate.target import find_run

    # The protocol was not named: the message says which one was used and how to choose.
    with pytest.raises(VidbenchError, match=r"asked for 100 test videos \(mmnist@1; --protocol defaulted to "
                                            r"mmnist@1\), the split has 4; see `vidbench ls protocols`, or pass "
                                            r"--num-videos 4"):
        evaluate(tiny_mmnist, model="copy-last", metrics=["ssim"], out=tmp_path / "r.json")
    # On a prepared dataset (the demo's, say) the fix is one train command on it, not preparing another.
    with pytest.raises(VidbenchError, match="no trained cwvae run") as e:
        find_run("cwvae", tiny_mmnist, runs_dir=tmp_path)
    assert f"`vidbench train --model cwvae --dataset {tiny_mmnist}`" in str(e.value) and "prepare" not in str(e.value)
    # Moving MNIST with digit metadata: the readout joins the default metrics; named metrics stay as named.
    split = PreparedSplit(tiny_mmnist, "test")
    assert resolve_metrics(get_protocol("mmnist-short@1"), None, split)[-1] == "readout"
    assert resolve_metrics(get_protocol("mmnist-short@1"), ["ssim"], split) == ["ssim"]


def test_a_model_that_arrives_trained_is_evaluated_as_it_is(tiny_mmnist, tmp_path, monkeypatch):
    code = user_package(tmp_path / "code", "readypkg")
    (code / "readypkg" / "ready.py").write_text(
        "from readypkg.mod import MyModel\n\n\nclass Ready(MyModel):\n    needs_training = False\n\n\n"
        "class Untrained(MyModel):\n    pass\n")
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.chdir(tmp_path)
    common = dict(protocol="mmnist-short@1", last_frame=40, num_videos=2, metrics=["ssim"], device="cpu")
    results = evaluate(tiny_mmnist, model="readypkg.ready:Ready", **common)
    assert results["model"]["name"] == "readypkg.ready:Ready" and len(results["model"]["weights_sha256"]) == 64
    assert results.path.parent == Path("leaderboard") / "results" and results.path.exists()
    with pytest.raises(VidbenchError, match="must be trained first.*needs_training = False"):
        evaluate(tiny_mmnist, model="readypkg.ready:Untrained", checkpoint=None, **common)


def test_contexts_never_overwrite_a_file_they_did_not_make(tiny_mmnist, tmp_path):
    from vidbench.evaluate.contexts import write_contexts

    theirs = tmp_path / "preds.npy"
    np.save(theirs, np.zeros((4, 12, 64, 64, 1), np.uint8))
    (tmp_path / "notes.txt").write_text("mine")
    for name in ("preds.npy", "notes.txt"):
        kept = (tmp_path / name).read_bytes()
        with pytest.raises(VidbenchError, match="is not a contexts file"):
            write_contexts(tiny_mmnist, tmp_path / name, protocol="mmnist-short@1", last_frame=48, num_videos=4)
        assert (tmp_path / name).read_bytes() == kept
    ctx = tmp_path / "ctx.npz"  # its own file: written again (the same bytes: the contexts are deterministic)
    write_contexts(tiny_mmnist, ctx, protocol="mmnist-short@1", last_frame=48, num_videos=4)
    first = ctx.read_bytes()
    write_contexts(tiny_mmnist, ctx, protocol="mmnist-short@1", last_frame=48, num_videos=4)
    assert ctx.read_bytes() == first


def test_a_predictions_file_can_state_its_models_parameter_count(tiny_mmnist, tmp_path, monkeypatch):
    """vidbench cannot count the parameters of a model it does not run: `--parameters N` records the author's
    count, marked stated, on the page as "(stated)"; it is not part of what was scored, so the cache holds and a
    corrected count rewrites the results in place. Without --predictions, or below 0, it is refused."""
    from vidbench.evaluate.results import read_result
    from vidbench.report.page import _provenance

    monkeypatch.chdir(tmp_path)
    split = PreparedSplit(tiny_mmnist, "test")
    preds = np.stack([np.repeat(split.sequence(i)[35:36], 12, axis=0) for i in range(4)])  # copy-last, by hand
    np.save(tmp_path / "preds.npy", preds)
    common = dict(protocol="mmnist-short@1", last_frame=48, num_videos=4, metrics=["ssim"], device="cpu",
                  predictions=tmp_path / "preds.npy", model="theirs", out=tmp_path / "theirs.json")
    first = evaluate(tiny_mmnist, parameters=1234, **common)
    assert first["model"]["parameters"] == 1234 and first["model"]["parameters_stated"] is True
    assert "1,234 (stated)" in _provenance([read_result(tmp_path / "theirs.json")])
    corrected = evaluate(tiny_mmnist, parameters=4321, **common)  # same file: no "other weights" refusal
    assert corrected["model"]["parameters"] == 4321 and corrected["summary"] == first["summary"]
    with pytest.raises(VidbenchError, match="--parameters 5: only with --predictions"):
        evaluate(tiny_mmnist, model="copy-last", parameters=5, protocol="mmnist-short@1", last_frame=48,
                 num_videos=4, metrics=["ssim"], device="cpu", out=tmp_path / "x.json")
    with pytest.raises(VidbenchError, match="--parameters -1: must be a whole number of at least 0"):
        evaluate(tiny_mmnist, parameters=-1, **common)
