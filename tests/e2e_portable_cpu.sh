#!/usr/bin/env bash
# e2e_portable_cpu.sh: the default build runs on older CPUs. Runs the program under Debian's
# qemu-user emulating two older CPUs, and checks for each that it picks the right kernel set and
# that a small end-to-end run completes with a sane accuracy:
#   Nehalem   (SSE4.2, no AVX)           -> the generic set
#   Haswell   (AVX2 + FMA, no AVX-512)   -> the avx2 set
# and that asking for a set the CPU lacks is refused with a clear message (exit 1, no crash).
# Emulated AVX2 is hundreds of times slower than native, so the run is tiny (a few native
# milliseconds of work). OpenBLAS is told nothing (OPENBLAS_CORETYPE unset) so that it, too, picks
# its kernels from the emulated CPU. Skipped (77) if qemu-x86_64 is missing or this is not x86-64.
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
bin="${PRETEXT_BINARY:-$src/build/pretext}"
case "$(uname -m)" in x86_64|amd64) ;; *) echo "SKIP: qemu-x86_64 emulates x86-64 CPUs; this is $(uname -m)"; exit 77 ;; esac
command -v qemu-x86_64 > /dev/null || { echo "SKIP: qemu-x86_64 is not installed (Debian: qemu-user; scripts/setup.sh --tests installs it)"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
unset OPENBLAS_CORETYPE PRETEXT_KERNELS
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$src/tests/idx_tool.py" small "$src/data/mnist" "$tmp/data" 300 100 > /dev/null \
  || python3 "$src/tests/idx_tool.py" small "$src/data/mnist" "$tmp/data" 300 100 > /dev/null
# qemu warns on its stderr about CPU features its TCG cannot emulate (pcid, x2apic, ...): harmless
emulate() { local cpu="$1"; shift; qemu-x86_64 -cpu "$cpu" "$bin" "$@"; }
failed=0
fail() { echo "FAIL $*"; failed=1; }
for pair in Nehalem:generic Haswell:avx2; do
  cpu="${pair%%:*}" want="${pair##*:}"
  t0=$SECONDS
  version="$(emulate "$cpu" --version 2> /dev/null)" || { fail "$cpu: pretext --version exited $?"; continue; }
  grep -q "^kernels: $want " <<< "$version" || { fail "$cpu: expected kernels $want, got: $(grep kernels <<< "$version")"; continue; }
  set +e
  emulate "$cpu" run --out "$tmp/$cpu.h5" "data.dir=$tmp/data" benchmark.epochs=1 pretext.epochs=1 \
    benchmark.batch_size=32 pretext.batch_size=32 trials.supervised=1 trials.self_supervised=1 trials.labels=20 \
    trials.epochs=1 downstream.frozen_epochs=1 downstream.finetune_epochs=0 > "$tmp/$cpu.log" 2>&1
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then fail "$cpu: the run exited $rc"; tail -5 "$tmp/$cpu.log"; continue; fi
  grep -q "kernels $want" "$tmp/$cpu.log" || fail "$cpu: the run's header does not name kernels $want"
  acc="$(sed -n 's/.*benchmark: test_accuracy \([0-9.]*\).*/\1/p' "$tmp/$cpu.log")"
  # 240 training images, one epoch: well above chance (0.1), far from perfect
  awk -v a="${acc:-0}" 'BEGIN { exit !(a > 0.3 && a <= 1.0) }' || fail "$cpu: benchmark test accuracy '$acc' is not sane (> 0.3)"
  echo "ok   $cpu: kernels $want, run completed, benchmark test accuracy $acc ($((SECONDS - t0))s emulated)"
done
# A set the CPU lacks: refused, named, exit 1.
set +e
emulate Nehalem run --kernels avx2 --out "$tmp/refused.h5" "data.dir=$tmp/data" > "$tmp/refused.log" 2>&1
rc=$?
set -e
if [ "$rc" -eq 1 ] && grep -q "kernel set 'avx2' cannot run on this CPU: it lacks avx2, fma" "$tmp/refused.log"; then
  echo "ok   Nehalem: --kernels avx2 refused: $(grep -m1 'kernel set' "$tmp/refused.log")"
else
  fail "Nehalem: --kernels avx2 should exit 1 naming the missing instructions (exit $rc)"; tail -3 "$tmp/refused.log"
fi
[ ! -e "$tmp/refused.h5" ] || fail "a refused run left a results file"
exit "$failed"
