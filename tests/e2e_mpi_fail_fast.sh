#!/usr/bin/env bash
# e2e_mpi_fail_fast.sh: a failed CMocka test on one rank of tests/mpi_dataparallel ends every rank
# at once (its teardown calls MPI_Abort) instead of leaving the others waiting in a collective
# until ctest's timeout (300 s). PRETEXT_TEST_FAIL_RANK=r makes rank r fail on purpose after the
# first data-parallel fit, where the other ranks go on into collectives; for r = 0 and 1, mpiexec
# -n 2 must end within max_seconds, with a non-zero status, the injected failure and the abort
# reported.
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
bin="${PRETEXT_BINARY:-$src/build/pretext}"
test_bin="${PRETEXT_MPI_TEST_BINARY:-$(dirname "$bin")/tests/mpi_dataparallel}"
mpiexec="${PRETEXT_MPIEXEC:-mpiexec}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1
[ -x "$test_bin" ] || { echo "FAIL: $test_bin not built (set PRETEXT_MPI_TEST_BINARY)"; exit 1; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
max_seconds=30
passed=0; failed=0
for rank in 0 1; do
  t0=$(date +%s.%N)
  set +e
  PRETEXT_TEST_FAIL_RANK=$rank timeout 120 "$mpiexec" -n 2 "$test_bin" > "$tmp/log" 2>&1
  rc=$?
  set -e
  secs=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))")
  problems=""
  [ "$rc" -ne 0 ] || problems+=" mpiexec exited 0;"
  [ "$rc" -ne 124 ] || problems+=" timed out (the other rank hangs);"
  python3 -c "import sys; sys.exit(0 if $secs <= $max_seconds else 1)" || problems+=" took ${secs}s (> ${max_seconds}s);"
  grep -q "rank $rank: injected failure" "$tmp/log" || problems+=" the injected failure was not reported;"
  grep -q "rank $rank: a test failed; aborting all 2 ranks" "$tmp/log" || problems+=" no abort reported;"
  if [ -z "$problems" ]; then
    passed=$((passed + 1)); echo "ok   failure on rank $rank: mpiexec ended in ${secs}s with status $rc"
  else
    failed=$((failed + 1)); echo "FAIL failure on rank $rank:$problems"; sed 's/^/     | /' "$tmp/log" | head -30
  fi
done
echo "e2e_mpi_fail_fast: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
