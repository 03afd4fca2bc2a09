"""The readout's figures for the truth, the trivial predictors and the ways to game it (tests/readout_cases.py),
on real Moving MNIST test sequences: the table in vidbench/metrics/readout.py's docstring comes from here.

    PYTHONPATH=. python tests/benchmarks/readout_table.py [sequences]      # default 24 sequences, 30 frames

Run it with another checkout first on PYTHONPATH (keeping this tests folder) to print that version's figures
beside these, as the docstring's "old" column was made from the first designs' code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: readout_cases

import readout_cases  # noqa: E402

from vidbench.data.digits import load_digits  # noqa: E402
from vidbench.metrics import readout  # noqa: E402

CONTEXT, HORIZON = 4, 30


def table(count: int = 24) -> list[tuple[str, float, float]]:
    torch.set_num_threads(1)
    classifier, _ = readout.load_classifier()
    digits = load_digits("test")
    seqs = readout_cases.sequences(count, CONTEXT + HORIZON, digits)
    rows = []
    for name, make in readout_cases.CASES.items():
        acc, err = readout_cases.score(readout, classifier, seqs, make, CONTEXT, HORIZON, digits)
        rows.append((name, float(acc.mean()), float(err.mean())))
    return rows


if __name__ == "__main__":
    print(f"readout from {readout.__file__}; chance {readout.CHANCE}")
    print("| prediction | accuracy | position error (px) |\n|---|---|---|")
    for name, acc, err in table(int(sys.argv[1]) if len(sys.argv) > 1 else 24):
        print(f"| {name} | {acc:.3f} | {err:.2f} |")
