"""The `vidbench` command. Thin: parse options, call the library, print. No logic of its own.

    vidbench prepare mmnist --limit 50         # a small Moving MNIST
    vidbench verify mmnist
    vidbench ls models

One module per stage registers its commands on the group (group.py): prepare.py, train.py, evaluate.py,
report.py, weights.py. `python -m vidbench.cli` and torchrun's `-m vidbench.cli` run __main__.py.
"""

from vidbench.cli import evaluate, prepare, report, train, weights  # noqa: F401  (each registers its commands)
from vidbench.cli.group import dataset_dir, main, progress, run, run_guarded

__all__ = ["dataset_dir", "main", "progress", "run", "run_guarded"]
