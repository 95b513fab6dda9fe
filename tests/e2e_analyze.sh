#!/usr/bin/env bash
# e2e_analyze.sh: scripts/analyze.py and scripts/analyze.R on real pretext results files.
# Makes two small results files on 2 ranks (40 and 80 labels per trial; the second without the
# benchmark phase), then checks:
#   - tests/test_stats.py (the statistics against closed forms, hand values and R);
#   - analyze.py on one file (default output folder) and on both (sweep): every figure is a
#     complete, decodable, non-blank PNG; summary.csv / sweep.csv equal the numbers computed
#     here independently: numpy straight from the HDF5 files, and R (hdf5r reading the files;
#     quantile, t.test's confidence interval, wilcox.test, Welch's t.test);
#   - every figure also as a PDF; with two label budgets also the study outputs (label_curve);
#   - analyze.R writes the seed's ggplot as a valid PNG, and its summary table (summary-R.csv)
#     equals analyze.py's summary.csv on a real file;
#   - analyze.py rejects a file pretext did not write.
# Skipped (exit 77) without Rscript with hdf5r and ggplot2, or a Python with h5py, numpy, scipy
# and matplotlib (PRETEXT_PYTHON, else python3 on PATH, else /usr/bin/python3).
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:?}"; bin="${PRETEXT_BINARY:?}"
. "$src/tests/mpi_launcher.sh" # pt_mpiexec: the build's launcher, with the flags it accepts
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
py=""
for candidate in ${PRETEXT_PYTHON:-} python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import h5py, numpy, scipy, matplotlib" >/dev/null 2>&1; then
    py="$candidate"; break
  fi
done
[ -n "$py" ] || { echo "SKIP: no Python with h5py, numpy, scipy and matplotlib (set PRETEXT_PYTHON; Debian: apt-get install python3-h5py python3-scipy python3-matplotlib)"; exit 77; }
command -v Rscript >/dev/null || { echo "SKIP: Rscript not found (scripts/setup.sh --tests installs r-base-core, r-cran-hdf5r, r-cran-ggplot2)"; exit 77; }
Rscript -e 'quit(status = if (requireNamespace("hdf5r", quietly = TRUE) && requireNamespace("ggplot2", quietly = TRUE)) 0 else 1)' \
  >/dev/null 2>&1 || { echo "SKIP: the R packages hdf5r and ggplot2 are needed (apt-get install r-cran-hdf5r r-cran-ggplot2)"; exit 77; }

echo "== statistics unit test"
"$py" "$src/tests/test_stats.py" || fail "tests/test_stats.py"

echo "== two small runs"
common=(data.train_images=2000 trials.supervised=5 trials.self_supervised=5)
# run OUT [overrides...]: exit status 75 means "interrupted, resumable" (a signal from outside,
# e.g. a shared machine's other jobs): run the same command again to resume, at most 3 times.
run() {
  local out="$1"; shift
  local attempt rc
  for attempt in 1 2 3 4; do
    rc=0
    pt_mpiexec -n 2 "$bin" run --config "$src/configs/smoke.ini" --out "$out" "${common[@]}" "$@" \
      < /dev/null > "$out.log" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] && return 0
    [ "$rc" -eq 75 ] || { cat "$out.log"; fail "pretext run $* exited $rc"; }
    echo "pretext run $* interrupted (attempt $attempt, exit 75): resuming"
  done
  cat "$out.log"; fail "pretext run $* interrupted 4 times"
}
run "$tmp/run40.h5" trials.labels=40
run "$tmp/run80.h5" trials.labels=80 benchmark.enabled=false

echo "== analyze.py on one file (default output folder)"
"$py" "$src/scripts/analyze.py" "$tmp/run40.h5" | tee "$tmp/one.log"
single="$tmp/run40-analysis"
grep -q "into $single" "$tmp/one.log" || fail "analyze.py did not print where it wrote"
for f in training-images rotated-images training-curves comparison; do
  test -f "$single/$f.png" || fail "$single/$f.png missing"
  test -f "$single/$f.pdf" || fail "$single/$f.pdf missing"
done
test -s "$single/summary.md" && test -s "$single/summary.csv" || fail "summary missing"
test ! -e "$single/sweep.png" || fail "sweep figure from a single file"
test ! -e "$single/label_curve.png" || fail "label curve from a single (seed, budget)"

echo "== analyze.py on both files (sweep)"
"$py" "$src/scripts/analyze.py" "$tmp/run40.h5" "$tmp/run80.h5" --out "$tmp/sweep" | tee "$tmp/two.log"
for f in run40/training-images run40/rotated-images run40/training-curves run40/comparison \
         run80/training-images run80/rotated-images run80/training-curves run80/comparison sweep label_curve; do
  test -f "$tmp/sweep/$f.png" || fail "$tmp/sweep/$f.png missing"
  test -f "$tmp/sweep/$f.pdf" || fail "$tmp/sweep/$f.pdf missing"
done
test -s "$tmp/sweep/label_curve.csv" && test -s "$tmp/sweep/per_seed.csv" && test -s "$tmp/sweep/seed_comparison.csv" \
  || fail "study tables missing"
grep -q "run80.h5" "$tmp/sweep/summary.md" || fail "summary.md lacks the second file"

echo "== analyze.py on a glob that also matches the Keras weights files beside the results"
"$py" "$src/scripts/analyze.py" "$tmp"/run*.h5 --out "$tmp/glob" > "$tmp/glob.log" 2>&1 || { cat "$tmp/glob.log"; fail "analyze.py run*.h5"; }
grep -q "run40.pretext.weights.h5 is a Keras weights file, not a results file: skipped" "$tmp/glob.log" \
  || { cat "$tmp/glob.log"; fail "weights files not skipped by name"; }
test -s "$tmp/glob/sweep.csv" || fail "the glob's analysis lacks sweep.csv"
rm -rf "$tmp/glob"

echo "== analyze.R"
Rscript "$src/scripts/analyze.R" "$tmp/run40.h5" || fail "analyze.R (default output)"
Rscript "$src/scripts/analyze.R" "$tmp/run80.h5" "$tmp/r80.png" || fail "analyze.R (explicit output)"
test -f "$single/comparison-ggplot.png" || fail "analyze.R default output missing"
test -s "$single/summary-R.csv" || fail "analyze.R's summary table missing"

echo "== reference numbers from R (hdf5r reads the files itself)"
cat > "$tmp/reference.R" <<'EOF'
suppressPackageStartupMessages(library(hdf5r))
options(digits = 17)
read_trials <- function(path, kind, field) {
  f <- H5File$new(path, mode = "r"); on.exit(f$close_all())
  g <- f[[paste0("trials/", kind)]]
  g[[field]]$read()[g[["done"]]$read() == 1]
}
files <- commandArgs(trailingOnly = TRUE)
cat("file,variable,kind,n,mean,sd,median,q1,q3,ci95_low,ci95_high,u,u_p,t,df,t_p\n")
for (path in files) for (v in c("accuracy", "loss")) {
  field <- paste0("test_", v)
  x <- read_trials(path, "supervised", field); y <- read_trials(path, "self_supervised", field)
  w <- suppressWarnings(wilcox.test(x, y)); tt <- t.test(x, y)
  for (kind in c("supervised", "self_supervised")) {
    z <- if (kind == "supervised") x else y
    ci <- t.test(z)$conf.int
    cat(path, v, kind, length(z), mean(z), sd(z), median(z), quantile(z, 0.25), quantile(z, 0.75),
        ci[1], ci[2], w$statistic, w$p.value, tt$statistic, tt$parameter, tt$p.value, sep = ",")
    cat("\n")
  }
}
EOF
Rscript "$tmp/reference.R" "$tmp/run40.h5" "$tmp/run80.h5" > "$tmp/reference.csv" || fail "R reference"

echo "== compare"
"$py" - "$tmp" <<'EOF'
import csv, math, os, sys
import h5py
import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.image

tmp = sys.argv[1]
failures = []

def check(cond, msg):
    if not cond:
        failures.append(msg)

# intervals are compared to 1e-8: R's qt() is accurate to ~5e-10 relative (tests/test_stats.py)
def close(a, b, what, rel=1e-9):
    check(math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1e-12), f"{what}: analyze.py {a} vs reference {b}")

# every PNG: signature, IHDR first, IEND last, decodes, a sensible size, not one flat colour
pngs = [os.path.join(d, f) for d, _, fs in os.walk(tmp) for f in fs if f.endswith(".png")]
check(len(pngs) == 16, f"{len(pngs)} PNG files, expected 16 (4 + 1 from R, 10, 1 from R)")
pdfs = [os.path.join(d, f) for d, _, fs in os.walk(tmp) for f in fs if f.endswith(".pdf")]
check(len(pdfs) == 14, f"{len(pdfs)} PDF files, expected 14 (4, 10)")
for p in pdfs:
    data = open(p, "rb").read()
    check(data.startswith(b"%PDF-") and b"%%EOF" in data[-64:] and len(data) > 5000, f"{p}: not a complete PDF")
for p in pngs:
    data = open(p, "rb").read()
    check(len(data) > 5000, f"{p}: only {len(data)} bytes")
    check(data[:8] == b"\x89PNG\r\n\x1a\n", f"{p}: not a PNG signature")
    check(data[12:16] == b"IHDR", f"{p}: IHDR is not the first chunk")
    check(data[-8:-4] == b"IEND", f"{p}: no IEND chunk at the end (truncated)")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    check(300 <= width <= 3000 and 300 <= height <= 3000, f"{p}: {width}x{height} pixels")
    img = matplotlib.image.imread(p)
    check(img.shape[0] == height and img.shape[1] == width, f"{p}: decoded shape {img.shape}")
    check(float(img[..., :3].std()) > 0.01, f"{p}: blank image")

def read_csv(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))

reference = {(os.path.basename(r["file"]), r["variable"], r["kind"]): r
             for r in read_csv(os.path.join(tmp, "reference.csv"))}
check(len(reference) == 8, f"R reference has {len(reference)} rows")
compared = 0
for summary, expected_files in ((os.path.join(tmp, "run40-analysis", "summary.csv"), {"run40.h5"}),
                                (os.path.join(tmp, "sweep", "summary.csv"), {"run40.h5", "run80.h5"})):
    rows = read_csv(summary)
    check({os.path.basename(r["file"]) for r in rows} == expected_files, f"{summary}: files {[r['file'] for r in rows]}")
    check(len(rows) == 4 * len(expected_files), f"{summary}: {len(rows)} rows")
    for r in rows:
        name = os.path.basename(r["file"])
        ref = reference[(name, r["variable"], r["kind"])]
        what = f"{summary} {name} {r['variable']} {r['kind']}"
        # numpy straight from the HDF5 file
        with h5py.File(os.path.join(tmp, name), "r") as f:
            g = f["trials"][r["kind"]]
            values = g["test_" + r["variable"]][()][g["done"][()] == 1]
            labels = int(f["config"].attrs["trials.labels"])
        check(int(r["n"]) == len(values) == 5, f"{what}: n {r['n']}, file has {len(values)}")
        check(int(r["labels"]) == labels, f"{what}: labels {r['labels']} vs {labels}")
        close(r["mean"], np.mean(values), what + " mean (numpy)")
        close(r["sd"], np.std(values, ddof=1), what + " sd (numpy)")
        close(r["median"], np.median(values), what + " median (numpy)")
        close(r["iqr"], np.subtract(*np.percentile(values, [75, 25])), what + " IQR (numpy)")
        # R
        for mine, theirs in (("n", "n"), ("mean", "mean"), ("sd", "sd"), ("median", "median"), ("q1", "q1"),
                             ("q3", "q3"), ("ci95_low", "ci95_low"), ("ci95_high", "ci95_high"),
                             ("mann_whitney_u", "u"), ("mann_whitney_p", "u_p"), ("welch_t", "t"),
                             ("welch_df", "df"), ("welch_p", "t_p")):
            close(r[mine], ref[theirs], f"{what} {mine} (R)", rel=1e-8 if mine.startswith("ci95") else 1e-9)
            compared += 1

# sweep.csv: one row per (labels, kind), mean and t-based CI of the pooled accuracies
rows = read_csv(os.path.join(tmp, "sweep", "sweep.csv"))
check([(int(r["labels"]), r["kind"]) for r in rows] ==
      [(40, "supervised"), (40, "self_supervised"), (80, "supervised"), (80, "self_supervised")],
      f"sweep.csv rows {[(r['labels'], r['kind']) for r in rows]}")
for r in rows:
    ref = reference[(f"run{r['labels']}.h5", "accuracy", r["kind"])]
    for key in ("mean", "sd", "ci95_low", "ci95_high"):
        close(r[key], ref[key], f"sweep.csv {r['labels']} {r['kind']} {key} (R)", rel=1e-8 if key.startswith("ci95") else 1e-9)
        compared += 1

# analyze.R's summary table on the same file: the same rows and numbers (intervals to 1e-8: R's qt())
mine = {(r["variable"], r["kind"]): r for r in read_csv(os.path.join(tmp, "run40-analysis", "summary.csv"))}
theirs = {(r["variable"], r["kind"]): r for r in read_csv(os.path.join(tmp, "run40-analysis", "summary-R.csv"))}
check(sorted(mine) == sorted(theirs) and len(mine) == 4, f"summary-R.csv rows {sorted(theirs)}")
for k in mine:
    if k not in theirs:
        continue
    for c in ("n", "mean", "sd", "median", "q1", "q3", "iqr", "ci95_low", "ci95_high", "mann_whitney_u", "mann_whitney_p",
              "welch_t", "welch_df", "welch_p", "labels", "experiment_seed"):
        close(mine[k][c], theirs[k][c], f"summary-R.csv {k} {c}", rel=1e-8 if c.startswith("ci95") else 1e-9)
        compared += 1
    check(mine[k]["mann_whitney_method"] == theirs[k]["mann_whitney_method"], f"summary-R.csv {k} method")

md = open(os.path.join(tmp, "sweep", "summary.md")).read()
for needle in ("Mann-Whitney U", "Welch t", "95% CI of the mean", "| accuracy | Supervised | 5 |", "## Sweep"):
    check(needle in md, f"summary.md lacks {needle!r}")
for f in failures:
    print("FAIL: " + f)
print(f"compare: {len(pngs)} PNGs checked, {compared} numbers compared with R, {len(failures)} failures")
sys.exit(1 if failures else 0)
EOF

echo "== analyze.py rejects a file pretext did not write"
"$py" -c "import h5py; h5py.File('$tmp/other.h5', 'w').create_dataset('x', data=[1])"
if "$py" "$src/scripts/analyze.py" "$tmp/other.h5" --out "$tmp/other" > "$tmp/other.log" 2>&1; then
  fail "analyze.py accepted a foreign HDF5 file"
fi
grep -q "not written by pretext" "$tmp/other.log" || { cat "$tmp/other.log"; fail "no clear message for a foreign file"; }

echo "e2e_analyze: passed"
