"""Training: the loop (`vidbench train`, single process or torchrun DDP), one step, the optimiser,
checkpoints, and trained models back from them.

    from vidbench.train import train, step_function, load_trained
"""

from vidbench.train.loop import train
from vidbench.train.restore import load_trained, model_from_checkpoint
from vidbench.train.step import step_function

__all__ = ["load_trained", "model_from_checkpoint", "step_function", "train"]
