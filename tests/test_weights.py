"""Pretrained-weight lookup: search order, verification, download fallback and the offline message."""

import os
import subprocess
import sys
import threading
import time
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
    assert not got.exists() and not list(got.parent.glob(".fake.pt.*"))  # no temporary file left


def test_explicit_missing_path(tmp_path):
    with pytest.raises(weights.MetricUnavailable, match="does not exist"):
        weights.locate(tmp_path / "nowhere.pt")


def test_known_blob_ids_are_those_in_reference():
    assert weights.KNOWN_WEIGHTS["i3d_torchscript.pt"].blob_sha1 == "93daef59c7ae0e9e8f76225521407e60cbafa6aa"
    assert weights.KNOWN_WEIGHTS["i3d_pretrained_400.pt"].blob_sha1 == "a867b87ac3a9097d200598b1d48a1b890d8ec744"
    assert weights.KNOWN_WEIGHTS["rgb_imagenet.pt"].blob_sha1 == "73a4fd1d87eb3dbd97f33a9779fa1caa3d28111a"


@pytest.fixture
def local_server():
    """An HTTP server on 127.0.0.1 that serves /<name> from a dict; /cut/<name> announces the whole file and
    closes the connection after half of it (a download cut off); /slow/<name> sends the headers, then waits
    for the event `gate` before the body (a download in progress)."""
    import http.server
    import threading

    files, gate = {}, threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            cut, slow = self.path.startswith("/cut/"), self.path.startswith("/slow/")
            body = files.get(self.path.removeprefix("/cut").removeprefix("/slow"))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if slow:
                self.wfile.flush()
                gate.wait(60)
            self.wfile.write(body[: len(body) // 2] if cut else body)
            if cut:
                self.close_connection = True

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files, gate
    gate.set()
    server.shutdown()
    server.server_close()


def test_weights_command_lists_and_downloads_verified(tmp_path, monkeypatch, known_file, local_server):
    from click.testing import CliRunner

    from vidbench.cli import main

    spec, content = known_file
    content = bytes(range(256)) * 64  # 16 KiB: big enough that half of it is a real partial transfer
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _spec_for(_write(tmp_path / "ref", "fake.pt", content), spec, monkeypatch)
    base, files, _ = local_server
    files.update({"/fake.pt": content, "/tampered.pt": content[:-1] + b"x"})
    target = tmp_path / "w"

    listed = CliRunner().invoke(main, ["weights", "--weights-dir", str(target)])
    assert listed.exit_code == 0, listed.output
    assert "fake.pt  (tests)" in listed.output and f"expects git blob id {git_blob_sha1(tmp_path / 'ref' / 'fake.pt')}; missing" in listed.output
    assert str(target) in listed.output and "alexnet-owt-7be5be79.pth" in listed.output

    for url, why in ((f"{base}/tampered.pt", "does not match"), (f"{base}/cut/fake.pt", "connection cut after 8192 of 16384 bytes"),
                     (f"{base}/absent.pt", "failed")):
        with pytest.raises(VidbenchError, match=why):
            weights.download("fake.pt", target, url=url)
        assert not target.exists() or list(target.iterdir()) == []  # no file, no partial file

    done = CliRunner().invoke(main, ["weights", "--weights-dir", str(target), "--download", "fake.pt",
                                     "--url", f"{base}/fake.pt"])
    assert done.exit_code == 0, done.output
    assert (target / "fake.pt").read_bytes() == content and "checksum verified" in done.output
    assert f"ok: {target / 'fake.pt'}" in CliRunner().invoke(main, ["weights", "--weights-dir", str(target)]).output


def _files_open_in(folder):
    """Paths under `folder` this process holds open (Linux: /proc/self/fd)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith(f"{folder}/"):
            found.append(target)
    return found


def test_a_concurrent_download_or_a_dead_ones_leftovers_do_not_corrupt_the_file(tmp_path, monkeypatch, known_file,
                                                                                local_server):
    """Download A (from a mirror serving a wrong copy) has its partial file open when download B of the same
    file runs to the end. With one fixed `.partial` name, B moved that very file into place and A then wrote
    its wrong bytes into the installed file; now each download writes its own temporary file."""
    spec, _ = known_file
    content = bytes(range(256)) * 64
    _spec_for(_write(tmp_path / "ref", "fake.pt", content), spec, monkeypatch)
    base, files, gate = local_server
    files.update({"/fake.pt": content, "/tampered.pt": content[:-1] + b"x"})
    target = tmp_path / "w"
    target.mkdir()
    (target / ".fake.pt.partial").write_bytes(b"left by a killed download of an older vidbench")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = target / f".fake.pt.{int(dead.stdout)}.abc123.tmp"  # exited: its pid is not reused this fast
    stale.write_bytes(b"left by a killed download")
    errors = []

    def download_a():
        try:
            weights.download("fake.pt", target, url=f"{base}/slow/tampered.pt")
        except VidbenchError as e:
            errors.append(str(e))

    thread = threading.Thread(target=download_a)
    thread.start()
    deadline = time.monotonic() + 30  # generous: A only has to connect to a local server and open one file
    while not _files_open_in(target) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _files_open_in(target), "download A never opened its partial file"
    assert weights.download("fake.pt", target, url=f"{base}/fake.pt") == target / "fake.pt"
    gate.set()
    thread.join(60)
    assert (target / "fake.pt").read_bytes() == content  # not A's wrong copy
    assert len(errors) == 1 and "does not match" in errors[0], errors
    assert sorted(p.name for p in target.iterdir()) == [".fake.pt.partial", "fake.pt"]  # the dead one's file went
