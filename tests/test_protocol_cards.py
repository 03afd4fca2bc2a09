"""Other papers' protocols as presets, each with a card of its conventions and their sources (issue 14)."""

from click.testing import CliRunner

from vidbench.cli import main
from vidbench.evaluate.protocol_cards import CARDS, TECO_CARD
from vidbench.evaluate.protocols import get_protocol
from vidbench.evaluate.scoring import fvd_prefixes


def test_fdm_presets_score_one_fvd_over_the_whole_video_with_the_context():
    for name, dataset, total in (("fdm-minerl@1", "minerl", 500), ("fdm-mazes@1", "mazes", 300)):
        p = get_protocol(name)
        assert (p.dataset, p.context, p.length, p.num_videos, p.num_samples) == (dataset, 36, total, 100, 1)
        assert p.fvd_include_context and fvd_prefixes(p) == ((total - 36,), {}) and p.metrics == ("fvd",)
        assert name in CARDS and CARDS[name]["unknown"]  # what could not be found is said, not guessed


def test_ls_protocols_verbose_prints_every_convention_and_the_cards():
    out = CliRunner().invoke(main, ["ls", "protocols", "--verbose"]).output
    block = out.split("fdm-minerl@1\n", 1)[1].split("\nkth@1\n", 1)[0]  # protocols are listed by name
    for field in ("context: 36", "horizon: 464", "num_videos: 100", "reduce: mean", "fvd_include_context: True",
                  "FVD clips: 500 frames (36 ground-truth context frames in both sets", "plai-group", "unknown:"):
        assert field in block, field
    assert "teco (no preset)" in out and "DMLab" in out and TECO_CARD["unknown"][0][:40] in out
    assert "mmnist@1\n" in out and "cwvae" in out.split("mmnist@1\n", 1)[1]
    short = CliRunner().invoke(main, ["ls", "protocols"]).output
    assert "fdm-minerl@1" in short and "plai-group" not in short
