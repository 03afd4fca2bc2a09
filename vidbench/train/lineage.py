"""Where a run's weights came from: the runs before it (`--init-from`) and its own training sessions.

    models/<run>/lineage.json = {
        "init_from": null or {"file", "sha256", "step"}     the exported weights it started from
        "earlier_runs": [run, ...]                           the lineage those weights carried (oldest first)
        "sessions": [{"command", "commit", "device", "from_step", "to_step", "wall_s", "stopped"}, ...]
    }                                                        one session per `vidbench train` call (a resume adds one)

`stopped` is "steps" (the step budget was reached), "budget" (the --minutes wall-clock budget ran out:
the checkpoint was written at `to_step` and the same command resumes) or null while a session runs.

An export (`vidbench export`, vidbench.train.checkpoint.export_weights) flattens this into its record's
"lineage": the earlier runs, then this run as {"run", "steps", "wall_s", "init_from", "sessions"}, so a
model continued from a continued model lists every run, each with its steps, commands, commits, devices.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import torch

from vidbench.errors import VidbenchError
from vidbench.fileio import atomic_write_json, sha256_file

LINEAGE_NAME = "lineage.json"


def git_commit() -> str | None:
    """The vidbench checkout's commit; $VIDBENCH_COMMIT where the code runs from a copy without .git (the GPU
    machine receives the working tree, not the repository); None when neither says."""
    if os.environ.get("VIDBENCH_COMMIT"):
        return os.environ["VIDBENCH_COMMIT"]
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def device_name(device: torch.device) -> str:
    """What trained it, in words: 'cuda: NVIDIA H100 80GB HBM3' or 'cpu: x86_64, 2 threads'."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {platform.machine()}, {torch.get_num_threads()} threads"


def this_command() -> str:
    """The command line that is running, as a user would retype it."""
    argv = list(sys.argv)
    package = Path(__file__).resolve().parents[1]
    script = Path(argv[0]).resolve() if argv else None
    if script is not None and (script.name == "vidbench" or script == package / "cli" / "__main__.py"):
        argv = ["vidbench", *argv[1:]]
    elif script is not None and script.suffix == ".py" and script.is_relative_to(package):
        module = ".".join(script.relative_to(package.parent).with_suffix("").parts)
        argv = ["python", "-m", module, *argv[1:]]
    return shlex.join(argv) if argv else "(library call)"


def exported_lineage(state: dict) -> list[dict]:
    """The runs that made an exported weights file, oldest first. A file exported before lineages were
    recorded counts as one run with what its record says."""
    record = state.get("record") or {}
    if record.get("lineage"):
        return list(record["lineage"])
    return [{"run": None, "steps": int(state.get("step", 0)), "wall_s": round(float(state.get("elapsed", 0.0)), 1),
             "init_from": None, "sessions": [{"command": record.get("command"), "commit": None, "device": None,
                                              "note": record.get("note")}]}]


def load_init_weights(path, state: dict, model: torch.nn.Module) -> dict:
    """Put the weights of an exported file (`vidbench export`, a zoo file; `state` as load_checkpoint read
    it) into `model`, which must be the same model (same config); returns the lineage start {"init_from",
    "earlier_runs"}. Weights saved in bf16 are cast to the model's dtype by load_state_dict's copy."""
    path = Path(path)
    theirs = (state.get("config") or {}).get("model")
    if theirs != model.config:
        diffs = [k for k in sorted(set(theirs or {}) | set(model.config)) if (theirs or {}).get(k) != model.config.get(k)]
        shown = ", ".join(f"{k}: {(theirs or {}).get(k)!r} vs {model.config.get(k)!r}" for k in diffs[:3])
        raise VidbenchError(f"--init-from {path}: its model config differs from this run's ({shown}); "
                            f"train with the same --model, --preset and --set options")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise VidbenchError(f"--init-from {path}: weights do not fit the model ({str(e).splitlines()[0]})") from e
    return {"init_from": {"file": path.name, "sha256": sha256_file(path), "step": int(state.get("step", 0))},
            "earlier_runs": exported_lineage(state)}


class RunLineage:
    """lineage.json of one run folder, kept current: a session is opened at start, its end step written at
    every checkpoint, and closed with the reason training stopped."""

    def __init__(self, run_dir: Path, start: dict | None = None):
        self.path = Path(run_dir) / LINEAGE_NAME
        try:
            self.data = json.loads(self.path.read_text())
        except FileNotFoundError:
            self.data = {"init_from": None, "earlier_runs": [], "sessions": [], **(start or {})}
        except ValueError as e:
            raise VidbenchError(f"{self.path}: not valid JSON ({e})") from e

    def open_session(self, step: int, device: torch.device, command: str | None) -> None:
        self.data["sessions"].append({"command": command or this_command(), "commit": git_commit(),
                                      "device": device_name(device), "from_step": step, "to_step": step,
                                      "wall_s": 0.0, "stopped": None})

    def update(self, step: int, wall_s: float, stopped: str | None = None, write: bool = True) -> None:
        session = self.data["sessions"][-1]
        session.update(to_step=step, wall_s=round(wall_s, 1), stopped=stopped)
        if write:
            atomic_write_json(self.path, self.data)

    def as_export(self, run_name: str, steps: int, elapsed: float) -> list[dict]:
        """The lineage an export of this run carries (earlier runs, then this one)."""
        return flatten(self.data, run_name, steps, elapsed)


def flatten(data: dict, run_name: str, steps: int, elapsed: float) -> list[dict]:
    this = {"run": run_name, "steps": int(steps), "wall_s": round(float(elapsed), 1),
            "init_from": data.get("init_from"), "sessions": data.get("sessions", [])}
    return [*data.get("earlier_runs", []), this]


def total_steps(lineage: list[dict]) -> int:
    """Optimiser steps over every run of a lineage (each run counts its own from 0)."""
    return sum(int(run.get("steps") or 0) for run in lineage)
