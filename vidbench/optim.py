"""Kept importable for scripts written against earlier releases (the shared perf harness imports
`vidbench.optim`); the optimiser lives in vidbench/train/optim.py."""

from vidbench.train.optim import TFAdam, clip_global_norm_

__all__ = ["TFAdam", "clip_global_norm_"]
