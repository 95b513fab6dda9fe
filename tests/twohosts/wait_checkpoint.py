#!/usr/bin/python3
"""wait_checkpoint.py FILE PHASE TIMEOUT PID: waits until the results file FILE holds a checkpoint
of PHASE (/checkpoint/<seed>/PHASE in format 2, /checkpoint/PHASE in format 1; written by rank 0 after each epoch of a data-parallel phase) and
prints its epochs_done. Exits 1 after TIMEOUT seconds, or as soon as process PID (the job) is gone.
Polls every 20 ms; the file is replaced atomically by pretext, so every open sees a whole file."""
import os
import sys
import time

os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")
import h5py  # noqa: E402

path, phase, timeout, pid = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
end = time.monotonic() + timeout
seen = None
while time.monotonic() < end:
    try:
        if os.path.exists(path):
            with h5py.File(path, "r") as f:
                g = f.get(f"checkpoint/{phase}")
                if g is None and "checkpoint" in f:   # format 2: one group per experiment seed
                    g = next((f["checkpoint"][s][phase] for s in f["checkpoint"]
                              if phase in f["checkpoint"][s]), None)
                if g is not None and int(g.attrs["epochs_done"]) >= 1:
                    print(int(g.attrs["epochs_done"]))
                    sys.exit(0)
    except OSError as e:   # a file being replaced at this very moment: try again
        seen = e
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        print(f"wait_checkpoint: the job (PID {pid}) ended before a checkpoint of {phase} appeared", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.02)
print(f"wait_checkpoint: no checkpoint of {phase} in {path} after {timeout} s (last error: {seen})", file=sys.stderr)
sys.exit(1)
