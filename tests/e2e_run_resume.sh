#!/usr/bin/env bash
# e2e_run_resume.sh: a run stopped after some trials, then rerun with the same command, ends with
# the same trial results as an uninterrupted run; the trials finished before are read back, not
# recomputed (their seconds and rank are kept); a different configuration is refused with a
# message naming the key, and --force starts over.
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:?}"; bin="${PRETEXT_BINARY:?}"
. "$src/tests/mpi_launcher.sh" # pt_mpiexec: the build's launcher, with the flags it accepts
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
# The first 2000 training and 1000 test images of MNIST (a tenth of the test set to evaluate:
# most of a run's time under the sanitizers).
python3 "$src/tests/idx_tool.py" small "${PRETEXT_DATA_DIR:-$src/data/mnist}" "$tmp/data" 2000 1000 > /dev/null
cfg=("data.dir=$tmp/data" benchmark.epochs=1 pretext.epochs=1 trials.supervised=3
     trials.self_supervised=3 trials.labels=40 trials.epochs=2 downstream.frozen_epochs=1
     downstream.finetune_epochs=1)
run() { pt_mpiexec -n 2 "$bin" run "$@"; }
run --out "$tmp/full.h5" "${cfg[@]}" > "$tmp/log_full" 2>&1 || { cat "$tmp/log_full"; echo "FAIL: full run"; exit 1; }
set +e
run --out "$tmp/part.h5" --stop-after-trials 2 "${cfg[@]}" > "$tmp/log_part" 2>&1
rc=$?
set -e
[ "$rc" -eq 75 ] || { cat "$tmp/log_part"; echo "FAIL: stopped run exited $rc, expected 75"; exit 1; }
read -r complete ns nss < <(/usr/bin/python3 "$src/tests/results_tool.py" done "$tmp/part.h5")
done_before=$((ns + nss))
[ "$complete" = 0 ] && [ "$done_before" -ge 2 ] && [ "$done_before" -lt 6 ] || { echo "FAIL: stopped file: $complete $ns $nss"; exit 1; }
cp "$tmp/part.h5" "$tmp/part_before.h5"
run --out "$tmp/part.h5" "${cfg[@]}" > "$tmp/log_resume" 2>&1 || { cat "$tmp/log_resume"; echo "FAIL: resumed run"; exit 1; }
grep -q "already done" "$tmp/log_resume" || { cat "$tmp/log_resume"; echo "FAIL: phases were not read back"; exit 1; }
ran=$(grep -c "^trial " "$tmp/log_resume" || true)
[ "$ran" -eq $((6 - done_before)) ] || { echo "FAIL: resume ran $ran trials, expected $((6 - done_before))"; exit 1; }
/usr/bin/python3 "$src/tests/results_tool.py" same-trials "$tmp/full.h5" "$tmp/part.h5"
/usr/bin/python3 - "$tmp/part_before.h5" "$tmp/part.h5" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
for kind in ("supervised", "self_supervised"):
    done = a[f"trials/{kind}/done"][()].astype(bool)
    for field in ("seconds", "rank", "test_accuracy"):
        x, y = a[f"trials/{kind}/{field}"][()][done], b[f"trials/{kind}/{field}"][()][done]
        assert np.array_equal(x, y), f"{kind}/{field} of trials finished before the resume changed: {x} vs {y}"
for phase in ("benchmark", "pretext"):
    assert a[f"{phase}/seconds"][()] == b[f"{phase}/seconds"][()], f"{phase} was recomputed"
print("finished trials and phases kept as they were")
PY
# A different configuration is refused, naming the key; --force starts over.
set +e
run --out "$tmp/part.h5" "${cfg[@]}" trials.labels=30 > "$tmp/log_diff" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] && grep -q "trials.labels" "$tmp/log_diff" && grep -q -- "--force" "$tmp/log_diff" \
  || { cat "$tmp/log_diff"; echo "FAIL: a changed configuration was not refused clearly (exit $rc)"; exit 1; }
run --out "$tmp/part.h5" --force "${cfg[@]}" trials.labels=30 trials.supervised=1 trials.self_supervised=0 \
  benchmark.enabled=false > "$tmp/log_force" 2>&1 || { cat "$tmp/log_force"; echo "FAIL: --force"; exit 1; }
read -r complete ns nss < <(/usr/bin/python3 "$src/tests/results_tool.py" done "$tmp/part.h5")
[ "$complete $ns $nss" = "1 1 0" ] || { echo "FAIL: after --force: $complete $ns $nss"; exit 1; }
echo "e2e_run_resume: 1 passed, 0 failed"
