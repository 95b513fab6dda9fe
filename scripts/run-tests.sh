#!/usr/bin/env bash
# run-tests.sh: set-up (packages, build, MNIST), then every test with ctest: unit tests, golden
# tests against PyTorch's numbers, MPI tests on 1, 2 and 4 ranks, end-to-end runs (including the
# reliability tests: bad input, faults and signals, fuzzing, valgrind).
# Then the sanitizer build: build-asan (AddressSanitizer + UndefinedBehaviorSanitizer, no
# -march=native) runs the unit and MPI tests again, and the whole program end to end (a smoke
# run, and a run stopped and resumed); the other end-to-end tests are left out there: they would
# double the time and already run on the normal build. PRETEXT_SKIP_SANITIZE=1 skips it.
# Arguments are passed to the first ctest (e.g. -R test_idx).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh --tests
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
status=0
ctest --test-dir "${PRETEXT_BUILD_DIR:-build}" --output-on-failure -j2 "$@" || status=1

if [ "${PRETEXT_SKIP_SANITIZE:-0}" != 1 ]; then
  asan_dir="${PRETEXT_ASAN_BUILD_DIR:-build-asan}"
  echo "run-tests: sanitizer build in $asan_dir (unit, MPI and end-to-end run tests)"
  cmake -S . -B "$asan_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPRETEXT_SANITIZE=ON > /dev/null
  cmake --build "$asan_dir" -j"$(nproc)" 2>&1 | grep -E "warning|error|Error" || true
  ctest --test-dir "$asan_dir" --output-on-failure -j2 \
    -E '^(e2e_(analyze|analyze_r|analyze_study|fetch_data|bad_input|bench|faults|fuzz|slurm|valgrind|run_ranks|portable_cpu|two_hosts)|layering|isa)$' || status=1
fi
exit "$status"
