#!/usr/bin/env bash
# e2e_lsan_scope.sh: tests/lsan.supp hides only Open MPI's own memory, never a leak the program
# causes inside a library. Builds tests/leak_probe.c with AddressSanitizer (mpicc, HDF5 from
# pkg-config) and runs it with the sanitizer build's options and tests/lsan.supp: freeing
# everything it must end with status 0 and no leak report (the suppressions cover the libraries'
# own memory); with PROBE_LEAK=1 LeakSanitizer must report each of its three leaks (an HDF5
# variable-length string never freed, memory lost in an HDF5 callback and in an MPI user
# reduction), which a library-wide pattern such as `leak:libhdf5` or `leak:libmpi.so` would hide.
# Skipped (77) when no AddressSanitizer-capable mpicc or no HDF5 pkg-config file is found.
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
supp="$src/tests/lsan.supp"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
mpicc="${PRETEXT_MPICC:-mpicc}"
source "$src/tests/lib_leak_probe.sh"

command -v "$mpicc" > /dev/null || { echo "SKIPPED: no $mpicc to build the probe"; exit 77; }
echo 'int main(void) { return 0; }' > "$tmp/asan.c"
if ! "$mpicc" -fsanitize=address "$tmp/asan.c" -o "$tmp/asan" > "$tmp/asan.log" 2>&1; then
  echo "SKIPPED: $mpicc cannot build with -fsanitize=address: $(head -1 "$tmp/asan.log")"; exit 77
fi
build_leak_probe "$tmp/probe" -fsanitize=address

# The sanitizer build's options (tests/CMakeLists.txt), with this checkout's suppressions.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:fast_unwind_on_malloc=0
export LSAN_OPTIONS="suppressions=$supp:print_suppressions=0"
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; sed 's/^/     | /' "$tmp/log" | head -40; }

rc=0; "$tmp/probe" "$tmp" > "$tmp/log" 2>&1 || rc=$?
if [ "$rc" -eq 0 ] && ! grep -q "LeakSanitizer" "$tmp/log"; then
  ok "freeing everything: status 0, no leak reported (Open MPI's and HDF5's own memory suppressed)"
else
  bad "freeing everything: status $rc; the suppressions miss some of the libraries' own memory:"
fi

rc=0; PROBE_LEAK=1 "$tmp/probe" "$tmp" > "$tmp/log" 2>&1 || rc=$?
grep -q "leaking" "$tmp/log" || bad "leaking: the probe did not run its leaks"
[ "$rc" -ne 0 ] && ok "leaking: status $rc" || bad "leaking: status 0 (LeakSanitizer reported nothing)"
for fn in probe_leak_hdf5_vlen probe_hdf5_walk_cb probe_mpi_op; do
  if grep -q "in $fn " "$tmp/log"; then ok "leak in $fn reported: $(grep -m1 -B1 "in $fn " "$tmp/log" | head -1 | sed 's/^ *//' | cut -c1-90)"
  else bad "leak in $fn not reported (suppressed by tests/lsan.supp?)"; fi
done
echo "e2e_lsan_scope: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
