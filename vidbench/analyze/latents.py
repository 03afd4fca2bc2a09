"""What the levels of a trained CW-VAE hold: the paper's Table 2 and Figure 7, from a checkpoint.

    vidbench analyze kl models/cwvae-mmnist-mmnist              # -> leaderboard/analysis/kl-<run>.json
    vidbench analyze levels models/cwvae-mmnist-mmnist          # -> leaderboard/analysis/levels-<run>.png

kl: KL(posterior || prior) of every level, summed over the time steps of a sequence and averaged over
test sequences (paper Table 2: "summed over time steps of a training sequence"; 100 frames, the training
length). The KL bounds the information a level takes in from the frames.

levels: open-loop predictions where one level follows its prior instead of its posterior over the context
(paper Figure 7: "only the lower and middle levels have access to the context images but the top level is
blind"), beside the ground truth and a normal prediction. What stays consistent with the context is held
by the levels that saw it; what changes was held by the blind level. Alongside the image, the mean SSIM to
the ground truth of normal and blind predictions says it as a number. The paper gave 8 context frames here;
vidbench's models take whole top-level blocks (k^(L-1) frames, 36 at k=6: the authors' own eval rule), so
the default context is that minimum.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import torch

from vidbench.errors import VidbenchError
from vidbench.evaluate.distributed import pick_device
from vidbench.fileio import atomic_write_bytes, atomic_write_json
from vidbench.locking import check_output_file
from vidbench.models.base import sampling_generator
from vidbench.options import check_options
from vidbench.report import paper

DEFAULT_OUT = Path("leaderboard") / "analysis"
TABLE2_LENGTH = 100  # frames per sequence: the authors' training sequence length


def load(run_or_checkpoint, device="cpu"):
    """(model, checkpoint path, run config, sha256 of the bytes loaded) of a run folder or checkpoint file."""
    from vidbench.train import model_from_checkpoint
    from vidbench.train.checkpoint import checkpoint_path, read_checkpoint

    path = checkpoint_path(run_or_checkpoint)
    state, sha256 = read_checkpoint(path, map_location=device)
    model = model_from_checkpoint(state, path).to(device).eval()
    if not hasattr(model, "observe"):
        raise VidbenchError(f"{path}: model {model.config.get('name')} has no latent levels to analyse; "
                            f"`vidbench analyze` takes a CW-VAE family checkpoint (cwvae, notmpabs, rssm)")
    return model, path, state.get("config", {}), sha256


def _test_split(dataset, run_config):
    from vidbench.data.store import PreparedSplit

    root = dataset if dataset is not None else (run_config.get("dataset") or {}).get("root")
    if root is None:
        raise VidbenchError("the checkpoint does not name its dataset; pass --dataset")
    return PreparedSplit(root, "test")


def _videos(split, first: int, count: int, length: int, options: str, fix) -> torch.Tensor:
    """count test sequences from `first`, cut to `length` frames. For the error a too-short sequence gets:
    options, the flags that set the length ("--length 100"), and fix(frames the shortest has) -> the advice."""
    from vidbench.data.loader import to_model_input

    if count > len(split):
        raise VidbenchError(f"--num-videos {count}: the test split of {split.root} has {len(split)} sequences")
    if first + count > len(split):  # analyze levels: --video is the first of the --num-videos averaged
        raise VidbenchError(f"--video {first}: the test split of {split.root} has {len(split)} sequences; with "
                            f"--num-videos {count} choose --video 0..{len(split) - count}")
    short = [i for i in range(first, first + count) if split.length(i) < length]
    if short:
        shortest = min(split.length(i) for i in short)
        raise VidbenchError(f"{options}: needs {length} frames per test sequence, but {split.root}'s sequence "
                            f"{short[0]} has {split.length(short[0])}; {fix(shortest)}")
    clips = np.stack([split.sequence(i)[:length] for i in range(first, first + count)])
    return to_model_input(torch.from_numpy(clips))


def run_label(path: Path) -> str:
    """The run folder's name (as `vidbench evaluate` labels rows), or the checkpoint file's stem."""
    path = Path(path)
    return path.parent.name if path.name == "checkpoint.pt" else path.stem


@torch.no_grad()
def kl_per_level(model, videos: torch.Tensor, batch_size: int = 8, seed: int = 0) -> np.ndarray:
    """KL of each level summed over its steps, per video: float64 [videos, levels] (level 0 = lowest)."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for start in range(0, len(videos), batch_size):
        levels = model.observe(videos[start : start + batch_size], generator=generator)
        rows.append(torch.stack([res["kl"].sum(1) for res in levels], 1).double())
    return torch.cat(rows).numpy()


def analyze_kl(run_or_checkpoint, *, dataset=None, num_videos: int = 16, length: int = TABLE2_LENGTH,
               batch_size: int = 8, seed: int = 0, out=None, device="cpu") -> dict:
    """Table 2 for one checkpoint; the record is written to OUT (default leaderboard/analysis/kl-<run>.json)."""
    check_options(num_videos=num_videos, length=length, batch_size=batch_size, seed=seed)
    device = pick_device(device, 1)
    model, path, run_config, sha256 = load(run_or_checkpoint, device)
    split = _test_split(dataset, run_config)
    videos = _videos(split, 0, num_videos, length, f"--length {length}",
                     lambda frames: f"choose --length {frames} or less").to(device)
    values = kl_per_level(model, videos, batch_size, seed)
    levels = values.shape[1]
    reference = paper.TABLE2.get(levels)
    record = {
        "model": run_label(path), "family": model.config.get("name"), "checkpoint": str(path),
        "checkpoint_sha256": sha256, "levels": levels,
        "k": model.config.get("k") if levels > 1 else None, "dataset": split.dataset,
        "test_data_sha256": split.info.get("data_sha256"), "num_sequences": num_videos, "length": length,
        "seed": seed, "kl_per_level": [float(v) for v in values.mean(0)],
        "kl_per_level_std": [float(v) for v in values.std(0)],
        "paper_table2": ({"k": reference["k"], "kl": list(reference["kl"])} if reference else None),
        "note": "KL(q||p) per level (level 1 = lowest) summed over the time steps of each sequence, mean over "
                "test sequences; paper Table 2 is for full-size Moving MNIST models (nats).",
    }
    out = check_output_file(Path(out) if out else DEFAULT_OUT / f"kl-{record['model']}.json")
    atomic_write_json(out, record)
    record["path"] = str(out)
    return record


def kl_lines(record: dict) -> list[str]:
    lines = [f"{record['model']}: {record['levels']} level(s), k={record['k']}, {record['num_sequences']} test "
             f"sequences x {record['length']} frames"]
    ref = record.get("paper_table2") or {}
    for level, (value, std) in enumerate(zip(record["kl_per_level"], record["kl_per_level_std"])):
        paper_value = f"   paper ({record['levels']}-level, k={ref.get('k')}): {ref['kl'][level]:.2f}" if ref else ""
        lines.append(f"  level {level + 1}: {value:10.2f} +- {std:.2f}{paper_value}")
    return lines


# ---------------------------------------------------------------- Figure 7


def _parse_levels(level_args, levels: int) -> list[int]:
    """'top' or 1-based level numbers -> 0-based indices."""
    chosen = []
    for arg in level_args or ["top"]:
        try:
            index = levels - 1 if str(arg) == "top" else int(arg) - 1
        except ValueError:
            index = -1
        if not 0 <= index < levels:
            raise VidbenchError(f"--level {arg}: the model has levels 1..{levels} (or 'top')")
        chosen.append(index)
    return chosen


@torch.no_grad()
def analyze_levels(run_or_checkpoint, *, dataset=None, level=None, video: int = 0, num_videos: int = 4,
                   context: int | None = None, horizon: int = 64, num_samples: int = 3, frames_shown: int = 10,
                   seed: int = 0, out=None, device="cpu") -> dict:
    """Figure 7 for one checkpoint: a PNG grid for test video `video`, and mean SSIM over `num_videos`."""
    from vidbench.metrics.frame import ssim

    check_options(video=video, num_videos=num_videos, context=context, horizon=horizon, num_samples=num_samples,
                  seed=seed)
    device = pick_device(device, 1)
    model, path, run_config, sha256 = load(run_or_checkpoint, device)
    if "prior_levels" not in inspect.signature(model.predict).parameters:
        raise VidbenchError(f"{path}: model {model.config.get('name')} cannot run a level on its prior")
    levels = _parse_levels(level, int(model.config.get("levels", 1)))
    context = context or model.context_multiple
    split = _test_split(dataset, run_config)
    clips = _videos(split, video, num_videos, context + horizon, f"--context {context} --horizon {horizon}",
                    lambda frames: f"choose --horizon {frames - context} or less" if frames > context
                    else f"choose a shorter --context than {frames} frames").to(device)
    inputs, truth = clips[:, :context], clips[:, context:]

    def predict(prior_levels, seed_offset):
        generator = sampling_generator(seed + seed_offset)  # the same samples on every device
        return model.predict(inputs, horizon, num_samples=num_samples, generator=generator, prior_levels=prior_levels)

    runs = {"normal": predict((), 0)}
    for index in levels:
        runs[f"level {index + 1} from prior"] = predict((index,), 1 + index)
    target = truth[:, None].expand_as(runs["normal"])
    scores = {name: float(ssim(pred, target).mean()) for name, pred in runs.items()}
    label = run_label(path)
    out = check_output_file(Path(out) if out else DEFAULT_OUT / f"levels-{label}.png")
    _grid(out, clips[0], runs, context, frames_shown, title=f"{label}: video {video}, {context} context frames")
    record = {"model": label, "checkpoint": str(path), "checkpoint_sha256": sha256, "video": video,
              "num_videos": num_videos, "context": context, "horizon": horizon, "num_samples": num_samples,
              "seed": seed, "mean_ssim_to_truth": scores, "image": str(out)}
    atomic_write_json(out.with_suffix(".json"), record)
    return record


def _grid(path: Path, clip: torch.Tensor, runs: dict, context: int, frames_shown: int, title: str) -> None:
    """Rows: ground truth, then every sample of every run, at `frames_shown` evenly spaced predicted frames
    (plus the last context frame)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    horizon = clip.shape[0] - context
    steps = np.unique(np.linspace(0, horizon - 1, min(frames_shown, horizon)).round().astype(int))
    rows = [("ground truth", clip[context - 1 :][np.concatenate([[0], steps + 1])])]
    for name, pred in runs.items():
        for s in range(pred.shape[1]):
            rows.append((f"{name} #{s + 1}", torch.cat([clip[context - 1 : context], pred[0, s][steps]])))
    fig, axes = plt.subplots(len(rows), len(steps) + 1, figsize=(0.9 * (len(steps) + 1) + 1.6, 0.9 * len(rows) + 0.5),
                             squeeze=False)
    for r, (name, frames) in enumerate(rows):
        for c, frame in enumerate(frames):
            ax = axes[r, c]
            image = frame.permute(1, 2, 0).cpu().numpy()
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("ctx" if c == 0 else f"+{steps[c - 1] + 1}", fontsize=7)
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
