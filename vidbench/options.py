"""The rule of every numeric command-line option, in one table, checked before a command writes anything.

A command's library entry (train, evaluate, sample, compare, prepare) passes its options here first, by their
Python names (`num_workers` is `--num-workers`), so a bad value is one `error:` line naming the option and the
rule it broke, and the rejected command leaves nothing behind (no config.json, no cache folder, no .partial).
Zero never means "the default": a count of 0 is refused, as is NaN, which every comparison lets through.
"""

from __future__ import annotations

import math
import numbers

from vidbench.errors import VidbenchError

# rule -> (test of a value, what the error says the value must be)
RULES = {
    "count": (lambda v: _is_int(v) and v >= 1, "a whole number of at least 1"),
    "seed": (lambda v: _is_int(v) and 0 <= v < 2**63, "a whole number from 0 to 2**63-1"),
    "non-negative": (lambda v: _is_int(v) and v >= 0, "a whole number of at least 0"),
    "positive": (lambda v: _is_real(v) and math.isfinite(v) and v > 0, "a finite number above 0"),
    "fraction": (lambda v: _is_real(v) and 0 < v < 1, "a number between 0 and 1 (both excluded)"),
}

# option (Python name) -> rule. One table for every command; an option absent here is checked by its click type.
OPTIONS = {
    "seed": "seed", "num_workers": "non-negative",
    "steps": "count", "epochs": "count", "batch_size": "count", "seq_len": "count", "checkpoint_every": "count",
    "lr": "positive", "fps": "positive", "resamples": "count", "num_train": "count", "num_test": "count",
    "limit": "count", "num_videos": "count", "num_samples": "count", "context": "count", "horizon": "count",
    "length": "count", "test_fraction": "fraction", "video": "non-negative", "parameters": "non-negative",
}


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def option_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_options(**values) -> None:
    """Every given option (None: not given, its default applies) against its rule in OPTIONS."""
    for name, value in values.items():
        if value is None:
            continue
        test, wording = RULES[OPTIONS[name]]
        if not test(value):
            raise VidbenchError(f"{option_name(name)} {value!r}: must be {wording}")
