"""Issue 26's red-team cases of files read: a manifest whose counts or shapes are not its shards', shards of
the wrong dtype, checkpoints of the wrong structure, and what a results file records as its inputs (the
checkpoint's hash of the bytes loaded, the test data's hash of the frames read, never a value copied from a
file unchecked). Each ends in one `error:` line naming the file, or records what was used.

Stores and checkpoints are copies of ones vidbench wrote, edited as a user or a concurrent run would.
"""

import json
import shutil

import numpy as np
import pytest
import torch
from test_bad_inputs import assert_one_line_error, cli

from vidbench.data.store import DatasetWriter, _data_sha256
from vidbench.errors import VidbenchError
from vidbench.evaluate import evaluate
from vidbench.fileio import sha256_file
from vidbench.train import train
from vidbench.train.checkpoint import load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def run(tiny_mmnist, tmp_path_factory):
    torch.set_num_threads(1)
    return train("cwvae", tiny_mmnist, preset="tiny", steps=2, batch_size=2, seq_len=8,
                 run_dir=tmp_path_factory.mktemp("files26") / "run", progress=False, echo=lambda line: None)


def store_copy(tiny_mmnist, tmp_path, edit):
    """A copy of the tiny store with its manifest's test split (and first test shard entry) edited."""
    store = tmp_path / "store"
    shutil.copytree(tiny_mmnist, store)
    manifest = json.loads((store / "manifest.json").read_text())
    edit(manifest["splits"]["test"], manifest["splits"]["test"]["shards"][0])
    (store / "manifest.json").write_text(json.dumps(manifest))
    return store


def evaluate_cli(capsys, store, out, *extra):
    return cli(capsys, "evaluate", "--model", "copy-last", "--dataset", store, "--protocol", "mmnist-short@1",
               "--horizon", "48", "--num-videos", "2", "--metrics", "ssim", "--out", out, *extra)  # a later option wins


# --- items 8 and 9: manifest counts and shapes are checked against the shard files before anything is sized ---


def _counts_larger(split, shard):
    shard["num_sequences"] += 2
    shard["shape"][0] += 2
    split["num_sequences"] += 2


def _num_sequences_10_18(split, shard):
    shard["num_sequences"] = split["num_sequences"] = 10**18
    shard["shape"][0] = 10**18


def _shape_edited(split, shard):
    shard["shape"][1] = 2000  # sha256 still matches the file: only the manifest's shape lies


@pytest.mark.parametrize("edit", [_counts_larger, _num_sequences_10_18, _shape_edited],
                         ids=["manifest-counts-larger-than-the-shard", "manifest-num-sequences-10-18",
                              "shard-sha256-matches-but-shape-does-not"])
def test_manifest_that_does_not_describe_its_shards_is_one_error_line(tiny_mmnist, tmp_path, capsys, edit):
    store = store_copy(tiny_mmnist, tmp_path, edit)
    code, _, err = evaluate_cli(capsys, store, tmp_path / "r.json", "--num-videos", "6")
    line = assert_one_line_error(code, err, store / "test" / "shard-00000.npy")
    assert "the manifest says" in line and str(store / "manifest.json") in line
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "r.run").exists()


def test_verify_object_dtype_shard_is_a_problem_line_not_a_traceback(tiny_mmnist, tmp_path, capsys):
    store = tmp_path / "store"
    shutil.copytree(tiny_mmnist, store)
    shard = store / "test" / "shard-00000.npy"
    objects = np.empty(np.load(shard).shape[:1], dtype=object)
    objects[:] = [{"frame": i} for i in range(len(objects))]
    np.save(shard, objects, allow_pickle=True)
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["splits"]["test"]["shards"][0]["sha256"] = sha256_file(shard)  # its checksum made to match
    (store / "manifest.json").write_text(json.dumps(manifest))
    meta = shard.with_name("shard-00000.meta.json")
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "sha256": sha256_file(shard)}))
    code, out, err = cli(capsys, "verify", store)
    assert code == 1 and "Traceback" not in err and out == ""
    assert any(str(shard) in line and "holds object" in line for line in err.splitlines()), err


# --- item 9: checkpoints of the wrong structure ---


@pytest.mark.parametrize("field, value", [("config", "cwvae"), ("model", [1, 2])],
                         ids=["checkpoint-config-is-a-string", "checkpoint-model-is-a-list"])
@pytest.mark.parametrize("command", ["evaluate", "sample"])
def test_checkpoint_of_the_wrong_structure_is_one_error_line(run, tiny_mmnist, tmp_path, capsys, field, value,
                                                             command):
    state = load_checkpoint(run / "checkpoint.pt")
    bad = tmp_path / "bad.pt"
    save_checkpoint(bad, {**{k: v for k, v in state.items() if k not in ("format", "vidbench_version")},
                          field: value})
    if command == "evaluate":
        code, _, err = cli(capsys, "evaluate", "--checkpoint", bad, "--dataset", tiny_mmnist, "--protocol",
                           "mmnist-short@1", "--horizon", "48", "--num-videos", "2", "--metrics", "ssim",
                           "--out", tmp_path / "r.json")
    else:
        code, _, err = cli(capsys, "sample", bad, "--out", tmp_path / "s.gif", "--context", "4", "--horizon", "4")
    assert "not a vidbench checkpoint" in assert_one_line_error(code, err, bad, field)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pt"]


# --- item 4: the checkpoint's hash is that of the bytes loaded ---


def test_checkpoint_sha256_is_of_the_bytes_loaded_while_training_replaces_the_file(run, tiny_mmnist, tmp_path,
                                                                                   monkeypatch):
    """Training replaces checkpoint.pt (atomic rename) between evaluate's load and anything later: the
    results must name the weights that were scored."""
    ckpt = tmp_path / "run" / "checkpoint.pt"
    shutil.copytree(run, ckpt.parent)
    loaded = sha256_file(ckpt)
    state = load_checkpoint(ckpt)
    real_load = torch.load

    def load_then_train_saves(*args, **kwargs):
        out = real_load(*args, **kwargs)
        if kwargs.get("weights_only"):
            monkeypatch.setattr(torch, "load", real_load)
            save_checkpoint(ckpt, {**state, "step": state["step"] + 1})  # the next checkpoint lands
        return out

    monkeypatch.setattr(torch, "load", load_then_train_saves)
    results = evaluate(tiny_mmnist, checkpoint=ckpt, protocol="mmnist-short@1", horizon=12, num_videos=2,
                       metrics=["ssim"], out=tmp_path / "r.json")
    assert sha256_file(ckpt) != loaded  # the file did change under the evaluation
    assert results["model"]["checkpoint_sha256"] == loaded
    assert results["model"]["trained_steps"] == state["step"]


# --- item 5: the test data's hash is that of the frames read ---


def test_test_data_sha256_edited_in_the_manifest_is_refused(tiny_mmnist, tmp_path, capsys):
    def edit(split, shard):
        split["data_sha256"] = "0" * 64

    store = store_copy(tiny_mmnist, tmp_path, edit)
    code, _, err = evaluate_cli(capsys, store, tmp_path / "r.json")
    assert "is not that of its shards' frames" in assert_one_line_error(code, err, store / "manifest.json")
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "r.run").exists()


def test_test_data_sha256_recorded_is_that_of_the_frames_read(tiny_mmnist, tmp_path):
    results = evaluate(tiny_mmnist, model="copy-last", protocol="mmnist-short@1", horizon=12, num_videos=2,
                       metrics=["ssim"], out=tmp_path / "r.json")
    shards = json.loads((tiny_mmnist / "manifest.json").read_text())["splits"]["test"]["shards"]
    assert results["dataset"]["test_data_sha256"] == _data_sha256(tiny_mmnist, shards)


# --- item 9 (unclear cases): a split with no sequences names the output and leaves no .partial folder ---


def test_split_with_no_sequences_names_the_output_and_leaves_no_partial_folder(tmp_path):
    out = tmp_path / "toy"
    with pytest.raises(VidbenchError) as caught:
        with DatasetWriter(out, dataset="toy", source={}, params={}) as writer:
            writer.split("train").add(np.zeros((4, 8, 8, 1), np.uint8))
            writer.split("test")  # the inputs held no test videos
            writer.commit()
    assert str(out) in str(caught.value) and "split 'test' has no sequences" in str(caught.value)
    assert "--limit" in str(caught.value)
    assert list(tmp_path.iterdir()) == []

