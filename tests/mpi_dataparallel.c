/* mpi_dataparallel.c: the data-parallel runner against the one-process result, run by ctest under
 * mpiexec with 1, 2 and 4 ranks: the allreduced gradient of a split batch equals the gradient of
 * the whole batch on one process; after several data-parallel fit steps the weights are
 * bit-identical on every rank and close to the one-process fit; distributed evaluation equals the
 * local one. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <mpi.h>

#include "pt_data.h"
#include "pt_model.h"
#include "pt_rng.h"
#include "pt_train.h"
#include "pt_util.h"

static int g_rank, g_size;

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
    pt_model_backward(whole, B, NULL, NULL);

    int lo = B * g_rank / g_size, hi = B * (g_rank + 1) / g_size;
    pt_model_zero_grads(part);
    double loss_part = 0;
    int correct_part = 0;
    if (hi > lo) {
        pt_model_forward(part, x + (size_t)lo * PT_IMG_PIXELS, hi - lo, 1, dropout_seed, (uint64_t)lo);
        loss_part = pt_model_loss(part, labels + lo, hi - lo, B, &correct_part);
        pt_model_backward(part, hi - lo, NULL, NULL);
    }
    float *local_grads = pt_malloc(part->n_params * sizeof(float)); /* this rank's share alone */
    memcpy(local_grads, part->grads, part->n_params * sizeof(float));
    part->grads[part->n_params] = (float)loss_part;
    part->grads[part->n_params + 1] = (float)correct_part;
    MPI_Allreduce(MPI_IN_PLACE, part->grads, (int)(part->n_params + PT_GRAD_EXTRA), MPI_FLOAT, MPI_SUM,
                  MPI_COMM_WORLD);
    double rel = max_rel_diff(part->grads, whole->grads, whole->n_params);
    if (g_rank == 0) printf("ranks %d: gradient max relative difference %.3g\n", g_size, rel);
    assert_true(rel < 1e-5);
    assert_true(fabs(part->grads[part->n_params] - loss_whole) < 1e-4 * fabs(loss_whole) + 1e-6);
    assert_int_equal((int)part->grads[part->n_params + 1], correct_whole);
    /* The comparison can fail: one rank's share alone is far from the whole batch's gradient. */
    if (g_size > 1) assert_true(max_rel_diff(local_grads, whole->grads, whole->n_params) > 1e-2);
    free(local_grads);

    pt_model_free(whole);
    pt_model_free(part);
    free(x);
    pt_images_free(&img);
}

/* After a few epochs of data-parallel fit, the weights are bit-identical on every rank and close
 * to those of the same fit on one process. */
static void test_fit_weights_identical_on_all_ranks(void **state) {
    (void)state;
    const uint32_t n = 160;
    PtImages img;
    uint8_t *labels = pt_malloc(n);
    make_images(&img, labels, n, 11);
    uint32_t *order = pt_malloc(n * sizeof(uint32_t));
    for (uint32_t i = 0; i < n; i++) order[i] = i;
    PtView view = {&img, labels, NULL, order, n};

    PtModel *dp = pt_model_create(10, 64);
    PtModel *one = pt_model_create(10, 64);
    PtRng rng;
    pt_rng_seed(&rng, 5);
    pt_model_init_glorot(dp, &rng);
    memcpy(one->params, dp->params, dp->n_params * sizeof(float));
    float *initial = pt_malloc(dp->n_params * sizeof(float));
    memcpy(initial, dp->params, dp->n_params * sizeof(float));

    PtAdam adam_dp, adam_one;
    pt_adam_init(&adam_dp, dp->n_params, 0.001f);
    pt_adam_init(&adam_one, one->n_params, 0.001f);
    PtHistory h_dp, h_one;
    pt_history_init(&h_dp, 3);
    pt_history_init(&h_one, 3);
    PtFitConfig fc = {3, 24, 0.25, 77, 32, "test", 0};
    PtDist world = pt_dist_world(MPI_COMM_WORLD), local = pt_dist_local();
    assert_int_equal(pt_fit(dp, &adam_dp, &view, &fc, &world, &h_dp), PT_FIT_OK);
    assert_int_equal(pt_fit(one, &adam_one, &view, &fc, &local, &h_one), PT_FIT_OK);
    assert_int_equal(h_dp.epochs, 3);

    /* Bit-identical across ranks: compare with rank 0's copy. */
    float *root = pt_malloc(dp->n_params * sizeof(float));
    memcpy(root, dp->params, dp->n_params * sizeof(float));
    MPI_Bcast(root, (int)dp->n_params, MPI_FLOAT, 0, MPI_COMM_WORLD);
    int same = memcmp(root, dp->params, dp->n_params * sizeof(float)) == 0;
    int all_same = 0;
    MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    assert_true(all_same);

    /* The weights moved, and they match the one-process fit (float summation order aside). */
    assert_true(max_rel_diff(dp->params, initial, dp->n_params) > 1e-4);
    double rel = max_rel_diff(dp->params, one->params, dp->n_params);
    if (g_rank == 0) printf("ranks %d: weights vs one-process fit, max relative difference %.3g\n", g_size, rel);
    assert_true(rel < 1e-3);
    for (int e = 0; e < 3; e++) {
        assert_true(fabs(h_dp.loss[e] - h_one.loss[e]) < 1e-3 * fabs(h_one.loss[e]) + 1e-5);
        assert_true(fabs(h_dp.val_accuracy[e] - h_one.val_accuracy[e]) < 0.05);
    }
    /* It learned something on this easy task. */
    assert_true(h_dp.loss[2] < h_dp.loss[0]);

    pt_history_free(&h_dp);
    pt_history_free(&h_one);
    pt_adam_free(&adam_dp);
    pt_adam_free(&adam_one);
    pt_model_free(dp);
    pt_model_free(one);
    free(root);
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

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    pt_util_set_rank(g_rank, g_size);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allreduced_gradient_equals_single_process),
        cmocka_unit_test(test_fit_weights_identical_on_all_ranks),
        cmocka_unit_test(test_distributed_evaluate_equals_local),
    };
    int failed = cmocka_run_group_tests_name("mpi_dataparallel", tests, NULL, NULL);
    int any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return any ? 1 : 0;
}
