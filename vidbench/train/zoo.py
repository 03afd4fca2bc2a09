"""The zoo: trained models with full provenance, evaluated by a short name (`--checkpoint zoo:<name>`).

Where things live (the GPU machine receives every tracked file on every call, 64 MiB at most, and one
mmnist CW-VAE is 12.5M parameters = 25 MB in bf16, so weights cannot be tracked):

    vidbench/zoo/<name>.json      the manifest, committed: sha256 and size of the weights file (and of its
                                  parts), parameters, steps, batch, data, device, wall time, commit, commands,
                                  lineage, results summary
    $VIDBENCH_ZOO/<name>.pt       the weights, never committed: downloaded or copied from the GPU job's output;
    ~/.cache/vidbench/zoo/        searched in this order ($VIDBENCH_CACHE replaces ~/.cache/vidbench), then the
                                  manifest's own folder. A file over 16 MiB (what one file back from the GPU
                                  machine may hold) comes as parts <name>.pt.part0, .part1 ...: found in any of
                                  those folders, they are checked part by part and joined into the cache once.

Nothing is loaded unless its sha256 is the manifest's: a changed, truncated or tampered file is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from vidbench.errors import VidbenchError
from vidbench.fileio import atomic_write_bytes, atomic_write_json, sha256_file

ZOO_PREFIX = "zoo:"
MANIFEST_DIR = Path(__file__).resolve().parents[1] / "zoo"
PART_BYTES = 15 * 2**20  # under the 16 MiB a file back from the GPU machine may hold
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # also what a file back from the GPU machine may be named


def weights_dirs(manifest_dir: Path | None = None) -> list[Path]:
    cache = Path(os.environ.get("VIDBENCH_CACHE", Path.home() / ".cache" / "vidbench")) / "zoo"
    found = [Path(os.environ["VIDBENCH_ZOO"])] if os.environ.get("VIDBENCH_ZOO") else []
    return found + [cache] + ([manifest_dir] if manifest_dir is not None else [])


def list_zoo(manifest_dir: Path | None = None) -> list[str]:
    return sorted(p.stem for p in Path(manifest_dir or MANIFEST_DIR).glob("*.json"))


def read_manifest(name_or_file) -> tuple[dict, Path]:
    """A manifest by zoo name (vidbench/zoo/<name>.json) or by its file path."""
    text = str(name_or_file)
    path = Path(text) if text.endswith(".json") else MANIFEST_DIR / f"{text}.json"
    if not path.is_file():
        names = ", ".join(list_zoo()) or "none yet"
        raise VidbenchError(f"zoo model {text!r}: no manifest {path} (zoo models: {names})")
    try:
        manifest = json.loads(path.read_text())
        manifest["sha256"], manifest["file"]  # noqa: B018 (the two fields every manifest must have)
    except (ValueError, KeyError, TypeError) as e:
        raise VidbenchError(f"{path}: not a zoo manifest ({type(e).__name__}: {e})") from e
    return manifest, path


def find_zoo(name_or_file) -> tuple[Path, str, Path]:
    """(weights file, the sha256 its manifest records, the manifest) of a zoo model, the whole file not yet
    hashed: for a loader that hashes the bytes it loads anyway and checks that digest (check_digest), so the
    file is hashed once and what is checked is what is loaded. Weights in parts are checked and joined here."""
    manifest, manifest_path = read_manifest(name_or_file)
    dirs = weights_dirs(manifest_path.parent)
    for folder in dirs:
        candidate = folder / manifest["file"]
        if candidate.is_file():
            return candidate, manifest["sha256"], manifest_path
    for folder in dirs:
        if manifest.get("parts") and all((folder / part["file"]).is_file() for part in manifest["parts"]):
            return join_parts(folder, manifest, manifest_path, dirs[-2]), manifest["sha256"], manifest_path
    where = ", ".join(str(d) for d in dirs)
    raise VidbenchError(f"zoo model {manifest_path.stem!r}: weights {manifest['file']} not found in {where} "
                        f"(weights are not in the repository: copy the file or its parts into one of these, "
                        f"or set VIDBENCH_ZOO to their folder)")


def check_sha256(path: Path, expected: str, manifest_path: Path) -> None:
    check_digest(path, sha256_file(path), expected, manifest_path)


def check_digest(path: Path, actual: str, expected: str, manifest_path: Path) -> None:
    """`actual`: the sha256 of the bytes of `path` that were read."""
    if actual != expected:
        raise VidbenchError(f"{path}: sha256 {actual[:12]}... is not the {expected[:12]}... that {manifest_path} "
                            f"records: the file was changed, cut short or replaced; refusing to load it")


def join_parts(folder: Path, manifest: dict, manifest_path: Path, cache: Path) -> Path:
    """Parts checked one by one, joined, the whole checked, written once into the cache."""
    data = hashlib.sha256()
    chunks = []
    for part in manifest["parts"]:
        path = folder / part["file"]
        check_sha256(path, part["sha256"], manifest_path)
        chunk = path.read_bytes()
        data.update(chunk)
        chunks.append(chunk)
    if data.hexdigest() != manifest["sha256"]:
        raise VidbenchError(f"{folder}: the parts of {manifest['file']} join to another sha256 than {manifest_path} "
                            f"records; refusing to load them")
    out = cache / manifest["file"]
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, b"".join(chunks))
    return out


def split_parts(path: Path, out_dir: Path, part_bytes: int = PART_BYTES) -> list[dict]:
    """Write `path` into out_dir whole when it fits one part, else as <name>.part0, .part1 ...; returns the
    parts (empty when whole) with their sha256 and size."""
    data = path.read_bytes()
    out_dir.mkdir(parents=True, exist_ok=True)
    if len(data) <= part_bytes:
        atomic_write_bytes(out_dir / path.name, data)
        return []
    parts = []
    for index, start in enumerate(range(0, len(data), part_bytes)):
        chunk = data[start:start + part_bytes]
        name = f"{path.name}.part{index}"
        atomic_write_bytes(out_dir / name, chunk)
        parts.append({"file": name, "sha256": hashlib.sha256(chunk).hexdigest(), "bytes": len(chunk)})
    return parts


def build_manifest(name: str, weights: Path, state: dict, *, data: dict, commands: list[str], job: dict,
                   parts: list[dict], results: dict | None = None) -> dict:
    """The manifest of an exported weights file (`state`: as load_checkpoint read it)."""
    from vidbench.train.lineage import total_steps
    from vidbench.train.restore import model_from_checkpoint

    if not NAME.match(name):
        raise VidbenchError(f"zoo name {name!r}: letters, digits, '.', '_' and '-' only")
    record, config = state.get("record") or {}, state["config"]
    lineage = record.get("lineage") or []
    this_run = lineage[-1] if lineage else {}
    sessions = this_run.get("sessions") or [{}]
    return {
        "name": name, "file": weights.name, "sha256": sha256_file(weights), "bytes": weights.stat().st_size,
        "parts": parts, "dtype": state.get("dtype", "fp32"),
        "model": config["model"].get("name"), "preset": config["model"].get("preset"), "config": config["model"],
        "parameters": model_from_checkpoint(state, weights).num_parameters(),
        "steps": int(state.get("step", 0)), "total_steps": total_steps(lineage) or int(state.get("step", 0)),
        "batch_size": config["train"]["batch_size"], "seq_len": config["train"]["seq_len"],
        "train": config["train"], "data": data,
        "device": sessions[-1].get("device"), "wall_s": this_run.get("wall_s", round(float(state.get("elapsed", 0)), 1)),
        "commit": sessions[-1].get("commit"), "commands": commands, "job": job, "lineage": lineage,
        "results": results or {},
    }


def write_manifest(path: Path, manifest: dict) -> Path:
    atomic_write_json(path, manifest)
    return path
