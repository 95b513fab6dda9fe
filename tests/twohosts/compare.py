#!/usr/bin/python3
"""compare.py A B [--exact] [--report]: compares the data-parallel phases (benchmark, pretext) of
two pretext results files: every weight tensor, test accuracy and loss, the epoch histories.

  --exact    every value bit-identical
  default    within float rounding: weights |a-b| <= 1e-5 (absolute), losses relative 1e-5,
             accuracies |a-b| <= 0.002 (2 of the test's 1000 images changing class; the
             histories' accuracies are over 2400 training and 600 validation images)
Prints the largest differences found ("bit-identical" if none); exits 1 if a check fails.

Why these tolerances: the layouts sum the ranks' gradients in different orders (one host: one
node of 4 ranks, ((g0+g1)+g2)+g3; two hosts: (g0+g1)+(g2+g3)), so each step's gradient differs in
the last bit or two (float32, relative ~1e-7) and the difference carries into later steps. On the
test's 2 x 38 steps the weights differ by <= 1e-7 and losses by <= 3e-8 (relative). An Adam step
moves a weight by up to the learning rate (1e-3): a real error in the sum (a rank or node left out,
a slice not exchanged, stale weights on one node) changes weights by O(1e-3) in one step, 100x the
weight tolerance, which is itself 100x the rounding seen."""
import sys

import h5py
import numpy as np

W_ATOL, L_RTOL, ACC_ATOL = 1e-5, 1e-5, 0.002


def main():
    files = [x for x in sys.argv[1:] if not x.startswith("--")]
    if len(files) != 2:
        print(__doc__)
        sys.exit(2)
    a, b = files
    exact = "--exact" in sys.argv
    failures, worst = [], {}

    def note(key, d):
        worst[key] = max(worst.get(key, 0.0), float(d))

    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for phase in ("benchmark", "pretext"):
            for f, name in ((fa, a), (fb, b)):
                if phase not in f:
                    print(f"compare: FAIL: {name} has no finished {phase} phase")
                    sys.exit(1)
            for t in fa[f"{phase}/weights"]:
                x = fa[f"{phase}/weights/{t}"][()].astype(np.float64)
                y = fb[f"{phase}/weights/{t}"][()].astype(np.float64)
                if x.shape != y.shape:
                    failures.append(f"{phase}/weights/{t}: shapes {x.shape} vs {y.shape}")
                    continue
                d = np.abs(x - y).max()
                note("weights max |a-b|", d)
                if (exact and d != 0) or d > W_ATOL:
                    failures.append(f"{phase}/weights/{t}: max |a-b| = {d:.3g}")
            fields = ["test_loss", "test_accuracy"] + \
                [f"history/{h}" for h in ("loss", "accuracy", "val_loss", "val_accuracy")]
            for field in fields:
                x = np.atleast_1d(fa[f"{phase}/{field}"][()]).astype(np.float64)
                y = np.atleast_1d(fb[f"{phase}/{field}"][()]).astype(np.float64)
                if x.shape != y.shape:
                    failures.append(f"{phase}/{field}: shapes {x.shape} vs {y.shape}")
                    continue
                if "loss" in field:
                    d = (np.abs(x - y) / np.abs(x)).max()
                    note("losses max relative", d)
                    bad = d > L_RTOL
                else:
                    d = np.abs(x - y).max()
                    note("accuracies max |a-b|", d)
                    bad = d > ACC_ATOL
                if (exact and d != 0) or bad:
                    failures.append(f"{phase}/{field}: {x.tolist()} vs {y.tolist()}")
    desc = "bit-identical" if all(v == 0 for v in worst.values()) else \
        ", ".join(f"{k} {v:.3g}" for k, v in worst.items())
    if failures:
        print(f"compare: FAIL: {a} vs {b} ({'exact' if exact else 'tolerance'}): " + "; ".join(failures))
        sys.exit(1)
    print(f"compare: phases of {a} and {b} {'identical' if exact else 'agree'}: {desc}")


if __name__ == "__main__":
    main()
