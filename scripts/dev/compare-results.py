#!/usr/bin/env python3
"""compare-results.py: are two pretext results files the same run, number for number?

Usage: compare-results.py A.h5 B.h5 [--tolerance REL] [--strict]

Compares every numeric dataset under /benchmark, /pretext, /phases, /checkpoint and /trials (the
weights, histories, test metrics, sample indices, rotation labels) except wall-clock columns
(`seconds`) and the rank that ran a trial. With no tolerance (the default) the values must be
bit-identical; with --tolerance REL each value may differ by REL times max(1, |value|). Datasets
in one file only (a newer format adds some: /phases/<seed>, a trial's experiment_seed and labels)
are listed; with --strict they count as differences. Prints each difference and exits 1 if any,
0 if none. Needs h5py and numpy (the Python that has h5py).
"""
import argparse
import sys

import h5py
import numpy as np

SKIP_NAMES = {"seconds", "rank"}
ROOTS = ("benchmark", "pretext", "phases", "checkpoint", "trials")


def datasets(f):
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and name.split("/")[-1] not in SKIP_NAMES:
            out[name] = obj[()]

    for root in ROOTS:
        if root in f:
            f[root].visititems(lambda n, o, r=root: visit(f"{r}/{n}", o))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--tolerance", type=float, default=0.0)
    ap.add_argument("--strict", action="store_true")
    args = ap.parse_args()
    with h5py.File(args.a, "r") as fa, h5py.File(args.b, "r") as fb:
        da, db = datasets(fa), datasets(fb)
    bad = 0
    one_sided = 0
    for name in sorted(set(da) | set(db)):
        if name not in da or name not in db:
            one_sided += 1
            if args.strict:
                print(f"{name}: only in {'A' if name in da else 'B'}")
                bad += 1
            continue
        x, y = np.asarray(da[name]), np.asarray(db[name])
        if x.shape != y.shape:
            print(f"{name}: shapes {x.shape} and {y.shape}")
            bad += 1
            continue
        if x.dtype.kind in "fc":
            both_nan = np.isnan(x) & np.isnan(y)
            if args.tolerance == 0.0:
                differ = ~((x == y) | both_nan)
            else:
                differ = ~((np.abs(x - y) <= args.tolerance * np.maximum(1.0, np.abs(y))) | both_nan)
        else:
            differ = x != y
        if np.any(differ):
            k = int(np.argmax(differ.ravel()))
            print(f"{name}: {int(differ.sum())} of {differ.size} values differ "
                  f"(first at flat index {k}: {x.ravel()[k]!r} vs {y.ravel()[k]!r})")
            bad += 1
    print(f"compared {len(set(da) & set(db))} datasets: "
          + ("identical" if not bad else f"{bad} differ") + (f" (tolerance {args.tolerance})" if args.tolerance else "")
          + (f"; {one_sided} in one file only" if one_sided else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
