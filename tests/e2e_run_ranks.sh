#!/usr/bin/env bash
# e2e_run_ranks.sh: trial results do not depend on the number of ranks. The phases run once (2
# ranks, --stop-after-trials 0 leaves a resumable file with no trial); copies of that file are then
# resumed with 1, 2, 4 and 8 ranks (8 > 6 trials): every trial runs exactly once and the trial
# tables (accuracy, loss, sampled indices, histories) are bit-identical.
set -euo pipefail
src="${PRETEXT_SOURCE_DIR:?}"; bin="${PRETEXT_BINARY:?}"
. "$src/tests/mpi_launcher.sh" # pt_mpiexec: the build's launcher, with the flags it accepts
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
cfg=(data.train_images=2000 benchmark.enabled=false pretext.epochs=1 trials.supervised=3
     trials.self_supervised=3 trials.labels=40 trials.epochs=2 downstream.frozen_epochs=1
     downstream.finetune_epochs=1)
set +e
pt_mpiexec -n 2 "$bin" run --quiet --out "$tmp/base.h5" --stop-after-trials 0 "${cfg[@]}" > "$tmp/log" 2>&1
rc=$?
set -e
[ "$rc" -eq 75 ] || { cat "$tmp/log"; echo "FAIL: expected exit 75 (resumable) after --stop-after-trials 0, got $rc"; exit 1; }
read -r complete ns nss < <(/usr/bin/python3 "$src/tests/results_tool.py" done "$tmp/base.h5")
[ "$complete" = 0 ] && [ "$ns" = 0 ] && [ "$nss" = 0 ] || { echo "FAIL: base file: $complete $ns $nss"; exit 1; }
for np in 1 2 4 8; do
  cp "$tmp/base.h5" "$tmp/np$np.h5"
  pt_mpiexec -n "$np" "$bin" run --out "$tmp/np$np.h5" "${cfg[@]}" > "$tmp/log$np" 2>&1 \
    || { cat "$tmp/log$np"; echo "FAIL: np=$np run failed"; exit 1; }
  n_lines=$(grep -c "^trial " "$tmp/log$np" || true)
  [ "$n_lines" -eq 6 ] || { cat "$tmp/log$np"; echo "FAIL: np=$np ran $n_lines trials, expected 6 (each exactly once)"; exit 1; }
  for k in supervised self_supervised; do
    for i in 0 1 2; do
      c=$(grep -cE "^trial $k +$i on" "$tmp/log$np" || true)
      [ "$c" -eq 1 ] || { echo "FAIL: np=$np: $k trial $i ran $c times"; exit 1; }
    done
  done
  read -r complete ns nss < <(/usr/bin/python3 "$src/tests/results_tool.py" done "$tmp/np$np.h5")
  [ "$complete $ns $nss" = "1 3 3" ] || { echo "FAIL: np=$np file: $complete $ns $nss"; exit 1; }
done
for np in 2 4 8; do
  /usr/bin/python3 "$src/tests/results_tool.py" same-trials "$tmp/np1.h5" "$tmp/np$np.h5"
done
echo "e2e_run_ranks: 1 passed, 0 failed"
