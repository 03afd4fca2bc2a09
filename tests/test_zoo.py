"""The zoo: the GPU job rehearsed end to end on CPU, manifests, weights checked against them (a tampered or
cut file is refused), weights in parts, and `vidbench evaluate --checkpoint zoo:<name>`."""

import json
import re

import pytest
from click.testing import CliRunner

from vidbench import zoo_job
from vidbench.cli import main
from vidbench.errors import VidbenchError
from vidbench.evaluate.per_frame import read_per_frame
from vidbench.evaluate.results import read_result
from vidbench.fileio import sha256_file
from vidbench.report import origin
from vidbench.train import zoo
from vidbench.train.checkpoint import load_checkpoint

# The rehearsal at its smallest: 16 training videos, 2 test videos to frame 100 (64 predicted frames; the job's
# default is mmnist@1's 964), tiny preset, a budget of 0.1 min: ~20 s on 2 CPU cores.
REHEARSAL = ["--device", "cpu", "--preset", "tiny", "--minutes", "0.1", "--num-train", "16", "--num-test", "2",
             "--last-frame", "100", "--batch-size", "4", "--seq-len", "12", "--eval-batch", "2", "--num-workers", "0"]
PROTOCOL = "mmnist@1[horizon=64,num_videos=2]"
RETURNABLE = re.compile(r"^[A-Za-z0-9._-]+$")  # what a file back from the GPU machine may be named
MIB16 = 16 * 2**20


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory, readout_cache):
    root = tmp_path_factory.mktemp("zoo_job")
    assert zoo_job.main([*REHEARSAL, "--out", str(root / "out"), "--work", str(root / "work")]) == 0
    [manifest_file] = [p for p in (root / "out").glob("*.json") if not p.name.endswith(".results.json")]
    return root / "out", json.loads(manifest_file.read_text())


def test_the_cpu_rehearsal_writes_a_returnable_zoo_entry(rehearsal):
    out, manifest = rehearsal
    files = sorted(p for p in out.iterdir())
    assert len(files) <= 8 and all(p.is_file() and p.stat().st_size <= MIB16 for p in files)  # the return limits
    assert all(RETURNABLE.match(p.name) for p in files)
    name = manifest["name"]
    assert {p.name for p in files} == {f"{name}.json", f"{name}.pt", f"{name}.results.json", f"{name}.log.jsonl",
                                       f"{name}.results.frames.npz"}
    # provenance: what trained it, on what, how long, with which commands; a budget stop recorded
    assert manifest["model"] == "cwvae" and manifest["preset"] == "tiny" and manifest["dtype"] == "bf16"
    assert manifest["steps"] >= 1 and manifest["total_steps"] == manifest["steps"]
    assert manifest["batch_size"] == 4 and manifest["seq_len"] == 12 and manifest["parameters"] > 0
    assert manifest["device"].startswith("cpu") and manifest["wall_s"] > 0
    assert manifest["job"]["stopped"] == "budget" and set(manifest["job"]["stages_s"]) == {
        "data", "train", "export", "evaluate"}
    assert manifest["data"]["params"]["seed"] == 0 and manifest["data"]["params"]["counts"]["train"] == 16
    assert len(manifest["data"]["splits"]["train"]["data_sha256"]) == 64
    assert manifest["commands"][0].startswith("python -m vidbench.zoo_job --device cpu")
    assert any(c.startswith("vidbench train --model cwvae --preset tiny") for c in manifest["commands"])
    [run] = manifest["lineage"]
    assert run["steps"] == manifest["steps"] and run["sessions"][0]["stopped"] == "budget"
    # the weights are the manifest's, in bf16, and the results file is the evaluation of exactly them
    state = load_checkpoint(out / manifest["file"])
    assert zoo.sha256_file(out / manifest["file"]) == manifest["sha256"] and state["dtype"] == "bf16"
    result = read_result(out / f"{name}.results.json")
    assert result.protocol == PROTOCOL and result.model == name
    assert result.num_videos == 2 and result.horizon == 64 and result.context == 36
    raw = result.raw
    assert raw["model"]["checkpoint_sha256"] == manifest["sha256"] and raw["model"]["record"]["zoo"] == name
    for metric in ("ssim", "ssim_cwvae", "psnr", "psnr_cwvae", "readout_accuracy"):
        assert metric in manifest["results"][PROTOCOL]["summary"]
        assert len(raw["per_video"][metric]) == 2  # per-video values travel
    frames = read_per_frame(out / f"{name}.results.json")  # and per-frame ones, for compare --bands
    assert frames["psnr"].shape == (2, 64)


def _evaluate_zoo(name, data, out):
    return CliRunner().invoke(main, ["evaluate", "--checkpoint", f"zoo:{name}", "--dataset", str(data),
                                     "--protocol", "mmnist@1", "--num-videos", "2", "--horizon", "100", "--metrics",
                                     "psnr,ssim", "--batch-size", "2", "--device", "cpu", "--out", str(out)])


def test_a_zoo_model_evaluates_by_name_and_reproduces_its_results(rehearsal, monkeypatch, tmp_path):
    """And hashes the weights file once: the manifest's sha256 is checked on the digest of the bytes loaded
    (the one the results record), not on a separate read of the file before."""
    out, manifest = rehearsal
    monkeypatch.setattr(zoo, "MANIFEST_DIR", out)
    monkeypatch.setenv("VIDBENCH_ZOO", str(tmp_path / "none"))  # weights found beside the manifest
    hashed = []
    monkeypatch.setattr(zoo, "sha256_file", lambda path: hashed.append(path) or sha256_file(path))
    data = next(p for p in (out.parent / "work").iterdir() if p.name == "mmnist")
    result = _evaluate_zoo(manifest["name"], data, tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert hashed == []
    again = json.loads((tmp_path / "r.json").read_text())
    assert again["model"]["checkpoint_sha256"] == manifest["sha256"]
    first = manifest["results"][PROTOCOL]["summary"]
    assert again["summary"]["psnr"] == first["psnr"] and again["summary"]["ssim"] == first["ssim"]  # same weights


def test_a_tampered_weights_file_is_refused(rehearsal, monkeypatch, tmp_path):
    out, manifest = rehearsal
    copy = tmp_path / "zoo"
    copy.mkdir()
    (copy / f"{manifest['name']}.json").write_text(json.dumps(manifest))
    data = bytearray((out / manifest["file"]).read_bytes())
    data[len(data) // 2] ^= 1  # one bit of one weight
    (copy / manifest["file"]).write_bytes(bytes(data))
    monkeypatch.setattr(zoo, "MANIFEST_DIR", copy)
    monkeypatch.setenv("VIDBENCH_ZOO", str(copy))
    with pytest.raises(VidbenchError, match="sha256 .* is not the .* refusing to load it"):
        zoo.check_sha256(*zoo.find_zoo(manifest["name"]))
    data = next(p for p in (out.parent / "work").iterdir() if p.name == "mmnist")
    result = _evaluate_zoo(manifest["name"], data, tmp_path / "r.json")
    assert result.exit_code != 0 and "refusing to load it" in str(result.exception)
    assert not (tmp_path / "r.json").exists() and not (tmp_path / "r.run").exists()


def test_weights_in_parts_are_checked_and_joined(rehearsal, tmp_path, monkeypatch):
    out, manifest = rehearsal
    parts_dir = tmp_path / "parts"
    parts = zoo.split_parts(out / manifest["file"], parts_dir, part_bytes=100_000)
    assert len(parts) >= 2 and not (parts_dir / manifest["file"]).exists()
    manifest_file = parts_dir / "m.json"
    manifest_file.write_text(json.dumps({**manifest, "parts": parts}))
    monkeypatch.setenv("VIDBENCH_ZOO", str(tmp_path / "none"))
    monkeypatch.setenv("VIDBENCH_CACHE", str(tmp_path / "cache"))
    joined, expected, _ = zoo.find_zoo(manifest_file)
    assert expected == manifest["sha256"]
    assert joined == tmp_path / "cache" / "zoo" / manifest["file"] and zoo.sha256_file(joined) == manifest["sha256"]
    joined.unlink()
    last = parts_dir / parts[-1]["file"]
    last.write_bytes(last.read_bytes()[:-1])  # a part cut short
    with pytest.raises(VidbenchError, match="refusing to load it"):
        zoo.find_zoo(manifest_file)


def test_an_unknown_zoo_name_lists_the_zoo(tmp_path, monkeypatch):
    monkeypatch.setattr(zoo, "MANIFEST_DIR", tmp_path)
    with pytest.raises(VidbenchError, match="zoo model 'nosuch': no manifest .*zoo models: none yet"):
        zoo.find_zoo("nosuch")


def test_zoo_rows_are_marked_apart_and_the_reference_row_says_its_test_scores_were_seen(rehearsal, tmp_path):
    from vidbench.report.publish import write_leaderboard

    out, manifest = rehearsal
    raw = json.loads((out / f"{manifest['name']}.results.json").read_text())
    folder = tmp_path / "results"
    folder.mkdir()
    demo = {**raw, "model": {k: v for k, v in raw["model"].items() if k != "record"} | {"run": "cwvae-demo"}}
    reference = {**raw, "model": {**demo["model"], "run": "cwvae-reference", "record": {"note": "shipped"},
                                  "checkpoint_sha256": next(iter(origin.SEEN_TEST_SCORES))}}
    for name, data in ((manifest["name"], raw), ("cwvae-demo", demo), ("cwvae-reference", reference)):
        (folder / f"{name}.json").write_text(json.dumps(data))
    write_leaderboard(folder, tmp_path / "board", with_paper=False)
    table = (tmp_path / "board" / "table.md").read_text()
    assert re.search(rf"\| {re.escape(manifest['name'])} \| zoo \|", table)
    assert "| cwvae-demo | measured |" in table and "| cwvae-reference | shipped |" in table  # it has a record
    page = (tmp_path / "board" / "index.html").read_text()
    assert "<b>Zoo models</b>" in page and f"{manifest['name']}: zoo model, trained {manifest['steps']:,} steps" in page
    assert "cwvae-reference: trained longer (12,000 -&gt; 20,000 steps) after its scores on the demo&#x27;s test" in page


def test_training_is_cut_to_fit_the_call_when_the_data_took_longer():
    args = zoo_job.parse_args(["--minutes", "8", "--out", "x", "--call-seconds", "600", "--evaluate-seconds", "250"])
    assert zoo_job.training_minutes(args, spent_s=100) == pytest.approx(250 / 60, abs=0.01)  # 600 - 100 - 250 s
    assert zoo_job.training_minutes(zoo_job.parse_args(["--minutes", "2", "--out", "x", "--call-seconds", "600"]),
                                    spent_s=100) == 2  # fits: as asked
    skip = zoo_job.parse_args(["--minutes", "9", "--out", "x", "--call-seconds", "600", "--skip-evaluate"])
    assert zoo_job.training_minutes(skip, spent_s=100) == pytest.approx(470 / 60, abs=0.01)  # 30 s kept for export
    with pytest.raises(VidbenchError, match="leave 0 s to train"):
        zoo_job.training_minutes(args, spent_s=400)
    assert zoo_job.training_minutes(zoo_job.parse_args(["--minutes", "3", "--out", "x"]), spent_s=1e6) == 3


def test_job_refuses_an_out_folder_of_someone_elses_files(tmp_path, capsys):
    out = tmp_path / "site"
    out.mkdir()
    (out / "mine.txt").write_text("a user's file")
    assert zoo_job.main([*REHEARSAL, "--out", str(out), "--work", str(tmp_path / "work")]) == 1
    assert "refusing to write into it" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"] and not (tmp_path / "work").exists()


def test_a_zoo_result_reproduces_from_its_results_file_alone(rehearsal, tmp_path, capsys):
    """vidbench/zoo_reproduce.py: the test videos made again (sha256 checked), the same weights, seed and batch
    size, so on the same device every per-frame value is the same (0 difference: the same arithmetic); a GPU
    job's results differ only by the devices' float order (evaluation samples from a CPU generator)."""
    from vidbench import zoo_reproduce

    out, manifest = rehearsal
    results = out / f"{manifest['name']}.results.json"
    args = [str(results), "--checkpoint", str(out / manifest["file"]), "--out", str(tmp_path / "repro"),
            "--work", str(tmp_path / "work")]
    assert zoo_reproduce.main(args) == 0
    report = json.loads((tmp_path / "repro" / "reproduce.json").read_text())["metrics"]
    assert {"psnr", "ssim", "readout_accuracy"} <= set(report)
    for metric, r in report.items():
        assert r["difference"] == 0 and r["max_abs_per_frame"] == 0, metric
        assert list(r["bands"]) == ["1-64"]  # the rehearsal's 64 predicted frames: one band
    assert "psnr:" in capsys.readouterr().out
    tampered = json.loads(results.read_text())
    tampered["dataset"]["test_data_sha256"] = "0" * 64  # other test videos than these can make
    (tmp_path / "other.results.json").write_text(json.dumps(tampered))
    (tmp_path / "other.results.frames.npz").write_bytes((out / f"{manifest['name']}.results.frames.npz").read_bytes())
    args[0] = str(tmp_path / "other.results.json")
    assert zoo_reproduce.main(args) == 1
    assert "nothing to reproduce against" in capsys.readouterr().err
    theirs = tmp_path / "theirs"  # a folder of someone else's files: never written into
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    args[0], args[args.index("--out") + 1] = str(results), str(theirs)
    assert zoo_reproduce.main(args) == 1
    assert "refusing to write into it" in capsys.readouterr().err
    assert [p.name for p in theirs.iterdir()] == ["notes.txt"]
