#!/usr/bin/env bash
# e2e_faults.sh: faults during a real 2-rank run (issue 6), on a small experiment (3000 training and
# 500 test images, 2+2 epochs of phases, 4+4 trials of 300 labels):
#  1. kill -9 of rank 1 or rank 0 at 24 random moments (seeded: FAULT_SEED, reproducible schedule),
#     half during the data-parallel phases, half during the trials: the job must end within
#     seconds with a non-zero status, the results file (if any) must open, and rerunning the same
#     command must resume and finish with trial results identical to an uninterrupted run. Each
#     moment is a progress line of the run (an epoch, a finished trial) plus a short random delay,
#     so the kills land where they are aimed however loaded the machine is;
#  2. SIGTERM, SIGINT and SIGUSR1 sent to mpirun and to single ranks, during a phase and during the
#     trials: the file is complete and consistent (opens, not marked complete), the status says
#     "resumable" (75; mpirun itself turns SIGTERM/SIGINT into 1, see docs/reliability.md), and the
#     resume finishes with the same trial results;
#  3. a full disk (results on a small tmpfs) fails with a clear message, exit 1, and the results
#     saved before (the benchmark's first checkpoint) stay readable and resumable;
#  4. a diverging run (huge learning rate) stops with the phase, epoch and step of the non-finite
#     loss and exit 1.
# The launcher is PRETEXT_MPIEXEC (ctest sets the build's), Open MPI's mpirun or MPICH's Hydra
# mpiexec: ranks are found among the launcher's descendants by their rank variable
# (OMPI_COMM_WORLD_RANK or PMI_RANK), and what the launcher itself returns when it is signalled
# depends on which it is (below). Hydra forwards the ranks' output in bursts, so under it a
# progress line is often seen only after the run has moved on: fewer kills land where aimed
# (the MPICH stage asks for fewer: scripts/ci-stage-mpich.sh).
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
bin="${PRETEXT_BINARY:-$src/build/pretext}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
seed="${FAULT_SEED:-6}"
kills="${FAULT_KILLS:-24}"          # moments drawn; a few may fall after the run has ended
min_landed="${FAULT_MIN_LANDED:-20}"  # kills that must land inside a running job
mpiexec="${PRETEXT_MPIEXEC:-mpiexec}"
launcher=openmpi
case "$("$mpiexec" --version 2>&1)" in *HYDRA*|*Hydra*|*MPICH*) launcher=hydra ;; esac
tmp="$(mktemp -d)"
mounted=""
cleanup() { [ -n "$mounted" ] && umount "$mounted" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
py=/usr/bin/python3
tool="$src/tests/results_tool.py"
passed=0; failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
now() { date +%s.%N; }
secs() { python3 -c "print(round($2 - $1, 2))"; }
le() { python3 -c "import sys; sys.exit(0 if $1 <= $2 else 1)"; }

# Small enough that the 24 kills, 9 signals and their resumes take a few minutes (on 2 quiet Zen 5
# cores the whole run takes about 5 s: phases 2.5 s, trials 2.5 s, long enough for a signal to
# mpirun, which reaches the ranks a second later, to land in the trials); the kills follow
# progress lines, so their timing does not depend on the machine's speed.
python3 "$src/tests/idx_tool.py" small "$src/data/mnist" "$tmp/data" 3000 500
# run.phase_groups=1: both phases data-parallel on both ranks, one after the other, so that rank 0's
# progress lines mark every moment of both (faults with phases in two groups: e2e_study.sh).
cfg=("data.dir=$tmp/data" benchmark.epochs=2 pretext.epochs=2 trials.supervised=4 trials.self_supervised=4
     trials.labels=300 trials.epochs=8 downstream.frozen_epochs=4 downstream.finetune_epochs=4 run.phase_groups=1)

# wait_for FILE PATTERN PID: until PATTERN appears in FILE (0) or PID ends (1).
wait_for() {
  while ! grep -qE -- "$2" "$1" 2>/dev/null; do
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.02
  done
}
# descendants PID: every process below PID (Open MPI's ranks are mpirun's children; Hydra's are
# children of its hydra_pmi_proxy).
descendants() {
  local p
  for p in $(pgrep -P "$1" 2>/dev/null); do echo "$p"; descendants "$p"; done
}
# rank_pid MPIRUN_PID RANK: the pid of that rank (a descendant of the launcher), or nothing.
rank_pid() {
  local p try
  for try in 1 2 3 4 5; do
    for p in $(descendants "$1"); do
      if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qxE "(OMPI_COMM_WORLD_RANK|PMI_RANK)=$2"; then echo "$p"; return; fi
    done
    sleep 0.02
  done
}
# wait_end PID: waits until PID (a child of this shell) ends, polled every 20 ms (tail --pid
# polls once a second, which would round every measured time up to a second); after 60 s it
# kills it (the caller then reports the time it took).
wait_end() {
  local t_end=$((SECONDS + 60))
  while kill -0 "$1" 2>/dev/null && [ $SECONDS -lt $t_end ]; do sleep 0.02; done
  if kill -0 "$1" 2>/dev/null; then kill -9 "$1" 2>/dev/null || true; fi
}
# alive PID: the process exists and is not a zombie.
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$st" ] && [ "${st:0:1}" != Z ]; }
file_opens() { # FILE: absent, or opens and reads (prints "complete n_sup n_self")
  [ -e "$1" ] || { echo "no file"; return 0; }
  $py "$tool" done "$1"
}

# ---------------------------------------------------------------- the uninterrupted reference
t0=$(now)
"$mpiexec" -n 2 "$bin" run --out "$tmp/ref.h5" "${cfg[@]}" < /dev/null > "$tmp/log_ref" 2>&1 &
mp=$!
wait_for "$tmp/log_ref" "^benchmark: supervised" $mp; t_phase=$(now)
wait_for "$tmp/log_ref" "^trials: " $mp; t_trials=$(now)
wait $mp || { cat "$tmp/log_ref"; echo "FAIL: the reference run failed"; exit 1; }
t_end=$(now)
phase_s=$(secs "$t_phase" "$t_trials"); trials_s=$(secs "$t_trials" "$t_end")
echo "reference run: $(secs "$t0" "$t_end")s (phases ${phase_s}s, trials ${trials_s}s)"
[ "$($py "$tool" done "$tmp/ref.h5")" = "1 4 4" ] || { echo "FAIL: reference incomplete"; exit 1; }

# resume_and_compare NAME OUT: reruns the same command until done; trial results must equal ref.
resume_and_compare() {
  local log="$tmp/log_resume" rc
  set +e
  timeout 120 "$mpiexec" -n 2 "$bin" run --out "$2" "${cfg[@]}" < /dev/null > "$log" 2>&1
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then bad "$1: the resume exited $rc"; tail -5 "$log"; return 1; fi
  if ! $py "$tool" same-trials "$tmp/ref.h5" "$2" > "$tmp/cmp" 2>&1; then bad "$1: resumed results differ"; cat "$tmp/cmp"; return 1; fi
  [ "$($py "$tool" done "$2")" = "1 4 4" ] || { bad "$1: resumed file incomplete"; return 1; }
  return 0
}

# ---------------------------------------------------------------- 1. kill -9 at random moments
# The schedule: moment i is in the phases (even i) or the trials (odd i). Its target rank, the
# progress line it follows and a delay after that line (up to about a third of an epoch or of a
# trial on a quiet machine) come from a generator seeded with FAULT_SEED. A moment counts as
# missed only when the run has ended by then (it should not happen: every marker has work after it).
n_trials=8
schedule=$(python3 - "$seed" "$kills" "$n_trials" <<'PY'
import random, sys
rng = random.Random(int(sys.argv[1]))
n = int(sys.argv[3])
phase_marks = ["^benchmark: gradient sum", "^benchmark epoch 1/", "^benchmark epoch 2/",
               "^benchmark: test_loss", "^pretext: gradient sum", "^pretext epoch 1/",
               "^pretext epoch 2/"]
trial_marks = ["^trials: "] + [f"^trial .* {k}/{n} done" for k in range(1, n - 1)]
for i in range(int(sys.argv[2])):
    if i % 2 == 0:
        stage, mark, delay = "phases", rng.choice(phase_marks), rng.uniform(0.0, 0.15)
    else:
        stage, mark, delay = "trials", rng.choice(trial_marks), rng.uniform(0.0, 0.08)
    print(i, stage, rng.choice((0, 1)), round(delay, 3), mark.replace(" ", "~"))
PY
)
missed=0
while read -r i stage target delay marker; do
  marker="${marker//\~/ }"
  out="$tmp/kill$i.h5"; log="$tmp/log_kill$i"
  "$mpiexec" -n 2 "$bin" run --out "$out" "${cfg[@]}" < /dev/null > "$log" 2>&1 &
  mp=$!
  if ! wait_for "$log" "$marker" $mp; then wait $mp || true; bad "kill $i: the run ended before '$marker'"; continue; fi
  sleep "$delay"
  victim=$(rank_pid $mp "$target")
  if [ -z "$victim" ]; then wait $mp || true; missed=$((missed + 1)); echo "note kill $i: run already over"; continue; fi
  at=$(grep -E "^(benchmark|pretext)( epoch|:)|^trial" "$log" | tail -1 | cut -c1-40)
  others=$(descendants $mp | tr '\n' ' ')
  if ! kill -9 "$victim" 2> /dev/null; then # it ended between the lookup and the kill
    wait $mp || true; missed=$((missed + 1)); echo "note kill $i: rank $target ended before the kill"; continue
  fi
  tk=$(now)
  set +e; wait_end $mp; wait $mp; rc=$?; set -e
  took=$(secs "$tk" "$(now)")
  problems=""
  [ "$rc" -ne 0 ] || problems+=" exit status 0;"
  le "$took" 15 || problems+=" the job took ${took}s to end;"
  for p in $others; do alive "$p" && problems+=" rank process $p still alive;"; done
  state=$(file_opens "$out" 2>&1) || problems+=" the results file does not open: $state;"
  if [ -z "$problems" ] && resume_and_compare "kill $i" "$out"; then
    ok "kill $i: -9 to rank $target ${delay}s after '$marker' (last line: ${at:-none}): exit $rc after ${took}s, file: $state; resumed, trials identical"
  elif [ -n "$problems" ]; then
    bad "kill $i: rank $target ${delay}s after '$marker':$problems"; tail -5 "$log"
  fi
  rm -f "$tmp"/kill$i.*
done <<< "$schedule"
echo "kills that came after the run had ended (not counted): $missed"
if [ $((kills - missed)) -ge "$min_landed" ]; then ok "$((kills - missed)) kills landed in running jobs (at least $min_landed)"
else bad "only $((kills - missed)) of $kills kills landed in running jobs (need $min_landed)"; fi

# ---------------------------------------------------------------- 2. signals
# signal_case SIG TARGET STAGE: TARGET is mpirun, rank0 or rank1; STAGE phases or trials.
signal_case() {
  local sig="$1" target="$2" stage="$3" out="$tmp/sig.h5" log="$tmp/log_sig" rc problems=""
  rm -f "$tmp"/sig.* "$log"  # the log too: the wait below must not see the previous case's lines
  "$mpiexec" -n 2 "$bin" run --out "$out" "${cfg[@]}" < /dev/null > "$log" 2>&1 &
  local mp=$!
  local marker="^benchmark epoch 1/"; [ "$stage" = trials ] && marker="^trials: "
  wait_for "$log" "$marker" $mp || { wait $mp || true; bad "SIG$sig to $target in $stage: ended before"; return; }
  local victim=$mp
  [ "$target" = mpirun ] || victim=$(rank_pid $mp "${target#rank}")
  [ -n "$victim" ] || { wait $mp || true; bad "SIG$sig to $target in $stage: rank not found (run over?)"; return; }
  kill -"$sig" "$victim"
  local tk; tk=$(now)
  set +e; wait_end $mp; wait $mp; rc=$?; set -e
  local took; took=$(secs "$tk" "$(now)")
  # Open MPI's mpirun reports 1 when it is itself sent SIGTERM or SIGINT (it then signals the
  # ranks, which save and stop); every other case must give pretext's own 75.
  # MPICH's Hydra mpiexec, sent SIGTERM, SIGINT or SIGUSR1 itself, forwards it to the ranks
  # (which save and exit 75) but then returns 0 or 75, either (each seen with MPICH 4.0.2, for
  # each of the three): its status says nothing there, the file and the message do.
  local want=75 also=75
  [ "$target" = mpirun ] && [ "$sig" != USR1 ] && [ "$launcher" = openmpi ] && want=1 && also=1
  [ "$target" = mpirun ] && [ "$launcher" = hydra ] && also=0
  [ "$rc" -eq "$want" ] || [ "$rc" -eq "$also" ] || problems+=" exit $rc, expected $want;"
  le "$took" 15 || problems+=" took ${took}s to stop;"
  grep -q "interrupted" "$log" || problems+=" no 'interrupted' message;"
  local state; state=$(file_opens "$out" 2>&1) || problems+=" file does not open: $state;"
  case "$state" in 0\ *) ;; *) problems+=" file state '$state' (expected an unfinished, readable file);";; esac
  if [ -n "$problems" ]; then bad "SIG$sig to $target during the $stage:$problems"; grep -v "^;" "$log" | tail -4; return; fi
  resume_and_compare "SIG$sig to $target during the $stage" "$out" \
    && ok "SIG$sig to $target during the $stage: exit $rc after ${took}s, file: $state; resumed, trials identical"
}
# Every signal reaches mpirun and each rank once; phases and trials alternate.
signal_case TERM mpirun phases; signal_case TERM rank0 trials; signal_case TERM rank1 trials
signal_case INT mpirun trials;  signal_case INT rank0 phases;  signal_case INT rank1 phases
signal_case USR1 mpirun trials; signal_case USR1 rank0 phases; signal_case USR1 rank1 trials

# ---------------------------------------------------------------- 3. full disk
# 6 MB: room for the results file with the benchmark's first epoch checkpoint (weights and Adam's
# m and v: 5 MB), not for the next one written beside it.
mkdir -p "$tmp/small_disk"
if mount -t tmpfs -o size=6m tmpfs "$tmp/small_disk" 2>/dev/null; then
  mounted="$tmp/small_disk"
  out="$tmp/small_disk/r.h5"
  set +e; timeout 120 "$mpiexec" -n 2 "$bin" run --out "$out" "${cfg[@]}" < /dev/null > "$tmp/log_full" 2>&1; rc=$?; set -e
  problems=""
  [ "$rc" -eq 1 ] || problems+=" exit $rc, expected 1;"
  grep -q "No space left on device" "$tmp/log_full" || problems+=" no 'No space left on device' message;"
  grep -q "previous contents of $out are intact" "$tmp/log_full" || problems+=" message does not say the file is intact;"
  [ ! -e "$out.tmp" ] || problems+=" $out.tmp left behind;"
  state=$(file_opens "$out" 2>&1) || problems+=" the earlier results do not open: $state;"
  $py -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r'); assert ('phases/42/benchmark' in f and f['phases/42/benchmark/test_accuracy'][()] > 0.2) or int(f['checkpoint/42/benchmark'].attrs['epochs_done']) >= 1" "$out" \
    || problems+=" neither the benchmark nor its checkpoint saved before the disk filled is in the file;"
  if [ -z "$problems" ]; then
    cp "$out" "$tmp/full_copy.h5"
    umount "$tmp/small_disk"; mounted=""
    grep -h "error" "$tmp/log_full" | head -1
    resume_and_compare "full disk" "$tmp/full_copy.h5" && ok "full disk: exit 1 with 'No space left on device', earlier results intact ($state) and resumable"
  else
    bad "full disk:$problems"; tail -5 "$tmp/log_full"
  fi
  [ -n "$mounted" ] && { umount "$tmp/small_disk"; mounted=""; }
else
  bad "full disk: cannot mount a tmpfs (the test must run as root)"
fi

# ---------------------------------------------------------------- 4. divergence
set +e
timeout 120 "$mpiexec" -n 2 "$bin" run --out "$tmp/div.h5" "${cfg[@]}" experiment.learning_rate=1e8 < /dev/null > "$tmp/log_div" 2>&1; rc=$?
set -e
msg=$(grep -m1 -E "loss became (infinite|NaN|not a number|non-finite)" "$tmp/log_div" || true)
if [ "$rc" -eq 1 ] && echo "$msg" | grep -qE "phase '(benchmark|pretext)', epoch [0-9]+, step [0-9]+ of [0-9]+" \
   && echo "$msg" | grep -q "learning_rate"; then
  ok "divergence: exit 1: $msg"
else
  bad "divergence: exit $rc, message: '$msg'"; tail -5 "$tmp/log_div"
fi

echo "e2e_faults: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
