"""Issue 12 item 7: baseline presets inside the CW-VAE paper's tuning ranges (lr in [1e-4, 1e-3], decoder std
in [0.1, 1]) and the sweep over them as a command whose runs sit side by side on the leaderboard."""

import pytest
import torch

from vidbench.errors import VidbenchError
from vidbench.evaluate.protocols import Protocol
from vidbench.evaluate.results import load_results
from vidbench.models import create_model
from vidbench.report.table import build_table
from vidbench.train import sweep as sweeping

PIXELS = {"mmnist": 64 * 64, "kth": 64 * 64, "mazes": 64 * 64 * 3, "minerl": 64 * 64 * 3}


@pytest.mark.parametrize("family", ["svg", "vta", "rssm", "notmpabs"])
@pytest.mark.parametrize("dataset", ["mmnist", "mazes", "minerl", "kth"])
def test_baseline_presets_sit_inside_the_papers_tuning_ranges(family, dataset):
    config = create_model(family, dataset).config
    assert sweeping.LR_RANGE[0] <= config["lr"] <= sweeping.LR_RANGE[1]
    if family == "svg":  # MSE + beta KL = a Gaussian decoder of std sqrt(beta * pixels / 2)
        std = (config["beta"] * PIXELS[dataset] / 2) ** 0.5
    else:
        std = config[sweeping.STD_KEY.get(family, "dec_std")]
    assert sweeping.STD_RANGE[0] <= std <= sweeping.STD_RANGE[1]


def test_svg_dec_std_sets_the_kl_weight_of_the_equivalent_gaussian():
    model = create_model("svg", "tiny")
    assert model.beta(4096) == model.config["beta"]  # None: the published beta
    model = create_model("svg", "tiny", dec_std=0.3)
    assert model.beta(4096) == pytest.approx(2 * 0.3**2 / 4096)


def test_sweep_grid_names_runs_and_refuses_values_outside_the_ranges():
    points = sweeping.grid("vta", [1e-4, 1e-3], [0.1])
    assert points == [("lr0.0001-std0.1", {"lr": 1e-4, "obs_std": 0.1}), ("lr0.001-std0.1", {"lr": 1e-3, "obs_std": 0.1})]
    assert sweeping.grid("svg", [3e-4], [1.0]) == [("lr0.0003-std1", {"lr": 3e-4, "dec_std": 1.0})]
    with pytest.raises(VidbenchError, match="--lr 0.002: outside the paper's tuning range"):
        sweeping.grid("svg", [2e-3], [0.5])
    with pytest.raises(VidbenchError, match="--dec-std 2: outside"):
        sweeping.grid("svg", [1e-4], [2.0])


def test_sweep_runs_are_compared_on_the_leaderboard(tiny_mmnist, tmp_path):
    torch.set_num_threads(1)
    protocol = Protocol("test-sweep@1", "mmnist", context=4, horizon=4, num_videos=2, metrics=("ssim",))
    runs = sweeping.sweep("svg", tiny_mmnist, lrs=[1e-4, 1e-3], stds=[0.5], preset="tiny", out_dir=tmp_path / "runs",
                          results=tmp_path / "results", protocol=protocol, echo=lambda line: None,
                          train_kwargs=dict(steps=1, batch_size=2, seq_len=8, progress=False))
    assert [r.name for r in runs] == ["svg-tiny-mmnist-lr0.0001-std0.5", "svg-tiny-mmnist-lr0.001-std0.5"]
    results = load_results(tmp_path / "results")
    assert sorted((r.model, r.config["lr"], r.config["dec_std"]) for r in results) == [
        (runs[0].name, 1e-4, 0.5), (runs[1].name, 1e-3, 0.5)]
    table = build_table(results, with_paper=False)
    assert sorted(row.label for row in table.rows) == [r.name for r in runs]
