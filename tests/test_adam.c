/* test_adam.c: pt_adam_* against TensorFlow's Adam written out in double in this file, with a
 * hand-chosen gradient sequence: bias-corrected lr_t, epsilon added to sqrt(v) (gradients small
 * enough that it matters), frozen layers untouched, t counting steps, and reset. */
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

enum { STEPS = 5 };
/* Two parameters with known gradients per step: one of order 1 (epsilon negligible), one of
 * order 1e-7 (sqrt(v) is about 3e-9 after the first step: epsilon = 1e-7 dominates). */
static const double grad_big[STEPS] = {0.5, -0.25, 1.0, 0.0, 2.0};
static const double grad_tiny[STEPS] = {1e-7, 2e-7, -1e-7, 1e-7, 3e-7};

/* TensorFlow's update in double. pytorch_form = 1 uses m_hat/(sqrt(v_hat)+eps) instead, only to
 * show that the test tells the two apart. */
static void reference(const double *g, int steps, double lr, int pytorch_form, double *w_out) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-7;
    double m = 0, v = 0, w = 0;
    for (int t = 1; t <= steps; t++) {
        m += (g[t - 1] - m) * (1 - b1);
        v += (g[t - 1] * g[t - 1] - v) * (1 - b2);
        if (pytorch_form) {
            double mh = m / (1 - pow(b1, t)), vh = v / (1 - pow(b2, t));
            w -= lr * mh / (sqrt(vh) + eps);
        } else {
            double lr_t = lr * sqrt(1 - pow(b2, t)) / (1 - pow(b1, t));
            w -= lr_t * m / (sqrt(v) + eps);
        }
        w_out[t - 1] = w;
    }
}

static void assert_rel(double got, double expect, double rel, const char *what) {
    if (fabs(got - expect) > rel * fabs(expect) + 1e-15) {
        fprintf(stderr, "%s: got %.10g, expected %.10g\n", what, got, expect);
        fail();
    }
}

static void test_adam_closed_form(void **state) {
    (void)state;
    PtModel *model = pt_model_create(10, 1);
    memset(model->params, 0, model->n_params * sizeof(float));
    PtAdam adam;
    pt_adam_init(&adam, model->n_params, 1e-3f);
    assert_int_equal(adam.t, 0);
    assert_float_equal(adam.beta1, 0.9f, 0);
    assert_float_equal(adam.beta2, 0.999f, 0);
    assert_float_equal(adam.epsilon, 1e-7f, 0);
    size_t i_big = model->tensors[PT_T_DENSE2_BIAS].offset + 3;
    size_t i_tiny = model->tensors[PT_T_CONV1_KERNEL].offset + 17;
    double w_big[STEPS], w_tiny[STEPS], w_tiny_pt[STEPS];
    reference(grad_big, STEPS, 1e-3, 0, w_big);
    reference(grad_tiny, STEPS, 1e-3, 0, w_tiny);
    reference(grad_tiny, STEPS, 1e-3, 1, w_tiny_pt);
    /* The PyTorch form differs by far more than the tolerance: epsilon's place is tested. */
    assert_true(fabs(w_tiny_pt[0] - w_tiny[0]) > 0.5 * fabs(w_tiny[0]));
    /* Hand fact: the first step moves a weight with a large gradient by about lr against it. */
    assert_true(fabs(w_big[0] + 1e-3) < 1e-6);

    for (int t = 0; t < STEPS; t++) {
        pt_model_zero_grads(model);
        model->grads[i_big] = (float)grad_big[t];
        model->grads[i_tiny] = (float)grad_tiny[t];
        pt_adam_step(&adam, model);
        assert_int_equal(adam.t, t + 1);
        assert_rel(model->params[i_big], w_big[t], 1e-5, "big-gradient weight");
        assert_rel(model->params[i_tiny], w_tiny[t], 1e-5, "tiny-gradient weight");
        /* parameters with zero gradient (and zero moments) do not move */
        assert_true(model->params[i_big + 1] == 0.0f);
        assert_true(adam.m[i_big + 1] == 0.0f && adam.v[i_big + 1] == 0.0f);
    }
    assert_float_equal(model->params[i_big], -1e-3f, 5e-3); /* it did move, and plausibly */

    /* reset: m = v = 0, t = 0; the next step is a first step again */
    pt_adam_reset(&adam);
    assert_int_equal(adam.t, 0);
    for (size_t k = 0; k < adam.n; k++) assert_true(adam.m[k] == 0.0f && adam.v[k] == 0.0f);
    float before = model->params[i_big];
    pt_model_zero_grads(model);
    model->grads[i_big] = (float)grad_big[0];
    pt_adam_step(&adam, model);
    assert_rel((double)model->params[i_big] - before, w_big[0], 1e-4, "step after reset");

    /* Frozen layers: params, m and v untouched, but t still counts. */
    for (int l = 0; l < PT_NUM_LAYERS; l++) model->trainable[l] = 0;
    float p_before = model->params[i_big], m_before = adam.m[i_big], v_before = adam.v[i_big];
    pt_adam_step(&adam, model);
    assert_int_equal(adam.t, 2);
    assert_true(model->params[i_big] == p_before && adam.m[i_big] == m_before &&
                adam.v[i_big] == v_before);
    pt_adam_free(&adam);
    pt_model_free(model);
}

/* The sliced steps of the shared-memory data-parallel path: Adam over [lo, hi) slices that cover
 * the buffer, with the gradient read as the sum of two or three buffers, gives bit for bit the
 * full step on the summed gradient (added in the same order), and each slice leaves everything
 * outside it untouched. */
static void test_adam_slices_and_summed_gradients(void **state) {
    (void)state;
    for (int n_src = 2; n_src <= 3; n_src++) {
        PtModel *full = pt_model_create(10, 1), *sliced = pt_model_create(10, 1);
        size_t n = full->n_params;
        float *src[3];
        for (int r = 0; r < n_src; r++) {
            src[r] = malloc(n * sizeof(float));
            for (size_t k = 0; k < n; k++) src[r][k] = (float)sin(0.001 * (double)k * (r + 1)) * (r ? 0.3f : 1.0f);
        }
        for (size_t k = 0; k < n; k++) {
            full->params[k] = sliced->params[k] = (float)cos(0.0007 * (double)k);
            float g = src[0][k];
            for (int r = 1; r < n_src; r++) g += src[r][k];
            full->grads[k] = g;
            sliced->grads[k] = NAN; /* must not be read */
        }
        PtAdam a_full, a_sliced;
        pt_adam_init(&a_full, n, 0.01f);
        pt_adam_init(&a_sliced, n, 0.01f);
        const size_t cuts[4] = {0, 1000, 400000, n}; /* slices [0,1000), [1000,400000), [400000,n) */
        for (int step = 0; step < 3; step++) {
            pt_adam_step(&a_full, full);
            for (int c = 0; c < 3; c++) {
                float before_lo = c > 0 ? sliced->params[cuts[c] - 1] : 0.0f;
                a_sliced.t = step; /* each rank counts the step once; here 3 slices share one PtAdam */
                pt_adam_step_range_sum(&a_sliced, sliced, cuts[c], cuts[c + 1], (const float *const *)src, n_src);
                if (c > 0) assert_true(sliced->params[cuts[c] - 1] == before_lo); /* outside untouched */
            }
            assert_int_equal(a_sliced.t, step + 1);
            assert_memory_equal(full->params, sliced->params, n * sizeof(float));
            assert_memory_equal(a_full.m, a_sliced.m, n * sizeof(float));
            assert_memory_equal(a_full.v, a_sliced.v, n * sizeof(float));
        }
        /* the comparison can fail: a step with one source missing differs */
        pt_adam_step_range_sum(&a_sliced, sliced, 0, n, (const float *const *)src, n_src - 1);
        pt_adam_step(&a_full, full);
        assert_true(memcmp(full->params, sliced->params, n * sizeof(float)) != 0);
        for (int r = 0; r < n_src; r++) free(src[r]);
        pt_adam_free(&a_full);
        pt_adam_free(&a_sliced);
        pt_model_free(full);
        pt_model_free(sliced);
    }
}

int main(void) {
    PtKernelSet set;
    int skip = pt_kernels_for_test(&set); /* the set named by PRETEXT_KERNELS */
    if (skip) return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_closed_form),
        cmocka_unit_test(test_adam_slices_and_summed_gradients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
