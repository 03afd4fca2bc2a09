"""FVD pieces: TF1 resize vs TensorFlow golden values, the I3D layout and loaders, streaming stats, Fréchet distance."""

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from vidbench.errors import VidbenchError
from vidbench.fileio import git_blob_sha1
from vidbench.metrics import fvd, i3d, weights

GOLDEN = Path(__file__).parent / "fixtures" / "tf1_resize_bilinear_golden.npz"


# ------------------------------------------------------------------------------------------------ resize
def test_resize_matches_tensorflow_golden_values():
    data = np.load(GOLDEN)
    assert str(data["tf_version"]).startswith("2.")  # made with TF (see tests/fixtures/make_tf1_resize_golden.py)
    cases = sorted(k.removesuffix("_input") for k in data.files if k.endswith("_input"))
    assert len(cases) >= 4
    for name in cases:
        x, want = data[f"{name}_input"], data[f"{name}_output"]
        got = fvd.tf1_resize_bilinear(torch.from_numpy(x).permute(0, 3, 1, 2), size=want.shape[1:3])
        # Both float32, pixels in [0, 1] (ulp <= 6e-8): TF interpolates top + (bottom - top) * dy, ours runs two
        # GEMMs with float32-rounded weights, so a few ulps apart (measured <= 1.2e-7 on default/AVX2/AVX512
        # kernels). 5e-7 is ~8 ulps; the wrong pixel-centre convention is off by 0.3 (next test).
        np.testing.assert_allclose(got.permute(0, 2, 3, 1).numpy(), want, atol=5e-7, rtol=0, err_msg=name)


def test_resize_differs_from_half_pixel_resize():
    """The golden values would catch torch's align_corners=False (half-pixel) interpolation, which is different."""
    data = np.load(GOLDEN)
    x = torch.from_numpy(data["up_small_input"]).permute(0, 3, 1, 2)
    half_pixel = torch.nn.functional.interpolate(x, size=(11, 13), mode="bilinear", align_corners=False)
    # Effect size: the half-pixel resize is off by 0.298 on these fixed pixels, far from float32 rounding (1e-7).
    assert np.abs(half_pixel.permute(0, 2, 3, 1).numpy() - data["up_small_output"]).max() > 1e-2


# -------------------------------------------------------------------------------------------------- I3D
def test_i3d_has_the_public_ports_parameter_names():
    state = i3d.InceptionI3d().state_dict()
    # Names and shapes as in piergiaj/pytorch-i3d pytorch_i3d.py (and VideoGPT's copy).
    expected = {
        "Conv3d_1a_7x7.conv3d.weight": (64, 3, 7, 7, 7),
        "Conv3d_1a_7x7.bn.running_var": (64,),
        "Conv3d_2c_3x3.conv3d.weight": (192, 64, 3, 3, 3),
        "Mixed_3b.b1b.conv3d.weight": (128, 96, 3, 3, 3),
        "Mixed_4f.b3b.bn.weight": (128,),
        "Mixed_5c.b0.conv3d.weight": (384, 832, 1, 1, 1),
        "logits.conv3d.weight": (400, 1024, 1, 1, 1),
        "logits.conv3d.bias": (400,),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    assert not any("b3a" in k for k in state)  # the max-pool branch has no parameters
    assert sum(k.endswith("conv3d.weight") for k in state) == 3 + 9 * 6 + 1


def _randomise_bn(model):
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return model


def test_state_dict_port_loads_strict_and_gives_the_same_features(tmp_path):
    torch.manual_seed(0)
    model = _randomise_bn(i3d.InceptionI3d(bn_eps=1e-5)).eval()
    path = tmp_path / "my_i3d.pt"
    torch.save(model.state_dict(), path)
    feats = fvd.I3DFeatures(weights=path, bn_eps=1e-5)
    assert feats.kind == "state_dict" and feats.weights["git_blob_sha1"] == git_blob_sha1(path)
    video = torch.rand(1, 10, 3, 20, 24)
    got = feats.features(video)
    assert got.shape == (1, 400) and got.dtype == torch.float64
    x = fvd.tf1_resize_bilinear(video) * 2 - 1
    with torch.no_grad():
        want = model(x.permute(0, 2, 1, 3, 4))
    # The same float32 network on the same input, compared in float64: float64's default 1e-7 tolerances are not
    # what these numbers can promise. Logits are <= 0.14 here; another conv kernel (e.g. another batch shape) moves
    # them by ~3e-8 (measured), a BatchNorm eps of 1e-3 instead of 1e-5 by 1e-4. atol 1e-6 sits between.
    torch.testing.assert_close(got, want.double(), atol=1e-6, rtol=0)


def test_state_dict_with_wrong_keys_is_refused(tmp_path):
    path = tmp_path / "not_i3d.pt"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(VidbenchError, match="not an InceptionI3d state dict"):
        i3d.load_state_dict_i3d(path)


class _FakeStyleganI3d(torch.nn.Module):
    """Stands in for i3d_torchscript.pt: reports what it was called with."""

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False):
        out = torch.zeros(x.shape[0], 400)
        out[:, :3] = x.float().mean(dim=(2, 3, 4))
        out[:, 3] = float(x.dtype == torch.uint8)
        out[:, 4] = float(rescale) + 2.0 * float(resize) + 4.0 * float(return_features)
        out[:, 5] = float(x.shape[2])
        return out


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.script is deprecated; the published file is TorchScript
def test_fvd_torchscript_gets_the_tf1_resized_input_without_its_own_resize(tmp_path):
    """Issue 12 item 1: the TorchScript file is called with rescale=False, resize=False on vidbench's TF1-resized
    [-1, 1] input, float [B,3,T,224,224], not uint8 at 64x64 resized by the module itself."""
    path = tmp_path / "scripted.pt"
    torch.jit.script(_FakeStyleganI3d()).save(str(path))
    assert i3d.is_torchscript(path)
    feats = fvd.I3DFeatures(weights=path)
    assert feats.kind == "torchscript" and feats.weights["resize"] == "tf1_bilinear"
    video = torch.rand(2, 12, 1, 8, 8)  # grayscale: repeated to 3 channels
    got = feats.features(video)
    assert got.dtype == torch.float64 and got.shape == (2, 400)
    assert torch.all(got[:, 3] == 0) and torch.all(got[:, 4] == 4) and torch.all(got[:, 5] == 12)
    want = (fvd.tf1_resize_bilinear(video) * 2 - 1).mean(dim=(1, 3, 4)).double()
    torch.testing.assert_close(got[:, :3], want.expand(-1, 3), atol=1e-5, rtol=0)


class _StyleganStyleI3d(torch.nn.Module):
    """StyleGAN-V's calling convention around a traced InceptionI3d: rescale maps [0,255] to [-1,1], resize is a
    trilinear resize to 224 (what the published file does when asked)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False):
        if rescale:
            x = x.float() / 127.5 - 1
        if resize:
            x = torch.nn.functional.interpolate(x, size=[x.shape[2], 224, 224], mode="trilinear", align_corners=False)
        return self.net(x)


def _calibrate_bn(model):
    """BatchNorm statistics of one batch of random videos: with plain random statistics the logits hardly depend
    on the input (two videos differ by ~2e-7), which would make an equality test empty; calibrated, by ~1."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model((fvd.tf1_resize_bilinear(torch.rand(2, 10, 3, 16, 16)) * 2 - 1).permute(0, 2, 1, 3, 4))
    return model.eval()


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::torch.jit.TracerWarning")
def test_fvd_both_weight_files_give_equal_features_on_the_same_weights(tmp_path, monkeypatch):
    """Issue 12 item 1: the same random I3D as a state dict and as a StyleGAN-V-style TorchScript file gives the
    same features, so both files see the same input; eps is chosen by blob id, so a renamed copy keeps it."""
    torch.manual_seed(0)
    model = _calibrate_bn(i3d.InceptionI3d(bn_eps=1e-5))
    state_path = tmp_path / "i3d_pretrained_400_renamed.pt"
    torch.save(model.state_dict(), state_path)
    monkeypatch.setitem(i3d.BN_EPS_BY_BLOB, git_blob_sha1(state_path), 1e-5)  # stands in for the real file's id
    with torch.no_grad():
        traced = torch.jit.trace(model, torch.rand(1, 3, 10, 224, 224) * 2 - 1)
    script_path = tmp_path / "i3d_torchscript_renamed.pt"
    torch.jit.script(_StyleganStyleI3d(traced)).save(str(script_path))
    video = torch.rand(2, 10, 3, 64, 64)
    from_state = fvd.I3DFeatures(weights=state_path)
    from_script = fvd.I3DFeatures(weights=script_path)
    assert from_state.weights["bn_eps"] == 1e-5 and from_script.kind == "torchscript"
    a, b = from_state.features(video), from_script.features(video)
    spread = (a[0] - a[1]).abs().max()  # how far apart two videos' features are with these weights (~1)
    assert spread > 0.1 and (a - b).abs().max() < 1e-4 * spread
    # What the old default path did, the module's own resize of uint8 frames, gives other features.
    x = (video * 255).round().to(torch.uint8).permute(0, 2, 1, 3, 4)
    with torch.no_grad():
        own = from_script.model(x, rescale=True, resize=True, return_features=True).double()
    assert (own - a).abs().max() > 0.1 * spread


def test_fvd_bn_eps_follows_the_blob_id_not_the_file_name(tmp_path, monkeypatch):
    torch.manual_seed(0)
    state = _randomise_bn(i3d.InceptionI3d()).state_dict()
    path = tmp_path / "i3d_pretrained_400_copy.pt"  # a name that once meant 1e-5; content unknown
    torch.save(state, path)
    with pytest.raises(VidbenchError, match="unknown I3D state dict .* pass bn_eps"):
        i3d.load_state_dict_i3d(path)
    assert fvd.I3DFeatures(weights=path, bn_eps=1e-3).weights["bn_eps"] == 1e-3
    monkeypatch.setitem(i3d.BN_EPS_BY_BLOB, git_blob_sha1(path), 1e-5)
    renamed = path.rename(tmp_path / "rgb_imagenet_lookalike.pt")  # a name that once meant 1e-3
    assert i3d.load_state_dict_i3d(renamed).Conv3d_1a_7x7.bn.eps == 1e-5
    assert i3d.BN_EPS_BY_BLOB[weights.KNOWN_WEIGHTS["i3d_pretrained_400.pt"].blob_sha1] == 1e-5
    assert i3d.BN_EPS_BY_BLOB[weights.KNOWN_WEIGHTS["rgb_imagenet.pt"].blob_sha1] == 1e-3


def test_fvd_minimum_clip_length_is_what_the_network_takes():
    """Issue 12 item 8: MIN_FRAMES is the network's own limit: 9 frames give logits, 8 fail inside I3D."""
    assert fvd.MIN_FRAMES == 9
    feats = fvd.I3DFeatures.random_for_speed_test()
    assert feats.features(torch.rand(1, 9, 3, 16, 16)).shape == (1, 400)
    with pytest.raises(VidbenchError, match="at least 9 frames"):
        feats.features(torch.rand(1, 8, 3, 16, 16))
    with torch.no_grad(), pytest.raises(RuntimeError):  # without the check, the network itself fails on 8
        feats.model(torch.zeros(1, 3, 8, 224, 224))


def test_known_weight_with_wrong_blob_id_is_detected(tmp_path):
    bad = tmp_path / "i3d_pretrained_400.pt"
    bad.write_bytes(b"not the weights")
    with pytest.raises(VidbenchError, match="git blob id .* does not match"):
        fvd.I3DFeatures(weights_dir=tmp_path)


def test_missing_weights_say_which_file_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(weights.ENV_OFFLINE, "1")
    monkeypatch.delenv(weights.ENV_DIR, raising=False)
    with pytest.raises(weights.MetricUnavailable, match="i3d_torchscript.pt not found") as e:
        fvd.I3DFeatures(weights_dir=tmp_path / "empty")
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in str(e.value) and "--weights-dir" in str(e.value)
    assert "i3d_pretrained_400.pt" in str(e.value)


# ------------------------------------------------------------------------------------------ statistics
def test_feature_stats_stream_and_merge_like_numpy():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(50, 7)) * 3 + 10
    whole = fvd.FeatureStats().update(feats)
    parts = fvd.FeatureStats().update(feats[:20]) + fvd.FeatureStats().update(feats[20:33]) + \
        fvd.FeatureStats(7).update(feats[33:])
    for stats in (whole, parts):
        mu, cov = stats.mean_cov()
        # float64 both sides, different summation orders: mean ~10 to ~1e-15 relative. The covariance is
        # (sum of outer products ~5e3 - n mu mu^T) / (n - 1): cancellation leaves ~1e-13 absolute (measured 6e-14)
        # on entries that can be near 0, hence the atol. An n vs n - 1 slip is a 2% error.
        np.testing.assert_allclose(mu, feats.mean(0), rtol=1e-12)
        np.testing.assert_allclose(cov, np.cov(feats, rowvar=False), rtol=1e-10, atol=1e-10)
    # The DDP path: summing .tensors() elementwise equals merging.
    a, b = fvd.FeatureStats().update(feats[:20]), fvd.FeatureStats().update(feats[20:])
    summed = fvd.FeatureStats.from_tensors(*[x + y for x, y in zip(a.tensors(), b.tensors())])
    # Same cancellation as above, so near-zero covariance entries need an atol: rtol alone measured 5.5e-13 of
    # the 1e-12 allowed (the dgemm's summation order is kernel-dependent).
    np.testing.assert_allclose(summed.mean_cov()[1], whole.mean_cov()[1], rtol=1e-12, atol=1e-10)
    assert float(summed.count) == 50


def test_feature_stats_refuse_too_few_and_non_finite():
    with pytest.raises(VidbenchError, match="at least 2"):
        fvd.FeatureStats().update(np.ones((1, 3))).mean_cov()
    with pytest.raises(VidbenchError, match="NaN"):
        fvd.FeatureStats().update(np.array([[1.0, np.nan]]))


# -------------------------------------------------------------------------------------------- distance
def test_identical_gaussians_give_zero():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(30, 12))
    mu, cov = a.mean(0), np.cov(a, rowvar=False)
    # float64; rounding leaves +-1e-13 here (the distance is clamped at 0: measured exactly 0 on every BLAS tried).
    assert fvd.frechet_distance(mu, cov, mu, cov) == pytest.approx(0, abs=1e-9)


def test_diagonal_covariances_closed_form():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    a, b = rng.uniform(0.1, 3, size=5), rng.uniform(0.1, 3, size=5)
    want = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    # float64 eigen-decompositions of diagonal matrices: ~1e-15 relative (measured exact); 1e-10 allows any LAPACK.
    assert fvd.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want, rel=1e-10)


def test_matches_scipy_sqrtm_on_well_conditioned_covariances():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(200, 6)), rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    mu1, c1, mu2, c2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * np.trace(scipy.linalg.sqrtm(c1 @ c2).real)
    # Two float64 algorithms (eigh of s c2 s vs scipy's Schur sqrtm of c1 c2): measured 9e-16 relative with
    # OpenBLAS Haswell/SkylakeX/Nehalem/Prescott/Sandybridge/Zen kernels; 1e-8 covers a worse-conditioned LAPACK.
    assert fvd.frechet_distance(mu1, c1, mu2, c2) == pytest.approx(ref, rel=1e-8)


def test_rank_deficient_covariances_stay_finite_and_non_negative():
    """Fewer samples than dimensions (the usual FVD case: 100 videos, 400 features)."""
    rng = np.random.default_rng(4)
    for n in (2, 5, 20):
        a = fvd.FeatureStats().update(rng.normal(size=(n, 40)))
        b = fvd.FeatureStats().update(rng.normal(size=(n, 40)) * 2)
        value = fvd.fvd_from_stats(a, b)
        assert np.isfinite(value) and value > 0
        # Rank-deficient: square roots of +-1e-15 rounding eigenvalues can add ~3e-8 each to tr sqrt, which only
        # pushes the value below 0, where it is clamped (measured exactly 0 over 600 random sets, 6 BLAS kernels).
        assert fvd.fvd_from_stats(a, a) == pytest.approx(0, abs=1e-8)
    tiny = np.diag([1e-30] * 3 + [1.0])
    # Traces of 1 + 3e-30, minus 2 sqrt(eigenvalues ~1, 1e-60): exact in float64 (measured 0).
    assert fvd.frechet_distance(np.zeros(4), tiny, np.zeros(4), tiny) == pytest.approx(0, abs=1e-12)


def _alive_i3d():
    """A random I3D whose batch-norm statistics come from random 16x16 clips, so every layer stays alive
    (see _calibrate_bn); 16x16 frames keep the time-chunking tests fast (space plays no part in them)."""
    torch.manual_seed(0)
    model = i3d.InceptionI3d()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.momentum = 1.0
    with torch.no_grad():
        model.train().trunk(torch.rand(2, 3, 40, 16, 16) * 2 - 1)
    model.avg_pool = torch.nn.AvgPool3d((2, 1, 1), stride=1)  # Mixed_5c is 1x1 at 16x16 (7x7 at 224)
    return model.eval()


@pytest.mark.parametrize("frames", [203, 198])  # lengths of two classes mod 4 (what SAME padding sees)
def test_long_clips_in_time_chunks_give_the_whole_clip_features(frames, monkeypatch):
    """Memory flat in the horizon (issue 14): trunk_in_chunks equals the whole-clip pass. Tolerance: the
    chunks are other conv shapes, for which oneDNN may block sums differently (float32 rounding, ~1e-7
    relative measured); a padding leak or a misaligned grid moves outputs by O(1e-2) relative or more, as the
    too-small margin below shows."""
    model = _alive_i3d()
    x = torch.rand(1, 3, frames, 16, 16) * 2 - 1
    with torch.no_grad():
        whole = model.trunk(x)
        assert (whole > 0).float().mean() > 0.2  # alive: an all-zero output would make the equality empty
        chunked = model.trunk_in_chunks(x, 48)
        assert chunked.shape == whole.shape
        assert float((chunked - whole).norm() / whole.norm()) < 1e-5
        if frames == 203:
            monkeypatch.setattr(i3d, "CHUNK_MARGIN", 32)
            assert float((model.trunk_in_chunks(x, 48) - whole).norm() / whole.norm()) > 1e-3


def test_forward_cuts_long_clips_into_bounded_passes_and_features_ask_it_to(monkeypatch):
    model = _alive_i3d()
    lengths, trunk = [], model.trunk
    monkeypatch.setattr(model, "trunk", lambda x: lengths.append(x.shape[2]) or trunk(x))
    x = torch.rand(1, 3, 203, 16, 16) * 2 - 1
    with torch.no_grad():
        chunked = model(x, max_pass_frames=2 * i3d.CHUNK_MARGIN + 48)
        assert len(lengths) > 1 and max(lengths) <= 2 * i3d.CHUNK_MARGIN + 48
        whole = model(x)
    assert float((chunked - whole).norm() / whole.norm()) < 1e-5  # as above: float32 rounding only
    feats = fvd.I3DFeatures.random_for_speed_test()
    seen, prefix_logits = [], feats.model.prefix_logits
    monkeypatch.setattr(feats.model, "prefix_logits", lambda x, n, **kw: seen.append(kw) or prefix_logits(x, n, **kw))
    feats.features(torch.rand(1, 9, 1, 8, 8))
    assert [kw["max_pass_frames"] for kw in seen] == [fvd.MAX_PASS_FRAMES] and callable(seen[0]["prepare"])


def test_prefixes_share_one_pass_and_equal_separate_passes(monkeypatch):
    """FVD over growing prefixes (issue 14): prefix_logits gives forward(x[:, :, :L]) for every L, from one
    pass per residue class mod 4 plus short tails. Residue classes: 16, 40, 96, 200 (0); 150, 198 (2); 107,
    203 (3); 16 and 40 are too short to share (under CHUNK_MARGIN + 8 frames: their own pass), the others
    reuse their class's longest. Tolerance: float32 rounding of other conv shapes, as for the time chunks;
    a wrong tail (misaligned grid, too short a margin) is off by O(1e-2) or more."""
    model = _alive_i3d()
    x = torch.rand(1, 3, 203, 16, 16) * 2 - 1
    lengths = [16, 40, 96, 150, 198, 200, 203, 107]
    seen, trunk = [], model.trunk
    monkeypatch.setattr(model, "trunk", lambda clip: seen.append(clip.shape[2]) or trunk(clip))
    with torch.no_grad():
        shared = model.prefix_logits(x, lengths)
        read = sum(seen)
        separate = torch.stack([model(x[:, :, :n]) for n in lengths], 1)
    assert shared.shape == (1, len(lengths), 400)
    assert float((shared - separate).norm() / separate.norm()) < 1e-5
    for k in range(len(lengths)):  # and prefix by prefix, so no small one hides under the others' norm
        assert float((shared[:, k] - separate[:, k]).norm() / separate[:, k].norm()) < 1e-5
    assert read == i3d.prefix_pass_frames(lengths) < sum(lengths)
    # the paper-scale plan: mmnist@1's prefixes of a 964-frame horizon read 1,460 frames instead of 1,972
    assert i3d.prefix_pass_frames([16, 32, 64, 128, 256, 512, 964]) == 964 + 3 * 128 + 64 + 32 + 16


def test_features_of_prefixes_match_features_of_cut_clips():
    feats = fvd.I3DFeatures.random_for_speed_test()
    video = torch.rand(2, 20, 1, 8, 8)
    with torch.no_grad():
        both = feats.prefix_features(video, [12, 20])
        assert torch.allclose(both[:, 0], feats.features(video[:, :12]), rtol=1e-5, atol=1e-6)  # float32 rounding
        assert torch.allclose(both[:, 1], feats.features(video), rtol=1e-5, atol=1e-6)
    with pytest.raises(VidbenchError, match="at least 9 frames"):
        feats.prefix_features(video, [8, 20])
    with pytest.raises(VidbenchError, match="prefix of 21 frames asked of 20-frame clips"):
        feats.prefix_features(video, [21])
