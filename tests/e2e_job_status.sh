#!/usr/bin/env bash
# e2e_job_status.sh: `pretext status FILE` and the job scripts' check of a launcher's 0 against the
# file. MPICH's Hydra mpiexec can return 0 after a signal stopped the ranks (docs/reliability.md);
# jobs/pretext-job.sh must then see from the file that the run is not complete and exit 75 (and
# requeue when it may), not report "done".
#  1. status: usage (2), a missing file and a file that is not HDF5 (1, naming the file), a
#     complete run (0, its phases and trials counted), an interrupted one (75);
#  2. jobs/session5.sbatch run outside Slurm with PRETEXT_LAUNCHER=mpirun and a fake `mpirun` on
#     PATH that launches the real one and then returns 0 whatever the ranks returned:
#     interrupted by SIGUSR1 mid-trials, the job exits 75 and says why; run to the end, it exits 0.
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
bin="${PRETEXT_BINARY:-$src/build/pretext}"
mpiexec="${PRETEXT_MPIEXEC:-mpiexec}"
data="${PRETEXT_DATA_DIR:-$src/data/mnist}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
[ -f "$data/train-images-idx3-ubyte" ] || [ -f "$data/train-images-idx3-ubyte.gz" ] \
  || { echo "SKIP: no MNIST in $data (scripts/fetch-data.sh)"; exit 77; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
# expect NAME WANT_STATUS WANT_TEXT COMMAND...: the status and a line of its output.
expect() {
  local name="$1" want="$2" text="$3" rc=0 out; shift 3
  out="$("$@" 2>&1)" || rc=$?
  if [ "$rc" -eq "$want" ] && grep -qF -- "$text" <<< "$out"; then ok "$name: exit $rc: $(head -1 <<< "$out")"
  else bad "$name: exit $rc (expected $want), output: $out"; fi
}
# The first 1500 training and 1000 test images (a tenth of the test set to evaluate: most of a
# run's time under the sanitizers).
python3 "$src/tests/idx_tool.py" small "$data" "$tmp/data" 1500 1000 > /dev/null
small=("data.dir=$tmp/data" data.train_images=1500 trials.supervised=3 trials.self_supervised=3 trials.epochs=4)

# ---- 1. pretext status
expect "status without a file" 2 "usage: pretext status FILE" "$bin" status
expect "status of a missing file" 1 "$tmp/none.h5" "$bin" status "$tmp/none.h5"
echo "not hdf5" > "$tmp/junk.h5"
expect "status of a file that is not HDF5" 1 "$tmp/junk.h5" "$bin" status "$tmp/junk.h5"
"$mpiexec" -n 1 "$bin" run --quiet --config "$src/configs/smoke.ini" --out "$tmp/done.h5" "${small[@]}" \
  > "$tmp/log_done" 2>&1 || { cat "$tmp/log_done"; echo "FAIL: the reference run failed"; exit 1; }
expect "status of a complete run" 0 "complete: 2 of 2 phases, 6 of 6 trials done; 1 run segment, the last 'complete'" \
  "$bin" status "$tmp/done.h5"

# ---- 2. the job script, with a launcher that returns 0 whatever happened
mkdir -p "$tmp/fakebin"
cat > "$tmp/fakebin/mpirun" <<'EOF'
#!/usr/bin/env bash
# A launcher like Hydra after a signal: runs the real one, returns 0 whatever the ranks returned.
# FAKE_INTERRUPT=1: sends it SIGUSR1 once the first trial is done.
"$REAL_MPIEXEC" "$@" > "$FAKE_LOG" 2>&1 &
pid=$!
if [ "${FAKE_INTERRUPT:-0}" = 1 ]; then
  while kill -0 "$pid" 2> /dev/null && ! grep -q "^trial .* 1/6 done" "$FAKE_LOG"; do sleep 0.02; done
  kill -USR1 "$pid" 2> /dev/null || true
fi
wait "$pid" || true
exit 0
EOF
chmod +x "$tmp/fakebin/mpirun"
job() { # OUT INTERRUPT: runs jobs/session5.sbatch as a shell script; prints its output
  env -u SLURM_JOB_ID PATH="$tmp/fakebin:$PATH" REAL_MPIEXEC="$mpiexec" FAKE_LOG="$tmp/launcher_$2.log" \
    FAKE_INTERRUPT="$2" PRETEXT_LAUNCHER=mpirun PRETEXT_MPIRUN_ARGS="-n 2" PRETEXT_BIN="$bin" \
    PRETEXT_OUT="$1" bash "$src/jobs/session5.sbatch" "$src/configs/smoke.ini" "${small[@]}"
}
rc=0; job "$tmp/job_int.h5" 1 > "$tmp/job_int.log" 2>&1 || rc=$?
if [ "$rc" -eq 75 ] && grep -q "the launcher returned 0, but .*not complete.*treating the run as interrupted" "$tmp/job_int.log" \
   && grep -q "interrupted by a signal" "$tmp/launcher_1.log"; then
  ok "job interrupted mid-trials behind a launcher that returned 0: exit 75, $(grep -o 'but .*: treating' "$tmp/job_int.log" | head -1)"
else
  bad "job interrupted behind a launcher that returned 0: exit $rc (expected 75)"; tail -8 "$tmp/job_int.log"; tail -3 "$tmp/launcher_1.log"
fi
expect "status of the interrupted job's file" 75 "not complete: 2 of 2 phases" "$bin" status "$tmp/job_int.h5"
rc=0; job "$tmp/job_int.h5" 0 > "$tmp/job_resume.log" 2>&1 || rc=$?
if [ "$rc" -eq 0 ] && grep -q "done: $tmp/job_int.h5" "$tmp/job_resume.log" && ! grep -q "treating the run as interrupted" "$tmp/job_resume.log"; then
  ok "the same job again resumes and completes: exit 0"
else
  bad "the resumed job: exit $rc (expected 0)"; tail -8 "$tmp/job_resume.log"
fi
expect "status after the resume" 0 "complete: 2 of 2 phases, 6 of 6 trials done; 2 run segments" "$bin" status "$tmp/job_int.h5"

echo "e2e_job_status: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
