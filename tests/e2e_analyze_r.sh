#!/usr/bin/env bash
# e2e_analyze_r.sh: scripts/analyze.R's summary table agrees with scripts/analyze.py's summary.csv
# on the same results files: the synthetic files of tests/study_files.py (format 2 with 12 seed and
# budget blocks and an unfinished trial, format 1, tied values, a kind with 1 and one with 0
# finished trials, files without trial rows). Every number agrees to 1e-9 relative, the confidence intervals to 1e-8 (R's
# qt() is accurate to ~5e-10 relative, see tests/test_stats.py); NaN where analyze.py has NaN; the
# Mann-Whitney method (exact or normal) is the same. Also: analyze.R's usage errors, a file pretext
# did not write, and its figure when ggplot2 is installed.
# Skipped (exit 77) without Rscript, the R package hdf5r, or a Python with h5py, numpy, scipy and
# matplotlib (PRETEXT_PYTHON, else python3 on PATH, else /usr/bin/python3).
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:?}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
t_start=$SECONDS
fail() { echo "FAIL: $*"; exit 1; }
show() { echo "--- $1"; cat "$1"; }

command -v Rscript >/dev/null || { echo "SKIP: Rscript is not installed (Debian: apt-get install r-base-core)"; exit 77; }
Rscript -e 'quit(status = if (requireNamespace("hdf5r", quietly = TRUE)) 0 else 1)' >/dev/null 2>&1 ||
    { echo "SKIP: the R package hdf5r is not installed (Debian: apt-get install r-cran-hdf5r)"; exit 77; }
py=""
for candidate in ${PRETEXT_PYTHON:-} python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c "import h5py, numpy, scipy, matplotlib" >/dev/null 2>&1; then
        py="$candidate"; break
    fi
done
[ -n "$py" ] || { echo "SKIP: no Python with h5py, numpy, scipy and matplotlib (set PRETEXT_PYTHON)"; exit 77; }

"$py" "$src/tests/study_files.py" "$tmp" > /dev/null || fail "tests/study_files.py"
cd "$tmp"
files=(study_a single_150 edge ties empty_v1 empty_v2)
for f in "${files[@]}"; do
    "$py" "$src/scripts/analyze.py" "$f.h5" --out "py-$f" > "py-$f.log" 2>&1 || { show "py-$f.log"; fail "analyze.py $f.h5"; }
    Rscript "$src/scripts/analyze.R" "$f.h5" "r-$f/comparison-ggplot.png" --csv "r-$f/summary.csv" --no-plot > "r-$f.log" 2>&1 \
        || { show "r-$f.log"; fail "analyze.R $f.h5"; }
done

"$py" - "${files[@]}" <<'EOF'
import csv, math, sys

NUMERIC = ["n", "mean", "sd", "median", "q1", "q3", "iqr", "ci95_low", "ci95_high", "mann_whitney_u", "mann_whitney_p",
           "welch_t", "welch_df", "welch_p"]
failures, compared = [], 0


def num(v):
    return float("nan") if v in ("nan", "NA", "NaN", "") else float(v)


def key(r):
    return (r["file"], r["experiment_seed"], r["labels"], r["variable"], r["kind"])


expected_rows = {"study_a": 48, "single_150": 4, "edge": 4, "ties": 4, "empty_v1": 4, "empty_v2": 0}
methods = set()
for name in sys.argv[1:]:
    mine = {key(r): r for r in csv.DictReader(open(f"py-{name}/summary.csv"))}
    theirs = {key(r): r for r in csv.DictReader(open(f"r-{name}/summary.csv"))}
    if len(mine) != expected_rows[name] or sorted(mine) != sorted(theirs):
        failures.append(f"{name}: rows differ: analyze.py {len(mine)} {sorted(mine)[:3]}..., analyze.R {len(theirs)} {sorted(theirs)[:3]}...")
        continue
    for k, r in mine.items():
        t = theirs[k]
        for c in NUMERIC:
            a, b = num(r[c]), num(t[c])
            compared += 1
            rel = 1e-8 if c.startswith("ci95") else 1e-9
            ok = (math.isnan(a) and math.isnan(b)) or (not math.isnan(a) and not math.isnan(b) and
                                                        math.isclose(a, b, rel_tol=rel, abs_tol=1e-12))
            if not ok:
                failures.append(f"{name} {k} {c}: analyze.py {r[c]}, analyze.R {t[c]}")
        if r["mann_whitney_method"] != t["mann_whitney_method"]:
            failures.append(f"{name} {k}: method {r['mann_whitney_method']} vs {t['mann_whitney_method']}")
        methods.add(r["mann_whitney_method"])
if methods != {"exact", "normal", "n/a"}:
    failures.append(f"Mann-Whitney methods exercised: {sorted(methods)}, expected exact, normal and n/a")
for f in failures:
    print("FAIL: " + f)
print(f"analyze.py vs analyze.R: {compared} numbers compared, {len(failures)} failures")
sys.exit(1 if failures else 0)
EOF

echo "== analyze.R: usage errors and foreign files"
rc=0; Rscript "$src/scripts/analyze.R" > "$tmp/u.log" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q "usage:" "$tmp/u.log" || { show "$tmp/u.log"; fail "no arguments: exit $rc"; }
rc=0; Rscript "$src/scripts/analyze.R" single_150.h5 --bogus > "$tmp/u.log" 2>&1 || rc=$?
[ "$rc" -eq 2 ] && grep -q "unknown option '--bogus'" "$tmp/u.log" || { show "$tmp/u.log"; fail "unknown option: exit $rc"; }
rc=0; Rscript "$src/scripts/analyze.R" missing.h5 > "$tmp/u.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q "missing.h5: no such file" "$tmp/u.log" || { show "$tmp/u.log"; fail "missing file: exit $rc"; }
"$py" -c "import h5py; h5py.File('other.h5', 'w').create_dataset('x', data=[1])"
rc=0; Rscript "$src/scripts/analyze.R" other.h5 > "$tmp/u.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] && grep -q "other.h5 was not written by pretext" "$tmp/u.log" || { show "$tmp/u.log"; fail "foreign file: exit $rc"; }

if Rscript -e 'quit(status = if (requireNamespace("ggplot2", quietly = TRUE)) 0 else 1)' >/dev/null 2>&1; then
    echo "== analyze.R's figure"
    Rscript "$src/scripts/analyze.R" study_a.h5 > "$tmp/fig.log" 2>&1 || { show "$tmp/fig.log"; fail "analyze.R with the figure"; }
    png="$tmp/study_a-analysis/comparison-ggplot.png"
    [ -s "$png" ] && [ -s "$tmp/study_a-analysis/summary-R.csv" ] || fail "analyze.R default outputs missing"
    [ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "$png is not a PNG"
else
    echo "(ggplot2 not installed: analyze.R's figure not checked here; e2e_analyze checks it)"
fi

echo "e2e_analyze_r: passed in $((SECONDS - t_start)) s"
