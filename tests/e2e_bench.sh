#!/usr/bin/env bash
# e2e_bench.sh: functional check of `pretext bench` (speed is never asserted): with --json it
# must exit 0 and print one line per workload (train64, train1, infer) with a positive
# images_per_s, min <= median <= max, and repeats as asked; --data reads an MNIST folder and names
# a bad one (exit 1); bad options must give exit code 2.
# ctest sets PRETEXT_BINARY to the built program.
set -u

fail() { echo "e2e_bench: FAIL: $*" >&2; exit 1; }

bin="${PRETEXT_BINARY:-}"
[ -n "$bin" ] && [ -x "$bin" ] || fail "PRETEXT_BINARY is not set to an executable ('$bin')"

out="$("$bin" bench --workload all --seconds 0.2 --repeats 2 --json)"
rc=$?
echo "$out"
[ "$rc" -eq 0 ] || fail "pretext bench exited with $rc"

lines=$(printf '%s\n' "$out" | grep -c '^{')
[ "$lines" -eq 3 ] || fail "expected 3 JSON lines, got $lines"

for workload in train64 train1 infer; do
    line=$(printf '%s\n' "$out" | grep "\"workload\": \"$workload\"")
    [ -n "$line" ] || fail "no line for workload $workload"
    # Pulls the numeric value of a key out of the one-line JSON object.
    field() { printf '%s\n' "$line" | sed -n "s/.*\"$1\": \([-0-9.eE+]*\).*/\1/p"; }
    median=$(field images_per_s); low=$(field min); high=$(field max); repeats=$(field repeats)
    [ -n "$median" ] && [ -n "$low" ] && [ -n "$high" ] || fail "$workload: missing fields: $line"
    awk -v m="$median" -v lo="$low" -v hi="$high" 'BEGIN { exit !(m > 0 && lo > 0 && lo <= m && m <= hi) }' \
        || fail "$workload: expected 0 < min <= images_per_s <= max, got $low, $median, $high"
    [ "$repeats" = 2 ] || fail "$workload: repeats is '$repeats', expected 2"
done

# One workload only: exactly one line, for that workload.
out="$("$bin" bench --workload train1 --seconds 0.1 --repeats 1 --json)" || fail "train1 alone failed"
[ "$(printf '%s\n' "$out" | grep -c '^{')" -eq 1 ] || fail "--workload train1 printed: $out"
printf '%s\n' "$out" | grep -q '"workload": "train1"' || fail "--workload train1 printed: $out"

# The workloads outside `all` run when named, at their own batch.
for pair in train32:32 infer64:64; do
    w="${pair%%:*}" b="${pair##*:}"
    out="$("$bin" bench --workload "$w" --seconds 0.1 --repeats 1 --json)" || fail "$w alone failed"
    printf '%s\n' "$out" | grep -q "\"workload\": \"$w\", \"batch\": $b," || fail "--workload $w printed: $out"
done

# --data: the first training images of an MNIST folder (the JSON says so); a folder without the
# files is an error naming it (exit 1), not a silent fall-back to synthetic data.
data_dir="${PRETEXT_SOURCE_DIR:-.}/data/mnist" # filled by scripts/fetch-data.sh (the test command runs it)
skip_data=0
if [ -e "$data_dir/train-images-idx3-ubyte" ] || [ -e "$data_dir/train-images-idx3-ubyte.gz" ]; then
    out="$("$bin" bench --workload train1 --seconds 0.1 --repeats 1 --json --data "$data_dir")" || fail "--data $data_dir failed"
    printf '%s\n' "$out" | grep -q '"workload": "train1".*"data": "mnist"' || fail "--data printed: $out"
    out="$("$bin" bench --workload train1 --seconds 0.1 --repeats 1 --data "$data_dir")" || fail "--data (table) failed"
    printf '%s\n' "$out" | grep -q "data: first 1024 training images of $data_dir" || fail "--data table header: $out"
else
    skip_data=1
fi
printf '%s\n' "$("$bin" bench --workload train1 --seconds 0.1 --repeats 1 --json)" | grep -q '"data": "synthetic"' \
    || fail "without --data the JSON does not say synthetic"
empty="$(mktemp -d)"
msg="$("$bin" bench --workload train1 --seconds 0.1 --repeats 1 --data "$empty" 2>&1)"
rc=$?
rmdir "$empty"
[ "$rc" -eq 1 ] || fail "--data on an empty folder exited with $rc, expected 1: $msg"
printf '%s\n' "$msg" | grep -q -- "--data $empty" || fail "--data error does not name the folder: $msg"

# Misuse is a usage error (exit 2), not a crash or a silent default.
for bad in "--workload nope" "--repeats 0" "--seconds -1" "--threads x" "--frobnicate" "--seconds" "--data"; do
    # shellcheck disable=SC2086
    "$bin" bench $bad >/dev/null 2>&1
    rc=$?
    [ "$rc" -eq 2 ] || fail "'pretext bench $bad' exited with $rc, expected 2"
done

if [ "$skip_data" -eq 1 ]; then
    echo "SKIP: the rest passed, but $data_dir has no MNIST files (run scripts/fetch-data.sh): --data not checked"
    exit 77
fi
echo "e2e_bench: OK"
