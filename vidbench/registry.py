"""One small registry for datasets, models, metrics and protocols.

Entries are either objects registered with the decorator, or lazy "module:attr" strings that are only
imported when asked for (so `vidbench ls` stays fast and importing vidbench does not import every model).
Unknown names raise a VidbenchError with "did you mean" suggestions (lm-evaluation-harness style).

Outside entries, without editing vidbench: a registry made with `entry_point_group` also lists the entry points
that installed packages declare in that group (pyproject: [project.entry-points."vidbench.models"]
my-model = "my_pkg.models:MyModel"), read once on first use; and one made with `import_names=True` takes a
"package.module:attr" name that is not registered, importing it on the spot (timm / lm-eval style).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any

from vidbench.errors import VidbenchError


class Registry:
    def __init__(self, kind: str, entry_point_group: str | None = None, import_names: bool = False):
        self.kind = kind
        self._entries: dict[str, Any] = {}
        self._info: dict[str, dict] = {}
        self.entry_point_group = entry_point_group
        self.import_names = import_names
        self._entry_points_read = entry_point_group is None

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
        if name not in self:
            if self.import_names and ":" in name:
                return import_attr(name, self.kind)
            raise VidbenchError(self._unknown(name))
        target = self._entries[name]
        if isinstance(target, str):
            target = import_attr(target, self.kind, entry=name)
            self._entries[name] = target
        return target

    def info(self, name: str) -> dict:
        if name not in self:
            if self.import_names and ":" in name:
                return {}
            raise VidbenchError(self._unknown(name))
        return dict(self._info.get(name, {}))

    def names(self) -> list[str]:
        self._read_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._read_entry_points()
        return name in self._entries

    def _read_entry_points(self) -> None:
        """Add the entry points installed packages declare in this registry's group (lazily: nothing imported)."""
        if self._entry_points_read:
            return
        self._entry_points_read = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.entry_point_group):
            if ep.name not in self._entries:  # a built-in name is never shadowed by a package
                package = ep.dist.name if ep.dist is not None else "an installed package"
                self.add(ep.name, ep.value, about=f"from {package} ({ep.value})")

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        outside = " or name your own as package.module:attr" if self.import_names else ""
        return f"unknown {self.kind} {name!r}{hint} (see `vidbench ls {self.kind}s`{outside})"


def import_attr(target: str, kind: str, entry: str | None = None) -> Any:
    """The object a "package.module:attr" string names; a user's typo gets one line saying which part failed."""
    module_name, _, attr = target.partition(":")
    what = f"{kind} {entry!r} ({target})" if entry and entry != target else f"{kind} {target!r}"
    if not module_name or not attr:
        raise VidbenchError(f"{what}: write it as package.module:attr")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name is None or not module_name.startswith(e.name):
            raise  # the module exists and one of its own imports failed: that traceback is the user's clue
        raise VidbenchError(f"{what}: no module named {e.name!r} (is its folder on PYTHONPATH, or the package "
                            f"installed in this environment?)") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        close = difflib.get_close_matches(attr, [n for n in dir(module) if not n.startswith("_")], n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise VidbenchError(f"{what}: module {module_name} ({getattr(module, '__file__', '')}) has no attribute "
                            f"{attr!r}{hint}") from None


DATASETS = Registry("dataset")
MODELS = Registry("model", entry_point_group="vidbench.models", import_names=True)
METRICS = Registry("metric")
PROTOCOLS = Registry("protocol")
