#!/usr/bin/env bash
# e2e_valgrind.sh: a valgrind memcheck run of a small experiment (2 ranks, every phase and both
# kinds of trial, so the master/worker messages and the results file are exercised): no invalid
# read or write, no use of uninitialised memory, no definite or indirect leak in pretext's code.
# Suppressions (tests/valgrind.supp) cover only Open MPI's own, each explained there.
# valgrind cannot run AVX-512 code: its CPUID shows no AVX-512, so the program picks the avx2 set
# (or generic) by itself; the program is built with debug information in a folder of its own
# beside the ctest build folder, if needed. run.phase_groups=1: both phases data-parallel over the
# 2 ranks, so the gradient sum through shared memory runs under memcheck too (auto would give each
# phase a rank of its own, after timing training steps of 64 images, minutes under valgrind).
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
build="${PRETEXT_VALGRIND_BUILD_DIR:-$PWD/valgrind-build}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
command -v valgrind > /dev/null || { echo "FAIL: valgrind is not installed (scripts/setup.sh --tests installs it)"; exit 1; }
if [ ! -x "$build/pretext" ] || [ -n "$(find "$src/src" "$src/include" -newer "$build/pretext" -name '*.[ch]' | head -1)" ]; then
  echo "building pretext for valgrind in $build"
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPRETEXT_TESTS=OFF > /dev/null
  cmake --build "$build" -j"$(nproc)" --target pretext 2>&1 | grep -E "warning|error" || true
fi
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
python3 "$src/tests/idx_tool.py" small "$src/data/mnist" "$tmp/data" 100 50
t0=$SECONDS
set +e
timeout 900 mpiexec -n 2 valgrind --error-exitcode=99 --leak-check=full \
  --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --num-callers=40 \
  --suppressions="$src/tests/valgrind.supp" --log-file="$tmp/valgrind.%q{OMPI_COMM_WORLD_RANK}.log" \
  "$build/pretext" run --quiet --out "$tmp/r.h5" "data.dir=$tmp/data" benchmark.epochs=1 pretext.epochs=1 \
  trials.supervised=1 trials.self_supervised=1 trials.labels=20 trials.epochs=1 downstream.frozen_epochs=1 \
  downstream.finetune_epochs=1 run.phase_groups=1 < /dev/null > "$tmp/log" 2>&1
rc=$?
set -e
failed=0
for r in 0 1; do
  log="$tmp/valgrind.$r.log"
  summary=$(grep -h "ERROR SUMMARY" "$log" || echo "no summary")
  echo "rank $r: $summary; $(grep -h "definitely lost:" "$log" | sed 's/^==[0-9]*== *//')"
  if ! echo "$summary" | grep -q "ERROR SUMMARY: 0 errors"; then
    failed=1
    sed 's/^==[0-9]*== //' "$log" | awk '/^(Invalid|Conditional|Use of|Syscall|Mismatched|[0-9,]+ bytes in)/{p=1} p{print} /^$/{p=0}' | head -60
  fi
done
[ "$rc" -eq 0 ] || { failed=1; echo "the run exited $rc"; tail -5 "$tmp/log"; }
echo "valgrind run: $((SECONDS - t0))s"
if [ "$failed" -eq 0 ]; then echo "e2e_valgrind: 1 passed, 0 failed"; else echo "e2e_valgrind: 0 passed, 1 failed"; exit 1; fi
