#!/usr/bin/env bash
# e2e_fuzz.sh: builds the libFuzzer targets (tests/fuzz, clang, AddressSanitizer + UBSan) in their
# own build folder if needed, then runs each for a fixed number of executions from its committed
# seed corpus (tests/fuzz/corpus/<target>): the IDX reader, the configuration parser and the
# results-file reader used by resume. Any crash, leak, sanitizer report or failed assertion fails
# the test and leaves the input in the scratch folder printed below (make it a regression test:
# copy it into tests/fuzz/regressions/<target>/, which this script replays every time).
# FUZZ_RUNS_SCALE multiplies the numbers of executions (e.g. 10 for a longer local session).
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
# ctest runs this from the build folder: the fuzz build goes beside it, never into the sources
build="${PRETEXT_FUZZ_BUILD_DIR:-$PWD/fuzz-build}"
scale="${FUZZ_RUNS_SCALE:-1}"
command -v clang > /dev/null || { echo "FAIL: clang is not installed (scripts/setup.sh --tests installs it)"; exit 1; }
if [ ! -x "$build/tests/fuzz/fuzz_idx" ] || [ ! -x "$build/tests/fuzz/fuzz_config" ] || [ ! -x "$build/tests/fuzz/fuzz_results" ] \
   || [ -n "$(find "$src/src" "$src/include" "$src/tests/fuzz" -newer "$build/tests/fuzz/fuzz_results" -name '*.[ch]' | head -1)" ]; then
  echo "building the fuzzers in $build"
  mkdir -p "$build"
  CC=clang cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPRETEXT_FUZZ=ON -DPRETEXT_TESTS=OFF \
    > "$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
  if ! cmake --build "$build" -j"$(nproc)" --target fuzz_idx fuzz_config fuzz_results > "$build/build.log" 2>&1; then
    grep -E "warning|error" "$build/build.log" | head -20
    echo "FAIL: the fuzzers did not build (log: $build/build.log)"
    exit 1
  fi
fi
scratch="$(mktemp -d)"; trap 'rm -rf "$scratch"' EXIT
export ASAN_OPTIONS="detect_leaks=1"
export LSAN_OPTIONS="suppressions=$src/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
passed=0; failed=0
# fuzz TARGET RUNS MAX_LEN
fuzz() {
  local target="$1" runs=$(( $2 * scale )) max_len="$3"
  local corpus="$src/tests/fuzz/corpus/${target#fuzz_}" regressions="$src/tests/fuzz/regressions/${target#fuzz_}"
  mkdir -p "$scratch/$target" "$scratch/keep"
  local t0=$SECONDS rc
  # Replay the regression inputs first (each must pass), then fuzz: new inputs go to the scratch
  # folder (first), the committed corpus (second) is only read.
  if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    set +e; "$build/tests/fuzz/$target" "$regressions"/* > "$scratch/$target.replay.log" 2>&1; rc=$?; set -e
    if [ "$rc" -ne 0 ]; then failed=$((failed + 1)); echo "FAIL $target: a regression input fails again"; tail -30 "$scratch/$target.replay.log"; return; fi
  fi
  set +e
  timeout 300 "$build/tests/fuzz/$target" "$scratch/$target" "$corpus" -runs="$runs" -max_len="$max_len" \
    -seed=1 -timeout=10 -rss_limit_mb=3000 -artifact_prefix="$scratch/keep/$target-" > "$scratch/$target.log" 2>&1
  rc=$?
  set -e
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    echo "ok   $target: $runs runs in $((SECONDS - t0))s ($(grep -oE 'cov: [0-9]+' "$scratch/$target.log" | tail -1), corpus $(ls "$corpus" | wc -l) seeds)"
  else
    failed=$((failed + 1))
    echo "FAIL $target (exit $rc):"
    grep -E "ERROR|SUMMARY|runtime error|Assertion|    #[0-9] " "$scratch/$target.log" | head -30
    mkdir -p "$build/crashes"; cp "$scratch"/keep/* "$build/crashes/" 2>/dev/null || true
    echo "     the input is saved in $build/crashes/"
  fi
}
fuzz fuzz_idx 6000 4096
fuzz fuzz_config 12000 2048
fuzz fuzz_results 4000 64
echo "e2e_fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
