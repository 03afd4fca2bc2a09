"""Protocol cards: where each protocol's conventions come from, as data (protocols.py registers the presets).

Other papers re-ran CW-VAE as a baseline with conventions of their own; to put vidbench's models beside
their tables, a preset reproduces those conventions, and its card says which facts come from the paper's
public code (file and commit) and which could not be found there. Facts gathered from the public code
only; no code of theirs is copied. A fact not found is written as "not found", never guessed.

Each card: {"source": ..., "facts": [...], "unknown": [...]}. `vidbench ls protocols --verbose` prints them.
"""

from __future__ import annotations

FDM_REPO = "github.com/plai-group/flexible-video-diffusion-modeling"
TECO_REPO = "github.com/wilson1yan/teco"

AUTHORS = {
    "source": "Clockwork VAE authors' eval script (github.com/vaibhavsaxena11/cwvae, commit 62dd505; "
              "shared/REFERENCE.md section 1)",
    "facts": [
        "36 context frames (one step of the top level with k=6, 3 levels); the first N test videos in file order",
        "1 sample per video by default; with N samples the authors keep the best by mean-over-time SSIM",
        "FVD over growing sub-sequences of the prediction (the paper); vidbench: doubling prefixes, "
        "predicted frames only",
        "SSIM/PSNR as the authors computed them: the *_cwvae metrics (skimage 0.18 defaults, per channel)",
    ],
    "unknown": ["the paper does not state the FVD clip lengths of its growing sub-sequences"],
}

FDM_COMMON = [
    f"FVD over the whole video with the ground-truth context pasted in: scripts/video_sample.py sets "
    f"samples[:, :n_obs] = the observed frames, and scripts/video_fvd.py embeds the full T-frame sample "
    f"and the test video's first T frames ({FDM_REPO}, commits 0581cf9 and 4c3d78b)",
    "n_obs (context) defaults to 36 in scripts/video_sample.py",
    "one sample per test video per FVD (--sample_idx picks which); README: 'we use 100' videos",
    "test videos: the first num_videos of the test split, taken from frame 0 (get_video_subsequence "
    "starts at 0 in test mode, improved_diffusion/video_datasets.py)",
    "I3D: TF Hub deepmind/i3d-kinetics-400/1, frames resized with TF1 tf.image.resize_bilinear to 224x224 "
    "and scaled to [-1,1]; covariances with np.cov (unbiased), scipy sqrtm "
    "(improved_diffusion/frechet_video_distance.py): the same convention as vidbench's reference FVD",
]
FDM_UNKNOWN = [
    "whether the paper's CW-VAE numbers average FVD over several sample indices: not found in the code",
    "how CW-VAE's samples were produced for their table (their own run of the authors' code or not): not "
    "found in the code",
    "test video order: FDM numbers the tfds test split (shuffle_files=False) 0..N-1 (datasets/minerl.py, "
    "datasets/mazes.py); that this equals vidbench's file order of the authors' archive is not verified",
]

CARDS = {
    "fdm-minerl@1": {
        "source": f"Flexible Diffusion Models (Harvey et al. 2022), {FDM_REPO}",
        "facts": FDM_COMMON + ["MineRL: T = 500 frames (default_T_dict['minerl']), so 36 context + 464 sampled; "
                               "FVD on 500-frame clips"],
        "unknown": FDM_UNKNOWN,
    },
    "fdm-mazes@1": {
        "source": f"Flexible Diffusion Models (Harvey et al. 2022), {FDM_REPO}",
        "facts": FDM_COMMON + ["GQN Mazes: T = 300 frames (default_T_dict['mazes_cwvae']), so 36 context + 264 "
                               "sampled; FVD on 300-frame clips"],
        "unknown": FDM_UNKNOWN,
    },
}

# TECO gets a card but no preset: its CW-VAE numbers are on other data than vidbench's datasets.
TECO_CARD = {
    "source": f"TECO (Yan et al. 2022), {TECO_REPO}",
    "facts": [
        "TECO's datasets are its own: DMLab (40k trajectories of 300 64x64 frames) and Minecraft (200k "
        "trajectories of 300 128x128 frames), plus Habitat and Kinetics-600 (README, configs/*.yaml); not "
        "MineRL Navigate or GQN Mazes, so no preset here reproduces its tables",
        "ground-truth context pasted into the samples before FVD: scripts/sample.py sets "
        "fake[:, :open_loop_ctx] = real[:, :open_loop_ctx] (commit 4a894bb)",
        "open_loop_ctx: 36 in configs/dmlab.yaml; 300-frame sequences (seq_len, eval_seq_len)",
        "FVD in batches of 256 videos, reported as mean +/- std over the batches (scripts/compute_fvd.py)",
        "frames resized with TF2 tf.image.resize (half-pixel bilinear, unlike TF1 resize_bilinear) before "
        "TF Hub i3d-kinetics-400/1 (teco/fvd.py); Fréchet distance by tensorflow_gan",
    ],
    "unknown": [
        "the context length used for the Minecraft table and the number of test videos per FVD: "
        "sample.py takes both on the command line (-o, -n); the values behind the paper's tables are not in the code",
    ],
}


def card_lines(card: dict, indent: str = "    ") -> list[str]:
    lines = [f"{indent}source: {card['source']}"]
    lines += [f"{indent}- {fact}" for fact in card.get("facts", [])]
    return lines + [f"{indent}- unknown: {u}" for u in card.get("unknown", [])]
