"""Training checkpoints: one file per run folder, written atomically, loadable with weights_only=True.

    models/<run>/checkpoint.pt = {"format", "vidbench_version", "config" (the resolved run config),
        "model" (state dict), "optimizer", "scaler" (fp16 only), "step", "epoch", "position",
        "elapsed", "rng" (one entry per rank: torch, cuda, numpy, python)}
    export_weights(run, out.pt, record) -> a file to share: config, weights, step, elapsed and a "record" of
        how it was trained (`vidbench export`); evaluate, sample and analyze read it like a run folder

Only plain types and tensors go in, so `torch.load(path, weights_only=True)` (no pickled code) reads it.
The file is replaced atomically (temporary name + rename, vidbench.fileio), so a run killed while saving
keeps its previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path

import numpy as np
import torch

from vidbench import __version__
from vidbench.errors import VidbenchError
from vidbench.fileio import atomic_write_bytes
from vidbench.locking import OutputLock, check_output_file

FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
EXPORT_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def checkpoint_path(run_dir_or_file) -> Path:
    """A run folder -> its checkpoint.pt; a file path is returned as is."""
    path = Path(run_dir_or_file)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def save_checkpoint(path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save({"format": FORMAT_VERSION, "vidbench_version": __version__, **state}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read a checkpoint with weights_only=True; any unreadable file is a one-line VidbenchError."""
    return read_checkpoint(path, map_location)[0]


def read_checkpoint(path, map_location="cpu", check_sha256=None) -> tuple[dict, str]:
    """(state, sha256 of the bytes it was loaded from): the file is read once, so the hash is that of the
    weights loaded even while a training run replaces the file beside us. check_sha256: called with that
    hash before the bytes are unpickled (a zoo manifest's check: vidbench.train.zoo.check_digest)."""
    path = Path(path)
    if not path.exists():
        raise VidbenchError(f"{path}: checkpoint does not exist (train first: `vidbench train ...`)")
    try:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if check_sha256 is not None:
            check_sha256(digest)
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except VidbenchError:
        raise
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, zipfile errors ...
        # torch's message for pickled code advises weights_only=False, i.e. running the file's code: not ours.
        if "weights_only" in str(e):
            raise VidbenchError(f"{path}: not a readable checkpoint: it holds pickled Python objects, not only "
                                f"tensors and plain values, and vidbench never loads pickled code. "
                                f"A checkpoint is a torch.save file of tensors, dicts, "
                                f"lists, numbers and strings, as `vidbench train` writes") from None
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise VidbenchError(f"{path}: not a readable checkpoint ({type(e).__name__}: {first_line[:200]})") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION or "model" not in state:
        raise VidbenchError(f"{path}: not a vidbench checkpoint (format {FORMAT_VERSION} expected)")
    bad = [f"{key} is a {type(state[key]).__name__}, not a dict" for key in ("model", "config")
           if key in state and not isinstance(state[key], dict)]
    if isinstance(state.get("config"), dict) and not isinstance(state["config"].get("model", {}), dict):
        bad.append("config.model is not a dict")
    if bad:
        raise VidbenchError(f"{path}: not a vidbench checkpoint ({'; '.join(bad)})")
    return state, digest


def export_weights(run_dir_or_file, out, record: dict | None = None, overwrite: bool = False,
                   dtype: str = "fp32") -> Path:
    """A run's checkpoint as a weights-only file to share: config, weights, step, training time and `record`
    (how it was trained: command, seed, machine, and the run's lineage: vidbench/train/lineage.py), without
    the optimiser and RNG states (a third of the size). dtype "bf16" stores floating-point weights in
    bfloat16 (half the bytes; loading casts them back to the model's float32).
    `vidbench evaluate --checkpoint FILE.pt` reads it like a run folder; the file's name labels its row.

    `out` is claimed as every output is (vidbench.locking): locked, written under a temporary name and renamed,
    dead writers' temporary files removed. An existing `out` is replaced only when it is itself an export
    (a vidbench weights file with a record and no optimiser state) and `overwrite` is given: a training
    checkpoint, another run's file or any other file is never overwritten."""
    from vidbench.train.lineage import flatten

    out = check_output_file(out)
    if out.suffix != ".pt":
        raise VidbenchError(f"{out}: a weights file name ends in .pt")
    if dtype not in EXPORT_DTYPES:
        raise VidbenchError(f"export dtype {dtype!r}: choose one of {', '.join(EXPORT_DTYPES)}")
    src = checkpoint_path(run_dir_or_file)
    state = load_checkpoint(src)
    with OutputLock(out, "exported weights file"):
        if out.exists():
            _check_replaceable_export(out, overwrite)
        keep = {k: state[k] for k in ("config", "model", "step", "epoch", "elapsed", "stopped") if k in state}
        keep["model"] = {k: v.to(EXPORT_DTYPES[dtype]) if v.is_floating_point() else v
                         for k, v in state["model"].items()}
        record = dict(record or {})
        if state.get("lineage"):
            run_name = src.parent.name if src.name == CHECKPOINT_NAME else src.stem
            record.setdefault("lineage", flatten(state["lineage"], run_name, state.get("step", 0),
                                                 state.get("elapsed", 0.0)))
        save_checkpoint(out, {**keep, "dtype": dtype, "record": record})
    return out


def _check_replaceable_export(out: Path, overwrite: bool) -> None:
    try:
        old = load_checkpoint(out)
    except VidbenchError:
        old = None
    if old is None or "optimizer" in old or "record" not in old:
        what = "a training checkpoint" if old is not None and "optimizer" in old else "not a `vidbench export` file"
        raise VidbenchError(f"{out}: exists and is {what}; export never overwrites it: choose another --out")
    if not overwrite:
        raise VidbenchError(f"{out}: an exported weights file is already there; pass --overwrite to replace it")


# --- RNG states as plain types and tensors (numpy's and python's native states are not weights_only-safe)


def capture_rng_state() -> dict:
    np_state = np.random.get_state(legacy=False)
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64),
                   "gauss": gauss},
    }


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    np_state = state["numpy"]
    np.random.set_state({
        "bit_generator": np_state["bit_generator"],
        "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
        "has_gauss": np_state["has_gauss"],
        "gauss": np_state["gauss"],
    })
    py = state["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["internal"].tolist()), py["gauss"]))
