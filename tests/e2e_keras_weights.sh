#!/usr/bin/env bash
# e2e_keras_weights.sh: both Keras weights files of a small `pretext run` load into the seed's
# model with TensorFlow's model.load_weights() and give back exactly the weights in the results
# file (scripts/check-keras-weights.py --tensorflow). Needs TensorFlow in /usr/bin/python3 (or
# $PRETEXT_TF_PYTHON, an interpreter with TensorFlow, h5py and numpy): without it the test reports
# itself skipped (status 77) with the reason, never passed. The checks that need no TensorFlow run
# in tests/e2e_keras_layout.sh, which can fail here.
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
bin="${PRETEXT_BINARY:-$src/build/pretext}"
py="${PRETEXT_TF_PYTHON:-/usr/bin/python3}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
# Skip before running anything when TensorFlow cannot be imported (the checker would say the same,
# with status 77, after the run).
if ! why=$("$py" -c "import tensorflow" 2>&1); then
  echo "SKIPPED: TensorFlow is not importable by $py ($(printf '%s\n' "$why" | tail -1)); the Keras"
  echo "         load_weights check did not run (tests/e2e_keras_layout.sh checks the layout with h5py)"
  exit 77
fi
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
"${PRETEXT_MPIEXEC:-mpiexec}" -n 1 "$bin" run --quiet --config "$src/configs/smoke.ini" --out "$tmp/r.h5" \
  "data.dir=${PRETEXT_DATA_DIR:-$src/data/mnist}" data.train_images=500 trials.supervised=0 \
  trials.self_supervised=0 > "$tmp/log" 2>&1 || { cat "$tmp/log"; echo "FAIL: the pretext run failed"; exit 1; }
status=0
for phase in pretext:4 benchmark:10; do
  rc=0
  "$py" "$src/scripts/check-keras-weights.py" "$tmp/r.${phase%%:*}.weights.h5" --expect-classes "${phase##*:}" \
    --results "$tmp/r.h5" --phase "${phase%%:*}" --tensorflow || rc=$?
  case "$rc" in
    0) ;;
    77) [ "$status" -ne 0 ] || status=77 ;; # cannot happen after the probe above, but never a pass
    *) status=1 ;;
  esac
done
echo "e2e_keras_weights: status $status (0 loaded and equal, 1 failed, 77 skipped)"
exit "$status"
