"""vidbench/cpu_memory.py: freed activations stay in the process, so the next training step does not
page-fault them in again. Run in subprocesses: the setting is process-wide and one-way."""

from __future__ import annotations

import json
import os
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
for _ in range(8):
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
    """Training steps 5-8 of the tiny CW-VAE (batch 8 x 24), after the heap has grown to the working set.
    Measured (glibc 2.36, three runs): default malloc 11,300-60,000 faults over the four steps (its adaptive
    mmap threshold maps some blocks afresh every step), kept memory 0. The bounds: over 3,000 for the
    default, and kept memory at least 5x fewer, leave room for another glibc's pattern on either side."""
    on, off = probe(), probe(VIDBENCH_KEEP_FREED_MEMORY="0")
    assert on["kept"] is True and off["kept"] is False
    assert sum(off["faults"][4:]) > 3000, off
    assert 5 * sum(on["faults"][4:]) < sum(off["faults"][4:]), (on, off)
