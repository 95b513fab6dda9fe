#!/usr/bin/env bash
# e2e_run_checkpoint.sh: the data-parallel phases checkpoint every epoch. A run stopped in the
# middle of the benchmark phase (after its 2nd epoch), and another in the middle of the pretext
# phase, each rerun with the same command, continue from the checkpoint ("resuming after epoch"),
# not from scratch, and end with phase weights, histories and trial results bit-identical to an
# uninterrupted run on the same ranks; the stopped file holds the checkpoint (weights, Adam state,
# history) and no finished phase; the finished file holds no checkpoint. Both gradient sums.
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:?}"; bin="${PRETEXT_BINARY:?}"
. "$src/tests/mpi_launcher.sh" # pt_mpiexec: the build's launcher, with the flags it accepts
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
# run.phase_groups=1: the phases data-parallel on both ranks, one after the other (phases in two
# groups, stopped and resumed: e2e_study.sh).
# The first 1600 training and 1000 test images of MNIST: what data.train_images=1600 would train
# on, with a tenth of the test set to evaluate (most of a run's time under the sanitizers).
python3 "$src/tests/idx_tool.py" small "${PRETEXT_DATA_DIR:-$src/data/mnist}" "$tmp/data" 1600 1000 > /dev/null
cfg=("data.dir=$tmp/data" benchmark.epochs=3 pretext.epochs=3 trials.supervised=2
     trials.self_supervised=2 trials.labels=40 trials.epochs=2 downstream.frozen_epochs=1
     downstream.finetune_epochs=1 run.phase_groups=1)
run() { pt_mpiexec -n 2 "$bin" run "$@"; }
passed=0
for gsum in auto mpi; do
    run --out "$tmp/full.h5" "${cfg[@]}" run.gradient_sum=$gsum > "$tmp/log_full" 2>&1 \
        || { cat "$tmp/log_full"; echo "FAIL: full run ($gsum)"; exit 1; }
    for stop in 2 4; do # after benchmark epoch 2; after pretext epoch 1
        part="$tmp/part_${gsum}_$stop.h5"
        set +e
        run --out "$part" --stop-after-epochs $stop "${cfg[@]}" run.gradient_sum=$gsum > "$tmp/log_stop" 2>&1
        rc=$?
        set -e
        [ "$rc" -eq 75 ] || { cat "$tmp/log_stop"; echo "FAIL: stopped run exited $rc, expected 75"; exit 1; }
        /usr/bin/python3 - "$part" "$stop" <<'PY'
import sys, h5py
path, stop = sys.argv[1], int(sys.argv[2])
phase, epochs = ("benchmark", 2) if stop == 2 else ("pretext", 1)
with h5py.File(path, "r") as f:
    assert phase not in f, f"/{phase} present although the phase was stopped"
    assert stop == 2 or "benchmark" in f, "benchmark phase missing after it finished"
    g = f[f"checkpoint/42/{phase}"]  # format 2: per experiment seed
    assert int(g.attrs["epochs_done"]) == epochs, g.attrs["epochs_done"]
    assert g["weights"].shape == g["adam_m"].shape == g["adam_v"].shape
    assert len(g["history/loss"]) == epochs
    assert int(g.attrs["adam_t"]) == epochs * 20, g.attrs["adam_t"]   # 1280 train images / 64
    assert (g["adam_v"][()] > 0).any()
PY
        run --out "$part" "${cfg[@]}" run.gradient_sum=$gsum > "$tmp/log_resume" 2>&1 \
            || { cat "$tmp/log_resume"; echo "FAIL: resumed run"; exit 1; }
        grep -q "resuming after epoch" "$tmp/log_resume" || { cat "$tmp/log_resume"; echo "FAIL: not resumed from the checkpoint"; exit 1; }
        epochs_run=$(grep -cE "^(benchmark|pretext) epoch" "$tmp/log_resume" || true)
        [ "$epochs_run" -eq $((6 - stop)) ] || { cat "$tmp/log_resume"; echo "FAIL: resume ran $epochs_run epochs, expected $((6 - stop))"; exit 1; }
        /usr/bin/python3 - "$tmp/full.h5" "$part" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
assert "checkpoint" not in b, "checkpoint left in a finished file"
for phase in ("benchmark", "pretext"):
    for name in a[f"{phase}/weights"]:
        x, y = a[f"{phase}/weights/{name}"][()], b[f"{phase}/weights/{name}"][()]
        assert np.array_equal(x, y), f"{phase}/weights/{name} differs from the uninterrupted run"
    for field in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert np.array_equal(a[f"{phase}/history/{field}"][()], b[f"{phase}/history/{field}"][()]), f"{phase} history {field}"
    assert a[f"{phase}/test_accuracy"][()] == b[f"{phase}/test_accuracy"][()]
PY
        /usr/bin/python3 "$src/tests/results_tool.py" same-trials "$tmp/full.h5" "$part" > /dev/null
        passed=$((passed + 1))
    done
done
echo "e2e_run_checkpoint: $passed passed, 0 failed"
