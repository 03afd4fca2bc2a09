"""The leaderboard page and figures: everything embedded (offline), and rendered by headless Chromium to a
screenshot that is not blank, with the table and the model names in the DOM."""

import os
import shutil
import subprocess

import numpy as np
import pytest
from test_leaderboard import result, write  # the hand-made results files of the table tests

from vidbench.report.publish import write_leaderboard

HORIZON = 24


def curves(seed, level):
    rng = np.random.default_rng(seed)
    t = np.arange(HORIZON)
    def decay(a, b):
        return {"mean": list(a + (b - a) * (1 - np.exp(-t / 8)) + rng.normal(0, 0.005, HORIZON)),
                "std": list(np.full(HORIZON, 0.05))}
    return {"ssim": decay(level, 0.4), "psnr": decay(20 * level, 11.0), "lpips": decay(1 - level, 0.5),
            "readout_accuracy": decay(level, 0.1), "readout_position_error": decay(2.0, 15.0)}


def rich_results(folder):
    """CW-VAEs with k = 2 and 4, an RSSM and the copy-last baseline on one short protocol, FVD prefixes."""
    models = [("cwvae-k2", "cwvae", {"k": 2, "levels": 3}, 0.85), ("cwvae-k4", "cwvae", {"k": 4, "levels": 3}, 0.9),
              ("rssm-tiny", "rssm", {"k": 6, "levels": 1}, 0.8), ("copy-last", "copy-last", {}, 0.6)]
    for i, (name, family, config, level) in enumerate(models):
        per_t = curves(i, level)
        summary = {m: float(np.mean(v["mean"])) for m, v in per_t.items()}
        fvd = {"16": 300.0 + 50 * i, "24": 400.0 + 60 * i}
        summary["fvd"] = fvd["24"]
        write(folder, name, result(name, "mmnist-short@1", summary=summary, family=family, config=config,
                                   horizon=HORIZON, fvd=fvd, per_timestep=per_t))


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    root = tmp_path_factory.mktemp("board")
    rich_results(root / "results")
    analysis = root / "out" / "analysis"
    analysis.mkdir(parents=True)
    (analysis / "kl-cwvae-k2.json").write_text(
        '{"model": "cwvae-k2", "k": 2, "levels": 3, "kl_per_level": [120.5, 20.1, 1.5]}')
    samples = root / "out" / "samples"
    samples.mkdir()
    from PIL import Image

    frames = [Image.fromarray(np.full((32, 64), 40 * i, np.uint8)) for i in range(3)]
    frames[0].save(samples / "cwvae-k2.gif", save_all=True, append_images=frames[1:], duration=100)
    table, written = write_leaderboard(root / "results", root / "out")
    return root / "out", table, written


def test_page_holds_the_table_figures_and_samples_offline(board):
    out, table, written = board
    html = (out / "index.html").read_text()
    assert '<table class="leaderboard"' in html
    for name in ("cwvae-k2", "cwvae-k4", "rssm-tiny", "copy-last", "CW-VAE (paper, cwvae convention)"):
        assert name in html
    figures = {p.name for p in (out / "figures").iterdir()}
    assert figures == {"ranks.png", "curves-mmnist-short_1.png", "fvd-mmnist-short_1.png",
                       "abstraction-mmnist-short_1.png", "kl-levels.png"}
    # Every figure and the GIF sample are inlined: the page needs no other file and no network.
    assert html.count('src="data:image/png;base64,') == len(figures)
    assert 'src="data:image/gif;base64,' in html
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "Digit acc." in html  # readout columns appear when results carry them
    assert "never measured here" in html  # the paper's rows are labelled as the paper's


def _chromium():
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("Chromium is not installed and this test can only install it as root with apt-get "
                    "(Debian package `chromium`)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, env=env)
        done = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, text=True, env=env)
    found = shutil.which("chromium")
    if not found:
        pytest.skip(f"could not install Chromium with apt-get: {done.stderr.strip()[-300:]}")
    return found


def _headless(browser, tmp_path, *args):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1600"]
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=120)


def test_page_renders_in_headless_chromium(board, tmp_path):
    from PIL import Image

    out, table, _ = board
    browser = _chromium()
    url = (out / "index.html").resolve().as_uri()
    shot = tmp_path / "page.png"
    done = _headless(browser, tmp_path, f"--screenshot={shot}", url)
    assert shot.exists(), done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (1600, 1280)
    assert pixels.std() > 10  # not a blank page
    dom = _headless(browser, tmp_path, "--dump-dom", url).stdout
    assert 'id="leaderboard"' in dom and "cwvae-k4" in dom and "NoTmpAbs (paper, cwvae convention)" in dom
    assert dom.count("<img") >= 6
