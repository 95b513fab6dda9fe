#!/usr/bin/env bash
# e2e_run_smoke.sh: `pretext run --config configs/smoke.ini` on 2 ranks; the results file holds
# both phases, both trial tables, weights of the right shapes and accuracies clearly above
# chance; both Keras weights files pass the Keras-layout check.
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:?}"; bin="${PRETEXT_BINARY:?}"
. "$src/tests/mpi_launcher.sh" # pt_mpiexec: the build's launcher, with the flags it accepts
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
(unset OPENBLAS_CORETYPE; pt_mpiexec -n 2 "$bin" run --config "$src/configs/smoke.ini" --out "$tmp/smoke.h5") > "$tmp/log" 2>&1 \
  || { rc=$?; cat "$tmp/log"; echo "FAIL: smoke run exited $rc"; exit 1; }
cat "$tmp/log"
grep -q "trial supervised" "$tmp/log" || { echo "FAIL: no trial progress lines"; exit 1; }
# An environment forcing OpenBLAS's kernels is pointed out (the rerun finds everything done).
! grep -q "^note: OPENBLAS_CORETYPE" "$tmp/log" || { echo "FAIL: the OPENBLAS_CORETYPE note without the variable"; exit 1; }
OPENBLAS_CORETYPE=Haswell pt_mpiexec -n 2 "$bin" run --config "$src/configs/smoke.ini" --out "$tmp/smoke.h5" > "$tmp/log2" 2>&1 \
  || { rc=$?; cat "$tmp/log2"; echo "FAIL: the rerun exited $rc"; exit 1; }
if "$bin" --version | grep -q '^blas: OpenBLAS'; then
  grep -q "^note: OPENBLAS_CORETYPE=Haswell is set" "$tmp/log2" || { cat "$tmp/log2"; echo "FAIL: no note on OPENBLAS_CORETYPE"; exit 1; }
else
  ! grep -q "^note: OPENBLAS_CORETYPE" "$tmp/log2" || { echo "FAIL: an OpenBLAS note with another BLAS"; exit 1; }
fi
grep -q "summary" "$tmp/log" || { echo "FAIL: no summary table"; exit 1; }
/usr/bin/python3 "$src/tests/results_tool.py" smoke "$tmp/smoke.h5" 3 3
/usr/bin/python3 "$src/scripts/check-keras-weights.py" "$tmp/smoke.pretext.weights.h5" --expect-classes 4 --results "$tmp/smoke.h5" --phase pretext
/usr/bin/python3 "$src/scripts/check-keras-weights.py" "$tmp/smoke.benchmark.weights.h5" --expect-classes 10 --results "$tmp/smoke.h5" --phase benchmark
echo "e2e_run_smoke: 1 passed, 0 failed"
