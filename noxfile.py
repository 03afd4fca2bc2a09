"""Sessions: tests (the CI job), demo (the main job on the embedded default), bench, lint.

    python3 -m nox -s tests      # the whole test suite
    python3 -m nox -s demo       # offline Moving MNIST -> small models -> evaluate -> leaderboard page
    python3 -m nox -s bench      # speed/memory benchmarks in tests/benchmarks/, printed as figures and ratios
    python3 -m nox -s lint
    python3 -m nox -s gpu        # on a GPU machine: CUDA tests, steps/s per mode, I3D, loader (<= 8 min)
    python3 -m nox -s zoo -- --model cwvae --minutes 5 --out OUT   # the zoo's GPU job (vidbench/zoo_job.py)

Every session runs in one shared environment, .nox/vidbench-env: torch alone is several GB, and a copy per
session would double the disk and the first-run install time. It is made on first use and re-installed
only when pyproject.toml changes (the install is editable, so code changes need nothing).
"""

import hashlib
import shutil
import sys
import tempfile
from pathlib import Path

import nox

nox.options.sessions = ["tests"]

ROOT = Path(__file__).parent
ENV = ROOT / ".nox" / "vidbench-env"
STAMP = ENV / "vidbench-installed.sha256"
# What a first install needs: torch 2.14.1's CUDA build with its libraries is ~5.6 GB in the environment, and pip
# unpacks each wheel in the temp folder first (the largest, cuDNN and cuBLAS, ~1 GB each). A full disk otherwise
# fails half-way through pip with "[Errno 28] No space left on device" and a broken environment.
INSTALL_NEEDS_GB = 8.0


def check_free_space(session) -> None:
    """Stop before installing, with what is needed and where, if the disk cannot hold the environment."""
    for folder, label in ((ENV.parent, "the environment's disk"), (Path(tempfile.gettempdir()), "the temp folder")):
        folder.mkdir(parents=True, exist_ok=True)
        free_gb = shutil.disk_usage(folder).free / 1e9
        if free_gb < INSTALL_NEEDS_GB:
            session.error(f"{label} ({folder}) has {free_gb:.1f} GB free; installing vidbench's environment "
                          f"(torch and its CUDA libraries) needs about {INSTALL_NEEDS_GB:.0f} GB. Free some space "
                          "(old clones' .nox folders are ~6 GB each) and run again")


def shared_env(session) -> str:
    """The shared environment's python, installed with vidbench[dev] if pyproject.toml changed since."""
    python = ENV / "bin" / "python"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if python.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return str(python)
    session.log(f"installing vidbench and its dependencies into {ENV.relative_to(ROOT)} (first run: torch and "
                "its CUDA libraries are several GB, a few minutes; later runs reuse it)")
    check_free_space(session)
    if not python.exists():
        session.run(sys.executable, "-m", "venv", str(ENV), external=True)
    session.run(str(python), "-m", "pip", "install", "--upgrade", "pip", external=True, silent=True)
    session.run(str(python), "-m", "pip", "install", "-e", f"{ROOT}[dev]", external=True)
    STAMP.write_text(wanted + "\n")
    return str(python)


@nox.session(venv_backend="none")
def tests(session):
    python = shared_env(session)
    session.run(python, "-m", "pytest", "-q", *session.posargs, external=True)


@nox.session(venv_backend="none")
def demo(session):
    python = shared_env(session)
    session.run(python, "-m", "vidbench.demo", *session.posargs, external=True)


@nox.session(venv_backend="none")
def bench(session):
    python = shared_env(session)
    session.run(python, "-m", "pytest", "-q", "-s", "-o", "python_files=bench_*.py", "-o", "addopts=",
                "tests/benchmarks", *session.posargs, external=True)


@nox.session(venv_backend="none")
def gpu(session):
    """tests/benchmarks/gpu_check.py: the CUDA-marked tests, then speed figures (see its docstring)."""
    python = shared_env(session)
    session.run(python, "tests/benchmarks/gpu_check.py", *session.posargs, external=True)


@nox.session(venv_backend="none")
def zoo(session):
    """vidbench/zoo_job.py: data, train for --minutes, export, evaluate on mmnist@1, the zoo entry into --out."""
    python = shared_env(session)
    session.run(python, "-m", "vidbench.zoo_job", *session.posargs, external=True)


@nox.session(venv_backend="none")
def lint(session):
    python = shared_env(session)
    session.run(python, "-m", "ruff", "check", "vidbench", "tests", "noxfile.py", external=True)
