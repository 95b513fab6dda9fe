#!/usr/bin/env bash
# setup.sh: installs the Debian packages pretext needs (only those missing), builds it into
# build/ (Release, asserts on) and fetches MNIST into data/mnist. Safe to run again: each step is
# skipped when already done. Used by run-experiment.sh, run-tests.sh and CI.
# `setup.sh --tests` also installs what the tests need (Slurm, sanitizers, fuzzers, R, MPICH, BLIS).
# On a system without dpkg-query/apt-get (RHEL, SUSE, a cluster with modules) it installs nothing,
# says so, and builds with the dependencies the environment provides (docs/install.md).
set -euo pipefail
with_tests=0
[ "${1:-}" = "--tests" ] && with_tests=1
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

packages=(build-essential cmake pkg-config git libopenmpi-dev openmpi-bin libhdf5-openmpi-dev
          libopenblas-dev libcmocka-dev zlib1g-dev python3-h5py python3-numpy python3-scipy
          python3-matplotlib dataset-fashion-mnist hdf5-tools)
# The serial HDF5 (with its h5cc): CMake's FindHDF5 then picks it before any parallel HDF5 (the
# h5pcc alternative may point at another MPI's), so every build, Open MPI or MPICH, links the same.
packages+=(libhdf5-dev)
# Needed by the tests only: a private Slurm cluster, clang's sanitizer and fuzzer runtimes,
# valgrind, R with hdf5r and ggplot2 for scripts/analyze.R, qemu-user to run the program as on
# older CPUs.
test_packages=(slurm-wlm munge clang libclang-rt-14-dev valgrind r-base-core r-cran-hdf5r r-cran-ggplot2
               qemu-user)
# ... and the portability stages of run-tests.sh: MPICH beside Open MPI (Open MPI stays the
# default mpicc/mpiexec), BLIS beside OpenBLAS (OpenBLAS stays the default libblas).
test_packages+=(libmpich-dev mpich libblis-dev)
[ "$with_tests" -eq 1 ] && packages+=("${test_packages[@]}")
if ! command -v dpkg-query > /dev/null 2>&1 || ! command -v apt-get > /dev/null 2>&1; then
  # Not Debian or Ubuntu: the packages cannot be checked or installed here. Build with what the
  # environment provides (modules, Spack, conda: docs/install.md) and fetch the data.
  echo "setup: not a Debian-family system (no dpkg-query/apt-get): installing nothing; load the" \
       "dependencies as docs/install.md shows (CMake, an MPI, HDF5, a CBLAS, zlib)" >&2
  packages=()
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ "${#packages[@]}" -eq 0 ] || command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

build_dir="${PRETEXT_BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release ${PRETEXT_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j"$(nproc)" 2>&1 | grep -E "warning|error|Error" || true
test -x "$build_dir/pretext" || { echo "setup: build failed" >&2; exit 1; }

bash scripts/fetch-data.sh
