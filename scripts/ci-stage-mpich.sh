#!/usr/bin/env bash
# ci-stage-mpich.sh [CTEST_ARGS...]: pretext built against MPICH instead of Open MPI (Debian:
# libmpich-dev, mpich; scripts/setup.sh --tests installs them) in build-mpich/, then its unit
# tests, MPI tests (1, 2 and 4 ranks, launched by mpiexec.mpich, no Open MPI flag) and the
# end-to-end run tests (smoke, resume, ranks 1-8, checkpoint; MPI abort on a failed rank), every
# bad input (e2e_bad_input) and the faults (e2e_faults: kill -9 at 10 moments instead of 24,
# signals to mpiexec and to each rank, full disk, divergence) and the job scripts' check of a
# launcher's 0 against the file (e2e_job_status).
# Checks first that the program links MPICH's library and not Open MPI's. Run by
# scripts/run-tests.sh; alone: bash scripts/ci-stage-mpich.sh (after scripts/setup.sh --tests).
# Environment: PRETEXT_MPICH_BUILD_DIR (build-mpich), PRETEXT_MPICH_CC (/usr/bin/mpicc.mpich),
# PRETEXT_MPICH_MPIEXEC (/usr/bin/mpiexec.mpich).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dir="${PRETEXT_MPICH_BUILD_DIR:-build-mpich}"
mpicc="${PRETEXT_MPICH_CC:-/usr/bin/mpicc.mpich}"
mpiexec="${PRETEXT_MPICH_MPIEXEC:-/usr/bin/mpiexec.mpich}"
for tool in "$mpicc" "$mpiexec"; do
  [ -x "$tool" ] || { echo "ci-stage-mpich: $tool not found (Debian: apt-get install libmpich-dev mpich; scripts/setup.sh --tests)" >&2; exit 1; }
done
tests='^(test_.*|mpi_.*|e2e_run_.*|e2e_mpi_fail_fast|e2e_bad_input|e2e_faults|e2e_job_status)$'
# e2e_faults: 10 kills, at least 3 landing in a running job (the Open MPI build runs 24, at least
# 20 landing). Hydra forwards the ranks' output in bursts, so a kill aimed at a progress line often
# comes after the run (or the target rank's share) has ended: 5 to 7 of 10 landed in four runs.
export FAULT_KILLS="${FAULT_KILLS:-10}" FAULT_MIN_LANDED="${FAULT_MIN_LANDED:-3}"
mkdir -p "$dir"
echo "ci-stage-mpich: cmake -S . -B $dir -DMPI_C_COMPILER=$mpicc -DMPIEXEC_EXECUTABLE=$mpiexec; ctest -R '$tests'"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DMPI_C_COMPILER="$mpicc" -DMPIEXEC_EXECUTABLE="$mpiexec" \
  > "$dir/pretext-configure.log" 2>&1 || { cat "$dir/pretext-configure.log"; echo "ci-stage-mpich: configure failed" >&2; exit 1; }
grep "pretext:" "$dir/pretext-configure.log" | sed 's/^/  /'
cmake --build "$dir" -j"$(nproc)" > "$dir/pretext-build.log" 2>&1 || { grep -E "error|Error" "$dir/pretext-build.log" | head -20; echo "ci-stage-mpich: build failed" >&2; exit 1; }
grep -E "warning" "$dir/pretext-build.log" || true
# The program must load MPICH's library only: both MPIs are installed, and their headers and
# libraries (or a parallel HDF5 built with the other one) must not be mixed.
libs="$(ldd "$dir/pretext")"
grep -E "libmpich|libmpi\.so|libhdf5" <<< "$libs" | sed 's/^\s*/  ldd: /'
grep -q "libmpich" <<< "$libs" || { echo "ci-stage-mpich: $dir/pretext does not link libmpich" >&2; exit 1; }
if grep -qE "libmpi\.so|libopen-rte|libopen-pal" <<< "$libs"; then
  echo "ci-stage-mpich: $dir/pretext also loads Open MPI's libraries" >&2; exit 1
fi
ctest --test-dir "$dir" --output-on-failure -j2 -R "$tests" "$@"
