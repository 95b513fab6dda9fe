#!/usr/bin/env bash
# e2e_classes.sh: any 28x28 IDX data set with up to 62 classes runs (KMNIST and Fashion-MNIST 10,
# EMNIST balanced 47, EMNIST byclass 62), the class count taken from the labels: synthetic data
# sets with 47 and 62 classes (only MNIST and Fashion-MNIST can be fetched here) go through a small
# run; the results record the class count, the benchmark's last layer and the trials' have that
# many outputs, the Keras weights file too. Labels of 62 and above are refused, naming the file.
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
bin="${PRETEXT_BINARY:-$src/build/pretext}"
mpiexec="${PRETEXT_MPIEXEC:-mpiexec}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
py=/usr/bin/python3
[ -x "$py" ] && "$py" -c "import h5py" 2> /dev/null || py=python3
"$py" -c "import h5py" 2> /dev/null || { echo "SKIP: no Python with h5py"; exit 77; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
# make DIR CLASSES [BAD_LABEL]: MNIST's first images with labels spread over CLASSES classes
make() {
  "$py" - "$src/data/mnist" "$1" "$2" "${3:-}" <<'PY'
import os, struct, sys
src, dst, classes, bad = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
os.makedirs(dst)
for split, n in (("train", 1200), ("t10k", 300)):
    with open(f"{src}/{split}-images-idx3-ubyte", "rb") as f:
        f.read(16); pixels = f.read(n * 784)
    with open(f"{dst}/{split}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, 28, 28)); f.write(pixels)
    labels = bytearray((i * 7) % classes for i in range(n))  # every class occurs
    if bad and split == "t10k": labels[5] = int(bad)
    with open(f"{dst}/{split}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 2049, n)); f.write(bytes(labels))
PY
}
failed=0
for classes in 47 62; do
  make "$tmp/d$classes" "$classes"
  if ! "$mpiexec" -n 2 "$bin" run --out "$tmp/r$classes.h5" "data.dir=$tmp/d$classes" benchmark.epochs=1 pretext.epochs=1 \
       trials.supervised=1 trials.self_supervised=1 trials.labels=100 trials.epochs=1 downstream.frozen_epochs=1 \
       downstream.finetune_epochs=1 > "$tmp/log$classes" 2>&1; then
    echo "FAIL $classes classes: the run failed"; tail -5 "$tmp/log$classes"; failed=1; continue
  fi
  grep -q "supervised ($classes classes)" "$tmp/log$classes" || { echo "FAIL $classes classes: the log does not say so"; failed=1; }
  "$py" - "$tmp/r$classes.h5" "$tmp/r$classes.benchmark.weights.h5" "$classes" <<'PY' || failed=1
import sys, h5py
r, k, c = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"), int(sys.argv[3])
assert r["provenance"].attrs["data_classes"] == c, r["provenance"].attrs["data_classes"]
assert r["benchmark"].attrs["n_classes"] == c
assert r["benchmark/weights/dense_1_kernel"].shape == (256, c)
assert r["pretext/weights/dense_1_kernel"].shape == (256, 4)
assert k["dense_1/dense_1/kernel:0"].shape == (256, c)
assert r["trials/supervised/done"][:].all() and r["trials/self_supervised/done"][:].all()
print(f"ok   {c} classes: benchmark accuracy {r['benchmark/test_accuracy'][()]:.3f}, results and Keras file with {c} outputs")
PY
done
make "$tmp/bad" 10 62
set +e
"$mpiexec" -n 2 "$bin" run --out "$tmp/bad.h5" "data.dir=$tmp/bad" > "$tmp/logbad" 2>&1
rc=$?
set -e
if [ "$rc" -eq 1 ] && grep -q "t10k-labels-idx1-ubyte.*has value 62, outside \[0, 62)" "$tmp/logbad"; then
  echo "ok   a label of 62 refused: $(grep -m1 "value 62" "$tmp/logbad" | cut -c1-140)"
else
  echo "FAIL a label of 62 should be refused naming the file (exit $rc)"; tail -3 "$tmp/logbad"; failed=1
fi
exit "$failed"
