#!/usr/bin/env bash
# e2e_bad_input.sh: every kind of bad input given to the real program under mpiexec -n 2 (issue 6):
# broken IDX files (each way), gzip corrupt/truncated, empty file, a folder where a file belongs;
# configuration files with unknown or duplicate keys, wrong types, out-of-range values and syntax
# errors; command-line misuse; an output path that is a folder, unwritable or in a missing folder;
# resuming from a file of another configuration, a truncated HDF5 file or an HDF5 file pretext did
# not write. Each case must: end within seconds (timeout 60 as a backstop) with a non-zero status
# on EVERY rank (each rank's own exit status is recorded by a wrapper), print a message naming the
# file / line / key, and leave the results file that was already there byte for byte unchanged.
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
bin="${PRETEXT_BINARY:-$src/build/pretext}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
tmp="$(mktemp -d)"
mounted=""
cleanup() { [ -n "$mounted" ] && umount "$mounted" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
max_seconds=20
passed=0; failed=0

# A small data folder (1000 training, 500 test images) and a finished results file made from it.
python3 "$src/tests/idx_tool.py" small "$src/data/mnist" "$tmp/data" 1000 500
cat > "$tmp/ok.ini" <<EOF
[data]
dir = $tmp/data
[benchmark]
epochs = 1
[pretext]
epochs = 1
[trials]
supervised = 1
self_supervised = 1
labels = 40
epochs = 1
[downstream]
frozen_epochs = 1
finetune_epochs = 0
EOF
out="$tmp/results.h5"
mpiexec -n 2 "$bin" run --quiet --config "$tmp/ok.ini" --out "$out" > "$tmp/log_ref" 2>&1 \
  || { cat "$tmp/log_ref"; echo "FAIL: the reference run failed"; exit 1; }
sums() { sha256sum "$out" "$tmp/results.benchmark.weights.h5" "$tmp/results.pretext.weights.h5"; }
sums > "$tmp/sums_ref"

# expect_fail NAME EXPECTED_STATUS PATTERN ARGS...: runs `pretext ARGS` on 2 ranks; EXPECTED_STATUS
# is the status every rank must return (or "nz": any non-zero); PATTERN (grep -E) must appear in the
# output; the results file and weights files must be unchanged; no training may have started.
expect_fail() {
  local name="$1" want="$2" pattern="$3"; shift 3
  local rcdir="$tmp/rc_$passed$failed"; mkdir -p "$rcdir"
  local t0 t1 rc problems=""
  t0=$(date +%s.%N)
  set +e
  timeout 60 mpiexec -n 2 bash -c 'trap "" TERM INT; "$@"; rc=$?; echo $rc > "'"$rcdir"'/rank.$OMPI_COMM_WORLD_RANK"; exit $rc' \
    rankwrap "$bin" "$@" > "$tmp/log" 2>&1
  rc=$?
  set -e
  t1=$(date +%s.%N)
  local secs; secs=$(python3 -c "print(round($t1 - $t0, 1))")
  [ "$rc" -ne 0 ] || problems+=" mpiexec exited 0;"
  [ "$rc" -ne 124 ] || problems+=" timed out (a rank hangs);"
  python3 -c "import sys; sys.exit(0 if $secs <= $max_seconds else 1)" || problems+=" took ${secs}s (> ${max_seconds}s);"
  for r in 0 1; do
    if [ ! -f "$rcdir/rank.$r" ]; then
      problems+=" rank $r did not exit by itself;"
    else
      local rr; rr=$(cat "$rcdir/rank.$r")
      if [ "$want" = nz ]; then [ "$rr" -ne 0 ] || problems+=" rank $r exited 0;"
      else [ "$rr" -eq "$want" ] || problems+=" rank $r exited $rr, expected $want;"; fi
    fi
  done
  grep -qE -- "$pattern" "$tmp/log" || problems+=" message /$pattern/ not printed;"
  if grep -qE "^(benchmark|pretext) epoch " "$tmp/log"; then problems+=" training started before the error was seen;"; fi
  sums | cmp -s - "$tmp/sums_ref" || { problems+=" the existing results were changed;"; sums > "$tmp/sums_ref"; }
  if [ -z "$problems" ]; then
    passed=$((passed + 1)); echo "ok   $name (${secs}s): $(grep -m1 -E -- "$pattern" "$tmp/log" | cut -c1-150)"
  else
    failed=$((failed + 1)); echo "FAIL $name:$problems"; sed 's/^/     | /' "$tmp/log" | grep -v -- "------" | head -12
  fi
}

# ---------------------------------------------------------------- data files
data_case() { # CASE PATTERN
  local d="$tmp/bad_$1"; rm -rf "$d"; cp -r "$tmp/data" "$d"
  python3 "$src/tests/idx_tool.py" break "$1" "$d"
  expect_fail "data: $1" 1 "$2" run --config "$tmp/ok.ini" --out "$out" "data.dir=$d"
}
img="train-images-idx3-ubyte"; lab="train-labels-idx1-ubyte"
data_case header-truncated "$img': header truncated: 10 bytes"
data_case data-truncated "$img': data truncated: expected 784000 bytes .* found 783900"
data_case trailing-garbage "$img': trailing garbage: 7 extra bytes"
data_case wrong-magic "$img': wrong magic number 0x89504e47: not an IDX file"
data_case labels-as-images "$img': wrong magic number 2049 .*looks like an IDX label file"
data_case size-overflow "$img': header sizes too large"
data_case count-mismatch "counts differ: .*$img' has 1000 images but .*$lab' has 999 labels"
data_case label-out-of-range "$lab': label at index 5 has value 12, outside \[0, 10\)"
data_case gzip-corrupt "$img.gz': corrupt gzip data"
data_case gzip-truncated "$img.gz': truncated gzip file"
data_case empty "$img': the file is empty"
data_case directory "$img': is a directory, expected an IDX file"
data_case missing "lacks $img\[.gz\]"
expect_fail "data: folder missing" 1 "data folder '$tmp/nowhere' cannot be opened" \
  run --config "$tmp/ok.ini" --out "$out" "data.dir=$tmp/nowhere"
expect_fail "data: folder is a file" 1 "data folder '$tmp/ok.ini' is not a directory" \
  run --config "$tmp/ok.ini" --out "$out" "data.dir=$tmp/ok.ini"

# ---------------------------------------------------------------- configuration files
cfg_case() { # NAME STATUS PATTERN FILE-TEXT (the first line is line 1)
  printf '%s\n' "$4" > "$tmp/bad.ini"
  expect_fail "config: $1" "$2" "$3" run --config "$tmp/bad.ini" --out "$out" "data.dir=$tmp/data"
}
cfg_case "unknown key" 1 "bad.ini:3: unknown key 'trials.label' \(did you mean 'trials.labels'\?\)" \
  $'[trials]\nsupervised = 1\nlabel = 40'
cfg_case "unknown section" 1 "bad.ini:1: unknown section '\[trial\]' \(did you mean '\[trials\]'\?\)" \
  $'[trial]\nlabels = 40'
cfg_case "duplicate key" 1 "bad.ini:4: key 'trials.labels' given twice \(first at line 2\)" \
  $'[trials]\nlabels = 40\nepochs = 1\nlabels = 50'
cfg_case "wrong type (int)" 1 "bad.ini:2: benchmark.epochs = 'ten': expected a whole number" \
  $'[benchmark]\nepochs = ten'
cfg_case "wrong type (float in int)" 1 "bad.ini:2: trials.labels = '1.5': expected a whole number" \
  $'[trials]\nlabels = 1.5'
cfg_case "wrong type (bool)" 1 "bad.ini:2: benchmark.enabled = 'maybe': expected true or false" \
  $'[benchmark]\nenabled = maybe'
cfg_case "wrong type (number)" 1 "bad.ini:2: experiment.learning_rate = 'fast': expected a number" \
  $'[experiment]\nlearning_rate = fast'
cfg_case "zero epochs" 1 "bad.ini:2: pretext.epochs = 0: must be at least 1" $'[pretext]\nepochs = 0'
cfg_case "negative epochs" 1 "bad.ini:3: trials.epochs = -2: must be at least 1" $'[trials]\n\nepochs = -2'
cfg_case "batch size 0" 1 "bad.ini:2: benchmark.batch_size = 0: must be at least 1" $'[benchmark]\nbatch_size = 0'
cfg_case "negative trial count" 1 "bad.ini:2: trials.supervised = -1: must be at least 0" $'[trials]\nsupervised = -1'
cfg_case "validation split 0" 1 "bad.ini:2: experiment.validation_split = 0: must be greater than 0" \
  $'[experiment]\nvalidation_split = 0'
cfg_case "validation split 1" 1 "bad.ini:2: experiment.validation_split = 1: must be less than 1" \
  $'[experiment]\nvalidation_split = 1'
cfg_case "validation split 1.5" 1 "bad.ini:2: experiment.validation_split = 1.5: must be less than 1" \
  $'[experiment]\nvalidation_split = 1.5'
cfg_case "validation split nan" 1 "bad.ini:2: experiment.validation_split = nan: must be a finite number" \
  $'[experiment]\nvalidation_split = nan'
cfg_case "huge number" 1 "bad.ini:2: trials.epochs = 99999999999999999999: must be at most" \
  $'[trials]\nepochs = 99999999999999999999'
cfg_case "bad enum" 1 "bad.ini:2: downstream.transfer = 'dense': expected one of 'conv\+dense', 'conv'" \
  $'[downstream]\ntransfer = dense'
cfg_case "syntax: no =" 1 "bad.ini:4: syntax error: expected 'key = value'" \
  $'; comment\n[trials]\nlabels = 40\nepochs 3'
cfg_case "syntax: missing ]" 1 "bad.ini:2: syntax error: missing '\]'" $'\n[trials\nlabels = 40'
cfg_case "syntax: key before section" 1 "bad.ini:1: syntax error: key 'labels' comes before any \[section\]" \
  $'labels = 40'
cfg_case "syntax: unclosed quote" 1 "bad.ini:2: syntax error: data.dir: missing closing" $'[data]\ndir = "/tmp'
cfg_case "empty value" 1 "bad.ini:2: trials.labels: the value is empty" $'[trials]\nlabels ='
# Relations between keys, checked once the data is known (before any training).
cfg_case "labels > training set" 1 "trials.labels = 5000 is more than the 1000 training images" \
  $'[trials]\nlabels = 5000'
cfg_case "train_images > available" 1 "data.train_images = 2000 is more than the 1000 training images" \
  $'[data]\ntrain_images = 2000'
cfg_case "no downstream epochs" 1 "downstream.frozen_epochs \+ downstream.finetune_epochs = 0" \
  $'[downstream]\nfrozen_epochs = 0\nfinetune_epochs = 0'
expect_fail "config: file missing" 1 "cannot open configuration file '$tmp/none.ini': No such file" \
  run --config "$tmp/none.ini" --out "$out"
expect_fail "config: file is a folder" 1 "cannot read configuration file '$tmp/data': Is a directory" \
  run --config "$tmp/data" --out "$out"
head -c 300 /dev/urandom > "$tmp/binary.ini"; printf '\0' >> "$tmp/binary.ini"
expect_fail "config: binary file" 1 "binary.ini:[0-9]+: " run --config "$tmp/binary.ini" --out "$out"

# ---------------------------------------------------------------- command line
expect_fail "cli: override unknown key" 2 "command line: unknown key 'trials.lables' \(did you mean 'trials.labels'\?\)" \
  run --config "$tmp/ok.ini" --out "$out" trials.lables=30
expect_fail "cli: override out of range" 2 "command line: benchmark.batch_size = 0: must be at least 1" \
  run --config "$tmp/ok.ini" --out "$out" benchmark.batch_size=0
expect_fail "cli: override negative trials" 2 "command line: trials.self_supervised = -3: must be at least 0" \
  run --config "$tmp/ok.ini" --out "$out" trials.self_supervised=-3
expect_fail "cli: override wrong type" 2 "command line: pretext.epochs = 'x': expected a whole number" \
  run --config "$tmp/ok.ini" --out "$out" pretext.epochs=x
expect_fail "cli: override without section" 2 "pretext run: unknown argument 'epochs=3'|keys are written section.key" \
  run --config "$tmp/ok.ini" --out "$out" epochs=3
expect_fail "cli: unknown option" 2 "unknown argument '--bogus'" run --config "$tmp/ok.ini" --out "$out" --bogus
expect_fail "cli: option without value" 2 "--out needs a value" run --config "$tmp/ok.ini" --out
expect_fail "cli: bad --stop-after-trials" 2 "--stop-after-trials needs a whole number" \
  run --config "$tmp/ok.ini" --out "$out" --stop-after-trials x
expect_fail "cli: unknown command" 2 "pretext: unknown command 'rnu'" rnu --config "$tmp/ok.ini"
expect_fail "cli: no command" 2 "usage: pretext <command>"

# ---------------------------------------------------------------- output path
mkdir -p "$tmp/afolder"
expect_fail "out: is a folder" 1 "cannot write results file '$tmp/afolder': it is a folder" \
  run --config "$tmp/ok.ini" --out "$tmp/afolder"
expect_fail "out: missing folder" 1 "cannot write results file '$tmp/missing/r.h5': the folder '$tmp/missing' does not exist" \
  run --config "$tmp/ok.ini" --out "$tmp/missing/r.h5"
# Root ignores permission bits, so "unwritable" is a read-only file system (a read-only tmpfs when
# mounting is allowed, always /proc).
mkdir -p "$tmp/ro"
if mount -t tmpfs -o size=1m,ro tmpfs "$tmp/ro" 2>/dev/null; then
  mounted="$tmp/ro"
  expect_fail "out: read-only file system" 1 "cannot write results file '$tmp/ro/r.h5': .*(Read-only file system)" \
    run --config "$tmp/ok.ini" --out "$tmp/ro/r.h5"
  umount "$tmp/ro"; mounted=""
else
  echo "note: cannot mount a read-only tmpfs here (not root?): only /proc is tried"
fi
expect_fail "out: unwritable (/proc)" 1 "cannot write results file '/proc/pretext-test.h5'" \
  run --config "$tmp/ok.ini" --out /proc/pretext-test.h5

# ---------------------------------------------------------------- resuming from a bad file
expect_fail "resume: other configuration" 1 "different configuration.*trials.labels.*--force" \
  run --config "$tmp/ok.ini" --out "$out" trials.labels=30
cp "$out" "$tmp/keep.h5"
victim_case() { # NAME PATTERN: $tmp/victim.h5 prepared by the caller
  local before; before=$(sha256sum < "$tmp/victim.h5")
  expect_fail "resume: $1" 1 "$2" run --config "$tmp/ok.ini" --out "$tmp/victim.h5"
  [ "$(sha256sum < "$tmp/victim.h5")" = "$before" ] || { failed=$((failed + 1)); echo "FAIL resume: $1: the file was changed"; }
}
head -c 20000 "$out" > "$tmp/victim.h5"
victim_case "truncated HDF5" "cannot resume from $tmp/victim.h5: .*truncated or damaged.*--force|truncated or damaged"
head -c 100 "$out" > "$tmp/victim.h5"
victim_case "HDF5 cut in the superblock" "cannot resume from $tmp/victim.h5: "
/usr/bin/python3 -c "import h5py, sys; f = h5py.File(sys.argv[1], 'w'); f['x'] = [1, 2, 3]; f.attrs['format'] = 'other'" "$tmp/victim.h5"
victim_case "HDF5 not written by pretext" "it is an HDF5 file but was not written by pretext"
echo "some text" > "$tmp/victim.h5"
victim_case "not HDF5 at all" "'$tmp/victim.h5' is not an HDF5 file"
# A pretext file whose format version is from the future.
cp "$out" "$tmp/victim.h5"
/usr/bin/python3 -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r+'); f.attrs['format_version'] = 99" "$tmp/victim.h5"
victim_case "newer format version" "format version 99.*newer pretext"
# A pretext file with a dataset removed (damaged by hand or by another tool).
cp "$out" "$tmp/victim.h5"
/usr/bin/python3 -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r+'); del f['trials/supervised/test_accuracy']" "$tmp/victim.h5"
victim_case "dataset missing" "test_accuracy"
cmp -s "$out" "$tmp/keep.h5" || { failed=$((failed + 1)); echo "FAIL: the reference results changed"; }

echo "e2e_bad_input: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
