"""Sessions: tests (the CI job), demo (the main job on the embedded default), bench, lint.

    nox -s tests      # the whole test suite
    nox -s demo       # offline Moving MNIST -> tiny models -> evaluate -> leaderboard page
    nox -s bench      # speed/memory benchmarks in tests/benchmarks/, printed as figures and ratios
"""

import nox

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests"]


def install(session, extra="test"):
    session.install("-e", f".[{extra}]")


@nox.session
def tests(session):
    install(session)
    session.run("pytest", "-q", *session.posargs)


@nox.session
def demo(session):
    install(session)
    session.run("python", "-m", "vidbench.demo", *session.posargs)


@nox.session
def bench(session):
    install(session, "dev")
    session.run("pytest", "-q", "-s", "-o", "python_files=bench_*.py", "-o", "addopts=", "tests/benchmarks", *session.posargs)


@nox.session
def lint(session):
    session.install("ruff")
    session.run("ruff", "check", "vidbench", "tests", "noxfile.py")
