#!/usr/bin/env bash
# e2e_readonly_fs.sh: results asked for on a read-only file system are refused before any work,
# on every rank (tests/lib_expect_fail.sh: status 1 on both ranks, within seconds, the message
# "cannot write results file '…/ro/r.h5': the folder '…/ro' is not writable (Read-only file
# system)", no training). Root ignores permission bits, so the folder must really be read-only: a
# read-only tmpfs (root, or inside a private user and mount namespace made with `unshare` when
# that is allowed), or else a read-only bind mount. Where no such mount can be made the test
# reports itself SKIPPED (status 77) with the reasons: it cannot pass without having run.
# (Split from tests/e2e_bad_input.sh, whose cases all run anywhere.)
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
bin="${PRETEXT_BINARY:-$src/build/pretext}"
tmp="$(mktemp -d)"
ro="$tmp/ro"
mounted=""
cleanup() { if [ -n "$mounted" ]; then umount "$mounted" 2>/dev/null || true; fi; rm -rf "$tmp"; }
trap cleanup EXIT
mkdir -p "$ro"

why=""
try_mount() { # a read-only folder at $ro; 0 if made
  local e
  if e=$(mount -t tmpfs -o size=1m,ro tmpfs "$ro" 2>&1); then mounted="$ro"; echo "read-only tmpfs at $ro"; return 0; fi
  why+="mount -t tmpfs -o ro: ${e%%$'\n'*}; "
  mkdir -p "$tmp/ro-src"
  if e=$(mount --bind "$tmp/ro-src" "$ro" 2>&1); then
    mounted="$ro"
    if e=$(mount -o remount,bind,ro "$ro" 2>&1); then echo "read-only bind mount at $ro"; return 0; fi
    why+="mount -o remount,bind,ro: ${e%%$'\n'*}; "
    umount "$ro" 2>/dev/null || true; mounted=""
  else
    why+="mount --bind: ${e%%$'\n'*}; "
  fi
  return 1
}
if ! try_mount; then
  # Not privileged: the same inside a private user and mount namespace, if the system allows one.
  if [ -z "${PRETEXT_RO_IN_NAMESPACE:-}" ] && command -v unshare > /dev/null \
     && unshare --user --map-root-user --mount true 2> /dev/null; then
    echo "no mount here ($why); trying again in a private namespace (unshare --user --map-root-user --mount)"
    rm -rf "$tmp"; trap - EXIT
    exec env PRETEXT_RO_IN_NAMESPACE=1 unshare --user --map-root-user --mount bash "${BASH_SOURCE[0]}"
  fi
  [ -n "${PRETEXT_RO_IN_NAMESPACE:-}" ] || why+="unshare --user --map-root-user --mount: not allowed or not installed; "
  echo "SKIPPED: cannot make a read-only folder here: ${why%; }"
  echo "         (the read-only file system case did not run; run as root, or allow user namespaces)"
  exit 77
fi
# The mount really is read-only (else the test would test nothing).
if touch "$ro/probe" 2> /dev/null; then echo "FAIL: $ro is writable after mounting it read-only"; exit 1; fi

if [ -n "${PRETEXT_RO_IN_NAMESPACE:-}" ]; then
  # Root in the namespace is another user outside it: keep Open MPI's session folder (under
  # TMPDIR, named after the user id 0) away from the real root's.
  mkdir -p "$tmp/tmpdir"; export TMPDIR="$tmp/tmpdir"
fi
source "$src/tests/lib_expect_fail.sh"
small_run_inputs
launch expect_fail "out: read-only file system" 1 \
  "cannot write results file '$ro/r.h5': the folder '$ro' is not writable \(Read-only file system\)" \
  run --config "$tmp/ok.ini" --out "$ro/r.h5"
finish_cases e2e_readonly_fs
