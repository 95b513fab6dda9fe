#!/usr/bin/env bash
# bench.sh: the performance benchmark of issue 5, in one run on this machine:
#   1. the arithmetic limit: OpenBLAS sgemm on large square matrices (`pretext bench --workload
#      sgemm`), one process per core, one thread each, run at the same time (the cores the
#      experiment uses), summed; and one process alone;
#   2. pretext against PyTorch per workload (train64, train1, infer), one thread each,
#      interleaved (scripts/dev/bench-train.sh), images/s and ratios;
#   3. thread layouts and data-parallel scaling: `pretext run` on a small config (benchmark and
#      pretext phases only, run.phase_groups=1) as np=1 x 1 BLAS thread, np=2 x 1 (run.gradient_sum auto, and mpi),
#      np=1 x 2 threads; the images/s of the phases' epoch lines (median of 3 runs), and the
#      np=2 / np=1 ratio (ranks bound to cores, as scripts/run-experiment.sh does);
#   4. peak resident memory per rank (VmHWM) of `pretext run --config configs/smoke.ini` at np=8;
#   5. the whole experiment (configs/session5.ini, or a smaller one with --experiment small)
#      with `mpirun -np $(nproc)`: wall time, its FLOP count (from the effective config stored in
#      the results file), achieved GFLOP/s, and the floor = FLOP / the summed sgemm rate of 1;
#      how busy the ranks were (phase seconds x their group's ranks + trial work, over ranks x
#      the run's seconds) and, with one phase group, the trial phase against work/N + longest.
#
# Usage: scripts/dev/bench.sh [--experiment full|small|none] [--experiment-repeats E] [--seconds S]
#                         [--repeats R] [--np N] [--kernels K | --as-avx2]
#   --experiment  full: configs/session5.ini (minutes); small: session5 on 12,000 images with
#                 2+2 trials; none: skip part 5. Default full.
#   --experiment-repeats E  run part 5 E times (default 1) and analyse the run of median wall
#                 time (on a shared host one run can be 15% off; every wall time is printed)
#   --seconds S   one timed repetition of parts 1-2 (default 2); --repeats R (default 5)
#   --np N        ranks of parts 3 and 5 (default: nproc)
#   --kernels K   pretext's kernel set in every part: auto (default), avx512, avx2, generic
#   --as-avx2     this machine as an AVX2-only CPU in every part (see scripts/dev/bench-train.sh):
#                 the avx2 set, OpenBLAS's Haswell kernels, PyTorch limited to AVX2
#   Environment: PRETEXT_BINARY (default: build/pretext, built if needed), PYTHON
#   (default /usr/bin/python3, which has torch and h5py), MPIRUN (default mpirun).
# Prints one table per part and a summary; raw outputs stay in a temporary folder (printed).
# Exits non-zero only on errors (build, crash), never on a ratio: speed is measured, not asserted.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
experiment=full
experiment_repeats=1
seconds=2
repeats=5
np="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"
python="${PYTHON:-/usr/bin/python3}"
mpirun="${MPIRUN:-mpirun}"
kernels=auto
as_avx2=0

while [ $# -gt 0 ]; do
    case "$1" in
        --experiment) experiment="$2"; shift 2 ;;
        --experiment-repeats) experiment_repeats="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --repeats) repeats="$2"; shift 2 ;;
        --np) np="$2"; shift 2 ;;
        --kernels) kernels="$2"; shift 2 ;;
        --as-avx2) as_avx2=1; kernels=avx2; shift ;;
        -h|--help) sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$experiment" in full|small|none) ;; *) echo "bench.sh: --experiment full|small|none" >&2; exit 2 ;; esac
case "$experiment_repeats" in ''|*[!0-9]*|0) echo "bench.sh: --experiment-repeats needs a whole number >= 1" >&2; exit 2 ;; esac

if [ -z "${PRETEXT_BINARY:-}" ]; then
    if [ ! -x "$repo/build/pretext" ]; then
        echo "bench.sh: building pretext in $repo/build" >&2
        cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    fi
    cmake --build "$repo/build" -j >/dev/null
    PRETEXT_BINARY="$repo/build/pretext"
fi
export PRETEXT_BINARY
pretext="$PRETEXT_BINARY"
[ -x "$pretext" ] || { echo "bench.sh: no program at $pretext" >&2; exit 1; }
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export PRETEXT_KERNELS="$kernels"
if [ "$as_avx2" -eq 1 ]; then
    export OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2 ONEDNN_MAX_CPU_ISA=AVX2
else
    unset OPENBLAS_CORETYPE
fi
export OMPI_ALLOW_RUN_AS_ROOT="${OMPI_ALLOW_RUN_AS_ROOT:-1}" OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}"
# Launcher flags only where the launcher knows them (Open MPI: --oversubscribe, --bind-to;
# MPICH's Hydra: -bind-to, no oversubscription flag needed).
# bind_flags POLICY: the flags that bind ranks by POLICY (core or none) for this launcher.
case "$("$mpirun" --version 2>&1 || true)" in
  *"Open MPI"* | *OpenRTE*) bind_flags() { printf '%s\n' --oversubscribe --bind-to "$1"; } ;;
  *HYDRA* | *MPICH*) bind_flags() { printf '%s\n' -bind-to "$1"; } ;;
  *) bind_flags() { :; } ;;
esac
mapfile -t bind_none < <(bind_flags none)
mapfile -t bind_core < <(bind_flags core)
mpi=("$mpirun" "${bind_none[@]}")
work="$(mktemp -d /tmp/pretext-bench.XXXXXX)"
cores="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"

# Median of the numbers on stdin.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit }
    if (NR % 2) printf "%.2f\n", v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
json_field() { grep -o "\"$1\": [0-9.eE+-]*" | head -1 | awk '{ print $2 }'; }

echo "# scripts/dev/bench.sh, $(date -u '+%Y-%m-%d %H:%M UTC'), $cores cores: $("$pretext" --version | sed -n 's/^cpu: //p')"
echo "# $("$pretext" --version | head -1); kernels: $(PRETEXT_KERNELS="$kernels" "$pretext" --version | sed -n 's/^kernels: \([a-z0-9]*\).*/\1/p')$([ "$as_avx2" -eq 1 ] && echo " (as an AVX2-only CPU: --as-avx2)"); BLAS: $("$pretext" --version | sed -n 's/^blas: //p')"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg); raw outputs in $work"

# ---- 1. arithmetic limit -------------------------------------------------------------------------
echo
echo "## 1. sgemm 2048x2048 (OpenBLAS, 1 thread per process), median of $repeats x ${seconds}s"
"$pretext" bench --workload sgemm --seconds "$seconds" --repeats "$repeats" --json >"$work/sgemm-1.json"
sgemm_one="$(json_field gflop_per_s <"$work/sgemm-1.json")"
for ((c = 0; c < cores; c++)); do
    "$pretext" bench --workload sgemm --seconds "$seconds" --repeats "$repeats" --json >"$work/sgemm-all-$c.json" &
done
wait
sgemm_all="$(for f in "$work"/sgemm-all-*.json; do json_field gflop_per_s <"$f"; done |
    awk '{ s += $1 } END { printf "%.2f", s }')"
printf '%-40s %10s GFLOP/s\n' "one process alone" "$sgemm_one" "$cores processes at once, summed" "$sgemm_all"

# ---- 2. pretext vs PyTorch ---------------------------------------------------------------------
echo
echo "## 2. pretext vs PyTorch, one thread each (scripts/dev/bench-train.sh)"
avx2_flag=()
[ "$as_avx2" -eq 1 ] && avx2_flag=(--as-avx2)
"$repo/scripts/dev/bench-train.sh" --seconds "$seconds" --repeats "$repeats" --kernels "$kernels" "${avx2_flag[@]}" | tee "$work/vs-torch.txt"

# ---- 3. thread layouts and scaling ---------------------------------------------------------------
# Phases only, 9,600 images (7,680 train / 1,920 validation), benchmark 2 epochs + pretext 1.
# run.phase_groups=1: every phase data-parallel over all ranks (what this part measures; auto
# would train the two phases side by side on 2 ranks, one rank each).
scale_cfg=(--config "$repo/configs/session5.ini" data.train_images=9600 benchmark.epochs=2
           pretext.epochs=1 trials.supervised=0 trials.self_supervised=0 run.phase_groups=1)
layout_rate() { # ranks threads gradient_sum rep -> median img/s of the epoch lines
    local ranks="$1" threads="$2" gsum="$3" rep="$4" log="$work/layout-$1x$2-$3-$4.log" bind=core
    [ "$threads" -gt 1 ] && bind=none # BLAS threads need more than one core per rank
    local flags; mapfile -t flags < <(bind_flags "$bind")
    "$mpirun" "${flags[@]}" -np "$ranks" "$pretext" run "${scale_cfg[@]}" \
        run.threads="$threads" run.gradient_sum="$gsum" --out "$work/layout.h5" --force >"$log" 2>&1
    grep -o '[0-9.]* img/s' "$log" | awk '{ print $1 }' | median
}
echo
echo "## 3. thread layouts: pretext run, phases only (9,600 images), epoch-line images/s, median of 3 runs"
layouts=("1 1 auto" "$np 1 auto" "$np 1 mpi" "1 $np auto")
declare -A layout_result
for rep in 1 2 3; do
    for l in "${layouts[@]}"; do
        set -- $l
        echo "$(layout_rate "$1" "$2" "$3" "$rep")" >>"$work/layout-$1x$2-$3.rates"
    done
done
printf '%-40s %12s\n' "ranks x BLAS threads, gradient sum" "images/s"
for l in "${layouts[@]}"; do
    set -- $l
    layout_result["$1x$2-$3"]="$(median <"$work/layout-$1x$2-$3.rates")"
    printf '%-40s %12s\n' "$1 x $2, run.gradient_sum=$3" "${layout_result["$1x$2-$3"]}"
done
scaling="$(awk -v a="${layout_result["${np}x1-auto"]}" -v b="${layout_result["1x1-auto"]}" 'BEGIN { printf "%.2f", a / b }')"
scaling_mpi="$(awk -v a="${layout_result["${np}x1-mpi"]}" -v b="${layout_result["1x1-auto"]}" 'BEGIN { printf "%.2f", a / b }')"
echo "data-parallel scaling np=$np / np=1 (1 BLAS thread per rank): ${scaling}x (gradient_sum=mpi: ${scaling_mpi}x)"

# ---- 4. peak memory per rank at np=8 -------------------------------------------------------------
echo
echo "## 4. peak resident memory per rank (VmHWM), pretext run --config configs/smoke.ini, np=8"
cat >"$work/hwm.sh" <<'EOF'
#!/usr/bin/env bash
# Runs pretext, then prints this rank's peak resident memory from /proc (the process's VmHWM).
"$PRETEXT_BINARY" "$@" &
pid=$!
peak=0
while kill -0 "$pid" 2>/dev/null; do
    kb="$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)"
    [ -n "$kb" ] && [ "$kb" -gt "$peak" ] && peak="$kb"
    sleep 0.05
done
wait "$pid"
echo "VmHWM_kB $peak"
EOF
chmod +x "$work/hwm.sh"
"${mpi[@]}" -np 8 "$work/hwm.sh" run --config "$repo/configs/smoke.ini" --out "$work/rss.h5" --force \
    >"$work/rss.log" 2>&1
rss_max="$(awk '/^VmHWM_kB/ { if ($2 > m) m = $2 } END { printf "%.1f", m / 1024 }' "$work/rss.log")"
echo "per-rank peak (MB): $(awk '/^VmHWM_kB/ { printf "%.0f ", $2 / 1024 }' "$work/rss.log"); max ${rss_max} MB"

# ---- 5. the whole experiment -------------------------------------------------------------------
if [ "$experiment" != none ]; then
    exp_args=(--config "$repo/configs/session5.ini")
    [ "$experiment" = small ] && exp_args+=(data.train_images=12000 trials.supervised=2 trials.self_supervised=2)
    echo
    echo "## 5. the whole experiment ($experiment): mpirun -np $np pretext run ${exp_args[*]#$repo/}"
    : >"$work/experiment-walls.txt"
    for ((rep = 1; rep <= experiment_repeats; rep++)); do
        t0="$(date +%s.%N)"
        "$mpirun" "${bind_core[@]}" -np "$np" "$pretext" run "${exp_args[@]}" --out "$work/experiment-$rep.h5" \
            --force >"$work/experiment-$rep.log" 2>&1
        t1="$(date +%s.%N)"
        echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') $rep" >>"$work/experiment-walls.txt"
    done
    # The run of median wall time (the lower middle one for an even count) is analysed.
    read -r wall chosen < <(sort -g "$work/experiment-walls.txt" | sed -n "$(((experiment_repeats + 1) / 2))p")
    if [ "$experiment_repeats" -gt 1 ]; then
        echo "wall times of $experiment_repeats runs: $(sort -g "$work/experiment-walls.txt" | awk '{ printf "%s%s s", sep, $1; sep = ", " }'); run $chosen (the median) analysed"
    fi
    cp "$work/experiment-$chosen.log" "$work/experiment.log"
    cp "$work/experiment-$chosen.h5" "$work/experiment.h5"
    # FLOP count from the effective config stored in the results file (see docs/performance.md).
    run_seconds="$(sed -n 's/^done in \([0-9.]*\)s.*/\1/p' "$work/experiment.log" | tail -1)"
    # the phase groups the run chose (its "phases: ... on G groups" line; none: 1 group)
    groups="$(sed -n 's/^phases: .* on \([0-9]*\) groups.*/\1/p' "$work/experiment.log" | head -1)"
    "$python" - "$work/experiment.h5" "$wall" "$sgemm_all" "$np" "${run_seconds:-$wall}" "${groups:-1}" <<'EOF' | tee "$work/experiment.txt"
import sys, h5py
path, wall, sgemm = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
ranks, run_seconds, groups = int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
with h5py.File(path, "r") as f:
    c = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f["config"].attrs.items()}
    n_test = 10000
    if "pretext/test_rotations" in f: n_test = len(f["pretext/test_rotations"])
    phase_seconds = [float(f[p + "/seconds"][()]) for p in ("benchmark", "pretext") if p + "/seconds" in f]
    phases = sum(phase_seconds)
    trial_seconds = [float(s) for k in ("supervised", "self_supervised") if "trials/" + k in f
                     for s in f["trials/" + k + "/seconds"][()]]
conv1, conv2, dense1 = 28*28*64*4*2, 14*14*32*256*2, 1568*256*2
def dense2(classes): return 256 * classes * 2
def fwd(k): return conv1 + conv2 + dense1 + dense2(k)
def train(k): return fwd(k) + conv1 + 2 * (conv2 + dense1 + dense2(k))
def frozen(k): return fwd(k) + dense1 + 2 * dense2(k)   # convs frozen: dense1 dW, dense2 dW and dx
split = float(c["experiment.validation_split"])
n_all = int(c["data.train_images"]) or 60000
def phase(n, epochs, k):
    n_val = int(n * split); n_tr = n - n_val
    return epochs * (n_tr * train(k) + n_val * fwd(k)) + n_test * fwd(k)
total = 0.0
if c["benchmark.enabled"] == "true": total += phase(n_all, int(c["benchmark.epochs"]), 10)
total += phase(n_all, int(c["pretext.epochs"]), 4)
lab = int(c["trials.labels"]); lv = int(lab * split); lt = lab - lv
sup = int(c["trials.epochs"]) * (lt * train(10) + lv * fwd(10)) + n_test * fwd(10)
ss = (int(c["downstream.frozen_epochs"]) * (lt * frozen(10) + lv * fwd(10))
      + int(c["downstream.finetune_epochs"]) * (lt * train(10) + lv * fwd(10)) + n_test * fwd(10))
total += int(c["trials.supervised"]) * sup + int(c["trials.self_supervised"]) * ss
floor = total / (sgemm * 1e9)
print(f"FLOP count              {total / 1e12:10.2f} TFLOP")
print(f"wall time               {wall:10.1f} s")
print(f"achieved                {total / wall / 1e9:10.1f} GFLOP/s")
print(f"floor (FLOP / sgemm)    {floor:10.1f} s   (sgemm on all cores: {sgemm:.1f} GFLOP/s)")
print(f"wall / floor            {wall / floor:10.2f}   (target <= 2)")
if trial_seconds:
    work, longest = sum(trial_seconds), max(trial_seconds)
    # every rank's busy time: each phase on its group of ranks/groups ranks, and the trials
    busy = (phases * (ranks // groups) + work) / (ranks * run_seconds)
    print(f"phases                  {' + '.join(f'{x:.1f}' for x in phase_seconds)} s on {groups} group(s) of "
          f"{ranks // groups} rank(s); trials {work:.1f} s of work ({len(trial_seconds)}, longest {longest:.2f} s)")
    print(f"ranks busy              {100 * busy:10.1f} % of the run's {run_seconds:.1f} s")
    if groups == 1:  # the trials start when both phases are over: the trial phase against its bound
        bound = work / ranks + longest
        phase = run_seconds - phases  # the run's own time after the two phases: trials, saving, summary
        print(f"trial phase             {phase:10.1f} s   (bound work/N + longest {bound:.1f} s: "
              f"{phase / bound:.2f}; target <= 1.10)")
EOF
    grep -E '^(benchmark|pretext): test|^done in' "$work/experiment.log" || true
fi

echo
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
