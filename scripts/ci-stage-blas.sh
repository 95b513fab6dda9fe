#!/usr/bin/env bash
# ci-stage-blas.sh [CTEST_ARGS...]: pretext built against a second CBLAS, BLIS (Debian:
# libblis-dev; scripts/setup.sh --tests installs it), in build-blis/ with -DPRETEXT_BLAS=blis,
# then the engine's unit tests (layers, PyTorch golden files, model gradients, Adam; every kernel
# set) and the smoke run (e2e_run_smoke: 2 ranks, results and Keras weights checked). Checks first
# that the program links BLIS's own library and not OpenBLAS (Debian's alternatives may point
# libblas.so at OpenBLAS). Run by scripts/run-tests.sh; alone: bash scripts/ci-stage-blas.sh.
# Environment: PRETEXT_BLAS2 (blis; any PRETEXT_BLAS value but auto/openblas, e.g. generic for
# the reference BLAS), PRETEXT_BLAS2_BUILD_DIR (build-<PRETEXT_BLAS2>).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
blas="${PRETEXT_BLAS2:-blis}"
dir="${PRETEXT_BLAS2_BUILD_DIR:-build-$blas}"
tests='^(test_(layers|golden|model_grad|adam)_.*|e2e_run_smoke)$'
mkdir -p "$dir"
echo "ci-stage-blas: cmake -S . -B $dir -DPRETEXT_BLAS=$blas; ctest -R '$tests'"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DPRETEXT_BLAS="$blas" > "$dir/pretext-configure.log" 2>&1 \
  || { cat "$dir/pretext-configure.log"; echo "ci-stage-blas: configure failed (Debian: apt-get install libblis-dev)" >&2; exit 1; }
grep "pretext:" "$dir/pretext-configure.log" | sed 's/^/  /'
cmake --build "$dir" -j"$(nproc)" > "$dir/pretext-build.log" 2>&1 || { grep -E "error|Error" "$dir/pretext-build.log" | head -20; echo "ci-stage-blas: build failed" >&2; exit 1; }
grep -E "warning" "$dir/pretext-build.log" || true
libs="$(ldd "$dir/pretext")"
grep -E "blis|blas|mkl|flexiblas" <<< "$libs" | while read -r name _ path _; do
  echo "  ldd: $name => $path ($(readlink -f "$path"))"
done
case "$blas" in
  blis) want=libblis ;;
  generic) want=libblas ;;
  *) want="$blas" ;;
esac
grep -q "$want" <<< "$libs" || { echo "ci-stage-blas: $dir/pretext does not link $want" >&2; exit 1; }
# Not OpenBLAS, neither by name nor through an alternatives link.
for path in $(awk '/=>/ && $3 ~ /^\// { print $3 }' <<< "$libs"); do
  case "$(readlink -f "$path")" in
    *openblas*) echo "ci-stage-blas: $dir/pretext loads OpenBLAS: $path -> $(readlink -f "$path")" >&2; exit 1 ;;
  esac
done
"$dir/pretext" --version | grep "^blas:" | sed 's/^/  /'
ctest --test-dir "$dir" --output-on-failure -j2 -R "$tests" "$@"
