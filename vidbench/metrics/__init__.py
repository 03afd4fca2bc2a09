"""Metrics, registered lazily by name (LPIPS and FVD import their networks only when used)."""

from vidbench.registry import METRICS  # noqa: F401
