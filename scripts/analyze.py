#!/usr/bin/env python3
"""analyze.py: the figures and statistics of session5.Rmd from pretext results files, and the
analysis of a study over several seeds and label budgets (h5py, numpy, scipy, matplotlib).

Usage: analyze.py FILE [FILE ...] [--out DIR] [--data-dir DIR]
Run it with the Python that has h5py, numpy, scipy and matplotlib (Debian: /usr/bin/python3).

Writes into DIR (default: <stem of the first file>-analysis/ next to it); every figure as PNG
(150 dpi) and PDF:
  training-images       4x4 grid of the first training images with their labels (seed: image())
  rotated-images        the same images turned by their pretext pseudo-labels
  training-curves       loss and accuracy per epoch, train and validation, benchmark and pretext
  comparison            test accuracy and loss of the trials, boxplots with jittered points,
                        supervised vs self-supervised (the seed's final ggplot)
  summary.md, summary.csv
                        per file, (seed, label budget), variable (accuracy, loss) and kind: n,
                        mean, sd, median, Q1, Q3, IQR, 95% CI of the mean; two-sided Mann-Whitney
                        U and Welch's t test between the kinds
  sweep, sweep.csv      (several label budgets) the trials pooled per budget
  label_curve, label_curve.csv, per_seed.csv, seed_comparison.csv, paired_trials.csv
                        (several seeds or budgets) the study: seeds as the unit of replication
With several files the per-run figures go into one subfolder per file (named after its stem).
Input layouts (format 1 and 2): docs/results-format.md. Every output: docs/analysis.md.
"""
import argparse
import csv
import gzip
import hashlib
import math
import os
import sys
import warnings

try:
    import h5py
    import numpy as np
    from scipy import stats
    import matplotlib
except ImportError as e:  # the wrong Python (e.g. a pyenv one without Debian's modules)
    sys.exit(f"analyze.py: {e}: run it with the Python that has h5py, numpy, scipy and matplotlib "
             f"(Debian: /usr/bin/python3 after apt-get install python3-h5py python3-numpy python3-scipy "
             f"python3-matplotlib; elsewhere: pip install h5py numpy scipy matplotlib); this is {sys.executable}")

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

KINDS = ("supervised", "self_supervised")
KIND_TITLES = {"supervised": "Supervised", "self_supervised": "Self-supervised"}
VARIABLES = (("accuracy", "test_accuracy"), ("loss", "test_loss"))
DATA_FILES = ("train_images", "train_labels")
FORMAT_VERSIONS = (1, 2)
FIGURE_DPI = 150
TIDY_COLUMNS = ("kind", "experiment_seed", "labels", "index", "done", "test_accuracy", "test_loss")

NAN = math.nan


# ---------------------------------------------------------------------------------------------
# Statistics (two-sided, R's conventions: wilcox.test(correct = TRUE), t.test()), from scipy.
# ---------------------------------------------------------------------------------------------

def _finite(values):
    v = np.asarray(values, dtype=float)
    return v[~np.isnan(v)]


def t_interval(values, level=0.95):
    """The t interval of the mean: mean +- t(1 - (1 - level)/2, n-1) sd / sqrt(n), as
    t.test(x)$conf.int. (NaN, NaN) with fewer than 2 values."""
    v = _finite(values)
    n = len(v)
    if n < 2:
        return NAN, NAN
    mean = float(v.mean())
    half = float(stats.t.ppf(0.5 + level / 2.0, n - 1)) * float(v.std(ddof=1)) / math.sqrt(n)
    return mean - half, mean + half


def mann_whitney_u(x, y):
    """Two-sided Mann-Whitney U (Wilcoxon rank-sum) test of x against y, as R's wilcox.test(x, y):
    U = W = rank sum of x - n1 (n1 + 1) / 2; exact p when n1, n2 < 50 and no value is tied,
    otherwise the normal approximation with tie and continuity corrections.
    Returns dict(u, p, method)."""
    x, y = _finite(x), _finite(y)
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        return {"u": NAN, "p": NAN, "method": "n/a"}
    both = np.concatenate([x, y])
    has_ties = len(np.unique(both)) < len(both)
    method = "exact" if n1 < 50 and n2 < 50 and not has_ties else "normal"
    if method == "normal" and len(np.unique(both)) == 1:
        # every value tied: the normal approximation has zero variance (R gives NaN too)
        return {"u": float(n1 * n2 / 2.0), "p": NAN, "method": method}
    res = stats.mannwhitneyu(x, y, use_continuity=True, alternative="two-sided",
                             method="exact" if method == "exact" else "asymptotic")
    return {"u": float(res.statistic), "p": min(1.0, float(res.pvalue)), "method": method}


def welch_t_test(x, y):
    """Two-sided Welch's t test of mean(x) = mean(y), as R's t.test(x, y). Returns dict(t, df, p)."""
    x, y = _finite(x), _finite(y)
    n1, n2 = len(x), len(y)
    if n1 < 2 or n2 < 2:
        return {"t": NAN, "df": NAN, "p": NAN}
    v1, v2 = x.var(ddof=1) / n1, y.var(ddof=1) / n2
    if v1 + v2 == 0.0:
        return {"t": NAN, "df": NAN, "p": NAN}
    with warnings.catch_warnings():  # scipy warns about a constant sample; the result is still right
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(x, y, equal_var=False)
    df = float((v1 + v2) ** 2 / (v1 * v1 / (n1 - 1) + v2 * v2 / (n2 - 1)))  # Welch-Satterthwaite
    return {"t": float(res.statistic), "df": df, "p": float(res.pvalue)}


def paired_t_test(x, y):
    """Two-sided paired t test of mean(x - y) = 0, as R's t.test(x, y, paired = TRUE): the mean
    difference, its sd and 95% CI, t, df and p. NaN where it needs more data (n < 2) or the
    differences are constant (R refuses those: "data are essentially constant")."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = ~np.isnan(x - y)
    x, y = x[keep], y[keep]
    d = x - y
    n = len(d)
    out = {"n": n, "mean_diff": float(d.mean()) if n else NAN, "sd_diff": NAN, "ci_low": NAN, "ci_high": NAN,
           "t": NAN, "df": NAN, "p": NAN}
    if n < 2:
        return out
    out["sd_diff"] = float(d.std(ddof=1))
    out["ci_low"], out["ci_high"] = t_interval(d)
    if out["sd_diff"] > 0:
        res = stats.ttest_rel(x, y)
        out.update({"t": float(res.statistic), "df": float(n - 1), "p": float(res.pvalue)})
    return out


def wilcoxon_signed_rank(d):
    """Two-sided Wilcoxon signed-rank test of the differences d around 0, as R's wilcox.test(d)
    (= wilcox.test(x, y, paired = TRUE) with d = x - y): zeros dropped; V = the rank sum of the
    positive differences; exact p when fewer than 50 non-zero differences, no tied |d| and no
    zero, otherwise the normal approximation with tie and continuity corrections.
    Returns dict(v, p, method)."""
    d = _finite(d)
    zeros = bool(np.any(d == 0))
    d = d[d != 0]
    n = len(d)
    if n == 0:
        return {"v": NAN, "p": NAN, "method": "n/a"}
    ranks = stats.rankdata(np.abs(d))
    v = float(ranks[d > 0].sum())
    ties = len(np.unique(np.abs(d))) < n
    method = "exact" if n < 50 and not ties and not zeros else "normal"
    with warnings.catch_warnings():  # scipy warns below 10 differences; R uses the same approximation
        warnings.simplefilter("ignore", UserWarning)
        res = stats.wilcoxon(d, zero_method="wilcox", correction=True, alternative="two-sided",
                             method="exact" if method == "exact" else "approx")
    return {"v": v, "p": min(1.0, float(res.pvalue)), "method": method}


def describe(values):
    """n, mean, sd, median, q1, q3, iqr (quantiles of R's default type 7) and the t-based 95% CI
    of the mean."""
    v = _finite(values)
    n = len(v)
    out = {"n": n}
    if n == 0:
        out.update({k: NAN for k in ("mean", "sd", "median", "q1", "q3", "iqr", "ci95_low", "ci95_high")})
        return out
    mean = float(v.mean())
    sd = float(v.std(ddof=1)) if n > 1 else NAN
    q1, median, q3 = (float(q) for q in np.quantile(v, [0.25, 0.5, 0.75]))
    low, high = t_interval(v)
    out.update({"mean": mean, "sd": sd, "median": median, "q1": q1, "q3": q3, "iqr": q3 - q1,
                "ci95_low": low, "ci95_high": high})
    return out


# ---------------------------------------------------------------------------------------------
# Reading results files (format 1 and 2) and the IDX data they name.
# ---------------------------------------------------------------------------------------------

def text(value):
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf8")
    if isinstance(value, np.ndarray) and value.shape == ():
        return text(value[()])
    return str(value)


def _is_true(value, path, name):
    v = text(value).strip().lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(f"{path}: attribute {name} = {v!r} is neither true nor false")


def _open_results(path):
    """Opens a pretext results file: (h5py.File, format_version), or ValueError/OSError with a
    message naming the file."""
    if not os.path.exists(path):
        raise OSError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path} is not an HDF5 file")
    f = h5py.File(path, "r")
    try:
        if text(f.attrs.get("format", b"")) != "pretext-results":
            raise ValueError(f"{path} was not written by pretext (no format = pretext-results)")
        version = int(f.attrs.get("format_version", 1))
        if version not in FORMAT_VERSIONS:
            raise ValueError(f"{path}: format_version {version} is not one this script reads "
                             f"({', '.join(map(str, FORMAT_VERSIONS))}); update scripts/analyze.py")
        if "trials" not in f or "config" not in f:
            raise ValueError(f"{path}: no /trials or /config group: not a complete pretext results file")
    except Exception:
        f.close()
        raise
    return f, version


def load_trials(path):
    """The trials of one results file as a tidy table: a dict of equal-length numpy arrays, one
    entry per trial row, with the columns TIDY_COLUMNS (kind, experiment_seed, labels, index,
    done, test_accuracy, test_loss), whichever format version wrote the file. Format 1 has one
    (seed, label budget) per file: experiment_seed and labels come from /config's
    "experiment.seed" and "trials.labels"; format 2 stores them as columns.
    Also returns info: format_version and paired (trials.paired, false for format 1)."""
    f, version = _open_results(path)
    with f:
        config = f["config"].attrs
        paired = False
        for holder in (f.attrs, config):
            if "trials.paired" in holder:
                paired = _is_true(holder["trials.paired"], path, "trials.paired")
                break
        parts = {c: [] for c in TIDY_COLUMNS}
        for kind in KINDS:
            if kind not in f["trials"]:
                raise ValueError(f"{path}: /trials/{kind} is missing")
            g = f["trials"][kind]
            for column in ("done", "test_accuracy", "test_loss"):
                if column not in g:
                    raise ValueError(f"{path}: /trials/{kind}/{column} is missing")
            done = g["done"][()].astype(bool)
            n = len(done)
            index = g["index"][()].astype(np.int64) if "index" in g else np.arange(n, dtype=np.int64)
            if version >= 2:
                for column in ("experiment_seed", "labels"):
                    if column not in g:
                        raise ValueError(f"{path}: format 2 but /trials/{kind}/{column} is missing")
                seeds = g["experiment_seed"][()].astype(np.uint64)
                labels = g["labels"][()].astype(np.int64)
            else:
                try:
                    seed = int(text(config["experiment.seed"]))
                    label_budget = int(text(config["trials.labels"]))
                except (KeyError, ValueError) as e:
                    raise ValueError(f"{path}: /config lacks a usable experiment.seed or trials.labels ({e})")
                seeds = np.full(n, seed, dtype=np.uint64)
                labels = np.full(n, label_budget, dtype=np.int64)
            columns = {"kind": np.array([kind] * n, dtype=object), "experiment_seed": seeds, "labels": labels,
                       "index": index, "done": done, "test_accuracy": g["test_accuracy"][()].astype(float),
                       "test_loss": g["test_loss"][()].astype(float)}
            for c in TIDY_COLUMNS:
                if len(columns[c]) != n:
                    raise ValueError(f"{path}: /trials/{kind}: column {c} has {len(columns[c])} rows, done has {n}")
                parts[c].append(columns[c])
    table = {c: np.concatenate(parts[c]) for c in TIDY_COLUMNS}
    table["kind"] = table["kind"].astype(str)
    info = {"format_version": version, "paired": paired, "groups": None}
    if version == 1:  # one run per file, even before its first trial row exists
        info["groups"] = [(seed, label_budget)]
    return table, info


def is_keras_weights_file(path):
    """A Keras weights file (pretext writes them beside the results file): root attributes
    keras_version and layer_names, no format attribute."""
    try:
        if not h5py.is_hdf5(path):
            return False
        with h5py.File(path, "r") as f:
            return "keras_version" in f.attrs and "layer_names" in f.attrs and "format" not in f.attrs
    except OSError:
        return False


class Run:
    """What the analysis needs from one results file: its tidy trial table, configuration,
    provenance and phases (the first seed's /benchmark and /pretext; format 2: every seed's)."""

    def __init__(self, path):
        self.path = path
        self.stem = os.path.splitext(os.path.basename(path))[0]
        self.table, info = load_trials(path)
        self.format_version = info["format_version"]
        self.paired = info["paired"]
        v1_groups = info["groups"]
        f, _ = _open_results(path)
        with f:
            self.complete = int(f.attrs.get("complete", 0)) == 1
            self.config = {k: text(v) for k, v in f["config"].attrs.items() if k != "ini"}
            self.provenance = {k: text(v) for k, v in f["provenance"].attrs.items()} if "provenance" in f else {}
            self.phases = self._read_phases(f)
            self.seed_phases = {}
            if "phases" in f:
                for seed in sorted(f["phases"].keys(), key=lambda s: int(s) if s.isdigit() else s):
                    self.seed_phases[seed] = self._read_phases(f["phases"][seed])
        # (seed, labels) groups, in order; one group: the file is one run of the seed's experiment
        keys = v1_groups or sorted({(int(s), int(lb)) for s, lb in zip(self.table["experiment_seed"], self.table["labels"])})
        self.groups = keys
        single = len(keys) == 1
        self.labels = keys[0][1] if single else None
        self.seed = keys[0][0] if single else None
        self.trials = self.group_trials(*keys[0]) if single else None

    @staticmethod
    def _read_phases(g):
        phases = {}
        for phase in ("benchmark", "pretext"):
            if phase in g:
                p = g[phase]
                phases[phase] = {
                    "test_accuracy": float(p["test_accuracy"][()]),
                    "test_loss": float(p["test_loss"][()]),
                    "history": {k: p["history"][k][()] for k in ("loss", "accuracy", "val_loss", "val_accuracy")},
                }
        return phases

    def group_trials(self, seed, labels):
        """Finished trials of one (seed, label budget): {kind: {n_rows, test_accuracy, test_loss}}."""
        t = self.table
        out = {}
        for kind in KINDS:
            rows = (t["kind"] == kind) & (t["experiment_seed"] == np.uint64(seed)) & (t["labels"] == labels)
            done = rows & t["done"]
            out[kind] = {"n_rows": int(rows.sum()), "test_accuracy": t["test_accuracy"][done],
                         "test_loss": t["test_loss"][done]}
        return out


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

def save_figure(fig, out_dir, name, written):
    """NAME.png (150 dpi) and NAME.pdf."""
    for ext in ("png", "pdf"):
        path = os.path.join(out_dir, f"{name}.{ext}")
        fig.savefig(path, dpi=FIGURE_DPI)
        written.append(path)
    plt.close(fig)


def image_grid(images, titles, suptitle, out_dir, name, written):
    fig, axes = plt.subplots(4, 4, figsize=(7, 7.6))
    for ax, img, title in zip(axes.flat, images, titles):
        ax.imshow(img, cmap="inferno", interpolation="nearest")  # row 0 on top, as the seed shows it
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    for ax in list(axes.flat)[len(images):]:
        ax.axis("off")
    fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    save_figure(fig, out_dir, name, written)


def plot_images(run, out_dir, data_dir, written):
    images_path = find_data_file(run, "train_images", data_dir)
    labels_path = find_data_file(run, "train_labels", data_dir)
    if images_path is None or labels_path is None:
        print(f"analyze: {run.path}: training images not found "
              f"({run.provenance.get('data_files.train_images', '?')}); use --data-dir: image grids skipped")
        return
    images = read_idx(images_path, 16)
    labels = read_idx(labels_path, 16)
    image_grid(images, [str(int(y)) for y in labels], "First 16 training images with their labels",
               out_dir, "training-images", written)
    # The pretext pseudo-labels the run drew (/pretext/train_rotations); files without them (a run
    # stopped before the pretext phase) get an illustration instead: image i turned by i mod 4
    # quarter turns. Either way the rotation is np.rot90, the exact counter-clockwise rotation
    # pretext applies.
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
    image_grid(rotated, titles, title, out_dir, "rotated-images", written)


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
    save_figure(fig, out_dir, "training-curves", written)


def plot_comparison(run, out_dir, written):
    if run.trials is None:
        if run.groups:
            print(f"analyze: {run.path}: {len(run.groups)} (seed, label budget) runs in one file: "
                  f"per-run comparison skipped (see label_curve)")
        else:
            print(f"analyze: {run.path}: no trial rows: comparison skipped")
        return
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
    save_figure(fig, out_dir, "comparison", written)


# ---------------------------------------------------------------------------------------------
# Tables of single runs.
# ---------------------------------------------------------------------------------------------

CSV_COLUMNS = ["file", "labels", "variable", "kind", "n", "mean", "sd", "median", "q1", "q3", "iqr",
               "ci95_low", "ci95_high", "mann_whitney_u", "mann_whitney_p", "mann_whitney_method",
               "welch_t", "welch_df", "welch_p", "experiment_seed"]


def group_statistics(path, seed, labels, trials):
    """Rows for summary.csv of one (seed, label budget): one per (variable, kind); the tests
    (supervised vs self-supervised, U of the supervised sample) repeated on both rows of a
    variable."""
    rows = []
    for variable, field in VARIABLES:
        x = trials["supervised"][field]
        y = trials["self_supervised"][field]
        mw = mann_whitney_u(x, y)
        welch = welch_t_test(x, y)
        for kind in KINDS:
            row = {"file": path, "labels": labels, "variable": variable, "kind": kind}
            row.update(describe(trials[kind][field]))
            row.update({"mann_whitney_u": mw["u"], "mann_whitney_p": mw["p"],
                        "mann_whitney_method": mw["method"], "welch_t": welch["t"],
                        "welch_df": welch["df"], "welch_p": welch["p"], "experiment_seed": seed})
            rows.append(row)
    return rows


def run_statistics(run):
    rows = []
    for seed, labels in run.groups:
        rows += group_statistics(run.path, seed, labels, run.group_trials(seed, labels))
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
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    return f"{p:.2e}" if p < 1e-4 else f"{p:.4f}"


def write_csv(path, rows, columns):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        for row in rows:
            w.writerow({k: (repr(float(v)) if isinstance(v, (float, np.floating)) else v)
                        for k, v in row.items() if k in columns})


def _group_markdown(rows):
    lines = ["| variable | kind | n | mean | sd | median | Q1 | Q3 | IQR | 95% CI of the mean |",
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
    return lines


def _phase_lines(phases):
    lines = []
    for phase, title in (("benchmark", "Benchmark (all training labels)"), ("pretext", "Pretext (rotation)")):
        if phase in phases:
            p = phases[phase]
            lines.append(f"{title}: test accuracy {p['test_accuracy']:.4f}, test loss {p['test_loss']:.4f}.")
    return lines


def markdown_summary(runs, rows_by_run, sweep_rows, study):
    lines = ["# pretext results summary", ""]
    for run in runs:
        rows = rows_by_run[run.path]
        lines += [f"## {run.path}", ""]
        status = "complete" if run.complete else "INCOMPLETE (trials still missing)"
        if run.trials is not None:
            lines.append(f"{status}; {run.labels} labelled images per trial; trials done: " +
                         ", ".join(f"{KIND_TITLES[k].lower()} {len(run.trials[k]['test_accuracy'])} of "
                                   f"{run.trials[k]['n_rows']}" for k in KINDS) +
                         f"; seed {run.config.get('experiment.seed', '?')}.")
            lines += _phase_lines(run.phases)
            lines += [""] + _group_markdown(rows)
        else:
            seeds = sorted({s for s, _ in run.groups})
            budgets = sorted({lb for _, lb in run.groups})
            lines.append(f"{status}; format {run.format_version}; seeds {', '.join(map(str, seeds))}; "
                         f"label budgets {', '.join(map(str, budgets))}; trials "
                         f"{'paired' if run.paired else 'not paired'} across the kinds.")
            for seed, phases in run.seed_phases.items():
                phase_lines = _phase_lines(phases)
                if phase_lines:
                    lines.append(f"Seed {seed}: " + " ".join(phase_lines))
            if not run.seed_phases:
                lines += _phase_lines(run.phases)
            per_group = len(VARIABLES) * len(KINDS)
            for i, (seed, labels) in enumerate(run.groups):
                lines += ["", f"### seed {seed}, {labels} labelled images per trial", ""]
                lines += _group_markdown(rows[i * per_group:(i + 1) * per_group])
        lines.append("")
    if sweep_rows:
        lines += ["## Sweep: test accuracy against labelled images (trials pooled)", "",
                  "| labels | kind | files | n | mean | 95% CI of the mean |", "|---:|---|---:|---:|---:|---|"]
        for r in sweep_rows:
            lines.append(f"| {r['labels']} | {KIND_TITLES[r['kind']]} | {r['files']} | {r['n']} | {fmt(r['mean'])} | "
                         f"[{fmt(r['ci95_low'])}, {fmt(r['ci95_high'])}] |")
        lines.append("")
    if study:
        lines += study_markdown(study)
    lines += ["Quantiles: linear interpolation (R's type 7). CI: mean +- t(0.975, n-1) sd / sqrt(n). "
              "Mann-Whitney U is the statistic of the supervised sample (R's W); exact p without ties "
              "and n < 50 per kind, else normal approximation with tie and continuity corrections. "
              "Welch: unequal variances, Welch-Satterthwaite df.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Several label budgets: trials pooled per budget (the figure of earlier versions).
# ---------------------------------------------------------------------------------------------

# Config keys a sweep is expected to vary (a label budget, seeds, resources that do not change results).
INTENDED_SWEEP_KEYS = ("trials.labels", "experiment.seed", "trials.supervised", "trials.self_supervised",
                       "run.threads", "run.gradient_sum", "data.dir", "benchmark.enabled")
SWEEP_COLUMNS = ["labels", "kind", "files", "n", "mean", "sd", "ci95_low", "ci95_high"]


def combined_table(runs):
    """The tidy tables of all files, with file and paired columns, and the trials that appear in
    more than one file (as text; the pooled outputs are not made then)."""
    parts = []
    for run in runs:
        t = dict(run.table)
        t["file"] = np.array([run.path] * len(t["kind"]), dtype=object)
        t["paired"] = np.full(len(t["kind"]), run.paired)
        parts.append(t)
    table = {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}
    seen, duplicates = {}, []
    for i in range(len(table["kind"])):
        key = (table["kind"][i], int(table["experiment_seed"][i]), int(table["labels"][i]), int(table["index"][i]))
        if key in seen and seen[key] != table["file"][i]:
            duplicates.append(f"{table['file'][i]} and {seen[key]} both hold the {key[0]} trial {key[3]} "
                              f"of seed {key[1]} with {key[2]} labels")
        seen.setdefault(key, table["file"][i])
    return table, duplicates


def sweep_statistics(table):
    """Trials pooled over the files and seeds with the same label budget."""
    rows = []
    for labels in sorted(set(int(v) for v in table["labels"])):
        for kind in KINDS:
            m = (table["labels"] == labels) & (table["kind"] == kind)
            d = describe(table["test_accuracy"][m & table["done"]])
            rows.append({"labels": labels, "kind": kind, "files": len(set(table["file"][m])), "n": d["n"],
                         "mean": d["mean"], "sd": d["sd"], "ci95_low": d["ci95_low"], "ci95_high": d["ci95_high"]})
    return rows


def _accuracy_axes(ax, labels_all):
    log_x = labels_all[-1] >= 10 * labels_all[0]
    if log_x:
        ax.set_xscale("log")
    ax.set_xticks(labels_all, [str(v) for v in labels_all])
    ax.minorticks_off()
    ax.set_xlabel("labelled training images per trial (trials.labels)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    return log_x


def _errorbar_rows(ax, rows, labels_all, log_x, low_key, high_key):
    for offset, kind, marker in ((-1, "supervised", "o"), (1, "self_supervised", "s")):
        kind_rows = [r for r in rows if r["kind"] == kind and not math.isnan(r["mean"])]
        if not kind_rows:
            continue
        x = np.array([r["labels"] for r in kind_rows], dtype=float)
        span = labels_all[-1] - labels_all[0]
        x = x * (1.0 + 0.02 * offset) if log_x else x + 0.01 * offset * span
        mean = np.array([r["mean"] for r in kind_rows])
        low = np.array([r[low_key] for r in kind_rows])
        high = np.array([r[high_key] for r in kind_rows])
        # no interval (one seed, one trial): the point without a bar
        yerr = np.vstack([np.nan_to_num(mean - low), np.nan_to_num(high - mean)])
        ax.errorbar(x, mean, yerr=yerr, fmt=marker + "-", capsize=4, label=KIND_TITLES[kind])
    ax.legend()


def plot_sweep(sweep_rows, out_dir, written):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    labels_all = sorted({r["labels"] for r in sweep_rows})
    log_x = _accuracy_axes(ax, labels_all)
    _errorbar_rows(ax, [r for r in sweep_rows if r["n"] > 0], labels_all, log_x, "ci95_low", "ci95_high")
    ax.set_title("Test accuracy against number of labels, trials pooled (mean and 95% CI)")
    fig.tight_layout()
    save_figure(fig, out_dir, "sweep", written)


# ---------------------------------------------------------------------------------------------
# The study: several seeds and label budgets, the seed as the unit of replication.
# ---------------------------------------------------------------------------------------------

LABEL_CURVE_COLUMNS = ["kind", "labels", "n_seeds", "mean", "ci_low", "ci_high"]
PER_SEED_COLUMNS = ["experiment_seed", "labels", "kind", "n_rows", "n", "mean", "sd"]
SEED_COMPARISON_COLUMNS = ["labels", "n_seeds", "mean_supervised", "mean_self_supervised", "mean_diff", "sd_diff",
                           "ci_low", "ci_high", "paired_t", "paired_df", "paired_p", "wilcoxon_v", "wilcoxon_p",
                           "wilcoxon_method"]
PAIRED_TRIALS_COLUMNS = ["experiment_seed", "labels", "n_pairs", "mean_diff", "sd_diff", "ci_low", "ci_high",
                         "t", "df", "p"]
WILCOXON_MIN_SEEDS = 6


def per_seed_statistics(table):
    """Per (seed, label budget, kind): trial rows, finished trials, mean and sd of their test accuracy."""
    rows = []
    keys = sorted({(int(s), int(lb)) for s, lb in zip(table["experiment_seed"], table["labels"])})
    for seed, labels in keys:
        for kind in KINDS:
            m = (table["experiment_seed"] == np.uint64(seed)) & (table["labels"] == labels) & (table["kind"] == kind)
            acc = table["test_accuracy"][m & table["done"]]
            rows.append({"experiment_seed": seed, "labels": labels, "kind": kind, "n_rows": int(m.sum()),
                         "n": len(acc), "mean": float(acc.mean()) if len(acc) else NAN,
                         "sd": float(acc.std(ddof=1)) if len(acc) > 1 else NAN})
    return rows


def label_curve_statistics(per_seed):
    """Per (kind, label budget): the mean over seeds of the per-seed mean accuracies and its t
    interval across seeds (n_seeds - 1 df; NaN with one seed). Seeds without a finished trial of
    the kind do not count."""
    rows = []
    for kind in KINDS:
        for labels in sorted({r["labels"] for r in per_seed}):
            means = [r["mean"] for r in per_seed if r["kind"] == kind and r["labels"] == labels and r["n"] > 0]
            low, high = t_interval(means)
            rows.append({"kind": kind, "labels": labels, "n_seeds": len(means),
                         "mean": float(np.mean(means)) if means else NAN, "ci_low": low, "ci_high": high})
    return rows


def seed_comparison_statistics(per_seed):
    """Per label budget, the kinds compared with the seed as the unit: per seed the difference of
    the mean accuracies (self-supervised - supervised), its mean and 95% t interval across seeds,
    the paired t test across seeds and, from 6 seeds on, the Wilcoxon signed-rank test."""
    rows = []
    for labels in sorted({r["labels"] for r in per_seed}):
        by_seed = {}
        for r in per_seed:
            if r["labels"] == labels and r["n"] > 0:
                by_seed.setdefault(r["experiment_seed"], {})[r["kind"]] = r["mean"]
        seeds = sorted(s for s, v in by_seed.items() if len(v) == len(KINDS))
        sup = np.array([by_seed[s]["supervised"] for s in seeds])
        ss = np.array([by_seed[s]["self_supervised"] for s in seeds])
        pt = paired_t_test(ss, sup)
        row = {"labels": labels, "n_seeds": len(seeds),
               "mean_supervised": float(sup.mean()) if len(seeds) else NAN,
               "mean_self_supervised": float(ss.mean()) if len(seeds) else NAN,
               "mean_diff": pt["mean_diff"], "sd_diff": pt["sd_diff"], "ci_low": pt["ci_low"], "ci_high": pt["ci_high"],
               "paired_t": pt["t"], "paired_df": pt["df"], "paired_p": pt["p"],
               "wilcoxon_v": NAN, "wilcoxon_p": NAN, "wilcoxon_method": f"n/a (fewer than {WILCOXON_MIN_SEEDS} seeds)"}
        if len(seeds) >= WILCOXON_MIN_SEEDS:
            w = wilcoxon_signed_rank(ss - sup)
            row.update({"wilcoxon_v": w["v"], "wilcoxon_p": w["p"], "wilcoxon_method": w["method"]})
        rows.append(row)
    return rows


def paired_trials_statistics(table):
    """Per (seed, label budget) of files with trials.paired = true: the paired t test of the
    per-trial differences (self-supervised trial i - supervised trial i; both used the same
    labelled images and head initialisation)."""
    rows = []
    m_paired = table["paired"].astype(bool)
    keys = sorted({(int(s), int(lb)) for s, lb in zip(table["experiment_seed"][m_paired], table["labels"][m_paired])})
    for seed, labels in keys:
        m = m_paired & (table["experiment_seed"] == np.uint64(seed)) & (table["labels"] == labels) & table["done"]
        acc = {kind: {int(i): a for i, a in zip(table["index"][m & (table["kind"] == kind)],
                                                table["test_accuracy"][m & (table["kind"] == kind)])}
               for kind in KINDS}
        common = sorted(set(acc["supervised"]) & set(acc["self_supervised"]))
        pt = paired_t_test([acc["self_supervised"][i] for i in common], [acc["supervised"][i] for i in common])
        rows.append({"experiment_seed": seed, "labels": labels, "n_pairs": len(common), "mean_diff": pt["mean_diff"],
                     "sd_diff": pt["sd_diff"], "ci_low": pt["ci_low"], "ci_high": pt["ci_high"],
                     "t": pt["t"], "df": pt["df"], "p": pt["p"]})
    return rows


def plot_label_curve(curve_rows, out_dir, written):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    labels_all = sorted({r["labels"] for r in curve_rows})
    log_x = _accuracy_axes(ax, labels_all)
    _errorbar_rows(ax, curve_rows, labels_all, log_x, "ci_low", "ci_high")
    n_seeds = sorted({r["n_seeds"] for r in curve_rows if r["n_seeds"] > 0})
    seeds_text = (f"{n_seeds[0]} seed{'s' if n_seeds[0] != 1 else ''}" if len(n_seeds) == 1
                  else f"{n_seeds[0]}-{n_seeds[-1]} seeds") if n_seeds else "no seeds"
    ax.set_title(f"Test accuracy against number of labels\n(mean over {seeds_text} of the per-seed means; "
                 f"95% t interval across seeds)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out_dir, "label_curve", written)


def study_statistics(table):
    per_seed = per_seed_statistics(table)
    return {"per_seed": per_seed, "label_curve": label_curve_statistics(per_seed),
            "seed_comparison": seed_comparison_statistics(per_seed),
            "paired_trials": paired_trials_statistics(table)}


def study_markdown(study):
    lines = ["## Study: seeds as the unit of replication", "",
             "Test accuracy per label budget: the mean over seeds of each seed's mean over its trials, "
             "95% t interval across seeds (n_seeds - 1 df; none with one seed).", "",
             "| kind | labels | seeds | mean | 95% CI across seeds |", "|---|---:|---:|---:|---|"]
    for r in study["label_curve"]:
        lines.append(f"| {KIND_TITLES[r['kind']]} | {r['labels']} | {r['n_seeds']} | {fmt(r['mean'])} | "
                     f"[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}] |")
    lines += ["", "Self-supervised - supervised, per label budget, one difference of means per seed "
              f"(paired t test across seeds; Wilcoxon signed-rank from {WILCOXON_MIN_SEEDS} seeds on):", "",
              "| labels | seeds | mean difference | 95% CI | paired t | df | p | Wilcoxon V | p (method) |",
              "|---:|---:|---:|---|---:|---:|---:|---:|---|"]
    for r in study["seed_comparison"]:
        wil = (f"{fmt(r['wilcoxon_v'], 1)} | {fmt_p(r['wilcoxon_p'])} ({r['wilcoxon_method']})"
               if not math.isnan(r["wilcoxon_v"]) else f"n/a | {r['wilcoxon_method']}")
        lines.append(f"| {r['labels']} | {r['n_seeds']} | {fmt(r['mean_diff'])} | [{fmt(r['ci_low'])}, "
                     f"{fmt(r['ci_high'])}] | {fmt(r['paired_t'], 3)} | {fmt(r['paired_df'], 0)} | "
                     f"{fmt_p(r['paired_p'])} | {wil} |")
    if study["paired_trials"]:
        lines += ["", "Paired trials (trials.paired = true: trial i of both kinds shares its labelled images and "
                  "head initialisation): self-supervised - supervised per trial, paired t test within each seed:", "",
                  "| seed | labels | pairs | mean difference | 95% CI | t | df | p |",
                  "|---:|---:|---:|---:|---|---:|---:|---:|"]
        for r in study["paired_trials"]:
            lines.append(f"| {r['experiment_seed']} | {r['labels']} | {r['n_pairs']} | {fmt(r['mean_diff'])} | "
                         f"[{fmt(r['ci_low'])}, {fmt(r['ci_high'])}] | {fmt(r['t'], 3)} | {fmt(r['df'], 0)} | "
                         f"{fmt_p(r['p'])} |")
    lines += ["", "Per seed (test accuracy of the finished trials):", "",
              "| seed | labels | kind | trials | finished | mean | sd |", "|---:|---:|---|---:|---:|---:|---:|"]
    for r in study["per_seed"]:
        lines.append(f"| {r['experiment_seed']} | {r['labels']} | {KIND_TITLES[r['kind']]} | {r['n_rows']} | "
                     f"{r['n']} | {fmt(r['mean'])} | {fmt(r['sd'])} |")
    lines += ["", "The trials of one seed are not independent replicates (all self-supervised trials of a seed "
              "share one pretext model, and both kinds share the seed's data draws): the seed is the unit "
              "of replication for comparing the kinds (docs/analysis.md).", ""]
    return lines


# ---------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", metavar="FILE", help="pretext results file(s) (.h5)")
    ap.add_argument("--out", metavar="DIR", help="output folder (default: <first file's stem>-analysis next to it)")
    ap.add_argument("--data-dir", metavar="DIR", help="folder with the MNIST IDX files, if not where the run found them")
    args = ap.parse_args(argv)

    seen_paths = set()
    files = []
    for path in args.files:
        if is_keras_weights_file(path):
            # results/run-*.h5 also matches the run-*.pretext.weights.h5 files beside the results
            print(f"analyze: {path} is a Keras weights file, not a results file: skipped")
            continue
        files.append(path)
    if not files:
        sys.exit("analyze: none of the files given is a results file")
    args.files = files
    for path in args.files:
        real = os.path.realpath(path)
        if real in seen_paths:
            sys.exit(f"analyze: {path} is given twice")
        seen_paths.add(real)
    runs = []
    for path in args.files:
        try:
            runs.append(Run(path))
        except (OSError, ValueError, KeyError) as e:
            message = str(e)
            sys.exit(f"analyze: {message}" if path in message else f"analyze: cannot read {path}: {message}")
    table, duplicates = combined_table(runs)
    if duplicates:
        print(f"analyze: warning: {duplicates[0]} ({len(duplicates)} such trials): the files repeat "
              f"(seed, label budget) runs, so the pooled outputs (sweep, study) are not made; give each run once")
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
    budgets = sorted(set(int(v) for v in table["labels"]))
    if len(budgets) > 1 and not duplicates:
        # A sweep compares label budgets: other differences (epochs, data size) would confound it.
        varying = set(INTENDED_SWEEP_KEYS)
        keys = set().union(*(r.config for r in runs)) - varying
        differing = sorted(k for k in keys if len({r.config.get(k) for r in runs}) > 1)
        if differing:
            print("analyze: warning: the files also differ in " + ", ".join(differing) +
                  ": the sweep mixes those settings")
        sweep_rows = sweep_statistics(table)
        plot_sweep(sweep_rows, out_dir, written)
        path = os.path.join(out_dir, "sweep.csv")
        write_csv(path, sweep_rows, SWEEP_COLUMNS)
        written.append(path)
    elif len(runs) > 1 and len(budgets) == 1:
        print("analyze: every file has the same trials.labels: no sweep figure")

    study = None
    n_groups = len({(int(s), int(lb)) for s, lb in zip(table["experiment_seed"], table["labels"])})
    if n_groups > 1 and not duplicates:
        study = study_statistics(table)
        plot_label_curve(study["label_curve"], out_dir, written)
        for name, rows, columns in (("label_curve.csv", study["label_curve"], LABEL_CURVE_COLUMNS),
                                    ("per_seed.csv", study["per_seed"], PER_SEED_COLUMNS),
                                    ("seed_comparison.csv", study["seed_comparison"], SEED_COMPARISON_COLUMNS),
                                    ("paired_trials.csv", study["paired_trials"], PAIRED_TRIALS_COLUMNS)):
            if name == "paired_trials.csv" and not rows:
                continue
            path = os.path.join(out_dir, name)
            write_csv(path, rows, columns)
            written.append(path)

    path = os.path.join(out_dir, "summary.csv")
    write_csv(path, all_rows, CSV_COLUMNS)
    written.append(path)
    path = os.path.join(out_dir, "summary.md")
    with open(path, "w") as fh:
        fh.write(markdown_summary(runs, rows_by_run, sweep_rows, study))
    written.append(path)

    print(f"analyze: wrote {len(written)} files into {out_dir}:")
    for p in written:
        print("  " + p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
