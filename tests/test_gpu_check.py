"""tests/benchmarks/gpu_check.py's scheduling, on the CPU with stand-in mode processes (the modes themselves
need a GPU): the compiling mode starts before the CUDA tests and compiles while they run, but no mode's timed
steps share the GPU with the tests or with another mode; a failed mode is reported and left out."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location("gpu_check", Path(__file__).parent / "benchmarks" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(gpu_check)

# A stand-in for `gpu_check.py --mode NAME [--after FILE]`: marks its start, waits for FILE like run_mode,
# "times" 0.2 s of steps (recording when), prints run_mode's JSON line; a mode named fp32+cl fails.
STAND_IN = """
import json, sys, time
from pathlib import Path
import os
log, name, after = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
(log / (name + ".started")).write_text(str(os.getpid()))
if name == "fp32+cl":
    sys.exit("stand-in failure")
while after != "-" and not Path(after).exists():
    time.sleep(0.02)
begin = time.time()
time.sleep(0.2)
(log / (name + ".timed")).write_text(json.dumps([begin, time.time()]))
print(json.dumps({"mode": name, "steps_per_s": 30.0, "steps": 6, "warmup_s": 0.0, "peak_gib": 1.0, "loss": 1.0}))
"""


def test_compile_overlaps_the_tests_but_no_timed_steps_overlap(tmp_path, capsys):
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)

    def command(name, seconds, after):
        return [sys.executable, str(script), str(tmp_path), name, str(after) if after else "-"]

    tests_window = []

    def run_tests():
        began = time.time()
        # the compiling mode was started before the tests: its start mark appears while they run
        deadline = began + 30  # generous: a loaded CI machine may take seconds to start a Python process
        while not (tmp_path / "bf16+compile+graphs.started").exists():
            assert time.time() < deadline, "the compiling mode did not start before the tests ended"
            time.sleep(0.02)
        time.sleep(0.3)  # tests still running: the compiling mode must not time its steps now
        tests_window.append((began, time.time()))
        return False

    modes = ["fp32", "bf16+compile+graphs", "fp32+cl", "bf16+graphs"]
    results, failed = gpu_check.measure_modes(modes, 1.0, run_tests, dict(os.environ), command=command)

    assert failed  # fp32+cl's failure is reported ...
    assert list(results) == ["bf16+compile+graphs", "fp32", "bf16+graphs"]  # ... and left out; compiled one first
    out = capsys.readouterr().out
    assert "fp32+cl: failed" in out and "stand-in failure" in out
    assert "bf16+compile+graphs compiled while the tests ran" in out
    windows = sorted(json.loads((tmp_path / f"{name}.timed").read_text()) for name in results)
    (tests_begin, tests_end), = tests_window
    assert all(begin >= tests_end for begin, _ in windows)  # timed steps never share the GPU with the tests
    assert all(a_end <= b_begin for (_, a_end), (b_begin, _) in zip(windows, windows[1:]))  # nor with each other


def test_interrupted_tests_leave_no_compiling_process(tmp_path):
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    started = tmp_path / "bf16+compile+graphs.started"

    def command(name, seconds, after):
        # this stand-in waits on a file that never appears: only measure_modes' clean-up ends it
        return [sys.executable, str(script), str(tmp_path), name, str(tmp_path / "never")]

    def run_tests():
        while not started.exists() or not started.read_text():
            time.sleep(0.02)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gpu_check.measure_modes(["bf16+compile+graphs"], 1.0, run_tests, dict(os.environ), command=command)
    with pytest.raises(ProcessLookupError):  # killed and reaped on the way out, not left waiting for minutes
        os.kill(int(started.read_text()), 0)
