"""What `vidbench evaluate --model NAME` scores when no checkpoint is named: the trained run of that model.

    vidbench evaluate --model cwvae --horizon 500      # the run under models/, its dataset, minerl@1

A model that must learn before it predicts (any network; random-frame, which keeps training frames) is
looked up among the run folders `vidbench train` writes (models/<model>-<preset>-<dataset>/config.json).
One run: it is used, with the dataset it was trained on unless --dataset says otherwise. Several: they are
listed and the user picks one. None: the two commands that would make one are printed.
"""

from __future__ import annotations

import json
from pathlib import Path

from vidbench.errors import VidbenchError

RUNS_DIR = Path("models")


def needs_training(name: str) -> bool:
    from vidbench.models import create_model

    return bool(create_model(name).needs_training)


def run_config(run: Path) -> dict | None:
    try:
        config = json.loads((run / "config.json").read_text())
        return config if isinstance(config, dict) and (run / "checkpoint.pt").exists() else None
    except (OSError, ValueError):
        return None


def trained_runs(model: str, dataset_name: str | None = None, runs_dir: Path = RUNS_DIR) -> list[Path]:
    """Run folders under runs_dir (searched two levels deep: the demo nests its runs) holding a checkpoint of
    `model`, optionally trained on dataset `dataset_name`."""
    found = []
    for config_file in sorted(Path(runs_dir).glob("*/config.json")) + sorted(Path(runs_dir).glob("*/*/config.json")):
        config = run_config(config_file.parent)
        if config is None or (config.get("model") or {}).get("name") != model:
            continue
        if dataset_name is not None and (config.get("dataset") or {}).get("name") != dataset_name:
            continue
        found.append(config_file.parent)
    return found


def run_dataset(run: Path) -> Path:
    """The prepared dataset a run was trained on: its recorded folder if it still exists, else datasets/<name>."""
    from vidbench.data.store import default_dataset_dir

    dataset = (run_config(run) or {}).get("dataset") or {}
    root = Path(dataset.get("root", ""))
    if dataset.get("root") and (root / "manifest.json").exists():
        return root
    if not dataset.get("name"):
        raise VidbenchError(f"{run / 'config.json'}: names no dataset; pass --dataset")
    return default_dataset_dir(dataset["name"])


def find_run(model: str, dataset: Path | None, runs_dir: Path = RUNS_DIR) -> Path:
    """The one trained run of `model` (on `dataset`'s data when given), or an error that says what to do."""
    dataset_name = _dataset_name(dataset) if dataset is not None else None
    runs = trained_runs(model, dataset_name, runs_dir)
    on = f" on {dataset_name}" if dataset_name else ""
    if len(runs) == 1:
        return runs[0]
    if runs:
        listed = "; ".join(str(r) for r in runs)
        raise VidbenchError(f"{len(runs)} trained {model} runs{on} under {runs_dir}/ ({listed}); "
                            f"choose one with --checkpoint RUN")
    if dataset is not None:  # already prepared (the demo's, or any folder): no need to prepare another
        make = f"`vidbench train --model {model} --dataset {dataset}`"
    else:
        make = f"`vidbench prepare minerl` then `vidbench train --model {model} --dataset minerl`"
    raise VidbenchError(f"no trained {model} run{on} under {runs_dir}/; make one with {make}, "
                        f"or name one with --checkpoint")


def _dataset_name(dataset: Path) -> str:
    from vidbench.data.store import PreparedSplit

    return PreparedSplit(dataset, "test").dataset


def resolve_target(model: str | None, checkpoint, predictions, dataset: Path | None,
                   runs_dir: Path = RUNS_DIR) -> tuple[Path | None, Path]:
    """(checkpoint, dataset) for `vidbench evaluate`: a trained model's run found when not named, and the
    dataset taken from its run when not given. `zoo:<name>` (a zoo model, vidbench/train/zoo.py) is passed on
    as it is: the loader finds its weights file and checks the manifest's sha256 on the bytes it loads."""
    if checkpoint is None and predictions is None and model is not None and needs_training(model):
        checkpoint = find_run(model, dataset, runs_dir)
    if dataset is None:
        if checkpoint is None or not Path(checkpoint).is_dir():
            raise VidbenchError("evaluate: pass --dataset (a dataset name such as minerl, or a prepared folder)")
        dataset = run_dataset(Path(checkpoint))
    return checkpoint, dataset
