#!/usr/bin/env bash
# e2e_keras_layout.sh: the part of the Keras weights check that needs no TensorFlow, and proof that
# it can fail. A small `pretext run` writes both Keras weights files; scripts/check-keras-weights.py
# (h5py: Keras's layout, the file read the way Keras's load_weights reads it, the values equal to
# the results file) must accept both, and must reject (status 1, naming the problem) copies damaged
# in each way Keras or the contract would notice. Its --tensorflow mode may skip (77) on a good
# file when TensorFlow is missing, but never on a damaged one (the h5py checks run first).
# Loading with TensorFlow itself is tests/e2e_keras_weights.sh (skipped where TensorFlow is absent).
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
bin="${PRETEXT_BINARY:-$src/build/pretext}"
py=/usr/bin/python3 # Debian's, with h5py and numpy
check="$src/scripts/check-keras-weights.py"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
passed=0; failed=0

"${PRETEXT_MPIEXEC:-mpiexec}" -n 1 "$bin" run --quiet --config "$src/configs/smoke.ini" --out "$tmp/r.h5" \
  "data.dir=${PRETEXT_DATA_DIR:-$src/data/mnist}" data.train_images=500 trials.supervised=0 \
  trials.self_supervised=0 > "$tmp/log" 2>&1 || { cat "$tmp/log"; echo "FAIL: the pretext run failed"; exit 1; }
w4="$tmp/r.pretext.weights.h5"; w10="$tmp/r.benchmark.weights.h5"

# expect NAME STATUS PATTERN ARGS...: the checker's status must be STATUS and its output match PATTERN.
expect() {
  local name="$1" want="$2" pattern="$3"; shift 3
  local rc=0
  "$py" "$check" "$@" > "$tmp/out" 2>&1 || rc=$?
  if [ "$rc" = "$want" ] && grep -qE -- "$pattern" "$tmp/out"; then
    passed=$((passed + 1)); echo "ok   $name: $(grep -m1 -E -- "$pattern" "$tmp/out" | cut -c1-160)"
  else
    failed=$((failed + 1)); echo "FAIL $name: status $rc (expected $want), /$pattern/ wanted in:"
    sed 's/^/     | /' "$tmp/out"
  fi
}

expect "pretext weights" 0 "ok with h5py \(4 classes.*equal to" "$w4" --expect-classes 4 --results "$tmp/r.h5" --phase pretext
expect "benchmark weights" 0 "ok with h5py \(10 classes.*equal to" "$w10" --expect-classes 10 --results "$tmp/r.h5" --phase benchmark
expect "says TensorFlow was not tried" 0 "not loaded with TensorFlow" "$w4"
expect "wrong class count" 1 "dense_1/kernel:0: shape \(256, 4\), expected \(256, 10\)" "$w4" --expect-classes 10
expect "other phase's weights" 1 "differs from|holds" "$w10" --results "$tmp/r.h5" --phase pretext

# --tensorflow on a good file: loaded (0) or skipped with the reason (77), never a failure.
rc=0; "$py" "$check" "$w4" --tensorflow > "$tmp/out" 2>&1 || rc=$?
if [ "$rc" = 0 ] && grep -q "loaded with TensorFlow" "$tmp/out"; then
  passed=$((passed + 1)); echo "ok   --tensorflow: loaded"
elif [ "$rc" = 77 ] && grep -q "SKIPPED loading with TensorFlow: TensorFlow is not importable" "$tmp/out"; then
  passed=$((passed + 1)); echo "ok   --tensorflow: status 77: $(grep SKIPPED "$tmp/out" | cut -c1-160)"
else
  failed=$((failed + 1)); echo "FAIL --tensorflow on a good file: status $rc"; sed 's/^/     | /' "$tmp/out"
fi

# damage NAME PATTERN PYTHON [--tensorflow]: a copy of the 4-class file edited by PYTHON (f: the
# h5py file, np), which the checker must reject with PATTERN (also with --tensorflow if given).
damage() {
  local name="$1" pattern="$2" code="$3" tf="${4:-}"
  cp "$w4" "$tmp/bad.h5"
  "$py" -c "import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], 'r+')
$code
f.close()" "$tmp/bad.h5"
  expect "damaged: $name" 1 "$pattern" "$tmp/bad.h5" --expect-classes 4
  [ -z "$tf" ] || expect "damaged: $name (--tensorflow)" 1 "$pattern" "$tmp/bad.h5" --expect-classes 4 --tensorflow
}
damage "no layer_names" "root attribute layer_names is missing" "del f.attrs['layer_names']"
damage "a layer left out of layer_names" "layer_names is \[" \
  "f.attrs['layer_names'] = np.array([n for n in f.attrs['layer_names'] if n != b'dropout'])"
damage "backend" "backend is 'theano'" "f.attrs['backend'] = np.bytes_('theano')"
damage "keras_version 3" "keras_version is '3.1.0', expected 2.x" "f.attrs['keras_version'] = np.bytes_('3.1.0')" --tensorflow
damage "variable-length string attribute" "attribute backend is str, expected a fixed-length string" \
  "f.attrs['backend'] = 'tensorflow'"
damage "dense kernel transposed" "dense/kernel:0: shape \(256, 1568\), expected \(1568, 256\)" \
  "k = f['dense/dense/kernel:0'][()]; del f['dense/dense/kernel:0']; f['dense/dense/kernel:0'] = k.T.copy()"
damage "float64 bias" "conv2d/bias:0: dtype float64, expected float32" \
  "b = f['conv2d/conv2d/bias:0'][()]; del f['conv2d/conv2d/bias:0']; f['conv2d/conv2d/bias:0'] = b.astype(np.float64)"
damage "weight_names in the wrong order" "dense_1: weight_names is \['dense_1/bias:0', 'dense_1/kernel:0'\]" \
  "f['dense_1'].attrs['weight_names'] = np.array([b'dense_1/bias:0', b'dense_1/kernel:0'])"
damage "no weight_names" "dense: attribute weight_names is missing" "del f['dense'].attrs['weight_names']"
damage "a kernel missing" "dataset conv2d_1/conv2d_1/kernel:0 is missing" "del f['conv2d_1/conv2d_1/kernel:0']" --tensorflow
damage "a NaN" "dense/kernel:0: holds non-finite values" "f['dense/dense/kernel:0'][5, 7] = np.nan"
damage "an extra top-level group" "unexpected top-level objects: \['optimizer_weights'\]" "f.create_group('optimizer_weights')"
# Values only (the layout intact): caught by the comparison with the results file.
cp "$w4" "$tmp/bad.h5"
"$py" -c "import sys, h5py
with h5py.File(sys.argv[1], 'r+') as f:
    b = f['conv2d/conv2d/bias:0']; b[...] = b[()][::-1].copy()" "$tmp/bad.h5"
expect "damaged: values reversed (vs the results file)" 1 "conv2d_bias: differs from" "$tmp/bad.h5" \
  --expect-classes 4 --results "$tmp/r.h5" --phase pretext
expect "no such file" 1 "cannot read" "$tmp/r.h5.missing"
echo "not HDF5" > "$tmp/text.h5"
expect "not HDF5" 1 "cannot read" "$tmp/text.h5" --tensorflow

echo "e2e_keras_layout: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
