"""The evaluation engine on the tiny prepared Moving MNIST (conftest `tiny_mmnist`, 4 test videos) with a
short protocol: per-timestep numbers against a direct computation, resume byte-identity, scoring files of
predictions, sample reduction, and the bad inputs that must stop the run without a results file."""

import json
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import prefixes_by_slicing

from vidbench.cli import main
from vidbench.data.store import PreparedSplit
from vidbench.errors import VidbenchError
from vidbench.evaluate import evaluate, summary_lines
from vidbench.evaluate.protocols import Protocol
from vidbench.metrics.frame import psnr, psnr_cwvae, ssim, ssim_cwvae
from vidbench.models import create_model
from vidbench.registry import METRICS

CONTEXT, HORIZON = 4, 12


def short_protocol(**overrides) -> Protocol:
    fields = dict(name="test-short@1", dataset="mmnist", context=CONTEXT, horizon=HORIZON, num_videos=4,
                  metrics=("ssim", "psnr"))
    return Protocol(**{**fields, **overrides})


def ground_truth(store, videos=4):
    split = PreparedSplit(store, "test")
    return np.stack([np.array(split.sequence(i)[: CONTEXT + HORIZON]) for i in range(videos)])


def as_float(frames_uint8) -> torch.Tensor:
    """uint8 [...,H,W,C] -> float32 [...,C,H,W] in [0,1], as models and metrics receive frames."""
    return torch.from_numpy(np.ascontiguousarray(frames_uint8)).movedim(-1, -3).float() / 255


def direct(metric, pred_uint8, target_uint8) -> np.ndarray:
    return metric(as_float(pred_uint8), as_float(target_uint8)).numpy()


def copy_last_predictions(gt) -> np.ndarray:
    return np.repeat(gt[:, CONTEXT - 1 : CONTEXT], HORIZON, axis=1)  # [V,T,H,W,C]


def counting_copy_last(fail_on_call=None, nan_video=None):
    """copy-last that counts predict() calls; it can raise KeyboardInterrupt (an interrupted run) on a
    given call, or emit NaN for one global video index (batch_size 1 makes the call index the video)."""
    model = create_model("copy-last")
    calls = []
    real_predict = model.predict

    def predict(context, horizon, num_samples=1, generator=None):
        calls.append(len(calls))
        if fail_on_call is not None and len(calls) == fail_on_call:
            raise KeyboardInterrupt
        out = real_predict(context, horizon, num_samples, generator)
        if nan_video is not None and len(calls) - 1 == nan_video:
            out[0, 0, 5, 0, 3, 3] = float("nan")
        return out

    model.predict = predict
    return model, calls


def test_per_timestep_means_equal_a_direct_computation(tiny_mmnist, tmp_path):
    results = evaluate(tiny_mmnist, model="copy-last", protocol=short_protocol(), batch_size=3,
                       out=tmp_path / "r.json")
    gt = ground_truth(tiny_mmnist)
    pred, target = copy_last_predictions(gt), gt[:, CONTEXT:]
    for name, metric in (("ssim", ssim), ("psnr", psnr)):
        values = direct(metric, pred, target)  # [V,T]
        # The engine scores batches of 3 + 1 videos, this direct call all 4: per-frame values are float32 and SSIM's
        # GEMMs change width, for which MKL may pick another kernel (a 1-frame call differs from a 48-frame one by
        # 4e-7). Exact on this CPU with default/AVX2/AVX512 kernels, but rtol 1e-12 was not what it can promise:
        # atol 1e-6 (SSIM <= 1; PSNR in dB, ~2e-7 of its MSE) is float32 rounding, far below a frame or video mix-up.
        np.testing.assert_allclose(results["per_timestep"][name]["mean"], values.mean(0), rtol=0, atol=1e-6)
        np.testing.assert_allclose(results["per_timestep"][name]["std"], values.std(0), rtol=0, atol=1e-6)
        assert results["summary"][name] == pytest.approx(values.mean(), abs=1e-6)
        np.testing.assert_allclose(results["per_video"][name], values.mean(1), rtol=0, atol=1e-6)
        low, high = results["ci"][name]
        assert low <= results["summary"][name] <= high
    assert json.loads((tmp_path / "r.json").read_text()) == results
    from vidbench.evaluate.results import read_result  # the leaderboard's reader takes the file as written

    row = read_result(tmp_path / "r.json")
    assert row.summary == results["summary"] and row.ci == {k: tuple(v) for k, v in results["ci"].items()}
    assert results["num_videos"] == 4 and results["protocol"]["name"] == "test-short@1"
    assert (tmp_path / "r.run" / "batch-00001.pred.npy").exists()


def test_interrupted_rerun_recomputes_nothing_done_and_is_byte_identical(tiny_mmnist, tmp_path):
    common = dict(protocol=short_protocol(), batch_size=1)
    reference = evaluate(tiny_mmnist, model=counting_copy_last()[0], out=tmp_path / "a.json", **common)

    model, calls = counting_copy_last(fail_on_call=3)
    out = tmp_path / "b.json"
    with pytest.raises(KeyboardInterrupt):
        evaluate(tiny_mmnist, model=model, out=out, **common)
    assert not out.exists()
    model, calls = counting_copy_last()
    resumed = evaluate(tiny_mmnist, model=model, out=out, **common)
    assert len(calls) == 2  # batches 0 and 1 came from the cache
    first_bytes = out.read_bytes()
    without_run = lambda r: {k: v for k, v in r.items() if k != "run"}  # noqa: E731
    assert without_run(resumed) == without_run(reference)

    model, calls = counting_copy_last()
    evaluate(tiny_mmnist, model=model, out=out, **common)
    assert calls == [] and out.read_bytes() == first_bytes

    # Killed after caching a batch's predictions but before its metric values: scored from the cache.
    (tmp_path / "b.run" / "batch-00003.npz").unlink()
    model, calls = counting_copy_last()
    rescored = evaluate(tiny_mmnist, model=model, out=out, **common)
    assert calls == [] and without_run(rescored) == without_run(reference)


def test_a_file_of_predictions_scores_exactly_like_the_model(tiny_mmnist, tmp_path):
    # Same batch size as the file runs below (was 2): bitwise equality of float32 metric values holds for equal
    # call shapes; other batch widths may pick other GEMM kernels (see test_per_timestep_means_...).
    from_model = evaluate(tiny_mmnist, model="copy-last", protocol=short_protocol(), batch_size=3, out=tmp_path / "m.json")
    predictions = copy_last_predictions(ground_truth(tiny_mmnist))
    np.save(tmp_path / "p.npy", predictions)
    np.savez(tmp_path / "p.npz", predictions=predictions)                 # stored: memory-mapped
    np.savez_compressed(tmp_path / "pc.npz", predictions)                 # compressed: read whole
    for name in ("p.npy", "p.npz", "pc.npz"):
        scored = evaluate(tiny_mmnist, predictions=tmp_path / name, protocol=short_protocol(), batch_size=3,
                          out=tmp_path / f"{name}.json")
        assert scored["per_timestep"] == from_model["per_timestep"]
        assert scored["summary"] == from_model["summary"]
        assert scored["model"]["predictions_file"] == name


def test_best_of_n_and_mean_of_n_samples(tiny_mmnist, tmp_path):
    gt = ground_truth(tiny_mmnist)
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, size=(4, 3, HORIZON, *gt.shape[2:])) * np.array([10, 40, 80])[None, :, None, None, None, None]
    samples = np.clip(gt[:, None, CONTEXT:] + noise, 0, 255).round().astype(np.uint8)  # [V,S,T,H,W,C]
    np.save(tmp_path / "s.npy", samples)
    target = np.broadcast_to(gt[:, None, CONTEXT:], samples.shape)
    psnr_values, ssim_values = direct(psnr, samples, target), direct(ssim, samples, target)  # [V,S,T]

    best = evaluate(tiny_mmnist, predictions=tmp_path / "s.npy", out=tmp_path / "best.json",
                    protocol=short_protocol(num_samples=3, reduce="best:psnr"))
    chosen = psnr_values.mean(2).argmax(1)
    rows = np.arange(4)
    # Default batch size 8: the engine scores all 144 frames in one call of the same shape as `direct`, so the
    # per-frame values are bitwise equal (measured); rtol 1e-12 only allows the float64 sums' order.
    np.testing.assert_allclose(best["per_timestep"]["psnr"]["mean"], psnr_values[rows, chosen].mean(0), rtol=1e-12)
    np.testing.assert_allclose(best["per_timestep"]["ssim"]["mean"], ssim_values[rows, chosen].mean(0), rtol=1e-12)

    mean = evaluate(tiny_mmnist, predictions=tmp_path / "s.npy", out=tmp_path / "mean.json",
                    protocol=short_protocol(num_samples=3, reduce="mean"))
    np.testing.assert_allclose(mean["per_timestep"]["psnr"]["mean"], psnr_values.mean(1).mean(0), rtol=1e-12)
    assert best["summary"]["psnr"] > mean["summary"]["psnr"]


def test_best_per_metric_reduction_scores_each_metric_from_its_own_best_sample(tiny_mmnist, tmp_path):
    """Issue 12 item 4: `--reduce best-per-metric` (the authors' eval) beside best:ssim, renaming the protocol."""
    gt = ground_truth(tiny_mmnist)
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, size=(4, 3, HORIZON, *gt.shape[2:])) * np.array([20, 30, 40])[None, :, None, None, None, None]
    samples = np.clip(gt[:, None, CONTEXT:] + noise, 0, 255).round().astype(np.uint8)
    np.save(tmp_path / "s.npy", samples)
    target = np.broadcast_to(gt[:, None, CONTEXT:], samples.shape)
    values = {"psnr": direct(psnr, samples, target), "ssim": direct(ssim, samples, target)}
    results = evaluate(tiny_mmnist, predictions=tmp_path / "s.npy", out=tmp_path / "bpm.json",
                       protocol=short_protocol(num_samples=3), reduce="best-per-metric")
    assert results["protocol"]["name"] == "test-short@1[reduce=best-per-metric]"
    assert results["conventions"]["fvd_samples"] == "every sample"
    rows = np.arange(4)
    for m, v in values.items():
        np.testing.assert_allclose(results["per_video"][m], v[rows, v.mean(2).argmax(1)].mean(1), rtol=1e-12)
    with pytest.raises(VidbenchError, match="--reduce 'median'"):
        evaluate(tiny_mmnist, predictions=tmp_path / "s.npy", out=tmp_path / "x.json",
                 protocol=short_protocol(num_samples=3), reduce="median")


BAD_PREDICTIONS = {
    "float frames": (lambda p: p.astype(np.float32) / 255, "must be uint8 in 0-255, got float32"),
    "NaN frame": (lambda p: np.where(np.arange(4)[:, None, None, None, None] == 2, np.nan, p / 255.0), "NaN/inf in video 2"),
    "no time axis": (lambda p: p[:, 0], "must be uint8 \\[N,T,H,W,C\\]"),
    "too few frames": (lambda p: p[:, : HORIZON - 1], f"{HORIZON - 1} frames per video, the protocol predicts {HORIZON}"),
    "too many frames": (lambda p: np.concatenate([p, p[:, :1]], 1), f"the protocol predicts {HORIZON}.*keep the first"),
    "too few videos": (lambda p: p[:3], "3 videos, the protocol scores exactly 4"),
    "extra videos": (lambda p: np.concatenate([p, p[:1]]), "5 videos, the protocol scores exactly 4"),
    "extra samples": (lambda p: np.stack([p, p], 1), r"2 sample\(s\) per video, the protocol takes 1"),
    "wrong frame size": (lambda p: p[:, :, :32, :32], "frames are \\(32, 32, 1\\)"),
    "int16 frames": (lambda p: p.astype(np.int16), "must be uint8 in 0-255, got int16"),
}


@pytest.mark.parametrize("case", sorted(BAD_PREDICTIONS))
def test_bad_predictions_stop_with_a_clear_error_and_no_results(tiny_mmnist, tmp_path, case):
    make, message = BAD_PREDICTIONS[case]
    np.save(tmp_path / "bad.npy", make(copy_last_predictions(ground_truth(tiny_mmnist))))
    with pytest.raises(VidbenchError, match=message):
        evaluate(tiny_mmnist, predictions=tmp_path / "bad.npy", protocol=short_protocol(), out=tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def test_protocol_of_another_dataset_is_refused(tiny_mmnist, tmp_path):
    with pytest.raises(VidbenchError, match="is for dataset 'minerl'"):
        evaluate(tiny_mmnist, model="copy-last", protocol="minerl@1", out=tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def test_folders_and_results_of_another_protocol_are_refused(tiny_mmnist, tmp_path):
    first = tmp_path / "first.json"
    evaluate(tiny_mmnist, model="copy-last", protocol=short_protocol(), out=first, run_dir=tmp_path / "run")
    other = short_protocol(name="test-other@1", horizon=HORIZON - 2)
    with pytest.raises(VidbenchError, match="written by protocol test-short@1, this command uses test-other@1"):
        evaluate(tiny_mmnist, model="copy-last", protocol=other, out=tmp_path / "second.json", run_dir=tmp_path / "run")
    assert not (tmp_path / "second.json").exists()
    before = first.read_bytes()
    with pytest.raises(VidbenchError, match="holds results of protocol test-short@1"):
        evaluate(tiny_mmnist, model="copy-last", protocol=other, out=first, run_dir=tmp_path / "run2")
    assert first.read_bytes() == before


def test_model_emitting_nan_is_reported_with_the_video_index(tiny_mmnist, tmp_path):
    model, _ = counting_copy_last(nan_video=2)
    with pytest.raises(VidbenchError, match=r"NaN/inf in test video #2 \(sample 0, predicted frame 5\)"):
        evaluate(tiny_mmnist, model=model, protocol=short_protocol(), batch_size=1, out=tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def test_untrained_network_is_refused(tiny_mmnist, tmp_path):
    with pytest.raises(VidbenchError, match="must be trained first"):
        evaluate(tiny_mmnist, model="cwvae", preset="tiny", protocol=short_protocol(), out=tmp_path / "r.json")


def test_cli_evaluate_writes_results_and_prints_a_summary(tiny_mmnist, tmp_path):
    out = tmp_path / "cli.json"
    args = ["evaluate", "--model", "copy-last", "--dataset", str(tiny_mmnist), "--protocol", "mmnist-short@1",
            "--horizon", "48", "--num-videos", "2", "--metrics", "ssim,psnr", "--out", str(out)]  # up to frame 48
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert saved["protocol"]["name"] == "mmnist-short@1[horizon=12,num_videos=2]"
    assert saved["protocol"]["horizon"] == 12 and len(saved["per_timestep"]["ssim"]["mean"]) == 12  # 48 - 36 context
    assert saved["frames"] == {"context": 36, "predicted": 12, "last_frame": 48}
    ssim_line = next(line for line in result.output.splitlines() if line.strip().startswith("ssim"))
    assert f"{saved['summary']['ssim']:.4f}" in ssim_line and "95% CI" in ssim_line


class PooledFeatures:
    """Test double for I3DFeatures (the real network needs weights that cannot be downloaded here): 400
    deterministic features per clip, the time mean and the last frame pooled to 10x20. It checks the
    engine's clip assembly, prefixes and streamed statistics, not I3D (tests/test_fvd.py does that)."""

    weights = {"file": "pooled-test-double", "git_blob_sha1": None, "kind": "test"}

    def __init__(self, weights=None, device="cpu", weights_dir=None):
        pass

    def prefix_features(self, video, lengths):
        return prefixes_by_slicing(self, video, lengths)

    def features(self, video):
        pooled = torch.nn.functional.adaptive_avg_pool2d(video.mean(2), (10, 20))  # [B,T,10,20]
        return torch.cat([pooled.mean(1).flatten(1), pooled[:, -1].flatten(1)], 1).double()


@pytest.mark.parametrize("include_context", [False, True])
def test_fvd_over_prefixes_equals_a_direct_computation(tiny_mmnist, tmp_path, monkeypatch, include_context):
    import vidbench.metrics.fvd as fvd

    monkeypatch.setattr(fvd, "I3DFeatures", PooledFeatures)
    protocol = short_protocol(metrics=("ssim", "fvd"), fvd_prefixes=(6, 12), fvd_include_context=include_context)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = evaluate(tiny_mmnist, model="copy-last", protocol=protocol, batch_size=3, out=tmp_path / "r.json")
    dropped = [str(w.message) for w in caught if "FVD prefix" in str(w.message)]
    assert dropped == ([] if include_context else ["test-short@1: FVD prefix 6 dropped: a 6-frame clip is under "
                                                   "the 9 frames I3D takes"])
    assert results["fvd_prefixes_dropped"] == ({} if include_context else
                                               {"6": "a 6-frame clip is under the 9 frames I3D takes"})
    gt = ground_truth(tiny_mmnist)
    pred = copy_last_predictions(gt)
    lead = CONTEXT if include_context else 0
    # A 6-frame clip is too short for I3D; with the 4 context frames pasted in front it is long enough.
    expected_prefixes = [6, 12] if include_context else [12]
    assert results["fvd_prefixes"] == expected_prefixes
    for length in expected_prefixes:
        real = gt[:, CONTEXT - lead : CONTEXT + length]
        fake = np.concatenate([gt[:, :lead], pred[:, :length]], axis=1)
        stats = [fvd.FeatureStats().update(PooledFeatures().features(as_float(clip))) for clip in (real, fake)]
        # 4 clips in 400 dimensions: rank-deficient, and the square roots of rounding-level eigenvalues make FVD
        # sensitive to the stats' last bits (another BLAS kernel alone moves it 1.1e-8 relative, measured). Exact
        # here, but 1e-9 was below that conditioning; 1e-6 is still far below a wrong clip or prefix (> 1e-2).
        assert results["fvd"][str(length)] == pytest.approx(fvd.fvd_from_stats(*stats), rel=1e-6)
    assert results["summary"]["fvd"] == results["fvd"]["12"] > 0
    assert results["metric_weights"]["fvd"]["file"] == "pooled-test-double"


def test_fvd_prefixes_dropped_are_warned_and_recorded_never_silent(tiny_mmnist, tmp_path, monkeypatch):
    """Issue 12 item 8: a prefix under the network's minimum (9 frames) or past the horizon is dropped with a
    warning, listed in the results file and in the printed summary; 9 frames itself is kept."""
    import vidbench.metrics.fvd as fvd

    monkeypatch.setattr(fvd, "I3DFeatures", PooledFeatures)
    protocol = short_protocol(metrics=("fvd",), fvd_prefixes=(8, 9, HORIZON + 1))
    with pytest.warns(UserWarning) as warned:
        results = evaluate(tiny_mmnist, model="copy-last", protocol=protocol, out=tmp_path / "r.json")
    assert sorted(str(w.message).split(": ", 1)[1] for w in warned if "FVD prefix" in str(w.message)) == [
        f"FVD prefix {HORIZON + 1} dropped: longer than the horizon ({HORIZON} frames)",
        "FVD prefix 8 dropped: a 8-frame clip is under the 9 frames I3D takes"]  # one warning each
    assert results["fvd_prefixes"] == [9]
    assert results["fvd_prefixes_dropped"] == {"8": "a 8-frame clip is under the 9 frames I3D takes",
                                               str(HORIZON + 1): f"longer than the horizon ({HORIZON} frames)"}
    assert json.loads((tmp_path / "r.json").read_text())["fvd_prefixes_dropped"] == results["fvd_prefixes_dropped"]
    assert "  warning: FVD prefix 8 dropped: a 8-frame clip is under the 9 frames I3D takes" in summary_lines(results)


def test_network_metric_is_streamed_like_a_frame_metric(tiny_mmnist, tmp_path, monkeypatch):
    from vidbench.metrics.lpips_metric import LPIPS

    network = LPIPS(_random_backbone_for_tests=True)  # plumbing only: never a reported number
    monkeypatch.setitem(METRICS._entries, "lpips", lambda weights_dir=None, device="cpu": network)
    results = evaluate(tiny_mmnist, model="copy-last", protocol=short_protocol(metrics=("lpips",)),
                       out=tmp_path / "r.json")
    gt = ground_truth(tiny_mmnist)
    values = network(as_float(copy_last_predictions(gt)), as_float(gt[:, CONTEXT:])).numpy()
    # Same 48 frames through the same 256-frame chunks: exact (measured); 1e-6 is float32 rounding should the
    # engine's chunking ever differ (test_lpips measured ~1e-7 between batch shapes).
    np.testing.assert_allclose(results["per_timestep"]["lpips"]["mean"], values.mean(0), rtol=1e-6)
    assert results["higher_is_better"]["lpips"] is False


def test_metric_without_weights_offline_stops_or_is_recorded_unavailable(tiny_mmnist, tmp_path, monkeypatch):
    monkeypatch.setenv("VIDBENCH_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("VIDBENCH_WEIGHTS", raising=False)
    protocol = short_protocol(metrics=("ssim", "lpips"))
    out = tmp_path / "r.json"
    with pytest.raises(VidbenchError, match="alexnet-owt-7be5be79.pth not found.*--skip-unavailable"):
        evaluate(tiny_mmnist, model="copy-last", protocol=protocol, out=out)
    assert not out.exists()
    results = evaluate(tiny_mmnist, model="copy-last", protocol=protocol, out=out, skip_unavailable=True)
    assert "alexnet-owt-7be5be79.pth" in results["unavailable"]["lpips"]
    assert "lpips" not in results["summary"] and "lpips" not in results["per_timestep"]
    assert "ssim" in results["summary"]


def test_trained_checkpoint_is_loaded_and_identified(tiny_mmnist, tmp_path, linear_model):
    from vidbench.fileio import sha256_file
    from vidbench.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = create_model(linear_model, "tiny")
    run = tmp_path / "test-linear-run"
    save_checkpoint(run / "checkpoint.pt", {"config": {"model": model.config}, "model": model.state_dict()})
    results = evaluate(tiny_mmnist, checkpoint=run, protocol=short_protocol(), out=tmp_path / "ckpt.json")
    assert results["model"]["name"] == "test-linear" and results["model"]["run"] == "test-linear-run"
    assert results["model"]["checkpoint_sha256"] == sha256_file(run / "checkpoint.pt")
    direct = evaluate(tiny_mmnist, model=model, protocol=short_protocol(), out=tmp_path / "direct.json")
    assert results["per_timestep"] == direct["per_timestep"]
    with pytest.raises(VidbenchError, match="holds a 'test-linear' model, --model says 'copy-last'"):
        evaluate(tiny_mmnist, model="copy-last", checkpoint=run, protocol=short_protocol(), out=tmp_path / "x.json")


def test_sampling_is_seeded_per_batch(tiny_mmnist, tmp_path):
    torch.manual_seed(0)
    model = create_model("random-frame", "tiny", buffer_size=50)
    model.observe(torch.rand(80, 1, 64, 64))  # what training would have shown it
    runs = {}
    for label, seed in (("a", 0), ("b", 0), ("c", 1)):
        runs[label] = evaluate(tiny_mmnist, model=model, seed=seed, protocol=short_protocol(num_samples=2),
                               batch_size=2, out=tmp_path / f"{label}.json")
        runs[label]["frames"] = np.load(tmp_path / f"{label}.run" / "batch-00001.pred.npy")
    np.testing.assert_array_equal(runs["a"]["frames"], runs["b"]["frames"])
    assert runs["a"]["per_timestep"] == runs["b"]["per_timestep"]
    assert not np.array_equal(runs["a"]["frames"], runs["c"]["frames"])


def test_cwvae_conventions_score_raw_decoder_floats_when_the_model_runs_in_process(tiny_mmnist, tmp_path):
    """Issue 12 item 5: ssim_cwvae / psnr_cwvae score a CW-VAE's unclipped tanh output (what the authors' eval
    scored); the standard conventions, and any predictions file, score the uint8 frames; the results say which."""
    from vidbench.evaluate.sources import ModelSource, batch_seed

    torch.manual_seed(0)
    model = create_model("cwvae", "tiny")  # untrained: its tanh output is often below 0, so clamping matters
    metrics = ("ssim", "ssim_cwvae", "psnr", "psnr_cwvae")
    protocol = short_protocol(metrics=metrics)
    results = evaluate(tiny_mmnist, model=model, protocol=protocol, batch_size=4, out=tmp_path / "m.json")
    assert results["conventions"]["raw_frames"] == ["psnr_cwvae", "ssim_cwvae"]

    gt = ground_truth(tiny_mmnist)
    source = ModelSource(model, {"name": "cwvae"}, torch.device("cpu"))
    uint8 = source.predictions(list(range(4)), gt[:, :CONTEXT], HORIZON, 1, batch_seed(0, 0))
    raw = torch.from_numpy(source.last_raw[:, 0]).movedim(-1, -3)  # [V,T,C,H,W] floats, unclipped
    assert raw.min() < 0  # the case where raw and uint8 differ
    np.testing.assert_array_equal(uint8[:, 0], (raw.clamp(0, 1) * 255).round().to(torch.uint8).movedim(-3, -1))
    target = as_float(gt[:, CONTEXT:])
    for name, metric in (("ssim_cwvae", ssim_cwvae), ("psnr_cwvae", psnr_cwvae)):
        np.testing.assert_allclose(results["per_video"][name], metric(raw, target).numpy().mean(1), rtol=1e-5)
    np.testing.assert_allclose(results["per_video"]["ssim"], direct(ssim, uint8[:, 0], gt[:, CONTEXT:]).mean(1),
                               rtol=1e-6)

    # The same frames as a predictions file: uint8 for every metric, so the *_cwvae numbers differ.
    np.save(tmp_path / "p.npy", uint8)
    from_file = evaluate(tiny_mmnist, predictions=tmp_path / "p.npy", protocol=protocol, out=tmp_path / "p.json")
    assert from_file["conventions"]["raw_frames"] == []
    assert from_file["summary"]["ssim"] == pytest.approx(results["summary"]["ssim"], rel=1e-9)
    for name in ("ssim_cwvae", "psnr_cwvae"):  # measured here: ssim_cwvae 0.7283 (uint8) vs 0.7286 (raw)
        assert abs(from_file["summary"][name] - results["summary"][name]) > 1e-5, name

    # A run folder whose *_cwvae values were scored on uint8 (before issue 12) is rescored on raw floats.
    batch = tmp_path / "m.run" / "batch-00000.npz"
    with np.load(batch) as data:
        record = {k: data[k] for k in data.files if not k.startswith("frames_")}
    record["metric_ssim_cwvae"] = np.zeros_like(record["metric_ssim_cwvae"])
    np.savez(batch, **record)
    (tmp_path / "m.run" / "batch-00000.raw.npy").unlink()
    again = evaluate(tiny_mmnist, model=model, protocol=protocol, batch_size=4, out=tmp_path / "m.json")
    assert again["summary"] == results["summary"]
