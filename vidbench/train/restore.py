"""Trained models back from their checkpoints, for evaluate, sample, analyze and the demo."""

from __future__ import annotations

from vidbench.errors import VidbenchError
from vidbench.models.base import VideoModel, model_from_config
from vidbench.train.checkpoint import checkpoint_path, load_checkpoint


def load_trained(run_dir_or_checkpoint, device="cpu") -> VideoModel:
    """The model of a run folder (its checkpoint.pt) or of a checkpoint file, in eval mode."""
    path = checkpoint_path(run_dir_or_checkpoint)
    return model_from_checkpoint(load_checkpoint(path, map_location=device), path).to(device).eval()


def model_from_checkpoint(state: dict, path) -> VideoModel:
    """Rebuild the model a loaded checkpoint describes and put its weights in."""
    try:
        model = model_from_config(state["config"]["model"])
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as e:
        raise VidbenchError(f"{path}: weights do not fit the model its config describes ({str(e).splitlines()[0]})") from e
    return model.eval()
