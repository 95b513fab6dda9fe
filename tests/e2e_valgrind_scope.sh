#!/usr/bin/env bash
# e2e_valgrind_scope.sh: tests/valgrind.supp hides only Open MPI's own memory and syscalls, never a
# leak the program causes inside a library: tests/leak_probe.c (mpicc, HDF5 from pkg-config) under
# valgrind memcheck with tests/e2e_valgrind.sh's options and tests/valgrind.supp must report no
# error when it frees everything, and each of its three leaks (an HDF5 variable-length string
# never freed, memory lost in an HDF5 callback and in an MPI user reduction) with PROBE_LEAK=1.
# Like tests/e2e_valgrind.sh it fails when valgrind is missing (scripts/setup.sh --tests installs
# it); skipped (77) when no mpicc or no HDF5 pkg-config file is found to build the probe.
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
source "$src/tests/lib_leak_probe.sh"
command -v valgrind > /dev/null || { echo "FAIL: valgrind is not installed (scripts/setup.sh --tests installs it)"; exit 1; }
build_leak_probe "$tmp/probe"

passed=0; failed=0
vg() { # LOG ARGS...: the probe under memcheck as tests/e2e_valgrind.sh runs pretext
  local log="$1"; shift
  valgrind --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --num-callers=40 --suppressions="$src/tests/valgrind.supp" \
    --log-file="$log" "$tmp/probe" "$tmp" "$@" > "$tmp/out" 2>&1
}
rc=0; vg "$tmp/free.log" || rc=$?
summary=$(grep -h "ERROR SUMMARY" "$tmp/free.log" | sed 's/^==[0-9]*== //')
if [ "$rc" -eq 0 ] && echo "$summary" | grep -q "ERROR SUMMARY: 0 errors"; then
  passed=$((passed + 1)); echo "ok   freeing everything: $summary"
else
  failed=$((failed + 1)); echo "FAIL freeing everything: status $rc, $summary"
  sed 's/^==[0-9]*== //' "$tmp/free.log" | grep -A12 "lost in loss record\|^Invalid\|^Syscall" | head -40
fi
rc=0; PROBE_LEAK=1 vg "$tmp/leak.log" || rc=$?
summary=$(grep -h "ERROR SUMMARY" "$tmp/leak.log" | sed 's/^==[0-9]*== //')
if [ "$rc" -eq 99 ]; then passed=$((passed + 1)); echo "ok   leaking: status 99: $summary"
else failed=$((failed + 1)); echo "FAIL leaking: status $rc (expected 99): $summary"; fi
for fn in probe_leak_hdf5_vlen probe_hdf5_walk_cb probe_mpi_op; do
  if grep -A20 "definitely lost in loss record" "$tmp/leak.log" | grep -q "by 0x[0-9A-F]*: $fn "; then
    passed=$((passed + 1)); echo "ok   leak in $fn reported"
  else
    failed=$((failed + 1)); echo "FAIL leak in $fn not reported (suppressed by tests/valgrind.supp?)"
  fi
done
echo "e2e_valgrind_scope: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
