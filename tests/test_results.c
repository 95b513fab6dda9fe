/* test_results.c: the results file (full round trip of every field, atomic saves that leave the
 * previous file intact, rejection of missing / non-HDF5 / truncated / foreign files, the config
 * comparison and the writability check), the Keras weights file (checked by an independent h5py
 * reader, scripts/check-keras-weights.py) and SHA-256 against published vectors and sha256sum. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>

#include <hdf5.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pt_config.h"
#include "pt_model.h"
#include "pt_keras_weights.h"
#include "pt_results.h"
#include "pt_sha256.h"
#include "pt_rng.h"
#include "pt_util.h"

static char g_dir[256]; /* temporary folder of this test run */

static void path_in(char *dst, size_t n, const char *name) { snprintf(dst, n, "%s/%s", g_dir, name); }

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int setup(void **state) {
    snprintf(g_dir, sizeof g_dir, "/tmp/pt_test_results_XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    return 0;
}

static int teardown(void **state) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------------------------------- */
/* Filling and comparing results */

static void fill_history(PtHistory *h, int epochs, double base) {
    pt_history_free(h);
    pt_history_init(h, 2);
    for (int e = 0; e < epochs; e++)
        pt_history_append(h, base + e, base + 0.1 * e, base + 0.01 * e + 0.5, base / (e + 1), 1.5 * e + base);
}

static float *random_params(int n_classes, uint64_t seed) {
    PtTensorInfo info[PT_NUM_TENSORS];
    size_t n = pt_tensor_layout(n_classes, info);
    float *p = pt_malloc(n * sizeof(float));
    PtRng rng;
    pt_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) p[i] = pt_rng_uniform(&rng) * 2.0f - 1.0f;
    return p;
}

static void small_config(PtConfig *cfg) {
    PtError err;
    pt_config_defaults(cfg);
    assert_int_equal(pt_config_set(cfg, "experiment.seed=12345678901234", "test", &err), 0);
    assert_int_equal(pt_config_set(cfg, "trials.supervised=3", "test", &err), 0);
    assert_int_equal(pt_config_set(cfg, "trials.self_supervised=2", "test", &err), 0);
    assert_int_equal(pt_config_set(cfg, "trials.labels=5", "test", &err), 0);
    assert_int_equal(pt_config_set(cfg, "experiment.learning_rate=0.0003", "test", &err), 0);
    assert_int_equal(pt_config_set(cfg, "data.dir=/some folder/mnist", "test", &err), 0);
}

/* Known values everywhere: both phases done, some trials done, some not. */
static void fill_results(PtResults *r, const PtConfig *cfg) {
    pt_results_init(r, cfg);
    /* two run segments: an interrupted one and the current one */
    for (int g = 0; g < 2; g++) {
        PtSegment *seg = pt_results_add_segment(r);
        snprintf(seg->version, sizeof seg->version, "9.8.%d", 7 + g);
        snprintf(seg->git_commit, sizeof seg->git_commit, "abcdef12345%d", g);
        snprintf(seg->build_flags, sizeof seg->build_flags, "Release -O3 -march=native");
        snprintf(seg->blas, sizeof seg->blas, "OpenBLAS 0.3.21");
        snprintf(seg->mpi_library, sizeof seg->mpi_library, "Open MPI v4.1.4");
        snprintf(seg->kernels, sizeof seg->kernels, g ? "avx2" : "avx512");
        snprintf(seg->cpu, sizeof seg->cpu, "CPU %d", g);
        seg->mpi_size = 4 + g;
        seg->phase_groups = 1 + g;
        snprintf(seg->hosts, sizeof seg->hosts, g ? "node3" : "node1,node2");
        snprintf(seg->start_time, sizeof seg->start_time, "2024-01-0%dT03:04:05Z", 2 + g);
        snprintf(seg->end_time, sizeof seg->end_time, "2024-01-0%dT04:04:05Z", 2 + g);
        snprintf(seg->status, sizeof seg->status, g ? "running" : "interrupted");
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 64; j++) seg->data_sha256[i][j] = "0123456789abcdef"[(i * 7 + j + g) % 16];
    }
    snprintf(r->start_time, sizeof r->start_time, "2024-01-02T03:04:05Z");
    r->end_time[0] = '\0'; /* not complete yet: empty string must survive */
    for (int i = 0; i < 4; i++) {
        snprintf(r->data_files[i], sizeof r->data_files[i], "/data/mnist/file-%d-idx", i);
        for (int j = 0; j < 64; j++) r->data_sha256[i][j] = "0123456789abcdef"[(i * 7 + j) % 16];
        r->data_sha256[i][64] = '\0';
    }
    r->complete = 0;

    r->seeds[0].phase[PT_PHASE_BENCHMARK].done = 1;
    r->seeds[0].phase[PT_PHASE_BENCHMARK].test_loss = 0.0345;
    r->seeds[0].phase[PT_PHASE_BENCHMARK].test_accuracy = 0.9891;
    r->seeds[0].phase[PT_PHASE_BENCHMARK].seconds = 123.25;
    fill_history(&r->seeds[0].phase[PT_PHASE_BENCHMARK].history, 3, 0.25);
    r->seeds[0].phase[PT_PHASE_BENCHMARK].weights = random_params(10, 1);

    r->seeds[0].phase[PT_PHASE_PRETEXT].done = 1;
    r->seeds[0].phase[PT_PHASE_PRETEXT].test_loss = 0.2;
    r->seeds[0].phase[PT_PHASE_PRETEXT].test_accuracy = 0.93;
    r->seeds[0].phase[PT_PHASE_PRETEXT].seconds = 99.0;
    fill_history(&r->seeds[0].phase[PT_PHASE_PRETEXT].history, 2, 0.5);
    r->seeds[0].phase[PT_PHASE_PRETEXT].weights = random_params(4, 2);

    for (int k = 0; k < PT_NUM_KINDS; k++) {
        for (int i = 0; i < r->n_trials[k]; i++) {
            PtTrialResult *t = &r->trials[k][i];
            t->seed = 0xF00DF00DF00DULL * (uint64_t)(k + 1) + (uint64_t)i;
            if ((i + k) % 2 == 1) continue; /* sup: 0, 2 done; self-sup: 1 done */
            t->done = 1;
            t->rank = i + 1;
            t->test_loss = 1.0 + i + 10 * k;
            t->test_accuracy = 0.7 + 0.01 * i;
            t->seconds = 3.5 * (i + 1);
            t->n_samples = 5;
            t->sample_indices = pt_malloc(5 * sizeof(uint32_t));
            for (int j = 0; j < 5; j++) t->sample_indices[j] = (uint32_t)(59999 - 1000 * i - j - k);
            fill_history(&t->history, 2 + i + k, 0.1 * (i + 1));
        }
    }
}

static void assert_double_same(double a, double b) {
    if (isnan(a) || isnan(b)) {
        assert_true(isnan(a) && isnan(b));
        return;
    }
    assert_true(a == b);
}

static void assert_history_equal(const PtHistory *a, const PtHistory *b) {
    assert_int_equal(a->epochs, b->epochs);
    for (int e = 0; e < a->epochs; e++) {
        assert_double_same(a->loss[e], b->loss[e]);
        assert_double_same(a->accuracy[e], b->accuracy[e]);
        assert_double_same(a->val_loss[e], b->val_loss[e]);
        assert_double_same(a->val_accuracy[e], b->val_accuracy[e]);
        assert_double_same(a->seconds[e], b->seconds[e]);
    }
}

static void assert_phase_equal(const PtPhaseResult *a, const PtPhaseResult *b) {
    assert_int_equal(a->done, b->done);
    assert_int_equal(a->n_classes, b->n_classes);
    assert_double_same(a->test_loss, b->test_loss);
    assert_double_same(a->test_accuracy, b->test_accuracy);
    assert_double_same(a->seconds, b->seconds);
    assert_history_equal(&a->history, &b->history);
    assert_int_equal(a->weights == NULL, b->weights == NULL);
    if (a->weights) {
        PtTensorInfo info[PT_NUM_TENSORS];
        size_t n = pt_tensor_layout(a->n_classes, info);
        assert_memory_equal(a->weights, b->weights, n * sizeof(float));
    }
}

static void assert_config_equal(const PtConfig *a, const PtConfig *b) {
    for (int i = 0; i < pt_config_key_count(); i++) {
        char va[4200], vb[4200];
        pt_config_key_value(a, i, va, sizeof va);
        pt_config_key_value(b, i, vb, sizeof vb);
        assert_string_equal(va, vb);
    }
}

static void assert_results_equal(const PtResults *a, const PtResults *b) {
    assert_int_equal(a->n_segments, b->n_segments);
    for (int g = 0; g < a->n_segments; g++) {
        const PtSegment *x = &a->segments[g], *y = &b->segments[g];
        assert_string_equal(x->version, y->version);
        assert_string_equal(x->git_commit, y->git_commit);
        assert_string_equal(x->build_flags, y->build_flags);
        assert_string_equal(x->blas, y->blas);
        assert_string_equal(x->mpi_library, y->mpi_library);
        assert_string_equal(x->kernels, y->kernels);
        assert_string_equal(x->cpu, y->cpu);
        assert_int_equal(x->mpi_size, y->mpi_size);
        assert_int_equal(x->phase_groups, y->phase_groups);
        assert_string_equal(x->hosts, y->hosts);
        assert_string_equal(x->start_time, y->start_time);
        assert_string_equal(x->end_time, y->end_time);
        assert_string_equal(x->status, y->status);
        for (int i = 0; i < 4; i++) assert_string_equal(x->data_sha256[i], y->data_sha256[i]);
    }
    assert_string_equal(a->start_time, b->start_time);
    assert_string_equal(a->end_time, b->end_time);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(a->data_files[i], b->data_files[i]);
        assert_string_equal(a->data_sha256[i], b->data_sha256[i]);
    }
    assert_int_equal(a->complete, b->complete);
    assert_config_equal(&a->config, &b->config);
    assert_int_equal(a->n_seeds, b->n_seeds);
    for (int s = 0; s < a->n_seeds; s++) {
        assert_true(a->seeds[s].seed == b->seeds[s].seed);
        assert_phase_equal(&a->seeds[s].phase[PT_PHASE_BENCHMARK], &b->seeds[s].phase[PT_PHASE_BENCHMARK]);
        assert_phase_equal(&a->seeds[s].phase[PT_PHASE_PRETEXT], &b->seeds[s].phase[PT_PHASE_PRETEXT]);
    }
    for (int k = 0; k < PT_NUM_KINDS; k++) {
        assert_int_equal(a->n_trials[k], b->n_trials[k]);
        for (int i = 0; i < a->n_trials[k]; i++) {
            const PtTrialResult *x = &a->trials[k][i], *y = &b->trials[k][i];
            assert_int_equal(x->done, y->done);
            assert_int_equal(x->index, y->index);
            assert_true(x->seed == y->seed);
            assert_int_equal(x->rank, y->rank);
            assert_double_same(x->test_loss, y->test_loss);
            assert_double_same(x->test_accuracy, y->test_accuracy);
            assert_double_same(x->seconds, y->seconds);
            assert_int_equal(x->n_samples, y->n_samples);
            assert_true(x->experiment_seed == y->experiment_seed);
            assert_int_equal(x->labels, y->labels);
            if (x->n_samples) assert_memory_equal(x->sample_indices, y->sample_indices, x->n_samples * 4);
            assert_history_equal(&x->history, &y->history);
        }
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Round trip */

static void test_round_trip(void **state) {
    PtConfig cfg;
    small_config(&cfg);
    PtResults r, back;
    fill_results(&r, &cfg);
    char path[512], tmp[520];
    path_in(path, sizeof path, "round.h5");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    PtError err = {{0}};
    assert_int_equal(pt_results_save(&r, path, &err), 0);
    assert_false(file_exists(tmp));
    assert_int_equal(pt_results_load(path, &back, &err), 0);
    assert_results_equal(&r, &back);

    /* Spot checks that the loaded values are the known ones (not just self-consistent). */
    assert_true(back.seeds[0].phase[PT_PHASE_BENCHMARK].test_accuracy == 0.9891);
    assert_true(back.trials[PT_KIND_SUPERVISED][2].sample_indices[4] == 59999 - 2000 - 4);
    assert_int_equal(back.trials[PT_KIND_SUPERVISED][1].done, 0);
    assert_true(isnan(back.trials[PT_KIND_SUPERVISED][1].test_accuracy));
    assert_int_equal(back.trials[PT_KIND_SELF_SUPERVISED][1].history.epochs, 4);
    assert_true(back.config.seed == 12345678901234ULL);
    assert_string_equal(back.config.data_dir, "/some folder/mnist");

    /* The names scripts rely on are there (read with plain HDF5, not through the loader). */
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(file >= 0);
    const char *required[] = {"/benchmark/test_accuracy", "/benchmark/test_loss", "/pretext/test_accuracy",
                              "/pretext/test_loss", "/pretext/history/loss", "/pretext/history/val_accuracy",
                              "/benchmark/weights/dense_1_kernel", "/pretext/weights/conv2d_kernel",
                              "/trials/supervised/test_accuracy", "/trials/supervised/test_loss",
                              "/trials/self_supervised/test_accuracy", "/trials/self_supervised/test_loss",
                              "/trials/supervised/history/loss", "/trials/supervised/sample_indices"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        char parent[128];
        const char *p = required[i];
        /* H5Lexists needs every intermediate link to exist: check each prefix. */
        for (const char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
            snprintf(parent, sizeof parent, "%.*s", (int)(s - p), p);
            assert_true(H5Lexists(file, parent, H5P_DEFAULT) > 0);
        }
        if (H5Lexists(file, p, H5P_DEFAULT) <= 0) fail_msg("missing %s", p);
    }
    /* /config holds the key as an attribute and the INI text. */
    hid_t cg = H5Gopen2(file, "config", H5P_DEFAULT);
    assert_true(cg >= 0);
    assert_true(H5Aexists(cg, "experiment.seed") > 0);
    assert_true(H5Aexists(cg, "ini") > 0);
    H5Gclose(cg);
    H5Fclose(file);

    /* Saving again over the existing file replaces it. */
    r.complete = 1;
    snprintf(r.end_time, sizeof r.end_time, "2024-01-02T05:00:00Z");
    r.trials[PT_KIND_SUPERVISED][1].done = 1;
    r.trials[PT_KIND_SUPERVISED][1].test_accuracy = 0.5;
    fill_history(&r.trials[PT_KIND_SUPERVISED][1].history, 1, 3.0);
    assert_int_equal(pt_results_save(&r, path, &err), 0);
    pt_results_free(&back);
    assert_int_equal(pt_results_load(path, &back, &err), 0);
    assert_results_equal(&r, &back);
    assert_int_equal(back.complete, 1);
    pt_results_free(&back);
    pt_results_free(&r);
}

/* Nothing done yet, zero trials of one kind: the tables exist with 0 rows. */
static void test_round_trip_empty(void **state) {
    PtConfig cfg;
    pt_config_defaults(&cfg);
    PtError err = {{0}};
    assert_int_equal(pt_config_set(&cfg, "trials.supervised=0", "test", &err), 0);
    PtResults r, back;
    pt_results_init(&r, &cfg);
    char path[512];
    path_in(path, sizeof path, "empty.h5");
    assert_int_equal(pt_results_save(&r, path, &err), 0);
    assert_int_equal(pt_results_load(path, &back, &err), 0);
    assert_results_equal(&r, &back);
    assert_int_equal(back.n_trials[PT_KIND_SUPERVISED], 0);
    assert_int_equal(back.n_trials[PT_KIND_SELF_SUPERVISED], 20);
    assert_int_equal(back.seeds[0].phase[PT_PHASE_BENCHMARK].done, 0);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(file >= 0);
    assert_true(H5Lexists(file, "/trials", H5P_DEFAULT) > 0);
    assert_true(H5Lexists(file, "/trials/supervised", H5P_DEFAULT) > 0);
    assert_true(H5Lexists(file, "/benchmark", H5P_DEFAULT) == 0);
    H5Fclose(file);
    pt_results_free(&back);
    pt_results_free(&r);
}

/* A phase checkpoint (unfinished phase: weights, Adam m, v, t, history) survives a save and a
 * load exactly; a finished phase writes none; a damaged checkpoint is rejected by name. */
static void test_round_trip_checkpoint(void **state) {
    (void)state;
    PtConfig cfg;
    pt_config_defaults(&cfg);
    PtError err = {{0}};
    PtResults r, back;
    pt_results_init(&r, &cfg);
    r.seeds[0].phase[PT_PHASE_BENCHMARK].done = 1; /* a finished benchmark: no checkpoint written even if fields are set */
    r.seeds[0].phase[PT_PHASE_BENCHMARK].test_loss = r.seeds[0].phase[PT_PHASE_BENCHMARK].test_accuracy = r.seeds[0].phase[PT_PHASE_BENCHMARK].seconds = 1.0;
    fill_history(&r.seeds[0].phase[PT_PHASE_BENCHMARK].history, 3, 0.25);
    r.seeds[0].phase[PT_PHASE_BENCHMARK].weights = random_params(10, 1);
    r.seeds[0].phase[PT_PHASE_BENCHMARK].ckpt_epochs = 3;
    r.seeds[0].phase[PT_PHASE_BENCHMARK].ckpt_weights = random_params(10, 9);
    r.seeds[0].phase[PT_PHASE_BENCHMARK].ckpt_adam_m = random_params(10, 10);
    r.seeds[0].phase[PT_PHASE_BENCHMARK].ckpt_adam_v = random_params(10, 11);
    r.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_epochs = 2; /* the pretext phase stopped after 2 of its epochs */
    r.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_adam_t = 1500;
    r.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_seconds = 12.5;
    fill_history(&r.seeds[0].phase[PT_PHASE_PRETEXT].history, 2, 0.5);
    r.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_weights = random_params(4, 3);
    r.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_adam_m = random_params(4, 4);
    r.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_adam_v = random_params(4, 5);
    char path[512];
    path_in(path, sizeof path, "checkpoint.h5");
    assert_int_equal(pt_results_save(&r, path, &err), 0);
    assert_int_equal(pt_results_load(path, &back, &err), 0);
    size_t n = pt_tensor_layout(4, (PtTensorInfo[PT_NUM_TENSORS]){0});
    assert_int_equal(back.seeds[0].phase[PT_PHASE_PRETEXT].done, 0);
    assert_int_equal(back.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_epochs, 2);
    assert_int_equal(back.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_adam_t, 1500);
    assert_true(back.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_seconds == 12.5);
    assert_memory_equal(back.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_weights, r.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_weights, n * sizeof(float));
    assert_memory_equal(back.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_adam_m, r.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_adam_m, n * sizeof(float));
    assert_memory_equal(back.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_adam_v, r.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_adam_v, n * sizeof(float));
    assert_int_equal(back.seeds[0].phase[PT_PHASE_PRETEXT].history.epochs, 2);
    assert_true(back.seeds[0].phase[PT_PHASE_PRETEXT].history.loss[1] == r.seeds[0].phase[PT_PHASE_PRETEXT].history.loss[1]);
    assert_int_equal(back.seeds[0].phase[PT_PHASE_BENCHMARK].done, 1);
    assert_int_equal(back.seeds[0].phase[PT_PHASE_BENCHMARK].ckpt_epochs, 0);
    assert_null(back.seeds[0].phase[PT_PHASE_BENCHMARK].ckpt_weights);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(H5Lexists(file, "/checkpoint/42", H5P_DEFAULT) > 0);
    assert_true(H5Lexists(file, "/checkpoint/42/pretext", H5P_DEFAULT) > 0);
    assert_true(H5Lexists(file, "/checkpoint/42/benchmark", H5P_DEFAULT) == 0);
    H5Fclose(file);
    pt_results_free(&back);

    /* Clearing it (the phase finished) removes it from the next save. */
    pt_phase_checkpoint_clear(&r.seeds[0].phase[PT_PHASE_PRETEXT]);
    assert_int_equal(pt_results_save(&r, path, &err), 0);
    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(H5Lexists(file, "/checkpoint", H5P_DEFAULT) == 0);
    H5Fclose(file);

    /* A checkpoint whose history does not match its epoch count is refused, naming it. */
    r.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_epochs = 3; /* but 2 epochs of history */
    r.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_adam_t = 10;
    r.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_weights = random_params(4, 3);
    r.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_adam_m = random_params(4, 4);
    r.seeds[0].phase[PT_PHASE_PRETEXT].ckpt_adam_v = random_params(4, 5);
    assert_int_equal(pt_results_save(&r, path, &err), 0);
    assert_int_equal(pt_results_load(path, &back, &err), -1);
    assert_non_null(strstr(err.msg, "/checkpoint/42/pretext"));
    pt_results_free(&r);
}

/* ------------------------------------------------------------------------------------------- */
/* Atomic saves */

/* Temporary files of a save of path ("<path>.tmp-XXXXXX") left in its folder. */
static int count_temporaries(const char *path) {
    char folder[520], prefix[600];
    snprintf(folder, sizeof folder, "%s", path);
    char *slash = strrchr(folder, '/');
    assert_non_null(slash);
    *slash = 0;
    snprintf(prefix, sizeof prefix, "%s.tmp-", slash + 1);
    DIR *d = opendir(folder);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) n++;
    closedir(d);
    return n;
}

static void test_save_failures_leave_old_file(void **state) {
    PtConfig cfg;
    small_config(&cfg);
    PtResults r, back;
    fill_results(&r, &cfg);
    PtError err = {{0}};
    char good[512], missing[512], folder[512], blocked[512], blocked_tmp[520];
    path_in(good, sizeof good, "good.h5");
    path_in(missing, sizeof missing, "no-such-folder/r.h5");
    path_in(folder, sizeof folder, "a-folder");
    path_in(blocked, sizeof blocked, "blocked.h5");
    snprintf(blocked_tmp, sizeof blocked_tmp, "%s.tmp", blocked);
    assert_int_equal(pt_results_save(&r, good, &err), 0);
    assert_int_equal(pt_results_save(&r, blocked, &err), 0);

    /* A missing folder. */
    memset(&err, 0, sizeof err);
    assert_int_equal(pt_results_save(&r, missing, &err), -1);
    assert_non_null(strstr(err.msg, missing));
    assert_non_null(strstr(err.msg, "does not exist"));

    /* A path that is a folder. */
    assert_int_equal(mkdir(folder, 0755), 0);
    memset(&err, 0, sizeof err);
    assert_int_equal(pt_results_save(&r, folder, &err), -1);
    assert_non_null(strstr(err.msg, folder));
    assert_non_null(strstr(err.msg, "folder"));
    assert_int_equal(count_temporaries(folder), 0);

    /* A leftover of the old fixed temporary name ("<path>.tmp", here a folder) is no obstacle:
     * every save writes a temporary file of its own, and leaves none behind. */
    assert_int_equal(mkdir(blocked_tmp, 0755), 0);
    PtResults changed;
    fill_results(&changed, &cfg);
    changed.seeds[0].phase[PT_PHASE_BENCHMARK].test_accuracy = 0.1234;
    changed.complete = 1;
    assert_int_equal(pt_results_save(&r, blocked, &err), 0);
    assert_int_equal(count_temporaries(blocked), 0);
    assert_int_equal(pt_results_load(blocked, &back, &err), 0);
    assert_results_equal(&r, &back);
    pt_results_free(&back);

    /* The disk fills up (a file size limit: write() fails with EFBIG, like ENOSPC, without
     * needing a small file system): the previous blocked.h5 stays, no temporary file is left. */
    assert_int_equal(rmdir(blocked_tmp), 0);
    struct rlimit saved_limit, small_limit;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved_limit), 0);
    small_limit = saved_limit;
    small_limit.rlim_cur = 20000; /* bytes; the file is about 3.3 MB */
    void (*saved_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small_limit), 0);
    memset(&err, 0, sizeof err);
    int status = pt_results_save(&changed, blocked, &err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved_limit), 0);
    signal(SIGXFSZ, saved_handler);
    assert_int_equal(status, -1);
    assert_non_null(strstr(err.msg, blocked));
    assert_non_null(strstr(err.msg, strerror(EFBIG)));
    assert_int_equal(count_temporaries(blocked), 0);
    assert_int_equal(pt_results_load(blocked, &back, &err), 0);
    assert_results_equal(&r, &back);
    pt_results_free(&back);

    /* The other file was never touched and no temporary file is left next to it. */
    assert_int_equal(pt_results_load(good, &back, &err), 0);
    assert_results_equal(&r, &back);
    pt_results_free(&back);
    assert_int_equal(count_temporaries(good), 0);
    pt_results_free(&changed);
    pt_results_free(&r);
}

/* ------------------------------------------------------------------------------------------- */
/* Load rejects */

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void expect_load_error(const char *path, const char *needle) {
    PtResults r;
    PtError err = {{0}};
    assert_int_equal(pt_results_load(path, &r, &err), -1);
    if (!strstr(err.msg, needle)) fail_msg("load('%s'): message '%s' lacks '%s'", path, err.msg, needle);
    if (!strstr(err.msg, path)) fail_msg("load('%s'): message '%s' does not name the file", path, err.msg);
    /* r is left empty: freeing it is harmless. */
    assert_int_equal(r.n_trials[0], 0);
    pt_results_free(&r);
}

static void test_load_rejects(void **state) {
    char path[512];
    path_in(path, sizeof path, "does-not-exist.h5");
    expect_load_error(path, "does not exist");

    path_in(path, sizeof path, "garbage.h5");
    char garbage[4096];
    PtRng rng;
    pt_rng_seed(&rng, 99);
    for (size_t i = 0; i < sizeof garbage; i++) garbage[i] = (char)pt_rng_below(&rng, 256);
    write_bytes(path, garbage, sizeof garbage);
    expect_load_error(path, "not an HDF5 file");

    path_in(path, sizeof path, "zero.h5");
    write_bytes(path, "", 0);
    expect_load_error(path, "not an HDF5 file");

    expect_load_error(g_dir, "folder");

    /* A real results file cut to half its size. */
    PtConfig cfg;
    small_config(&cfg);
    PtResults r;
    fill_results(&r, &cfg);
    char whole[512];
    path_in(whole, sizeof whole, "whole.h5");
    PtError err;
    assert_int_equal(pt_results_save(&r, whole, &err), 0);
    pt_results_free(&r);
    FILE *f = fopen(whole, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    assert_true(size > 1000);
    fseek(f, 0, SEEK_SET);
    char *bytes = pt_malloc((size_t)size);
    assert_int_equal(fread(bytes, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    path_in(path, sizeof path, "half.h5");
    write_bytes(path, bytes, (size_t)size / 2);
    free(bytes);
    expect_load_error(path, "truncated");

    /* An HDF5 file pretext did not write. */
    path_in(path, sizeof path, "foreign.h5");
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(file >= 0);
    hid_t g = H5Gcreate2(file, "benchmark", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(g >= 0);
    H5Gclose(g);
    assert_true(H5Fclose(file) >= 0);
    expect_load_error(path, "not written by pretext");

    /* A pretext file from a newer format version. */
    path_in(path, sizeof path, "newer.h5");
    file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(file >= 0);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, strlen("pretext-results"));
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(file, "format", type, space, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(attr >= 0);
    assert_true(H5Awrite(attr, type, "pretext-results") >= 0);
    H5Aclose(attr);
    int version = PT_RESULTS_FORMAT_VERSION + 1;
    attr = H5Acreate2(file, "format_version", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(H5Awrite(attr, H5T_NATIVE_INT, &version) >= 0);
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    assert_true(H5Fclose(file) >= 0);
    expect_load_error(path, "newer");
}

/* ------------------------------------------------------------------------------------------- */
/* Config comparison and writability */

static void test_check_config(void **state) {
    PtConfig cfg;
    small_config(&cfg);
    PtResults r;
    pt_results_init(&r, &cfg);
    PtError err = {{0}};
    assert_int_equal(pt_results_check_config(&r, &cfg, "r.h5", &err), 0);

    PtConfig other = cfg;
    assert_int_equal(pt_config_set(&other, "run.threads=4", "test", &err), 0);
    assert_int_equal(pt_results_check_config(&r, &other, "r.h5", &err), 0); /* does not affect results */

    assert_int_equal(pt_config_set(&other, "experiment.seed=7", "test", &err), 0);
    assert_int_equal(pt_config_set(&other, "trials.labels=150", "test", &err), 0);
    memset(&err, 0, sizeof err);
    assert_int_equal(pt_results_check_config(&r, &other, "r.h5", &err), -1);
    assert_non_null(strstr(err.msg, "r.h5"));
    assert_non_null(strstr(err.msg, "experiment.seed"));
    assert_non_null(strstr(err.msg, "12345678901234"));
    assert_non_null(strstr(err.msg, "'7'"));
    assert_non_null(strstr(err.msg, "trials.labels"));
    assert_non_null(strstr(err.msg, "--force"));
    assert_null(strstr(err.msg, "run.threads"));
    assert_null(strstr(err.msg, "benchmark.epochs"));
    pt_results_free(&r);
}

static void test_check_writable(void **state) {
    PtError err = {{0}};
    char path[512];
    path_in(path, sizeof path, "new-file.h5");
    assert_int_equal(pt_results_check_writable(path, &err), 0);
    assert_false(file_exists(path)); /* creates nothing */

    write_bytes(path, "x", 1);
    assert_int_equal(pt_results_check_writable(path, &err), 0); /* existing, writable file */

    char inside_file[600];
    snprintf(inside_file, sizeof inside_file, "%s/r.h5", path); /* folder part is a regular file */
    assert_int_equal(pt_results_check_writable(inside_file, &err), -1);
    assert_non_null(strstr(err.msg, inside_file));

    path_in(path, sizeof path, "missing-folder/r.h5");
    memset(&err, 0, sizeof err);
    assert_int_equal(pt_results_check_writable(path, &err), -1);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "does not exist"));

    path_in(path, sizeof path, "dir-as-results");
    assert_int_equal(mkdir(path, 0755), 0);
    memset(&err, 0, sizeof err);
    assert_int_equal(pt_results_check_writable(path, &err), -1);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "folder"));

    assert_int_equal(pt_results_check_writable("relative-name.h5", &err), 0); /* current folder */
    assert_int_equal(pt_results_check_writable("", &err), -1);
}

/* ------------------------------------------------------------------------------------------- */
/* Keras weights file, checked by an independent h5py reader */

static int run_checker(const char *args) {
    const char *source = getenv("PRETEXT_SOURCE_DIR");
    if (!source) source = PRETEXT_SOURCE_DIR;
    char cmd[4608];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/scripts/check-keras-weights.py' %s", source, args);
    int status = system(cmd);
    assert_true(status != -1);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void copy_file(const char *from, const char *to) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
}

static void test_keras_weights(void **state) {
    PtError err = {{0}};
    char weights10[512], weights4[512], results[512], other_results[512], renamed[512], args[2048];
    path_in(weights10, sizeof weights10, "model10.h5");
    path_in(weights4, sizeof weights4, "model4.h5");
    path_in(results, sizeof results, "results-for-keras.h5");
    path_in(other_results, sizeof other_results, "other-results.h5");
    path_in(renamed, sizeof renamed, "renamed.h5");

    /* A 10-class model with random weights. */
    float *params10 = random_params(10, 77);
    assert_int_equal(pt_keras_weights_save(weights10, params10, 10, &err), 0);
    char tmp[520];
    snprintf(tmp, sizeof tmp, "%s.tmp", weights10);
    assert_false(file_exists(tmp));
    snprintf(args, sizeof args, "'%s' --expect-classes 10", weights10);
    assert_int_equal(run_checker(args), 0);
    snprintf(args, sizeof args, "'%s' --expect-classes 4", weights10);
    assert_int_not_equal(run_checker(args), 0);

    /* The pretext model's weights, compared value by value with the results file. */
    PtConfig cfg;
    small_config(&cfg);
    PtResults r;
    fill_results(&r, &cfg);
    assert_int_equal(pt_results_save(&r, results, &err), 0);
    assert_int_equal(pt_keras_weights_save(weights4, r.seeds[0].phase[PT_PHASE_PRETEXT].weights, 4, &err), 0);
    snprintf(args, sizeof args, "'%s' --expect-classes 4 --results '%s'", weights4, results);
    assert_int_equal(run_checker(args), 0);

    /* A results file with one different weight: the comparison must fail. */
    r.seeds[0].phase[PT_PHASE_PRETEXT].weights[1000] += 0.5f;
    assert_int_equal(pt_results_save(&r, other_results, &err), 0);
    snprintf(args, sizeof args, "'%s' --expect-classes 4 --results '%s'", weights4, other_results);
    assert_int_not_equal(run_checker(args), 0);

    /* A copy with one dataset renamed. */
    copy_file(weights4, renamed);
    hid_t file = H5Fopen(renamed, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(file >= 0);
    assert_true(H5Lmove(file, "conv2d_1/conv2d_1/kernel:0", file, "conv2d_1/conv2d_1/kernel_0", H5P_DEFAULT,
                        H5P_DEFAULT) >= 0);
    assert_true(H5Fclose(file) >= 0);
    snprintf(args, sizeof args, "'%s' --expect-classes 4", renamed);
    assert_int_not_equal(run_checker(args), 0);

    /* Direct look at the layout with plain HDF5. */
    file = H5Fopen(weights4, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(file >= 0);
    hid_t dset = H5Dopen2(file, "dense_1/dense_1/kernel:0", H5P_DEFAULT);
    assert_true(dset >= 0);
    hid_t space = H5Dget_space(dset);
    hsize_t dims[2];
    assert_int_equal(H5Sget_simple_extent_ndims(space), 2);
    H5Sget_simple_extent_dims(space, dims, NULL);
    assert_int_equal(dims[0], 256);
    assert_int_equal(dims[1], 4);
    H5Sclose(space);
    H5Dclose(dset);
    assert_true(H5Aexists(file, "layer_names") > 0);
    H5Fclose(file);

    /* Failure: a missing folder, message names the path. */
    char bad[512];
    path_in(bad, sizeof bad, "nowhere/w.h5");
    memset(&err, 0, sizeof err);
    assert_int_equal(pt_keras_weights_save(bad, params10, 10, &err), -1);
    assert_non_null(strstr(err.msg, bad));
    free(params10);
    pt_results_free(&r);
}

/* ------------------------------------------------------------------------------------------- */
/* SHA-256 */

static void sha_of_bytes(const char *name, const void *data, size_t n, char hex[65]) {
    char path[512];
    path_in(path, sizeof path, name);
    write_bytes(path, data, n);
    PtError err;
    assert_int_equal(pt_sha256_file(path, hex, &err), 0);
}

static void test_sha256(void **state) {
    char hex[65];
    /* FIPS 180-2 / NIST test vectors. */
    sha_of_bytes("empty", "", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha_of_bytes("abc", "abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 56 bytes */
    sha_of_bytes("56", two_blocks, strlen(two_blocks), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

    /* 1 MB + 7 bytes of random data (crosses the 64 KiB read buffer) against sha256sum. */
    size_t n = 1000000 + 7;
    unsigned char *data = pt_malloc(n);
    PtRng rng;
    pt_rng_seed(&rng, 2024);
    for (size_t i = 0; i < n; i++) data[i] = (unsigned char)pt_rng_below(&rng, 256);
    sha_of_bytes("big", data, n, hex);
    free(data);
    char cmd[600], expected[128] = "";
    snprintf(cmd, sizeof cmd, "sha256sum '%s/big'", g_dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(expected, sizeof expected, p));
    assert_int_equal(pclose(p), 0);
    expected[64] = '\0';
    assert_string_equal(hex, expected);

    /* A missing file is an error naming it. */
    PtError err = {{0}};
    char missing[512];
    path_in(missing, sizeof missing, "no-such-file");
    assert_int_equal(pt_sha256_file(missing, hex, &err), -1);
    assert_non_null(strstr(err.msg, missing));
    /* A folder cannot be read. */
    assert_int_equal(pt_sha256_file(g_dir, hex, &err), -1);
}

/* Every HDF5 file (and object in one) opened by the functions is closed again, on success and
 * failure paths alike. */
static void test_no_hdf5_objects_left_open(void **state) {
    assert_int_equal(H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_round_trip_empty),
        cmocka_unit_test(test_round_trip_checkpoint),
        cmocka_unit_test(test_save_failures_leave_old_file),
        cmocka_unit_test(test_load_rejects),
        cmocka_unit_test(test_check_config),
        cmocka_unit_test(test_check_writable),
        cmocka_unit_test(test_keras_weights),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_no_hdf5_objects_left_open),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
