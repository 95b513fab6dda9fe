#!/usr/bin/env bash
# e2e_bad_input.sh: every kind of bad input given to the real program under mpiexec -n 2 (issue 6):
# broken IDX files (each way), gzip corrupt/truncated, empty file, a folder where a file belongs;
# configuration files with unknown or duplicate keys, wrong types, out-of-range values and syntax
# errors; command-line misuse; an output path that is a folder, unwritable (/proc) or in a missing
# folder; resuming from a file of another configuration, a truncated HDF5 file or an HDF5 file
# pretext did not write. Each case must: end within seconds (20; 60 in the sanitizer build) with a
# non-zero status on EVERY rank (each rank's own exit status is recorded by a wrapper), print a
# message naming the file / line / key, and leave the results file that was already there byte for
# byte unchanged (tests/lib_expect_fail.sh). Every case here runs on any machine: none is skipped.
# (A read-only file system needs a mount: tests/e2e_readonly_fs.sh, which reports itself skipped
# where it cannot make one.)
# The cases run 4 at a time (2 in the sanitizer build; PRETEXT_TEST_JOBS), each in its own folder
# with its own copy of the finished results: a case is mostly mpiexec's start-up and tear-down
# latency, not CPU.
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
bin="${PRETEXT_BINARY:-$src/build/pretext}"
tmp="$(mktemp -d)"
trap 'kill $(jobs -p) 2> /dev/null || true; rm -rf "$tmp"' EXIT
jobs="${PRETEXT_TEST_JOBS:-4}"
start=${EPOCHREALTIME/./}
source "$src/tests/lib_expect_fail.sh"

# A small data folder (1000 training, 500 test images) and a finished results file made from it.
small_run_inputs
ref_dir="$tmp/ref"
mkdir -p "$ref_dir"
"$mpiexec" -n 2 "$bin" run --quiet --config "$tmp/ok.ini" --out "$ref_dir/results.h5" > "$tmp/log_ref" 2>&1 \
  || { cat "$tmp/log_ref"; echo "FAIL: the reference run failed"; exit 1; }
(cd "$ref_dir" && sha256sum results.h5 results.benchmark.weights.h5 results.pretext.weights.h5) > "$ref_dir/sums"
cp "$ref_dir/sums" "$tmp/sums_at_start"
out="@OUT@" # each case's own copy of the reference results (tests/lib_expect_fail.sh)

# ---------------------------------------------------------------- data files
data_case() { launch data_case_run "$@"; }
data_case_run() { # CASE PATTERN
  local d="$case_dir/data"; cp -r "$tmp/data" "$d"
  if [ "$1" = label-out-of-range ]; then
    # Any label below 62 is a class now (data sets of up to 62 classes): 200 is out of range.
    python3 -c "import sys; p = sys.argv[1] + '/train-labels-idx1-ubyte'; b = bytearray(open(p, 'rb').read()); b[8 + 5] = 200; open(p, 'wb').write(b)" "$d"
  else
    python3 "$src/tests/idx_tool.py" break "$1" "$d"
  fi
  expect_fail "data: $1" 1 "$2" run --config "$tmp/ok.ini" --out "$out" "data.dir=$d"
}
# Every other case: its own folder too.
expect_fail_case() { launch expect_fail "$@"; }
img="train-images-idx3-ubyte"; lab="train-labels-idx1-ubyte"
data_case header-truncated "$img': header truncated: 10 bytes"
data_case data-truncated "$img': data truncated: expected 784000 bytes .* found 783900"
data_case trailing-garbage "$img': trailing garbage: 7 extra bytes"
data_case wrong-magic "$img': wrong magic number 0x89504e47: not an IDX file"
data_case labels-as-images "$img': wrong magic number 2049 .*looks like an IDX label file"
data_case size-overflow "$img': header sizes too large"
data_case count-mismatch "counts differ: .*$img' has 1000 images but .*$lab' has 999 labels"
data_case label-out-of-range "$lab': label at index 5 has value 200, outside \[0, [0-9]+\)"
data_case gzip-corrupt "$img.gz': corrupt gzip data"
data_case gzip-truncated "$img.gz': truncated gzip file"
data_case empty "$img': the file is empty"
data_case directory "$img': is a directory, expected an IDX file"
data_case missing "lacks $img\[.gz\]"
expect_fail_case "data: folder missing" 1 "data folder '$tmp/nowhere' cannot be opened" \
  run --config "$tmp/ok.ini" --out "$out" "data.dir=$tmp/nowhere"
expect_fail_case "data: folder is a file" 1 "data folder '$tmp/ok.ini' is not a directory" \
  run --config "$tmp/ok.ini" --out "$out" "data.dir=$tmp/ok.ini"

# ---------------------------------------------------------------- configuration files
cfg_case() { launch cfg_case_run "$@"; }
cfg_case_run() { # NAME STATUS PATTERN FILE-TEXT (the first line is line 1)
  printf '%s\n' "$4" > "$case_dir/bad.ini"
  expect_fail "config: $1" "$2" "$3" run --config "$case_dir/bad.ini" --out "$out" "data.dir=$tmp/data"
}
cfg_case "unknown key" 1 "bad.ini:3: unknown key 'trials.label' \(did you mean 'trials.labels'\?\)" \
  $'[trials]\nsupervised = 1\nlabel = 40'
cfg_case "unknown section" 1 "bad.ini:1: unknown section '\[trial\]' \(did you mean '\[trials\]'\?\)" \
  $'[trial]\nlabels = 40'
cfg_case "duplicate key" 1 "bad.ini:4: key 'trials.labels' given twice \(first at line 2\)" \
  $'[trials]\nlabels = 40\nepochs = 1\nlabels = 50'
cfg_case "wrong type (int)" 1 "bad.ini:2: benchmark.epochs = 'ten': expected a whole number" \
  $'[benchmark]\nepochs = ten'
cfg_case "wrong type (float in int)" 1 "bad.ini:2: benchmark.epochs = '1.5': expected a whole number" \
  $'[benchmark]\nepochs = 1.5'
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
expect_fail_case "config: file missing" 1 "cannot open configuration file '$tmp/none.ini': No such file" \
  run --config "$tmp/none.ini" --out "$out"
expect_fail_case "config: file is a folder" 1 "cannot read configuration file '$tmp/data': Is a directory" \
  run --config "$tmp/data" --out "$out"
head -c 300 /dev/urandom > "$tmp/binary.ini"; printf '\0' >> "$tmp/binary.ini"
expect_fail_case "config: binary file" 1 "binary.ini:[0-9]+: " run --config "$tmp/binary.ini" --out "$out"

# ---------------------------------------------------------------- command line
expect_fail_case "cli: override unknown key" 2 "command line: unknown key 'trials.lables' \(did you mean 'trials.labels'\?\)" \
  run --config "$tmp/ok.ini" --out "$out" trials.lables=30
expect_fail_case "cli: override out of range" 2 "command line: benchmark.batch_size = 0: must be at least 1" \
  run --config "$tmp/ok.ini" --out "$out" benchmark.batch_size=0
expect_fail_case "cli: override negative trials" 2 "command line: trials.self_supervised = -3: must be at least 0" \
  run --config "$tmp/ok.ini" --out "$out" trials.self_supervised=-3
expect_fail_case "cli: override wrong type" 2 "command line: pretext.epochs = 'x': expected a whole number" \
  run --config "$tmp/ok.ini" --out "$out" pretext.epochs=x
expect_fail_case "cli: override without section" 2 "pretext run: unknown argument 'epochs=3'|keys are written section.key" \
  run --config "$tmp/ok.ini" --out "$out" epochs=3
expect_fail_case "cli: unknown option" 2 "unknown argument '--bogus'" run --config "$tmp/ok.ini" --out "$out" --bogus
expect_fail_case "cli: option without value" 2 "--out needs a value" run --config "$tmp/ok.ini" --out
expect_fail_case "cli: bad --stop-after-trials" 2 "--stop-after-trials needs a whole number" \
  run --config "$tmp/ok.ini" --out "$out" --stop-after-trials x
expect_fail_case "cli: unknown command" 2 "pretext: unknown command 'rnu'" rnu --config "$tmp/ok.ini"
expect_fail_case "cli: no command" 2 "usage: pretext <command>"

# ---------------------------------------------------------------- output path
mkdir -p "$tmp/afolder"
expect_fail_case "out: is a folder" 1 "cannot write results file '$tmp/afolder': it is a folder" \
  run --config "$tmp/ok.ini" --out "$tmp/afolder"
expect_fail_case "out: missing folder" 1 "cannot write results file '$tmp/missing/r.h5': the folder '$tmp/missing' does not exist" \
  run --config "$tmp/ok.ini" --out "$tmp/missing/r.h5"
# Root ignores permission bits, so "unwritable" is /proc here (creating a file there fails even for
# root); a read-only file system is tests/e2e_readonly_fs.sh.
expect_fail_case "out: unwritable (/proc)" 1 "cannot write results file '/proc/pretext-test.h5'" \
  run --config "$tmp/ok.ini" --out /proc/pretext-test.h5

# ---------------------------------------------------------------- resuming from a bad file
expect_fail_case "resume: other configuration" 1 "different configuration.*trials.labels.*--force" \
  run --config "$tmp/ok.ini" --out "$out" trials.labels=30
victim_case() { launch victim_case_run "$@"; }
victim_case_run() { # NAME PATTERN DAMAGE: $case_dir/victim.h5 made from the reference results by DAMAGE
  local victim="$case_dir/victim.h5" ref="$ref_dir/results.h5"
  case "$3" in
    truncated) head -c 20000 "$ref" > "$victim" ;;
    superblock) head -c 100 "$ref" > "$victim" ;;
    foreign) /usr/bin/python3 -c "import h5py, sys; f = h5py.File(sys.argv[1], 'w'); f['x'] = [1, 2, 3]; f.attrs['format'] = 'other'" "$victim" ;;
    text) echo "some text" > "$victim" ;;
    # a pretext file whose format version is from the future
    future) cp "$ref" "$victim"
      /usr/bin/python3 -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r+'); f.attrs['format_version'] = 99" "$victim" ;;
    # a pretext file with a dataset removed (damaged by hand or by another tool)
    no-dataset) cp "$ref" "$victim"
      /usr/bin/python3 -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r+'); del f['trials/supervised/test_accuracy']" "$victim" ;;
    *) echo "FAIL resume: $1: unknown damage $3"; return ;;
  esac
  local before; before=$(sha256sum < "$victim")
  expect_fail "resume: $1" 1 "$2" run --config "$tmp/ok.ini" --out "$victim"
  [ "$(sha256sum < "$victim")" = "$before" ] || echo "FAIL resume: $1: the file was changed"
}
victim_case "truncated HDF5" "cannot resume from @DIR@/victim.h5: .*truncated or damaged.*--force|truncated or damaged" truncated
victim_case "HDF5 cut in the superblock" "cannot resume from @DIR@/victim.h5: " superblock
victim_case "HDF5 not written by pretext" "it is an HDF5 file but was not written by pretext" foreign
victim_case "not HDF5 at all" "'@DIR@/victim.h5' is not an HDF5 file" text
victim_case "newer format version" "format version 99.*newer pretext" future
victim_case "dataset missing" "test_accuracy" no-dataset

status=0
finish_cases e2e_bad_input || status=1
# No case may have touched the reference files (each worked on its own copy).
(cd "$ref_dir" && sha256sum results.h5 results.benchmark.weights.h5 results.pretext.weights.h5) | cmp -s - "$tmp/sums_at_start" \
  || { echo "FAIL: the reference results changed"; status=1; }
end=${EPOCHREALTIME/./}
echo "e2e_bad_input: $case_no cases, $jobs at a time, $(( (end - start) / 1000000 ))s in all"
exit "$status"
