#!/usr/bin/env python3
"""test_stats.py: checks the statistics of scripts/analyze.py (Mann-Whitney U, Welch's t test,
paired t test, Wilcoxon signed-rank test, t intervals, descriptive summary; all built on scipy)
against closed forms, hand-computed values and R (an Rscript file: wilcox.test, t.test, quantile, qt), an
independent implementation. Run by tests/e2e_analyze.sh with the Python that has h5py, numpy,
scipy and matplotlib. Exits 1 on a failure, 77 (skipped) when scipy or Rscript is missing.

Usage: python3 tests/test_stats.py
"""
import math
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import scipy  # noqa: F401  (analyze.py needs it; a clear skip instead of its exit)
    import h5py  # noqa: F401
    import matplotlib  # noqa: F401
except ImportError as e:
    print(f"SKIP: {e} (this Python, {sys.executable}, lacks what scripts/analyze.py needs)")
    sys.exit(77)
if shutil.which("Rscript") is None:
    print("SKIP: Rscript (the reference) is not installed (Debian: apt-get install r-base-core)")
    sys.exit(77)

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import analyze  # noqa: E402

failures = 0
checks = 0


def close(name, got, want, rel=1e-9, abs_tol=1e-12):
    global failures, checks
    checks += 1
    ok = (math.isnan(got) and math.isnan(want)) or math.isclose(got, want, rel_tol=rel, abs_tol=abs_tol)
    if not ok:
        failures += 1
        print(f"FAIL {name}: got {got!r}, want {want!r}")


def equal(name, got, want):
    global failures, checks
    checks += 1
    if got != want:
        failures += 1
        print(f"FAIL {name}: got {got!r}, want {want!r}")


# --- closed forms and hand-computed values --------------------------------------------------------
# x entirely below y: U = 0, exact p = 2 / C(6, 3) = 0.1 (and 2 / C(5, 2) = 0.2)
r = analyze.mann_whitney_u([1, 2, 3], [4, 5, 6])
close("MWU 3 vs 3 separated: U", r["u"], 0.0)
close("MWU 3 vs 3 separated: p", r["p"], 0.1)
equal("MWU 3 vs 3 method", r["method"], "exact")
r = analyze.mann_whitney_u([5, 4], [3, 1, 2])
close("MWU 2 vs 3 above: U", r["u"], 6.0)
close("MWU 2 vs 3 above: p", r["p"], 0.2)
equal("MWU with a tie uses the normal approximation", analyze.mann_whitney_u([1, 2, 3], [3, 4])["method"], "normal")
equal("MWU empty kind is nan", math.isnan(analyze.mann_whitney_u([], [1.0])["p"]), True)
# Welch by hand: means 2.5 and 6, variances 5/3 and 10, se^2 = 5/12 + 2 = 29/12,
# df = (29/12)^2 / ((5/12)^2 / 3 + 2^2 / 4)
r = analyze.welch_t_test([1, 2, 3, 4], [2, 4, 6, 8, 10])
close("Welch t by hand", r["t"], -3.5 / math.sqrt(29.0 / 12.0))
close("Welch df by hand", r["df"], (29.0 / 12.0) ** 2 / ((5.0 / 12.0) ** 2 / 3.0 + 1.0))
# Student's t with 2 df has a closed-form CDF, 1/2 + t / (2 sqrt(2 + t^2)), and quantile
# (2p - 1) / sqrt(2 p (1 - p)).
q975_df2 = 0.95 / math.sqrt(2 * 0.975 * 0.025)
# Welch with a constant second sample: df = n1 - 1 = 2, t = (2 - 1) / sqrt(4 / 3)
r = analyze.welch_t_test([0, 2, 4], [1, 1, 1, 1, 1])
t_hand = 1.0 / math.sqrt(4.0 / 3.0)
close("Welch df = 2 by hand", r["df"], 2.0)
close("Welch p by hand (df 2 closed form)", r["p"], 1.0 - t_hand / math.sqrt(2.0 + t_hand ** 2))
low, high = analyze.t_interval([1.0, 2.0, 3.0])
close("t interval of 1,2,3 (df 2, closed form)", low, 2.0 - q975_df2 / math.sqrt(3.0))
close("t interval of 1,2,3 upper", high, 2.0 + q975_df2 / math.sqrt(3.0))
equal("t interval of one value is nan", all(math.isnan(v) for v in analyze.t_interval([0.5])), True)
# paired: differences 1, 2, 3: mean 2, sd 1, t = 2 sqrt(3), df 2, p = 1 - t / sqrt(2 + t^2)
r = analyze.paired_t_test([2, 4, 6], [1, 2, 3])
t_hand = 2.0 * math.sqrt(3.0)
close("paired t by hand", r["t"], t_hand)
close("paired df by hand", r["df"], 2.0)
close("paired p by hand (df 2 closed form)", r["p"], 1.0 - t_hand / math.sqrt(2.0 + t_hand ** 2))
close("paired mean difference", r["mean_diff"], 2.0)
close("paired CI low", r["ci_low"], 2.0 - q975_df2 / math.sqrt(3.0))
equal("paired constant differences: t is nan", math.isnan(analyze.paired_t_test([2, 3, 4], [1, 2, 3])["t"]), True)
equal("paired one pair: p is nan", math.isnan(analyze.paired_t_test([2], [1])["p"]), True)
# signed ranks: all six differences positive: V = 21, exact p = 2 / 2^6; one negative (rank 1):
# V = 20, P(V >= 20) = 2 / 64, p = 0.0625
r = analyze.wilcoxon_signed_rank([1, 2, 3, 4, 5, 6])
close("signed-rank all positive: V", r["v"], 21.0)
close("signed-rank all positive: p", r["p"], 2.0 / 64.0)
equal("signed-rank method", r["method"], "exact")
r = analyze.wilcoxon_signed_rank([-1, 2, 3, 4, 5, 6])
close("signed-rank one negative: V", r["v"], 20.0)
close("signed-rank one negative: p", r["p"], 0.0625)
equal("signed-rank with a zero uses the normal approximation",
      analyze.wilcoxon_signed_rank([0, 1, 2, 3, 4, 5, 6])["method"], "normal")
d = analyze.describe([4.0, 1.0, 3.0, 2.0])
close("describe mean", d["mean"], 2.5)
close("describe sd", d["sd"], math.sqrt(5.0 / 3.0))
close("describe median", d["median"], 2.5)
close("describe q1 (type 7)", d["q1"], 1.75)
close("describe q3 (type 7)", d["q3"], 3.25)
close("describe iqr", d["iqr"], 1.5)
equal("describe n=1 sd is nan", math.isnan(analyze.describe([3.0])["sd"]), True)
equal("Welch n=1 is nan", math.isnan(analyze.welch_t_test([1.0], [2.0, 3.0])["p"]), True)

# --- against R ----------------------------------------------------------------------------------
rng = np.random.default_rng(7)
samples = {
    "exact_small": (rng.normal(0.6, 0.05, 6), rng.normal(0.55, 0.08, 8)),
    "exact_20x20": (rng.normal(0.70, 0.03, 20), rng.normal(0.72, 0.03, 20)),
    "ties": (np.round(rng.normal(0.5, 0.1, 12), 1), np.round(rng.normal(0.55, 0.1, 9), 1)),
    "normal_60x55": (rng.normal(0.0, 1.0, 60), rng.normal(0.4, 2.0, 55)),
    "unbalanced": (rng.exponential(1.0, 5), rng.exponential(3.0, 30)),
}
# paired samples (x, y): per-seed means of two kinds, or paired trials
paired = {
    "p_exact_8": (rng.normal(0.82, 0.02, 8), rng.normal(0.80, 0.02, 8)),
    "p_small_3": (rng.normal(0.8, 0.02, 3), rng.normal(0.79, 0.02, 3)),
    "p_ties_12": (np.round(rng.normal(0.5, 0.1, 12), 1), np.round(rng.normal(0.45, 0.1, 12), 1)),
    "p_normal_60": (rng.normal(0.1, 1.0, 60), rng.normal(0.0, 1.0, 60)),
}
# one pair with a zero difference: R drops it and uses the normal approximation
x0, y0 = rng.normal(0.8, 0.02, 9), rng.normal(0.79, 0.02, 9)
y0[4] = x0[4]
paired["p_zero_9"] = (x0, y0)


# Confidence intervals match R to 1e-8 relative, not 1e-9: R's qt() is the less exact of the two
# (qt(0.975, 2) = 4.30265272975 against the closed form 4.30265272991, relative error 4e-11; up to
# ~5e-10 at other df), while scipy's t.ppf matches the closed form above to 1e-15.
CI_REL = 1e-8


def r_vector(v):
    return "c(" + ",".join(repr(float(a)) for a in v) + ")"


r_lines = ["options(digits = 17)"]
for name, (x, y) in samples.items():
    r_lines += [f"x <- {r_vector(x)}; y <- {r_vector(y)}",
                "w <- suppressWarnings(wilcox.test(x, y)); t <- t.test(x, y)",
                f"cat('{name}', w$statistic, w$p.value, t$statistic, t$parameter, t$p.value,"
                " mean(x), sd(x), median(x), quantile(x, 0.25), quantile(x, 0.75),"
                " mean(x) - qt(0.975, length(x) - 1) * sd(x) / sqrt(length(x)), t.test(x)$conf.int[2], '\\n')"]
for name, (x, y) in paired.items():
    r_lines += [f"x <- {r_vector(x)}; y <- {r_vector(y)}",
                "w <- suppressWarnings(wilcox.test(x, y, paired = TRUE)); t <- t.test(x, y, paired = TRUE)",
                f"cat('{name}', w$statistic, w$p.value, t$statistic, t$parameter, t$p.value,"
                " t$conf.int[1], t$conf.int[2], mean(x - y), '\\n')"]
# The script goes through a file: R cuts a long -e argument.
with tempfile.TemporaryDirectory() as tmp:
    script = os.path.join(tmp, "reference.R")
    with open(script, "w") as fh:
        fh.write("\n".join(r_lines) + "\n")
    try:
        out = subprocess.run(["Rscript", script], check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"FAIL: Rscript (the reference) did not run: {e}\n{getattr(e, 'stderr', '')}")
        sys.exit(1)
r_rows = [line.split() for line in out.strip().splitlines()]
equal("R answered every case", len(r_rows), len(samples) + len(paired))
methods = set()
signed_methods = set()
for row in r_rows:
    name = row[0]
    if name in samples:
        x, y = samples[name]
        w_stat, w_p, t_stat, t_df, t_p, mean, sd, median, q1, q3, ci_low, ci_high = (float(v) for v in row[1:13])
        mw = analyze.mann_whitney_u(x, y)
        welch = analyze.welch_t_test(x, y)
        d = analyze.describe(x)
        methods.add(mw["method"])
        close(f"{name}: wilcox.test W", mw["u"], w_stat)
        close(f"{name}: wilcox.test p ({mw['method']})", mw["p"], w_p, rel=1e-9)
        close(f"{name}: t.test t", welch["t"], t_stat)
        close(f"{name}: t.test df", welch["df"], t_df)
        close(f"{name}: t.test p", welch["p"], t_p, rel=1e-9)
        for key, want in (("mean", mean), ("sd", sd), ("median", median), ("q1", q1), ("q3", q3)):
            close(f"{name}: {key}", d[key], want, rel=1e-10)
        for key, want in (("ci95_low", ci_low), ("ci95_high", ci_high)):
            close(f"{name}: {key}", d[key], want, rel=CI_REL)
    else:
        x, y = paired[name]
        v_stat, v_p, t_stat, t_df, t_p, ci_low, ci_high, mean_diff = (float(v) for v in row[1:9])
        w = analyze.wilcoxon_signed_rank(np.asarray(x) - np.asarray(y))
        pt = analyze.paired_t_test(x, y)
        signed_methods.add(w["method"])
        close(f"{name}: wilcox.test(paired) V", w["v"], v_stat)
        close(f"{name}: wilcox.test(paired) p ({w['method']})", w["p"], v_p, rel=1e-9)
        close(f"{name}: t.test(paired) t", pt["t"], t_stat)
        close(f"{name}: t.test(paired) df", pt["df"], t_df)
        close(f"{name}: t.test(paired) p", pt["p"], t_p, rel=1e-9)
        close(f"{name}: t.test(paired) CI low", pt["ci_low"], ci_low, rel=CI_REL)
        close(f"{name}: t.test(paired) CI high", pt["ci_high"], ci_high, rel=CI_REL)
        close(f"{name}: mean difference", pt["mean_diff"], mean_diff, rel=1e-12)
equal("rank-sum methods exercised", sorted(methods), ["exact", "normal"])
equal("signed-rank methods exercised", sorted(signed_methods), ["exact", "normal"])

print(f"test_stats: {checks - failures} passed, {failures} failed")
sys.exit(1 if failures else 0)
