"""KVD: the kernel distance the FVD paper proposed beside FVD, on the same I3D features (no other network).

    polynomial_kernel(x [n,D], y [m,D]) -> [n,m]: (x.y / D + 1)^3 (KID's kernel, Bińkowski et al. 2018)
    mmd2_unbiased(x [n,D], y [m,D]) -> float: the classic U-statistic of MMD^2 for independent sets
    kvd_with_interval(real [V,D], fake [V,S,D], level) -> Estimate (value, low, high; covers the population KVD)
    paired_kvd_difference(real, fake_a, fake_b, level) -> Estimate of KVD(a) - KVD(b)

Why a U-statistic over *videos*: generated video i is predicted from test video i's context, so it is not
independent of real video i. Each video is one unit z_i = (x_i, y_i1..y_iS) and

    h(z_i, z_j) = k(x_i, x_j) + mean_st k(y_is, y_jt) - mean_s k(x_i, y_js) - mean_s k(x_j, y_is),   i != j,

whose mean over pairs of distinct videos is unbiased for MMD^2 between the real and the generated feature
distributions (every term pairs two different videos, hence independent draws), at every set size: unlike
FVD, KVD's expected value does not move with the number of videos. Its variance comes from the same videos:
the delete-one jackknife of a U-statistic is consistent, and its leave-one-out values are exact row sums of
the pair matrix (no refitting). The interval is the estimate +- t_{V-1} jackknife standard errors; a paired
difference is the U-statistic of h_a - h_b on the same pairs, with its own jackknife. Coverage and direction
errors measured by simulation: docs/distances.md.

Units: raw MMD^2 on I3D logits (no x1000 scaling); it can be slightly negative when the distance is ~0.
"""

from __future__ import annotations

import numpy as np

from vidbench.metrics.jackknife import Estimate, as_samples, u_statistic_interval

# Rows of generated features per block of the generated-generated kernel: bounds memory at many samples per video.
KERNEL_BLOCK_ROWS = 4096


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """MMD^2 U-statistic of two independent sets (the diagonal terms of the within-set kernels left out)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n, m = len(x), len(y)
    kxx, kyy = polynomial_kernel(x, x), polynomial_kernel(y, y)
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * polynomial_kernel(x, y).mean())


def pair_matrix(real, fake) -> np.ndarray:
    """[V, V] h(z_i, z_j) with a zero diagonal. real [V,D]; fake [V,S,D] or [V,D]."""
    real, fake = np.asarray(real, np.float64), as_samples(fake)
    v, s, d = fake.shape
    flat = fake.reshape(v * s, d)
    cross = polynomial_kernel(real, flat).reshape(v, v, s).mean(axis=2)  # [i, j]: mean_s k(x_i, y_js)
    fake_fake = np.empty((v, v))
    step = max(1, KERNEL_BLOCK_ROWS // s)
    for start in range(0, v, step):
        rows = flat[start * s:(start + step) * s]
        block = polynomial_kernel(rows, flat).reshape(-1, s, v, s).mean(axis=(1, 3))
        fake_fake[start:start + step] = block
    h = polynomial_kernel(real, real) + fake_fake - cross - cross.T
    np.fill_diagonal(h, 0.0)
    return h


def mmd2_over_videos(real, fake) -> float:
    """The KVD value alone: the mean of the pair matrix over distinct videos."""
    h = pair_matrix(real, fake)
    return float(h.sum() / (len(h) * (len(h) - 1)))


def kvd_with_interval(real, fake, level: float = 0.95) -> Estimate:
    return u_statistic_interval(pair_matrix(real, fake), level, "the population KVD (unbiased at every set size)")


def paired_kvd_difference(real, fake_a, fake_b, level: float = 0.95) -> Estimate:
    h = pair_matrix(real, fake_a) - pair_matrix(real, fake_b)
    return u_statistic_interval(h, level, "the population KVD difference (unbiased at every set size)")
