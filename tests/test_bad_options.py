"""Issue 26's red-team cases of options and outputs: every bad option is one `error:` line naming it, given
before anything is written (the corrected command then works), zero never means "the default", and no
command overwrites a file or folder it did not make (`vidbench export`, `vidbench leaderboard`).

Commands run through the CLI's own entry point in this process, as in tests/test_bad_inputs.py, whose
helpers they share. The option rules themselves live in one table (vidbench/options.py).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import test_bad_inputs
import torch
from test_bad_inputs import assert_one_line_error, cli, no_tmp_files, snapshot

from vidbench.locking import OutputLock
from vidbench.train.checkpoint import load_checkpoint

made = test_bad_inputs.made  # the same fixture: a trained tiny CW-VAE run and a results file, by vidbench itself


def train_args(made, run_dir):
    return ["train", "--model", "cwvae", "--preset", "tiny", "--dataset", made["dataset"], "--steps", "1",
            "--batch-size", "2", "--seq-len", "8", "--num-workers", "0", "--device", "cpu", "--run-dir", run_dir]


def eval_args(made, out):
    return ["evaluate", "--model", "copy-last", "--dataset", made["dataset"], "--protocol", "mmnist-short@1",
            "--horizon", "48", "--num-videos", "2", "--metrics", "ssim", "--out", out]


# --- item 7 (and 9): an invalid option leaves nothing behind, and the corrected command then works ---


TRAIN_OPTION_CASES = {
    "seed-minus-one": (["--seed", "-1"], "--seed -1"),
    "num-workers-minus-one": (["--num-workers", "-1"], "--num-workers -1"),
    "lr-nan": (["--lr", "nan"], "--lr nan"),
    "lr-minus-one": (["--lr", "-1"], "--lr -1"),
    "set-name-rssm": (["--set", "name=rssm"], "--set name=rssm"),
    "device-tpu": (["--device", "tpu"], "--device tpu"),
    "device-cuda-99": (["--device", "cuda:99"], "--device cuda:99"),  # no machine has it, with or without GPUs
    "device-cpu-1": (["--device", "cpu:1"], "--device cpu:1"),
}


@pytest.mark.parametrize("case", TRAIN_OPTION_CASES)
def test_train_invalid_option_writes_nothing_and_the_corrected_command_works(made, tmp_path, capsys, case):
    extra, named = TRAIN_OPTION_CASES[case]
    run_dir = tmp_path / "run"
    code, _, err = cli(capsys, *train_args(made, run_dir), *extra)
    assert_one_line_error(code, err, named)
    assert list(tmp_path.iterdir()) == []  # no config.json, no data-check.json, no lock file
    code, _, err = cli(capsys, *train_args(made, run_dir))  # the same command, the bad option dropped
    assert code == 0, err
    assert load_checkpoint(run_dir / "checkpoint.pt")["step"] == 1


def test_train_refused_after_its_claim_removes_the_run_folder_it_made(made, tmp_path, capsys):
    """A check that needs the model or data (here: a batch larger than the training windows) comes after the
    run folder is claimed: the folder this command made goes again, so the corrected command starts clean."""
    run_dir = tmp_path / "run"
    args = train_args(made, run_dir)
    args[args.index("--batch-size") + 1] = "1000"
    code, _, err = cli(capsys, *args)
    assert_one_line_error(code, err, "--batch-size 1000")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("extra, named", [(["--seed", "-1"], "--seed -1"), (["--device", "tpu"], "--device tpu"),
                                          (["--metrics", ","], "--metrics")],
                         ids=["evaluate-seed-minus-one", "evaluate-device-tpu", "evaluate-metrics-comma"])
def test_evaluate_invalid_option_writes_nothing(made, tmp_path, capsys, extra, named):
    args = eval_args(made, tmp_path / "r.json")
    if "--metrics" in extra:
        del args[args.index("--metrics"):args.index("--metrics") + 2]
    code, _, err = cli(capsys, *args, *extra)
    assert_one_line_error(code, err, named)
    assert list(tmp_path.iterdir()) == []  # no r.run/ cache folder, no results file


def test_evaluate_predictions_together_with_checkpoint_is_an_error(made, tmp_path, capsys):
    predictions = tmp_path / "p.npy"
    predictions.write_bytes(b"")  # never read: the options conflict first
    code, _, err = cli(capsys, *eval_args(made, tmp_path / "r.json"), "--predictions", predictions,
                       "--checkpoint", made["run"])
    assert "give one" in assert_one_line_error(code, err, "--predictions", "--checkpoint")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.npy"]


@pytest.mark.parametrize("fps", ["0", "nan"])
def test_sample_fps_zero_or_nan_is_one_error_line(made, tmp_path, capsys, fps):
    code, _, err = cli(capsys, "sample", made["run"], "--out", tmp_path / "s.gif", "--fps", fps,
                       "--context", "4", "--horizon", "4")
    assert_one_line_error(code, err, "--fps")
    assert list(tmp_path.iterdir()) == []


ANALYZE_INDEX_CASES = {  # tiny store: 4 test sequences (conftest TINY_MMNIST); tiny cwvae: 3 levels
    "levels-video-minus-one": (["levels", "--video", "-1"], "--video -1", "at least 0"),
    "levels-video-past-the-end": (["levels", "--video", "4", "--num-videos", "1"], "--video 4", "choose --video 0..3"),
    "levels-video-plus-num-videos": (["levels", "--video", "2", "--num-videos", "3"], "--video 2", "0..1"),
    "levels-num-videos-above-the-split": (["levels", "--num-videos", "5"], "--num-videos 5", "has 4 sequences"),
    "levels-level-abc": (["levels", "--level", "abc"], "--level abc", "levels 1..3"),
    "kl-num-videos-above-the-split": (["kl", "--num-videos", "5", "--length", "8"], "--num-videos 5", "has 4"),
    # Sequences shorter than asked: the error names the option that asked, and the most it can be.
    "kl-length-past-the-sequences": (["kl", "--num-videos", "1", "--length", "5000"], "--length 5000", "or less"),
    "levels-horizon-past-the-sequences": (["levels", "--num-videos", "1", "--horizon", "5000"], "--horizon 5000",
                                          "choose --horizon"),
}


@pytest.mark.parametrize("case", ANALYZE_INDEX_CASES)
def test_analyze_video_index_out_of_range_names_the_option_and_range(made, tmp_path, capsys, case):
    extra, named, rule = ANALYZE_INDEX_CASES[case]
    out = tmp_path / ("levels.png" if extra[0] == "levels" else "kl.json")
    horizon = ["--horizon", "4"] if extra[0] == "levels" else []
    code, _, err = cli(capsys, "analyze", extra[0], made["run"], "--out", out, *horizon, *extra[1:])
    assert rule in assert_one_line_error(code, err, named)
    assert list(tmp_path.iterdir()) == []


def test_compare_resamples_and_seed_are_ignored_with_a_note(made, tmp_path, capsys):
    # Frame-metric intervals are t intervals now (docs/intervals.md): an old script's --resamples still runs,
    # and is told the option does nothing, rather than failing or silently seeming to matter.
    other = tmp_path / "other.json"
    record = json.loads((made["results"] / "copy-last.json").read_text())
    record["model"]["run"] = "other"
    other.write_text(json.dumps(record))
    code, out, err = cli(capsys, "compare", made["results"] / "copy-last.json", other, "--resamples", "0", "--seed", "3")
    assert code == 0 and "| metric |" in out
    assert "--resamples and --seed are ignored" in err


# --- `vidbench sweep`: its comma lists, its counts, and a model without the keys it sweeps ---


def sweep_args(dataset, out, *extra):
    return ["sweep", "--model", "svg", "--preset", "tiny", "--dataset", dataset, "--lr", "1e-4", "--dec-std", "0.5",
            "--steps", "1", "--batch-size", "2", "--out", out, *extra]


@pytest.mark.parametrize("extra, named", [(["--lr", "1e-3,abc"], "--lr 1e-3,abc"), (["--dec-std", "0.3,x"], "--dec-std"),
                                          (["--lr", "nan"], "--lr nan"), (["--steps", "0"], "--steps 0"),
                                          (["--batch-size", "-1"], "--batch-size -1")],
                         ids=["lr-abc", "dec-std-x", "lr-nan", "steps-zero", "batch-size-minus-one"])
def test_sweep_invalid_option_is_one_error_line_and_writes_nothing(tiny_mmnist, tmp_path, capsys, extra, named):
    code, _, err = cli(capsys, *sweep_args(tiny_mmnist, tmp_path / "runs", *extra))
    assert_one_line_error(code, err, named)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("protocol, named", [("nope", "unknown protocol 'nope'"), ("kth@1", "protocol kth@1")])
def test_sweep_protocol_is_checked_before_the_first_run_trains(tiny_mmnist, tmp_path, capsys, protocol, named):
    """--protocol was resolved only by the first evaluation, after the first run had trained."""
    code, _, err = cli(capsys, *sweep_args(tiny_mmnist, tmp_path / "runs", "--results", tmp_path / "res",
                                           "--protocol", protocol))
    assert_one_line_error(code, err, named)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("model", ["copy-last", "sweeppkg.mod:MyModel"])
def test_sweep_of_a_model_without_lr_or_dec_std_names_the_model_and_the_key(tiny_mmnist, tmp_path, capsys,
                                                                            monkeypatch, model):
    """An outside model (examples/my_model.py: config channels, hidden) used to crash inside its constructor
    with a TypeError; the sweep refuses it before it trains, rather than skip the axis it cannot set."""
    package = tmp_path / "code" / "sweeppkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    shutil.copy(Path(__file__).parents[1] / "examples" / "my_model.py", package / "mod.py")
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    args = sweep_args(tiny_mmnist, tmp_path / "runs")
    args[args.index("svg")] = model
    del args[args.index("--preset"):args.index("--preset") + 2]
    code, _, err = cli(capsys, *args)
    assert "has no config option 'lr'" in assert_one_line_error(code, err, f"model {model}", "--lr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["code"]


# --- item 6: zero means zero (refused), never the default ---


@pytest.mark.parametrize("option", ["--num-test", "--num-train"])
def test_prepare_mmnist_count_of_zero_is_an_error_not_the_default(made, tmp_path, capsys, option):
    code, _, err = cli(capsys, "prepare", "mmnist", "--idx-dir", made["idx"], "--num-train", "2", "--num-test", "2",
                       option, "0", "--out", tmp_path / "mm")
    assert_one_line_error(code, err, f"{option} 0")
    assert list(tmp_path.iterdir()) == []


def test_prepare_finished_rerun_exits_0_saying_it_is_complete(made, tmp_path, capsys):
    """A kill that lands right after the store is in place: "rerun to resume" ends in success, as train's."""
    args = ["prepare", "mmnist", "--idx-dir", made["idx"], "--num-train", "2", "--num-test", "2",
            "--out", tmp_path / "mm"]
    assert cli(capsys, *args)[0] == 0
    before = snapshot(tmp_path)
    code, out, err = cli(capsys, *args)
    assert code == 0 and "already there and complete" in err and "test: 2 sequences" in out, err
    assert snapshot(tmp_path) == before
    code, _, err = cli(capsys, *args[:-3], "3", "--out", tmp_path / "mm")  # another command on it: still refused
    assert "pass --overwrite" in assert_one_line_error(code, err, tmp_path / "mm")


# --- item 1: `vidbench export` never overwrites a file it did not make ---


def test_export_onto_the_runs_training_checkpoint_is_refused(made, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(made["run"], run)
    before = snapshot(tmp_path)
    code, _, err = cli(capsys, "export", run, "--out", run / "checkpoint.pt")
    assert "is a training checkpoint" in assert_one_line_error(code, err, run / "checkpoint.pt")
    assert snapshot(tmp_path) == before  # optimizer, RNG and position kept: the run still resumes


@pytest.mark.parametrize("kind", ["other-runs-checkpoint", "any-pt-file", "text-file"])
def test_export_onto_a_file_it_did_not_make_is_refused(made, tmp_path, capsys, kind):
    target = tmp_path / "w.pt"
    if kind == "other-runs-checkpoint":
        shutil.copy(made["run"] / "checkpoint.pt", target)
    elif kind == "any-pt-file":
        torch.save({"weights": torch.ones(3)}, target)
    else:
        target.write_text("my notes\n")
    before = snapshot(tmp_path)
    for extra in ([], ["--overwrite"]):
        code, _, err = cli(capsys, "export", made["run"], "--out", target, *extra)
        assert "export never overwrites it" in assert_one_line_error(code, err, target)
        assert snapshot(tmp_path) == before


def test_export_replaces_an_earlier_export_only_with_overwrite(made, tmp_path, capsys):
    target = tmp_path / "w.pt"
    assert cli(capsys, "export", made["run"], "--out", target, "--note", "first")[0] == 0
    code, _, err = cli(capsys, "export", made["run"], "--out", target, "--note", "second")
    assert "pass --overwrite" in assert_one_line_error(code, err, target)
    assert load_checkpoint(target)["record"]["note"] == "first"
    assert cli(capsys, "export", made["run"], "--out", target, "--note", "second", "--overwrite")[0] == 0
    assert load_checkpoint(target)["record"]["note"] == "second"
    assert no_tmp_files(tmp_path) == []


def test_export_output_in_use_names_its_holder(made, tmp_path, capsys):
    target = tmp_path / "w.pt"
    with OutputLock(target, "exported weights file"):  # as a running export holds it
        code, _, err = cli(capsys, "export", made["run"], "--out", target)
    assert "is in use by another vidbench (pid " in assert_one_line_error(code, err, target)
    assert list(tmp_path.iterdir()) == []


def test_export_rerun_removes_a_killed_exports_temporary_file(made, tmp_path, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    leftover = tmp_path / f".w.pt.{int(dead.stdout)}.x1y2z3.tmp"  # atomic_output's name, its writer gone
    leftover.write_bytes(b"\0" * 1000)
    assert cli(capsys, "export", made["run"], "--out", tmp_path / "w.pt")[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pt"]


# --- item 2: `vidbench leaderboard --out DIR` never writes over a user's files ---


@pytest.mark.parametrize("name", ["index.html", "table.md"])
def test_leaderboard_into_a_folder_with_the_users_file_is_refused(made, tmp_path, capsys, name):
    site = tmp_path / "site"
    site.mkdir()
    (site / name).write_text("<h1>mine</h1>\n")
    before = snapshot(tmp_path)
    code, _, err = cli(capsys, "leaderboard", "--results", made["results"], "--out", site)
    assert "vidbench did not write" in assert_one_line_error(code, err, site, name)
    assert snapshot(tmp_path) == before


def test_leaderboard_rewrites_its_own_folder_marked_or_made_before_the_marker(made, tmp_path, capsys):
    site = tmp_path / "site"
    assert cli(capsys, "leaderboard", "--results", made["results"], "--out", site)[0] == 0
    assert (site / ".vidbench-leaderboard").is_file()
    assert cli(capsys, "leaderboard", "--results", made["results"], "--out", site)[0] == 0
    (site / ".vidbench-leaderboard").unlink()  # as a folder written by an earlier vidbench: its page is recognised
    assert cli(capsys, "leaderboard", "--results", made["results"], "--out", site)[0] == 0


# --- item 9: a model name that is matplotlib mathtext; a results file of an unknown format ---


def test_model_named_dollar_backslash_foo_dollar_renders_the_page(made, tmp_path, capsys):
    results = tmp_path / "results"
    shutil.copytree(made["results"], results)
    record = json.loads((results / "copy-last.json").read_text())
    record["model"]["run"] = "$\\foo$"
    (results / "odd.json").write_text(json.dumps(record))
    code, _, err = cli(capsys, "leaderboard", "--results", results, "--out", tmp_path / "board")
    assert code == 0 and "Traceback" not in err, err
    assert "$\\foo$" in (tmp_path / "board" / "index.html").read_text()


@pytest.mark.parametrize("command", ["leaderboard", "compare"])
def test_results_file_of_format_99_is_refused_naming_it(made, tmp_path, capsys, command):
    results = tmp_path / "results"
    shutil.copytree(made["results"], results)
    bad = results / "future.json"
    record = json.loads((results / "copy-last.json").read_text())
    record.update(format=99)
    record["model"]["run"] = "future"
    bad.write_text(json.dumps(record))
    args = (["leaderboard", "--results", results, "--out", tmp_path / "board"] if command == "leaderboard"
            else ["compare", results / "copy-last.json", bad])
    code, _, err = cli(capsys, *args)
    assert "results format 99" in assert_one_line_error(code, err, bad)
    assert not (tmp_path / "board").exists()


# --- the one table the checks come from ---


def test_every_option_in_the_rule_table_is_an_option_of_a_command():
    """vidbench/options.py is where option rules live: each entry must be a real option (a renamed or removed
    option would otherwise go unchecked without anyone noticing)."""
    import click

    from vidbench.cli import main
    from vidbench.options import OPTIONS, RULES

    def params(command):
        found = {p.name for p in command.params if isinstance(p, click.Option)}
        for sub in getattr(command, "commands", {}).values():
            found |= params(sub)
        return found

    assert set(OPTIONS) <= params(main), set(OPTIONS) - params(main)
    assert set(OPTIONS.values()) <= set(RULES)


@pytest.mark.parametrize("name, value", [("lr", float("nan")), ("lr", float("inf")), ("lr", 0.0), ("seed", True),
                                         ("seed", 2**63), ("steps", 1.5), ("test_fraction", 1.0)])
def test_option_rules_refuse_what_comparisons_let_through(name, value):
    from vidbench.errors import VidbenchError
    from vidbench.options import check_options

    with pytest.raises(VidbenchError, match=f"--{name.replace('_', '-')} "):
        check_options(**{name: value})
    check_options(**{name: None})  # not given: the default applies
