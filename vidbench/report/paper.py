"""The paper's own numbers (Saxena et al. 2021, "Clockwork Variational Autoencoders"), as data.

Table 1 is committed here as reference rows for the leaderboard: a user sees their measured numbers beside
the paper's, never mixed into the measured ranks unless asked (`vidbench leaderboard --rank-paper`).
Table 2 (KL per level) sits beside `vidbench analyze kl`. Transcribed from the paper's text (../shared/
REFERENCE.md section 4); they are the paper's claims, measured with the authors' evaluation conventions
(`ssim_cwvae`, `psnr_cwvae`: scikit-image 0.18 defaults, per-channel PSNR), not by vidbench.
"""

from __future__ import annotations

# Column groups in the paper's order. The paper's datasets map to vidbench's dataset names and to the
# protocol that reproduces the authors' evaluation (36 context frames, first 100 test videos).
DATASETS = {"minerl": "MineRL Navigate", "kth": "KTH Action", "mazes": "GQN Mazes", "mmnist": "Moving MNIST"}
METRICS = ("SSIM", "PSNR", "LPIPS", "FVD")
# Paper, section 3.1: SSIM and PSNR higher is better, LPIPS and FVD lower is better.
HIGHER_IS_BETTER = {"SSIM": True, "PSNR": True, "LPIPS": False, "FVD": False}
# Paper, Table 1 caption: "we highlight the best model and those within 5% of its performance in bold".
BOLD_WITHIN = 0.05

# Table 1: averages over the frames of all evaluation sequences; {model: {dataset: (SSIM, PSNR, LPIPS, FVD)}}.
TABLE1 = {
    "CW-VAE": {"minerl": (0.65, 23.23, 0.31, 2612), "kth": (0.85, 26.52, 0.25, 2316),
               "mazes": (0.44, 13.71, 0.43, 1276), "mmnist": (0.68, 13.11, 0.26, 593)},
    "VTA": {"minerl": (0.56, 18.50, 0.35, 3305), "kth": (0.77, 22.41, 0.24, 1815),
            "mazes": (0.55, 13.51, 0.42, 1557), "mmnist": (0.58, 12.18, 0.36, 1274)},
    "RSSM": {"minerl": (0.66, 23.48, 0.31, 2646), "kth": (0.83, 26.05, 0.22, 1915),
             "mazes": (0.42, 13.56, 0.45, 1705), "mmnist": (0.64, 12.79, 0.28, 589)},
    "SVG": {"minerl": (0.56, 17.22, 0.32, 2666), "kth": (0.75, 21.46, 0.30, 1899),
            "mazes": (0.55, 13.85, 0.40, 820), "mmnist": (0.64, 11.73, 0.31, 1392)},
    "NoTmpAbs": {"minerl": (0.56, 20.39, 0.36, 2618), "kth": (0.82, 25.21, 0.37, 2209),
                 "mazes": (0.46, 13.91, 0.41, 1210), "mmnist": (0.66, 12.93, 0.26, 578)},
}
# The "Mean Rank" column as printed (two decimals); the leaderboard's tests recompute it from TABLE1.
MEAN_RANK = {"CW-VAE": 2.25, "VTA": 3.62, "RSSM": 2.75, "SVG": 3.31, "NoTmpAbs": 2.62}

# The paper's model names -> vidbench's registered model families (for lining rows up).
MODEL_FAMILY = {"CW-VAE": "cwvae", "VTA": "vta", "RSSM": "rssm", "SVG": "svg", "NoTmpAbs": "notmpabs"}

# Table 2: KL per level (level 1 = lowest), summed over the time steps of a training sequence, Moving MNIST.
# Paper, section 3.8: 2- and 3-level models use k=6, the 4-level model k=4 (to fit GPU memory).
TABLE2 = {
    4: {"k": 4, "kl": (397.10, 41.20, 2.66, 0.0001)},
    3: {"k": 6, "kl": (366.70, 45.28, 6.29)},
    2: {"k": 6, "kl": (389.40, 39.18)},
    1: {"k": None, "kl": (440.50,)},
}

# The SSIM/PSNR convention of Table 1 (vidbench.report.table.CONVENTIONS): the authors' eval.
CONVENTION = "cwvae"

SOURCE = "Saxena, Ba, Hafner: Clockwork Variational Autoencoders (NeurIPS 2021), Table 1 and Table 2"


def table1_rows() -> dict[str, dict[tuple[str, str], float]]:
    """{model: {(dataset, metric): value}} for the leaderboard's reference rows."""
    return {model: {(dataset, metric): float(value) for dataset, values in row.items()
                    for metric, value in zip(METRICS, values)}
            for model, row in TABLE1.items()}
