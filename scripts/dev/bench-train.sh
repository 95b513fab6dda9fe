#!/usr/bin/env bash
# bench-train.sh: the engine's speed side by side with PyTorch's, on one machine in one run.
#
# Usage (from anywhere; paths are relative to the repository):
#     scripts/dev/bench-train.sh [--seconds S] [--repeats R] [--workloads "train64 train1 infer"]
#                            [--kernels K | --as-avx2] [--data DIR|synthetic]
#
#   --seconds S    length of one timed repetition (default 2)
#   --repeats R    repetitions per workload and engine (default 5)
#   --workloads L  space-separated subset of train64 train1 infer (default all three)
#   --kernels K    pretext's kernel set: auto (default), avx512, avx2, generic
#   --data DIR     both engines train and infer on the first 1024 training images of DIR (default:
#                  the repository's data/mnist when scripts/fetch-data.sh filled it, else synthetic
#                  data). pretext's batch-1 step skips dense1's zero inputs, so its train1 speed
#                  depends on the data: about 17% of them are non-zero on MNIST, about 2% on
#                  random images with random labels (most units die); PyTorch's does not.
#   --as-avx2      this machine as an AVX2-only CPU, for all three: pretext's avx2 set, OpenBLAS's
#                  Haswell kernels (OPENBLAS_CORETYPE=Haswell), PyTorch limited to AVX2
#                  (ATEN_CPU_CAPABILITY=avx2, DNNL_MAX_CPU_ISA=AVX2). Without it, OpenBLAS picks
#                  its kernels for this CPU (OPENBLAS_CORETYPE is unset).
#   Environment: PRETEXT_BINARY=path uses that program instead of building build/pretext;
#                PYTHON (default /usr/bin/python3, Debian's, which has torch 1.13);
#                PRETEXT_BENCH_TORCH_MALLOC=default: PyTorch with glibc's malloc defaults (see below);
#                PRETEXT_BENCH_TORCH_DENORMALS=keep: PyTorch without flushing denormals (its default;
#                pretext flushes them, as TensorFlow does, and so does torch_bench.py unless told).
#
# It builds pretext if needed (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release; cmake --build
# build -j), then for each workload runs, R times in turn, `pretext bench` and
# scripts/dev/torch_bench.py in both torch memory layouts (nchw and nhwc: neither is fastest for
# every workload), each for one repetition, rotating which goes first, so that the noise of a
# shared machine hits all of them alike. Everything runs on one thread (OPENBLAS_NUM_THREADS=1,
# OMP_NUM_THREADS=1, --threads 1). The table gives medians in images/s, the ratio of pretext's
# median to the FASTER torch layout's (> 1: pretext is faster), and "rep ratio": the median over
# repetitions of the same ratio taken within each repetition (robust to slow drifts in load).
# Raw JSON lines are kept in a temporary file whose path is printed.
# Exits non-zero only on errors (build, crash), never on a ratio.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
seconds=2
repeats=5
workloads="train64 train1 infer"
python="${PYTHON:-/usr/bin/python3}"
kernels=auto
as_avx2=0
data=""

while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --repeats) repeats="$2"; shift 2 ;;
        --workloads) workloads="$2"; shift 2 ;;
        --kernels) kernels="$2"; shift 2 ;;
        --as-avx2) as_avx2=1; kernels=avx2; shift ;;
        --data) data="$2"; shift 2 ;;
        -h|--help) sed -n '2,36p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench-train.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

if [ -z "${PRETEXT_BINARY:-}" ]; then
    if [ ! -x "$repo/build/pretext" ]; then
        echo "bench-train.sh: building pretext in $repo/build" >&2
        cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    fi
    # Always brings the build up to date (a no-op when it is).
    cmake --build "$repo/build" -j >/dev/null
    PRETEXT_BINARY="$repo/build/pretext"
fi
[ -x "$PRETEXT_BINARY" ] || { echo "bench-train.sh: no program at $PRETEXT_BINARY" >&2; exit 1; }
"$python" -c 'import torch' 2>/dev/null || { echo "bench-train.sh: $python has no torch" >&2; exit 1; }

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
if [ "$as_avx2" -eq 1 ]; then
    export OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2 ONEDNN_MAX_CPU_ISA=AVX2
else
    unset OPENBLAS_CORETYPE
fi
# PyTorch allocates its activations and gradients afresh at every step; glibc serves blocks of
# 128 KB and more with mmap and returns them at free, so every step page-faults its whole working
# set back in. On some virtual machines a page fault is expensive enough to make PyTorch 4-5x
# slower (measured on the Zen 5 VM of 2026-12-01: train64 401 -> 1,889 img/s). Keeping freed memory
# in the heap, as a tuned PyTorch install would (jemalloc, tcmalloc), removes that: the peer is
# measured at its best. pretext allocates its buffers once and is not affected.
# PRETEXT_BENCH_TORCH_MALLOC=default measures PyTorch with glibc's defaults instead.
torch_malloc=(MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456)
[ "${PRETEXT_BENCH_TORCH_MALLOC:-}" = default ] && torch_malloc=(PRETEXT_BENCH_TORCH_MALLOC=default)
torch_denormals="${PRETEXT_BENCH_TORCH_DENORMALS:-flush}"
case "$torch_denormals" in flush|keep) ;; *) echo "bench-train.sh: PRETEXT_BENCH_TORCH_DENORMALS must be flush or keep" >&2; exit 2 ;; esac
raw="$(mktemp /tmp/bench-train.XXXXXX.jsonl)"
common=(--seconds "$seconds" --repeats 1 --threads 1 --json)
if [ -z "$data" ] && [ -e "$repo/data/mnist/train-images-idx3-ubyte" -o -e "$repo/data/mnist/train-images-idx3-ubyte.gz" ]; then
    data="$repo/data/mnist"
fi
[ "$data" = synthetic ] && data=""
[ -n "$data" ] && common+=(--data "$data")

# Runs one repetition of one engine ("pretext", "torch-nchw", "torch-nhwc"), tagging the line.
run_one() {
    local engine="$1" workload="$2" line
    case "$engine" in
        pretext) line="$("$PRETEXT_BINARY" bench --workload "$workload" --kernels "$kernels" "${common[@]}")" ;;
        torch-*) line="$(env "${torch_malloc[@]}" "$python" "$repo/scripts/dev/torch_bench.py" --workload "$workload" \
                        --layout "${engine#torch-}" --denormals "$torch_denormals" "${common[@]}")" ;;
    esac
    [ -n "$line" ] || { echo "bench-train.sh: $engine $workload printed nothing" >&2; exit 1; }
    printf '%s\t%s\t%s\n' "$engine" "$workload" "$line" >>"$raw"
}

engines=(pretext torch-nchw torch-nhwc)
for workload in $workloads; do
    echo "bench-train.sh: $workload, $repeats x ${seconds}s per engine..." >&2
    for ((r = 0; r < repeats; r++)); do
        for ((e = 0; e < ${#engines[@]}; e++)); do
            run_one "${engines[$(((e + r) % ${#engines[@]}))]}" "$workload"
        done
    done
done

# Median images/s of one engine and workload from the raw lines.
median() {
    awk -F'\t' -v e="$1" -v w="$2" '$1 == e && $2 == w {
            if (match($3, /"images_per_s": [0-9.eE+-]+/)) print substr($3, RSTART + 16, RLENGTH - 16) }' "$raw" |
        sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1;
            if (NR % 2) printf "%.1f", v[(NR + 1) / 2]; else printf "%.1f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Median over repetitions r of pretext_r / max(torch-nchw_r, torch-nhwc_r): the three runs of one
# repetition are adjacent in time, so this ratio is the more robust one when the load drifts.
rep_ratio_median() {
    awk -F'\t' -v w="$1" '$2 == w && match($3, /"images_per_s": [0-9.eE+-]+/) {
            r = n[$1]++; v[$1, r] = substr($3, RSTART + 16, RLENGTH - 16) + 0 }   # + 0: compare as numbers
        END { for (r = 0; r < n["pretext"]; r++) {
                  t = v["torch-nchw", r] > v["torch-nhwc", r] ? v["torch-nchw", r] : v["torch-nhwc", r];
                  if (t > 0) print v["pretext", r] / t } }' "$raw" |
        sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1;
            if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

used="$(grep -m1 '"kernels"' "$raw" | sed 's/.*"kernels": "\([a-z0-9]*\)".*/\1/')"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc --all) cores, CPU $("$PRETEXT_BINARY" --version | sed -n 's/^cpu: //p')"
echo "# $("$PRETEXT_BINARY" --version 2>/dev/null | head -1), kernels $used$([ "$as_avx2" -eq 1 ] && echo " (as an AVX2-only CPU: --as-avx2)")"
echo "# data: $([ -n "$data" ] && echo "the first 1024 training images of $data" || echo "synthetic (random images and labels)")"
echo "# PyTorch's malloc: ${torch_malloc[*]}"
echo "# BLAS: $("$PRETEXT_BINARY" --version | sed -n 's/^blas: //p'); torch $("$python" -c 'import torch; print(torch.__version__, torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else "")')"
echo "# one thread each; medians of $repeats interleaved repetitions of ${seconds}s; raw: $raw"
printf '%-8s %6s %14s %12s %12s %7s %10s\n' workload batch "pretext img/s" "torch nchw" "torch nhwc" ratio "rep ratio"
for workload in $workloads; do
    case "$workload" in train64) batch=64 ;; train1) batch=1 ;; infer) batch=1000 ;; *) batch=? ;; esac
    p="$(median pretext "$workload")"
    tn="$(median torch-nchw "$workload")"
    th="$(median torch-nhwc "$workload")"
    ratio="$(awk -v p="$p" -v a="$tn" -v b="$th" 'BEGIN { t = a > b ? a : b; printf "%.2f", p / t }')"
    rep_ratio="$(rep_ratio_median "$workload")"
    printf '%-8s %6s %14s %12s %12s %7s %10s\n' "$workload" "$batch" "$p" "$tn" "$th" "$ratio" "$rep_ratio"
done
