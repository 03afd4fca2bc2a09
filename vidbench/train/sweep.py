"""The CW-VAE paper's baseline tuning as one command: a grid of learning rates and decoder stds.

Paper (appendix): every baseline's learning rate was tuned in [1e-4, 1e-3] and its decoder std in [0.1, 1].
`vidbench sweep` trains one run per (lr, std) pair, each in its own run folder named after its settings, and,
with --results, evaluates each on a protocol into that folder, so `vidbench leaderboard --results DIR` shows
the runs side by side (one row per run name):

    vidbench sweep --model svg --dataset mmnist --lr 1e-4,3e-4,1e-3 --dec-std 0.1,0.3,1 --steps 20000 \\
        --results leaderboard/sweep --protocol mmnist@1
    vidbench leaderboard --results leaderboard/sweep --out leaderboard/sweep

The same runs by hand: `vidbench train --model svg --dataset mmnist --set lr=3e-4 --set dec_std=0.3 --run-dir
models/sweep/svg-mmnist-mmnist-lr0.0003-std0.3` per pair, then `vidbench evaluate --checkpoint <run dir>`.
The decoder std's config key is `dec_std` (CW-VAE family, SVG) or `obs_std` (VTA); values outside the paper's
ranges are refused, and so is a model whose config has no such key (an outside model, copy-last): the sweep
refuses it, naming the key, rather than skip the axis and train runs that differ only in their names.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from vidbench.errors import VidbenchError

LR_RANGE = (1e-4, 1e-3)
STD_RANGE = (0.1, 1.0)
STD_KEY = {"vta": "obs_std"}  # every other family: "dec_std"


def parse_values(option: str, text: str) -> list[float]:
    """The comma-separated numbers of --lr / --dec-std; anything else is one error line naming the option."""
    values = []
    for item in (v.strip() for v in str(text).split(",")):
        if not item:
            continue
        try:
            values.append(float(item))
        except ValueError:
            raise VidbenchError(f"{option} {text}: {item!r} is not a number (give comma-separated numbers, "
                                f"e.g. {option} 1e-4,3e-4)") from None
    return values


def check_model_axes(model_name: str, preset) -> None:
    """The model's config must have the keys the sweep sets (lr and the decoder std): built once, untrained."""
    from vidbench.models import create_model

    config = create_model(model_name, preset).config
    named = f"model {model_name}" + (f" (preset {preset})" if preset else "")
    for option, key in (("--lr", "lr"), ("--dec-std", STD_KEY.get(model_name, "dec_std"))):
        if key not in config:
            raise VidbenchError(f"{option}: {named} has no config option {key!r} to sweep (its options: "
                                f"{', '.join(sorted(config)) or 'none'}); train it with `vidbench train` instead")


def grid(model_name: str, lrs, stds) -> list[tuple[str, dict]]:
    """[(run name suffix, config overrides)] for every (lr, std) pair, each checked against the paper's ranges."""
    for name, values, (low, high) in (("--lr", lrs, LR_RANGE), ("--dec-std", stds, STD_RANGE)):
        if not values:
            raise VidbenchError(f"{name}: give at least one value")
        outside = [v for v in values if not low <= v <= high]
        if outside:
            raise VidbenchError(f"{name} {', '.join(f'{v:g}' for v in outside)}: outside the paper's tuning "
                                f"range [{low:g}, {high:g}]")
    key = STD_KEY.get(model_name, "dec_std")
    return [(f"lr{lr:g}-std{std:g}", {"lr": float(lr), key: float(std)}) for lr, std in itertools.product(lrs, stds)]


def sweep(model_name: str, dataset_root, *, lrs, stds, preset=None, out_dir="models/sweep", results=None,
          protocol=None, train_kwargs=None, evaluate_kwargs=None, echo=print) -> list[Path]:
    """Train (and with `results`, evaluate) one run per grid point; returns the run folders. Rerunning resumes
    each run (the trainer's resume) and reuses each evaluation's cache."""
    from vidbench.data.store import PreparedSplit
    from vidbench.options import OPTIONS, check_options
    from vidbench.train.config import default_preset
    from vidbench.train.loop import train

    points = grid(model_name, lrs, stds)
    check_options(**{k: v for k, v in (train_kwargs or {}).items() if k in OPTIONS})
    dataset = PreparedSplit(dataset_root, "train").dataset
    preset = preset if preset is not None else default_preset(model_name, dataset)
    check_model_axes(model_name, preset)
    if results is not None:  # the protocol and test split, checked before the first run trains, not after it
        from vidbench.evaluate.contexts import protocol_split

        protocol_split(dataset_root, protocol, **{k: v for k, v in (evaluate_kwargs or {}).items()
                                                  if k in ("horizon", "num_videos", "num_samples", "reduce")})
    runs = []
    for suffix, overrides in points:
        run_dir = Path(out_dir) / f"{model_name.replace(':', '-')}-{preset}-{dataset}-{suffix}"
        echo(f"sweep: {run_dir.name} ({', '.join(f'{k}={v:g}' for k, v in overrides.items())})")
        train(model_name, dataset_root, preset=preset, overrides=overrides, run_dir=run_dir, echo=echo,
              **(train_kwargs or {}))
        if results is not None:
            from vidbench.evaluate import evaluate

            evaluate(dataset_root, checkpoint=run_dir, protocol=protocol, out=Path(results) / f"{run_dir.name}.json",
                     **(evaluate_kwargs or {}))
        runs.append(run_dir)
    return runs
