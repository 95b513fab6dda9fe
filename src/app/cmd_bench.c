/* cmd_bench.c: `pretext bench`, the engine's throughput on synthetic data (no data files needed)
 * or on the first MNIST training images (--data: the trials' activations, about 17% of dense1's
 * inputs non-zero at batch 1, which the one-sample dense layer skips; random labels kill most
 * units, leaving about 2%).
 * Three workloads, each timed for --repeats repetitions of --seconds after a warm-up:
 *   train64  zero grads + forward (training, dropout) + loss + backward + Adam step, batch 64
 *   train1   the same at batch 1 (the seed's small-data fits), steps/s = images/s
 *   infer    forward (inference) + loss_only, batch 1000
 * It reports the median, minimum and maximum images/s over the repetitions, as a table or as
 * one JSON object per line (--json), the format scripts/dev/torch_bench.py also prints so that
 * scripts/dev/bench-train.sh can set the two side by side. Speed is never asserted anywhere. */
#define _POSIX_C_SOURCE 200809L
#include "pt_adam.h"
#include "pt_args.h"
#include "pt_cli.h"
#include "pt_cpu.h"
#include "pt_data.h"
#include "pt_kernels.h"
#include "pt_model.h"
#include "pt_rng.h"
#include "pt_streams.h"
#include "pt_util.h"

#include "pt_cblas.h"
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Floating-point operations per image (multiply and add counted separately):
 * forward: conv1 28*28*64*4*2 + conv2 14*14*32*256*2 + dense1 1568*256*2 + dense2 256*10*2;
 * training step: forward + backward, where backward is twice the forward except for conv1,
 * whose input gradient is never needed (only its weight gradient: once its forward). */
#define BENCH_FLOP_CONV1 (28.0 * 28 * 64 * 4 * 2)
#define BENCH_FLOP_CONV2 (14.0 * 14 * 32 * 256 * 2)
#define BENCH_FLOP_DENSE1 (1568.0 * 256 * 2)
#define BENCH_FLOP_DENSE2 (256.0 * 10 * 2)
#define BENCH_FLOP_FORWARD (BENCH_FLOP_CONV1 + BENCH_FLOP_CONV2 + BENCH_FLOP_DENSE1 + BENCH_FLOP_DENSE2)
#define BENCH_FLOP_TRAIN \
    (BENCH_FLOP_FORWARD + 2.0 * (BENCH_FLOP_CONV2 + BENCH_FLOP_DENSE1 + BENCH_FLOP_DENSE2) + BENCH_FLOP_CONV1)

#define BENCH_POOL_IMAGES 1024   /* images cycled through by every workload */
#define BENCH_IMAGE_SIZE (28 * 28)
#define BENCH_CLASSES 10
#define BENCH_MAX_REPEATS 1000

enum { BENCH_TRAIN64, BENCH_TRAIN1, BENCH_INFER, BENCH_TRAIN32, BENCH_INFER64, BENCH_NUM_WORKLOADS };

typedef struct {
    const char *name;
    int batch;
    int training;             /* 1: a full optimizer step; 0: inference forward + loss */
    double flop_per_image;
} BenchWorkload;

static const BenchWorkload WORKLOADS[BENCH_NUM_WORKLOADS] = {
    {"train64", 64, 1, BENCH_FLOP_TRAIN},
    {"train1", 1, 1, BENCH_FLOP_TRAIN},
    {"infer", 1000, 0, BENCH_FLOP_FORWARD},
    {"train32", 32, 1, BENCH_FLOP_TRAIN}, /* one rank's half of a batch-64 step on 2 ranks */
    {"infer64", 64, 0, BENCH_FLOP_FORWARD}, /* the batch of validation and of the trials' tests */
};

typedef struct {
    PtModel *model;
    PtAdam adam;
    const float *images;      /* (BENCH_POOL_IMAGES,28,28,1) uniform in [0,1), or MNIST's first */
    const uint8_t *labels;    /* (BENCH_POOL_IMAGES) uniform in [0,10), or theirs */
    uint64_t step;            /* steps taken so far: picks the batch and the dropout masks */
    double loss_sink;         /* keeps the loss computation observable */
} BenchState;

void pt_cmd_bench_usage(FILE *out) {
    fprintf(out,
            "usage: pretext bench [options]\n"
            "\n"
            "Measures the engine's throughput on synthetic data (random images, random labels,\n"
            "fixed seed; no data files needed) or, with --data, on the first 1024 training images\n"
            "of a data folder. Speeds are medians over the repetitions.\n"
            "\n"
            "  --workload W   train64 | train1 | infer | all (default all)\n"
            "                 train64: zero grads + forward (dropout) + loss + backward + Adam, batch 64\n"
            "                 train1:  the same at batch 1 (steps/s = images/s)\n"
            "                 infer:   inference forward + loss, batch 1000\n"
            "                 train32: (not in all) train64 at batch 32, one rank's share of a\n"
            "                          batch-64 step on 2 ranks\n"
            "                 infer64: (not in all) infer at batch 64, the batch of validation\n"
            "                          and of every test evaluation\n"
            "                 sgemm:   (not in all) BLAS sgemm on 2048x2048 matrices: the\n"
            "                          machine's arithmetic limit, in GFLOP/s\n"
            "  --data DIR     the first 1024 training images and labels of DIR (an MNIST folder, as\n"
            "                 for run): train1 then sees the trials' sparsity (about 17%% of dense1's\n"
            "                 inputs non-zero; random labels kill most units, about 2%% stay), which\n"
            "                 the one-sample dense layer exploits. Default: synthetic data\n"
            "  --seconds S    length of one timed repetition (default 2)\n"
            "  --repeats R    timed repetitions per workload (default 5)\n"
            "  --threads T    BLAS threads (default 1)\n"
            "  --kernels K    auto | avx512 | avx2 | generic: the kernel set (default: auto, or\n"
            "                 $PRETEXT_KERNELS); the one used is printed\n"
            "  --json         one JSON object per workload and line: workload, images_per_s (median),\n"
            "                 min, max, repeats (and engine, batch, threads, gflop_per_s, and\n"
            "                 cpu_images_per_s: images per CPU second of this process, median)\n"
            "  --help         this text\n"
            "\n"
            "scripts/dev/bench-train.sh runs this side by side with PyTorch (scripts/dev/torch_bench.py).\n");
}

/* One timed unit of work: a training step or an inference batch. */
static void bench_step(BenchState *st, const BenchWorkload *w) {
    const int B = w->batch;
    /* Batches start at different places in the pool, so the caches see fresh inputs. */
    const size_t first = (size_t)((st->step * (uint64_t)B) % (uint64_t)(BENCH_POOL_IMAGES - B + 1));
    const float *x = st->images + first * BENCH_IMAGE_SIZE;          /* (B,28,28,1) */
    const uint8_t *y = st->labels + first;                          /* (B) */
    int correct = 0;
    if (w->training) {
        pt_model_zero_grads(st->model);
        pt_model_forward(st->model, x, B, 1, pt_stream_bench(PT_BENCH_DROPOUT), st->step * (uint64_t)B);
        st->loss_sink += pt_model_loss(st->model, y, B, B, &correct);
        pt_model_backward(st->model, B, NULL);
        pt_adam_step(&st->adam, st->model);
    } else {
        pt_model_forward(st->model, x, B, 0, 0, 0);
        st->loss_sink += pt_model_loss_only(st->model, y, B, &correct);
    }
    st->step++;
}

static int compare_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of_sorted(const double *v, int n) {
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Runs one workload: warm-up, then `repeats` timed repetitions; rates (repeats) in images/s,
 * returned sorted ascending. */
/* CPU seconds this process has used (all threads): rates per CPU second are far less sensitive
 * than wall-clock rates to other programs competing for the cores. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench_workload(BenchState *st, const BenchWorkload *w, double seconds, int repeats,
                           double *rates, double *cpu_rates) {
    /* Warm-up: touches every buffer, lets the BLAS and the CPU clock settle. At least 3 steps
     * and a quarter of a repetition (at most one second). */
    double warm_seconds = seconds / 4 < 1.0 ? seconds / 4 : 1.0;
    double start = pt_now();
    for (int i = 0; i < 3 || pt_now() - start < warm_seconds; i++) bench_step(st, w);

    for (int r = 0; r < repeats; r++) {
        long steps = 0;
        double t0 = pt_now(), c0 = cpu_now(), elapsed = 0.0;
        do {
            bench_step(st, w);
            steps++;
            elapsed = pt_now() - t0;
        } while (elapsed < seconds);
        rates[r] = (double)steps * w->batch / elapsed;
        cpu_rates[r] = (double)steps * w->batch / (cpu_now() - c0);
    }
    qsort(rates, (size_t)repeats, sizeof *rates, compare_double);
    qsort(cpu_rates, (size_t)repeats, sizeof *cpu_rates, compare_double);
}

/* The machine's arithmetic limit: a large square single-precision GEMM (n = 2048, C = A B) with
 * the same BLAS and thread count, timed like the workloads; the median is the rate that
 * scripts/dev/bench.sh divides the experiment's FLOP count by. */
#define BENCH_SGEMM_N 2048
static int bench_sgemm(double seconds, int repeats, int threads, int json) {
    const int n = BENCH_SGEMM_N;
    const size_t nn = (size_t)n * n;
    float *a = pt_aligned_alloc(nn * sizeof(float)); /* (n,n) */
    float *b = pt_aligned_alloc(nn * sizeof(float)); /* (n,n) */
    float *c = pt_aligned_alloc(nn * sizeof(float)); /* (n,n) */
    PtRng rng;
    pt_rng_seed(&rng, pt_stream_bench(PT_BENCH_SGEMM));
    for (size_t i = 0; i < nn; i++) {
        a[i] = pt_rng_uniform(&rng) - 0.5f;
        b[i] = pt_rng_uniform(&rng) - 0.5f;
        c[i] = 0.0f;
    }
    const double flop = 2.0 * n * n * (double)n;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    double rates[BENCH_MAX_REPEATS], cpu_rates[BENCH_MAX_REPEATS];
    for (int r = 0; r < repeats; r++) {
        long calls = 0;
        double t0 = pt_now(), c0 = cpu_now(), elapsed = 0.0;
        do {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                        c, n);
            calls++;
            elapsed = pt_now() - t0;
        } while (elapsed < seconds);
        rates[r] = calls * flop * 1e-9 / elapsed;
        cpu_rates[r] = calls * flop * 1e-9 / (cpu_now() - c0);
    }
    qsort(rates, (size_t)repeats, sizeof *rates, compare_double);
    qsort(cpu_rates, (size_t)repeats, sizeof *cpu_rates, compare_double);
    double median = median_of_sorted(rates, repeats);
    if (json)
        printf("{\"engine\": \"pretext\", \"workload\": \"sgemm\", \"n\": %d, \"threads\": %d, "
               "\"gflop_per_s\": %.3f, \"min\": %.3f, \"max\": %.3f, \"repeats\": %d, "
               "\"cpu_gflop_per_s\": %.3f, \"blas\": \"%s\"}\n",
               n, threads, median, rates[0], rates[repeats - 1], repeats,
               median_of_sorted(cpu_rates, repeats), pt_blas_info());
    else
        printf("sgemm %dx%d, %d BLAS thread(s) (%s): %.2f GFLOP/s (median of %d; min %.2f, max %.2f)\n",
               n, n, threads, pt_blas_info(), median, repeats, rates[0], rates[repeats - 1]);
    if (!(c[0] == c[0])) fprintf(stderr, "pretext bench: warning: sgemm produced NaN\n");
    free(a);
    free(b);
    free(c);
    return PT_EXIT_OK;
}

/* Parses a positive number; returns -1 (with a message) when text is not one. */
static int parse_positive(const char *option, const char *text, double *value) {
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(v > 0.0)) {
        fprintf(stderr, "pretext bench: %s needs a positive number, got '%s'\n", option, text);
        return -1;
    }
    *value = v;
    return 0;
}

static int parse_count(const char *option, const char *text, int max, int *value) {
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < 1 || v > max) {
        fprintf(stderr, "pretext bench: %s needs an integer in [1, %d], got '%s'\n", option, max, text);
        return -1;
    }
    *value = (int)v;
    return 0;
}

int pt_cmd_bench(int argc, char **argv) {
    int selected[BENCH_NUM_WORKLOADS] = {1, 1, 1, 0}; /* "all": the first three */
    double seconds = 2.0;
    int repeats = 5, threads = 1, json = 0, sgemm = 0;
    const char *data_dir = NULL;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = (i + 1 < argc) ? argv[i + 1] : NULL;
        int takes_value = !strcmp(arg, "--workload") || !strcmp(arg, "--seconds") ||
                          !strcmp(arg, "--repeats") || !strcmp(arg, "--threads") ||
                          !strcmp(arg, "--kernels") || !strcmp(arg, "--data");
        if (takes_value && !value) {
            fprintf(stderr, "pretext bench: %s needs a value (see pretext bench --help)\n", arg);
            return PT_EXIT_USAGE;
        }
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            pt_cmd_bench_usage(stdout);
            return PT_EXIT_OK;
        } else if (!strcmp(arg, "--json")) {
            json = 1;
        } else if (!strcmp(arg, "--workload") && !strcmp(value, "sgemm")) {
            sgemm = 1;
            i++;
        } else if (!strcmp(arg, "--workload")) {
            const int all = !strcmp(value, "all");
            sgemm = 0;
            int found = all;
            for (int k = 0; k < BENCH_NUM_WORKLOADS; k++) {
                selected[k] = (all && k != BENCH_TRAIN32 && k != BENCH_INFER64) || !strcmp(value, WORKLOADS[k].name);
                found |= selected[k];
            }
            if (!found) {
                fprintf(stderr, "pretext bench: unknown workload '%s' (train64, train1, infer, train32, infer64, all)\n", value);
                return PT_EXIT_USAGE;
            }
            i++;
        } else if (!strcmp(arg, "--seconds")) {
            if (parse_positive(arg, value, &seconds) != 0) return PT_EXIT_USAGE;
            i++;
        } else if (!strcmp(arg, "--repeats")) {
            if (parse_count(arg, value, BENCH_MAX_REPEATS, &repeats) != 0) return PT_EXIT_USAGE;
            i++;
        } else if (!strcmp(arg, "--threads")) {
            if (parse_count(arg, value, 1024, &threads) != 0) return PT_EXIT_USAGE;
            i++;
        } else if (!strcmp(arg, "--kernels")) {
            PtError err;
            PtKernelSet set;
            if (pt_kernels_parse(value, &set, &err) != 0) {
                fprintf(stderr, "pretext bench: --kernels: %s\n", err.msg);
                return PT_EXIT_USAGE;
            }
            pt_kernels_use(set);
            i++;
        } else if (!strcmp(arg, "--data")) {
            data_dir = value;
            i++;
        } else if (!strcmp(arg, "--version")) {
            pt_print_version(stdout);
            return PT_EXIT_OK;
        } else {
            fprintf(stderr, "pretext bench: unknown option '%s' (see pretext bench --help)\n", arg);
            return PT_EXIT_USAGE;
        }
    }

    pt_set_blas_threads(threads);
    if (sgemm) return bench_sgemm(seconds, repeats, threads, json);
    char cpu[256];
    pt_cpu_model(cpu, sizeof cpu);
    const char *kernels = pt_kernels_active()->name;

    /* One model serves every selected workload: created for the largest batch among them. */
    int max_batch = 1;
    for (int k = 0; k < BENCH_NUM_WORKLOADS; k++)
        if (selected[k] && WORKLOADS[k].batch > max_batch) max_batch = WORKLOADS[k].batch;

    BenchState st;
    memset(&st, 0, sizeof st);
    st.model = pt_model_create(BENCH_CLASSES, max_batch);
    PtRng rng;
    pt_rng_seed(&rng, pt_stream_bench(PT_BENCH_INIT));
    pt_model_init_glorot(st.model, &rng);
    pt_model_defer_dense1_grad(st.model, 1); /* a one-rank step, as the trials take it */
    pt_adam_init(&st.adam, st.model->n_params, 0.001f);

    float *images = pt_aligned_alloc(sizeof(float) * BENCH_POOL_IMAGES * BENCH_IMAGE_SIZE); /* (N,28,28,1) */
    uint8_t *labels = pt_malloc(BENCH_POOL_IMAGES);                                          /* (N) */
    char data_name[64] = "synthetic";
    if (data_dir) {
        PtDataset ds;
        PtError err;
        int ok = pt_dataset_load(data_dir, &ds, &err) == 0;
        if (!ok) {
            fprintf(stderr, "pretext bench: --data %s: %s\n", data_dir, err.msg);
        } else if (ds.train_x.n < BENCH_POOL_IMAGES || ds.n_classes > BENCH_CLASSES) {
            fprintf(stderr, "pretext bench: --data %s: needs %d training images of at most %d classes (has %u of %d)\n",
                    data_dir, BENCH_POOL_IMAGES, BENCH_CLASSES, ds.train_x.n, ds.n_classes);
            pt_dataset_free(&ds);
            ok = 0;
        }
        if (!ok) {
            pt_model_free(st.model);
            pt_adam_free(&st.adam);
            free(images);
            free(labels);
            return PT_EXIT_ERROR; /* bad input */
        }
        uint32_t first[BENCH_POOL_IMAGES];
        for (uint32_t i = 0; i < BENCH_POOL_IMAGES; i++) first[i] = i;
        pt_gather_images(images, &ds.train_x, first, NULL, BENCH_POOL_IMAGES);
        pt_gather_labels(labels, ds.train_y.labels, first, BENCH_POOL_IMAGES);
        pt_dataset_free(&ds);
        snprintf(data_name, sizeof data_name, "first %d training images", BENCH_POOL_IMAGES);
    } else {
        pt_rng_seed(&rng, pt_stream_bench(PT_BENCH_DATA));
        for (size_t i = 0; i < (size_t)BENCH_POOL_IMAGES * BENCH_IMAGE_SIZE; i++) images[i] = pt_rng_uniform(&rng);
        for (size_t i = 0; i < BENCH_POOL_IMAGES; i++) labels[i] = (uint8_t)pt_rng_below(&rng, BENCH_CLASSES);
    }
    st.images = images;
    st.labels = labels;

    if (!json) {
        printf("pretext bench: kernels %s on %s, %d BLAS thread(s), %d x %.3g s per workload, medians, data: %s%s%s\n",
               kernels, cpu, threads, repeats, seconds, data_name, data_dir ? " of " : "", data_dir ? data_dir : "");
        printf("%-8s %6s %12s %12s %12s %9s\n", "workload", "batch", "images/s", "min", "max", "GFLOP/s");
        fflush(stdout);
    }
    double rates[BENCH_MAX_REPEATS], cpu_rates[BENCH_MAX_REPEATS];
    for (int k = 0; k < BENCH_NUM_WORKLOADS; k++) {
        if (!selected[k]) continue;
        const BenchWorkload *w = &WORKLOADS[k];
        bench_workload(&st, w, seconds, repeats, rates, cpu_rates);
        double median = median_of_sorted(rates, repeats);
        double gflops = median * w->flop_per_image * 1e-9;
        if (json)
            printf("{\"engine\": \"pretext\", \"workload\": \"%s\", \"batch\": %d, \"threads\": %d, "
                   "\"images_per_s\": %.2f, \"min\": %.2f, \"max\": %.2f, \"repeats\": %d, "
                   "\"gflop_per_s\": %.3f, \"cpu_images_per_s\": %.2f, \"kernels\": \"%s\", "
                   "\"cpu\": \"%s\", \"data\": \"%s\"}\n",
                   w->name, w->batch, threads, median, rates[0], rates[repeats - 1], repeats, gflops,
                   median_of_sorted(cpu_rates, repeats), kernels, cpu, data_dir ? "mnist" : "synthetic");
        else
            printf("%-8s %6d %12.1f %12.1f %12.1f %9.2f\n", w->name, w->batch, median, rates[0],
                   rates[repeats - 1], gflops);
        fflush(stdout);
    }
    if (!(st.loss_sink == st.loss_sink)) /* NaN: the engine diverged on random data */
        fprintf(stderr, "pretext bench: warning: the loss became NaN during the benchmark\n");

    free(images);
    free(labels);
    pt_adam_free(&st.adam);
    pt_model_free(st.model);
    return PT_EXIT_OK;
}
