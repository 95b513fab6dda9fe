#!/usr/bin/env bash
# enter.sh HOST CMD [ARG...]: runs CMD on the emulated host HOST of tests/e2e_two_hosts.sh, i.e.
# inside HOST's network namespace, in a new UTS namespace whose hostname is HOST and a new mount
# namespace in which /etc/hosts names both hosts. $TWOHOSTS_DIR holds `map` (lines "HOST NETNS")
# and `hosts` (the /etc/hosts to show); see tests/twohosts/lib.sh.
set -eu
dir="${TWOHOSTS_DIR:?enter.sh: TWOHOSTS_DIR is not set}"
host="${1:?usage: enter.sh HOST CMD [ARG...]}"; shift
ns=$(awk -v h="$host" '$1 == h { print $2 }' "$dir/map")
if [ -z "$ns" ]; then echo "enter.sh: unknown host '$host' (not in $dir/map)" >&2; exit 255; fi
# unshare --mount makes the bind mount private to this process tree (propagation private);
# `ip netns exec` has already given it a mount namespace of its own as well.
# shellcheck disable=SC2016  # expanded by the inner shell
exec ip netns exec "$ns" unshare --uts --mount -- /bin/sh -c \
    'hostname "$1" && mount --bind "$2" /etc/hosts && shift 2 && exec "$@"' \
    enter "$host" "$dir/hosts" "$@"
