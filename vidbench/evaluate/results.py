"""Reading results files (written by `vidbench evaluate`) into one small, tolerant record.

The schema's one reader (assemble.py beside it is its one writer): the leaderboard, figures and page read
`Result` objects. Unknown keys are ignored and missing optional parts
(per-timestep curves, FVD prefixes, confidence intervals) become empty, so older or partial files still
load. A file without a protocol, a model or any summary number is an error that names the file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from vidbench.errors import VidbenchError

RESULTS_FORMAT = 1  # the "format" every results file carries (vidbench/evaluate/assemble.py writes it)


@dataclass
class Result:
    path: Path
    protocol: str                   # "mmnist@1"
    dataset: str                    # "mmnist"
    model: str                      # row label: the run name if the file has one, else the model family
    family: str                     # registered model name ("cwvae", "copy-last" ...)
    config: dict
    summary: dict[str, float]       # metric -> mean over frames and videos
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    per_timestep: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # metric -> {"mean", "std", ...}
    fvd: dict[int, float] = field(default_factory=dict)           # prefix length -> FVD
    unavailable: dict[str, str] = field(default_factory=dict)     # metric -> why it was not computed
    num_videos: int | None = None
    context: int | None = None
    horizon: int | None = None
    chance: dict[str, float] = field(default_factory=dict)       # metric output -> its chance level, if stated
    raw: dict = field(default_factory=dict)

    def value(self, metric: str) -> float | None:
        """The summary scalar of a metric; FVD falls back to the longest prefix (the whole horizon)."""
        v = self.summary.get(metric)
        if v is None and metric == "fvd" and self.fvd:
            v = self.fvd[max(self.fvd)]
        return v if _finite(v) else None


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _scalars(d) -> dict[str, float]:
    """Keep plain numbers; a {"mean": x, ...} entry counts as x (tolerates either summary shape)."""
    out = {}
    for k, v in (d or {}).items():
        if isinstance(v, dict):
            v = v.get("mean", v.get("value"))
        if _finite(v):
            out[str(k)] = float(v)
    return out


def read_result(path) -> Result:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise VidbenchError(f"{path}: not a readable results file ({e})") from e
    if not isinstance(data, dict):
        raise VidbenchError(f"{path}: a results file is a JSON object, got {type(data).__name__}")
    if "format" in data and data["format"] != RESULTS_FORMAT:
        raise VidbenchError(f"{path}: results format {data['format']!r}, this vidbench reads format {RESULTS_FORMAT} "
                            f"(written by another vidbench version? evaluate again with this one)")
    protocol = data.get("protocol")
    protocol = protocol if isinstance(protocol, dict) else {"name": protocol}
    model = data.get("model")
    model = model if isinstance(model, dict) else {"name": model}
    if not protocol.get("name") or not model.get("name"):
        raise VidbenchError(f"{path}: results file lacks protocol.name or model.name; was it written by `vidbench evaluate`?")
    config = model.get("config") or {}
    label = model.get("run") or model.get("label") or config.get("run") or model["name"]
    fvd = data.get("fvd") or {}
    if isinstance(fvd, dict):
        fvd = {int(k): float(v) for k, v in fvd.items() if str(k).isdigit() and _finite(v)}
    else:
        fvd = {}
    summary = _scalars(data.get("summary"))
    if not summary and not fvd:
        raise VidbenchError(f"{path}: results file has no summary numbers")
    ci = {k: (float(v[0]), float(v[1])) for k, v in (data.get("ci") or {}).items()
          if isinstance(v, (list, tuple)) and len(v) == 2 and all(_finite(x) for x in v)}
    per_timestep = {k: v for k, v in (data.get("per_timestep") or {}).items()
                    if isinstance(v, dict) and isinstance(v.get("mean"), list)}
    for metric, curves in per_timestep.items():
        for key, values in curves.items():
            bad = next((x for x in values if x is not None and not _finite(x)), None) if isinstance(values, list) else None
            if bad is not None:
                raise VidbenchError(f"{path}: per_timestep.{metric}.{key} holds a non-numeric value {bad!r}")
    unavailable = {str(k): str(v) for k, v in (data.get("unavailable") or {}).items()}
    name = protocol["name"]
    return Result(
        path=path, protocol=name, dataset=protocol.get("dataset") or name.split("@")[0],
        model=str(label), family=str(model["name"]), config=config, summary=summary, ci=ci,
        per_timestep=per_timestep, fvd=fvd, unavailable=unavailable,
        num_videos=_int(data.get("num_videos", protocol.get("num_videos"))),
        context=_int(protocol.get("context")), horizon=_int(protocol.get("horizon")),
        chance=_scalars(data.get("chance")), raw=data,
    )


def _int(v) -> int | None:
    return int(v) if _finite(v) else None


def load_results(folder, protocols=None) -> list[Result]:
    """Every *.json results file under `folder` (sorted by path, so the output never depends on the
    directory order), optionally only those of the named protocols."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VidbenchError(f"{folder}: results folder does not exist (run `vidbench evaluate` first, or pass --results)")
    results = [read_result(p) for p in sorted(folder.rglob("*.json"))]
    if protocols:
        found = sorted({r.protocol for r in results})
        missing = [p for p in protocols if p not in found]
        if missing:
            raise VidbenchError(f"{folder}: no results for protocol(s) {', '.join(missing)} "
                                f"(found: {', '.join(found) or 'none'})")
        results = [r for r in results if r.protocol in protocols]
    return results
