#!/usr/bin/env python3
"""results_tool.py: checks on pretext results files for the end-to-end tests (h5py, numpy).

  results_tool.py smoke FILE N_SUP N_SELF     phases, trial tables, weight shapes, sane accuracies
  results_tool.py same-trials A B [--timing]  trial results of A and B bit-identical (with
                                             --timing also seconds and rank, i.e. not recomputed)
  results_tool.py done FILE                  prints: complete n_done_supervised n_done_self
Exits 1 with a message on the first failed check.
"""
import sys

import h5py
import numpy as np


def fail(msg):
    print("results_tool: FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


KERAS_SHAPES = {
    "conv2d_kernel": (2, 2, 1, 64), "conv2d_bias": (64,),
    "conv2d_1_kernel": (2, 2, 64, 32), "conv2d_1_bias": (32,),
    "dense_kernel": (1568, 256), "dense_bias": (256,),
}


def smoke(path, n_sup, n_self):
    with h5py.File(path, "r") as f:
        check(f.attrs["format"] in (b"pretext-results", "pretext-results"), "format attribute")
        check(int(f.attrs["complete"]) == 1, "file not marked complete")
        for phase, classes in (("benchmark", 10), ("pretext", 4)):
            check(phase in f, f"/{phase} missing")
            acc = float(f[f"{phase}/test_accuracy"][()])
            chance = 1.0 / classes
            check(chance + 0.1 < acc <= 1.0, f"{phase} test accuracy {acc} not clearly above chance {chance}")
            hist = f[f"{phase}/history/loss"][()]
            check(len(hist) >= 1 and np.all(np.isfinite(hist)), f"{phase} history")
            shapes = dict(KERAS_SHAPES)
            shapes["dense_1_kernel"] = (256, classes)
            shapes["dense_1_bias"] = (classes,)
            for name, shape in shapes.items():
                d = f[f"{phase}/weights/{name}"]
                check(d.shape == shape, f"{phase}/weights/{name} has shape {d.shape}, expected {shape}")
                check(np.all(np.isfinite(d[()])), f"{phase}/weights/{name} not finite")
        for kind, n in (("supervised", n_sup), ("self_supervised", n_self)):
            acc = f[f"trials/{kind}/test_accuracy"][()]
            loss = f[f"trials/{kind}/test_loss"][()]
            check(acc.shape == (n,), f"{kind}: {acc.shape[0]} trial rows, expected {n}")
            check(np.all((acc > 0.2) & (acc <= 1.0)), f"{kind} trial accuracies out of range: {acc}")
            check(np.all(np.isfinite(loss) & (loss > 0)), f"{kind} trial losses: {loss}")
            idx = f[f"trials/{kind}/sample_indices"][()]
            for row in idx:
                check(len(set(row.tolist())) == len(row), f"{kind}: repeated sample index")
    print(f"results_tool: {path}: smoke checks passed")


def same_trials(a, b, timing):
    fields = ["test_accuracy", "test_loss", "sample_indices", "seed", "done",
              "history/loss", "history/accuracy", "history/val_loss", "history/val_accuracy"]
    if timing:
        fields += ["seconds", "rank", "history/seconds"]
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for kind in ("supervised", "self_supervised"):
            for field in fields:
                x = fa[f"trials/{kind}/{field}"][()]
                y = fb[f"trials/{kind}/{field}"][()]
                check(x.shape == y.shape, f"{kind}/{field}: shapes {x.shape} vs {y.shape}")
                check(np.array_equal(x, y, equal_nan=x.dtype.kind == "f"),
                      f"{kind}/{field} differs between {a} and {b}:\n{x}\n{y}")
    print(f"results_tool: trials of {a} and {b} identical ({'with' if timing else 'without'} timing)")


def done(path):
    with h5py.File(path, "r") as f:
        n = [int(np.sum(f[f"trials/{k}/done"][()])) for k in ("supervised", "self_supervised")]
        print(int(f.attrs["complete"]), n[0], n[1])


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "smoke":
        smoke(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "same-trials":
        same_trials(sys.argv[2], sys.argv[3], "--timing" in sys.argv)
    elif cmd == "done":
        done(sys.argv[2])
    else:
        fail("unknown command " + cmd)
