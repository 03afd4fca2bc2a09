"""Metric speed: batched torch SSIM + PSNR vs scikit-image per frame (same run, same frames), and I3D frames/s.

SSIM + PSNR: BENCH_VIDEOS videos (default 100, the issue's size) x 464 frames x 64x64x3, as a degrading prediction
(noise growing over time) of smooth frames, quantised to uint8 like real predictions. Torch scores every video;
scikit-image (the per-frame loop an eval script would run) scores the first BENCH_SKIMAGE_VIDEOS videos (default 3)
and its time is scaled to all videos, since it is the slow side. Wall clock and CPU seconds are both printed. Values are compared on the frames both scored.
I3D: frames per second of FVD feature extraction (resize to 224 + InceptionI3d) on CPU with RANDOM weights: a speed
figure only, the features are meaningless. Nothing here asserts on time.

On a shared machine run it with OMP_WAIT_POLICY=PASSIVE: OpenMP threads otherwise busy-wait at every op's barrier,
and when a neighbour holds the other core the 2-thread torch run burns ~5x the CPU (measured: 0.4x vs 5.5x skimage).

    pytest -s -o addopts="" tests/benchmarks/bench_metrics.py
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from vidbench.metrics import frame
from vidbench.metrics.fvd import I3DFeatures

VIDEOS = int(os.environ.get("BENCH_VIDEOS", 100))
SKIMAGE_VIDEOS = int(os.environ.get("BENCH_SKIMAGE_VIDEOS", 3))
FRAMES, SIZE, THREADS = 464, 64, 2


def _video_pair(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Target and prediction [T,3,64,64] float in [0,1], from uint8."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(FRAMES, 3, 8, 8, generator=g)
    target = torch.nn.functional.interpolate(coarse, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    sigma = torch.linspace(0.01, 0.3, FRAMES).view(-1, 1, 1, 1)
    pred = target + sigma * torch.randn(target.shape, generator=g)
    quantise = lambda x: (x.clamp(0, 1) * 255).round() / 255  # noqa: E731
    return quantise(pred), quantise(target)


def _skimage_frame(p: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    s = structural_similarity(p, t, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0,
                              channel_axis=2)
    return s, peak_signal_noise_ratio(t, p, data_range=1.0)


def test_ssim_psnr_speed_vs_skimage():
    torch.set_num_threads(THREADS)
    pairs = [_video_pair(i) for i in range(SKIMAGE_VIDEOS)]

    torch_s = torch_cpu = 0.0
    ours = []
    for i in range(VIDEOS):  # videos are generated one at a time (all 100 would need ~4.5 GB); only scoring is timed
        pred, target = pairs[i] if i < SKIMAGE_VIDEOS else _video_pair(i)
        start, cpu = time.perf_counter(), time.process_time()
        ours.append((frame.ssim(pred, target), frame.psnr(pred, target)))
        torch_s += time.perf_counter() - start
        torch_cpu += time.process_time() - cpu

    start, cpu = time.perf_counter(), time.process_time()
    ref = []
    for pred, target in pairs:
        p_np, t_np = pred.permute(0, 2, 3, 1).double().numpy(), target.permute(0, 2, 3, 1).double().numpy()
        ref.append(np.array([_skimage_frame(p, t) for p, t in zip(p_np, t_np)]))
    skimage_s = (time.perf_counter() - start) * VIDEOS / SKIMAGE_VIDEOS
    skimage_cpu = (time.process_time() - cpu) * VIDEOS / SKIMAGE_VIDEOS

    ssim_diff = max(np.abs(ours[i][0].numpy() - ref[i][:, 0]).max() for i in range(SKIMAGE_VIDEOS))
    psnr_diff = max(np.abs(ours[i][1].numpy() - ref[i][:, 1]).max() for i in range(SKIMAGE_VIDEOS))
    frames = VIDEOS * FRAMES
    print(f"\nSSIM+PSNR, {VIDEOS} videos x {FRAMES} frames x {SIZE}x{SIZE}x3, {THREADS} threads:")
    print(f"  torch (batched)     {torch_s:8.1f} s  {frames / torch_s:8.0f} frames/s")
    print(f"  skimage (per frame) {skimage_s:8.1f} s  {frames / skimage_s:8.0f} frames/s "
          f"(measured on {SKIMAGE_VIDEOS} videos, scaled)")
    print(f"  speedup {skimage_s / torch_s:.1f}x wall clock; max |diff| SSIM {ssim_diff:.2e}, PSNR {psnr_diff:.2e} dB")
    # On a shared machine wall clock mostly measures the neighbours; CPU seconds say what the work costs
    # (torch's are summed over its threads, so with THREADS cores free its wall time would be about cpu / THREADS).
    print(f"  CPU seconds: torch {torch_cpu:.1f} (all threads), skimage {skimage_cpu:.1f}; "
          f"ratio {skimage_cpu / torch_cpu:.1f}x")
    assert ssim_diff < 1e-5 and psnr_diff < 1e-5  # equal values (float32 sums: ~1e-6 dB); speed is only printed


def test_i3d_frames_per_second_cpu():
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    extractor = I3DFeatures.random_for_speed_test(device="cpu")
    video = torch.rand(1, 16, 3, SIZE, SIZE)
    extractor.features(video)  # warm-up
    start = time.perf_counter()
    repeats = 2
    for _ in range(repeats):
        feats = extractor.features(video)
    seconds = time.perf_counter() - start
    print(f"\nI3D features on CPU ({THREADS} threads, RANDOM weights, speed only): "
          f"{repeats * video.shape[1] / seconds:.1f} frames/s (1 x 16 frames of {SIZE}x{SIZE} -> 224x224)")
    assert feats.shape == (1, 400)
