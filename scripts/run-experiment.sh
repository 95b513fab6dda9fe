#!/usr/bin/env bash
# run-experiment.sh: set-up (packages, build, MNIST), then the seed's whole experiment over one MPI
# rank per core: `pretext run --config configs/session5.ini`. Extra arguments are passed to
# `pretext run` (for example --config configs/smoke.ini, --out results/x.h5, trials.labels=100).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
ranks="${PRETEXT_RANKS:-$(nproc)}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
mpi_root=()
[ "$(id -u)" -eq 0 ] && mpi_root=(--allow-run-as-root)
args=("$@")
[ "${#args[@]}" -gt 0 ] || args=(--config configs/session5.ini --out results/session5.h5)
exec mpirun "${mpi_root[@]}" --oversubscribe -np "$ranks" --bind-to core build/pretext run "${args[@]}"
