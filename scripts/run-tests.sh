#!/usr/bin/env bash
# run-tests.sh: set-up (packages, build, MNIST), then every test with ctest: unit tests, golden
# tests against PyTorch's numbers, MPI tests on 1, 2 and 4 ranks, end-to-end runs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh --tests
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ctest --test-dir "${PRETEXT_BUILD_DIR:-build}" --output-on-failure -j2 "$@"
