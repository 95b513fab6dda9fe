#!/usr/bin/env bash
# e2e_help_without_mpi.sh: --help and --version of every subcommand answer without starting MPI,
# as on a login node whose MPI cannot start outside a job. Checked with an MPI that cannot start
# on purpose: Open MPI given a nonexistent PML (first shown to make a real run fail). With another
# MPI the trick does not apply: skipped (77).
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
bin="${PRETEXT_BINARY:-$src/build/pretext}"
mpiexec="${PRETEXT_MPIEXEC:-mpiexec}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# (Open MPI 4's mpiexec calls itself "OpenRTE"; the output is read whole: grep -q on a pipe under
# pipefail can fail when the writer gets SIGPIPE.)
mpi_version="$("$mpiexec" --version 2>&1 || true)"
case "$mpi_version" in
  *"Open MPI"*|*OpenRTE*) ;;
  *) echo "SKIP: needs Open MPI (this mpiexec: ${mpi_version%%$'\n'*})"; exit 77 ;;
esac
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
failed=0
no_data=0
fail() { echo "FAIL $*"; failed=1; }
set +e
OMPI_MCA_pml=no_such_pml "$bin" run --out "$tmp/x.h5" > "$tmp/broken.log" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || { echo "FAIL: MPI given a nonexistent PML started anyway: the check would prove nothing"; exit 1; }
for cmd in run train bench status; do
  for opt in --help --version; do
    out=$(OMPI_MCA_pml=no_such_pml "$bin" "$cmd" "$opt" 2>&1) || { fail "pretext $cmd $opt exited $? with MPI broken"; continue; }
    case "$opt" in
      --help) grep -q "usage: .*pretext $cmd" <<< "$out" || fail "pretext $cmd --help printed no usage" ;;
      --version) grep -q "^kernels: " <<< "$out" || fail "pretext $cmd --version printed no kernel set" ;;
    esac
  done
done
out=$(OMPI_MCA_pml=no_such_pml "$bin" --version 2>&1) || fail "pretext --version exited $?"
# status reads a file without MPI: a complete one from a smoke run (MPI working), read with MPI broken
data="${PRETEXT_DATA_DIR:-$src/data/mnist}"
if [ -f "$data/train-images-idx3-ubyte" ] || [ -f "$data/train-images-idx3-ubyte.gz" ]; then
  # the first 500 training and 500 test images (evaluating MNIST's 10,000 test images would be
  # most of the run's time under the sanitizers)
  python3 "$src/tests/idx_tool.py" small "$data" "$tmp/data" 500 500 > /dev/null
  "$mpiexec" -n 1 "$bin" run --quiet --config "$src/configs/smoke.ini" --out "$tmp/done.h5" "data.dir=$tmp/data" \
    data.train_images=500 trials.supervised=1 trials.self_supervised=1 > "$tmp/run.log" 2>&1 \
    || { cat "$tmp/run.log"; fail "the smoke run for status failed"; }
  out=$(OMPI_MCA_pml=no_such_pml "$bin" status "$tmp/done.h5" 2>&1) || fail "pretext status exited $? with MPI broken: $out"
  grep -q ": complete: " <<< "$out" || fail "pretext status with MPI broken printed: $out"
else
  no_data=1
fi
if [ "$failed" -eq 0 ] && [ "$no_data" -eq 1 ]; then
  echo "SKIP: --help and --version passed, but status could not be checked: no MNIST in $data (scripts/fetch-data.sh)"
  exit 77
fi
[ "$failed" -eq 0 ] && echo "ok   --help and --version of run, train, bench, status, and status itself, work while MPI cannot start (a run exited $rc)"
exit "$failed"
