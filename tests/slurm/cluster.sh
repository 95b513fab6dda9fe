# cluster.sh: a private one-node Slurm cluster for the tests, sourced by tests/e2e_slurm*.sh.
#
#   slurm_up DIR          start munged, slurmctld and slurmd with configs and state under DIR
#                         (node "pretextnode" at 127.0.0.1, CPUs=8, free ports); exports SLURM_CONF
#   slurm_down            stop exactly the daemons slurm_up started (by pid), wait for them to end
#   slurm_submit ARGS...  sbatch --parsable ARGS; prints the job id
#   slurm_wait ID SECS    poll squeue until job ID (all its array tasks) left the queue
#   slurm_field ID KEY    KEY=value from `scontrol show job ID` (first task of an array if ID_T)
#
# Needs root (SlurmUser=root), Debian's slurm-wlm and munge, no systemd and no cgroups:
# proctrack/linuxproc, task/none, no accounting. Call slurm_down from an EXIT trap.

SLURM_TEST_PIDS=()

slurm_fail() { echo "FAIL: $*" >&2; exit 1; }

slurm_free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to $2 seconds for pid file $1 and prints the pid in it.
slurm_wait_pidfile() {
    local file="$1" deadline=$((SECONDS + $2)) pid=""
    while [ $SECONDS -lt $deadline ]; do
        if [ -s "$file" ]; then
            pid="$(tr -d ' \n' < "$file")"
            if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; return 0; fi
        fi
        sleep 0.1
    done
    return 1
}

slurm_up() {
    local dir="$1"
    PATH="$PATH:/usr/sbin:/sbin"      # the daemons and mungekey live there
    local needed
    for needed in munged mungekey slurmctld slurmd sbatch squeue scontrol scancel sinfo srun; do
        command -v "$needed" >/dev/null || slurm_fail "$needed not installed (Debian packages slurm-wlm and munge: scripts/setup.sh)"
    done
    [ "$(id -u)" = 0 ] || slurm_fail "the Slurm tests start slurmd, which must run as root"
    mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
    chmod 0711 "$dir/munge"
    # munged: own key, socket, pid and log files; socket folder 0711, key 0400.
    mungekey --create --keyfile="$dir/munge/munge.key" --force >/dev/null 2>&1 \
        || dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 0400 "$dir/munge/munge.key"
    munged --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
        --seed-file="$dir/munge/munged.seed" --force >/dev/null 2>&1 \
        || { cat "$dir/log/munged.log" >&2 2>/dev/null; slurm_fail "munged did not start"; }
    local pid
    pid="$(slurm_wait_pidfile "$dir/munge/munged.pid" 10)" || slurm_fail "munged wrote no pid file"
    SLURM_TEST_PIDS+=("$pid")

    local host ctld_port slurmd_port
    host="$(hostname -s)"
    ctld_port="$(slurm_free_port)"; slurmd_port="$(slurm_free_port)"
    while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port="$(slurm_free_port)"; done
    cat > "$dir/slurm.conf" <<EOF
# Private test cluster written by tests/slurm/cluster.sh.
ClusterName=pretexttest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=10
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MpiDefault=pmix
ReturnToService=2
JobRequeue=0
MinJobAge=600
SchedulerParameters=sched_interval=2
KillWait=10
NodeName=pretextnode NodeAddr=127.0.0.1 NodeHostname=$host CPUs=8 RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=pretextnode Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -i -f "$SLURM_CONF" || slurm_fail "slurmctld did not start: $(tail -n 20 "$dir/log/slurmctld.log" 2>/dev/null)"
    pid="$(slurm_wait_pidfile "$dir/slurmctld.pid" 20)" || slurm_fail "slurmctld wrote no pid file: $(tail -n 20 "$dir/log/slurmctld.log")"
    SLURM_TEST_PIDS+=("$pid")
    slurmd -f "$SLURM_CONF" -N pretextnode || slurm_fail "slurmd did not start: $(tail -n 20 "$dir/log/slurmd.log" 2>/dev/null)"
    pid="$(slurm_wait_pidfile "$dir/slurmd.pid" 20)" || slurm_fail "slurmd wrote no pid file: $(tail -n 20 "$dir/log/slurmd.log")"
    SLURM_TEST_PIDS+=("$pid")
    # The node must be idle before jobs can start.
    local deadline=$((SECONDS + 30)) state=""
    while [ $SECONDS -lt $deadline ]; do
        state="$(sinfo -h -n pretextnode -o %T 2>/dev/null || true)"
        case "$state" in idle*) return 0 ;; esac
        sleep 0.2
    done
    slurm_fail "node not idle after 30 s (state '$state'): $(tail -n 20 "$dir/log/slurmd.log")"
}

slurm_down() {
    local i pid
    # Cancel this cluster's jobs first so that slurmstepd and the ranks end with them.
    if [ -n "${SLURM_CONF:-}" ] && [ "${#SLURM_TEST_PIDS[@]}" -ge 3 ]; then
        scancel --full --user="$(id -un)" 2>/dev/null || true
        local wait_until=$((SECONDS + 20))
        while [ $SECONDS -lt $wait_until ] && [ -n "$(squeue -h -o %i 2>/dev/null)" ]; do sleep 0.5; done
    fi
    # Reverse order: slurmd, slurmctld, munged. Only the pids slurm_up recorded.
    for ((i = ${#SLURM_TEST_PIDS[@]} - 1; i >= 0; i--)); do
        pid="${SLURM_TEST_PIDS[$i]}"
        kill -TERM "$pid" 2>/dev/null || true
    done
    local deadline=$((SECONDS + 15)) alive
    while [ $SECONDS -lt $deadline ]; do
        alive=0
        for pid in "${SLURM_TEST_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.2
    done
    for pid in "${SLURM_TEST_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    SLURM_TEST_PIDS=()
}

slurm_submit() {
    local out
    out="$(sbatch --parsable "$@")" || slurm_fail "sbatch $* failed: $out"
    echo "${out%%;*}"
}

slurm_wait() {
    local id="$1" deadline=$((SECONDS + $2))
    while [ -n "$(squeue -h -j "$id" -o %i 2>/dev/null)" ]; do
        [ $SECONDS -lt $deadline ] || { squeue -j "$id" >&2; scontrol show job "$id" >&2; slurm_fail "job $id still queued after $2 s"; }
        sleep 1
    done
}

slurm_field() {
    scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}
