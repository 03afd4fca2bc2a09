"""Reading a prepared store's manifest.json and checking its shards against it (vidbench/data/store.py is the
format and its writer and reader; this module is what both trust about the files on disk).

A shard is checked in two ways: its .npy header alone (dtype, order, shape, number of sequences: cheap, done
whenever a split is opened, before any count from the manifest sizes an allocation), and its sha256 (the
whole file: on first use by evaluate and train, and by `vidbench verify`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vidbench.errors import VidbenchError
from vidbench.fileio import sha256_file

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def check_shard(path: Path, sha256: str) -> None:
    """One shard against its manifest checksum (a changed or corrupt file would silently change scores)."""
    if not path.is_file():
        what = "is not a file" if path.exists() else "missing"
        raise VidbenchError(f"{path}: {what}; run `vidbench verify`")
    if sha256_file(path) != sha256:
        raise sha256_mismatch(path)


def sha256_mismatch(path: Path) -> VidbenchError:
    return VidbenchError(f"{path}: sha256 does not match the manifest (file changed or corrupt); "
                         f"run `vidbench verify`, then prepare the dataset again")


SHARD_KEYS = {"file": str, "sha256": str, "num_sequences": int, "shape": list}


def _read_header(f) -> tuple[tuple, bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return read(f)


def shard_header_problem(path: Path, entry: dict) -> str | None:
    """What is wrong with a shard file's .npy header (read alone, never the data) against its manifest entry:
    a store shard is C-ordered uint8 [N,T,H,W,C] of the shape the manifest gives, N its num_sequences."""
    if not path.is_file():
        return "is not a file" if path.exists() else "missing"
    try:
        with open(path, "rb") as f:
            shape, fortran, dtype = _read_header(f)
    except (OSError, ValueError) as e:
        return f"not a readable .npy shard ({e})"
    if dtype != np.uint8 or fortran or len(shape) != 5:
        return f"holds {'Fortran-ordered ' if fortran else ''}{dtype} {list(shape)}, a shard is uint8 [N,T,H,W,C]"
    if list(shape) != entry["shape"] or shape[0] != entry["num_sequences"]:
        return (f"shape {list(shape)}, the manifest says {entry['shape']} with {entry['num_sequences']} "
                f"sequences")
    return None


def check_shard_header(path: Path, entry: dict, manifest: Path) -> None:
    problem = shard_header_problem(path, entry)
    if problem is not None:
        raise VidbenchError(f"{path}: {problem} ({manifest}); run `vidbench verify`, then prepare the dataset again")


def load_manifest(root) -> dict:
    root = Path(root)
    path = root / MANIFEST
    if not path.exists():
        partial = root.parent / f".{root.name}.partial"
        hint = " (an interrupted prepare is there; rerun the same prepare command to finish it)" if partial.exists() else ""
        raise VidbenchError(f"{root}: not a prepared dataset (no {MANIFEST}); run `vidbench prepare`{hint}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise VidbenchError(f"{path}: not a readable JSON file ({e})") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise VidbenchError(f"{path}: store format {found!r}, this vidbench reads {FORMAT_VERSION}")
    splits = manifest.get("splits")
    if not isinstance(splits, dict) or not all(isinstance(v, dict) and isinstance(v.get("shards"), list)
                                               for v in splits.values()):
        raise VidbenchError(f"{path}: manifest has no valid 'splits' (each with a list of shards)")
    for name, split in splits.items():
        for i, shard in enumerate(split["shards"]):
            bad = [k for k, kind in SHARD_KEYS.items() if not isinstance(shard, dict) or not isinstance(shard.get(k), kind)]
            if bad:
                raise VidbenchError(f"{path}: split {name!r} shard {i} lacks a valid {', '.join(bad)}")
    return manifest


def verify(root, progress=None) -> list[str]:
    """Re-check every shard's sha256, shape and .meta.json against the manifest; returns the problems found."""
    root = Path(root)
    manifest = load_manifest(root)
    problems = []
    shards = [s for split in manifest["splits"].values() for s in split["shards"]]
    for shard in progress(shards) if progress else shards:
        path = root / shard["file"]
        try:
            check_shard(path, shard["sha256"])
        except VidbenchError as e:
            problems.append(str(e).split("; run")[0])
            continue
        problem = shard_header_problem(path, shard)
        if problem is not None:
            problems.append(f"{path}: {problem}")
            continue
        meta_path = path.with_name(path.name.replace(".npy", ".meta.json"))
        try:
            meta = json.loads(meta_path.read_text())
            ok = meta["sha256"] == shard["sha256"] and len(meta["sequences"]) == shard["num_sequences"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            problems.append(f"{meta_path}: unreadable shard metadata ({type(e).__name__}: {e})")
            continue
        if not ok:
            problems.append(f"{meta_path}: does not match the manifest's entry for {shard['file']}")
    return problems
