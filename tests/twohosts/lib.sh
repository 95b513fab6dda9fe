# shellcheck shell=bash disable=SC2034  # TH_* are used by the sourcing script
# lib.sh: two emulated hosts on one machine for tests/e2e_two_hosts.sh (sourced, bash).
#
# Each host is a network namespace (ip netns) of its own; every process started on it by
# enter.sh also gets its own UTS namespace (hostname = the host's name) and mount namespace
# (/etc/hosts naming both hosts). The namespaces are joined by a veth pair with addresses in
# TH_SUBNET. Open MPI runs across them over TCP, launched by mpirun on host A through agent.sh,
# which stands in for ssh. All names contain the shell's PID ($$), so parallel or leftover runs
# cannot collide; the veth ends are created inside the namespaces and never exist outside.
#
#   th_setup DIR      builds the hosts (state files in DIR); on failure sets TH_SKIP_REASON and
#                     returns 1 (the test then exits 77); call th_cleanup from an EXIT trap
#   th_on HOST CMD..  runs CMD on host HOST ($TH_A or $TH_B)
#   th_mpirun HOSTFILE MPIRUN_ARG..   mpirun on host A with the options in TH_MPI_OPTS, killed
#                     after TH_TIMEOUT seconds (default 120; status 124 then)
#   th_pids HOST [COMM]   PIDs of the processes on HOST (only those named COMM)
#   th_cleanup        kills every process in the namespaces, deletes them (and the veth pair)

TH_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TH_A="pt2ha-$$"                 # host names = hostnames seen by the processes
TH_B="pt2hb-$$"
TH_NS_A="pretext-2h-a-$$"       # network namespaces
TH_NS_B="pretext-2h-b-$$"
TH_VETH_A="vpa$$"               # veth ends (inside the namespaces only)
TH_VETH_B="vpb$$"
# Private subnet: it exists only inside the two namespaces, so it cannot clash with the machine's
# networks or with another run's (each run has namespaces of its own).
TH_SUBNET="10.213.0.0/24"
TH_IP_A="10.213.0.1"
TH_IP_B="10.213.0.2"
TH_SKIP_REASON=""
TH_MADE=()

th_skip() { TH_SKIP_REASON="$*"; return 1; }

th_setup() {
    local dir="$1" c
    [ "$(id -u)" = 0 ] || { th_skip "not root (network namespaces and hostnames need root)"; return 1; }
    for c in ip unshare mount hostname awk mpirun; do
        command -v "$c" > /dev/null || { th_skip "'$c' not found"; return 1; }
    done
    ip netns add "$TH_NS_A" 2> "$dir/netns.err" || { th_skip "ip netns add failed: $(cat "$dir/netns.err")"; return 1; }
    TH_MADE+=("$TH_NS_A")
    ip netns add "$TH_NS_B" 2> "$dir/netns.err" || { th_skip "ip netns add failed: $(cat "$dir/netns.err")"; return 1; }
    TH_MADE+=("$TH_NS_B")
    if ! { ip -n "$TH_NS_A" link add "$TH_VETH_A" type veth peer name "$TH_VETH_B" netns "$TH_NS_B" &&
           ip -n "$TH_NS_A" addr add "$TH_IP_A/24" dev "$TH_VETH_A" &&
           ip -n "$TH_NS_B" addr add "$TH_IP_B/24" dev "$TH_VETH_B" &&
           ip -n "$TH_NS_A" link set lo up && ip -n "$TH_NS_B" link set lo up &&
           ip -n "$TH_NS_A" link set "$TH_VETH_A" up && ip -n "$TH_NS_B" link set "$TH_VETH_B" up; } \
           2> "$dir/netns.err"; then
        th_skip "cannot connect the namespaces with a veth pair: $(cat "$dir/netns.err")"; return 1
    fi
    export TWOHOSTS_DIR="$dir"
    printf '%s %s\n%s %s\n' "$TH_A" "$TH_NS_A" "$TH_B" "$TH_NS_B" > "$dir/map"
    { grep -v -w -e "$TH_A" -e "$TH_B" /etc/hosts 2>/dev/null || true
      printf '%s %s\n%s %s\n' "$TH_IP_A" "$TH_A" "$TH_IP_B" "$TH_B"; } > "$dir/hosts"
    printf '%s slots=2\n%s slots=2\n' "$TH_A" "$TH_B" > "$dir/hostfile.two"
    printf '%s slots=4\n' "$TH_A" > "$dir/hostfile.one"
    local h
    for h in "$TH_A" "$TH_B"; do
        c=$(th_on "$h" hostname 2> "$dir/netns.err") || { th_skip "cannot enter host $h (unshare --uts --mount): $(cat "$dir/netns.err")"; return 1; }
        [ "$c" = "$h" ] || { th_skip "hostname inside the UTS namespace is '$c', expected '$h'"; return 1; }
    done
    [ "$(hostname)" != "$TH_A" ] || { th_skip "setting a hostname changed the machine's own"; return 1; }
    # Open MPI: processes launched by rsh (agent.sh) instead of ssh; TCP between hosts restricted
    # to the veth subnet (OOB: mpirun <-> orted; BTL: MPI messages); shared memory (vader) within
    # a host; ob1 so the tcp/vader BTLs carry everything; no busy polling and no binding, since
    # 4 ranks share 2 cores.
    # shellcheck disable=SC2054  # "self,vader,tcp" is one argument
    TH_MPI_OPTS=(--mca plm rsh --mca plm_rsh_agent "$TH_HERE/agent.sh"
                 --mca oob_tcp_if_include "$TH_SUBNET" --mca btl_tcp_if_include "$TH_SUBNET"
                 --mca pml ob1 --mca btl self,vader,tcp
                 --mca mpi_yield_when_idle 1 --bind-to none)
    return 0
}

th_on() {
    local host="$1"; shift
    env -u PRETEXT_NODE_SIZE "$TH_HERE/enter.sh" "$host" "$@"
}

th_mpirun() {
    local hostfile="$1"; shift
    timeout -k 5 "${TH_TIMEOUT:-120}" env -u PRETEXT_NODE_SIZE "$TH_HERE/enter.sh" "$TH_A" mpirun --hostfile "$hostfile" "${TH_MPI_OPTS[@]}" "$@"
}

th_pids() {
    local host="$1" comm="${2:-}" ns p
    [ "$host" = "$TH_A" ] && ns="$TH_NS_A" || ns="$TH_NS_B"
    for p in $(ip netns pids "$ns" 2>/dev/null); do
        if [ -z "$comm" ] || [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$comm" ]; then echo "$p"; fi
    done
}

th_cleanup() {
    local ns p left
    for ns in "${TH_MADE[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            left=$(ip netns pids "$ns" 2>/dev/null)
            [ -n "$left" ] || break
            for p in $left; do kill -9 "$p" 2>/dev/null || true; done
            sleep 0.2
        done
        [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] || echo "twohosts: processes left in $ns: $(ip netns pids "$ns" | tr '\n' ' ')" >&2
        ip netns del "$ns" 2>/dev/null || echo "twohosts: could not delete namespace $ns" >&2
    done
    TH_MADE=()
}
