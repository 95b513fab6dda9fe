#!/usr/bin/env bash
# check_isa.sh BUILD_DIR NATIVE: the ctest `isa`. One binary must run on any x86-64 CPU, so no
# object of pretext's libraries outside the kernel sets may contain an instruction an older CPU
# lacks: no VEX or EVEX encoded instruction (AVX, AVX2, FMA, AVX-512), which is what the
# compiler's auto-vectoriser would emit if a file got the wrong flags. The kernel sets' objects
# (kernels_avx2.c, kernels_avx512.c and kernels_loops.c compiled for avx2 and avx512) must hold
# such instructions, or the sets would be empty. Skipped (77) with PRETEXT_NATIVE=ON, which
# compiles everything for the building CPU on purpose, and off x86-64.
set -euo pipefail
build="$1" native="$2"
[ "$native" = "ON" ] && { echo "SKIP: PRETEXT_NATIVE=ON compiles every file for this CPU on purpose"; exit 77; }
case "$(uname -m)" in x86_64|amd64) ;; *) echo "SKIP: not an x86-64 build ($(uname -m))"; exit 77 ;; esac
command -v objdump > /dev/null || { echo "SKIP: objdump (binutils) is not installed"; exit 77; }
mapfile -t objects < <(find "$build/CMakeFiles" -path '*pretext_*.dir/*' -name '*.o' | sort)
[ "${#objects[@]}" -ge 20 ] || { echo "FAIL: found only ${#objects[@]} objects under $build/CMakeFiles"; exit 1; }
bad=0 kernels=0
for o in "${objects[@]}"; do
  # VEX/EVEX instructions: AT&T mnemonics starting with v (vmovaps, vfmadd231ps, vpxor, ...)
  n=$(objdump -d --no-show-raw-insn "$o" | grep -cE $'\t''v[a-z0-9]+ ' || true)
  case "$o" in
    *kernels_avx2.c.o|*kernels_avx512.c.o|*pretext_nn_loops_avx2.dir/*|*pretext_nn_loops_avx512.dir/*)
      kernels=$((kernels + 1))
      if [ "$n" -eq 0 ]; then echo "FAIL: kernel object $o holds no AVX instruction"; bad=1; fi ;;
    *)
      if [ "$n" -ne 0 ]; then
        echo "FAIL: $o holds $n AVX instruction(s) outside the kernel sets, e.g.:"
        objdump -d --no-show-raw-insn "$o" | grep -E $'\t''v[a-z0-9]+ ' | head -3
        bad=1
      fi ;;
  esac
done
[ "$kernels" -eq 4 ] || { echo "FAIL: expected 4 kernel-set objects, found $kernels"; bad=1; }
[ "$bad" -eq 0 ] && echo "isa: ${#objects[@]} objects checked; only the 4 kernel-set objects use AVX"
exit "$bad"
