"""vidbench: a benchmark suite and evaluation harness for long-horizon video prediction."""

__version__ = "0.1.0"
