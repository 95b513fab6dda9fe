/* test_model_grad.c: the whole network (pt_model.h): parameter layout and counts in Keras order,
 * Glorot init, whole-network gradients against finite differences (dropout on), frozen layers,
 * the early dense-gradient callback, batch-split invariance of dropout, determinism, and that
 * Adam overfits a small batch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_adam.h"
#include "pt_kernels.h"
#include "pt_model.h"

static float *random_images(int B, PtRng *rng) {
    float *x = malloc((size_t)B * 784 * sizeof *x);
    assert_non_null(x);
    /* MNIST-like: mostly blank, some ink in (0, 1] */
    for (int k = 0; k < B * 784; k++) x[k] = pt_rng_uniform(rng) < 0.6f ? 0.0f : pt_rng_uniform(rng);
    return x;
}

/* B MNIST-like images (caller frees) and their labels in [0, classes), drawn from rng in that order. */
static float *random_batch(int B, int classes, uint8_t *labels, PtRng *rng) {
    float *x = random_images(B, rng);
    for (int i = 0; i < B; i++) labels[i] = (uint8_t)pt_rng_below(rng, classes);
    return x;
}

/* Over [first, first + n) of two gradient buffers: the largest |a - b| (*worst) and the largest
 * |a| (*scale). Plain comparisons, not an fmax reduction: aarch64 GCC 12.2 crashes (internal
 * compiler error in vect_transform_reduction) vectorising two fmax reductions in one loop. */
static void grad_difference(const float *a, const float *b, size_t first, size_t n, double *worst,
                            double *scale) {
    *worst = 0;
    *scale = 0;
    for (size_t q = first; q < first + n; q++) {
        double diff = fabs((double)a[q] - b[q]), size = fabs((double)a[q]);
        if (diff > *worst) *worst = diff;
        if (size > *scale) *scale = size;
    }
}

static PtModel *make_model(int classes, int max_batch, uint64_t seed) {
    PtModel *m = pt_model_create(classes, max_batch);
    PtRng rng;
    pt_rng_seed(&rng, seed);
    pt_model_init_glorot(m, &rng);
    return m;
}

static void test_layout(void **state) {
    (void)state;
    PtTensorInfo t[PT_NUM_TENSORS];
    assert_int_equal(pt_tensor_layout(10, t), 412778);
    assert_int_equal(pt_tensor_layout(4, t), 411236);
    const int shapes[PT_NUM_TENSORS][4] = {{2, 2, 1, 64}, {64}, {2, 2, 64, 32}, {32},
                                           {1568, 256},   {256}, {256, 4},      {4}};
    const int ndims[PT_NUM_TENSORS] = {4, 1, 4, 1, 2, 1, 2, 1};
    const size_t offsets[PT_NUM_TENSORS] = {0, 256, 320, 8512, 8544, 409952, 410208, 411232};
    for (int k = 0; k < PT_NUM_TENSORS; k++) {
        assert_int_equal(t[k].ndim, ndims[k]);
        for (int d = 0; d < ndims[k]; d++) assert_int_equal(t[k].shape[d], shapes[k][d]);
        assert_int_equal(t[k].offset, offsets[k]);
        assert_int_equal(t[k].layer, k / 2);
    }
    assert_string_equal(t[PT_T_CONV1_KERNEL].name, "conv2d/kernel");
    assert_string_equal(t[PT_T_DENSE2_BIAS].name, "dense_1/bias");
    PtModel *m = pt_model_create(10, 2);
    assert_int_equal(m->n_params, 412778);
    assert_ptr_equal(m->p.dense1_kernel, m->params + 8544);
    assert_ptr_equal(m->g.dense2_bias, m->grads + 412768);
    pt_model_free(m);
}

static void test_glorot(void **state) {
    (void)state;
    PtModel *m = make_model(10, 1, 5);
    /* limits from docs/keras-semantics.md, computed independently */
    const double limits[4] = {0.15191, 0.125, 0.057354, 0.150188};
    for (int k = 0; k < PT_NUM_TENSORS; k++) {
        const PtTensorInfo *info = &m->tensors[k];
        const float *w = m->params + info->offset;
        if (k % 2 == 1) {
            for (size_t q = 0; q < info->size; q++) assert_true(w[q] == 0.0f);
            continue;
        }
        double L = limits[k / 2], maxabs = 0, mean = 0;
        for (size_t q = 0; q < info->size; q++) {
            maxabs = fmax(maxabs, fabs(w[q]));
            mean += w[q];
        }
        mean /= (double)info->size;
        assert_true(maxabs <= L * (1 + 1e-4));
        assert_true(maxabs > 0.97 * L);
        assert_true(fabs(mean) < 4.0 * L / sqrt(3.0 * (double)info->size)); /* 4 sd */
    }
    /* Same seed, same weights; another seed, other weights. */
    PtModel *same = make_model(10, 1, 5), *other = make_model(10, 1, 6);
    assert_memory_equal(m->params, same->params, m->n_params * sizeof(float));
    assert_memory_not_equal(m->params, other->params, m->n_params * sizeof(float));
    pt_model_free(m);
    pt_model_free(same);
    pt_model_free(other);
}

/* Loss (mean over the batch) with the given dropout seed; double sum of float per-sample losses. */
static double batch_loss(PtModel *m, const float *x, const uint8_t *y, int B, int training) {
    pt_model_forward(m, x, B, training, 99, 1000);
    return pt_model_loss_only(m, y, B, NULL) / B;
}

/* B = 1 takes the one-sample path (dense1 skipping zero inputs and unused input gradients). */
static void check_gradients(int classes, int B) {
    PtRng rng;
    pt_rng_seed(&rng, 100 + classes);
    PtModel *m = make_model(classes, B, 8);
    /* non-zero biases so that they matter */
    for (int k = 1; k < PT_NUM_TENSORS; k += 2)
        for (size_t q = 0; q < m->tensors[k].size; q++)
            m->params[m->tensors[k].offset + q] = 0.1f * (2 * pt_rng_uniform(&rng) - 1);
    float *x = random_images(B, &rng);
    uint8_t y[3];
    assert_true(B <= 3);
    for (int i = 0; i < B; i++) y[i] = (uint8_t)pt_rng_below(&rng, classes);

    pt_model_zero_grads(m);
    pt_model_forward(m, x, B, 1, 99, 1000);
    double loss0 = pt_model_loss(m, y, B, B, NULL) / B;
    pt_model_backward(m, B, NULL);
    assert_true(batch_loss(m, x, y, B, 1) == loss0); /* same seed: same masks */
    assert_true(fabs(batch_loss(m, x, y, B, 0) - loss0) > 1e-6); /* dropout did something */

    int checked = 0, skipped = 0;
    for (int k = 0; k < PT_NUM_TENSORS; k++) {
        const PtTensorInfo *info = &m->tensors[k];
        /* A conv weight moves thousands of pre-activations: max-pool winners flip within a few
         * 1e-3, so conv tensors need a small step (float rounding of the loss then limits the
         * accuracy to a few 1e-4, hence the absolute tolerance). */
        const float eps = k < PT_T_DENSE1_KERNEL ? 2.5e-4f : 2e-3f;
        int nonzero = 0;
        for (int s = 0; s < 24; s++) {
            size_t q = info->offset + pt_rng_below(&rng, (uint32_t)info->size);
            float *p = &m->params[q], saved = *p;
            *p = saved + eps;
            double up = batch_loss(m, x, y, B, 1);
            *p = saved - eps;
            double down = batch_loss(m, x, y, B, 1);
            *p = saved;
            /* A relu or max-pool kink between saved-eps and saved+eps shows as one-sided slopes
             * that disagree: such points are not differentiable there and are skipped. */
            double slope_up = (up - loss0) / eps, slope_down = (loss0 - down) / eps;
            if (fabs(slope_up - slope_down) > 0.03 * fmax(fabs(slope_up), fabs(slope_down)) + 5e-4) {
                skipped++;
                continue;
            }
            double fd = (up - down) / (2.0 * eps), analytic = m->grads[q];
            nonzero += analytic != 0.0;
            checked++;
            if (fabs(fd - analytic) > 0.03 * fabs(analytic) + 5e-4) {
                fprintf(stderr, "%s[%zu] (%d classes): finite difference %.8g, analytic %.8g (slopes %.8g %.8g)\n",
                        info->name, q - info->offset, classes, fd, analytic, slope_up, slope_down);
                fail();
            }
        }
        assert_true(nonzero > 0); /* every tensor has a gradient that was checked */
    }
    fprintf(stderr, "%d classes: %d parameters checked, %d skipped at kinks\n", classes, checked, skipped);
    assert_true(skipped <= checked / 4);
    free(x);
    pt_model_free(m);
}

static void test_gradients_10(void **state) { (void)state; check_gradients(10, 3); }
static void test_gradients_4(void **state) { (void)state; check_gradients(4, 3); }
static void test_gradients_one_sample(void **state) { (void)state; check_gradients(10, 1); }

typedef struct {
    int calls;
    size_t first, count;
    int conv_grads_untouched; /* conv grads were still zero at the call: called before convs */
    PtModel *model;
} CallbackLog;

static void on_dense_ready(void *ctx, size_t first, size_t n) {
    CallbackLog *log = ctx;
    log->calls++;
    log->first = first;
    log->count = n;
    const PtModel *m = log->model;
    size_t n_conv = m->tensors[PT_T_DENSE1_KERNEL].offset;
    log->conv_grads_untouched = 1;
    for (size_t q = 0; q < n_conv; q++)
        if (m->grads[q] != 0.0f) log->conv_grads_untouched = 0;
}

static void test_frozen_and_callback(void **state) {
    (void)state;
    enum { B = 4 };
    PtRng rng;
    pt_rng_seed(&rng, 31);
    PtModel *m = make_model(10, B, 9);
    float *x = random_images(B, &rng);
    uint8_t y[B] = {1, 2, 3, 4};
    PtAdam adam;
    pt_adam_init(&adam, m->n_params, 1e-3f);

    /* One full step first, so that m and v are non-zero everywhere that gets gradients. */
    CallbackLog log = {.model = m};
    pt_model_zero_grads(m);
    pt_model_forward(m, x, B, 1, 5, 0);
    pt_model_loss(m, y, B, B, NULL);
    pt_model_backward(m, B, &(PtBackwardHooks){on_dense_ready, NULL, &log});
    assert_int_equal(log.calls, 1);
    assert_int_equal(log.first, m->tensors[PT_T_DENSE1_KERNEL].offset);
    assert_int_equal(log.count, m->n_params - m->tensors[PT_T_DENSE1_KERNEL].offset);
    assert_int_equal(log.conv_grads_untouched, 1);
    int conv_nonzero = 0;
    for (size_t q = 0; q < m->tensors[PT_T_DENSE1_KERNEL].offset; q++) conv_nonzero += m->grads[q] != 0.0f;
    assert_true(conv_nonzero > 0);
    pt_adam_step(&adam, m);

    /* Freeze both convs (the downstream task's first phase). */
    m->trainable[PT_LAYER_CONV1] = m->trainable[PT_LAYER_CONV2] = 0;
    size_t n_conv = m->tensors[PT_T_DENSE1_KERNEL].offset;
    float *p_before = malloc(m->n_params * sizeof(float)), *m_before = malloc(n_conv * sizeof(float)),
          *v_before = malloc(n_conv * sizeof(float));
    memcpy(p_before, m->params, m->n_params * sizeof(float));
    memcpy(m_before, adam.m, n_conv * sizeof(float));
    memcpy(v_before, adam.v, n_conv * sizeof(float));
    for (int step = 0; step < 3; step++) {
        log.calls = 0;
        pt_model_zero_grads(m);
        pt_model_forward(m, x, B, 1, 6 + step, 0);
        pt_model_loss(m, y, B, B, NULL);
        pt_model_backward(m, B, &(PtBackwardHooks){on_dense_ready, NULL, &log});
        assert_int_equal(log.calls, 1);
        for (size_t q = 0; q < n_conv; q++) assert_true(m->grads[q] == 0.0f);
        pt_adam_step(&adam, m);
    }
    assert_memory_equal(m->params, p_before, n_conv * sizeof(float));
    assert_memory_equal(adam.m, m_before, n_conv * sizeof(float));
    assert_memory_equal(adam.v, v_before, n_conv * sizeof(float));
    size_t changed = 0;
    for (size_t q = n_conv; q < m->n_params; q++) changed += m->params[q] != p_before[q];
    assert_true(changed > (m->n_params - n_conv) / 2);

    /* dense2 frozen: no callback, dense2 grads stay zero, dense1 still gets gradients */
    m->trainable[PT_LAYER_DENSE2] = 0;
    log.calls = 0;
    pt_model_zero_grads(m);
    pt_model_forward(m, x, B, 1, 20, 0);
    pt_model_loss(m, y, B, B, NULL);
    pt_model_backward(m, B, &(PtBackwardHooks){on_dense_ready, NULL, &log});
    assert_int_equal(log.calls, 0);
    size_t d2 = m->tensors[PT_T_DENSE2_KERNEL].offset, d1 = m->tensors[PT_T_DENSE1_KERNEL].offset;
    for (size_t q = d2; q < m->n_params; q++) assert_true(m->grads[q] == 0.0f);
    int d1_nonzero = 0;
    for (size_t q = d1; q < d2; q++) d1_nonzero += m->grads[q] != 0.0f;
    assert_true(d1_nonzero > 0);

    free(p_before); free(m_before); free(v_before); free(x);
    pt_adam_free(&adam);
    pt_model_free(m);
}

/* The masks of a sample depend on its global index only: a batch split in two gives the same
 * logits as the whole batch. */
static void test_batch_split(void **state) {
    (void)state;
    enum { B = 6 };
    PtRng rng;
    pt_rng_seed(&rng, 41);
    PtModel *m = make_model(10, B, 10);
    float *x = random_images(B, &rng);
    float whole[B * 10];
    pt_model_forward(m, x, B, 1, 77, 500);
    memcpy(whole, pt_model_logits(m), sizeof whole);
    pt_model_forward(m, x, 2, 1, 77, 500);
    for (int k = 0; k < 2 * 10; k++) assert_float_equal(pt_model_logits(m)[k], whole[k], 1e-5);
    pt_model_forward(m, x + 2 * 784, 4, 1, 77, 502);
    for (int k = 0; k < 4 * 10; k++) assert_float_equal(pt_model_logits(m)[k], whole[20 + k], 1e-5);
    /* other sample indices: other masks */
    pt_model_forward(m, x, 2, 1, 77, 600);
    int differ = 0;
    for (int k = 0; k < 20; k++) differ += fabsf(pt_model_logits(m)[k] - whole[k]) > 1e-4f;
    assert_true(differ > 0);
    free(x);
    pt_model_free(m);
}

/* A batch larger than conv2's im2col chunk (64 images) takes the multi-chunk path; its gradient
 * must equal the sum of the gradients of its two halves (same global sample indices, same denom). */
static void test_large_batch_chunks(void **state) {
    (void)state;
    enum { B = 70, SPLIT = 40 };
    PtRng rng;
    pt_rng_seed(&rng, 71);
    PtModel *whole = make_model(10, B, 14), *parts = make_model(10, B, 14);
    uint8_t y[B];
    float *x = random_batch(B, 10, y, &rng);
    pt_model_zero_grads(whole);
    pt_model_forward(whole, x, B, 1, 3, 0);
    double loss_whole = pt_model_loss(whole, y, B, B, NULL);
    pt_model_backward(whole, B, NULL);
    pt_model_zero_grads(parts);
    pt_model_forward(parts, x, SPLIT, 1, 3, 0);
    double loss_parts = pt_model_loss(parts, y, SPLIT, B, NULL);
    pt_model_backward(parts, SPLIT, NULL);
    pt_model_forward(parts, x + SPLIT * 784, B - SPLIT, 1, 3, SPLIT);
    loss_parts += pt_model_loss(parts, y + SPLIT, B - SPLIT, B, NULL);
    pt_model_backward(parts, B - SPLIT, NULL);
    assert_true(fabs(loss_whole - loss_parts) < 1e-5 * fabs(loss_whole));
    double worst, scale;
    grad_difference(whole->grads, parts->grads, 0, whole->n_params, &worst, &scale);
    assert_true(scale > 0);
    assert_true(worst < 1e-4 * scale);
    free(x);
    pt_model_free(whole);
    pt_model_free(parts);
}

/* A batch's gradient equals the sum of its samples' gradients taken one at a time (the trials'
 * path: dense1 skips zero inputs and the input gradients that dropout or relu discard), with the
 * same global sample indices, so the same dropout masks; the logits agree too. */
static void test_one_sample_parts(void **state) {
    (void)state;
    enum { B = 6 };
    PtRng rng;
    pt_rng_seed(&rng, 73);
    PtModel *whole = make_model(10, B, 15), *parts = make_model(10, B, 15);
    uint8_t y[B];
    float *x = random_batch(B, 10, y, &rng);
    float logits[B * 10];
    pt_model_zero_grads(whole);
    pt_model_forward(whole, x, B, 1, 5, 0);
    memcpy(logits, pt_model_logits(whole), sizeof logits);
    double loss_whole = pt_model_loss(whole, y, B, B, NULL);
    pt_model_backward(whole, B, NULL);
    pt_model_zero_grads(parts);
    double loss_parts = 0;
    for (int i = 0; i < B; i++) {
        pt_model_forward(parts, x + (size_t)i * 784, 1, 1, 5, (uint64_t)i);
        for (int c = 0; c < 10; c++)
            assert_true(fabsf(pt_model_logits(parts)[c] - logits[i * 10 + c]) <= 1e-5f * (1 + fabsf(logits[i * 10 + c])));
        loss_parts += pt_model_loss(parts, y + i, 1, B, NULL);
        pt_model_backward(parts, 1, NULL);
    }
    assert_true(fabs(loss_whole - loss_parts) < 1e-5 * fabs(loss_whole));
    for (int t = 0; t < PT_NUM_TENSORS; t++) { /* every tensor, the conv ones through dense1's dx */
        const PtTensorInfo *info = &whole->tensors[t];
        double worst, scale;
        grad_difference(whole->grads, parts->grads, info->offset, info->size, &worst, &scale);
        if (!(scale > 0 && worst < 1e-4 * scale)) {
            fprintf(stderr, "%s: per-sample gradients differ by %g (largest %g)\n", info->name, worst, scale);
            fail();
        }
    }
    free(x);
    pt_model_free(whole);
    pt_model_free(parts);
}

/* A few full steps; returns the final parameters (caller frees). */
static float *train_steps(uint64_t dropout_seed, int steps, const float *x, const uint8_t *y, int B) {
    PtModel *m = make_model(10, B, 12);
    PtAdam adam;
    pt_adam_init(&adam, m->n_params, 1e-3f);
    for (int s = 0; s < steps; s++) {
        pt_model_zero_grads(m);
        pt_model_forward(m, x, B, 1, dropout_seed, (uint64_t)s * B);
        pt_model_loss(m, y, B, B, NULL);
        pt_model_backward(m, B, NULL);
        pt_adam_step(&adam, m);
    }
    float *out = malloc(m->n_params * sizeof(float));
    memcpy(out, m->params, m->n_params * sizeof(float));
    pt_adam_free(&adam);
    pt_model_free(m);
    return out;
}

static void test_determinism(void **state) {
    (void)state;
    enum { B = 5 };
    PtRng rng;
    pt_rng_seed(&rng, 51);
    float *x = random_images(B, &rng);
    uint8_t y[B] = {0, 9, 3, 3, 7};
    size_t bytes = 412778 * sizeof(float);
    float *a = train_steps(3, 4, x, y, B), *b = train_steps(3, 4, x, y, B), *c = train_steps(4, 4, x, y, B);
    assert_memory_equal(a, b, bytes);
    assert_memory_not_equal(a, c, bytes);
    free(a); free(b); free(c); free(x);
}

static void test_overfit(void **state) {
    (void)state;
    enum { B = 16 };
    PtRng rng;
    pt_rng_seed(&rng, 61);
    PtModel *m = make_model(10, B, 13);
    float *x = random_images(B, &rng);
    uint8_t y[B];
    for (int i = 0; i < B; i++) y[i] = (uint8_t)pt_rng_below(&rng, 10);
    PtAdam adam;
    pt_adam_init(&adam, m->n_params, 1e-3f);
    double before = batch_loss(m, x, y, B, 0);
    for (int s = 0; s < 50; s++) {
        pt_model_zero_grads(m);
        pt_model_forward(m, x, B, 1, 1, (uint64_t)s * B);
        pt_model_loss(m, y, B, B, NULL);
        pt_model_backward(m, B, NULL);
        pt_adam_step(&adam, m);
    }
    int correct = 0;
    pt_model_forward(m, x, B, 0, 0, 0);
    double after = pt_model_loss_only(m, y, B, &correct) / B;
    assert_true(before > 1.5);          /* about log(10) at init */
    assert_true(after < 0.3 * before);
    assert_true(correct >= B - 2);
    free(x);
    pt_adam_free(&adam);
    pt_model_free(m);
}

int main(void) {
    PtKernelSet set;
    int skip = pt_kernels_for_test(&set); /* the set named by PRETEXT_KERNELS */
    if (skip) return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_glorot),
        cmocka_unit_test(test_gradients_10),
        cmocka_unit_test(test_gradients_4),
        cmocka_unit_test(test_gradients_one_sample),
        cmocka_unit_test(test_one_sample_parts),
        cmocka_unit_test(test_frozen_and_callback),
        cmocka_unit_test(test_batch_split),
        cmocka_unit_test(test_large_batch_chunks),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_overfit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
