"""Paired comparisons on constructed results files with known answers: identical models, a shifted copy,
seeds, FVD from stored features, and the files that must be refused (issue 14)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from vidbench.cli import main
from vidbench.errors import VidbenchError
from vidbench.evaluate.paired import check_comparable, compare, paired_interval, seed_groups
from vidbench.evaluate.results import read_result

V = 60


def write_result(path, per_video: dict, *, protocol="mmnist@1", sha="abc", run=None, horizon=964, weights=None,
                 raw_frames=()):
    data = {
        "protocol": {"name": protocol, "dataset": protocol.split("@")[0], "context": 36, "horizon": horizon,
                     "num_videos": len(next(iter(per_video.values())))},
        "model": {"name": "cwvae", "run": run or path.stem, "config": {}},
        "dataset": {"name": "mmnist", "split": "test", "test_data_sha256": sha},
        "summary": {m: float(np.mean(v)) for m, v in per_video.items()},
        "per_video": {m: [float(x) for x in v] for m, v in per_video.items()},
        "higher_is_better": {"ssim": True, "psnr": True, "lpips": False},
        "conventions": {"std": "population", "raw_frames": sorted(raw_frames)},
        "metric_weights": weights or {},
    }
    path.write_text(json.dumps(data))
    return path


def noisy(seed, shift=0.0):
    rng = np.random.default_rng(seed)
    base = 0.6 + 0.1 * rng.standard_normal(V)  # videos differ a lot from one another ...
    return {"ssim": base + shift, "lpips": 0.3 - base / 4 - shift / 4}


def test_identical_models_show_no_difference(tmp_path):
    a = read_result(write_result(tmp_path / "a.json", noisy(0)))
    b = read_result(write_result(tmp_path / "b.json", noisy(0)))
    rows = compare([a, b])
    assert {c.metric for c in rows} == {"ssim", "lpips"}
    for c in rows:
        assert c.difference == 0 and c.low == 0 and c.high == 0
        assert not c.significant and c.verdict == "no significant difference"


def test_shifted_copy_is_significant_with_the_right_sign(tmp_path):
    rng = np.random.default_rng(5)
    base = noisy(1)
    better = {m: v + s * (0.01 + 0.003 * rng.standard_normal(V)) for (m, v), s in zip(base.items(), (1, -1))}
    a = read_result(write_result(tmp_path / "base.json", base))
    b = read_result(write_result(tmp_path / "better.json", better))
    rows = {c.metric: c for c in compare([a, b])}
    assert rows["ssim"].low > 0 and rows["ssim"].difference == pytest.approx(0.01, abs=0.002)
    assert rows["lpips"].high < 0  # lower LPIPS: better, so the difference is negative
    assert rows["ssim"].verdict == rows["lpips"].verdict == "better better"
    # ... while the two separate CIs overlap: the shift is a tenth of the spread between videos.
    from vidbench.evaluate.intervals import mean_interval

    assert mean_interval(better["ssim"])[0] < mean_interval(base["ssim"])[1]


def test_unpaired_noise_of_the_same_size_is_not_significant(tmp_path):
    base = noisy(2)
    rng = np.random.default_rng(3)
    other = {m: v + 0.003 * rng.standard_normal(V) for m, v in base.items()}  # no shift, only noise
    rows = compare([read_result(write_result(tmp_path / "a.json", base)),
                    read_result(write_result(tmp_path / "b.json", other))])
    assert all(c.low < 0 < c.high for c in rows)


@pytest.mark.parametrize("change, what", [
    (dict(sha="other"), "test videos"),
    (dict(protocol="minerl@1"), "protocols"),
    (dict(horizon=64), "protocol fields"),
])
def test_files_that_are_not_comparable_are_refused_in_one_line(tmp_path, change, what):
    a = read_result(write_result(tmp_path / "a.json", noisy(0)))
    b = read_result(write_result(tmp_path / "b.json", noisy(0), **change))
    with pytest.raises(VidbenchError, match=what) as err:
        check_comparable([a, b])
    assert "\n" not in str(err.value) and "a.json" in str(err.value) and "b.json" in str(err.value)


def test_a_metric_scored_differently_is_left_out_and_the_rest_compare(tmp_path):
    """Comparability per metric (issue 24.3): a CW-VAE run scores ssim_cwvae on raw decoder floats, a
    predictions file on uint8, so that metric is left out with the reason; ssim (scored alike) compares. Another
    LPIPS weight file leaves LPIPS out the same way."""
    scores = {**noisy(0), "ssim_cwvae": noisy(0)["ssim"]}
    a = write_result(tmp_path / "cwvae.json", scores, raw_frames=["ssim_cwvae"])
    b = write_result(tmp_path / "file.json", scores, weights={"lpips": {"file": "x.pth", "git_blob_sha1": "1"}})
    results = [read_result(a), read_result(b)]
    assert {c.metric for c in compare(results)} == {"ssim"}
    result = CliRunner().invoke(main, ["compare", str(a), str(b)])
    assert result.exit_code == 0, result.output
    assert "| ssim ↑ | file |" in result.output
    assert "ssim_cwvae left out: scored differently (cwvae.json: frames raw decoder floats, file.json: frames uint8)" \
        in result.output
    assert "lpips left out: scored differently" in result.output and "weights" in result.output
    only_raw = {"ssim_cwvae": scores["ssim_cwvae"]}
    c = read_result(write_result(tmp_path / "c.json", only_raw, raw_frames=["ssim_cwvae"]))
    d = read_result(write_result(tmp_path / "d.json", only_raw))
    with pytest.raises(VidbenchError, match="no metric is scored the same way.*ssim_cwvae left out"):
        compare([c, d])


def test_other_number_of_videos_is_refused(tmp_path):
    a = read_result(write_result(tmp_path / "a.json", noisy(0)))
    b = read_result(write_result(tmp_path / "b.json", {m: v[:50] for m, v in noisy(0).items()}))
    with pytest.raises(VidbenchError, match="not comparable"):
        compare([a, b])


def test_seeds_pool_into_one_model_and_widen_the_interval(tmp_path):
    base = noisy(4)
    paths = [write_result(tmp_path / "base.json", base)]
    for s, offset in enumerate((-0.02, 0.0, 0.02)):
        paths.append(write_result(tmp_path / f"m-seed{s}.json", {m: v + offset + 0.005 for m, v in base.items()}))
    results = [read_result(p) for p in paths]
    assert list(seed_groups(results)) == ["base", "m"]
    rows = {c.metric: c for c in compare(results)}
    one_seed = paired_interval(np.asarray(base["ssim"]) + 0.005, base["ssim"])
    assert rows["ssim"].seeds == (3, 1)
    assert rows["ssim"].high - rows["ssim"].low > 5 * (one_seed[2] - one_seed[1])
    assert rows["ssim"].difference == pytest.approx(0.005)


def good_and_bad_features(folder, d: int, shift: float) -> list:
    """Two results files with stored features: "bad" is "good" with its mean shifted (a larger distance)."""
    rng = np.random.default_rng(0)
    real = rng.standard_normal((V, 1, d))
    good = real + 0.3 * rng.standard_normal((V, 1, d))
    paths = []
    for name, fake in (("good", good), ("bad", good + shift)):
        path = write_result(folder / f"{name}.json", noisy(0))
        np.savez(path.with_suffix(".fvd.npz"), prefixes=np.array([16]), real=real, fake=fake[:, None],
                 video_index=np.arange(V))
        paths.append(path)
    return paths


def test_paired_fvd_from_stored_features(tmp_path):
    paths = good_and_bad_features(tmp_path, d=8, shift=0.8)
    rows = {c.metric: c for c in compare([read_result(p) for p in paths])}
    fvd = rows["fvd@16"]
    assert fvd.difference > 0 and fvd.low > 0 and fvd.verdict == "good better"
    assert "population FVD" in fvd.note  # 60 videos >= 5 x 8 dimensions: FVD-infinity's paired interval
    kvd = rows["kvd@16"]
    assert kvd.difference > 0 and kvd.low > 0 and kvd.verdict == "good better" and "population KVD" in kvd.note


def test_no_fvd_verdict_below_five_videos_per_dimension_but_kvd_gives_one(tmp_path):
    """60 videos x 40 dimensions (ratio 1.5): FVD's bias differs between models of different covariance, so
    compare gives no FVD verdict and says why; KVD, unbiased, still decides."""
    paths = good_and_bad_features(tmp_path, d=40, shift=1.0)
    rows = {c.metric: c for c in compare([read_result(p) for p in paths])}
    fvd, kvd = rows["fvd@16"], rows["kvd@16"]
    assert np.isnan(fvd.low) and fvd.verdict == "no verdict (see note)" and "from 60 videos" in fvd.note
    assert kvd.verdict == "good better"
    result = CliRunner().invoke(main, ["compare", *map(str, paths)])
    assert result.exit_code == 0 and "none (see note)" in result.output and "no verdict on the FVD" in result.output


def test_compare_command_prints_a_table_and_refuses_in_one_line(tmp_path):
    a = write_result(tmp_path / "a.json", noisy(0))
    b = write_result(tmp_path / "b.json", noisy(0, shift=0.05))
    result = CliRunner().invoke(main, ["compare", str(a), str(b)])
    assert result.exit_code == 0, result.output
    assert "| ssim ↑ | b |" in result.output and "b better" in result.output
    c = write_result(tmp_path / "c.json", noisy(0), sha="other")
    result = CliRunner().invoke(main, ["compare", str(a), str(c)], standalone_mode=False)
    assert isinstance(result.exception, VidbenchError) and "test videos" in str(result.exception)


def test_files_without_per_video_numbers_say_so(tmp_path):
    paths = []
    for name in ("a", "b"):
        path = write_result(tmp_path / f"{name}.json", noisy(0))
        data = json.loads(path.read_text())
        del data["per_video"]
        path.write_text(json.dumps(data))
        paths.append(path)
    with pytest.raises(VidbenchError, match="no per-video numbers"):
        compare([read_result(p) for p in paths])
