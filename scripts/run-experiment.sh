#!/usr/bin/env bash
# run-experiment.sh: set-up (packages, build, MNIST), then the seed's whole experiment over one MPI
# rank per core: `pretext run --config configs/session5.ini`. Extra arguments are passed to
# `pretext run` (for example --config configs/smoke.ini, --out results/x.h5, trials.labels=100).
# PRETEXT_RANKS sets the rank count (default: one per core), PRETEXT_MPIEXEC the launcher (mpirun).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
ranks="${PRETEXT_RANKS:-$(nproc)}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
# Launcher flags only where the launcher knows them: Open MPI needs --allow-run-as-root as root
# and --oversubscribe for more ranks than cores; MPICH's Hydra rejects both and needs neither.
launcher="${PRETEXT_MPIEXEC:-mpirun}"
flags=(-np "$ranks")
case "$("$launcher" --version 2>&1 || true)" in
  *"Open MPI"* | *OpenRTE*)
    [ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
    flags+=(--oversubscribe --bind-to core) ;;
  *HYDRA* | *MPICH*) flags+=(-bind-to core) ;;
esac
args=("$@")
[ "${#args[@]}" -gt 0 ] || args=(--config configs/session5.ini --out results/session5.h5)
exec "$launcher" "${flags[@]}" build/pretext run "${args[@]}"
