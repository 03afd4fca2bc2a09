"""Per-frame SSIM and PSNR as batched torch code (CPU or GPU), in the two conventions the field mixes up.

Public API (inputs: float tensors [..., C, H, W] in [0, 1], equal shapes; output: float64 tensor [...]):

    ssim(pred, target)        standard SSIM, tf.image.ssim conventions
    ssim_cwvae(pred, target)  SSIM as the CW-VAE authors' eval computed it (scikit-image 0.18 defaults)
    psnr(pred, target)        10*log10(1 / MSE) per frame, data range 1
    psnr_cwvae(pred, target)  PSNR per channel, then averaged over channels (authors' eval)
    full_precision_matmul()   context manager: float32 matrix products without TF32 (also used by fvd's resize)

Conventions (REFERENCE.md section 2):
- `ssim`: 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, data range 1, valid convolution (no padding),
  population covariance, mean over the map and the channels. Equal to skimage's structural_similarity(
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=...): skimage filters
  the whole image and then crops (win_size-1)//2 pixels from each side, which leaves exactly the valid region.
- `ssim_cwvae`: the authors' tools.compute_metrics called structural_similarity(gt[c], pred[c]) per channel with
  scikit-image 0.18 defaults: 7x7 uniform window, sample covariance (N/(N-1) with N=49), and data_range 2 because
  the input was float (dtype range [-1, 1]); the channel values are averaged.
- `psnr_cwvae`: the authors' eval called peak_signal_noise_ratio(gt[c], pred[c]) per channel; with non-negative
  float ground truth scikit-image 0.18 uses data range 1. Channel values are averaged (in dB).
- Identical frames (MSE = 0) give infinite PSNR in scikit-image; here MSE is floored at 1e-10, so PSNR is capped
  at PSNR_CAP_DB = 100 dB and per-timestep means stay finite. Documented, never silent NaN/inf.

The window statistics are computed in float32 by default (each frame-channel centred first, which keeps the
E[x^2] - E[x]^2 cancellation small; tests hold it to 1e-5 of scikit-image's float64); pass dtype=torch.float64
for exact agreement. PSNR's MSE is a float32 mean (pairwise sums: ~1e-6 dB). Results are returned as float64.
"""

from __future__ import annotations

import contextlib

import torch

from vidbench.errors import VidbenchError

PSNR_CAP_DB = 100.0
_MSE_FLOOR = 10.0 ** (-PSNR_CAP_DB / 10.0)

# Frames per chunk: bounds the memory of the four window-statistic maps whatever the batch size; 32-64 fit the
# CPU caches best for 64x64 frames.
_CHUNK_FRAMES = 64
# Runs per axis for the banded products (see _ssim_per_channel): 2 cuts the multiply-adds by 42% on 64x64 frames;
# on the shared development machine timings could not separate 1, 2 and 3.
_BLOCKS = 2


def _as_frames(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """Check shapes and flatten leading dims: returns [N,C,H,W] views and the leading shape."""
    if not (torch.is_tensor(pred) and torch.is_tensor(target)):
        raise TypeError("frame metrics take torch tensors")
    if pred.shape != target.shape:
        raise VidbenchError(f"prediction shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}")
    if pred.dim() < 3:
        raise VidbenchError(f"frames must be [..., C, H, W]; got shape {tuple(pred.shape)}")
    if not (pred.is_floating_point() and target.is_floating_point()):
        raise VidbenchError(f"frame metrics take float frames in [0, 1]; got {pred.dtype} and {target.dtype}")
    lead = tuple(pred.shape[:-3])
    c, h, w = pred.shape[-3:]
    return pred.reshape(-1, c, h, w), target.reshape(-1, c, h, w), lead


def _gaussian_1d(size: int, sigma: float) -> torch.Tensor:
    # Same kernel as scipy.ndimage.gaussian_filter(sigma=1.5, truncate=3.5) in skimage and tf.image.ssim's window.
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _uniform_1d(size: int) -> torch.Tensor:
    return torch.full((size,), 1.0 / size, dtype=torch.float64)


def _split(n: int, k: int, blocks: int) -> tuple[int, int]:
    """Valid outputs per block and inputs per block when the n - k + 1 outputs are cut into `blocks` runs."""
    out = -(-(n - k + 1) // blocks)
    return out, out + k - 1


def _band(kernel_1d: torch.Tensor, outputs: int, like: torch.Tensor) -> torch.Tensor:
    """[outputs, outputs+k-1] matrix whose product with a signal is its valid correlation with the kernel."""
    k = kernel_1d.numel()
    band = torch.zeros(outputs, outputs + k - 1, dtype=torch.float64)
    for i in range(outputs):
        band[i, i : i + k] = kernel_1d
    return band.to(device=like.device, dtype=like.dtype)


def _ssim_per_channel(x, y, kernel_1d, data_range: float, cov_norm: float, dtype) -> torch.Tensor:
    """Mean SSIM over the valid map, per frame and channel: [N,C,H,W] x2 -> [N,C] (float64).

    The separable window filter runs as two banded matrix products, valid region only (so no padding question).
    As large GEMMs they ran 3-5x faster on CPU than torch's depthwise conv2d on 64x64 frames. To cut the zeros a full
    band matrix multiplies, each axis is cut into _BLOCKS overlapping runs (inputs duplicated where runs overlap,
    e.g. 64 -> 2 x 37 giving 2 x 27 outputs: 42% fewer multiply-adds). Maps are laid out
    [map, run_h, H_run, N, C, run_w, W_run] so both products are single GEMMs with no transposes in between, and the
    SSIM formula then runs in place on the filtered maps.
    """
    n, c, h, w = x.shape
    k = kernel_1d.numel()
    if h < k or w < k:
        raise VidbenchError(f"frames of {h}x{w} pixels are smaller than the {k}x{k} SSIM window")
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    hv, wv = h - k + 1, w - k + 1
    bh, bw = min(_BLOCKS, hv), min(_BLOCKS, wv)
    out_h, in_h = _split(h, k, bh)
    out_w, in_w = _split(w, k, bw)
    probe = torch.empty(0, dtype=dtype, device=x.device)
    band_h, band_w = _band(kernel_1d, out_h, probe), _band(kernel_1d, out_w, probe)
    padded = bh * in_h - (bh - 1) * (k - 1) > h or bw * in_w - (bw - 1) * (k - 1) > w
    results = [torch.empty(0, c, dtype=torch.float64, device=x.device)]
    for start in range(0, n, _CHUNK_FRAMES):
        xs = x[start : start + _CHUNK_FRAMES].to(dtype).permute(2, 0, 1, 3)  # [H, b, C, W]
        ys = y[start : start + _CHUNK_FRAMES].to(dtype).permute(2, 0, 1, 3)
        b = xs.shape[1]
        # Variances and the covariance are shift-invariant: centring each frame-channel first keeps the
        # E[x^2] - E[x]^2 cancellation small in float32 (the window sums to 1, so means shift back exactly).
        mx, my = xs.mean(dim=(0, 3), keepdim=True), ys.mean(dim=(0, 3), keepdim=True)
        alloc = torch.zeros if padded else torch.empty  # runs past the frame edge read zeros, outputs dropped below
        maps = alloc(4, bh, in_h, b, c, bw, in_w, dtype=dtype, device=x.device)
        for i in range(bh):
            rows = slice(i * out_h, min(i * out_h + in_h, h))
            for j in range(bw):
                cols = slice(j * out_w, min(j * out_w + in_w, w))
                nr, nc = rows.stop - rows.start, cols.stop - cols.start
                torch.sub(xs[rows, :, :, cols], mx, out=maps[0, i, :nr, :, :, j, :nc])
                torch.sub(ys[rows, :, :, cols], my, out=maps[1, i, :nr, :, :, j, :nc])
        # Only var_x + var_y enters SSIM, so four filtered maps per channel are enough.
        torch.mul(maps[0], maps[0], out=maps[2]).addcmul_(maps[1], maps[1])
        torch.mul(maps[0], maps[1], out=maps[3])
        # H first: the short-and-wide product is the faster GEMM shape, so it takes the larger (unfiltered) input.
        filtered = torch.matmul(band_h, maps.view(4 * bh, in_h, -1))  # [4*bh, out_h, b*C*bw*in_w]
        filtered = filtered.view(-1, in_w) @ band_w.T  # [4, bh, out_h, b, C, bw, out_w]
        filtered = filtered.view(4, bh * out_h, b, c, bw * out_w)[:, :hv, :, :, :wv]
        ux, uy, sum_sq, cross = filtered.unbind(0)  # centred window statistics, [H', b, C, W'] each
        vxy = cross.addcmul_(ux, uy, value=-1).mul_(2 * cov_norm).add_(c2)  # 2 cov + C2
        v_sum = sum_sq.addcmul_(ux, ux, value=-1).addcmul_(uy, uy, value=-1).mul_(cov_norm).add_(c2)
        ux, uy = ux.add_(mx), uy.add_(my)  # back to the true local means
        numerator = (ux * uy).mul_(2).add_(c1).mul_(vxy)
        denominator = ux.square_().add_(uy.square_()).add_(c1).mul_(v_sum)
        ssim_map = numerator.div_(denominator)
        results.append(ssim_map.mean(dim=(0, 3)).double())  # torch's float32 sums are pairwise: ~1e-7 relative
    return torch.cat(results)


@contextlib.contextmanager
def full_precision_matmul():
    """TF32 matrix products (set_float32_matmul_precision("high") on recent GPUs) would move SSIM by ~1e-3."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def ssim(pred: torch.Tensor, target: torch.Tensor, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard SSIM (tf.image.ssim): Gaussian 11x11, sigma 1.5, data range 1, valid map, mean over channels."""
    x, y, lead = _as_frames(pred, target)
    with full_precision_matmul():
        per_channel = _ssim_per_channel(x, y, _gaussian_1d(11, 1.5), data_range=1.0, cov_norm=1.0, dtype=dtype)
    return per_channel.mean(dim=1).reshape(lead)


def ssim_cwvae(pred: torch.Tensor, target: torch.Tensor, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Authors' eval SSIM: scikit-image 0.18 defaults per channel (7x7 uniform, sample covariance, data range 2)."""
    x, y, lead = _as_frames(pred, target)
    window = 7 * 7
    with full_precision_matmul():
        per_channel = _ssim_per_channel(
            x, y, _uniform_1d(7), data_range=2.0, cov_norm=window / (window - 1), dtype=dtype
        )
    return per_channel.mean(dim=1).reshape(lead)


def _mse(x: torch.Tensor, y: torch.Tensor, dims) -> torch.Tensor:
    # Pairwise float32 sums: ~1e-7 relative, i.e. ~5e-7 dB; float64 here doubled the cost of PSNR.
    return (x - y).square_().mean(dim=dims).double()


def _psnr_from_mse(mse: torch.Tensor) -> torch.Tensor:
    return -10.0 * torch.log10(mse.clamp_min(_MSE_FLOOR))  # data range 1: 10*log10(1/MSE)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR per frame over all pixels and channels, data range 1, capped at PSNR_CAP_DB."""
    x, y, lead = _as_frames(pred, target)
    return _psnr_from_mse(_mse(x, y, (1, 2, 3))).reshape(lead)


def psnr_cwvae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Authors' eval PSNR: per channel (data range 1), then the mean of the channel PSNRs in dB."""
    x, y, lead = _as_frames(pred, target)
    return _psnr_from_mse(_mse(x, y, (2, 3))).mean(dim=1).reshape(lead)


