#!/usr/bin/env bash
# run-tests.sh: set-up (packages, build, MNIST), then every test with ctest: unit tests, golden
# tests against PyTorch's numbers, MPI tests on 1, 2 and 4 ranks, end-to-end runs (including the
# reliability tests: bad input, faults and signals, fuzzing, valgrind).
# Then the sanitizer build: build-asan (AddressSanitizer + UndefinedBehaviorSanitizer, no
# -march=native; every kernel set) runs the unit and MPI tests again, and the program end to end:
# a smoke run, runs stopped and resumed, every bad input and the read-only file system (so the
# error paths are sanitized too), the run guards, studies' file formats. The end-to-end tests
# that do not depend on the build's instrumentation (analysis, fetch, Slurm, two hosts, qemu,
# fuzzing, valgrind, the suppression-scope checks) are left out there: they already ran on the
# normal build. PRETEXT_SKIP_SANITIZE=1 skips it.
# Then the portability stages: build-mpich (MPICH instead of Open MPI: unit, MPI and end-to-end
# run tests; scripts/ci-stage-mpich.sh; PRETEXT_SKIP_MPICH=1 skips it) and build-blis (BLIS
# instead of OpenBLAS: the engine's unit tests and a smoke run; scripts/ci-stage-blas.sh;
# PRETEXT_SKIP_BLAS2=1 skips it), and build-aarch64 (the engine cross-compiled for 64-bit ARM, its
# unit and golden tests run under qemu-aarch64; scripts/ci-stage-aarch64.sh, which installs the
# cross compiler and arm64 libraries on Debian; PRETEXT_SKIP_AARCH64=1 skips it).
# Each stage prints what it runs and its time; a stage that cannot run here (exit 77) is reported
# as skipped, not passed; the script exits 1 if any stage failed.
# Arguments are passed to the first ctest (e.g. -R test_idx).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh --tests
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
status=0
summary=()
# stage NAME COMMAND...: runs one stage and reports its time; a failed stage fails the script.
stage() {
  local name="$1"; shift
  local t0=$SECONDS rc=0
  echo "run-tests: stage $name: $*"
  "$@" || rc=$?
  local line result=FAILED
  [ "$rc" -eq 0 ] && result=passed
  [ "$rc" -eq 77 ] && result=SKIPPED
  line="$(printf '%-10s %-7s %5d s' "$name" "$result" $((SECONDS - t0)))"
  echo "run-tests: stage $line"
  summary+=("$line")
  [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ] || status=1
}

stage main ctest --test-dir "${PRETEXT_BUILD_DIR:-build}" --output-on-failure -j2 "$@"

sanitizer_stage() {
  local asan_dir="$1"
  echo "run-tests: sanitizer build in $asan_dir (unit, MPI and end-to-end run tests)"
  cmake -S . -B "$asan_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPRETEXT_SANITIZE=ON > /dev/null || return 1
  cmake --build "$asan_dir" -j"$(nproc)" 2>&1 | grep -E "warning|error|Error" || true
  ctest --test-dir "$asan_dir" --output-on-failure -j2 \
    -E '^(e2e_(analyze|analyze_r|analyze_study|fetch_data|bench|faults|fuzz|slurm|valgrind|valgrind_scope|lsan_scope|keras_layout|keras_weights|mpi_fail_fast|run_ranks|portable_cpu|two_hosts|noroot_build)|layering|isa)$'
}
if [ "${PRETEXT_SKIP_SANITIZE:-0}" != 1 ]; then
  stage sanitizer sanitizer_stage "${PRETEXT_ASAN_BUILD_DIR:-build-asan}"
fi
if [ "${PRETEXT_SKIP_MPICH:-0}" != 1 ]; then
  stage mpich bash scripts/ci-stage-mpich.sh
fi
if [ "${PRETEXT_SKIP_BLAS2:-0}" != 1 ]; then
  stage blis bash scripts/ci-stage-blas.sh
fi
if [ "${PRETEXT_SKIP_AARCH64:-0}" != 1 ]; then
  stage aarch64 bash scripts/ci-stage-aarch64.sh
fi
echo "run-tests: stages"
printf '  %s\n' "${summary[@]}"
exit "$status"
