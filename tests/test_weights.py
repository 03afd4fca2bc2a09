"""Pretrained-weight lookup: search order, verification, download fallback and the offline message."""

import urllib.request

import pytest

from vidbench.errors import VidbenchError
from vidbench.fileio import git_blob_sha1
from vidbench.metrics import weights


@pytest.fixture
def known_file(monkeypatch):
    """A made-up known weight file; tests that need its checksum register it with _spec_for."""
    content = b"weights"
    spec = weights.WeightFile("fake.pt", "tests", url="http://invalid.example/fake.pt")
    monkeypatch.setitem(weights.KNOWN_WEIGHTS, "fake.pt", spec)
    monkeypatch.delenv(weights.ENV_DIR, raising=False)
    return spec, content


def _write(folder, name, content):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(content)
    return path


def _spec_for(path, spec, monkeypatch):
    fixed = weights.WeightFile(spec.name, spec.used_by, spec.url, blob_sha1=git_blob_sha1(path))
    monkeypatch.setitem(weights.KNOWN_WEIGHTS, spec.name, fixed)


def test_search_order_explicit_dir_then_env_then_hub(tmp_path, monkeypatch, known_file):
    spec, content = known_file
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = _write(tmp_path / "torch" / "hub" / "checkpoints", "fake.pt", content)
    _spec_for(hub, spec, monkeypatch)
    assert weights.locate("fake.pt", download=False) == hub
    env = _write(tmp_path / "env", "fake.pt", content)
    monkeypatch.setenv(weights.ENV_DIR, str(tmp_path / "env"))
    assert weights.locate("fake.pt", download=False) == env
    explicit = _write(tmp_path / "explicit", "fake.pt", content)
    assert weights.locate("fake.pt", weights_dir=tmp_path / "explicit", download=False) == explicit


def test_mismatch_is_an_error_not_a_fallback(tmp_path, monkeypatch, known_file):
    spec, content = known_file
    good = _write(tmp_path / "good", "fake.pt", content)
    _spec_for(good, spec, monkeypatch)
    _write(tmp_path / "bad", "fake.pt", b"other bytes")
    with pytest.raises(VidbenchError, match="git blob id .* does not match"):
        weights.locate("fake.pt", weights_dir=tmp_path / "bad", download=False)
    with pytest.raises(VidbenchError, match="does not match"):  # an explicit path is verified too
        weights.locate(tmp_path / "bad" / "fake.pt")


def test_offline_message_and_download_failure(tmp_path, monkeypatch, known_file):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(weights.MetricUnavailable, match="fake.pt not found.*download failed.*no network") as e:
        weights.locate("fake.pt", weights_dir=tmp_path / "w", download=True)
    assert "http://invalid.example/fake.pt" in str(e.value) and str(tmp_path / "w") in str(e.value)
    monkeypatch.setenv(weights.ENV_OFFLINE, "1")
    with pytest.raises(weights.MetricUnavailable, match="fake.pt not found") as e:
        weights.locate("fake.pt")
    assert "download failed" not in str(e.value)
    assert not (tmp_path / "torch" / "hub" / "checkpoints" / "fake.pt").exists()


def test_download_is_verified_before_it_lands(tmp_path, monkeypatch, known_file):
    spec, content = known_file
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _spec_for(_write(tmp_path / "ref", "fake.pt", content), spec, monkeypatch)

    class Response:
        def __init__(self, body):
            self.body = [body, b""]

        def read(self, n):
            return self.body.pop(0)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response(content))
    got = weights.locate("fake.pt", download=True)
    assert got == tmp_path / "torch" / "hub" / "checkpoints" / "fake.pt" and got.read_bytes() == content
    got.unlink()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response(b"tampered"))
    with pytest.raises(VidbenchError, match="does not match"):
        weights.locate("fake.pt", download=True)
    assert not got.exists() and not list(got.parent.glob(".*partial"))


def test_explicit_missing_path(tmp_path):
    with pytest.raises(weights.MetricUnavailable, match="does not exist"):
        weights.locate(tmp_path / "nowhere.pt")


def test_known_blob_ids_are_those_in_reference():
    assert weights.KNOWN_WEIGHTS["i3d_torchscript.pt"].blob_sha1 == "93daef59c7ae0e9e8f76225521407e60cbafa6aa"
    assert weights.KNOWN_WEIGHTS["i3d_pretrained_400.pt"].blob_sha1 == "a867b87ac3a9097d200598b1d48a1b890d8ec744"
    assert weights.KNOWN_WEIGHTS["rgb_imagenet.pt"].blob_sha1 == "73a4fd1d87eb3dbd97f33a9779fa1caa3d28111a"
