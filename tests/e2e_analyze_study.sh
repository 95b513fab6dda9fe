#!/usr/bin/env bash
# e2e_analyze_study.sh: scripts/analyze.py on a study over seeds and label budgets, from synthetic
# results files with known values (tests/study_files.py: two format-2 files holding 7 seeds and 4
# budgets, one with trials.paired as a root attribute and one in /config, and two format-1 files).
# Checks every number of label_curve.csv, per_seed.csv, seed_comparison.csv and paired_trials.csv
# against R (t.test, wilcox.test) computed here from the values written (truth.csv), not from the
# HDF5 files; the label curve figure as a 150 dpi PNG and a PDF; a format-1 file alone still gives
# the single-run outputs; bad input (format 3, a format-2 file without its labels column, a file
# given twice, a copy of a file) is refused or warned about by name.
# Needs the Python that has h5py, numpy, scipy and matplotlib (PRETEXT_PYTHON, else python3 on
# PATH, else /usr/bin/python3) and Rscript; without them it exits 77 (skipped).
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:?}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
t_start=$SECONDS
fail() { echo "FAIL: $*"; exit 1; }
show() { echo "--- $1"; cat "$1"; }

py=""
for candidate in ${PRETEXT_PYTHON:-} python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c "import h5py, numpy, scipy, matplotlib" >/dev/null 2>&1; then
        py="$candidate"; break
    fi
done
[ -n "$py" ] || { echo "SKIP: no Python with h5py, numpy, scipy and matplotlib (set PRETEXT_PYTHON; Debian: apt-get install python3-h5py python3-scipy python3-matplotlib)"; exit 77; }
command -v Rscript >/dev/null || { echo "SKIP: Rscript (the reference) is not installed (apt-get install r-base-core)"; exit 77; }
analyze=("$py" "$src/scripts/analyze.py")

echo "== synthetic files"
"$py" "$src/tests/study_files.py" "$tmp" || fail "tests/study_files.py"
cd "$tmp"
files=(study_a.h5 study_b.h5 single_150.h5 single_1500.h5)

echo "== analyze.py on the study"
"${analyze[@]}" "${files[@]}" --out "$tmp/out" > "$tmp/study.log" 2>&1 || { show "$tmp/study.log"; fail "analyze.py on the study"; }
for f in label_curve.png label_curve.pdf label_curve.csv per_seed.csv seed_comparison.csv paired_trials.csv \
         sweep.png sweep.pdf sweep.csv summary.md summary.csv study_a/training-curves.png study_a/training-curves.pdf \
         single_150/comparison.png single_150/comparison.pdf; do
    [ -s "$tmp/out/$f" ] || { show "$tmp/study.log"; fail "$tmp/out/$f missing"; }
done
[ ! -e "$tmp/out/study_a/comparison.png" ] || fail "a per-run comparison for a file of 12 (seed, budget) runs"
[ ! -e "$tmp/out/study_b/training-curves.png" ] || fail "training curves for a file without phases"

echo "== reference numbers from R, computed from truth.csv"
cat > "$tmp/reference.R" <<'EOF'
options(digits = 17)
tr <- read.csv("truth.csv", stringsAsFactors = FALSE)
tr <- tr[tr$done == 1, ]
num <- function(x) if (length(x) == 0 || is.na(x)) "nan" else sprintf("%.17g", x)
ci <- function(v) if (length(v) > 1) t.test(v)$conf.int else c(NA, NA)
kinds <- c("supervised", "self_supervised")
groups <- unique(tr[, c("experiment_seed", "labels")])
groups <- groups[order(groups$experiment_seed, groups$labels), ]
sink("ref_per_seed.csv")
cat("experiment_seed,labels,kind,n,mean,sd\n")
means <- data.frame()
for (g in seq_len(nrow(groups))) for (k in kinds) {
  v <- tr$test_accuracy[tr$experiment_seed == groups$experiment_seed[g] & tr$labels == groups$labels[g] & tr$kind == k]
  cat(groups$experiment_seed[g], groups$labels[g], k, length(v), num(mean(v)), num(if (length(v) > 1) sd(v) else NA), sep = ",")
  cat("\n")
  means <- rbind(means, data.frame(seed = groups$experiment_seed[g], labels = groups$labels[g], kind = k, m = mean(v)))
}
sink()
sink("ref_label_curve.csv")
cat("kind,labels,n_seeds,mean,ci_low,ci_high\n")
for (k in kinds) for (b in sort(unique(means$labels))) {
  v <- means$m[means$kind == k & means$labels == b]
  cat(k, b, length(v), num(mean(v)), num(ci(v)[1]), num(ci(v)[2]), sep = ",")
  cat("\n")
}
sink()
sink("ref_seed_comparison.csv")
cat("labels,n_seeds,mean_diff,ci_low,ci_high,paired_t,paired_df,paired_p,wilcoxon_v,wilcoxon_p\n")
for (b in sort(unique(means$labels))) {
  sup <- means[means$kind == "supervised" & means$labels == b, ]
  ss <- means[means$kind == "self_supervised" & means$labels == b, ]
  ss <- ss[match(sup$seed, ss$seed), ]
  n <- nrow(sup)
  tt <- if (n > 1) t.test(ss$m, sup$m, paired = TRUE) else NULL
  w <- if (n >= 6) wilcox.test(ss$m, sup$m, paired = TRUE) else NULL
  cat(b, n, num(mean(ss$m - sup$m)), num(if (is.null(tt)) NA else tt$conf.int[1]), num(if (is.null(tt)) NA else tt$conf.int[2]),
      num(if (is.null(tt)) NA else unname(tt$statistic)), num(if (is.null(tt)) NA else unname(tt$parameter)),
      num(if (is.null(tt)) NA else tt$p.value), num(if (is.null(w)) NA else unname(w$statistic)),
      num(if (is.null(w)) NA else w$p.value), sep = ",")
  cat("\n")
}
sink()
sink("ref_paired_trials.csv")
cat("experiment_seed,labels,n_pairs,mean_diff,ci_low,ci_high,t,df,p\n")
pt <- tr[tr$paired == 1, ]
pg <- unique(pt[, c("experiment_seed", "labels")])
pg <- pg[order(pg$experiment_seed, pg$labels), ]
for (g in seq_len(nrow(pg))) {
  sel <- pt[pt$experiment_seed == pg$experiment_seed[g] & pt$labels == pg$labels[g], ]
  sup <- sel[sel$kind == "supervised", ]
  ss <- sel[sel$kind == "self_supervised", ]
  common <- intersect(sup$index, ss$index)
  x <- ss$test_accuracy[match(common, ss$index)]
  y <- sup$test_accuracy[match(common, sup$index)]
  tt <- t.test(x, y, paired = TRUE)
  cat(pg$experiment_seed[g], pg$labels[g], length(common), num(mean(x - y)), num(tt$conf.int[1]), num(tt$conf.int[2]),
      num(unname(tt$statistic)), num(unname(tt$parameter)), num(tt$p.value), sep = ",")
  cat("\n")
}
sink()
EOF
Rscript "$tmp/reference.R" || fail "R reference"

echo "== compare"
"$py" - "$tmp" <<'EOF'
import csv, math, os, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.image

tmp = sys.argv[1]
out = os.path.join(tmp, "out")
failures, compared = [], 0


def check(cond, msg):
    if not cond:
        failures.append(msg)


def read(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def num(v):
    return float("nan") if v in ("nan", "NA", "") else float(v)


def close(got, want, what, rel=1e-9):
    global compared
    compared += 1
    a, b = num(got), num(want)
    if math.isnan(a) or math.isnan(b):
        check(math.isnan(a) and math.isnan(b), f"{what}: analyze.py {got} vs R {want}")
    else:
        check(math.isclose(a, b, rel_tol=rel, abs_tol=1e-12), f"{what}: analyze.py {got} vs R {want}")


# R's qt() is accurate to ~5e-10 relative (tests/test_stats.py): intervals are compared to 1e-8.
CI = ("ci_low", "ci_high")


def compare(name, keys, columns, expected_rows):
    mine = {tuple(r[k] for k in keys): r for r in read(os.path.join(out, name))}
    ref = {tuple(r[k] for k in keys): r for r in read(os.path.join(tmp, "ref_" + name))}
    check(len(ref) == expected_rows, f"R reference {name}: {len(ref)} rows, expected {expected_rows}")
    check(sorted(mine) == sorted(ref), f"{name}: rows {sorted(mine)} vs R {sorted(ref)}")
    for key in ref:
        if key not in mine:
            continue
        for c in columns:
            close(mine[key][c], ref[key][c], f"{name} {key} {c}", rel=1e-8 if c in CI else 1e-9)


# 7 seeds x 3 budgets + 3 seeds x 1000 + seed 8 x 2 budgets = 12 + 12 + 2 = 26 (seed, budget) groups
compare("per_seed.csv", ("experiment_seed", "labels", "kind"), ("n", "mean", "sd"), 2 * 26)
compare("label_curve.csv", ("kind", "labels"), ("n_seeds", "mean", "ci_low", "ci_high"), 2 * 5)
compare("seed_comparison.csv", ("labels",), ("n_seeds", "mean_diff", "ci_low", "ci_high", "paired_t", "paired_df",
                                             "paired_p", "wilcoxon_v", "wilcoxon_p"), 5)
compare("paired_trials.csv", ("experiment_seed", "labels"), ("n_pairs", "mean_diff", "ci_low", "ci_high", "t", "df", "p"),
        4 * 3 + 3 * 4)

# the cases the data was built to exercise
curve = {(r["kind"], r["labels"]): r for r in read(os.path.join(out, "label_curve.csv"))}
check(curve[("supervised", "150")]["n_seeds"] == "8", "budget 150: 8 seeds (format 1 and 2 files together)")
check(curve[("supervised", "1500")]["n_seeds"] == "1" and curve[("supervised", "1500")]["ci_low"] == "nan",
      "one seed: no interval (nan)")
comp = {r["labels"]: r for r in read(os.path.join(out, "seed_comparison.csv"))}
check(comp["1000"]["wilcoxon_v"] == "nan" and comp["1000"]["paired_p"] != "nan", "3 seeds: paired t, no Wilcoxon")
check(comp["150"]["wilcoxon_method"] == "exact", "8 seeds: exact Wilcoxon")
per_seed = {(r["experiment_seed"], r["labels"], r["kind"]): r for r in read(os.path.join(out, "per_seed.csv"))}
check(per_seed[("2", "150", "supervised")]["n"] == "4" and per_seed[("2", "150", "supervised")]["n_rows"] == "5",
      "the unfinished trial is left out")
paired_rows = read(os.path.join(out, "paired_trials.csv"))
check({r["experiment_seed"] for r in paired_rows} == {str(s) for s in range(1, 8)},
      "paired trials: only the seeds of files with trials.paired = true (root attribute and /config)")

# figures: the label curve at 150 dpi (7 x 4.5 inches), PNG and PDF
png = os.path.join(out, "label_curve.png")
data = open(png, "rb").read()
check(data[:8] == b"\x89PNG\r\n\x1a\n" and data[-8:-4] == b"IEND", "label_curve.png is not a complete PNG")
width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
check((width, height) == (1050, 675), f"label_curve.png is {width}x{height}, expected 1050x675 (7 x 4.5 in at 150 dpi)")
img = matplotlib.image.imread(png)
check(float(img[..., :3].std()) > 0.01, "label_curve.png is blank")
pdf = open(os.path.join(out, "label_curve.pdf"), "rb").read()
check(pdf.startswith(b"%PDF-") and b"%%EOF" in pdf[-64:], "label_curve.pdf is not a complete PDF")

md = open(os.path.join(out, "summary.md")).read()
for needle in ("## Study: seeds as the unit of replication", "Paired trials", "Wilcoxon", "| 2 | 150 | Supervised | 5 | 4 |",
               "### seed 1, 50 labelled images per trial", "Seed 1: Benchmark"):
    check(needle in md, f"summary.md lacks {needle!r}")
summary = read(os.path.join(out, "summary.csv"))
check(len(summary) == 4 * 26, f"summary.csv: {len(summary)} rows, expected 4 per (seed, budget) = 104")
for f in failures:
    print("FAIL: " + f)
print(f"compare: {compared} numbers compared with R, {len(failures)} failures")
sys.exit(1 if failures else 0)
EOF

echo "== a format-1 file alone: the single-run outputs"
"${analyze[@]}" single_150.h5 > "$tmp/single.log" 2>&1 || { show "$tmp/single.log"; fail "analyze.py on a format-1 file"; }
single="$tmp/single_150-analysis"
for f in comparison.png comparison.pdf summary.csv summary.md; do [ -s "$single/$f" ] || fail "$single/$f missing"; done
for f in label_curve.csv per_seed.csv sweep.csv; do [ ! -e "$single/$f" ] || fail "$single/$f written for one (seed, budget)"; done
"$py" - "$single/summary.csv" <<'EOF' || fail "single-run summary.csv"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 4, rows
assert {r["labels"] for r in rows} == {"150"} and {r["experiment_seed"] for r in rows} == {"8"}, "seed and budget from /config"
assert all(r["n"] == "5" for r in rows)
EOF

echo "== bad input"
expect_refusal() {  # expect_refusal NEEDLE ARGS...
    local needle="$1"; shift
    local rc=0
    "${analyze[@]}" "$@" --out "$tmp/bad" > "$tmp/bad.log" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] || { show "$tmp/bad.log"; fail "analyze.py accepted: $*"; }
    grep -qF -- "$needle" "$tmp/bad.log" || { show "$tmp/bad.log"; fail "no clear message for: $* (expected '$needle')"; }
}
"$py" -c "
import h5py, shutil
shutil.copy('study_b.h5', 'v3.h5'); shutil.copy('study_b.h5', 'nolabels.h5')
with h5py.File('v3.h5', 'a') as f: f.attrs['format_version'] = 3
with h5py.File('nolabels.h5', 'a') as f: del f['trials/supervised/labels']
"
expect_refusal "v3.h5: format_version 3 is not one this script reads" v3.h5
expect_refusal "format 2 but /trials/supervised/labels is missing" nolabels.h5
expect_refusal "study_a.h5 is given twice" study_a.h5 study_b.h5 study_a.h5
cp study_a.h5 copy_a.h5
"${analyze[@]}" study_a.h5 copy_a.h5 --out "$tmp/dup" > "$tmp/dup.log" 2>&1 || { show "$tmp/dup.log"; fail "a copy of a file"; }
grep -q "both hold the" "$tmp/dup.log" || { show "$tmp/dup.log"; fail "no warning for repeated trials"; }
[ ! -e "$tmp/dup/label_curve.csv" ] || fail "study outputs made from repeated trials"

echo "e2e_analyze_study: passed in $((SECONDS - t_start)) s"
