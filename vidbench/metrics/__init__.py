"""Metrics, registered lazily by name (LPIPS and FVD import their networks only when used).

kind="frame": a function (pred, target) [..., C, H, W] in [0, 1] -> per-frame values [...] (vidbench.metrics.frame).
kind="network": a class built once with (weights_dir=None, device="cpu"), then called like a frame metric (LPIPS).
kind="video": the FVD feature extractor class; features are streamed into FeatureStats (vidbench.metrics.fvd).
kind="fvd_features": computed from FVD's stored per-video features (KVD); needs fvd in the same run.
kind="metadata": a function (predictions uint8 [V,S,T,H,W,C], split, videos, context, device=None) -> {output:
[V,S,T]} that reads each test video's metadata (`needs_metadata` keys), running any network it has on the
evaluation's device; every name in `outputs` is scored as a frame metric.
The conventions behind each name are in REFERENCE.md section 2 and the module docstrings.
"""

from vidbench.registry import METRICS

METRICS.add("ssim", "vidbench.metrics.frame:ssim", kind="frame", higher_is_better=True,
            about="SSIM, tf.image.ssim conventions: 11x11 Gaussian (sigma 1.5), data range 1, valid map")
# scores_raw: the authors' eval scored raw decoder floats; an in-process model that has them is scored on them.
METRICS.add("ssim_cwvae", "vidbench.metrics.frame:ssim_cwvae", kind="frame", higher_is_better=True, scores_raw=True,
            about="SSIM as the CW-VAE authors' eval: skimage 0.18 defaults (7x7 uniform, data range 2), per channel")
METRICS.add("psnr", "vidbench.metrics.frame:psnr", kind="frame", higher_is_better=True,
            about="PSNR per frame, 10*log10(1/MSE), data range 1, capped at 100 dB for identical frames")
METRICS.add("psnr_cwvae", "vidbench.metrics.frame:psnr_cwvae", kind="frame", higher_is_better=True, scores_raw=True,
            about="PSNR per channel then averaged (CW-VAE authors' eval), data range 1")
METRICS.add("lpips", "vidbench.metrics.lpips_metric:LPIPS", kind="network", higher_is_better=False,
            about="LPIPS v0.1, AlexNet, inputs in [-1, 1], grayscale repeated to 3 channels",
            weights=("alexnet-owt-7be5be79.pth",))
METRICS.add("fvd", "vidbench.metrics.fvd:I3DFeatures", kind="video", higher_is_better=False,
            about="FVD: Kinetics-400 I3D logits of videos resized (TF1 bilinear) to 224, Frechet distance in float64",
            weights=("i3d_torchscript.pt", "i3d_pretrained_400.pt", "rgb_imagenet.pt"))
# Computed with FVD from the same per-video I3D features (evaluate/fvd_features.py): no network pass of its own.
METRICS.add("kvd", "vidbench.metrics.kvd:kvd_with_interval", kind="fvd_features", higher_is_better=False,
            about="KVD (the FVD paper's kernel distance): unbiased MMD^2, kernel (x.y/400 + 1)^3, on FVD's I3D "
                  "features; recorded wherever fvd is, with an interval on the population KVD")
# Chance levels: vidbench.metrics.readout.CHANCE (a test keeps them equal; here without importing torch).
# definition: bumped when the readout changes meaning, so cached per-batch values of another one are recomputed.
METRICS.add("readout", "vidbench.metrics.readout:frame_values", kind="metadata",
            outputs=("readout_accuracy", "readout_position_error"),
            higher_is_better={"readout_accuracy": True, "readout_position_error": False},
            definition="4-blur", chance={"readout_accuracy": 0.1, "readout_position_error": 5.4}, needs_metadata=("positions", "labels"),
            # Beside chance, what gaming reaches (readout.py's table, 24 real sequences): written into results.
            gamed={"hedging: both context digits on each track": {"readout_accuracy": 0.070,
                                                                 "readout_position_error": 5.69},
                   "a digit-free blob on each track": {"readout_accuracy": 0.007, "readout_position_error": 5.97}},
            about="Moving MNIST readout: fraction of (frame, digit) pairs tracked (read confidently as the true digit, "
                  "over 10 digits and 'not one digit', by a CNN trained on the train digit pool, within 3 px of the "
                  "recorded place), and position error (px) with untracked digits counted as 6 px")
