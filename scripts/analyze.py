#!/usr/bin/python3
"""analyze.py: the figures and statistics of session5.Rmd from pretext results files (h5py, numpy,
matplotlib; no scipy: the tests and distributions are implemented below and checked by
tests/test_stats.py against R).

Usage: /usr/bin/python3 scripts/analyze.py FILE [FILE ...] [--out DIR] [--data-dir DIR]

Writes into DIR (default: <stem of the first file>-analysis/ next to it):
  training-images.png   4x4 grid of the first training images with their labels (seed: image())
  rotated-images.png    the same images turned by k = i mod 4 quarter turns, titled with the angle
  training-curves.png   loss and accuracy per epoch, train and validation, benchmark and pretext
  comparison.png        test accuracy and loss of the trials, boxplots with jittered points,
                        supervised vs self-supervised (the seed's final ggplot)
  summary.md, summary.csv
                        per file, variable (accuracy, loss) and kind: n, mean, sd, median, Q1, Q3,
                        IQR, 95% CI of the mean (t-based); two-sided Mann-Whitney U and Welch's t
                        test between the kinds
  sweep.png, sweep.csv  (several files with different trials.labels) test accuracy against the
                        number of labels, both kinds, mean with 95% CI error bars
With several files the per-run figures go into one subfolder per file (named after its stem).
Layout of the input: docs/results-format.md. Outputs: docs/analysis.md.
"""
import argparse
import csv
import gzip
import hashlib
import math
import os
import sys

import h5py
import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

KINDS = ("supervised", "self_supervised")
KIND_TITLES = {"supervised": "Supervised", "self_supervised": "Self-supervised"}
VARIABLES = (("accuracy", "test_accuracy"), ("loss", "test_loss"))
DATA_FILES = ("train_images", "train_labels")


# ---------------------------------------------------------------------------------------------
# Distributions and tests (two-sided, R's conventions: wilcox.test(correct = TRUE), t.test()).
# ---------------------------------------------------------------------------------------------

def _beta_continued_fraction(a, b, x):
    """Continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            return h
    raise ArithmeticError(f"incomplete beta: no convergence for a={a}, b={b}, x={x}")


def betainc_regularized(a, b, x):
    """I_x(a, b), the regularized incomplete beta function, for a, b > 0 and 0 <= x <= 1."""
    if not (a > 0 and b > 0) or not (0.0 <= x <= 1.0):
        raise ValueError(f"betainc_regularized: a={a}, b={b}, x={x} out of range")
    if x == 0.0 or x == 1.0:
        return x
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    front = math.exp(log_front)
    # The fraction converges fast for x < (a+1)/(a+b+2); otherwise use I_x(a,b) = 1 - I_{1-x}(b,a).
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_sf(t, df):
    """P(T > t) for Student's t with df > 0 degrees of freedom."""
    if math.isnan(t) or math.isnan(df):
        return math.nan
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    tail = 0.5 * betainc_regularized(df / 2.0, 0.5, df / (df + t * t))  # P(T > |t|)
    return tail if t >= 0 else 1.0 - tail


def t_cdf(t, df):
    return 1.0 - t_sf(t, df)


def t_quantile(p, df):
    """The p quantile of Student's t (0 < p < 1), by bisection on the CDF (monotone, exact to ~1e-13)."""
    if not 0.0 < p < 1.0 or not df > 0:
        return math.nan
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
        if hi > 1e300:
            return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-14 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def normal_sf(z):
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def rank_with_ties(values):
    """Ranks 1..n, ties getting the average of the ranks they span (R's rank())."""
    values = np.asarray(values, dtype=float)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    sorted_values = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i:j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    return ranks


def mann_whitney_u_counts(n1, n2):
    """Number of arrangements giving each U = 0..n1*n2 (the exact null distribution, no ties)."""
    n = n1 + n2
    max_sum = n * (n + 1) // 2
    # ways[k][s]: ways to choose k of the ranks seen so far with rank sum s (float64: relative
    # precision is all a probability needs, and C(100, 50) ~ 1e29 overflows int64).
    ways = np.zeros((n1 + 1, max_sum + 1))
    ways[0, 0] = 1.0
    for rank in range(1, n + 1):
        for k in range(min(rank, n1), 0, -1):
            ways[k, rank:] += ways[k - 1, :max_sum + 1 - rank]
    min_sum = n1 * (n1 + 1) // 2
    return ways[n1, min_sum:min_sum + n1 * n2 + 1]


def mann_whitney_u(x, y):
    """Two-sided Mann-Whitney U (Wilcoxon rank-sum) test of x against y, as R's wilcox.test(x, y):
    U = W = rank sum of x - n1 (n1 + 1) / 2; exact p when n1, n2 < 50 and there are no ties,
    otherwise the normal approximation with tie and continuity corrections.
    Returns dict(u, p, method)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return {"u": math.nan, "p": math.nan, "method": "n/a"}
    ranks = rank_with_ties(np.concatenate([x, y]))
    u = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2.0)
    _, tie_sizes = np.unique(np.concatenate([x, y]), return_counts=True)
    has_ties = bool(np.any(tie_sizes > 1))
    if n1 < 50 and n2 < 50 and not has_ties:
        counts = mann_whitney_u_counts(n1, n2)
        total = counts.sum()
        k = int(round(u))
        if u > n1 * n2 / 2.0:
            one_sided = counts[k:].sum() / total      # P(U >= u)
        else:
            one_sided = counts[:k + 1].sum() / total  # P(U <= u)
        return {"u": u, "p": min(1.0, 2.0 * one_sided), "method": "exact"}
    n = n1 + n2
    tie_term = float(np.sum(tie_sizes.astype(float) ** 3 - tie_sizes)) / (n * (n - 1))
    sigma = math.sqrt(n1 * n2 / 12.0 * ((n + 1) - tie_term))
    if sigma == 0.0:
        return {"u": u, "p": math.nan, "method": "normal"}
    z = u - n1 * n2 / 2.0
    z = (z - math.copysign(0.5, z) if z != 0 else 0.0) / sigma
    p = 2.0 * min(normal_sf(z), normal_sf(-z))
    return {"u": u, "p": min(1.0, p), "method": "normal"}


def welch_t_test(x, y):
    """Two-sided Welch's t test of mean(x) = mean(y), as R's t.test(x, y). Returns dict(t, df, p)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n1, n2 = len(x), len(y)
    if n1 < 2 or n2 < 2:
        return {"t": math.nan, "df": math.nan, "p": math.nan}
    v1, v2 = x.var(ddof=1) / n1, y.var(ddof=1) / n2
    se2 = v1 + v2
    if se2 == 0.0:
        return {"t": math.nan, "df": math.nan, "p": math.nan}
    t = float((x.mean() - y.mean()) / math.sqrt(se2))
    df = float(se2 * se2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1)))
    return {"t": t, "df": df, "p": min(1.0, 2.0 * t_sf(abs(t), df))}


def describe(values):
    """n, mean, sd, median, q1, q3, iqr (quantiles of R's default type 7) and the t-based 95% CI
    of the mean."""
    v = np.asarray(values, dtype=float)
    n = len(v)
    out = {"n": n}
    if n == 0:
        out.update({k: math.nan for k in ("mean", "sd", "median", "q1", "q3", "iqr", "ci95_low", "ci95_high")})
        return out
    mean = float(v.mean())
    sd = float(v.std(ddof=1)) if n > 1 else math.nan
    q1, median, q3 = (float(q) for q in np.quantile(v, [0.25, 0.5, 0.75]))
    half = t_quantile(0.975, n - 1) * sd / math.sqrt(n) if n > 1 else math.nan
    out.update({"mean": mean, "sd": sd, "median": median, "q1": q1, "q3": q3, "iqr": q3 - q1,
                "ci95_low": mean - half, "ci95_high": mean + half})
    return out


# ---------------------------------------------------------------------------------------------
# Reading results files and the IDX data they name.
# ---------------------------------------------------------------------------------------------

def text(value):
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf8")
    return str(value)


class Run:
    """What the analysis needs from one results file."""

    def __init__(self, path):
        self.path = path
        self.stem = os.path.splitext(os.path.basename(path))[0]
        with h5py.File(path, "r") as f:
            if text(f.attrs.get("format", b"")) != "pretext-results":
                raise ValueError(f"{path} was not written by pretext (no format = pretext-results)")
            self.complete = int(f.attrs.get("complete", 0)) == 1
            self.config = {k: text(v) for k, v in f["config"].attrs.items() if k != "ini"}
            self.provenance = {k: text(v) for k, v in f["provenance"].attrs.items()}
            self.phases = {}
            for phase in ("benchmark", "pretext"):
                if phase in f:
                    g = f[phase]
                    self.phases[phase] = {
                        "test_accuracy": float(g["test_accuracy"][()]),
                        "test_loss": float(g["test_loss"][()]),
                        "history": {k: g["history"][k][()] for k in
                                    ("loss", "accuracy", "val_loss", "val_accuracy")},
                    }
            self.trials = {}
            for kind in KINDS:
                g = f["trials"][kind]
                done = g["done"][()].astype(bool)
                self.trials[kind] = {
                    "n_rows": len(done),
                    "test_accuracy": g["test_accuracy"][()][done],
                    "test_loss": g["test_loss"][()][done],
                }
        self.labels = int(self.config.get("trials.labels", "0"))


def sha256_of(path, decompress):
    h = hashlib.sha256()
    opener = gzip.open if decompress else open
    with opener(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_data_file(run, name, data_dir):
    """The IDX file recorded in /provenance as data_files.<name>: tried as recorded (relative to
    the current folder and to the results file's folder), then by name in --data-dir,
    $PRETEXT_DATA_DIR and the source tree's data/mnist, each raw or .gz. A file whose SHA-256
    matches the recorded one wins; else the first that exists (with a warning)."""
    recorded = run.provenance.get(f"data_files.{name}", "")
    want_sha = run.provenance.get(f"data_sha256.{name}", "")
    base = os.path.basename(recorded) if recorded else None
    candidates = []
    if recorded:
        candidates += [recorded, os.path.join(os.path.dirname(os.path.abspath(run.path)), recorded)]
    source_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if base:
        for folder in (data_dir, os.environ.get("PRETEXT_DATA_DIR"), os.path.join(source_root, "data", "mnist")):
            if folder:
                candidates.append(os.path.join(folder, base))
        candidates.append(os.path.join(source_root, recorded))
    existing = []
    for c in candidates:
        for variant in (c, c[:-3] if c.endswith(".gz") else c + ".gz"):
            if os.path.isfile(variant) and os.path.abspath(variant) not in existing:
                existing.append(os.path.abspath(variant))
    if not existing:
        return None
    # pretext hashes the file's bytes; for a .gz also accept the hash of its decompressed content.
    for c in existing:
        try:
            if want_sha and (sha256_of(c, decompress=False) == want_sha or
                             (c.endswith(".gz") and sha256_of(c, decompress=True) == want_sha)):
                return c
        except OSError:
            continue
    if want_sha:
        print(f"analyze: warning: {existing[0]} does not match the SHA-256 recorded for {name}; using it anyway")
    return existing[0]


def read_idx(path, count):
    """The first `count` items of an IDX file (raw or gzip): (count, rows, cols) or (count,) uint8."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        header = fh.read(4)
        if len(header) != 4 or header[0] != 0 or header[1] != 0 or header[2] != 0x08:
            raise ValueError(f"{path} is not an unsigned-byte IDX file")
        ndim = header[3]
        dims = [int.from_bytes(fh.read(4), "big") for _ in range(ndim)]
        count = min(count, dims[0])
        item = int(np.prod(dims[1:])) if ndim > 1 else 1
        data = np.frombuffer(fh.read(count * item), dtype=np.uint8)
        if data.size != count * item:
            raise ValueError(f"{path} is truncated")
        return data.reshape([count] + dims[1:])


# ---------------------------------------------------------------------------------------------
# Figures.
# ---------------------------------------------------------------------------------------------

def image_grid(images, titles, suptitle, path):
    fig, axes = plt.subplots(4, 4, figsize=(7, 7.6))
    for ax, img, title in zip(axes.flat, images, titles):
        ax.imshow(img, cmap="inferno", interpolation="nearest")  # row 0 on top, as the seed shows it
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    for ax in list(axes.flat)[len(images):]:
        ax.axis("off")
    fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_images(run, out_dir, data_dir, written):
    images_path = find_data_file(run, "train_images", data_dir)
    labels_path = find_data_file(run, "train_labels", data_dir)
    if images_path is None or labels_path is None:
        print(f"analyze: {run.path}: training images not found "
              f"({run.provenance.get('data_files.train_images', '?')}); use --data-dir: image grids skipped")
        return
    images = read_idx(images_path, 16)
    labels = read_idx(labels_path, 16)
    path = os.path.join(out_dir, "training-images.png")
    image_grid(images, [str(int(y)) for y in labels], "First 16 training images with their labels", path)
    written.append(path)
    # The pretext pseudo-labels the run drew (/pretext/train_rotations); files without them (an
    # older format, or a run stopped before the pretext phase) get an illustration instead: image i
    # turned by i mod 4 quarter turns. Either way the rotation is np.rot90, the exact
    # counter-clockwise rotation pretext applies.
    stored = None
    with h5py.File(run.path, "r") as f:
        if "pretext/train_rotations" in f:
            stored = f["pretext/train_rotations"][:len(images)]
    if stored is not None:
        turns = [int(k) for k in stored]
        title = "Rotated images with their pseudo-labels (as drawn for the pretext task)"
    else:
        turns = [i % 4 for i in range(len(images))]
        title = ("Rotated images with pseudo-labels\n(illustration: image i turned by "
                 "(i mod 4) x 90 degrees counter-clockwise)")
    rotated = [np.rot90(img, k) for img, k in zip(images, turns)]
    titles = [f"{int(y)}: {90 * k} degrees" for y, k in zip(labels, turns)]
    path = os.path.join(out_dir, "rotated-images.png")
    image_grid(rotated, titles, title, path)
    written.append(path)


def plot_curves(run, out_dir, written):
    phases = [p for p in ("benchmark", "pretext") if p in run.phases]
    if not phases:
        print(f"analyze: {run.path}: no benchmark or pretext phase stored: training curves skipped")
        return
    titles = {"benchmark": "Benchmark (10 digits)", "pretext": "Pretext (4 rotations)"}
    fig, axes = plt.subplots(len(phases), 2, figsize=(9, 3.4 * len(phases)), squeeze=False)
    for row, phase in enumerate(phases):
        hist = run.phases[phase]["history"]
        epochs = np.arange(1, len(hist["loss"]) + 1)
        for col, metric in enumerate(("loss", "accuracy")):
            ax = axes[row, col]
            ax.plot(epochs, hist[metric], "o-", label="training")
            ax.plot(epochs, hist["val_" + metric], "o-", label="validation")
            ax.set_title(f"{titles[phase]}: {metric}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(metric)
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend()
    fig.tight_layout()
    path = os.path.join(out_dir, "training-curves.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)


def plot_comparison(run, out_dir, written):
    kinds = [k for k in KINDS if len(run.trials[k]["test_accuracy"]) > 0]
    if not kinds:
        print(f"analyze: {run.path}: no finished trials: comparison skipped")
        return
    jitter_rng = np.random.default_rng(42)  # fixed: the same file gives the same figure
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, (variable, field) in zip(axes, VARIABLES):
        data = [run.trials[k][field] for k in kinds]
        ax.boxplot(data, widths=0.6, showfliers=False, medianprops={"color": "black"})
        for pos, values in enumerate(data, start=1):
            xs = pos + jitter_rng.uniform(-0.3, 0.3, size=len(values))
            ax.scatter(xs, values, alpha=0.7, color="black", s=16, zorder=3)
        ax.set_xticks(range(1, len(kinds) + 1), [KIND_TITLES[k] for k in kinds])
        ax.set_title(variable)
        ax.set_xlabel("method")
        ax.set_ylabel("value")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Test {' and '.join(v for v, _ in VARIABLES)} of the trials, "
                 f"{run.labels} labelled images each ({run.stem})", fontsize=11)
    fig.tight_layout()
    path = os.path.join(out_dir, "comparison.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)


# ---------------------------------------------------------------------------------------------
# Tables.
# ---------------------------------------------------------------------------------------------

CSV_COLUMNS = ["file", "labels", "variable", "kind", "n", "mean", "sd", "median", "q1", "q3", "iqr",
               "ci95_low", "ci95_high", "mann_whitney_u", "mann_whitney_p", "mann_whitney_method",
               "welch_t", "welch_df", "welch_p"]


def run_statistics(run):
    """Rows for summary.csv: one per (variable, kind); the tests (supervised vs self-supervised,
    U of the supervised sample) repeated on both rows of a variable."""
    rows = []
    for variable, field in VARIABLES:
        x = run.trials["supervised"][field]
        y = run.trials["self_supervised"][field]
        mw = mann_whitney_u(x, y)
        welch = welch_t_test(x, y)
        for kind in KINDS:
            row = {"file": run.path, "labels": run.labels, "variable": variable, "kind": kind}
            row.update(describe(run.trials[kind][field]))
            row.update({"mann_whitney_u": mw["u"], "mann_whitney_p": mw["p"],
                        "mann_whitney_method": mw["method"], "welch_t": welch["t"],
                        "welch_df": welch["df"], "welch_p": welch["p"]})
            rows.append(row)
    return rows


def fmt(value, digits=4):
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}"


def fmt_p(p):
    if p is None or math.isnan(p):
        return "n/a"
    return f"{p:.2e}" if p < 1e-4 else f"{p:.4f}"


def write_csv(path, rows, columns):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        for row in rows:
            w.writerow({k: (repr(float(v)) if isinstance(v, (float, np.floating)) else v)
                        for k, v in row.items() if k in columns})


def markdown_summary(runs, rows_by_run, sweep_rows):
    lines = ["# pretext results summary", ""]
    for run in runs:
        rows = rows_by_run[run.path]
        lines += [f"## {run.path}", ""]
        status = "complete" if run.complete else "INCOMPLETE (trials still missing)"
        lines.append(f"{status}; {run.labels} labelled images per trial; trials done: " +
                     ", ".join(f"{KIND_TITLES[k].lower()} {len(run.trials[k]['test_accuracy'])} of "
                               f"{run.trials[k]['n_rows']}" for k in KINDS) +
                     f"; seed {run.config.get('experiment.seed', '?')}.")
        for phase, title in (("benchmark", "Benchmark (all training labels)"), ("pretext", "Pretext (rotation)")):
            if phase in run.phases:
                p = run.phases[phase]
                lines.append(f"{title}: test accuracy {p['test_accuracy']:.4f}, test loss {p['test_loss']:.4f}.")
        lines += ["", "| variable | kind | n | mean | sd | median | Q1 | Q3 | IQR | 95% CI of the mean |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in rows:
            lines.append(f"| {r['variable']} | {KIND_TITLES[r['kind']]} | {r['n']} | {fmt(r['mean'])} | "
                         f"{fmt(r['sd'])} | {fmt(r['median'])} | {fmt(r['q1'])} | {fmt(r['q3'])} | "
                         f"{fmt(r['iqr'])} | [{fmt(r['ci95_low'])}, {fmt(r['ci95_high'])}] |")
        lines += ["", "Supervised vs self-supervised, two-sided:", "",
                  "| variable | Mann-Whitney U | p (method) | Welch t | df | p |",
                  "|---|---:|---|---:|---:|---:|"]
        for r in rows[::len(KINDS)]:
            lines.append(f"| {r['variable']} | {fmt(r['mann_whitney_u'], 1)} | {fmt_p(r['mann_whitney_p'])} "
                         f"({r['mann_whitney_method']}) | {fmt(r['welch_t'], 3)} | {fmt(r['welch_df'], 2)} | "
                         f"{fmt_p(r['welch_p'])} |")
        lines.append("")
    if sweep_rows:
        lines += ["## Sweep: test accuracy against labelled images", "",
                  "| labels | kind | files | n | mean | 95% CI of the mean |", "|---:|---|---:|---:|---:|---|"]
        for r in sweep_rows:
            lines.append(f"| {r['labels']} | {KIND_TITLES[r['kind']]} | {r['files']} | {r['n']} | {fmt(r['mean'])} | "
                         f"[{fmt(r['ci95_low'])}, {fmt(r['ci95_high'])}] |")
        lines.append("")
    lines += ["Quantiles: linear interpolation (R's type 7). CI: mean +- t(0.975, n-1) sd / sqrt(n). "
              "Mann-Whitney U is the statistic of the supervised sample (R's W); exact p without ties "
              "and n < 50 per kind, else normal approximation with tie and continuity corrections. "
              "Welch: unequal variances, Welch-Satterthwaite df.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Sweep over several files.
# ---------------------------------------------------------------------------------------------

# Config keys a sweep is expected to vary (a label budget, seeds, resources that do not change results).
INTENDED_SWEEP_KEYS = ("trials.labels", "experiment.seed", "trials.supervised", "trials.self_supervised",
                       "run.threads", "run.gradient_sum", "data.dir", "benchmark.enabled")
SWEEP_COLUMNS = ["labels", "kind", "files", "n", "mean", "sd", "ci95_low", "ci95_high"]


def sweep_statistics(runs):
    """Trials pooled over the files with the same trials.labels (e.g. an array job's seeds)."""
    rows = []
    for labels in sorted({r.labels for r in runs}):
        group = [r for r in runs if r.labels == labels]
        for kind in KINDS:
            acc = np.concatenate([r.trials[kind]["test_accuracy"] for r in group])
            d = describe(acc)
            rows.append({"labels": labels, "kind": kind, "files": len(group), "n": d["n"], "mean": d["mean"],
                         "sd": d["sd"], "ci95_low": d["ci95_low"], "ci95_high": d["ci95_high"]})
    return rows


def plot_sweep(sweep_rows, out_dir, written):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    labels_all = sorted({r["labels"] for r in sweep_rows})
    log_x = labels_all[-1] >= 10 * labels_all[0]
    for offset, kind, marker in ((-1, "supervised", "o"), (1, "self_supervised", "s")):
        rows = [r for r in sweep_rows if r["kind"] == kind and r["n"] > 0]
        if not rows:
            continue
        x = np.array([r["labels"] for r in rows], dtype=float)
        x = x * (1.0 + 0.02 * offset) if log_x else x + 0.01 * offset * (labels_all[-1] - labels_all[0])
        mean = np.array([r["mean"] for r in rows])
        low = np.array([r["ci95_low"] for r in rows])
        high = np.array([r["ci95_high"] for r in rows])
        # n = 1 has no interval: draw the point without a bar
        yerr = np.vstack([np.nan_to_num(mean - low), np.nan_to_num(high - mean)])
        ax.errorbar(x, mean, yerr=yerr, fmt=marker + "-", capsize=4, label=KIND_TITLES[kind])
    if log_x:
        ax.set_xscale("log")
    ax.set_xticks(labels_all, [str(v) for v in labels_all])
    ax.minorticks_off()
    ax.set_xlabel("labelled training images per trial (trials.labels)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Test accuracy against number of labels (mean and 95% CI)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = os.path.join(out_dir, "sweep.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)


# ---------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", metavar="FILE", help="pretext results file(s) (.h5)")
    ap.add_argument("--out", metavar="DIR", help="output folder (default: <first file's stem>-analysis next to it)")
    ap.add_argument("--data-dir", metavar="DIR", help="folder with the MNIST IDX files, if not where the run found them")
    args = ap.parse_args(argv)

    runs = []
    for path in args.files:
        try:
            runs.append(Run(path))
        except (OSError, ValueError, KeyError) as e:
            sys.exit(f"analyze: cannot read {path}: {e}")
    out_dir = args.out or os.path.join(os.path.dirname(os.path.abspath(args.files[0])), runs[0].stem + "-analysis")
    os.makedirs(out_dir, exist_ok=True)

    written = []
    rows_by_run, all_rows = {}, []
    used_names = set()
    for run in runs:
        run_dir = out_dir
        if len(runs) > 1:
            name = run.stem
            suffix = 2
            while name in used_names:
                name = f"{run.stem}-{suffix}"
                suffix += 1
            used_names.add(name)
            run_dir = os.path.join(out_dir, name)
            os.makedirs(run_dir, exist_ok=True)
        if not run.complete:
            print(f"analyze: warning: {run.path} is incomplete; using the trials done so far")
        plot_images(run, run_dir, args.data_dir, written)
        plot_curves(run, run_dir, written)
        plot_comparison(run, run_dir, written)
        rows_by_run[run.path] = run_statistics(run)
        all_rows += rows_by_run[run.path]

    sweep_rows = []
    if len({r.labels for r in runs}) > 1:
        # A sweep compares label budgets: other differences (epochs, data size) would confound it.
        varying = set(INTENDED_SWEEP_KEYS)
        keys = set().union(*(r.config for r in runs)) - varying
        differing = sorted(k for k in keys if len({r.config.get(k) for r in runs}) > 1)
        if differing:
            print("analyze: warning: the files also differ in " + ", ".join(differing) +
                  ": the sweep mixes those settings")
        sweep_rows = sweep_statistics(runs)
        plot_sweep(sweep_rows, out_dir, written)
        path = os.path.join(out_dir, "sweep.csv")
        write_csv(path, sweep_rows, SWEEP_COLUMNS)
        written.append(path)
    elif len(runs) > 1:
        print("analyze: every file has the same trials.labels: no sweep figure")

    path = os.path.join(out_dir, "summary.csv")
    write_csv(path, all_rows, CSV_COLUMNS)
    written.append(path)
    path = os.path.join(out_dir, "summary.md")
    with open(path, "w") as fh:
        fh.write(markdown_summary(runs, rows_by_run, sweep_rows))
    written.append(path)

    print(f"analyze: wrote {len(written)} files into {out_dir}:")
    for p in written:
        print("  " + p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
