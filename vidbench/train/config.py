"""A training run's resolved config: defaults from the authors' code, --set overrides, run folders, the
optimiser of each model family, and the guard that refuses to resume a run under another config."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from vidbench.errors import VidbenchError
from vidbench.registry import MODELS
from vidbench.train.optim import TFAdam

DEFAULT_BATCH_SIZE = 50   # authors' code (the paper says 100)
DEFAULT_SEQ_LEN = 100     # authors' training sequence length for every dataset
DEFAULT_LR = 3e-4         # used only when the model config names none
# The optimiser of each model's original code; a model config's own keys ("optimizer", "adam_eps",
# "amsgrad", "grad_clip", "lr") win. CW-VAE's code is TensorFlow: Adam in the epsilon-hat form with eps 1e-4,
# global-norm clip 10000 (REFERENCE.md section 1). SVG and VTA are PyTorch code: torch's Adam (eps 1e-8).
OPTIMIZERS = {
    "tf-adam": {"adam_eps": 1e-4, "grad_clip": 10000.0},
    "adam": {"adam_eps": 1e-8, "grad_clip": None},
}
FAMILY_OPTIMIZER = {"svg": "adam", "vta": "adam"}  # everything else follows the authors' TF code
# `vidbench train` options that change only float rounding (tests/test_train_modes.py), not what is computed:
# recorded in config.json but not part of a run's identity, so a run may resume with them changed. --amp
# changes results and is part of it.
SPEED_OPTIONS = ("compile", "channels_last", "cuda_graphs")
DEFAULT_EPOCHS = {"mmnist": 300, "mazes": 100, "minerl": 600}  # REFERENCE.md section 1


def parse_set_options(items) -> dict:
    """--set key=value ... -> {key: value}; values parse as JSON (numbers, true/false, lists), else string."""
    overrides = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise VidbenchError(f"--set {item!r}: expected key=value")
        try:
            overrides[key] = json.loads(text)
        except json.JSONDecodeError:
            overrides[key] = text
    return overrides


# --set keys that are not model settings: the family and preset are chosen by --model and --preset.
RESERVED_SET_KEYS = {"name": "--model", "preset": "--preset"}


def check_overrides(overrides: dict) -> None:
    """--set key=value pairs that cannot make a model: a reserved key, or a number that is NaN/inf."""
    for key, value in (overrides or {}).items():
        if key in RESERVED_SET_KEYS:
            raise VidbenchError(f"--set {key}={value}: the model's {key} is chosen by {RESERVED_SET_KEYS[key]}, "
                                f"not --set")
        if isinstance(value, float) and not math.isfinite(value):
            raise VidbenchError(f"--set {key}={value}: must be a finite number")


def default_preset(model_name: str, dataset: str) -> str | None:
    """A family's preset named after the dataset when it has one (cwvae + mmnist -> preset mmnist)."""
    presets = getattr(MODELS.get(model_name), "presets", ())
    return dataset if dataset in presets else None


def default_run_dir(model_name: str, preset: str | None, dataset: str) -> Path:
    # An outside model's "package.module:attr" name becomes package.module-attr (no colon in a folder name).
    return Path("models") / "-".join(p.replace(":", "-") for p in (model_name, preset, dataset) if p)


def _identity(config: dict) -> dict:
    """The parts of a run config that change its result (the dataset's location and the step budget don't)."""
    train = {k: v for k, v in config["train"].items() if k not in SPEED_OPTIONS}
    return {"model": config["model"], "train": train,
            "dataset": {k: v for k, v in config["dataset"].items() if k != "root"}}


def _differences(old, new, prefix="") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [] if old == new else [f"{prefix[:-1]}: {old!r} -> {new!r}"]


def check_same_config(stored: dict, config: dict, where: Path) -> None:
    diffs = _differences(_identity(stored), _identity(config))
    if diffs:
        shown = "; ".join(diffs[:3]) + (f" (+{len(diffs) - 3} more)" if len(diffs) > 3 else "")
        raise VidbenchError(f"{where}: this run was made with another config ({shown}); "
                            f"rerun with the original options or choose another --run-dir")


def optimizer_config(model_config: dict) -> dict:
    name = model_config.get("optimizer", FAMILY_OPTIMIZER.get(model_config.get("name"), "tf-adam"))
    if name not in OPTIMIZERS:
        raise VidbenchError(f"model option optimizer={name!r}: choose one of {', '.join(OPTIMIZERS)}")
    defaults = OPTIMIZERS[name]
    clip = model_config.get("grad_clip", defaults["grad_clip"])
    return {"optimizer": name, "adam_eps": float(model_config.get("adam_eps", defaults["adam_eps"])),
            "amsgrad": bool(model_config.get("amsgrad", False)), "grad_clip": None if clip is None else float(clip)}


def make_optimizer(parameters, train_cfg: dict, capturable: bool = False) -> torch.optim.Optimizer:
    """capturable: the optimiser's CUDA-graph-safe form (--cuda-graphs; vidbench/train/graphed.py)."""
    if train_cfg["optimizer"] == "tf-adam":
        if train_cfg["amsgrad"]:
            raise VidbenchError("amsgrad is not available with the TF-style Adam; set optimizer=adam")
        return TFAdam(parameters, lr=train_cfg["lr"], eps=train_cfg["adam_eps"], capturable=capturable)
    parameters = list(parameters)
    # PyTorch's fused CPU kernel: one pass over each tensor instead of one per elementwise op (same update)
    fused = not capturable and all(p.device.type == "cpu" for p in parameters)
    return torch.optim.Adam(parameters, lr=train_cfg["lr"], eps=train_cfg["adam_eps"], amsgrad=train_cfg["amsgrad"],
                            capturable=capturable, fused=fused or None)
