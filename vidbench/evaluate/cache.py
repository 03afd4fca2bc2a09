"""The run folder of one evaluation: per-batch cached predictions and values, stamped with a fingerprint."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from vidbench.errors import VidbenchError
from vidbench.fileio import atomic_write_bytes

FINGERPRINT = "evaluation.fingerprint"  # not *.json: the leaderboard globs results folders for *.json


class RunFolder:
    """Per-batch cache of one evaluation. Its fingerprint (protocol, model, test data, seed, batch size)
    must match, so a folder is never resumed by a different evaluation."""

    def __init__(self, path: Path, fingerprint: dict):
        self.path = Path(path)
        self.fingerprint = fingerprint

    def claim(self, replace: bool = False) -> None:
        """Check the folder's fingerprint, or stamp a new folder. Metric weight files may be added (a metric
        skipped as unavailable can be filled in later from the cached predictions) but never changed.
        replace: a folder of the same evaluation of another checkpoint of the same model (retrained) is
        emptied and taken over; anything else still refuses."""
        stamp = self.path / FINGERPRINT
        new = dict(self.fingerprint)
        if stamp.exists() and replace and self._same_but_checkpoint(json.loads(stamp.read_text())):
            for cached in self.path.glob("batch-*"):
                cached.unlink()
            stamp.unlink()
        if stamp.exists():
            old = json.loads(stamp.read_text())
            old_weights, new_weights = old.pop("metric_weights", {}), new.pop("metric_weights", {})
            changed = sorted(m for m in old_weights.keys() & new_weights.keys() if old_weights[m] != new_weights[m])
            if changed:
                raise VidbenchError(f"{stamp}: this run folder scored {', '.join(changed)} with other weights "
                                    f"({', '.join(old_weights[m]['file'] for m in changed)}); use another --run-dir")
            if old != new:
                diffs = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
                what = ", ".join(_describe_diff(k, old.get(k), new.get(k)) for k in diffs)
                raise VidbenchError(f"{stamp}: this run folder belongs to another evaluation ({what}); "
                                    f"use another --run-dir or delete it")
            if not new_weights.keys() <= old_weights.keys():
                self._stamp({**old, "metric_weights": {**old_weights, **new_weights}})
        elif self.path.exists() and any(self.path.glob("batch-*")):
            raise VidbenchError(f"{self.path}: holds cached batches but no {FINGERPRINT}; use another --run-dir")
        else:
            self._stamp(self.fingerprint)

    def _same_but_checkpoint(self, old: dict) -> bool:
        new = self.fingerprint
        others = {k for k in set(old) | set(new) if k not in ("model", "metric_weights")}
        return (all(old.get(k) == new.get(k) for k in others)
                and (old.get("model") or {}).get("name") == (new.get("model") or {}).get("name"))

    def _stamp(self, fingerprint: dict) -> None:
        atomic_write_bytes(self.path / FINGERPRINT, (json.dumps(fingerprint, indent=2, sort_keys=True) + "\n").encode())

    def _file(self, b: int, suffix: str) -> Path:
        return self.path / f"batch-{b:05d}{suffix}"

    def load(self, b: int) -> dict:
        path = self._file(b, ".npz")
        if not path.exists():
            return {}
        try:
            with np.load(path) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError) as e:
            raise VidbenchError(f"{path}: unreadable cached batch ({e}); delete it to recompute") from e

    def save(self, b: int, record: dict) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **record)
        atomic_write_bytes(self._file(b, ".npz"), buffer.getvalue())

    def load_predictions(self, b: int, raw: bool = False):
        """uint8 predictions, or with raw=True the model's raw float frames (the *_cwvae conventions score them)."""
        path = self._file(b, ".raw.npy" if raw else ".pred.npy")
        return np.load(path, mmap_mode="r") if path.exists() else None

    def save_predictions(self, b: int, predictions: np.ndarray, raw: bool = False) -> None:
        buffer = io.BytesIO()
        np.save(buffer, predictions)
        atomic_write_bytes(self._file(b, ".raw.npy" if raw else ".pred.npy"), buffer.getvalue())


def _describe_diff(key, old, new) -> str:
    if key == "protocol":
        old_name, new_name = (old or {}).get("name"), (new or {}).get("name")
        if old_name != new_name:
            return f"written by protocol {old_name}, this command uses {new_name}"
        return f"protocol {new_name} fields differ"
    if key == "model":
        old, new = old or {}, new or {}
        if old.get("name") == new.get("name") and old.get("weights_sha256") != new.get("weights_sha256"):
            return (f"model {new.get('name')} with other weights (sha256 {str(old.get('weights_sha256'))[:12]} vs "
                    f"{str(new.get('weights_sha256'))[:12]}); --replace (replace=True) re-scores it")
        return f"model {old.get('name')} vs {new.get('name')} (or another checkpoint)"
    return f"{key} {old} vs {new}"
