"""Table 1 from hand-made results files: ranks (ties, missing cells, lower-is-better), the 5% bold rule,
the paper's own mean ranks, protocol separation, stable output, and the command."""

import json

import pytest
from click.testing import CliRunner

from vidbench.cli import main
from vidbench.errors import VidbenchError
from vidbench.evaluate.results import load_results, read_result
from vidbench.report import paper
from vidbench.report.publish import write_leaderboard
from vidbench.report.render import format_rank, to_csv, to_latex, to_markdown
from vidbench.report.table import MEASURED, PAPER, build_table


def result(model, protocol="toy@1", summary=None, unavailable=None, family=None, config=None, horizon=6,
           fvd=None, per_timestep=None, num_videos=4):
    """A results file as `vidbench evaluate` writes it (the fields the leaderboard reads)."""
    summary = dict(summary or {})
    return {
        "format": 1,
        "protocol": {"name": protocol, "dataset": protocol.split("@")[0], "context": 4, "horizon": horizon,
                     "num_videos": num_videos, "num_samples": 1, "reduce": "mean", "note": "test protocol"},
        "model": {"name": family or model.split("-")[0], "run": model, "config": config or {},
                  "checkpoint_sha256": "ab" * 32},
        "summary": summary,
        "ci": {k: [v - 0.01, v + 0.01] for k, v in summary.items()},
        "per_timestep": per_timestep or {},
        "fvd": fvd or {},
        "unavailable": unavailable or {},
        "num_videos": num_videos,
        "num_samples": 1,
        "run": {"device": "cpu", "wall_time_s": 1.5},
    }


def write(folder, name, data):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(data))


def cell(table, row_label, protocol, metric_label):
    row = next(r for r in table.rows if r.label == row_label and r.source == MEASURED)
    col = next(c for c in table.columns if c.protocol == protocol and c.metric.label == metric_label)
    return row, col


@pytest.fixture
def toy(tmp_path):
    """Three models on one protocol: a tie in SSIM, a missing PSNR, LPIPS lower-is-better, FVD unavailable."""
    folder = tmp_path / "results"
    no_fvd = {"fvd": "I3D weights not found: put i3d_torchscript.pt in ~/.cache/vidbench"}
    write(folder, "a", result("alpha", summary={"ssim": 0.80, "lpips": 0.20}, unavailable=no_fvd))
    write(folder, "b", result("beta", summary={"ssim": 0.80, "psnr": 20.0, "lpips": 0.30}, unavailable=no_fvd))
    write(folder, "c", result("gamma", summary={"ssim": 0.70, "psnr": 21.0, "lpips": 0.10}, unavailable=no_fvd))
    return folder


def test_paper_rows_reproduce_the_papers_mean_ranks():
    table = build_table([], with_paper=True)
    ranks = {r.label: r.mean_rank for r in table.rows}
    assert ranks == {"CW-VAE": 2.25, "VTA": 3.625, "RSSM": 2.75, "SVG": 3.3125, "NoTmpAbs": 2.625}
    # As printed: Python rounds the exact halves 3.625 and 2.625 to even, as the paper's table shows them.
    assert {r.label: float(format_rank(r)) for r in table.rows} == paper.MEAN_RANK
    assert all(r.source == PAPER and r.num_ranked == 16 for r in table.rows)


def test_paper_bold_follows_the_five_percent_rule():
    table = build_table([], with_paper=True)
    bold = {(r.label, c.protocol, c.metric.label) for r in table.rows for c in r.bold}
    # Moving MNIST FVD: best 578 (NoTmpAbs); 589 and 593 are within 5% (606.9), 1274 and 1392 are not.
    assert {(m, "mmnist@1", "FVD") for m in ("NoTmpAbs", "RSSM", "CW-VAE")} <= bold
    assert ("SVG", "mmnist@1", "FVD") not in bold and ("VTA", "mmnist@1", "FVD") not in bold
    # MineRL SSIM (higher is better): best 0.66, 0.65 within 5%, 0.56 not.
    assert ("CW-VAE", "minerl@1", "SSIM") in bold and ("SVG", "minerl@1", "SSIM") not in bold


def test_ties_missing_cells_and_lower_is_better(toy):
    table = build_table(load_results(toy), with_paper=False)
    ranks = {(r.label, c.metric.label): rank for r in table.rows for c, rank in r.ranks.items()}
    assert ranks[("alpha", "SSIM")] == ranks[("beta", "SSIM")] == 1 and ranks[("gamma", "SSIM")] == 3
    assert (ranks[("gamma", "LPIPS")], ranks[("alpha", "LPIPS")], ranks[("beta", "LPIPS")]) == (1, 2, 3)
    # alpha has no PSNR: not ranked there, and it does not push the others down.
    assert ("alpha", "PSNR") not in ranks and ranks[("gamma", "PSNR")] == 1 and ranks[("beta", "PSNR")] == 2
    mean = {r.label: (r.mean_rank, r.num_ranked) for r in table.rows}
    # Balanced halves (blur-friendly SSIM/PSNR, blur-robust LPIPS): alpha (1 + 2) / 2, beta ((1 + 2) / 2 + 3) / 2,
    # gamma ((3 + 1) / 2 + 1) / 2.
    assert mean == {"alpha": (1.5, 2), "beta": (2.25, 3), "gamma": (1.5, 3)}
    assert [r.label for r in table.rows] == ["alpha", "gamma", "beta"]  # sorted by mean rank
    # Bold: SSIM tie both bold (0.70 is more than 5% below 0.80); PSNR 20.0 is within 5% of 21.0;
    # LPIPS best 0.10, and 0.20 is not within 5% of it.
    assert cell(table, "alpha", "toy@1", "SSIM")[1] in cell(table, "alpha", "toy@1", "SSIM")[0].bold
    row, col = cell(table, "gamma", "toy@1", "SSIM")
    assert col not in row.bold
    row, col = cell(table, "beta", "toy@1", "PSNR")
    assert col in row.bold
    row, col = cell(table, "alpha", "toy@1", "LPIPS")
    assert col not in row.bold


def test_missing_cells_are_shown_with_their_reason(toy):
    table = build_table(load_results(toy), with_paper=False)
    md = to_markdown(table)
    alpha = next(line for line in md.splitlines() if line.startswith("| alpha"))
    assert alpha.count("n/a") == 2  # PSNR not in the file, FVD unavailable
    assert "I3D weights not found" in md and "toy@1 PSNR: psnr not computed (alpha)" in md
    assert "a missing cell is not ranked" in md


def test_paper_rows_are_not_mixed_into_measured_ranks_unless_asked(tmp_path):
    folder = tmp_path / "results"
    # A measured model better than every paper row on Moving MNIST SSIM (protocol mmnist@1).
    write(folder, "m", result("mine", "mmnist@1", summary={"ssim": 0.99, "psnr": 30.0, "lpips": 0.01, "fvd": 10.0}))
    write(folder, "n", result("other", "mmnist@1", summary={"ssim": 0.10, "psnr": 5.0, "lpips": 0.9, "fvd": 9000.0}))
    results = load_results(folder)
    separate = build_table(results, with_paper=True)
    assert {r.label: r.mean_rank for r in separate.rows if r.source == PAPER}["CW-VAE"] == 2.25
    assert {r.label: r.mean_rank for r in separate.rows if r.source == MEASURED} == {"mine": 1.0, "other": 2.0}
    together = build_table(results, with_paper=True, rank_paper=True)
    ranks = {r.label: r.mean_rank for r in together.rows}
    assert ranks["mine"] == 1.0 and ranks["other"] == 7.0
    assert ranks["CW-VAE"] != 2.25  # its four Moving MNIST ranks moved down by one
    assert "(paper, cwvae convention)" in to_markdown(together) and "ranked together" in to_markdown(together)
    assert not build_table(results, with_paper=False).rows[-1].source == PAPER


def test_paper_rows_are_labelled_with_the_convention_they_used():
    """Issue 12 item 8: the paper's SSIM/PSNR are the authors' eval's (cwvae convention); under the standard
    columns the rows say so, and the notes say how to compare like with like."""
    for convention in ("standard", "cwvae"):
        table = build_table([], with_paper=True, convention=convention)
        labels = [r.display_label for r in table.rows if r.source == PAPER]
        assert labels and all(label.endswith(" (paper, cwvae convention)") for label in labels)
        markdown = to_markdown(table)
        assert ("compare them with --convention cwvae" in markdown) == (convention == "standard")


def test_only_results_of_the_same_protocol_are_compared(tmp_path):
    folder = tmp_path / "results"
    write(folder, "a1", result("alpha", "toy@1", summary={"ssim": 0.5}))
    write(folder, "b1", result("beta", "toy@1", summary={"ssim": 0.6}))
    write(folder, "a2", result("alpha", "toy@2", summary={"ssim": 0.9}))
    table = build_table(load_results(folder), with_paper=False)
    assert table.protocols() == ["toy@1", "toy@2"]
    alpha = next(r for r in table.rows if r.label == "alpha")
    assert {c.protocol: rank for c, rank in alpha.ranks.items()} == {"toy@1": 2, "toy@2": 1}
    only = build_table(load_results(folder, ["toy@1"]), with_paper=False)
    assert only.protocols() == ["toy@1"]
    with pytest.raises(VidbenchError, match="toy@3.*found: toy@1, toy@2"):
        load_results(folder, ["toy@3"])


def test_a_second_result_for_the_same_model_and_protocol_replaces_the_first_and_says_so(tmp_path):
    folder = tmp_path / "results"
    write(folder, "1-old", result("alpha", summary={"ssim": 0.1}))
    write(folder, "2-new", result("alpha", summary={"ssim": 0.2}))
    table = build_table(load_results(folder), with_paper=False)
    assert list(table.rows[0].values.values()) == [0.2]
    assert len(table.warnings) == 1 and "2-new.json: replaces" in table.warnings[0]


def test_output_is_stable_for_the_same_inputs(toy, tmp_path):
    _, first = write_leaderboard(toy, tmp_path / "one")
    # Same content, files written in the opposite order under other names' mtimes: same bytes out.
    again = tmp_path / "again"
    for path in sorted(toy.glob("*.json"), reverse=True):
        write(again, path.stem, json.loads(path.read_text()))
    _, second = write_leaderboard(again, tmp_path / "two")
    assert [p.name for p in first] == [p.name for p in second]
    for a, b in zip(first, second):
        if a.suffix == ".html":  # the page names its results folder's files only by file name
            assert a.read_text().replace(str(toy), "") == b.read_text().replace(str(again), "")
        else:
            assert a.read_bytes() == b.read_bytes(), a.name


def test_latex_and_csv(toy):
    table = build_table(load_results(toy), with_paper=True)
    tex = to_latex(table)
    assert r"\textbf{0.800}" in tex and r"\multicolumn{4}{c|}{mmnist@1}" in tex and "CW-VAE (paper, cwvae convention)" in tex
    assert tex.count(r"\\") == 2 + len(table.rows)
    rows = to_csv(table).splitlines()
    assert rows[0].startswith("model,source,family,minerl@1/ssim")
    beta = next(line for line in rows if line.startswith("beta,"))
    assert ",20.0," in beta and beta.endswith(",2.25,3")  # balanced mean rank (test above)


def test_bad_results_files_are_named(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(VidbenchError, match="broken.json: not a readable results file"):
        read_result(tmp_path / "broken.json")
    (tmp_path / "odd.json").write_text(json.dumps({"summary": {"ssim": 1.0}}))
    with pytest.raises(VidbenchError, match="odd.json: results file lacks protocol.name"):
        read_result(tmp_path / "odd.json")
    with pytest.raises(VidbenchError, match="results folder does not exist"):
        load_results(tmp_path / "nowhere")


def test_leaderboard_command(toy, tmp_path):
    out = tmp_path / "board"
    done = CliRunner().invoke(main, ["leaderboard", "--results", str(toy), "--out", str(out), "--format", "csv",
                                     "--no-paper"])
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("model,source,family,toy@1/ssim")
    assert {p.name for p in out.iterdir()} >= {"table.md", "table.tex", "table.csv", "index.html", "figures"}
    assert "CW-VAE" not in (out / "table.md").read_text()
    done = CliRunner().invoke(main, ["leaderboard", "--results", str(toy), "--out", str(out), "--protocol", "nope@1"])
    assert done.exit_code != 0 and "nope@1" in str(done.exception)


def test_paper_rows_sit_only_under_the_papers_own_protocols(tmp_path):
    folder = tmp_path / "results"
    # `vidbench evaluate --horizon 64` names its modified protocol like this: not the paper's evaluation.
    write(folder, "m", result("mine", "mmnist@1[horizon=64]", summary={"ssim": 0.5}))
    table = build_table(load_results(folder), with_paper=True)
    cwvae = next(r for r in table.rows if r.label == "CW-VAE")
    assert {c.protocol for c in cwvae.values} == {"minerl@1", "kth@1", "mazes@1", "mmnist@1"}
    assert next(r for r in table.rows if r.label == "mine").ranks  # ranked alone in its own column
