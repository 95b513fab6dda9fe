#!/usr/bin/env bash
# e2e_run_guards.sh: what protects a results file and a job's outcome:
#   1. one writer per results file: a second run on the same path exits 1 within seconds, naming
#      the file and the holder (host, pid, start time), and the first run completes unharmed; a
#      lock file left by a killed run does not block; two runs on different files run side by side;
#   2. resume checks the data's identity, not its path: the same files copied to another folder
#      resume; one changed byte is refused, naming both files;
#   3. exit status precedence: a rank that fails while another is interrupted makes the job fail
#      (1), an interrupted rank beats success (75), and a usage error (2) beats interruption.
# (--help and --version without MPI: e2e_help_without_mpi.sh.)
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
bin="${PRETEXT_BINARY:-$src/build/pretext}"
mpiexec="${PRETEXT_MPIEXEC:-mpiexec}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
py=/usr/bin/python3
[ -x "$py" ] && "$py" -c "import h5py" 2> /dev/null || py=python3
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"; jobs -p | xargs -r kill 2> /dev/null || true' EXIT
"$py" "$src/tests/idx_tool.py" small "$src/data/mnist" "$tmp/data" 1000 200 > /dev/null
small=("data.dir=$tmp/data" benchmark.epochs=1 pretext.epochs=1 trials.supervised=2 trials.self_supervised=2
       trials.labels=20 trials.epochs=1 downstream.frozen_epochs=1 downstream.finetune_epochs=1)
failed=0
fail() { echo "FAIL $*"; failed=1; }

# 1. One writer per file.
"$mpiexec" -n 2 "$bin" run --quiet --out "$tmp/r.h5" "${small[@]}" benchmark.epochs=3 > "$tmp/first.log" 2>&1 &
first=$!
for _ in $(seq 400); do [ -s "$tmp/r.h5.lock" ] && break; sleep 0.05; done
[ -s "$tmp/r.h5.lock" ] || fail "the first run wrote no lock file"
t0=$(date +%s.%N)
set +e
"$mpiexec" -n 2 "$bin" run --quiet --out "$tmp/r.h5" "${small[@]}" benchmark.epochs=3 > "$tmp/second.log" 2>&1
rc=$?
set -e
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
if [ "$rc" -eq 1 ] && grep -q "another run is writing '$tmp/r.h5' (host .* pid [0-9]* started 20" "$tmp/second.log"; then
  echo "ok   1. second run refused in ${took}s: $(grep -m1 'another run' "$tmp/second.log" | cut -c1-160)"
else
  fail "1. the second run should exit 1 naming the holder (exit $rc)"; tail -3 "$tmp/second.log"
fi
awk -v t="$took" 'BEGIN { exit !(t < 20) }' || fail "1. the refusal took ${took}s"
wait "$first" || fail "1. the first run exited $? after the second was refused"
"$py" "$src/tests/results_tool.py" done "$tmp/r.h5" | grep -q "^1 2 2$" || fail "1. the first run's file is not complete"
[ ! -e "$tmp/r.h5.lock" ] || fail "1. the lock file was left after a clean end"
ls "$tmp"/r.h5.tmp-* > /dev/null 2>&1 && fail "1. temporary files left behind"
# a lock file left by a killed run (no process holds it) does not block
echo "host gone pid 1 started 2020-01-01T00:00:00Z" > "$tmp/stale.h5.lock"
"$mpiexec" -n 1 "$bin" run --quiet --out "$tmp/stale.h5" "${small[@]}" --stop-after-trials 0 > "$tmp/stale.log" 2>&1 \
  || [ $? -eq 75 ] || fail "1. a stale lock file blocked a run"
echo "ok   1. a stale lock file does not block"

# 2. The data's identity, not its path.
cp -r "$tmp/data" "$tmp/moved"
rc=0
"$mpiexec" -n 1 "$bin" run --out "$tmp/stale.h5" "${small[@]}" "data.dir=$tmp/moved" --stop-after-trials 1 > "$tmp/moved.log" 2>&1 \
  || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 75 ] || { fail "2. resume from the same data in another folder exited $rc"; tail -3 "$tmp/moved.log"; }
grep -q "resuming from" "$tmp/moved.log" || fail "2. the moved data did not resume"
"$py" - "$tmp/moved/train-labels-idx1-ubyte" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(8); b = f.read(1); f.seek(8); f.write(bytes([(b[0] + 1) % 10]))  # one label
EOF
cp "$tmp/stale.h5" "$tmp/before.h5"
set +e
"$mpiexec" -n 1 "$bin" run --quiet --out "$tmp/stale.h5" "${small[@]}" "data.dir=$tmp/moved" > "$tmp/changed.log" 2>&1
rc=$?
set -e
if [ "$rc" -eq 1 ] && grep -q "computed from other data: its train_labels '.*train-labels-idx1-ubyte' has SHA-256 [0-9a-f]*\.\.\., but this run's '$tmp/moved/train-labels-idx1-ubyte' has" "$tmp/changed.log"; then
  echo "ok   2. other data refused: $(grep -m1 'other data' "$tmp/changed.log" | cut -c1-160)"
else
  fail "2. changed data should be refused naming both files (exit $rc)"; tail -3 "$tmp/changed.log"
fi
cmp -s "$tmp/stale.h5" "$tmp/before.h5" || fail "2. the refused run changed the file"

# 3. Exit status precedence (--test-exit RANK:STATUS makes a rank end with STATUS).
status_of() { set +e; "$mpiexec" -n 2 "$bin" run --quiet --out "$tmp/s$RANDOM.h5" "${small[@]}" "$@" > "$tmp/status.log" 2>&1; echo $?; set -e; }
rc=$(status_of --stop-after-trials 0 --test-exit 1:1)   # rank 0 interrupted (75), rank 1 failed (1)
[ "$rc" -eq 1 ] || fail "3. failed + interrupted gave $rc, expected 1"
rc=$(status_of --test-exit 1:75)                         # rank 0 done, rank 1 interrupted
[ "$rc" -eq 75 ] || fail "3. done + interrupted gave $rc, expected 75"
rc=$(status_of --stop-after-trials 0 --test-exit 1:2)   # rank 0 interrupted, rank 1 usage error
[ "$rc" -eq 2 ] || fail "3. interrupted + usage gave $rc, expected 2"
rc=$(status_of)
[ "$rc" -eq 0 ] || fail "3. a clean run gave $rc"
echo "ok   3. exit status: failed beats interrupted beats done"

exit "$failed"
