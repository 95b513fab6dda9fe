# shellcheck shell=bash
# tests/lib_expect_fail.sh: sourced by tests/e2e_bad_input.sh and tests/e2e_readonly_fs.sh (not a
# test itself). Runs `pretext ARGS` on 2 ranks, expecting it to refuse, and checks everything a
# refusal must do; cases can run concurrently, each in its own folder.
#
# The caller sets: bin (the pretext binary), tmp (a scratch folder), and optionally ref_dir (a
# folder holding a finished results.h5 and its two weights files, with their sha256sum output in
# $ref_dir/sums) and jobs (cases run at once, default 1).
#
#   small_run_inputs      writes $tmp/data (1000 training, 500 test images of MNIST, from the
#                         source tree's data/mnist) and $tmp/ok.ini, a run of it that takes
#                         seconds: the inputs the cases break one at a time
#   launch FUNC ARGS...   runs `FUNC ARGS` in the background in a fresh folder $case_dir (at most
#                         $jobs at a time); its output is the case's report
#   expect_fail NAME STATUS PATTERN ARGS...
#                         runs `pretext ARGS` under mpiexec -n 2 in $case_dir. In ARGS and
#                         PATTERN, @OUT@ stands for $case_dir/results.h5 (a fresh copy of
#                         $ref_dir's files, when ref_dir is set) and @DIR@ for $case_dir. Checks:
#                         every rank ends by itself with STATUS ("nz": any non-zero) within
#                         max_seconds (below; timeout $case_timeout as a backstop), mpiexec is
#                         non-zero, PATTERN
#                         (grep -E) is printed, no training started, and the copied results files
#                         are byte-identical afterwards. Prints "ok   NAME..." or "FAIL NAME: ...".
#   finish_cases TITLE    waits for every case, prints the reports in launch order, counts the
#                         verdicts (a case that printed none, e.g. whose set-up failed, is a
#                         failure) and returns non-zero if any case failed.
: "${bin:?}" "${tmp:?}"
# A case must end within max_seconds: 20, or 60 for a sanitizer build (AddressSanitizer's start-up
# and LeakSanitizer's symbolised check at exit take seconds per rank on a loaded machine), which
# also runs 2 cases at a time instead of the caller's $jobs (PRETEXT_TEST_JOBS overrides both).
# (ldd's output is read whole: `ldd | grep -q` under pipefail fails whenever ldd gets SIGPIPE.)
if [[ "$(ldd "$bin" 2> /dev/null || true)" == *libasan* ]]; then
  max_seconds=60; case_timeout=150; jobs="${PRETEXT_TEST_JOBS:-2}"
else
  max_seconds=20; case_timeout=60
fi
mpiexec="${PRETEXT_MPIEXEC:-mpiexec}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1
case_no=0
cases_dir="$tmp/cases"
mkdir -p "$cases_dir"

# The rank wrapper mpiexec starts: pretext runs in a session of its own (setsid), its output in
# rank.R.out and its exit status written to rank.R when it ends. When one rank exits non-zero,
# Open MPI's mpiexec tears the job down (SIGTERM, then SIGKILL 1 s later, to each rank's process
# group); outside that group, a rank that is merely a moment behind on a loaded machine still
# ends by itself and says so, while a rank that hangs is found by the deadline below and killed
# by its recorded process group id.
cat > "$tmp/rankwrap.sh" <<'EOF'
dir="$1"; shift
rank="${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-x}}"
exec setsid -f -w bash -c 'd="$1" r="$2"; shift 2; trap "" TERM INT; echo $$ > "$d/rank.$r.pgid"
  "$@" > "$d/rank.$r.out" 2>&1; rc=$?; echo $rc > "$d/rank.$r.tmp"; mv "$d/rank.$r.tmp" "$d/rank.$r"; exit $rc' \
  rankwrap "$dir" "$rank" "$@"
EOF

launch() {
  case_no=$((case_no + 1))
  local dir; dir="$cases_dir/$(printf '%03d' "$case_no")"
  mkdir -p "$dir"
  while [ "$(jobs -rp | wc -l)" -ge "${jobs:-1}" ]; do wait -n || true; done
  (case_dir="$dir"; "$@") > "$dir/report" 2>&1 &
}

expect_fail() {
  local name="$1" want="$2" pattern="$3"; shift 3
  local dir="${case_dir:?expect_fail runs inside launch}"
  local out="$dir/results.h5"
  if [ -n "${ref_dir:-}" ]; then
    cp "$ref_dir/results.h5" "$ref_dir/results.benchmark.weights.h5" "$ref_dir/results.pretext.weights.h5" "$dir/"
  fi
  local args=() a
  for a in "$@"; do a="${a//@OUT@/$out}"; args+=("${a//@DIR@/$dir}"); done
  pattern="${pattern//@OUT@/$out}"; pattern="${pattern//@DIR@/$dir}"
  mkdir -p "$dir/rc"
  local t0=${EPOCHREALTIME/./} t1 rc problems="" r
  set +e
  timeout "$case_timeout" "$mpiexec" -n 2 bash "$tmp/rankwrap.sh" "$dir/rc" "$bin" "${args[@]}" > "$dir/mpiexec.log" 2>&1
  rc=$?
  set -e
  # Every rank must end by itself within max_seconds of the start; one that has not by then is
  # killed (its own process group) and reported.
  local deadline=$((t0 + max_seconds * 1000000))
  while [ ! -f "$dir/rc/rank.0" ] || [ ! -f "$dir/rc/rank.1" ]; do
    [ "${EPOCHREALTIME/./}" -lt "$deadline" ] || break
    sleep 0.1
  done
  t1=${EPOCHREALTIME/./}
  for r in 0 1; do
    if [ ! -f "$dir/rc/rank.$r" ] && [ -f "$dir/rc/rank.$r.pgid" ]; then
      kill -KILL -- "-$(cat "$dir/rc/rank.$r.pgid")" 2>/dev/null || true
    fi
  done
  cat "$dir/rc/rank.0.out" "$dir/rc/rank.1.out" "$dir/mpiexec.log" > "$dir/log" 2>/dev/null || true
  local tenths=$(( (t1 - t0) / 100000 ))
  local secs="$((tenths / 10)).$((tenths % 10))"
  [ "$rc" -ne 0 ] || problems+=" mpiexec exited 0;"
  [ "$rc" -ne 124 ] || problems+=" timed out (a rank hangs);"
  [ $((t1 - t0)) -le $((max_seconds * 1000000)) ] || problems+=" took ${secs}s (> ${max_seconds}s);"
  local rr
  for r in 0 1; do
    if [ ! -f "$dir/rc/rank.$r" ]; then
      problems+=" rank $r did not exit by itself within ${max_seconds}s;"
    else
      rr=$(cat "$dir/rc/rank.$r")
      if [ "$want" = nz ]; then [ "$rr" -ne 0 ] || problems+=" rank $r exited 0;"
      else [ "$rr" -eq "$want" ] || problems+=" rank $r exited $rr, expected $want;"; fi
    fi
  done
  grep -qE -- "$pattern" "$dir/log" || problems+=" message /$pattern/ not printed;"
  if grep -qE "^(benchmark|pretext) epoch " "$dir/log"; then problems+=" training started before the error was seen;"; fi
  if [ -n "${ref_dir:-}" ]; then
    (cd "$dir" && sha256sum results.h5 results.benchmark.weights.h5 results.pretext.weights.h5) | cmp -s - "$ref_dir/sums" \
      || problems+=" the existing results were changed;"
  fi
  if [ -z "$problems" ]; then
    echo "ok   $name (${secs}s): $(grep -m1 -E -- "$pattern" "$dir/log" | cut -c1-150)"
  else
    echo "FAIL $name:$problems"; sed 's/^/     | /' "$dir/log" | grep -v -- "------" | head -12
  fi
}

finish_cases() {
  local title="$1" passed=0 failed=0 d ok bad
  wait
  for d in "$cases_dir"/*/; do
    [ -f "$d/report" ] || continue
    cat "$d/report"
    ok=$(grep -c '^ok   ' "$d/report" || true); bad=$(grep -c '^FAIL' "$d/report" || true)
    if [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ]; then
      echo "FAIL case $(basename "$d"): it ended without a verdict (its set-up failed?)"; bad=1
    fi
    passed=$((passed + ok)); failed=$((failed + bad))
  done
  echo "$title: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

small_run_inputs() {
  python3 "${src:?}/tests/idx_tool.py" small "$src/data/mnist" "$tmp/data" 1000 500
  cat > "$tmp/ok.ini" <<EOF
[data]
dir = $tmp/data
[benchmark]
epochs = 1
[pretext]
epochs = 1
[trials]
supervised = 1
self_supervised = 1
labels = 40
epochs = 1
[downstream]
frozen_epochs = 1
finetune_epochs = 0
EOF
}
