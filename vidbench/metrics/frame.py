"""Per-frame SSIM and PSNR as batched torch code (CPU or GPU), in the two conventions the field mixes up.

Public API (inputs: float tensors [..., C, H, W] in [0, 1], equal shapes; output: float64 tensor [...]):

    ssim(pred, target)        standard SSIM, tf.image.ssim conventions
    ssim_cwvae(pred, target)  SSIM as the CW-VAE authors' eval computed it (scikit-image 0.18 defaults)
    psnr(pred, target)        10*log10(1 / MSE) per frame, data range 1
    psnr_cwvae(pred, target)  PSNR per channel, then averaged over channels (authors' eval)

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

The statistics are computed in float64: the E[x^2] - E[x]^2 variance form loses digits in float32 where the local
variance is tiny, and that showed up as 1e-4 differences from scikit-image on flat regions.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F

from vidbench.errors import VidbenchError

PSNR_CAP_DB = 100.0
_MSE_FLOOR = 10.0 ** (-PSNR_CAP_DB / 10.0)

# Frames per chunk: bounds the memory of the five stacked statistic maps (float64) whatever the batch size.
_CHUNK_FRAMES = 512


def _as_frames(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """Check shapes and flatten leading dims: returns [N,C,H,W] float64 views and the leading shape."""
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
    return pred.reshape(-1, c, h, w).double(), target.reshape(-1, c, h, w).double(), lead


def _gaussian_1d(size: int, sigma: float, device) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _uniform_1d(size: int, device) -> torch.Tensor:
    return torch.full((size,), 1.0 / size, dtype=torch.float64, device=device)


def _valid_filter(maps: torch.Tensor, kernel_1d: torch.Tensor) -> torch.Tensor:
    """Separable 2D filter of every channel of [N,K,H,W], valid region only (no padding)."""
    k = kernel_1d.numel()
    ch = maps.shape[1]
    col = kernel_1d.view(1, 1, k, 1).expand(ch, 1, k, 1)
    row = kernel_1d.view(1, 1, 1, k).expand(ch, 1, 1, k)
    return F.conv2d(F.conv2d(maps, col, groups=ch), row, groups=ch)


def _ssim_per_channel(x, y, kernel_1d, data_range: float, cov_norm: float) -> torch.Tensor:
    """Mean SSIM over the valid map, per frame and channel: [N,C,H,W] x2 -> [N,C]."""
    n, c, h, w = x.shape
    k = kernel_1d.numel()
    if h < k or w < k:
        raise VidbenchError(f"frames of {h}x{w} pixels are smaller than the {k}x{k} SSIM window")
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    out = []
    for start in range(0, n, _CHUNK_FRAMES):
        xs, ys = x[start : start + _CHUNK_FRAMES], y[start : start + _CHUNK_FRAMES]
        stats = _valid_filter(torch.cat([xs, ys, xs * xs, ys * ys, xs * ys], dim=1), kernel_1d)
        ux, uy, uxx, uyy, uxy = stats.split(c, dim=1)
        vx = cov_norm * (uxx - ux * ux)
        vy = cov_norm * (uyy - uy * uy)
        vxy = cov_norm * (uxy - ux * uy)
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        out.append(s.mean(dim=(-2, -1)))
    return torch.cat(out)


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Standard SSIM (tf.image.ssim): Gaussian 11x11, sigma 1.5, data range 1, valid map, mean over channels."""
    x, y, lead = _as_frames(pred, target)
    kernel = _gaussian_1d(11, 1.5, x.device)
    return _ssim_per_channel(x, y, kernel, data_range=1.0, cov_norm=1.0).mean(dim=1).reshape(lead)


def ssim_cwvae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Authors' eval SSIM: scikit-image 0.18 defaults per channel (7x7 uniform, sample covariance, data range 2)."""
    x, y, lead = _as_frames(pred, target)
    kernel = _uniform_1d(7, x.device)
    np_ = 7 * 7
    return _ssim_per_channel(x, y, kernel, data_range=2.0, cov_norm=np_ / (np_ - 1)).mean(dim=1).reshape(lead)


def _psnr_from_mse(mse: torch.Tensor) -> torch.Tensor:
    return -10.0 * torch.log10(mse.clamp_min(_MSE_FLOOR))  # data range 1: 10*log10(1/MSE)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR per frame over all pixels and channels, data range 1, capped at PSNR_CAP_DB."""
    x, y, lead = _as_frames(pred, target)
    return _psnr_from_mse((x - y).pow(2).mean(dim=(1, 2, 3))).reshape(lead)


def psnr_cwvae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Authors' eval PSNR: per channel (data range 1), then the mean of the channel PSNRs in dB."""
    x, y, lead = _as_frames(pred, target)
    return _psnr_from_mse((x - y).pow(2).mean(dim=(2, 3))).mean(dim=1).reshape(lead)


