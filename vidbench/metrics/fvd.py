"""Fréchet Video Distance: I3D features, streaming feature statistics, and a stable Fréchet distance.

Public API:
    I3DFeatures(weights=None, device="cpu", weights_dir=None, frames_per_batch=256, bn_eps=None)
        weights: None (search the defaults below), a known file name (searched), or a path (TorchScript archives are
        recognised by content; anything else must be an InceptionI3d state dict); bn_eps overrides the per-file value
    I3DFeatures.random_for_speed_test(device="cpu"): random InceptionI3d, for timing only
        .features(video float [B,T,C,H,W] in [0,1], C = 1 or 3, T >= MIN_FRAMES) -> float64 [B,400] (CPU)
        .prefix_features(video, lengths) -> float64 [B,len(lengths),400]: features(video[:, :L]) for each L,
        with one shared pass (the growing prefixes of FVD curves; InceptionI3d.prefix_logits)
        .weights: {"file", "git_blob_sha1", "kind"} for the results file
    FeatureStats(dim=None): .update(feats [B,D]), .merge(other) / a + b, .mean_cov() -> (mu [D], cov [D,D]) float64,
        .count, .tensors() -> [count, sum, outer] (all_reduce each with SUM, in place), FeatureStats.from_tensors(...)
    frechet_distance(mu1, cov1, mu2, cov2) -> float
    fvd_from_stats(a: FeatureStats, b: FeatureStats) -> float
    tf1_resize_bilinear(frames float [N,C,H,W], size=(224, 224)) -> [N,C,h,w]

Conventions (REFERENCE.md section 2): the reference FVD (TF Hub i3d-kinetics-400/1) resizes frames to 224x224 with
TF1's resize_bilinear (align_corners=False and no half-pixel offset: source = destination * in/out, clamped at the
last pixel), scales to [-1, 1], and takes the 400-d logits (averaged over time) as features; statistics and the
distance are float64. Every weight file sees the same input: vidbench's TF1 resize to 224x224, then [-1, 1]. The
TorchScript export is called with rescale=False and resize=False: its own resize (trilinear, half-pixel) is not TF1's,
and its author claims TF equivalence only for inputs already at 224x224. Weights: without `weights`, the first of
i3d_torchscript.pt (StyleGAN-V's export) and i3d_pretrained_400.pt (VideoGPT/TATS) found by
vidbench.metrics.weights; rgb_imagenet.pt (ImageNet-inflated, a different network) only when named. The results
file should record `.weights`: FVDs from different weight files are not comparable.

Streaming: FeatureStats keeps count, sum and sum of outer products, so memory does not grow with the number of
videos and shards merge by addition (DDP: all_reduce SUM of .tensors()). The covariance is the unbiased one
(n - 1), as np.cov in StyleGAN-V's and tfgan's FVD code.
"""

from __future__ import annotations

import numpy as np
import torch

from vidbench.cpu_memory import keep_freed_memory
from vidbench.errors import VidbenchError
from vidbench.metrics import i3d as i3d_net
from vidbench.metrics import weights as weight_files
from vidbench.metrics.frame import full_precision_matmul

# The shortest clip the network takes (InceptionI3d.MIN_FRAMES = 9: ceil(T / 8) >= 2 time steps reach the final
# 2-frame average pool; tests/test_fvd.py runs 9 and 8 frames). REFERENCE.md's "~10" is the field's rule of thumb.
MIN_FRAMES = i3d_net.InceptionI3d.MIN_FRAMES
FEATURE_DIM = 400
DEFAULT_WEIGHTS = ("i3d_torchscript.pt", "i3d_pretrained_400.pt")
# Channels-last 3D convolutions on CPU: about 1.3-1.4x the throughput of the default layout in issue 14's
# measurement (oneDNN's fast path); features move by ~1e-6 relative (float32 summation order). bf16 was
# measured too and rejected: slower on that CPU and 2e-3 relative error.
FAST_LAYOUT = torch.channels_last_3d
# Longer clips go through the state-dict network in overlapping time chunks of at most this many frames
# (InceptionI3d.trunk_in_chunks: same features), so memory stops growing with the horizon: a 964-frame clip
# makes 3 passes of <= 576 frames, 1.27x the frames of one whole-clip pass. The TorchScript export cannot
# be cut this way (its layers are not ours to call) and takes whole clips.
MAX_PASS_FRAMES = 576


# ------------------------------------------------------------------------------------------------------ resize
def _tf1_bilinear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """[n_out, n_in] interpolation weights of TF1 resize_bilinear (align_corners=False, half_pixel_centers=False)."""
    # TF computes the scale and the source coordinate in float32 (LegacyScaler); doing the same matters: in float64
    # the coordinate of pixel 223 moves by ~3e-6 when resizing 64 -> 224, and so do the values.
    scale = torch.tensor(n_in, dtype=torch.float32) / torch.tensor(n_out, dtype=torch.float32)
    src = torch.arange(n_out, dtype=torch.float32) * scale
    lo = src.floor().long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    frac = (src - lo.float()).double()
    m = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    m[rows, lo] += 1 - frac
    m[rows, hi] += frac
    return m


def tf1_resize_bilinear(frames: torch.Tensor, size=(224, 224)) -> torch.Tensor:
    """Resize [..., H, W] like tf.compat.v1.image.resize_bilinear, as two matrix products (same dtype out)."""
    h, w = frames.shape[-2:]
    dtype = frames.dtype if frames.is_floating_point() else torch.float32
    rows = _tf1_bilinear_matrix(h, size[0]).to(frames.device, dtype)
    cols = _tf1_bilinear_matrix(w, size[1]).to(frames.device, dtype)
    with full_precision_matmul():  # TF32 would move the resized pixels by ~1e-3
        return rows @ frames.to(dtype) @ cols.T


# ---------------------------------------------------------------------------------------------------- features
class I3DFeatures:
    def __init__(self, weights=None, device="cpu", weights_dir=None, frames_per_batch: int = 256, bn_eps=None):
        self.device = torch.device(device)
        self.frames_per_batch = frames_per_batch
        self.layout = _layout(self.device)
        path = _find_weights(weights, weights_dir)
        if i3d_net.is_torchscript(path):
            self.kind = "torchscript"
            self.model = i3d_net.load_torchscript_i3d(path, self.device)
        else:
            self.kind = "state_dict"
            self.model = i3d_net.load_state_dict_i3d(path, self.device, bn_eps=bn_eps).to(memory_format=self.layout)
        self.weights = {**weight_files.describe(path), "kind": self.kind, "resize": "tf1_bilinear"}
        if self.kind == "state_dict":
            self.weights["bn_eps"] = next(m.eps for m in self.model.modules() if isinstance(m, torch.nn.BatchNorm3d))

    @classmethod
    def random_for_speed_test(cls, device="cpu", frames_per_batch: int = 256) -> I3DFeatures:
        """Randomly initialised InceptionI3d: only for timing the network. Its features mean nothing."""
        self = cls.__new__(cls)
        self.device, self.frames_per_batch, self.kind = torch.device(device), frames_per_batch, "state_dict"
        self.layout = _layout(self.device)
        self.model = i3d_net.InceptionI3d().eval().to(self.device, memory_format=self.layout)
        self.weights = {"file": "random (speed tests only)", "git_blob_sha1": None, "kind": self.kind}
        return self

    def features(self, video: torch.Tensor) -> torch.Tensor:
        return self.prefix_features(video, [video.shape[1]])[:, 0]

    @torch.no_grad()
    def prefix_features(self, video: torch.Tensor, lengths) -> torch.Tensor:
        """Features of every prefix video[:, :L] for L in lengths: float64 [B, len(lengths), 400] (CPU), each
        equal to features(video[:, :L]); the state-dict network shares one pass between them
        (InceptionI3d.prefix_logits), the TorchScript export runs each prefix whole."""
        if video.dim() != 5 or video.shape[2] not in (1, 3):
            raise VidbenchError(f"FVD takes videos [B,T,C,H,W] with C = 1 or 3; got shape {tuple(video.shape)}")
        lengths = [int(n) for n in lengths]
        if not lengths or min(lengths) < MIN_FRAMES:
            raise VidbenchError(f"FVD needs clips of at least {MIN_FRAMES} frames (I3D); got {min(lengths, default=0)}")
        if max(lengths) > video.shape[1]:
            raise VidbenchError(f"FVD prefix of {max(lengths)} frames asked of {video.shape[1]}-frame clips")
        video = video[:, : max(lengths)]
        per_batch = max(1, self.frames_per_batch // video.shape[1])
        out = [self._features(video[i : i + per_batch], lengths) for i in range(0, video.shape[0], per_batch)]
        return torch.cat(out).double().cpu()

    def _features(self, video: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        video = video.to(self.device).float().clamp(0, 1)
        if video.shape[2] == 1:
            video = video.expand(-1, -1, 3, -1, -1)
        video = video.permute(0, 2, 1, 3, 4)  # [B,3,T,h,w]: small frames; the 224x224 copies are made per pass

        def prepare(frames):  # -> [B,3,t,224,224] in [-1,1]
            return tf1_resize_bilinear(frames) * 2 - 1

        if self.kind == "torchscript":
            # StyleGAN-V's module, told not to rescale or resize: it gets exactly what the state-dict port gets.
            return torch.stack([self.model(prepare(video[:, :, :n]).contiguous(), rescale=False, resize=False,
                                           return_features=True) for n in lengths], 1)
        return self.model.prefix_logits(video, lengths, max_pass_frames=MAX_PASS_FRAMES,
                                        prepare=lambda frames: prepare(frames).contiguous(memory_format=self.layout))


def _layout(device: torch.device):
    """FAST_LAYOUT on CPU, where it was measured; GPUs keep the default layout (not measured there). On CPU,
    freed activations are also kept for the next pass (vidbench/cpu_memory.py: 1.3x I3D frames/s)."""
    if device.type != "cpu":
        return torch.contiguous_format
    keep_freed_memory()
    return FAST_LAYOUT


def _find_weights(weights, weights_dir):
    if weights is not None:
        return weight_files.locate(weights, weights_dir=weights_dir)
    for folder in weight_files.search_dirs(weights_dir):  # a local file of either default beats a download
        for name in DEFAULT_WEIGHTS:
            if (folder / name).is_file():
                return weight_files.locate(folder / name)
    try:
        return weight_files.locate(DEFAULT_WEIGHTS[0], weights_dir=weights_dir)
    except weight_files.MetricUnavailable as e:
        raise weight_files.MetricUnavailable(f"{e} (for FVD, {DEFAULT_WEIGHTS[1]} there works too)") from None


# ------------------------------------------------------------------------------------------------- statistics
class FeatureStats:
    """Count, sum and sum of outer products of feature vectors, in float64; merges by addition."""

    def __init__(self, dim: int | None = None):
        self.dim = dim
        self.count = torch.zeros((), dtype=torch.float64)
        self.sum = None if dim is None else torch.zeros(dim, dtype=torch.float64)
        self.outer = None if dim is None else torch.zeros(dim, dim, dtype=torch.float64)

    def update(self, feats) -> FeatureStats:
        feats = torch.as_tensor(feats).detach().to("cpu", torch.float64)
        if feats.dim() != 2:
            raise ValueError(f"features must be [B, D]; got {tuple(feats.shape)}")
        if not torch.isfinite(feats).all():
            raise VidbenchError("FVD features contain NaN or inf (non-finite frames reached I3D)")
        if self.sum is None:
            self.__init__(feats.shape[1])
        elif feats.shape[1] != self.dim:
            raise ValueError(f"feature size {feats.shape[1]} differs from {self.dim}")
        self.count += feats.shape[0]
        self.sum += feats.sum(dim=0)
        self.outer += feats.T @ feats
        return self

    def merge(self, other: FeatureStats) -> FeatureStats:
        out = FeatureStats.from_tensors(*[t.clone() for t in self.tensors()]) if self.sum is not None else FeatureStats()
        if other.sum is None:
            return out
        if out.sum is None:
            return FeatureStats.from_tensors(*[t.clone() for t in other.tensors()])
        if other.dim != out.dim:
            raise ValueError(f"feature size {other.dim} differs from {out.dim}")
        out.count += other.count
        out.sum += other.sum
        out.outer += other.outer
        return out

    __add__ = merge

    def tensors(self) -> list[torch.Tensor]:
        if self.sum is None:
            raise ValueError("FeatureStats has no features yet (its size is unknown); give it dim=")
        return [self.count, self.sum, self.outer]

    @classmethod
    def from_tensors(cls, count, sum_, outer) -> FeatureStats:
        self = cls(sum_.shape[0])
        self.count, self.sum, self.outer = count.double(), sum_.double(), outer.double()
        return self

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        n = float(self.count)
        if n < 2:
            raise VidbenchError(f"FVD needs at least 2 videos per set; got {int(n)}")
        mu = (self.sum / n).numpy()
        cov = (self.outer.numpy() - n * np.outer(mu, mu)) / (n - 1)
        return mu, (cov + cov.T) / 2  # symmetric to the last bit


# ---------------------------------------------------------------------------------------------------- distance
def _psd_sqrt(mat: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix; negative rounding-noise eigenvalues are set to zero."""
    vals, vecs = np.linalg.eigh((mat + mat.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """||mu1 - mu2||^2 + tr(cov1) + tr(cov2) - 2 tr((cov1 cov2)^(1/2)), in float64.

    tr((cov1 cov2)^(1/2)) is computed as the sum of square roots of the eigenvalues of s cov2 s with s = cov1^(1/2)
    (similar to cov1 cov2, but symmetric PSD), so rank-deficient covariances (fewer videos than 400) need neither
    scipy's sqrtm of a non-symmetric product nor an eps offset, and the result stays real. Rounding can make an
    exact zero come out as -1e-12; the distance is clamped at 0.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != mu1.shape * 2:
        raise ValueError(f"shape mismatch: mu {mu1.shape}, {mu2.shape}; cov {cov1.shape}, {cov2.shape}")
    s1 = _psd_sqrt(cov1)
    middle = s1 @ cov2 @ s1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt
    return float(max(value, 0.0))


def fvd_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    mu1, cov1 = a.mean_cov()
    mu2, cov2 = b.mean_cov()
    return frechet_distance(mu1, cov1, mu2, cov2)
