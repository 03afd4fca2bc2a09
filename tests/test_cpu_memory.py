"""vidbench/cpu_memory.py: freed activations stay in the process, so the next training step does not
page-fault them in again. Run in subprocesses: the setting is process-wide and one-way."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

import pytest

PROBE = """
import json, resource, torch
from vidbench.cpu_memory import keep_freed_memory
from vidbench.models import create_model
from vidbench.train import step_function

torch.set_num_threads(1)
torch.manual_seed(0)
step = step_function(create_model("cwvae", "tiny"))  # calls keep_freed_memory() itself (CPU)
video = torch.rand(8, 24, 1, 64, 64)
faults = []
for _ in range(16):
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step(video)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
print(json.dumps({"kept": keep_freed_memory(), "faults": faults}))
"""


def probe(**env) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True,
                         env={**os.environ, **env})
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")
def test_freed_blocks_are_reused_without_page_faults():
    """Training steps 5-16 of the tiny CW-VAE (batch 8 x 24), after the heap has grown to the working set.
    Measured (glibc 2.36, seven runs here, and CI's run of the old 8-step test, which failed on it): with memory
    kept, most steps fault 0-1 times, but the heap still grows now and then (one step in 12 faulted 200-1,900
    times in 5 of 7 runs); by default, nearly every step faults 300-9,000 times (its adaptive mmap threshold maps
    some blocks afresh), with an occasional quiet step (1 or 94). So the test compares medians over the 12 steps,
    which a few outlier steps cannot move: kept memory's median was 0 in every run, the default's 2,800-4,100.
    The bounds (kept under 100, the default over 500 and at least 5x the kept one) leave room for another
    glibc's pattern on either side."""
    on, off = probe(), probe(VIDBENCH_KEEP_FREED_MEMORY="0")
    assert on["kept"] is True and off["kept"] is False
    kept, default = statistics.median(on["faults"][4:]), statistics.median(off["faults"][4:])
    assert default > 500, off
    assert kept < 100 and 5 * kept < default, (on, off)
