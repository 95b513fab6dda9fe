/* test_adam.c: pt_adam_* against TensorFlow's Adam written out in double in this file, with
 * hand-chosen gradient sequences: bias-corrected lr_t, epsilon added to sqrt(v) (gradients small
 * enough that it matters), frozen layers untouched, t counting steps, and reset. Every step of
 * every probed weight is checked against the reference: its value, its movement in that step
 * (which must be nonzero, of the reference's sign, and equal to the reference's to 2e-6 relative),
 * and its m and v; every other weight (zero gradient) must stay exactly where it was. A weight
 * that does not move, or moves by a wrong amount, fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_adam.h"
#include "pt_kernels.h"
#include "pt_model.h"
#include "pt_rng.h"

enum { STEPS = 5 };
/* Two gradient sequences: one of order 1 (epsilon negligible), one of order 1e-7 (sqrt(v) is
 * about 3e-9 after the first step: epsilon = 1e-7 dominates). The 0.0 step moves by momentum. */
static const double grad_big[STEPS] = {0.5, -0.25, 1.0, 0.0, 2.0};
static const double grad_tiny[STEPS] = {1e-7, 2e-7, -1e-7, 1e-7, 3e-7};

/* Tolerances against the double reference. The engine's update is float32: lr_t rounded once,
 * m, v, sqrt, the division and the product each rounded once per step (a few 6e-8 relative per
 * step), and w itself rounded to half an ulp. */
#define REL_VALUE 1e-6 /* w, m, v after each step, relative to the reference value */
#define REL_MOVE 2e-6  /* w's movement in one step, relative to the reference's movement */

typedef struct {
    double w[STEPS], m[STEPS], v[STEPS];
} Trace;

/* TensorFlow's update in double from w = m = v = 0, with TensorFlow's float32 hyperparameters
 * (0.999f is 0.99900001287, so 1 - beta2 differs from 0.001 by 1.3e-5 relative, above REL_VALUE;
 * the lr given is a float's value too). pytorch_form = 1 uses m_hat/(sqrt(v_hat)+eps) instead,
 * only to show that the test tells the two apart. */
static void reference(const double *g, int steps, double lr, double scale, int pytorch_form, Trace *out) {
    const double b1 = (double)0.9f, b2 = (double)0.999f, eps = (double)1e-7f;
    double m = 0, v = 0, w = 0;
    for (int t = 1; t <= steps; t++) {
        double gt = g[t - 1] * scale;
        m += (gt - m) * (1 - b1);
        v += (gt * gt - v) * (1 - b2);
        if (pytorch_form) {
            double mh = m / (1 - pow(b1, t)), vh = v / (1 - pow(b2, t));
            w -= lr * mh / (sqrt(vh) + eps);
        } else {
            double lr_t = lr * sqrt(1 - pow(b2, t)) / (1 - pow(b1, t));
            w -= lr_t * m / (sqrt(v) + eps);
        }
        out->w[t - 1] = w;
        out->m[t - 1] = m;
        out->v[t - 1] = v;
    }
}

static void check_close(double got, double expect, double rel, const char *what, size_t index, int step) {
    if (!(fabs(got - expect) <= rel * fabs(expect))) {
        fprintf(stderr, "%s of parameter %zu after step %d: got %.10g, expected %.10g (|diff| %.3g > %.3g)\n",
                what, index, step, got, expect, fabs(got - expect), rel * fabs(expect));
        fail();
    }
}

/* The step from before to after (float values) must be the reference's step from w_before to
 * w_after: nonzero, the same sign, equal to REL_MOVE plus w's rounding (half an ulp of each). */
static void check_move(float before, float after, double ref_before, double ref_after, size_t index, int step) {
    double got = (double)after - (double)before, want = ref_after - ref_before;
    double ulp_slack = 0.5 * (nextafterf(fabsf(after), INFINITY) - fabsf(after)) +
                       0.5 * (nextafterf(fabsf(before), INFINITY) - fabsf(before));
    if (want != 0.0 && (got == 0.0 || (got > 0) != (want > 0))) {
        fprintf(stderr, "parameter %zu in step %d: moved by %.10g, expected %.10g (did not move, or the "
                "wrong way)\n", index, step, got, want);
        fail();
    }
    if (!(fabs(got - want) <= REL_MOVE * fabs(want) + ulp_slack)) {
        fprintf(stderr, "parameter %zu in step %d: moved by %.10g, expected %.10g (|diff| %.3g > %.3g)\n",
                index, step, got, want, fabs(got - want), REL_MOVE * fabs(want) + ulp_slack);
        fail();
    }
}

/* Weights given gradients in the test, spread where a vectorised update could go wrong: the
 * first and last parameters of the buffer, both ends of tensors, the tail left over by 8- and
 * 16-wide vectors (the buffer's length is not a multiple of 8), and the middle of the large
 * tensor. Each gets its own scale of one of the two sequences. */
typedef struct {
    int tensor;   /* PT_T_* */
    long offset;  /* within the tensor; negative: from its end */
    int tiny;     /* grad_tiny instead of grad_big */
    double scale; /* applied to the sequence */
} Probe;
static const Probe probes[] = {
    {PT_T_CONV1_KERNEL, 0, 0, 1.0},     {PT_T_CONV1_KERNEL, 17, 1, 1.0},
    {PT_T_CONV1_BIAS, -1, 0, -3.0},     {PT_T_CONV2_KERNEL, 4099, 1, -2.0},
    {PT_T_CONV2_BIAS, -1, 0, 0.125},    {PT_T_DENSE1_KERNEL, 0, 0, -1.0},
    {PT_T_DENSE1_KERNEL, 200001, 0, 7.0}, {PT_T_DENSE1_KERNEL, -1, 1, 5.0},
    {PT_T_DENSE1_BIAS, 255, 0, 0.5},    {PT_T_DENSE2_KERNEL, 1, 1, -1.0},
    {PT_T_DENSE2_BIAS, 3, 0, 1.0},      {PT_T_DENSE2_BIAS, -2, 0, -0.75},
    {PT_T_DENSE2_BIAS, -1, 1, 4.0},
};
enum { N_PROBES = sizeof probes / sizeof probes[0] };

static size_t probe_index(const PtModel *model, const Probe *p) {
    const PtTensorInfo *info = &model->tensors[p->tensor];
    return info->offset + (size_t)(p->offset >= 0 ? p->offset : (long)info->size + p->offset);
}

static int is_probe(const PtModel *model, size_t i) {
    for (int k = 0; k < N_PROBES; k++)
        if (probe_index(model, &probes[k]) == i) return 1;
    return 0;
}

/* Every weight that is not a probe is exactly 0, with m = v = 0. Returns how many are not. */
static size_t count_disturbed(const PtModel *model, const PtAdam *adam) {
    size_t bad = 0;
    for (size_t i = 0; i < model->n_params; i++)
        if ((model->params[i] != 0.0f || adam->m[i] != 0.0f || adam->v[i] != 0.0f) && !is_probe(model, i)) {
            if (bad < 5) fprintf(stderr, "parameter %zu has no gradient but w %g m %g v %g\n", i,
                                 (double)model->params[i], (double)adam->m[i], (double)adam->v[i]);
            bad++;
        }
    return bad;
}

static void test_adam_closed_form(void **state) {
    (void)state;
    PtModel *model = pt_model_create(10, 1);
    memset(model->params, 0, model->n_params * sizeof(float));
    assert_true(model->n_params % 8 != 0); /* the probes at the end are in a vector tail */
    PtAdam adam;
    pt_adam_init(&adam, model->n_params, 1e-3f);
    assert_int_equal(adam.t, 0);
    assert_float_equal(adam.beta1, 0.9f, 0);
    assert_float_equal(adam.beta2, 0.999f, 0);
    assert_float_equal(adam.epsilon, 1e-7f, 0);

    Trace ref[N_PROBES];
    size_t at[N_PROBES];
    for (int k = 0; k < N_PROBES; k++) {
        reference(probes[k].tiny ? grad_tiny : grad_big, STEPS, (double)1e-3f, probes[k].scale, 0, &ref[k]);
        at[k] = probe_index(model, &probes[k]);
        for (int j = 0; j < k; j++) assert_true(at[j] != at[k]);
    }
    /* Facts of the reference that make the checks below meaningful: */
    Trace tiny_pt, big;
    reference(grad_tiny, STEPS, (double)1e-3f, 1.0, 1, &tiny_pt);
    reference(grad_big, STEPS, (double)1e-3f, 1.0, 0, &big);
    /* the PyTorch form differs by far more than the tolerance: epsilon's place is tested; */
    assert_true(fabs(tiny_pt.w[0] - ref[1].w[0]) > 0.5 * fabs(ref[1].w[0]));
    /* the first step moves a weight with a large gradient by about lr against it; */
    assert_true(fabs(big.w[0] + 1e-3) < 1e-6);
    /* every step of every probe moves it by at least 1e-6, far above the tolerances. */
    for (int k = 0; k < N_PROBES; k++)
        for (int t = 0; t < STEPS; t++)
            assert_true(fabs(ref[k].w[t] - (t ? ref[k].w[t - 1] : 0.0)) > 1e-6);

    for (int t = 0; t < STEPS; t++) {
        float before[N_PROBES];
        pt_model_zero_grads(model);
        for (int k = 0; k < N_PROBES; k++) {
            before[k] = model->params[at[k]];
            model->grads[at[k]] = (float)((probes[k].tiny ? grad_tiny : grad_big)[t] * probes[k].scale);
        }
        pt_adam_step(&adam, model);
        assert_int_equal(adam.t, t + 1);
        for (int k = 0; k < N_PROBES; k++) {
            check_move(before[k], model->params[at[k]], t ? ref[k].w[t - 1] : 0.0, ref[k].w[t], at[k], t + 1);
            check_close(model->params[at[k]], ref[k].w[t], REL_VALUE, "w", at[k], t + 1);
            check_close(adam.m[at[k]], ref[k].m[t], REL_VALUE, "m", at[k], t + 1);
            check_close(adam.v[at[k]], ref[k].v[t], REL_VALUE, "v", at[k], t + 1);
        }
        /* parameters with zero gradient (and zero moments) do not move */
        assert_int_equal(count_disturbed(model, &adam), 0);
    }
    /* After 5 steps the big-gradient weight is where TensorFlow puts it, having moved. */
    assert_true(model->params[at[10]] != 0.0f);
    check_close(model->params[at[10]], big.w[STEPS - 1], REL_VALUE, "w after 5 steps", at[10], STEPS);

    /* reset: m = v = 0, t = 0; the next step is a first step again */
    pt_adam_reset(&adam);
    assert_int_equal(adam.t, 0);
    for (size_t k = 0; k < adam.n; k++) assert_true(adam.m[k] == 0.0f && adam.v[k] == 0.0f);
    float before = model->params[at[10]];
    pt_model_zero_grads(model);
    model->grads[at[10]] = (float)grad_big[0];
    pt_adam_step(&adam, model);
    assert_int_equal(adam.t, 1);
    check_move(before, model->params[at[10]], 0.0, big.w[0], at[10], 1);
    check_close(adam.m[at[10]], big.m[0], REL_VALUE, "m after reset", at[10], 1);
    check_close(adam.v[at[10]], big.v[0], REL_VALUE, "v after reset", at[10], 1);

    /* Conv layers frozen (the downstream task): their params, m and v untouched although they
     * have gradients, the dense layers' probes move as a second step says; t counts. */
    model->trainable[PT_LAYER_CONV1] = model->trainable[PT_LAYER_CONV2] = 0;
    size_t n_conv = model->tensors[PT_T_DENSE1_KERNEL].offset;
    float *conv_before = malloc(3 * n_conv * sizeof(float)); /* (3 n_conv): w, m, v */
    assert_non_null(conv_before);
    memcpy(conv_before, model->params, n_conv * sizeof(float));
    memcpy(conv_before + n_conv, adam.m, n_conv * sizeof(float));
    memcpy(conv_before + 2 * n_conv, adam.v, n_conv * sizeof(float));
    pt_model_zero_grads(model);
    for (size_t i = 0; i < model->n_params; i++) model->grads[i] = 0.5f; /* every weight has one */
    float dense_before = model->params[at[10]];
    pt_adam_step(&adam, model);
    assert_int_equal(adam.t, 2);
    assert_memory_equal(model->params, conv_before, n_conv * sizeof(float));
    assert_memory_equal(adam.m, conv_before + n_conv, n_conv * sizeof(float));
    assert_memory_equal(adam.v, conv_before + 2 * n_conv, n_conv * sizeof(float));
    Trace two;
    const double g2[2] = {grad_big[0], 0.5};
    reference(g2, 2, (double)1e-3f, 1.0, 0, &two);
    check_move(dense_before, model->params[at[10]], two.w[0], two.w[1], at[10], 2);
    for (size_t i = n_conv; i < model->n_params; i++) assert_true(model->params[i] != 0.0f);
    free(conv_before);

    /* Every layer frozen: params, m and v untouched, but t still counts. */
    for (int l = 0; l < PT_NUM_LAYERS; l++) model->trainable[l] = 0;
    float p_before = model->params[at[10]], m_before = adam.m[at[10]], v_before = adam.v[at[10]];
    pt_adam_step(&adam, model);
    assert_int_equal(adam.t, 3);
    assert_true(model->params[at[10]] == p_before && adam.m[at[10]] == m_before &&
                adam.v[at[10]] == v_before);
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

/* TensorFlow runs its CPU ops with denormals flushed to zero, so the engine does (pt_kernels_use
 * set the mode). A weight whose gradient is 1e-30 once and 0 afterwards: m = 1e-31 after the first
 * step, then m += (0 - m) * 0.1 each step. With gradual underflow m shrinks into the denormals
 * (about 8e-41 after 200 steps, exactly); flushed, the product (0 - m) * 0.1 becomes 0 once it
 * would be denormal, so m stops at a normal number, the value given by the same float steps with
 * each product's denormal result replaced by 0 (emulated here under gradual underflow). v is
 * g*g = 1e-60, 0 in float either way. */
static float emulate_flushed_m(int steps) {
    const float c = 1.0f - 0.9f;
    float m = 1e-30f * c;
    for (int t = 1; t < steps; t++) {
        float p = (0.0f - m) * c;
        if (fabsf(p) < FLT_MIN) p = 0.0f;
        m = m + p;
    }
    return m;
}

static void test_adam_flushes_denormals(void **state) {
    (void)state;
    if (!pt_fp_flushes_denormals()) {
        /* pt_kernels_use should have set the mode: a failure, unless the mode cannot work here */
        if (!pt_fp_flush_denormals(1) || !pt_fp_flushes_denormals()) {
            printf("SKIP: this CPU, or an emulator such as valgrind, ignores the flush mode\n");
            skip();
        }
        fail_msg("the kernel set's choice did not set the denormal flush mode");
    }
    enum { N_STEPS = 200 };
    pt_fp_flush_denormals(0);
    float m_flushed = emulate_flushed_m(N_STEPS);
    assert_true(m_flushed >= FLT_MIN && m_flushed < 1e-36f); /* stuck, normal */
    for (int flush = 1; flush >= 0; flush--) {
        assert_int_equal(pt_fp_flush_denormals(flush), 1);
        PtModel *model = pt_model_create(10, 1);
        size_t n = model->n_params, at = n - 1; /* dense2's last bias */
        PtAdam adam;
        pt_adam_init(&adam, n, 0.001f);
        for (int step = 0; step < N_STEPS; step++) {
            memset(model->grads, 0, n * sizeof(float));
            if (step == 0) model->grads[at] = 1e-30f;
            pt_adam_step(&adam, model);
        }
        assert_true(adam.v[at] == 0.0f);
        if (flush) {
            assert_true(adam.m[at] == m_flushed);
        } else {
            double m_exact = 1e-31 * pow(0.9, N_STEPS - 1);
            assert_true(fpclassify(adam.m[at]) == FP_SUBNORMAL);
            assert_true(fabs(adam.m[at] - m_exact) < 0.05 * m_exact);
        }
        pt_adam_free(&adam);
        pt_model_free(model);
    }
    pt_fp_flush_denormals(1);
}

/* The trials' one-sample step (pt_model_defer_dense1_grad): Adam forms dense1's kernel gradient
 * from the layer's input and output gradient instead of reading it. Two models with the same
 * weights take the same steps, one storing every gradient, one deferring; after every step their
 * weights, m and v must be equal bit for bit. The batch sizes 3, 1, 3, 1, 1 make the deferring
 * model's B = 3 backward overwrite a region that still holds the previous B = 3 gradient (it is
 * not zeroed while deferring), and the last two steps freeze the conv layers as the downstream
 * trials do. The steps must move dense1's weights, or equality would prove nothing. */
static void test_adam_deferred_dense1_gradient(void **state) {
    (void)state;
    PtModel *stored = pt_model_create(10, 3), *deferred = pt_model_create(10, 3);
    PtRng rng;
    pt_rng_seed(&rng, 7);
    pt_model_init_glorot(stored, &rng);
    memcpy(deferred->params, stored->params, stored->n_params * sizeof(float));
    pt_model_defer_dense1_grad(deferred, 1);
    size_t n = stored->n_params;
    const PtTensorInfo *d1 = &stored->tensors[PT_T_DENSE1_KERNEL];
    float *dense1_before = malloc(d1->size * sizeof(float));
    memcpy(dense1_before, stored->params + d1->offset, d1->size * sizeof(float));
    float x[3 * 28 * 28];
    uint8_t y[3];
    PtAdam a_stored, a_deferred;
    pt_adam_init(&a_stored, n, 0.001f);
    pt_adam_init(&a_deferred, n, 0.001f);
    const int batches[5] = {3, 1, 3, 1, 1};
    for (int step = 0; step < 5; step++) {
        int B = batches[step];
        for (int i = 0; i < B * 28 * 28; i++) x[i] = pt_rng_uniform(&rng);
        for (int i = 0; i < B; i++) y[i] = (uint8_t)pt_rng_below(&rng, 10);
        if (step == 3) /* the downstream trials' frozen phase */
            for (int l = PT_LAYER_CONV1; l <= PT_LAYER_CONV2; l++) stored->trainable[l] = deferred->trainable[l] = 0;
        PtModel *models[2] = {stored, deferred};
        PtAdam *adams[2] = {&a_stored, &a_deferred};
        for (int k = 0; k < 2; k++) {
            int correct;
            pt_model_zero_grads(models[k]);
            pt_model_forward(models[k], x, B, 1, 1000 + (uint64_t)step, 0);
            pt_model_loss(models[k], y, B, B, &correct);
            pt_model_backward(models[k], B, NULL);
            const float *ox, *ody;
            assert_int_equal(pt_model_dense1_outer(models[k], &ox, &ody), k == 1 && B == 1);
            pt_adam_step(adams[k], models[k]);
            assert_int_equal(pt_model_dense1_outer(models[k], &ox, &ody), 0); /* consumed */
        }
        assert_memory_equal(stored->params, deferred->params, n * sizeof(float));
        assert_memory_equal(a_stored.m, a_deferred.m, n * sizeof(float));
        assert_memory_equal(a_stored.v, a_deferred.v, n * sizeof(float));
    }
    assert_true(memcmp(dense1_before, stored->params + d1->offset, d1->size * sizeof(float)) != 0);
    /* turning deferral off leaves a zeroed region for the next accumulating backward */
    pt_model_defer_dense1_grad(deferred, 0);
    for (size_t k = 0; k < d1->size; k++) assert_true(deferred->grads[d1->offset + k] == 0.0f);
    free(dense1_before);
    pt_adam_free(&a_stored);
    pt_adam_free(&a_deferred);
    pt_model_free(stored);
    pt_model_free(deferred);
}

int main(void) {
    PtKernelSet set;
    int skip = pt_kernels_for_test(&set); /* the set named by PRETEXT_KERNELS */
    if (skip) return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_closed_form),
        cmocka_unit_test(test_adam_slices_and_summed_gradients),
        cmocka_unit_test(test_adam_flushes_denormals),
        cmocka_unit_test(test_adam_deferred_dense1_gradient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
