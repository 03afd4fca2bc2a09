"""Run `vidbench ARGS` with one fault armed through the environment (used by tests/test_fault_injection.py).

    VB_FAULT=<os function>:<n>:kill    SIGKILL this process at the n-th call of os.<function> (fsync: a
                                       shard, checkpoint or cache file fully written, not yet renamed;
                                       replace: the rename that publishes a file, or prepare's commit)
    VB_FAULT=<os function>:<n>:pause   at the n-th call, create the file $VB_PAUSED and wait until it is
                                       deleted (holds the command's lock while another one starts)
    VB_COUNTS=<file>                   write {"fsync": k, "replace": m} at exit: the calls of a whole run
    VB_SHARD_BYTES=<n>                 shard size of prepared stores (several shards from a tiny dataset)

The faults sit in the test, not in vidbench: the launcher wraps os functions before the CLI starts.
"""

import atexit
import json
import os
import signal
import sys
import time

COUNTED = ("fsync", "replace")
counts = dict.fromkeys(COUNTED, 0)
fault = os.environ.get("VB_FAULT")
target, when, action = fault.split(":") if fault else (None, "0", None)


def wrap(name):
    original = getattr(os, name)

    def wrapped(*args, **kwargs):
        counts[name] += 1
        if name == target and counts[name] == int(when):
            if action == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            paused = os.environ["VB_PAUSED"]
            open(paused, "w").close()
            while os.path.exists(paused):
                time.sleep(0.05)
        return original(*args, **kwargs)

    setattr(os, name, wrapped)


for function in COUNTED:
    wrap(function)

if "VB_COUNTS" in os.environ:
    path = os.environ["VB_COUNTS"]
    atexit.register(lambda: open(path, "w").write(json.dumps(counts)))

if "VB_SHARD_BYTES" in os.environ:
    import vidbench.data.store

    vidbench.data.store.SHARD_BYTES = int(os.environ["VB_SHARD_BYTES"])

from vidbench.cli import run  # noqa: E402  (after the faults are armed)

sys.argv = ["vidbench", *sys.argv[1:]]
run()
