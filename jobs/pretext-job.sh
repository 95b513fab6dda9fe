# pretext-job.sh: shared part of the SLURM job scripts (jobs/*.sbatch), sourced, not run.
#
# Finds the pretext program (checkout: ROOT/build/pretext; install: PREFIX/bin/pretext), the
# configuration file and the results file (results/<config name>-<job id>.h5), launches pretext on
# every task of the job (srun with the MPI plugin it lists, pmix > pmi2 > the site's default, or
# mpirun), forwards the time-limit warning (--signal=B:USR1@N reaches only this batch shell) and
# SIGTERM/SIGINT to the job step as SIGUSR1, and turns pretext's "interrupted, resumable" exit
# status 75 into a requeue when the job is requeueable. Environment variables (all optional) are
# described in jobs/README.md; each is listed in pretext_job_usage below.

PRETEXT_JOB_RESUMABLE=75

pretext_job_usage() {
    cat <<'EOF'
usage: sbatch [sbatch options] jobs/session5.sbatch [CONFIG.ini] [section.key=value ...] [--force]
       sbatch --array=0-15 [sbatch options] jobs/sweep.sbatch [CONFIG.ini] [section.key=value ...]

CONFIG.ini is looked up as given (relative to the submission folder), then in the configs
folder beside the job scripts (checkout: configs/, install: PREFIX/share/pretext/configs/).
Environment variables (exported to the job by sbatch):
  PRETEXT_BIN           the pretext program (default: found from the job scripts' location)
  PRETEXT_RESULTS_DIR   results folder (default: SUBMIT_DIR/results)
  PRETEXT_OUT           results file (default: RESULTS_DIR/<config name>-<job id>.h5, array task:
                        <config name>-<array job id>_<task id>.h5); %a is replaced by the array
                        task id, %A by the array job id, %j by the job id. Set it to an existing
                        file to resume that file from a new job.
  PRETEXT_LAUNCHER      srun (default inside a job) or mpirun
  PRETEXT_SRUN_MPI      srun's --mpi plugin (default: from `srun --mpi=list`, pmix if listed, else
                        pmi2, else the site's MpiDefault; set but empty: the site's MpiDefault)
  PRETEXT_GRADIENT_SUM  passed to pretext as run.gradient_sum (auto or mpi; default: the config's)
  PRETEXT_SRUN_ARGS     extra srun options, e.g. "--cpu-bind=cores"
  PRETEXT_MPIRUN_ARGS   extra mpirun options, e.g. "--bind-to core --map-by core"
  PRETEXT_THREADS       BLAS threads per rank (default: SLURM_CPUS_PER_TASK, else 1)
  PRETEXT_REQUEUE       auto (default: requeue on exit 75 if the job is requeueable), 1, 0
  PRETEXT_MAX_REQUEUES  requeues allowed per job (default 10)
  PRETEXT_SWEEP_LABELS  label budgets of the sweep (default "50 150 500 1500")
  PRETEXT_SWEEP_SEEDS   seeds of the sweep (default "42 43 44 45")
  PRETEXT_JOBS_DIR      folder holding this file (only if it cannot be found otherwise)
EOF
}

pretext_job_log() { printf 'pretext-job: %s\n' "$*"; }
pretext_job_die() { printf 'pretext-job: error: %s\n' "$*" >&2; exit "${2:-1}"; }

# The argument looks like section.key=value (same rule as pretext's own).
pretext_job_is_override() {
    case "$1" in
        -*) return 1 ;;
        *=*) local key="${1%%=*}"; case "$key" in *.*) return 0 ;; esac ;;
    esac
    return 1
}

# Folder of the job scripts, the checkout or install root, and the pretext program.
pretext_job_locate() {
    local jobs_dir="$PRETEXT_JOB_DIR"
    PRETEXT_JOB_CONFIGS=""
    if [ -f "$jobs_dir/../CMakeLists.txt" ] && [ -d "$jobs_dir/../src" ]; then
        PRETEXT_JOB_ROOT="$(cd "$jobs_dir/.." && pwd)"              # a checkout
        PRETEXT_JOB_CONFIGS="$PRETEXT_JOB_ROOT/configs"
        : "${PRETEXT_BIN:=$PRETEXT_JOB_ROOT/build/pretext}"
    elif [ -d "$jobs_dir/../configs" ] && [ -d "$jobs_dir/../../../bin" ]; then
        PRETEXT_JOB_ROOT="$(cd "$jobs_dir/../../.." && pwd)"        # PREFIX/share/pretext/jobs
        PRETEXT_JOB_CONFIGS="$PRETEXT_JOB_ROOT/share/pretext/configs"
        : "${PRETEXT_BIN:=$PRETEXT_JOB_ROOT/bin/pretext}"
        # The program looks for its data under the prefix given when it was configured; an
        # install moved with --prefix keeps the data (scripts/fetch-data.sh) beside the scripts.
        if [ -z "${PRETEXT_DATA_DIR:-}" ] && [ -d "$PRETEXT_JOB_ROOT/share/pretext/data/mnist" ]; then
            export PRETEXT_DATA_DIR="$PRETEXT_JOB_ROOT/share/pretext/data/mnist"
        fi
    fi
    if [ -z "${PRETEXT_BIN:-}" ] || [ ! -x "$PRETEXT_BIN" ]; then
        local found
        found="$(command -v pretext || true)"
        [ -n "$found" ] || pretext_job_die "pretext program not found (looked for ${PRETEXT_BIN:-build/pretext or PREFIX/bin/pretext} and on PATH); set PRETEXT_BIN" 2
        PRETEXT_BIN="$found"
    fi
}

# Argument $1 if it names a configuration file: as given, else in the configs folder.
pretext_job_find_config() {
    local arg="$1"
    if [ -f "$arg" ]; then printf '%s\n' "$(cd "$(dirname "$arg")" && pwd)/$(basename "$arg")"; return 0; fi
    if [ -n "$PRETEXT_JOB_CONFIGS" ]; then
        local candidate
        for candidate in "$PRETEXT_JOB_CONFIGS/${arg#configs/}" "$PRETEXT_JOB_CONFIGS/$(basename "$arg")"; do
            if [ -f "$candidate" ]; then printf '%s\n' "$candidate"; return 0; fi
        done
    fi
    return 1
}

# Runs "$@" in the background and waits for it; SIGUSR1, SIGTERM and SIGINT received by this
# shell are sent to it as SIGUSR1 (pretext stops at the next step and saves; srun and mpirun
# forward SIGUSR1 to every rank). Sets PRETEXT_JOB_STATUS to its exit status.
pretext_job_run_forwarding() {
    "$@" &
    PRETEXT_JOB_CHILD=$!
    trap 'pretext_job_forward USR1' USR1
    trap 'pretext_job_forward TERM' TERM
    trap 'pretext_job_forward INT' INT
    local status previous=0
    while :; do
        PRETEXT_JOB_WOKEN=0
        wait "$PRETEXT_JOB_CHILD"
        status=$?
        if [ "$PRETEXT_JOB_WOKEN" = 1 ] && [ "$status" -gt 128 ]; then
            previous=$status        # a trapped signal ended the wait, not the launcher
            continue
        fi
        # 127: the launcher's status was already collected by the interrupted wait.
        if [ "$status" = 127 ] && [ "$previous" -gt 128 ]; then status=$previous; fi
        break
    done
    trap - USR1 TERM INT
    PRETEXT_JOB_STATUS=$status
}

pretext_job_forward() {
    PRETEXT_JOB_WOKEN=1
    pretext_job_log "$(date +%T) got SIG$1: asking pretext to save and stop (SIGUSR1 to pid $PRETEXT_JOB_CHILD)"
    kill -USR1 "$PRETEXT_JOB_CHILD" 2>/dev/null || true
}

# Requeue this job after exit 75 if it is requeueable (sbatch --requeue, or the site's
# JobRequeue=1) and PRETEXT_REQUEUE allows it, at most PRETEXT_MAX_REQUEUES times.
pretext_job_maybe_requeue() {
    local mode="${PRETEXT_REQUEUE:-auto}" max="${PRETEXT_MAX_REQUEUES:-10}"
    local restarts="${SLURM_RESTART_COUNT:-0}"
    [ -n "${SLURM_JOB_ID:-}" ] || return 1
    case "$mode" in
        0|no|false) return 1 ;;
        auto) [[ "$(scontrol show job "$SLURM_JOB_ID" 2>/dev/null || true)" =~ (^|[[:space:]])Requeue=1([[:space:]]|$) ]] || return 1 ;;
    esac
    if [ "$restarts" -ge "$max" ]; then
        pretext_job_log "not requeued: already restarted $restarts times (PRETEXT_MAX_REQUEUES=$max)"
        return 1
    fi
    local id="$SLURM_JOB_ID"
    if [ -n "${SLURM_ARRAY_JOB_ID:-}" ]; then id="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"; fi
    pretext_job_log "requeueing job $id (restart $((restarts + 1)) of at most $max): it resumes from the results file"
    scontrol requeue "$id"
}

# The MPI plugins `srun --mpi=list` names, one per line: the single-word lines of its list (with or
# without an "srun: " prefix, as older Slurm prints it) and the versions after "available:".
pretext_job_srun_mpi_list() {
    srun --mpi=list 2>&1 | awk '{
        sub(/^srun: */, "")
        if (sub(/.*available: */, "")) { gsub(/,/, " "); n = split($0, a, " "); for (i = 1; i <= n; i++) print a[i] }
        else if (NF == 1 && $1 !~ /[.:]$/) print $1
    }'
}

# srun's --mpi= plugin: PRETEXT_SRUN_MPI if set (empty: none given, the site's MpiDefault), else
# pmix if srun lists it (or a versioned pmix_vN), else pmi2, else the site's default. Sets
# PRETEXT_JOB_SRUN_MPI and PRETEXT_JOB_SRUN_MPI_WHY (for the log).
pretext_job_pick_srun_mpi() {
    if [ -n "${PRETEXT_SRUN_MPI+set}" ]; then
        PRETEXT_JOB_SRUN_MPI="$PRETEXT_SRUN_MPI"
        PRETEXT_JOB_SRUN_MPI_WHY="PRETEXT_SRUN_MPI"
        return 0
    fi
    local list
    list="$(pretext_job_srun_mpi_list || true)"
    PRETEXT_JOB_SRUN_MPI_WHY="srun --mpi=list: $(printf '%s' "$list" | tr '\n' ' ')"
    if printf '%s\n' "$list" | grep -qx pmix; then
        PRETEXT_JOB_SRUN_MPI=pmix
    elif printf '%s\n' "$list" | grep -qx 'pmix_v[0-9]*'; then
        PRETEXT_JOB_SRUN_MPI="$(printf '%s\n' "$list" | grep -x 'pmix_v[0-9]*' | sort -V | tail -n 1)"
    elif printf '%s\n' "$list" | grep -qx pmi2; then
        PRETEXT_JOB_SRUN_MPI=pmi2
    else
        PRETEXT_JOB_SRUN_MPI=""
    fi
}

# Entry point. $1: "single" or "sweep" (one file per array task, seed and label budget from
# SLURM_ARRAY_TASK_ID); then the job script's arguments.
pretext_job_main() {
    local kind="$1"; shift
    case "${1:-}" in -h|--help) pretext_job_usage; exit 0 ;; esac
    pretext_job_locate

    local config="" args=()
    if [ $# -gt 0 ] && ! pretext_job_is_override "$1" && [ "${1#-}" = "$1" ]; then
        config="$(pretext_job_find_config "$1")" || pretext_job_die "configuration file $1 not found (nor in ${PRETEXT_JOB_CONFIGS:-a configs folder})" 2
        shift
    fi
    args=("$@")

    local submit_dir="${SLURM_SUBMIT_DIR:-$PWD}"
    local results_dir="${PRETEXT_RESULTS_DIR:-$submit_dir/results}"
    # results/<config name>-<job id>.h5: two submissions never share a file; a requeued job keeps
    # its id (and an array task its array id and task id), so it resumes its own file.
    local config_name=session5 # pretext's built-in defaults are configs/session5.ini
    if [ -n "$config" ]; then config_name="$(basename "$config" .ini)"; fi
    local job_tag
    if [ -n "${SLURM_ARRAY_JOB_ID:-}" ]; then
        job_tag="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID:-0}"
    elif [ -n "${SLURM_JOB_ID:-}" ]; then
        job_tag="$SLURM_JOB_ID"
    else
        job_tag="local-$(date +%Y%m%d-%H%M%S)-$$"
    fi
    local out="${PRETEXT_OUT:-}"
    out="${out//%a/${SLURM_ARRAY_TASK_ID:-0}}"
    out="${out//%A/${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-}}}"
    out="${out//%j/${SLURM_JOB_ID:-}}"
    local sweep_args=()
    if [ "$kind" = sweep ]; then
        local task="${SLURM_ARRAY_TASK_ID:-0}"
        local labels seeds
        read -r -a labels <<< "${PRETEXT_SWEEP_LABELS:-50 150 500 1500}"
        read -r -a seeds <<< "${PRETEXT_SWEEP_SEEDS:-42 43 44 45}"
        local n=$(( ${#labels[@]} * ${#seeds[@]} ))
        [ "$task" -lt "$n" ] || pretext_job_die "array task $task out of range: the sweep has ${#labels[@]} label budgets x ${#seeds[@]} seeds = $n tasks (--array=0-$((n - 1)))" 2
        local label="${labels[$((task % ${#labels[@]}))]}" seed="${seeds[$((task / ${#labels[@]}))]}"
        sweep_args=("trials.labels=$label" "experiment.seed=$seed")
        pretext_job_log "sweep task $task of $n: trials.labels=$label experiment.seed=$seed"
    fi
    : "${out:=$results_dir/$config_name-$job_tag.h5}"
    mkdir -p "$(dirname "$out")" || pretext_job_die "cannot create the results folder $(dirname "$out")" 2
    if [ -e "$out" ]; then
        pretext_job_log "results file $out exists: pretext resumes it"
    fi

    local threads="${PRETEXT_THREADS:-${SLURM_CPUS_PER_TASK:-1}}"
    export OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" BLIS_NUM_THREADS="$threads" \
           MKL_NUM_THREADS="$threads"

    local launcher="${PRETEXT_LAUNCHER:-}"
    if [ -z "$launcher" ]; then
        if [ -n "${SLURM_JOB_ID:-}" ] && command -v srun >/dev/null; then launcher=srun; else launcher=mpirun; fi
    fi
    local launch=() extra=()
    case "$launcher" in
        srun)
            launch=(srun)
            pretext_job_pick_srun_mpi
            if [ -n "$PRETEXT_JOB_SRUN_MPI" ]; then
                launch+=("--mpi=$PRETEXT_JOB_SRUN_MPI")
                pretext_job_log "srun MPI plugin: $PRETEXT_JOB_SRUN_MPI ($PRETEXT_JOB_SRUN_MPI_WHY)"
            else
                pretext_job_log "srun MPI plugin: the site's default, no --mpi ($PRETEXT_JOB_SRUN_MPI_WHY)"
            fi
            # Since Slurm 22.05 srun does not inherit sbatch's --cpus-per-task: pass it on.
            if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then launch+=("--cpus-per-task=$SLURM_CPUS_PER_TASK"); fi
            read -r -a extra <<< "${PRETEXT_SRUN_ARGS:-}"
            launch+=("${extra[@]}") ;;
        mpirun)
            read -r -a extra <<< "${PRETEXT_MPIRUN_ARGS:-}"
            launch=(mpirun "${extra[@]}") ;;
        *) pretext_job_die "PRETEXT_LAUNCHER must be srun or mpirun, not '$launcher'" 2 ;;
    esac

    local cmd=("${launch[@]}" "$PRETEXT_BIN" run)
    if [ -n "$config" ]; then cmd+=(--config "$config"); fi
    cmd+=(--out "$out" "run.threads=$threads")
    # The gradient sum of the data-parallel phases (pretext logs "gradient sum: ..." per phase);
    # the job's own run.gradient_sum=... arguments come later and win.
    if [ -n "${PRETEXT_GRADIENT_SUM:-}" ]; then cmd+=("run.gradient_sum=$PRETEXT_GRADIENT_SUM"); fi
    cmd+=("${args[@]}" "${sweep_args[@]}")

    pretext_job_log "job ${SLURM_JOB_ID:-(none)} on ${SLURM_JOB_NODELIST:-$(hostname)}, ${SLURM_NTASKS:-?} tasks, $threads BLAS thread(s) per rank, restart ${SLURM_RESTART_COUNT:-0}"
    pretext_job_log "$(date +%T) running: ${cmd[*]}"
    pretext_job_run_forwarding "${cmd[@]}"
    local status=$PRETEXT_JOB_STATUS
    pretext_job_log "$(date +%T) pretext exited with status $status"
    # A launcher's 0 is checked against the file: MPICH's Hydra mpiexec can return 0 after a
    # signal stopped the ranks (docs/reliability.md). A file that is not complete makes it 75.
    if [ "$status" = 0 ]; then
        local check check_status=0
        check="$("$PRETEXT_BIN" status "$out" 2>&1)" || check_status=$?
        check="${check%%$'\n'*}" # its first line
        if [ "$check_status" = "$PRETEXT_JOB_RESUMABLE" ]; then
            pretext_job_log "the launcher returned 0, but $check: treating the run as interrupted (status $PRETEXT_JOB_RESUMABLE)"
            status=$PRETEXT_JOB_RESUMABLE
        elif [ "$check_status" != 0 ]; then
            pretext_job_log "the launcher returned 0, but the results file cannot be checked: $check"
        fi
    fi
    case "$status" in
        0) pretext_job_log "done: $out" ;;
        "$PRETEXT_JOB_RESUMABLE")
            pretext_job_log "interrupted, $out is consistent; to resume it from a new job: PRETEXT_OUT=$out sbatch <the same arguments>"
            pretext_job_maybe_requeue || true ;;
    esac
    exit "$status"
}
