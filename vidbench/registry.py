"""One small registry for datasets, models, metrics and protocols.

Entries are either objects registered with the decorator, or lazy "module:attr" strings that are only
imported when asked for (so `vidbench ls` stays fast and importing vidbench does not import every model).
Unknown names raise a VidbenchError with "did you mean" suggestions (lm-evaluation-harness style).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any

from vidbench.errors import VidbenchError


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Any] = {}
        self._info: dict[str, dict] = {}

    def register(self, name: str | None = None, **info) -> Callable:
        """Decorator: `@MODELS.register("cwvae-mmnist", dataset="mmnist")`."""

        def decorate(obj):
            self.add(name or obj.__name__, obj, **info)
            return obj

        return decorate

    def add(self, name: str, target: Any, **info) -> None:
        """Add an object, or a lazy "package.module:attr" string resolved on first `get`."""
        if name in self._entries and self._entries[name] is not target:
            # A lazy entry being replaced by the object it names is the normal import path.
            old = self._entries[name]
            if not (isinstance(old, str) and not isinstance(target, str)):
                raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = target
        self._info.setdefault(name, {}).update(info)

    def get(self, name: str) -> Any:
        if name not in self._entries:
            raise VidbenchError(self._unknown(name))
        target = self._entries[name]
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module_name), attr)
            self._entries[name] = target
        return target

    def info(self, name: str) -> dict:
        if name not in self._entries:
            raise VidbenchError(self._unknown(name))
        return dict(self._info.get(name, {}))

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (see `vidbench ls {self.kind}s`)"


DATASETS = Registry("dataset")
MODELS = Registry("model")
METRICS = Registry("metric")
PROTOCOLS = Registry("protocol")
