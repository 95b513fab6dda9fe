#!/usr/bin/python3
"""test_stats.py: checks the statistics of scripts/analyze.py (incomplete beta, Student's t,
Mann-Whitney U, Welch's t test, descriptive summary) against closed forms, hand-computed values
and R (Rscript: qt, pt, wilcox.test, t.test, quantile), an independent implementation.
Run by tests/e2e_analyze.sh; exits 1 on the first failure. Needs Rscript on PATH.

Usage: /usr/bin/python3 tests/test_stats.py
"""
import math
import os
import subprocess
import sys

import numpy as np

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


# --- closed forms ---------------------------------------------------------------------------
for x in (0.01, 0.2, 0.5, 0.77, 0.999):
    for a in (0.5, 1.0, 3.0, 12.5):
        close(f"I_{x}({a},1) = x^a", analyze.betainc_regularized(a, 1.0, x), x ** a)
        close(f"I_{x}(1,{a}) = 1-(1-x)^a", analyze.betainc_regularized(1.0, a, x), 1.0 - (1.0 - x) ** a)
        close(f"I_{x}({a},2.5) symmetry", analyze.betainc_regularized(a, 2.5, x),
              1.0 - analyze.betainc_regularized(2.5, a, 1.0 - x))
for a in (0.5, 2.0, 7.0, 40.0):
    close(f"I_0.5({a},{a}) = 1/2", analyze.betainc_regularized(a, a, 0.5), 0.5)

for t in (-30.0, -2.5, -0.3, 0.0, 0.7, 1.0, 4.2, 100.0):
    close(f"t cdf df=1 (Cauchy) at {t}", analyze.t_cdf(t, 1.0), 0.5 + math.atan(t) / math.pi)
    close(f"t cdf df=2 at {t}", analyze.t_cdf(t, 2.0), 0.5 + t / (2.0 * math.sqrt(2.0 + t * t)))
    # t -> normal as df grows (difference O(1/df)); exact large-df values are checked against R below
    close(f"t cdf df=1e6 ~ normal at {t}", analyze.t_cdf(t, 1e6), 1.0 - analyze.normal_sf(t), rel=1e-5, abs_tol=1e-7)
for p in (0.6, 0.9, 0.975, 0.995):
    close(f"t quantile df=1 at {p}", analyze.t_quantile(p, 1.0), math.tan(math.pi * (p - 0.5)))
    close(f"t quantile df=2 at {p}", analyze.t_quantile(p, 2.0), (2 * p - 1) / math.sqrt(2 * p * (1 - p)))
close("normal sf at 1.959963984540054", analyze.normal_sf(1.959963984540054), 0.025)

# --- hand-computed ----------------------------------------------------------------------------
# Exact U distribution for n1 = n2 = 2: {1,2}->0, {1,3}->1, {1,4},{2,3}->2, {2,4}->3, {3,4}->4.
equal("U counts n1=n2=2", analyze.mann_whitney_u_counts(2, 2).tolist(), [1.0, 1.0, 2.0, 1.0, 1.0])
for n1, n2 in ((3, 4), (7, 5), (20, 20), (49, 49)):
    counts = analyze.mann_whitney_u_counts(n1, n2)
    close(f"U counts {n1},{n2} sum = C(n1+n2, n1)", counts.sum(), float(math.comb(n1 + n2, n1)))
    close(f"U counts {n1},{n2} symmetric", float(np.abs(counts - counts[::-1]).max()), 0.0)
# x entirely below y: U = 0, p = 2 / C(6, 3) = 0.1 (and 2 / C(5, 2) = 0.2)
r = analyze.mann_whitney_u([1, 2, 3], [4, 5, 6])
close("MWU 3 vs 3 separated: U", r["u"], 0.0)
close("MWU 3 vs 3 separated: p", r["p"], 0.1)
equal("MWU 3 vs 3 method", r["method"], "exact")
r = analyze.mann_whitney_u([5, 4], [3, 1, 2])
close("MWU 2 vs 3 above: U", r["u"], 6.0)
close("MWU 2 vs 3 above: p", r["p"], 0.2)
# Welch by hand: means 2.5 and 6, variances 5/3 and 10, se^2 = 5/12 + 2 = 29/12,
# df = (29/12)^2 / ((5/12)^2 / 3 + 2^2 / 4)
r = analyze.welch_t_test([1, 2, 3, 4], [2, 4, 6, 8, 10])
close("Welch t by hand", r["t"], -3.5 / math.sqrt(29.0 / 12.0))
close("Welch df by hand", r["df"], (29.0 / 12.0) ** 2 / ((5.0 / 12.0) ** 2 / 3.0 + 1.0))
d = analyze.describe([4.0, 1.0, 3.0, 2.0])
close("describe mean", d["mean"], 2.5)
close("describe sd", d["sd"], math.sqrt(5.0 / 3.0))
close("describe median", d["median"], 2.5)
close("describe q1 (type 7)", d["q1"], 1.75)
close("describe q3 (type 7)", d["q3"], 3.25)
close("describe iqr", d["iqr"], 1.5)
equal("describe n=1 sd is nan", math.isnan(analyze.describe([3.0])["sd"]), True)
equal("Welch n=1 is nan", math.isnan(analyze.welch_t_test([1.0], [2.0, 3.0])["p"]), True)
equal("ranks with ties", analyze.rank_with_ties([10, 20, 10, 30, 20, 20]).tolist(), [1.5, 4.0, 1.5, 6.0, 4.0, 4.0])

# --- against R ------------------------------------------------------------------------------
rng = np.random.default_rng(7)
samples = {
    "exact_small": (rng.normal(0.6, 0.05, 6), rng.normal(0.55, 0.08, 8)),
    "exact_20x20": (rng.normal(0.70, 0.03, 20), rng.normal(0.72, 0.03, 20)),
    "ties": (np.round(rng.normal(0.5, 0.1, 12), 1), np.round(rng.normal(0.55, 0.1, 9), 1)),
    "normal_60x55": (rng.normal(0.0, 1.0, 60), rng.normal(0.4, 2.0, 55)),
    "unbalanced": (rng.exponential(1.0, 5), rng.exponential(3.0, 30)),
}


def r_vector(v):
    return "c(" + ",".join(repr(float(a)) for a in v) + ")"


r_lines = ["options(digits = 17)"]
for name, (x, y) in samples.items():
    r_lines += [f"x <- {r_vector(x)}; y <- {r_vector(y)}",
                "w <- suppressWarnings(wilcox.test(x, y)); t <- t.test(x, y)",
                f"cat('{name}', w$statistic, w$p.value, t$statistic, t$parameter, t$p.value,"
                " mean(x), sd(x), median(x), quantile(x, 0.25), quantile(x, 0.75),"
                " mean(x) - qt(0.975, length(x) - 1) * sd(x) / sqrt(length(x)), '\\n')"]
quantile_args = [(0.975, 1), (0.975, 2.5), (0.975, 19), (0.995, 4), (0.9, 150), (0.6, 0.7), (0.975, 10000)]
for p, df in quantile_args:
    r_lines.append(f"cat('qt', {p}, {df}, qt({p}, {df}), pt(1.7, {df}), pt(-4.3, {df}), '\\n')")
try:
    out = subprocess.run(["Rscript", "-e", "\n".join(r_lines)], check=True, capture_output=True, text=True).stdout
except (OSError, subprocess.CalledProcessError) as e:
    print(f"FAIL: Rscript (the reference) did not run: {e}")
    sys.exit(1)
r_rows = [line.split() for line in out.strip().splitlines()]
equal("R answered every case", len(r_rows), len(samples) + len(quantile_args))
for row in r_rows:
    if row[0] == "qt":
        p, df = float(row[1]), float(row[2])
        qt, pt_hi, pt_lo = (float(v) for v in row[3:6])
        close(f"qt({p}, {df})", analyze.t_quantile(p, df), qt, rel=1e-10)
        close(f"pt(1.7, {df})", analyze.t_cdf(1.7, df), pt_hi, rel=1e-10)
        close(f"pt(-4.3, {df})", analyze.t_cdf(-4.3, df), pt_lo, rel=1e-10)
        continue
    name = row[0]
    x, y = samples[name]
    w_stat, w_p, t_stat, t_df, t_p, mean, sd, median, q1, q3, ci_low = (float(v) for v in row[1:12])
    mw = analyze.mann_whitney_u(x, y)
    welch = analyze.welch_t_test(x, y)
    d = analyze.describe(x)
    close(f"{name}: wilcox.test W", mw["u"], w_stat)
    close(f"{name}: wilcox.test p ({mw['method']})", mw["p"], w_p, rel=1e-9)
    close(f"{name}: t.test t", welch["t"], t_stat)
    close(f"{name}: t.test df", welch["df"], t_df)
    close(f"{name}: t.test p", welch["p"], t_p, rel=1e-9)
    for key, want in (("mean", mean), ("sd", sd), ("median", median), ("q1", q1), ("q3", q3), ("ci95_low", ci_low)):
        close(f"{name}: {key}", d[key], want, rel=1e-10)
equal("methods exercised", sorted({analyze.mann_whitney_u(x, y)["method"] for x, y in samples.values()}),
      ["exact", "normal"])

print(f"test_stats: {checks - failures} of {checks} checks passed")
sys.exit(1 if failures else 0)
