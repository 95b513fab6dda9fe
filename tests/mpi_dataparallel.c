/* mpi_dataparallel.c: the data-parallel runner against the one-process result, run by ctest under
 * mpiexec with 1, 2 and 4 ranks: the allreduced gradient of a split batch equals the gradient of
 * the whole batch on one process; after several data-parallel fit steps the weights are
 * bit-identical on every rank and close to the one-process fit; distributed evaluation equals the
 * local one.
 *
 * A failure on one rank ends every rank at once: each test runs through a wrapper whose teardown
 * (which CMocka runs after a failed test too) calls MPI_Abort when the test's body did not reach
 * its end, so the other ranks are not left waiting in a collective until ctest's timeout.
 * PRETEXT_TEST_FAIL_RANK=r makes rank r fail on purpose after the first data-parallel fit of
 * test_fit_weights_identical_on_all_ranks, where the other ranks go on into collectives the
 * failed rank never joins (without the abort, mpiexec -n 2 hung there until killed):
 * tests/e2e_mpi_fail_fast.sh checks that mpiexec then ends within seconds, non-zero. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <mpi.h>

#include "pt_data.h"
#include "pt_gradsync.h"
#include "pt_adam.h"
#include "pt_kernels.h"
#include "pt_model.h"
#include "pt_rng.h"
#include "pt_fit.h"
#include "pt_mpi.h"
#include "pt_util.h"

static int g_rank, g_size;

/* The test hook: rank PRETEXT_TEST_FAIL_RANK fails here (no-op when unset or another rank). */
static void maybe_inject_failure(const char *where) {
    const char *r = getenv("PRETEXT_TEST_FAIL_RANK");
    if (r && *r && atoi(r) == g_rank)
        fail_msg("rank %d: injected failure (PRETEXT_TEST_FAIL_RANK=%s) %s", g_rank, r, where);
}

/* n random 28x28 images with a bright square whose position encodes the label, so that training
 * has something to learn. */
static void make_images(PtImages *img, uint8_t *labels, uint32_t n, uint64_t seed) {
    PtRng rng;
    pt_rng_seed(&rng, seed);
    img->n = n;
    img->rows = img->cols = 28;
    img->pixels = pt_malloc((size_t)n * PT_IMG_PIXELS);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *p = img->pixels + (size_t)i * PT_IMG_PIXELS;
        labels[i] = (uint8_t)pt_rng_below(&rng, 10);
        for (int k = 0; k < PT_IMG_PIXELS; k++) p[k] = (uint8_t)pt_rng_below(&rng, 60);
        int r0 = 2 + 2 * labels[i], c0 = 4 + labels[i];
        for (int r = r0; r < r0 + 5; r++)
            for (int c = c0; c < c0 + 5; c++) p[r * 28 + c] = 255;
    }
}

static double max_rel_diff(const float *a, const float *b, size_t n) {
    double maxabs = 1e-12, maxdiff = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > maxdiff) maxdiff = d;
        if (fabs((double)b[i]) > maxabs) maxabs = fabs((double)b[i]);
    }
    return maxdiff / maxabs;
}

/* The allreduced gradient over the ranks equals the one-process gradient of the combined batch,
 * dropout included (masks are keyed by the sample's position in the global batch). */
static void test_allreduced_gradient_equals_single_process(void **state) {
    (void)state;
    const int B = 10;
    PtImages img;
    uint8_t labels[10];
    make_images(&img, labels, (uint32_t)B, 7);
    float *x = pt_malloc((size_t)B * PT_IMG_PIXELS * sizeof(float));
    uint32_t idx[10];
    for (int i = 0; i < B; i++) idx[i] = (uint32_t)i;
    pt_gather_images(x, &img, idx, NULL, B);

    PtModel *whole = pt_model_create(10, B);
    PtModel *part = pt_model_create(10, B);
    PtRng rng;
    pt_rng_seed(&rng, 1234);
    pt_model_init_glorot(whole, &rng);
    memcpy(part->params, whole->params, whole->n_params * sizeof(float));

    uint64_t dropout_seed = 99;
    pt_model_zero_grads(whole);
    pt_model_forward(whole, x, B, 1, dropout_seed, 0);
    int correct_whole = 0;
    double loss_whole = pt_model_loss(whole, labels, B, B, &correct_whole);
    pt_model_backward(whole, B, NULL);

    int lo = B * g_rank / g_size, hi = B * (g_rank + 1) / g_size;
    pt_model_zero_grads(part);
    double loss_part = 0;
    int correct_part = 0;
    if (hi > lo) {
        pt_model_forward(part, x + (size_t)lo * PT_IMG_PIXELS, hi - lo, 1, dropout_seed, (uint64_t)lo);
        loss_part = pt_model_loss(part, labels + lo, hi - lo, B, &correct_part);
        pt_model_backward(part, hi - lo, NULL);
    }
    float *local_grads = pt_malloc(part->n_params * sizeof(float)); /* this rank's share alone */
    memcpy(local_grads, part->grads, part->n_params * sizeof(float));
    /* the gradients and, after them, the loss sum and hits: one buffer, one allreduce */
    float *sum = pt_malloc((part->n_params + 2) * sizeof(float));
    memcpy(sum, part->grads, part->n_params * sizeof(float));
    sum[part->n_params] = (float)loss_part;
    sum[part->n_params + 1] = (float)correct_part;
    MPI_Allreduce(MPI_IN_PLACE, sum, (int)part->n_params + 2, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double rel = max_rel_diff(sum, whole->grads, whole->n_params);
    if (g_rank == 0) printf("ranks %d: gradient max relative difference %.3g\n", g_size, rel);
    assert_true(rel < 1e-5);
    assert_true(fabs(sum[part->n_params] - loss_whole) < 1e-4 * fabs(loss_whole) + 1e-6);
    assert_int_equal((int)sum[part->n_params + 1], correct_whole);
    free(sum);
    /* The comparison can fail: one rank's share alone is far from the whole batch's gradient. */
    if (g_size > 1) assert_true(max_rel_diff(local_grads, whole->grads, whole->n_params) > 1e-2);
    free(local_grads);

    pt_model_free(whole);
    pt_model_free(part);
    free(x);
    pt_images_free(&img);
}

/* 1 if buf (n floats) is bit-identical on every rank. */
static int same_on_all_ranks(const float *buf, size_t n) {
    float *root = pt_malloc(n * sizeof(float));
    memcpy(root, buf, n * sizeof(float));
    MPI_Bcast(root, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
    int same = memcmp(root, buf, n * sizeof(float)) == 0, all_same = 0;
    MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    free(root);
    return all_same;
}

/* After a few epochs of data-parallel fit, by either gradient sum (MPI allreduce, or the node's
 * shared memory with each rank updating a slice of the weights), the weights are bit-identical on
 * every rank and close to those of the same fit on one process; the two sums agree exactly on 2
 * ranks (a + b either way) and up to summation order beyond. With PRETEXT_NODE_SIZE set (a ctest
 * variant), the shared path runs over emulated nodes and allreduces slices across them. */
static void test_fit_weights_identical_on_all_ranks(void **state) {
    (void)state;
    const uint32_t n = 160;
    PtImages img;
    uint8_t *labels = pt_malloc(n);
    make_images(&img, labels, n, 11);
    uint32_t *order = pt_malloc(n * sizeof(uint32_t));
    for (uint32_t i = 0; i < n; i++) order[i] = i;
    PtView view = {&img, labels, NULL, order, n};

    PtModel *one = pt_model_create(10, 64);
    PtRng rng;
    pt_rng_seed(&rng, 5);
    pt_model_init_glorot(one, &rng);
    float *initial = pt_malloc(one->n_params * sizeof(float));
    memcpy(initial, one->params, one->n_params * sizeof(float));
    PtDist world = pt_dist_world(MPI_COMM_WORLD), local = pt_dist_local();

    PtAdam adam_one;
    pt_adam_init(&adam_one, one->n_params, 0.001f);
    PtHistory h_one;
    pt_history_init(&h_one, 3);
    PtFitConfig fc = pt_fit_config_defaults();
    fc.epochs = 3;
    fc.batch_size = 24;
    fc.validation_split = 0.25;
    fc.seed = 77;
    fc.eval_batch_size = 32;
    fc.phase = "test";
    assert_int_equal(pt_fit(one, &adam_one, &view, &fc, &local, &h_one), PT_FIT_OK);

    const int modes[2] = {PT_GRADSUM_AUTO, PT_GRADSUM_MPI};
    float *result[2];
    for (int k = 0; k < 2; k++) {
        PtModel *dp = pt_model_create(10, 64);
        memcpy(dp->params, initial, dp->n_params * sizeof(float));
        PtAdam adam_dp;
        pt_adam_init(&adam_dp, dp->n_params, 0.001f);
        PtHistory h_dp;
        pt_history_init(&h_dp, 3);
        fc.gradient_sum = modes[k];
        assert_int_equal(pt_fit(dp, &adam_dp, &view, &fc, &world, &h_dp), PT_FIT_OK);
        assert_int_equal(h_dp.epochs, 3);
        /* the model is back on its own buffers, and they hold the result */
        assert_ptr_equal(dp->params, dp->own_params);
        assert_ptr_equal(dp->grads, dp->own_grads);
        if (k == 0) maybe_inject_failure("after the first data-parallel fit");
        assert_true(same_on_all_ranks(dp->params, dp->n_params));

        /* The weights moved, and they match the one-process fit (float summation order aside). */
        assert_true(max_rel_diff(dp->params, initial, dp->n_params) > 1e-4);
        double rel = max_rel_diff(dp->params, one->params, dp->n_params);
        if (g_rank == 0)
            printf("ranks %d, gradient_sum %s: weights vs one-process fit, max relative difference %.3g\n",
                   g_size, k == 0 ? "auto" : "mpi", rel);
        assert_true(rel < 1e-3);
        for (int e = 0; e < 3; e++) {
            assert_true(fabs(h_dp.loss[e] - h_one.loss[e]) < 1e-3 * fabs(h_one.loss[e]) + 1e-5);
            assert_true(fabs(h_dp.val_accuracy[e] - h_one.val_accuracy[e]) < 0.05);
        }
        assert_true(h_dp.loss[2] < h_dp.loss[0]); /* it learned something on this easy task */
        result[k] = pt_malloc(dp->n_params * sizeof(float));
        memcpy(result[k], dp->params, dp->n_params * sizeof(float));
        pt_history_free(&h_dp);
        pt_adam_free(&adam_dp);
        pt_model_free(dp);
    }
    double rel = max_rel_diff(result[0], result[1], one->n_params);
    if (g_rank == 0) printf("ranks %d: auto vs mpi gradient sum, max relative difference %.3g\n", g_size, rel);
    if (g_size <= 2) assert_memory_equal(result[0], result[1], one->n_params * sizeof(float));
    else assert_true(rel < 1e-4);

    /* Which path ran: shared memory whenever nodes have more than one rank. */
    PtModel *probe = pt_model_create(10, 4);
    PtGradSync *sync = pt_gradsync_create(probe, MPI_COMM_WORLD, g_rank, g_size, PT_GRADSUM_AUTO);
    const char *node_size = getenv("PRETEXT_NODE_SIZE");
    int expect_shared = g_size > 1 && (!node_size || atoi(node_size) > 1);
    assert_int_equal(pt_gradsync_is_shared(sync), expect_shared);
    pt_gradsync_free(sync);
    sync = pt_gradsync_create(probe, MPI_COMM_WORLD, g_rank, g_size, PT_GRADSUM_MPI);
    assert_int_equal(pt_gradsync_is_shared(sync), 0);
    pt_gradsync_free(sync);
    pt_model_free(probe);

    free(result[0]);
    free(result[1]);
    pt_history_free(&h_one);
    pt_adam_free(&adam_one);
    pt_model_free(one);
    free(initial);
    free(order);
    free(labels);
    pt_images_free(&img);
}

/* Distributed evaluation (view split over ranks, sums reduced) equals the local evaluation. */
static void test_distributed_evaluate_equals_local(void **state) {
    (void)state;
    const uint32_t n = 101;
    PtImages img;
    uint8_t *labels = pt_malloc(n);
    make_images(&img, labels, n, 3);
    uint32_t *order = pt_malloc(n * sizeof(uint32_t));
    for (uint32_t i = 0; i < n; i++) order[i] = i;
    PtView view = {&img, labels, NULL, order, n};
    PtModel *m = pt_model_create(10, 16);
    PtRng rng;
    pt_rng_seed(&rng, 9);
    pt_model_init_glorot(m, &rng);
    PtDist world = pt_dist_world(MPI_COMM_WORLD), local = pt_dist_local();
    double l1, a1, l2, a2;
    pt_evaluate(m, &view, 16, &world, &l1, &a1);
    pt_evaluate(m, &view, 7, &local, &l2, &a2);
    assert_true(fabs(l1 - l2) < 1e-5 * fabs(l2));
    assert_true(fabs(a1 - a2) < 1e-12);
    assert_true(l1 > 0.5); /* an untrained 10-class model: loss near ln 10 */
    pt_model_free(m);
    free(order);
    free(labels);
    pt_images_free(&img);
}

/* Every test runs as TEST_ALL_RANKS(name): the body, then a flag that it finished. The teardown
 * runs after the body returns or fails; a failed body (the flag unset) aborts every rank. */
static int g_body_done;
static int before_test(void **state) {
    (void)state;
    g_body_done = 0;
    return 0;
}
static int after_test(void **state) {
    (void)state;
    if (!g_body_done) {
        fprintf(stderr, "mpi_dataparallel: rank %d: a test failed; aborting all %d ranks (MPI_Abort)\n",
                g_rank, g_size);
        fflush(stdout);
        fflush(stderr);
        /* A moment for the launcher to forward the lines above (MPICH's Hydra, busy, killed
         * the job before passing them on). */
        nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000}, NULL);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return 0;
}
#define TEST_ALL_RANKS(f)                                                                          \
    static void f##_then_done(void **state) {                                                      \
        f(state);                                                                                  \
        g_body_done = 1;                                                                           \
    }
TEST_ALL_RANKS(test_allreduced_gradient_equals_single_process)
TEST_ALL_RANKS(test_fit_weights_identical_on_all_ranks)
TEST_ALL_RANKS(test_distributed_evaluate_equals_local)
#define ALL_RANKS_TEST(f) {#f, f##_then_done, before_test, after_test, NULL}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    pt_mpi_setup_errors();
    PtKernelSet set;
    int skip = pt_kernels_for_test(&set);
    if (skip) {
        MPI_Finalize();
        return skip;
    }
    const struct CMUnitTest tests[] = {
        ALL_RANKS_TEST(test_allreduced_gradient_equals_single_process),
        ALL_RANKS_TEST(test_fit_weights_identical_on_all_ranks),
        ALL_RANKS_TEST(test_distributed_evaluate_equals_local),
    };
    int failed = cmocka_run_group_tests_name("mpi_dataparallel", tests, NULL, NULL);
    int any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return any ? 1 : 0;
}
