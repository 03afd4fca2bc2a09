"""Frame metrics against their references: scikit-image called with the equivalent arguments, on the same frames."""

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from vidbench.errors import VidbenchError
from vidbench.metrics import METRICS, frame


def _pairs(channels: int, n: int = 6, size=(32, 40), seed: int = 0):
    """Random, structured (flat patches, edges, gradients) and nearly-flat bright frames, as [N,C,H,W] in [0,1]."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    rand_x = torch.rand(n, channels, h, w, generator=g)
    rand_y = (rand_x + 0.2 * torch.randn(n, channels, h, w, generator=g)).clamp(0, 1)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    struct_x = torch.zeros(n, channels, h, w)
    struct_x[..., 8:20, 5:30] = 0.8
    struct_x += 0.5 * xx * yy
    struct_y = struct_x.roll(shifts=2, dims=-1) + 0.01 * torch.randn(n, channels, h, w, generator=g)
    # Bright and nearly flat: the case where float32 variance cancellation would show.
    flat_x = 0.97 + 0.001 * torch.randn(n, channels, h, w, generator=g)
    flat_y = 0.97 + 0.001 * torch.randn(n, channels, h, w, generator=g)
    return [(rand_x, rand_y), (struct_x.clamp(0, 1), struct_y.clamp(0, 1)), (flat_x.clamp(0, 1), flat_y.clamp(0, 1))]


def _hwc(t):
    return t.permute(1, 2, 0).double().numpy()


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_equals_skimage_gaussian_population(channels):
    for x, y in _pairs(channels):
        ours = frame.ssim(x, y)
        ref = [
            structural_similarity(
                _hwc(a), _hwc(b), gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                data_range=1.0, channel_axis=2,
            )
            for a, b in zip(x, y)
        ]
        # float32 window statistics (centred, summed by GEMMs whose order depends on the kernel family) against
        # skimage's float64: measured <= 1.1e-6 on ATen default/AVX2/AVX512 kernels, 1-2 threads; 1e-5 leaves
        # ~10x for other BLAS kernels; a convention slip is far larger (test_ssim_conventions_differ: 0.145).
        np.testing.assert_allclose(ours.numpy(), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_cwvae_equals_skimage_018_defaults_per_channel(channels):
    for x, y in _pairs(channels, seed=1):
        ours = frame.ssim_cwvae(x, y)
        # The authors' loop: one 2D call per channel with skimage 0.18 defaults, spelled out for skimage >= 0.20.
        ref = [
            np.mean([
                structural_similarity(
                    a[c].double().numpy(), b[c].double().numpy(), win_size=7, gaussian_weights=False,
                    use_sample_covariance=True, data_range=2.0,
                )
                for c in range(channels)
            ])
            for a, b in zip(y, x)
        ]
        # float32 vs float64, as in the Gaussian test above: measured <= 6.5e-7 on default/AVX2/AVX512 kernels.
        np.testing.assert_allclose(ours.numpy(), ref, atol=1e-5, rtol=0)


def test_ssim_float64_is_exact():
    x, y = _pairs(3)[1]
    ours = frame.ssim(x, y, dtype=torch.float64)
    ref = [
        structural_similarity(_hwc(a), _hwc(b), gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                              data_range=1.0, channel_axis=2)
        for a, b in zip(x, y)
    ]
    # float64 both sides, only the summation order differs (banded GEMMs vs scipy's filter): ~1e-15 measured.
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-12, rtol=0)


def test_ssim_conventions_differ():
    """Not interchangeable: data range 2 inflates the authors' SSIM of a washed-out (low-contrast) prediction."""
    target = _pairs(3)[1][0]
    washed_out = 0.4 + 0.05 * torch.rand(target.shape, generator=torch.Generator().manual_seed(3))
    # Effect size, not rounding: the gap is 0.145-0.146 over 50 seeds of the washed-out frames (seed 3: 0.1457).
    assert (frame.ssim_cwvae(washed_out, target) - frame.ssim(washed_out, target)).mean() > 0.05


@pytest.mark.parametrize("channels", [1, 3])
def test_psnr_equals_skimage(channels):
    for x, y in _pairs(channels, seed=2):
        ours = frame.psnr(x, y)
        ref = [peak_signal_noise_ratio(a.double().numpy(), b.double().numpy(), data_range=1.0) for a, b in zip(x, y)]
        # float32 MSE (float32 differences, pairwise sums in a kernel-dependent order) vs skimage's float64; the dB
        # error is 4.34 x the relative MSE error. Measured up to 8.5e-7 dB over 7,200 such frames on default, AVX2
        # and AVX512 kernels, so the old 1e-6 had no margin. 5e-6 dB is ~1e-6 relative MSE (~20 float32 ulps);
        # a wrong data range, mean or channel handling is off by > 1e-2 dB.
        np.testing.assert_allclose(ours.numpy(), ref, atol=5e-6, rtol=0)
        ours_c = frame.psnr_cwvae(x, y)
        ref_c = [
            np.mean([peak_signal_noise_ratio(a[c].double().numpy(), b[c].double().numpy(), data_range=1.0)
                     for c in range(channels)])
            for a, b in zip(y, x)
        ]
        np.testing.assert_allclose(ours_c.numpy(), ref_c, atol=5e-6, rtol=0)  # per channel: as psnr above


def test_psnr_identical_frames_is_capped():
    x = torch.rand(2, 3, 16, 16)
    assert torch.all(frame.psnr(x, x) == frame.PSNR_CAP_DB)
    assert torch.all(frame.psnr_cwvae(x, x) == frame.PSNR_CAP_DB)


def test_leading_dims_are_kept():
    x = torch.rand(2, 5, 1, 16, 16)
    y = torch.rand(2, 5, 1, 16, 16)
    for fn in (frame.ssim, frame.ssim_cwvae, frame.psnr, frame.psnr_cwvae):
        out = fn(x, y)
        assert out.shape == (2, 5) and out.dtype == torch.float64
        # One frame vs ten: SSIM's GEMMs change shape, and MKL may pick another kernel (measured up to 4e-7 between
        # a 1-frame and a 48-frame call), so float32 rounding, not float64's default 1e-7.
        torch.testing.assert_close(out[1, 3], fn(x[1, 3], y[1, 3]).reshape(()), atol=1e-6, rtol=0)


@pytest.mark.parametrize("blocks", [1, 2, 3])
def test_blocked_filter_on_odd_sizes_equals_skimage(blocks, monkeypatch):
    """Runs that overhang the frame edge (17x23 frames: valid maps 7x13) are zero-padded and cropped correctly."""
    monkeypatch.setattr(frame, "_BLOCKS", blocks)
    g = torch.Generator().manual_seed(5)
    x, y = torch.rand(3, 3, 17, 23, generator=g), torch.rand(3, 3, 17, 23, generator=g)
    ref = [
        structural_similarity(_hwc(a), _hwc(b), gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                              data_range=1.0, channel_axis=2)
        for a, b in zip(x, y)
    ]
    # float32 vs float64 as in test_ssim_equals_skimage_gaussian_population (measured <= 1e-8 on these frames).
    np.testing.assert_allclose(frame.ssim(x, y).numpy(), ref, atol=1e-5, rtol=0)
    ref_c = [np.mean([structural_similarity(a[c].double().numpy(), b[c].double().numpy(), win_size=7,
                                            use_sample_covariance=True, data_range=2.0) for c in range(3)])
             for a, b in zip(x, y)]
    np.testing.assert_allclose(frame.ssim_cwvae(x, y).numpy(), ref_c, atol=1e-5, rtol=0)  # as just above


def test_empty_batch_and_matmul_precision_restored():
    assert frame.ssim(torch.rand(0, 3, 16, 16), torch.rand(0, 3, 16, 16)).shape == (0,)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        frame.ssim(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16))
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(before)


def test_chunking_does_not_change_values(monkeypatch):
    x, y = torch.rand(7, 3, 16, 16), torch.rand(7, 3, 16, 16)
    whole = frame.ssim(x, y)
    monkeypatch.setattr(frame, "_CHUNK_FRAMES", 2)
    # Chunks of 2 frames change the GEMM shapes (see test_leading_dims_are_kept): float32 rounding of SSIM
    # (measured <= 4e-7), not float64's default 1e-7.
    torch.testing.assert_close(frame.ssim(x, y), whole, atol=1e-6, rtol=0)


def test_bad_inputs_are_named():
    with pytest.raises(VidbenchError, match="differs"):
        frame.ssim(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17))
    with pytest.raises(VidbenchError, match="smaller than"):
        frame.ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))
    with pytest.raises(VidbenchError, match="float"):
        frame.psnr(torch.zeros(1, 1, 16, 16, dtype=torch.uint8), torch.zeros(1, 1, 16, 16, dtype=torch.uint8))


def test_registry_entries():
    for name, better in [("ssim", True), ("ssim_cwvae", True), ("psnr", True), ("psnr_cwvae", True)]:
        assert METRICS.info(name)["higher_is_better"] is better
        assert METRICS.info(name)["kind"] == "frame"
        assert METRICS.get(name) is getattr(frame, name)
    assert METRICS.info("lpips")["higher_is_better"] is False
    assert METRICS.info("fvd")["higher_is_better"] is False
