"""The shared ground-truth I3D feature cache and what `vidbench evaluate` records about FVD (issue 14):
a second model on the same protocol computes no ground-truth features (calls counted), checksums are
verified, and the per-video features beside the results reproduce the FVD."""

import json
import re

import numpy as np
import pytest
import torch
from conftest import prefixes_by_slicing

from vidbench.data.store import PreparedSplit
from vidbench.evaluate import evaluate
from vidbench.evaluate.feature_cache import GroundTruthFeatures, i3d_work
from vidbench.evaluate.protocols import Protocol
from vidbench.metrics.fvd_stats import frechet_from_features

CONTEXT, HORIZON = 4, 12


class CountingFeatures:
    """Test double for I3DFeatures (no weights here): pooled frames as 400 features; counts every clip."""

    weights = {"file": "counting-test-double", "git_blob_sha1": None, "kind": "test"}
    clips: list = []

    def __init__(self, weights=None, device="cpu", weights_dir=None):
        pass

    def prefix_features(self, video, lengths):
        return prefixes_by_slicing(self, video, lengths)

    def features(self, video):
        CountingFeatures.clips.append(video.shape[0])
        pooled = torch.nn.functional.adaptive_avg_pool2d(video.mean(2), (10, 20))
        return torch.cat([pooled.mean(1).flatten(1), pooled[:, -1].flatten(1)], 1).double()


def protocol() -> Protocol:
    return Protocol("test-fvd@1", "mmnist", CONTEXT, HORIZON, 4, metrics=("ssim", "fvd"), fvd_prefixes=(6, 12),
                    fvd_include_context=True)


@pytest.fixture
def counting(monkeypatch):
    import vidbench.metrics.fvd as fvd

    monkeypatch.setattr(fvd, "I3DFeatures", CountingFeatures)
    CountingFeatures.clips = []
    return CountingFeatures


def shifted_predictions(store, path):
    split = PreparedSplit(store, "test")
    gt = np.stack([np.array(split.sequence(i)[CONTEXT : CONTEXT + HORIZON]) for i in range(4)])
    np.save(path, np.roll(gt, 3, axis=2))  # [N,T,H,W,C]
    return path


def test_second_model_computes_no_ground_truth_features(tiny_mmnist, tmp_path, counting):
    cache = tmp_path / "gt"
    lines = []
    first = evaluate(tiny_mmnist, model="copy-last", protocol=protocol(), batch_size=3, out=tmp_path / "a.json",
                     feature_cache=cache, echo=lines.append)
    assert sum(counting.clips) == 2 * 4 * 2  # real + generated, 4 videos, 2 prefixes
    assert any("I3D on 104 generated and 104 real frames" in line for line in lines)  # (4+6 + 4+12) x 4 each
    counting.clips = []
    lines.clear()
    second = evaluate(tiny_mmnist, predictions=shifted_predictions(tiny_mmnist, tmp_path / "p.npy"),
                      protocol=protocol(), batch_size=3, out=tmp_path / "b.json", feature_cache=cache,
                      echo=lines.append)
    assert sum(counting.clips) == 4 * 2  # generated clips only: no ground-truth feature computed
    assert any("and 0 real frames" in line for line in lines)
    # the cached real features are the ones a fresh computation gives
    fresh = evaluate(tiny_mmnist, predictions=tmp_path / "p.npy", protocol=protocol(), batch_size=3,
                     out=tmp_path / "c.json", feature_cache=tmp_path / "elsewhere")
    assert fresh["fvd"] == second["fvd"] and first["fvd"] != second["fvd"]


def test_a_cached_file_that_fails_its_checksum_is_recomputed(tiny_mmnist, tmp_path):
    split = PreparedSplit(tiny_mmnist, "test")
    cache = GroundTruthFeatures(split, {"file": "x", "git_blob_sha1": "1", "kind": "test"}, tmp_path)
    calls = []

    def compute(videos):
        calls.append(list(videos))
        return np.arange(len(videos) * 3, dtype=np.float64).reshape(len(videos), 3) + 1

    first = cache.features([0, 1], 0, 16, compute)
    assert cache.features([0, 1], 0, 16, compute).tolist() == first.tolist() and calls == [[0, 1]]
    path = cache._path(1, 0, 16)
    with np.load(path) as data:
        tampered = {"features": data["features"] + 1, "sha256": data["sha256"]}
    np.savez(path, **tampered)
    cache.features([0, 1], 0, 16, compute)
    assert calls == [[0, 1], [1]] and cache.computed == 3
    other = GroundTruthFeatures(split, {"file": "y", "git_blob_sha1": "2", "kind": "test"}, tmp_path)
    assert other.folder != cache.folder  # another weight file never reads these features


def test_results_record_fvd_interval_set_size_and_features(tiny_mmnist, tmp_path, counting):
    results = evaluate(tiny_mmnist, model="copy-last", protocol=protocol(), batch_size=3, out=tmp_path / "r.json")
    assert results["fvd_set_size"] == {"real": 4, "generated": 4}
    assert set(results["fvd_ci"]) == {"6", "12"} and all(low <= high for low, high in results["fvd_ci"].values())
    assert any(w.startswith("FVD from 4 real and 4 generated videos") for w in results["warnings"])
    assert "expected FVD at this set size (4 real" in results["fvd_ci_method"]["covers"]
    population = results["fvd_inf"]["12"]  # 4 videos << 5 x 400: no population interval, and why
    assert population["value"] is None and population["ci"] is None and "from 4 videos" in population["reason"]
    kvd = results["kvd"]["12"]  # from the same features, with its interval
    assert results["summary"]["kvd"] == kvd["value"] and kvd["ci"][0] <= kvd["value"] <= kvd["ci"][1]
    assert results["higher_is_better"]["kvd"] is False
    from vidbench.evaluate import summary_lines

    printed = "\n".join(summary_lines(results))
    assert "set size 4 real / 4 generated" in printed and "warning: FVD from 4 real" in printed
    assert f"12: {results['fvd']['12']:.1f} [" in printed
    # the name column's width follows the longest metric name scored, so match any spacing
    assert re.search(rf"kvd +12: {re.escape(format(results['kvd']['12']['value'], '.4g'))} \[", printed)
    saved = json.loads((tmp_path / "r.json").read_text())
    with np.load(tmp_path / saved["fvd_features_file"]) as data:
        assert data["prefixes"].tolist() == [6, 12] and data["real"].shape == (4, 2, 400)
        for k, p in enumerate((6, 12)):
            got = frechet_from_features(data["real"][:, k], data["fake"][:, :, k].reshape(-1, 400))
            assert got == pytest.approx(results["fvd"][str(p)], rel=1e-6)


def test_work_estimate_counts_cached_clips(tiny_mmnist, tmp_path):
    split = PreparedSplit(tiny_mmnist, "test")
    cache = GroundTruthFeatures(split, {"file": "x"}, tmp_path)
    p = protocol()
    # clips of 10 and 16 frames (context pasted): residues 2 and 0 mod 4, so no shared pass: 26 frames a clip
    assert i3d_work(p, (6, 12), 4, 2, cache) == (4 * 26, 2 * 4 * 26)
    cache.features([0, 1, 2, 3], 0, 16, lambda v: np.ones((len(v), 2)))
    assert i3d_work(p, (6, 12), 4, 2, cache)[0] == 4 * 26  # a video missing any prefix gets all computed
    cache.features([0, 1], 0, 10, lambda v: np.ones((len(v), 2)))
    assert i3d_work(p, (6, 12), 4, 2, cache)[0] == 2 * 26
