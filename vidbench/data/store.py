"""The prepared store: every benchmark, whatever its raw format, becomes this one layout.

    <root>/manifest.json                     dataset, source, parameters, shapes, sha256 per shard, version
    <root>/<split>/shard-00000.npy           uint8 [N, T, H, W, C], memory-mapped when read
    <root>/<split>/shard-00000.meta.json     sha256 of the shard and one metadata dict per sequence

A shard holds sequences of one length (KTH's variable-length videos simply make more shards).

Writing is crash-safe and resumable: a prepare writes into `<parent>/.<name>.partial/`; each shard is
complete once its .meta.json exists (written after the .npy, both atomically); a rerun of the same command
keeps the complete shards and asks the builder to skip that many sequences; only when every split is
done is manifest.json written and the folder renamed to its final name. A folder without manifest.json
is never treated as a dataset. The commit is resumable too: a partial folder whose manifest.json is written
is kept by the next run (its fingerprint is the manifest's), and an old store moved aside is removed by it.

A prepare holds a lock on its output (vidbench.locking), so two prepares of one folder exclude each other.
--overwrite replaces only a folder that is recognisably a store (is_store: a manifest and nothing but the
files it lists) and deletes only those files; any other folder is refused, with or without --overwrite.

Opening a split checks every shard's .npy header against the manifest; reading checks shard sha256s when asked
(PreparedSplit(verify=True): once per shard per process, on first use); `vidbench verify` checks every shard, its
.meta.json and the manifest's entries (the checks: vidbench/data/manifest.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from vidbench import __version__
from vidbench.data.manifest import (  # noqa: F401  (check_shard: imported from here by callers)
    FORMAT_VERSION,
    MANIFEST,
    _read_header,
    check_shard,
    check_shard_header,
    load_manifest,
    sha256_mismatch,
)
from vidbench.data.manifest import verify as verify_store
from vidbench.errors import VidbenchError
from vidbench.fileio import atomic_output, atomic_write_json, sha256_file
from vidbench.locking import OutputLock, check_output_folder

SHARD_BYTES = 256 << 20  # ~256 MB per shard: few files, yet a resume loses little work
DEFAULT_ROOT_ENV = "VIDBENCH_DATASETS"


def default_dataset_dir(name: str) -> Path:
    """datasets/<name>/ under the current folder, or under $VIDBENCH_DATASETS when set."""
    return Path(os.environ.get(DEFAULT_ROOT_ENV, "datasets")) / name


def _shard_name(index: int) -> str:
    return f"shard-{index:05d}"


class SplitWriter:
    """Appends sequences of one split into shards; knows how many a previous run already completed."""

    def __init__(self, folder: Path, split: str):
        self.folder = folder / split
        self.split = split
        self.shard_bytes = SHARD_BYTES  # read at run time so tests can make tiny shards
        self.folder.mkdir(parents=True, exist_ok=True)
        self.shards: list[dict] = []
        self._load_complete_shards()
        self.resume_from = sum(s["num_sequences"] for s in self.shards)
        self._videos: list[np.ndarray] = []
        self._metas: list[dict] = []

    def _load_complete_shards(self) -> None:
        index = 0
        while (meta_path := self.folder / f"{_shard_name(index)}.meta.json").exists():
            meta = json.loads(meta_path.read_text())
            self.shards.append({k: meta[k] for k in ("file", "sha256", "num_sequences", "shape")})
            index += 1
        # Anything past the last complete shard is an interrupted write: drop it.
        for path in self.folder.iterdir():
            stem = path.name.split(".")[0]
            if stem.startswith("shard-") and int(stem[6:]) >= index or path.name.startswith("."):
                path.unlink()

    def add(self, video: np.ndarray, meta: dict | None = None) -> None:
        if video.dtype != np.uint8 or video.ndim != 4:
            raise ValueError(f"store expects uint8 [T,H,W,C], got {video.dtype} {video.shape}")
        if self._videos and (
            video.shape != self._videos[0].shape
            or (len(self._videos) + 1) * video.nbytes > self.shard_bytes
        ):
            self.flush()
        self._videos.append(np.ascontiguousarray(video))
        self._metas.append(meta or {})

    def flush(self) -> None:
        if not self._videos:
            return
        name = _shard_name(len(self.shards))
        array = np.stack(self._videos)
        shard_path = self.folder / f"{name}.npy"
        with atomic_output(shard_path) as tmp, open(tmp, "wb") as f:
            np.save(f, array)
        entry = {
            "file": f"{self.split}/{name}.npy",
            "sha256": sha256_file(shard_path),
            "num_sequences": len(self._videos),
            "shape": list(array.shape),
        }
        atomic_write_json(self.folder / f"{name}.meta.json", {**entry, "sequences": self._metas})
        self.shards.append(entry)
        self._videos, self._metas = [], []

    def finish(self) -> dict:
        self.flush()
        if not self.shards:
            raise EmptySplit(self.split)
        frame_shapes = {tuple(s["shape"][2:]) for s in self.shards}
        lengths = sorted({s["shape"][1] for s in self.shards})
        return {
            "num_sequences": sum(s["num_sequences"] for s in self.shards),
            "frame_shape": list(frame_shapes.pop()) if len(frame_shapes) == 1 else None,
            "length": lengths[0] if len(lengths) == 1 else None,
            "min_length": lengths[0],
            "max_length": lengths[-1],
            "shards": self.shards,
            "data_sha256": _data_sha256(self.folder.parent, self.shards),
        }


def _data_sha256(root: Path, shards: list[dict]) -> str:
    """sha256 of the raw frames in sequence order: independent of shard layout and of np.save's header."""
    h = hashlib.sha256()
    for shard in shards:
        array = np.load(root / shard["file"], mmap_mode="r")
        for start in range(0, len(array), 16):
            h.update(np.ascontiguousarray(array[start : start + 16]).tobytes())
    return h.hexdigest()


class EmptySplit(VidbenchError):
    """A split for which the inputs gave no sequence (DatasetWriter.commit words it, naming the output)."""


class AlreadyPrepared(VidbenchError):
    """The output is a complete store made by this same command: nothing to do (a rerun exits 0, as train's)."""

    def __init__(self, message: str, manifest: dict):
        super().__init__(message)
        self.manifest = manifest


class DatasetWriter:
    """One prepare run: `with DatasetWriter(...) as w: s = w.split("train"); s.add(...); w.commit()`.

    commit() writes manifest.json and renames the partial folder to `out`; if the run dies before, the
    partial folder stays, and the same command run again resumes it (builders skip `resume_from`). `fingerprint` (dataset, source,
    parameters) must match for a partial folder to be resumed; otherwise it is discarded.
    """

    def __init__(self, out, *, dataset: str, source: dict, params: dict, overwrite: bool = False):
        self.out = Path(out)
        self.dataset = dataset
        self.source = source
        self.params = params
        self.lock = OutputLock(self.out, "prepared dataset")
        try:
            self._claim(overwrite)
        except BaseException:
            self.lock.release()
            raise
        self._splits: dict[str, SplitWriter] = {}
        self.extra: dict = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):  # a failed build keeps its partial folder for the next run, not the lock
        self.lock.release()

    def _claim(self, overwrite: bool) -> None:
        self.fingerprint = json.dumps([self.dataset, self.source, self.params, FORMAT_VERSION], sort_keys=True, default=str)
        self.old = self.out.parent / f".{self.out.name}.old"
        if self.old.exists():  # a previous commit died after moving the old store aside
            remove_store(self.old)
        if self.out.exists():
            check_output_folder(self.out, what="prepared dataset")
            if is_store(self.out):
                if (done := self._manifest_if_same(self.out / MANIFEST)) is not None and not overwrite:
                    raise AlreadyPrepared(f"{self.out}: a prepared dataset made by this same command is already "
                                          f"there and complete; nothing to do (--overwrite rebuilds it)", done)
                if not overwrite:
                    raise VidbenchError(f"{self.out}: a prepared dataset is already there; pass --overwrite to "
                                        f"rebuild it (`vidbench verify` checks it)")
            elif any(self.out.iterdir()):
                raise VidbenchError(f"{self.out}: folder exists and is not a vidbench prepared dataset (only a "
                                    f"manifest.json and the shards it lists are); refusing to write into or "
                                    f"overwrite it: choose another --out")
        self.partial = self.out.parent / f".{self.out.name}.partial"
        if self.partial.exists() and not self._resumable():
            shutil.rmtree(self.partial)
        self.partial.mkdir(parents=True, exist_ok=True)
        if not (self.partial / MANIFEST).exists():
            atomic_write_json(self.partial / "fingerprint.json", self.fingerprint)

    def _resumable(self) -> bool:
        """The partial folder is this command's (by its stamp, or by its manifest once the commit wrote it)."""
        try:
            if (stamp := self.partial / "fingerprint.json").exists():
                return json.loads(stamp.read_text()) == self.fingerprint
            return self._manifest_if_same(self.partial / MANIFEST) is not None
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def _manifest_if_same(self, path: Path) -> dict | None:
        """The manifest at `path` when it was written by this same command (dataset, source, parameters)."""
        try:
            m = json.loads(path.read_text())
            same = json.dumps([m["dataset"], m["source"], m["params"], m["format"]], sort_keys=True) == self.fingerprint
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return m if same else None

    def split(self, name: str) -> SplitWriter:
        if name not in self._splits:
            self._splits[name] = SplitWriter(self.partial, name)
        return self._splits[name]

    def commit(self, expected: dict | None = None) -> dict:
        """Finish every split, check frozen checksums (`expected`: split -> data_sha256), then swap the
        finished folder into place. Nothing is renamed if a check fails."""
        try:
            splits = {name: writer.finish() for name, writer in sorted(self._splits.items())}
        except EmptySplit as e:
            shutil.rmtree(self.partial, ignore_errors=True)  # nothing to resume: the same inputs give none again
            raise VidbenchError(f"{self.out}: split {str(e)!r} has no sequences: the input files (--path, "
                                f"--idx-dir, --archive) or --limit give none for it; nothing was written") from None
        for name, sha in (expected or {}).items():
            if splits[name]["data_sha256"] != sha:
                raise VidbenchError(
                    f"{self.partial / name}: {self.dataset} {name} split has data_sha256 "
                    f"{splits[name]['data_sha256']}, the frozen reference is {sha}: this machine does not "
                    f"reproduce the benchmark's test data; please report it"
                )
        manifest = {
            "format": FORMAT_VERSION,
            "dataset": self.dataset,
            "vidbench_version": __version__,
            "source": self.source,
            "params": self.params,
            "splits": splits,
            **self.extra,
        }
        atomic_write_json(self.partial / MANIFEST, manifest)
        (self.partial / "fingerprint.json").unlink(missing_ok=True)  # the manifest now identifies the folder
        # Swap in the finished folder; an old dataset is removed only after the new one is in place. A kill
        # between the steps is finished by the next run (see __init__).
        if self.out.exists():
            os.replace(self.out, self.old)
        os.replace(self.partial, self.out)
        if self.old.exists():
            remove_store(self.old)
        self.lock.release()
        return manifest


def store_files(root) -> list[Path] | None:
    """The files a prepared store consists of (manifest, listed shards and their .meta.json), or None if
    the folder is not recognisably a store (no valid manifest, or anything else in it)."""
    root = Path(root)
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        shards = [s["file"] for split in manifest["splits"].values() for s in split["shards"]]
        expected = {root / MANIFEST} | {root / f for f in shards} | {root / f.replace(".npy", ".meta.json") for f in shards}
        splits = {root / name for name in manifest["splits"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    found = set()
    for path in root.iterdir():
        if path in splits and path.is_dir() and not path.is_symlink():
            found |= set(path.iterdir())
        else:
            found.add(path)
    return sorted(found) if found <= expected else None


def is_store(root) -> bool:
    return store_files(root) is not None


def remove_store(root) -> None:
    """Delete a store's own files, the manifest last (a store half removed by a kill is still recognised,
    and removed by the next run), then its emptied folders. An empty folder (an empty --out) just goes."""
    root = Path(root)
    files = store_files(root) if any(root.iterdir()) else []
    if files is None:
        raise VidbenchError(f"{root}: not recognisably a vidbench prepared dataset; not deleting it (remove it yourself)")
    for path in sorted(files, key=lambda p: p.name == MANIFEST):
        path.unlink()
    for folder in root.iterdir():  # only the split folders are left
        folder.rmdir()
    root.rmdir()


class PreparedSplit:
    """Read access to one split: sequence(i) is a memory-mapped uint8 [T,H,W,C] view.

    Shards are opened lazily and re-opened after a fork (DataLoader workers), keyed by process id, so a
    dataset object can be pickled to workers without carrying open file handles.
    """

    def __init__(self, root, split: str, verify: bool = False):
        self.root = Path(root)
        self.verify = verify  # check each shard's sha256 against the manifest the first time it is opened
        self._verified: set[int] = set()
        self.manifest = load_manifest(self.root)
        self.dataset = self.manifest["dataset"]
        splits = self.manifest["splits"]
        if split not in splits:
            raise VidbenchError(f"{self.root / MANIFEST}: no split {split!r} (has {', '.join(sorted(splits))})")
        self.split = split
        self.info = splits[split]
        for shard in self.info["shards"]:  # before the index: a manifest's counts never size an allocation
            check_shard_header(self.root / shard["file"], shard, self.root / MANIFEST)
        self._index = [
            (shard_i, row) for shard_i, shard in enumerate(self.info["shards"]) for row in range(shard["num_sequences"])
        ]
        self._arrays: dict[int, np.ndarray] = {}
        self._metas: dict[int, list] = {}
        self._pid = None

    def __len__(self) -> int:
        return len(self._index)

    def _shard(self, shard_i: int) -> np.ndarray:
        if self._pid != os.getpid():
            self._arrays, self._pid = {}, os.getpid()
        if shard_i not in self._arrays:
            path = self.root / self.info["shards"][shard_i]["file"]
            if self.verify and shard_i not in self._verified:
                check_shard(path, self.info["shards"][shard_i]["sha256"])
                self._verified.add(shard_i)
            try:
                self._arrays[shard_i] = np.load(path, mmap_mode="r")
            except (OSError, ValueError) as e:
                raise VidbenchError(f"{path}: cannot read shard ({e}); run `vidbench verify`") from e
        return self._arrays[shard_i]

    def check_data_sha256(self) -> str:
        """Read every shard of the split once: each file against its manifest sha256 and the frames against the
        split's data_sha256, which is returned. What a results file records as the test data is then the hash
        of the data read, not a value copied from manifest.json."""
        frames = hashlib.sha256()
        for shard_i, shard in enumerate(self.info["shards"]):
            path = self.root / shard["file"]
            whole = hashlib.sha256()
            with open(path, "rb") as f:
                _read_header(f)
                start = f.tell()
                f.seek(0)
                whole.update(f.read(start))  # the .npy header: in the file's hash, not the frames'
                while block := f.read(1 << 22):
                    whole.update(block)
                    frames.update(block)
            if whole.hexdigest() != shard["sha256"]:
                raise sha256_mismatch(path)
            self._verified.add(shard_i)
        if frames.hexdigest() != self.info.get("data_sha256"):
            raise VidbenchError(f"{self.root / MANIFEST}: split {self.split!r} data_sha256 "
                                f"{str(self.info.get('data_sha256'))[:16]}... is not that of its shards' frames "
                                f"({frames.hexdigest()[:16]}...): the manifest was edited or is corrupt; prepare the "
                                f"dataset again")
        return frames.hexdigest()

    def length(self, i: int) -> int:
        return self.info["shards"][self._index[i][0]]["shape"][1]

    def sequence(self, i: int) -> np.ndarray:
        shard_i, row = self._index[i]
        return self._shard(shard_i)[row]

    def metadata(self, i: int) -> dict:
        shard_i, row = self._index[i]
        if shard_i not in self._metas:
            meta_path = self.root / self.info["shards"][shard_i]["file"].replace(".npy", ".meta.json")
            try:
                self._metas[shard_i] = json.loads(meta_path.read_text())["sequences"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise VidbenchError(f"{meta_path}: unreadable shard metadata ({e}); run `vidbench verify`") from e
        return self._metas[shard_i][row]

    def __getstate__(self):
        return {**self.__dict__, "_arrays": {}, "_pid": None}


verify = verify_store  # `vidbench verify` (vidbench/data/manifest.py), importable from the store as before
