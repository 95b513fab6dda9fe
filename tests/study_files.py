#!/usr/bin/env python3
"""study_files.py: writes synthetic pretext results files with known trial values for the analysis
tests (tests/e2e_analyze_study.sh, tests/e2e_analyze_r.sh), in both layouts of
docs/results-format.md, and truth.csv, the values written, one row per trial row.

Usage: study_files.py OUTDIR
Writes into OUTDIR:
  study_a.h5        format 2, seeds 1-4, budgets 50 150 500, 5 + 5 trials each, trials.paired =
                    "true" as a root attribute, /phases/<seed>/{benchmark,pretext} and /benchmark,
                    /pretext soft links to seed 1's; one unfinished trial
  study_b.h5        format 2, seeds 5-7, budgets 50 150 500 1000, trials.paired = "true" in
                    /config, no phases
  single_150.h5     format 1, seed 8, 150 labels (seed and budget only in /config)
  single_1500.h5    format 1, seed 8, 1500 labels
  edge.h5           format 1, seed 9, 20 labels: 1 finished supervised and 0 finished
                    self-supervised trials (statistics that need more data are NaN)
  ties.h5           format 1, seed 10, 30 labels: 6 + 6 trials with tied values (the rank-sum
                    test's normal approximation)
  empty_v1.h5, empty_v2.h5
                    no trial rows at all (format 1: still one run, from /config; format 2: none)
  truth.csv         file, kind, experiment_seed, labels, index, done, test_accuracy, test_loss, paired
Values are a deterministic function of (kind, seed, budget, index): a budget effect, a seed effect
shared by both kinds, a self-supervised gain and trial noise, rounded to 1e-4 like an accuracy
over 10,000 test images.
"""
import csv
import os
import sys

import h5py
import numpy as np

KINDS = ("supervised", "self_supervised")


def s(text):
    return np.bytes_(text)  # fixed-length ASCII, as pretext writes strings


def value(kind, seed, labels, index):
    rng = np.random.default_rng([seed, labels, index, KINDS.index(kind)])
    seed_effect = np.random.default_rng([seed, 999]).normal(0.0, 0.02)
    acc = 0.55 + 0.12 * np.log10(labels / 50.0) + seed_effect + (0.008 if kind == "self_supervised" else 0.0)
    acc = float(np.round(acc + rng.normal(0.0, 0.02), 4))
    loss = float(np.round(2.2 - 1.5 * acc + rng.normal(0.0, 0.02), 6))
    return acc, loss


def write_phase(g, classes):
    g.attrs["n_classes"] = np.int32(classes)
    g["test_accuracy"] = 0.9
    g["test_loss"] = 0.3
    g["seconds"] = 1.0
    for k, v in (("loss", [0.5, 0.4]), ("accuracy", [0.8, 0.85]), ("val_loss", [0.45, 0.41]),
                 ("val_accuracy", [0.82, 0.84]), ("seconds", [0.5, 0.5])):
        g[f"history/{k}"] = np.array(v)


def write_file(path, version, groups, n_trials, paired=None, paired_where="root", phases_for=(),
               not_done=(), override=None):
    """groups: [(seed, labels)]; not_done: {(kind, seed, labels, index)}; override: {(kind, seed,
    labels, index): acc}. Returns the truth rows."""
    rows = []
    with h5py.File(path, "w") as f:
        f.attrs["format"] = s("pretext-results")
        f.attrs["format_version"] = np.int32(version)
        f.attrs["complete"] = np.int32(0 if not_done else 1)
        c = f.create_group("config")
        c.attrs["experiment.seed"] = s(str(groups[0][0]))
        c.attrs["trials.labels"] = s(str(groups[0][1]))
        c.attrs["trials.supervised"] = s(str(n_trials))
        c.attrs["trials.self_supervised"] = s(str(n_trials))
        c.attrs["ini"] = s("[experiment]\nseed = %d\n" % groups[0][0])
        if paired is not None:
            (f.attrs if paired_where == "root" else c.attrs)["trials.paired"] = s("true" if paired else "false")
        f.create_group("provenance").attrs["version"] = s("synthetic")
        for seed in phases_for:
            write_phase(f.create_group(f"phases/{seed}/benchmark"), 10)
            write_phase(f.create_group(f"phases/{seed}/pretext"), 4)
        if phases_for:
            f["benchmark"] = h5py.SoftLink(f"/phases/{phases_for[0]}/benchmark")
            f["pretext"] = h5py.SoftLink(f"/phases/{phases_for[0]}/pretext")
        for kind in KINDS:
            cols = {k: [] for k in ("seed", "labels", "index", "done", "acc", "loss")}
            for seed, labels in groups:
                for i in range(n_trials.get(kind, 0) if isinstance(n_trials, dict) else n_trials):
                    acc, loss = value(kind, seed, labels, i)
                    if override and (kind, seed, labels, i) in override:
                        acc = override[(kind, seed, labels, i)]
                    done = (kind, seed, labels, i) not in not_done
                    if not done:
                        acc, loss = float("nan"), float("nan")
                    for k, v in zip(cols, (seed, labels, i, int(done), acc, loss)):
                        cols[k].append(v)
                    rows.append({"file": os.path.basename(path), "kind": kind, "experiment_seed": seed,
                                 "labels": labels, "index": i, "done": int(done), "test_accuracy": acc,
                                 "test_loss": loss, "paired": int(bool(paired))})
            g = f.create_group(f"trials/{kind}")
            n = len(cols["index"])
            g["index"] = np.array(cols["index"], dtype=np.int32)
            g["done"] = np.array(cols["done"], dtype=np.int8)
            g["seed"] = np.arange(n, dtype=np.uint64) + 1000
            g["rank"] = np.zeros(n, dtype=np.int32)
            g["test_accuracy"] = np.array(cols["acc"], dtype=float)
            g["test_loss"] = np.array(cols["loss"], dtype=float)
            g["seconds"] = np.ones(n)
            if version >= 2:
                g["experiment_seed"] = np.array(cols["seed"], dtype=np.uint64)
                g["labels"] = np.array(cols["labels"], dtype=np.int32)
    return rows


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: study_files.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rows = []
    rows += write_file(os.path.join(out, "study_a.h5"), 2, [(s_, b) for s_ in (1, 2, 3, 4) for b in (50, 150, 500)],
                       5, paired=True, paired_where="root", phases_for=(1, 2, 3, 4),
                       not_done={("supervised", 2, 150, 3)})
    rows += write_file(os.path.join(out, "study_b.h5"), 2,
                       [(s_, b) for s_ in (5, 6, 7) for b in (50, 150, 500, 1000)], 5, paired=True,
                       paired_where="config")
    rows += write_file(os.path.join(out, "single_150.h5"), 1, [(8, 150)], 5)
    rows += write_file(os.path.join(out, "single_1500.h5"), 1, [(8, 1500)], 5)
    # edge.h5, ties.h5 and the empty files are not part of the study (not in truth.csv)
    write_file(os.path.join(out, "edge.h5"), 1, [(9, 20)], {"supervised": 3, "self_supervised": 2},
               not_done={("supervised", 9, 20, 1), ("supervised", 9, 20, 2),
                         ("self_supervised", 9, 20, 0), ("self_supervised", 9, 20, 1)})
    write_file(os.path.join(out, "ties.h5"), 1, [(10, 30)], 6,
               override={**{("supervised", 10, 30, i): v for i, v in enumerate([0.5, 0.5, 0.6, 0.7, 0.7, 0.8])},
                         **{("self_supervised", 10, 30, i): v for i, v in enumerate([0.6, 0.7, 0.7, 0.9, 0.9, 0.5])}})
    write_file(os.path.join(out, "empty_v1.h5"), 1, [(11, 60)], 0)
    write_file(os.path.join(out, "empty_v2.h5"), 2, [(11, 60)], 0)
    with open(os.path.join(out, "truth.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    print(f"study_files: wrote {len(rows)} trial rows into {out}")


if __name__ == "__main__":
    main()
