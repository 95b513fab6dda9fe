#!/usr/bin/env bash
# e2e_results_v1.sh: files of results format 1 (pretext 0.1: one seed, one budget, phases at the
# root, no segments) still work. A format-2 file of a finished small run is turned into exactly
# the format-1 layout of docs/results-format.md (phases moved to /benchmark and /pretext, the
# trial tables without experiment_seed and labels, the 0.1 configuration keys only, provenance
# without segments). Then: scripts/analyze.py reads it; `pretext run` with the same command
# resumes it without recomputing anything, and its first save turns it into format 2 with the old
# run as a segment of status "unknown"; the numbers are unchanged.
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
bin="${PRETEXT_BINARY:-$src/build/pretext}"
mpiexec="${PRETEXT_MPIEXEC:-mpiexec}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
py=/usr/bin/python3
[ -x "$py" ] && "$py" -c "import h5py, matplotlib, scipy" 2> /dev/null || py=python3
"$py" -c "import h5py, matplotlib, scipy" 2> /dev/null || { echo "SKIP: no Python with h5py, matplotlib and scipy"; exit 77; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
"$py" "$src/tests/idx_tool.py" small "$src/data/mnist" "$tmp/data" 1000 200 > /dev/null
args=("data.dir=$tmp/data" benchmark.epochs=1 pretext.epochs=1 trials.supervised=3 trials.self_supervised=3
      trials.labels=30 trials.epochs=1 downstream.frozen_epochs=1 downstream.finetune_epochs=1)
"$mpiexec" -n 2 "$bin" run --quiet --out "$tmp/v2.h5" "${args[@]}" > "$tmp/first.log" 2>&1 || { tail "$tmp/first.log"; exit 1; }
"$py" - "$tmp/v2.h5" "$tmp/v1.h5" <<'EOF2'
import sys, h5py, numpy as np
src, dst = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "w")
for k in ("format", "complete"):
    dst.attrs[k] = src.attrs[k]
dst.attrs["format_version"] = np.int32(1)
seed = list(src["phases"])[0]
for p in ("benchmark", "pretext"):
    src.copy(f"phases/{seed}/{p}", dst, name=p)
keys_v1 = ["data.dir", "data.train_images", "experiment.seed", "experiment.learning_rate",
           "experiment.validation_split", "benchmark.enabled", "benchmark.epochs", "benchmark.batch_size",
           "pretext.epochs", "pretext.batch_size", "trials.supervised", "trials.self_supervised", "trials.labels",
           "trials.epochs", "trials.batch_size", "downstream.frozen_epochs", "downstream.finetune_epochs",
           "downstream.transfer", "run.threads", "run.gradient_sum"]
c = dst.create_group("config")
for k in keys_v1:
    c.attrs[k] = src["config"].attrs[k]
c.attrs["ini"] = src["config"].attrs["ini"]
pv = dst.create_group("provenance")
for k in ("version", "git_commit", "build_flags", "blas", "mpi_library", "hosts", "start_time", "end_time",
          "mpi_size") + tuple(a for a in src["provenance"].attrs if a.startswith("data_")):
    if k != "data_classes":
        pv.attrs[k] = src["provenance"].attrs[k]
t = dst.create_group("trials")
for kind in ("supervised", "self_supervised"):
    src.copy(f"trials/{kind}", t, name=kind)
    del t[kind]["experiment_seed"], t[kind]["labels"]
EOF2
cp "$tmp/v1.h5" "$tmp/v1-before.h5"
failed=0
# analysis of a format-1 file
"$py" "$src/scripts/analyze.py" "$tmp/v1.h5" --out "$tmp/an" > "$tmp/an.log" 2>&1 || { echo "FAIL analyze.py on format 1"; tail "$tmp/an.log"; failed=1; }
[ -s "$tmp/an/summary.csv" ] && [ -s "$tmp/an/comparison.png" ] || { echo "FAIL analyze.py wrote no summary or figure"; failed=1; }
# resume of a format-1 file
"$mpiexec" -n 2 "$bin" run --out "$tmp/v1.h5" "${args[@]}" > "$tmp/resume.log" 2>&1 || { echo "FAIL resume of format 1 exited $?"; tail "$tmp/resume.log"; failed=1; }
grep -q "resuming from" "$tmp/resume.log" || { echo "FAIL: not resumed"; failed=1; }
grep -q "already done" "$tmp/resume.log" || { echo "FAIL: the phases were not read back"; failed=1; }
grep -q "^trial " "$tmp/resume.log" && { echo "FAIL: a trial was recomputed"; failed=1; }
"$py" - "$tmp/v1-before.h5" "$tmp/v1.h5" <<'EOF2' || failed=1
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert b.attrs["format_version"] == 2
st = [x.decode() for x in b["provenance/segments/status"][:]]
assert st == ["unknown", "complete"], st
for p in ("benchmark", "pretext"):
    for w in a[f"{p}/weights"]:
        assert np.array_equal(a[f"{p}/weights/{w}"][:], b[f"phases/42/{p}/weights/{w}"][:]), (p, w)
for kind in ("supervised", "self_supervised"):
    for col in ("test_accuracy", "sample_indices", "seed", "history/loss"):
        assert np.array_equal(a[f"trials/{kind}/{col}"][:], b[f"trials/{kind}/{col}"][:], equal_nan=True), (kind, col)
    assert (b[f"trials/{kind}/experiment_seed"][:] == 42).all() and (b[f"trials/{kind}/labels"][:] == 30).all()
print("ok   format 1: analysed, resumed without recomputing, upgraded to format 2 with the same numbers")
EOF2
exit "$failed"
