"""`python -m vidbench.cli ...` (and torchrun's `-m vidbench.cli`)."""

from vidbench.cli import run

run()
