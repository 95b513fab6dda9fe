#!/usr/bin/env bash
# ci-stage-aarch64.sh [CTEST_ARGS...]: the engine on 64-bit ARM. Cross-compiles the engine's
# libraries (base, nn, data: -DPRETEXT_ENGINE_ONLY=ON, no MPI, HDF5 or program) and their unit
# tests for aarch64 with Debian's cross compiler, in build-aarch64/, and runs them under
# qemu-aarch64: the generic kernel set, the only one an ARM build has, against the PyTorch golden
# files, finite differences and the batch-split identities, with NEON vectorisation and the ARM
# flush-to-zero mode (FPCR.FZ). About 3 minutes, most of it test_model_grad under emulation.
#
# Needs: gcc-aarch64-linux-gnu, qemu-user, and the arm64 builds of OpenBLAS, CMocka and zlib
# (libopenblas-dev:arm64 libcmocka-dev:arm64 zlib1g-dev:arm64). On Debian, as root or with sudo,
# it installs what is missing, adding arm64 to dpkg's architectures first; if the package
# mirror has no arm64 packages, it removes the architecture again. Where it cannot install them,
# it says what is missing and exits 77 (skipped: run-tests.sh reports the stage as skipped, never
# as passed). Run by scripts/run-tests.sh (PRETEXT_SKIP_AARCH64=1 skips it); alone: bash
# scripts/ci-stage-aarch64.sh. Environment: PRETEXT_AARCH64_BUILD_DIR (build-aarch64).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dir="${PRETEXT_AARCH64_BUILD_DIR:-build-aarch64}"
triplet=aarch64-linux-gnu

missing_parts() {
  local m=()
  command -v "$triplet-gcc" > /dev/null 2>&1 || m+=(gcc-aarch64-linux-gnu)
  command -v qemu-aarch64 > /dev/null 2>&1 || m+=(qemu-user)
  [ -e "/usr/lib/$triplet/libopenblas.so" ] || m+=(libopenblas-dev:arm64)
  [ -e "/usr/lib/$triplet/libcmocka.so" ] || m+=(libcmocka-dev:arm64)
  [ -e "/usr/lib/$triplet/libz.so" ] || m+=(zlib1g-dev:arm64)
  echo "${m[*]}"
}

missing="$(missing_parts)"
if [ -n "$missing" ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  if ! command -v apt-get > /dev/null 2>&1 || ! command -v dpkg > /dev/null 2>&1 ||
     { [ -n "$sudo_cmd" ] && ! sudo -n true 2> /dev/null; }; then
    echo "SKIP: ci-stage-aarch64: missing $missing, and apt-get cannot install them here (not Debian, or no root)"
    exit 77
  fi
  added_arch=0
  if ! grep -qx arm64 <<< "$(dpkg --print-foreign-architectures)"; then
    echo "ci-stage-aarch64: adding arm64 to dpkg's architectures (for the arm64 libraries)"
    $sudo_cmd dpkg --add-architecture arm64
    added_arch=1
  fi
  echo "ci-stage-aarch64: installing $missing"
  if ! $sudo_cmd apt-get update -qq || ! DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq $missing > /dev/null; then
    if [ "$added_arch" -eq 1 ]; then
      $sudo_cmd dpkg --remove-architecture arm64 || true
      $sudo_cmd apt-get update -qq || true
    fi
    echo "SKIP: ci-stage-aarch64: could not install $missing (does the package mirror carry arm64?)"
    exit 77
  fi
  missing="$(missing_parts)"
  [ -z "$missing" ] || { echo "ci-stage-aarch64: still missing after installing: $missing" >&2; exit 1; }
fi

# test_idx reads the real MNIST files (a no-op when scripts/setup.sh already fetched them).
bash scripts/fetch-data.sh > /dev/null

mkdir -p "$dir"
echo "ci-stage-aarch64: cmake -S . -B $dir -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64-linux-gnu.cmake -DPRETEXT_ENGINE_ONLY=ON; ctest (under qemu-aarch64)"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_TOOLCHAIN_FILE="$root/cmake/toolchain-aarch64-linux-gnu.cmake" \
  -DPRETEXT_ENGINE_ONLY=ON > "$dir/pretext-configure.log" 2>&1 \
  || { cat "$dir/pretext-configure.log"; echo "ci-stage-aarch64: configure failed" >&2; exit 1; }
grep "pretext:" "$dir/pretext-configure.log" | sed 's/^/  /'
cmake --build "$dir" -j"$(nproc)" > "$dir/pretext-build.log" 2>&1 \
  || { grep -E "error|Error" "$dir/pretext-build.log" | head -20; echo "ci-stage-aarch64: build failed" >&2; exit 1; }
# Warnings are errors here: an ARM build must be as clean as the x86-64 one.
if grep -E "warning" "$dir/pretext-build.log"; then
  echo "ci-stage-aarch64: the aarch64 build has warnings" >&2
  exit 1
fi
# The tests must be ARM programs, run through the emulator (not x86-64 ones by mistake).
file_kind="$(od -An -tx1 -j18 -N2 "$dir/tests/test_golden" | tr -d ' \n')"
[ "$file_kind" = "b700" ] || { echo "ci-stage-aarch64: $dir/tests/test_golden is not an aarch64 program (e_machine $file_kind)" >&2; exit 1; }
# (The listing is read whole: grep -q on a pipe under pipefail fails when ctest gets SIGPIPE.)
listing="$(ctest --test-dir "$dir" -N -V)"
grep -q "Test command: .*qemu-aarch64" <<< "$listing" \
  || { echo "ci-stage-aarch64: ctest does not run the tests under qemu-aarch64" >&2; exit 1; }
ctest --test-dir "$dir" --output-on-failure -j2 "$@"
