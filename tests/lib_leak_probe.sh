#!/usr/bin/env bash
# lib_leak_probe.sh: sourced by tests/e2e_lsan_scope.sh and tests/e2e_valgrind_scope.sh, which
# check the leak suppressions with tests/leak_probe.c (a small program that allocates through
# HDF5 and MPI as pretext does).
#   build_leak_probe OUT FLAGS...   builds the probe into OUT with mpicc ($PRETEXT_MPICC) and
#                                   FLAGS, against HDF5 found by pkg-config; exits 77 (skipped)
#                                   without mpicc or HDF5's pkg-config file, 1 if it does not build.
: "${src:?}"
build_leak_probe() {
  local out="$1"; shift
  local mpicc="${PRETEXT_MPICC:-mpicc}" hdf5_pc="" pc
  command -v "$mpicc" > /dev/null || { echo "SKIPPED: no $mpicc to build the probe"; exit 77; }
  for pc in hdf5-serial hdf5; do
    if pkg-config --exists "$pc" 2> /dev/null; then hdf5_pc="$pc"; break; fi
  done
  [ -n "$hdf5_pc" ] || { echo "SKIPPED: no pkg-config file for HDF5 (hdf5-serial, hdf5)"; exit 77; }
  # shellcheck disable=SC2046
  "$mpicc" -std=c11 -O0 -g -fno-omit-frame-pointer "$@" "$src/tests/leak_probe.c" -o "$out" \
    $(pkg-config --cflags --libs "$hdf5_pc") || { echo "FAIL: the probe does not build"; exit 1; }
}
