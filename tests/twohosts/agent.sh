#!/usr/bin/env bash
# agent.sh: the "ssh" of Open MPI's rsh launcher for the emulated hosts of tests/e2e_two_hosts.sh
# (mpirun --mca plm_rsh_agent .../agent.sh). Called like ssh: `agent.sh [OPTIONS] HOST WORD...`;
# the words form one command line for the remote shell (Open MPI quotes them for it), run here
# with /bin/sh -c inside HOST's namespaces. The environment is inherited from mpirun (unlike ssh).
set -eu
while [ $# -gt 0 ]; do            # ssh-style options Open MPI may add (e.g. -x): ignored
    case "$1" in
        -l|-p|-o|-i|-F) shift 2 ;;
        -*) shift ;;
        *) break ;;
    esac
done
host="${1:?usage: agent.sh [OPTIONS] HOST COMMAND...}"; shift
exec "$(dirname "$(readlink -f "$0")")/enter.sh" "$host" /bin/sh -c "$*"
