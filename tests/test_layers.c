/* test_layers.c: the layers of pt_layers.h and the kernels of one kernel set (pt_kernels.h; the set
 * named by PRETEXT_KERNELS, ctest runs this once per set): tiny hand-computed cases, every kernel
 * against the naive reference, and central finite differences for every backward. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_kernels.h"
#include "pt_layers.h"
#include "pt_rng.h"

static const PtKernels *K; /* the kernel set under test */

static float *random_floats(size_t n, float lo, float hi, PtRng *rng) {
    float *p = malloc(n * sizeof *p);
    assert_non_null(p);
    for (size_t k = 0; k < n; k++) p[k] = lo + (hi - lo) * pt_rng_uniform(rng);
    return p;
}

static float *zeros(size_t n) {
    float *p = calloc(n, sizeof(float));
    assert_non_null(p);
    return p;
}

/* Largest |a-b| / (1 + |b|) over n values. */
static double max_rel_diff(const float *a, const float *b, size_t n) {
    double worst = 0.0;
    for (size_t k = 0; k < n; k++) {
        double d = fabs((double)a[k] - (double)b[k]) / (1.0 + fabs((double)b[k]));
        if (d > worst) worst = d;
    }
    return worst;
}

static double dot_double(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t k = 0; k < n; k++) s += (double)a[k] * (double)b[k];
    return s;
}

/* cmocka's assert_float_equal compares floats: this one keeps doubles. */
static void assert_near(double got, double expect, double tol) {
    if (!(fabs(got - expect) <= tol)) {
        fprintf(stderr, "got %.17g, expected %.17g (tolerance %g)\n", got, expect, tol);
        fail();
    }
}

/* ---- hand-computed cases ---- */

/* 3x3 image, one channel, K = [[1,2],[3,4]], bias 0.5: the bottom row and right column see the
 * zero padding. */
static const float hand_x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const float hand_k[4] = {1, 2, 3, 4};
static const float hand_b[1] = {0.5f};
static const float hand_out[9] = {
    1 + 2 * 2 + 3 * 4 + 4 * 5 + 0.5f, 2 + 2 * 3 + 3 * 5 + 4 * 6 + 0.5f, 3 + 3 * 6 + 0.5f,
    4 + 2 * 5 + 3 * 7 + 4 * 8 + 0.5f, 5 + 2 * 6 + 3 * 8 + 4 * 9 + 0.5f, 6 + 3 * 9 + 0.5f,
    7 + 2 * 8 + 0.5f,                 8 + 2 * 9 + 0.5f,                 9 + 0.5f};

static void test_conv_hand(void **state) {
    (void)state;
    float out[9];
    pt_conv2x2_forward_naive(out, hand_x, hand_k, hand_b, 1, 3, 3, 1, 1);
    for (int k = 0; k < 9; k++) assert_float_equal(out[k], hand_out[k], 1e-5);

    /* Two input channels, two output channels, 2x2 image: out[0][0] sees all four pixels. */
    const float x2[8] = {1, 10, 2, 20, 3, 30, 4, 40}; /* (1,2,2,2): pixel (i,j) = (v, 10v) */
    float k2[16];                                      /* (2,2,2,2) */
    for (int t = 0; t < 4; t++) {
        k2[t * 4 + 0] = 1.0f;  /* ci 0 -> co 0 */
        k2[t * 4 + 1] = 0.0f;  /* ci 0 -> co 1 */
        k2[t * 4 + 2] = 0.0f;  /* ci 1 -> co 0 */
        k2[t * 4 + 3] = (float)(t + 1); /* ci 1 -> co 1: tap weight 1..4 */
    }
    const float b2[2] = {0, 0};
    float out2[8];
    pt_conv2x2_forward_naive(out2, x2, k2, b2, 1, 2, 2, 2, 2);
    const float expect2[8] = {1 + 2 + 3 + 4, 10 * 1 + 20 * 2 + 30 * 3 + 40 * 4,
                              2 + 4,         20 * 1 + 40 * 3,
                              3 + 4,         30 * 1 + 40 * 2,
                              4,             40 * 1};
    for (int k = 0; k < 8; k++) assert_float_equal(out2[k], expect2[k], 1e-4);
}

static void test_maxpool_hand(void **state) {
    (void)state;
    /* 4x4, one channel. Windows: {1,5,2,3} {-1,-2,-3,-4} {0,7,7,1} {9,9,9,9} */
    const float x[16] = {1, 5, -1, -2,
                         2, 3, -3, -4,
                         0, 7, 9, 9,
                         7, 1, 9, 9};
    float out[4];
    uint8_t am[4];
    pt_maxpool2_forward(out, am, x, 1, 4, 4, 1);
    const float expect[4] = {5, -1, 7, 9};
    const uint8_t expect_am[4] = {1, 0, 1, 0}; /* ties go to the first in (0,0),(0,1),(1,0),(1,1) */
    for (int k = 0; k < 4; k++) {
        assert_float_equal(out[k], expect[k], 0);
        assert_int_equal(am[k], expect_am[k]);
    }
    K->relu_maxpool_forward(out, am, x, 1, 4, 4, 1);
    assert_float_equal(out[1], 0.0f, 0);
    assert_int_equal(am[1], PT_POOL_DEAD);
    assert_float_equal(out[0], 5.0f, 0);
    assert_int_equal(am[0], 1);

    const float dout[4] = {10, 20, 30, 40};
    float dx[16];
    K->maxpool_backward(dx, dout, am, 1, 4, 4, 1);
    const float expect_dx[16] = {0, 10, 0, 0,
                                 0, 0, 0, 0,
                                 0, 30, 40, 0,
                                 0, 0, 0, 0}; /* dead window: nothing flows */
    for (int k = 0; k < 16; k++) assert_float_equal(dx[k], expect_dx[k], 0);
}

static void test_dropout_hand(void **state) {
    (void)state;
    enum { N = 200000 };
    float *mask = malloc(N * sizeof *mask);
    const float rates[3] = {0.3f, 0.5f, 0.0f};
    for (int r = 0; r < 3; r++) {
        PtRng rng;
        pt_rng_seed(&rng, 42);
        pt_dropout_mask(mask, N, rates[r], &rng);
        float scale = 1.0f / (1.0f - rates[r]);
        size_t kept = 0;
        for (size_t k = 0; k < N; k++) {
            assert_true(mask[k] == 0.0f || mask[k] == scale);
            kept += mask[k] != 0.0f;
        }
        double frac = (double)kept / N;
        assert_true(fabs(frac - (1.0 - rates[r])) < 0.005); /* sd ~ 0.001 */
    }
    /* The mask is the documented draw: keep iff uniform < 1-rate, in order. */
    PtRng a, b;
    pt_rng_seed(&a, 7);
    pt_rng_seed(&b, 7);
    pt_dropout_mask(mask, 1000, 0.3f, &a);
    for (int k = 0; k < 1000; k++)
        assert_true((mask[k] != 0.0f) == (pt_rng_uniform(&b) < 0.7f));
    /* The multi-generator kernel gives each lane exactly the single-generator draws, and leaves
     * each generator in the same state (checked over consecutive calls whose lengths cover the
     * SIMD blocks' tails: 17 = 16 + 1, 15, and the model's 12544, 1568, 256). */
    const size_t lengths[6] = {17, 15, 300, 12544, 1568, 256};
    const float rates_l[6] = {0.3f, 0.5f, 0.3f, 0.3f, 0.3f, 0.5f};
    size_t total_len = 0;
    for (int q = 0; q < 6; q++) total_len += lengths[q];
    float *single = malloc(total_len * sizeof *single);
    float *many_out = malloc(PT_MASK_LANES * total_len * sizeof *many_out);
    for (int lanes = 1; lanes <= PT_MASK_LANES; lanes++) {
        PtRng many[PT_MASK_LANES], one;
        float *outs[PT_MASK_LANES];
        for (int l = 0; l < lanes; l++) pt_rng_seed(&many[l], 100 + (uint64_t)l);
        size_t at = 0;
        for (int q = 0; q < 6; q++) {
            for (int l = 0; l < lanes; l++) outs[l] = many_out + l * total_len + at;
            K->dropout_mask_lanes(outs, lanes, lengths[q], rates_l[q], many);
            at += lengths[q];
        }
        for (int l = 0; l < lanes; l++) {
            pt_rng_seed(&one, 100 + (uint64_t)l);
            at = 0;
            for (int q = 0; q < 6; q++) {
                pt_dropout_mask(single + at, lengths[q], rates_l[q], &one);
                at += lengths[q];
            }
            assert_memory_equal(single, many_out + l * total_len, total_len * sizeof *single);
            assert_memory_equal(&one, &many[l], sizeof one);
        }
    }
    free(single);
    free(many_out);
    /* Apply scales kept units by 1/(1-rate) = 2 for rate 0.5. */
    const float x[4] = {1, 2, 3, 4}, m[4] = {2, 0, 2, 0};
    float y[4];
    K->dropout_apply(y, x, m, 4);
    assert_float_equal(y[0], 2, 0);
    assert_float_equal(y[1], 0, 0);
    assert_float_equal(y[2], 6, 0);
    assert_float_equal(y[3], 0, 0);
    free(mask);
}

static void test_dense_hand(void **state) {
    (void)state;
    /* x (2,3), W (3,2), b (2): y = xW + b */
    const float x[6] = {1, 2, 3, -1, 0, 2};
    const float w[6] = {1, -1, 2, 0, 0.5f, 3};
    const float b[2] = {0.25f, -0.5f};
    float y[4];
    pt_dense_forward(y, x, w, b, 2, 3, 2);
    const float expect[4] = {1 + 4 + 1.5f + 0.25f, -1 + 0 + 9 - 0.5f, -1 + 0 + 1 + 0.25f, 1 + 6 - 0.5f};
    for (int k = 0; k < 4; k++) assert_float_equal(y[k], expect[k], 1e-6);
    /* The single-sample path (sgemv) agrees. */
    pt_dense_forward(y, x + 3, w, b, 1, 3, 2);
    assert_float_equal(y[0], expect[2], 1e-6);
    assert_float_equal(y[1], expect[3], 1e-6);

    /* Backward by hand for one sample: dW = x^T dy, db = dy, dx = dy W^T. */
    const float dy[2] = {1, 2};
    float dw[6] = {0}, db[2] = {0}, dx[3];
    pt_dense_backward(dx, dw, db, dy, x, w, 1, 3, 2);
    const float expect_dw[6] = {1, 2, 2, 4, 3, 6};
    for (int k = 0; k < 6; k++) assert_float_equal(dw[k], expect_dw[k], 1e-6);
    assert_float_equal(db[0], 1, 0);
    assert_float_equal(db[1], 2, 0);
    assert_float_equal(dx[0], 1 - 2, 1e-6);
    assert_float_equal(dx[1], 2 + 0, 1e-6);
    assert_float_equal(dx[2], 0.5f + 6, 1e-6);
    /* Accumulates: a second call doubles the weight gradients. */
    pt_dense_backward(NULL, dw, db, dy, x, w, 1, 3, 2);
    for (int k = 0; k < 6; k++) assert_float_equal(dw[k], 2 * expect_dw[k], 1e-6);
    assert_float_equal(db[1], 4, 0);
}

/* The set's one-sample dense kernels (the trials' steps): against the batch layer (BLAS) and
 * double-precision sums, with the rows they skip, and bit for bit against their stated summation
 * order, which makes them the same in every set. */
static void test_dense_one_sample(void **state) {
    (void)state;
    enum { IN = 75, OUT = 48 }; /* 49 non-zero inputs: 3 blocks of 16 and 1 */
    PtRng rng;
    pt_rng_seed(&rng, 31);
    float *w = random_floats((size_t)IN * OUT, -1, 1, &rng);
    float *bias = random_floats(OUT, -0.5f, 0.5f, &rng);
    float *x = random_floats(IN, -1, 2, &rng);
    float *dy = random_floats(OUT, -1, 1, &rng);
    uint8_t rows[IN];
    int zeros_in = 0, skipped = 0;
    for (int i = 0; i < IN; i++) {
        if (i % 3 == 1 || i == IN - 1) { /* dropped out or cut by relu; the last row too */
            x[i] = 0.0f;
            zeros_in++;
        }
        rows[i] = i % 4 != 2;
        skipped += !rows[i];
    }
    assert_true(zeros_in > 10 && skipped > 10);

    /* forward: y = bias + sum_i x[i] w[i][:] over the non-zero inputs */
    float y[OUT], y_blas[OUT], y_order[OUT];
    K->dense_forward_one(y, x, w, bias, IN, OUT);
    pt_dense_forward(y_blas, x, w, bias, 1, IN, OUT);
    for (int j = 0; j < OUT; j++) {
        double want = bias[j];
        for (int i = 0; i < IN; i++) want += (double)x[i] * w[(size_t)i * OUT + j];
        assert_near(y[j], want, 1e-5 * (1 + fabs(want)));
        assert_near(y[j], y_blas[j], 2e-5 * (1 + fabs(want)));
        volatile float acc = bias[j], block = 0.0f; /* the stated order: blocks of 16 rows */
        int in_block = 0;
        for (int i = 0; i < IN; i++)
            if (x[i] != 0.0f) {
                volatile float prod = x[i] * w[(size_t)i * OUT + j];
                block = block + prod;
                if (++in_block == 16) {
                    acc = acc + block;
                    block = 0.0f;
                    in_block = 0;
                }
            }
        if (in_block > 0) acc = acc + block;
        y_order[j] = acc;
    }
    assert_memory_equal(y, y_order, sizeof y);

    /* input gradient: row i . dy where rows[i], exactly 0 elsewhere */
    float dx[IN], dx_blas[IN];
    for (int i = 0; i < IN; i++) dx[i] = 12345.0f; /* every entry must be written */
    K->dense_input_grad_one(dx, rows, w, dy, IN, OUT);
    pt_dense_backward(dx_blas, NULL, NULL, dy, x, w, 1, IN, OUT);
    for (int i = 0; i < IN; i++) {
        if (!rows[i]) {
            assert_true(dx[i] == 0.0f);
            continue;
        }
        const float *wr = w + (size_t)i * OUT;
        double want = dot_double(wr, dy, OUT);
        assert_near(dx[i], want, 1e-5 * (1 + fabs(want)));
        assert_near(dx[i], dx_blas[i], 2e-5 * (1 + fabs(want)));
        volatile float lane[16]; /* the stated order: 16 lanes, then pairwise halves */
        for (int l = 0; l < 16; l++) {
            volatile float prod = wr[l] * dy[l];
            lane[l] = prod;
        }
        for (int j = 16; j < OUT; j += 16)
            for (int l = 0; l < 16; l++) {
                volatile float prod = wr[j + l] * dy[j + l];
                lane[l] = lane[l] + prod;
            }
        for (int half = 8; half >= 1; half /= 2)
            for (int l = 0; l < half; l++) lane[l] = lane[l] + lane[l + half];
        assert_memory_equal(&dx[i], (const void *)&lane[0], sizeof(float));
    }
    free(w);
    free(bias);
    free(x);
    free(dy);
}

static void test_softmax_ce_hand(void **state) {
    (void)state;
    const float logits[9] = {1, 2, 3, 3, 2, 1, 1000, 1000, -1000};
    const uint8_t labels[3] = {2, 2, 1};
    int correct = -1;
    float dl[9];
    double total = pt_softmax_ce(dl, &correct, logits, labels, 3, 3, 4);
    double lse = log(exp(1.0) + exp(2.0) + exp(3.0)); /* 3.40760596 */
    double expect = (lse - 3.0) + (lse - 1.0) + log(2.0); /* huge logits: stable, log 2 */
    assert_near(total, expect, 1e-9);
    assert_int_equal(correct, 1); /* row 0 right; row 1 wrong; row 2 tie -> index 0 wins, wrong */
    double z = exp(1.0) + exp(2.0) + exp(3.0);
    assert_float_equal(dl[0], exp(1.0) / z / 4, 1e-7);
    assert_float_equal(dl[2], (exp(3.0) / z - 1) / 4, 1e-7);
    assert_float_equal(dl[5], (exp(1.0) / z - 1) / 4, 1e-7);
    assert_float_equal(dl[6], 0.5 / 4, 1e-7);
    assert_float_equal(dl[7], -0.5 / 4, 1e-7);
    assert_float_equal(dl[8], 0.0, 1e-7);
    assert_near(pt_softmax_ce(NULL, NULL, logits, labels, 1, 3, 1), lse - 3.0, 1e-9);
}

/* ---- fast conv paths against the naive convolution ---- */

static void test_conv1_fused_vs_naive(void **state) {
    (void)state;
    PtRng rng;
    pt_rng_seed(&rng, 11);
    const int B = 2, H = 28, W = 28, C = 64;
    size_t n_out = (size_t)B * H * W * C;
    float *x = random_floats((size_t)B * H * W, 0, 1, &rng);
    float *k = random_floats(4 * C, -0.5f, 0.5f, &rng);
    float *bias = random_floats(C, -0.2f, 0.2f, &rng);
    float *out_ref = zeros(n_out);
    pt_conv2x2_forward_naive(out_ref, x, k, bias, B, H, W, 1, C);

    /* Fused conv + relu + pool == naive conv, then relu + pool; weight gradients through it. */
    size_t n_pool = n_out / 4;
    float *pooled = zeros(n_pool), *pooled_ref = zeros(n_pool), *dpooled = random_floats(n_pool, -1, 1, &rng);
    uint8_t *am = malloc(n_pool), *am_ref = malloc(n_pool);
    K->conv1_relu_pool_forward(pooled, am, x, k, bias, B, H, W, C);
    pt_maxpool2_forward(pooled_ref, am_ref, out_ref, B, H, W, C);
    for (size_t q = 0; q < n_pool; q++)
        if (pooled_ref[q] <= 0.0f) {
            pooled_ref[q] = 0.0f;
            am_ref[q] = PT_POOL_DEAD;
        }
    assert_true(max_rel_diff(pooled, pooled_ref, n_pool) < 1e-5);
    size_t am_same = 0, dead = 0;
    for (size_t q = 0; q < n_pool; q++) {
        am_same += am[q] == am_ref[q];
        dead += am[q] == PT_POOL_DEAD;
    }
    assert_true(am_same >= n_pool - 2); /* rounding may flip a near-tie */
    assert_true(dead > n_pool / 20 && dead < n_pool - n_pool / 20); /* both cases exercised */
    float *dconv = zeros(n_out);
    float *dk_f = zeros(4 * C), *dk_r = zeros(4 * C), *db_f = zeros(C), *db_r = zeros(C);
    for (int q = 0; q < 4 * C; q++) dk_f[q] = dk_r[q] = 0.25f; /* gradients accumulate */
    K->conv1_relu_pool_backward(dk_f, db_f, dpooled, am, x, B, H, W, C);
    K->maxpool_backward(dconv, dpooled, am, B, H, W, C);
    pt_conv2x2_backward_naive(NULL, dk_r, db_r, dconv, x, k, B, H, W, 1, C);
    assert_true(max_rel_diff(dk_f, dk_r, 4 * C) < 1e-4);
    assert_true(max_rel_diff(db_f, db_r, C) < 1e-4);

    free(x); free(k); free(bias); free(out_ref);
    free(dk_f); free(dk_r); free(db_f); free(db_r);
    free(pooled); free(pooled_ref); free(dpooled); free(am); free(am_ref); free(dconv);
}

/* The set's conv2 kernels against the naive reference, at the model's shape and at odd shapes that
 * exercise the pixel blocks' tails and the image borders; the input gradient with and without the
 * fused dropout mask. */
static void check_conv2_direct(int B, int H, int W, uint64_t seed) {
    PtRng rng;
    pt_rng_seed(&rng, seed);
    const int Ci = 64, Co = 32;
    size_t n_in = (size_t)B * H * W * Ci, n_out = (size_t)B * H * W * Co, n_k = 4 * (size_t)Ci * Co;
    float *x = random_floats(n_in, 0, 1, &rng);
    float *k = random_floats(n_k, -0.2f, 0.2f, &rng);
    float *bias = random_floats(Co, -0.2f, 0.2f, &rng);
    float *dout = random_floats(n_out, -1, 1, &rng);
    for (size_t q = 0; q < n_in; q += 3) x[q] = 0.0f; /* dropped or dead units of relu+dropout */
    float *out_f = zeros(n_out), *out_r = zeros(n_out);
    K->conv2_forward(out_f, x, k, bias, B, H, W);
    pt_conv2x2_forward_naive(out_r, x, k, bias, B, H, W, Ci, Co);
    assert_true(max_rel_diff(out_f, out_r, n_out) < 1e-5);

    float *dk_f = zeros(n_k), *dk_r = zeros(n_k), *db_f = zeros(Co), *db_r = zeros(Co);
    float *dx_f = zeros(n_in), *dx_r = zeros(n_in);
    for (size_t q = 0; q < n_k; q++) dk_f[q] = dk_r[q] = 0.5f; /* gradients accumulate */
    for (int q = 0; q < Co; q++) db_f[q] = db_r[q] = -0.25f;
    for (size_t q = 0; q < n_in; q++) dx_f[q] = 7.0f; /* dx is overwritten, not accumulated */
    float *packed = zeros(PT_CONV2_PACKED);
    K->conv2_pack_backward(packed, k);
    K->conv2_backward(dx_f, dk_f, db_f, dout, x, packed, 0.0f, B, H, W);
    pt_conv2x2_backward_naive(dx_r, dk_r, db_r, dout, x, k, B, H, W, Ci, Co);
    assert_true(max_rel_diff(dk_f, dk_r, n_k) < 1e-4);
    assert_true(max_rel_diff(db_f, db_r, Co) < 1e-4);
    assert_true(max_rel_diff(dx_f, dx_r, n_in) < 1e-5);
    /* with the keep scale: the unmasked result times (x > 0 ? scale : 0), exactly */
    float *dx_m = zeros(n_in);
    const float scale = 1.0f / 0.7f;
    K->conv2_backward(dx_m, NULL, NULL, dout, x, packed, scale, B, H, W);
    for (size_t q = 0; q < n_in; q++) assert_true(dx_m[q] == (x[q] > 0.0f ? dx_f[q] * scale : 0.0f));
    /* NULL outputs: nothing written, nothing else changed */
    float dk5 = dk_f[5];
    memset(dx_m, 0, n_in * sizeof(float));
    K->conv2_backward(NULL, NULL, db_f, dout, x, packed, 0.0f, B, H, W);
    assert_true(dk_f[5] == dk5);
    K->conv2_backward(NULL, dk_f, NULL, dout, x, packed, scale, B, H, W);
    assert_float_equal(dk_f[5], 2 * dk_r[5] - 0.5f, 1e-3);
    for (size_t q = 0; q < n_in; q++) assert_true(dx_m[q] == 0.0f);

    free(x); free(k); free(bias); free(dout); free(out_f); free(out_r);
    free(dk_f); free(dk_r); free(db_f); free(db_r); free(dx_f); free(dx_r); free(dx_m); free(packed);
}

static void test_conv2_vs_naive(void **state) {
    (void)state;
    check_conv2_direct(3, 14, 14, 21); /* the model's shape */
    check_conv2_direct(2, 5, 9, 22);   /* blocks of 7, 6, 4 with tails */
    check_conv2_direct(1, 1, 1, 23);   /* a single pixel: only tap (0,0) exists */
    check_conv2_direct(2, 3, 15, 24);  /* rows longer than two blocks */
    check_conv2_direct(1, 7, 13, 25);  /* a prime width */
}

/* ---- finite differences ---- */

/* A scalar loss L = sum(out * R) of a layer; fd of L with respect to one input value p. */
typedef double (*LossFn)(void *ctx);

static double central_diff(LossFn f, void *ctx, float *p, float eps) {
    float saved = *p;
    *p = saved + eps;
    double up = f(ctx);
    *p = saved - eps;
    double down = f(ctx);
    *p = saved;
    return (up - down) / (2.0 * (double)eps);
}

static void assert_close(double fd, double analytic, double rel, double abs_tol, const char *what) {
    double err = fabs(fd - analytic);
    if (err > abs_tol + rel * fabs(analytic)) {
        fprintf(stderr, "%s: finite difference %.8g, analytic %.8g\n", what, fd, analytic);
        fail();
    }
}

/* conv: the naive reference at small channel counts, the set's conv2 at its 64 -> 32 */
typedef struct {
    float *x, *k, *b, *out, *r;
    int B, H, W, Ci, Co;
    int kernel; /* 1: the set's conv2 */
} ConvCtx;

static double conv_loss(void *vctx) {
    ConvCtx *c = vctx;
    if (c->kernel)
        K->conv2_forward(c->out, c->x, c->k, c->b, c->B, c->H, c->W);
    else
        pt_conv2x2_forward_naive(c->out, c->x, c->k, c->b, c->B, c->H, c->W, c->Ci, c->Co);
    return dot_double(c->out, c->r, (size_t)c->B * c->H * c->W * c->Co);
}

static void check_fd_conv(ConvCtx c, int stride, uint64_t seed) {
    PtRng rng;
    pt_rng_seed(&rng, seed);
    size_t n_in = (size_t)c.B * c.H * c.W * c.Ci, n_out = (size_t)c.B * c.H * c.W * c.Co;
    size_t n_k = 4 * (size_t)c.Ci * c.Co;
    c.x = random_floats(n_in, -1, 1, &rng);
    c.k = random_floats(n_k, -1, 1, &rng);
    c.b = random_floats(c.Co, -1, 1, &rng);
    c.r = random_floats(n_out, -1, 1, &rng);
    c.out = zeros(n_out);
    float *dx = zeros(n_in), *dk = zeros(n_k), *db = zeros(c.Co);
    conv_loss(&c);
    if (c.kernel) {
        float *packed = zeros(PT_CONV2_PACKED);
        K->conv2_pack_backward(packed, c.k);
        K->conv2_backward(dx, dk, db, c.r, c.x, packed, 0.0f, c.B, c.H, c.W);
        free(packed);
    } else {
        pt_conv2x2_backward_naive(dx, dk, db, c.r, c.x, c.k, c.B, c.H, c.W, c.Ci, c.Co);
    }
    /* the loss is linear in each value: central differences are exact up to rounding */
    for (size_t q = 0; q < n_in; q += (size_t)stride)
        assert_close(central_diff(conv_loss, &c, &c.x[q], 1e-2f), dx[q], 1e-3, 2e-3, "conv dx");
    for (size_t q = 0; q < n_k; q += (size_t)stride)
        assert_close(central_diff(conv_loss, &c, &c.k[q], 1e-2f), dk[q], 1e-3, 2e-3, "conv dkernel");
    for (int q = 0; q < c.Co; q++)
        assert_close(central_diff(conv_loss, &c, &c.b[q], 1e-2f), db[q], 1e-3, 2e-3, "conv dbias");
    free(c.x); free(c.k); free(c.b); free(c.r); free(c.out);
    free(dx); free(dk); free(db);
}

static void test_fd_conv(void **state) {
    (void)state;
    check_fd_conv((ConvCtx){.B = 2, .H = 5, .W = 4, .Ci = 3, .Co = 4, .kernel = 0}, 1, 21);
    check_fd_conv((ConvCtx){.B = 1, .H = 3, .W = 2, .Ci = 64, .Co = 32, .kernel = 1}, 7, 27);
}

/* conv1 fused with relu + pool: points whose perturbation changes a winner or a relu cut are
 * skipped (not differentiable there); most points must be checked. */
typedef struct {
    float *x, *k, *b, *pooled, *r;
    uint8_t *am;
    int B, H, W, C;
} FusedCtx;

static double fused_loss(void *vctx) {
    FusedCtx *c = vctx;
    K->conv1_relu_pool_forward(c->pooled, c->am, c->x, c->k, c->b, c->B, c->H, c->W, c->C);
    return dot_double(c->pooled, c->r, (size_t)c->B * (c->H / 2) * (c->W / 2) * c->C);
}

static int fused_pattern_changes(FusedCtx *c, float *p, float eps, const uint8_t *base_am) {
    size_t n = (size_t)c->B * (c->H / 2) * (c->W / 2) * c->C;
    float saved = *p;
    int changed = 0;
    for (int s = -1; s <= 1; s += 2) {
        *p = saved + (float)s * eps;
        fused_loss(c);
        if (memcmp(c->am, base_am, n)) changed = 1;
    }
    *p = saved;
    return changed;
}

static void test_fd_conv1_relu_pool(void **state) {
    (void)state;
    PtRng rng;
    pt_rng_seed(&rng, 22);
    FusedCtx c = {.B = 2, .H = 6, .W = 4, .C = 16};
    size_t n_pool = (size_t)c.B * 3 * 2 * c.C;
    c.x = random_floats((size_t)c.B * c.H * c.W, 0, 1, &rng);
    c.k = random_floats(4 * c.C, -1, 1, &rng);
    c.b = random_floats(c.C, -0.3f, 0.3f, &rng);
    c.r = random_floats(n_pool, -1, 1, &rng);
    c.pooled = zeros(n_pool);
    c.am = malloc(n_pool);
    uint8_t *base_am = malloc(n_pool);
    float *dk = zeros(4 * c.C), *db = zeros(c.C);
    fused_loss(&c);
    memcpy(base_am, c.am, n_pool);
    K->conv1_relu_pool_backward(dk, db, c.r, c.am, c.x, c.B, c.H, c.W, c.C);
    const float eps = 1e-3f;
    int checked = 0, total = 0;
    for (int q = 0; q < 4 * c.C + c.C; q++) {
        float *p = q < 4 * c.C ? &c.k[q] : &c.b[q - 4 * c.C];
        double analytic = q < 4 * c.C ? dk[q] : db[q - 4 * c.C];
        total++;
        if (fused_pattern_changes(&c, p, eps, base_am)) continue;
        checked++;
        assert_close(central_diff(fused_loss, &c, p, eps), analytic, 2e-3, 2e-4, "fused conv1 grad");
    }
    assert_true(checked >= total * 3 / 4);
    free(c.x); free(c.k); free(c.b); free(c.r); free(c.pooled); free(c.am); free(base_am);
    free(dk); free(db);
}

/* maxpool (plain and relu) with respect to its input */
typedef struct {
    float *x, *out, *r;
    uint8_t *am;
    int relu;
} PoolCtx;
enum { PB = 2, PH = 4, PW = 6, PC = 3 };

static double pool_loss(void *vctx) {
    PoolCtx *c = vctx;
    if (c->relu)
        K->relu_maxpool_forward(c->out, c->am, c->x, PB, PH, PW, PC);
    else
        pt_maxpool2_forward(c->out, c->am, c->x, PB, PH, PW, PC);
    return dot_double(c->out, c->r, (size_t)PB * (PH / 2) * (PW / 2) * PC);
}

static void test_fd_maxpool(void **state) {
    (void)state;
    PtRng rng;
    pt_rng_seed(&rng, 23);
    size_t n_in = (size_t)PB * PH * PW * PC, n_out = n_in / 4;
    for (int relu = 0; relu <= 1; relu++) {
        PoolCtx c = {.relu = relu};
        c.x = random_floats(n_in, -1, 1, &rng);
        c.r = random_floats(n_out, -1, 1, &rng);
        c.out = zeros(n_out);
        c.am = malloc(n_out);
        uint8_t *base_am = malloc(n_out);
        float *dx = zeros(n_in);
        pool_loss(&c);
        memcpy(base_am, c.am, n_out);
        K->maxpool_backward(dx, c.r, c.am, PB, PH, PW, PC);
        int checked = 0, nonzero = 0;
        for (size_t q = 0; q < n_in; q++) {
            /* skip ties and relu kinks: the winner pattern must not change within +-eps */
            int changed = 0;
            float saved = c.x[q];
            for (int s = -1; s <= 1; s += 2) {
                c.x[q] = saved + (float)s * 1e-3f;
                pool_loss(&c);
                changed |= memcmp(c.am, base_am, n_out) != 0;
            }
            c.x[q] = saved;
            if (changed) continue;
            checked++;
            nonzero += dx[q] != 0.0f;
            assert_close(central_diff(pool_loss, &c, &c.x[q], 1e-3f), dx[q], 1e-3, 1e-4, "maxpool dx");
        }
        assert_true(checked >= (int)n_in * 3 / 4);
        assert_true(nonzero > 0);
        free(c.x); free(c.r); free(c.out); free(c.am); free(base_am); free(dx);
    }
}

/* dense */
typedef struct {
    float *x, *w, *b, *y, *r;
    int B, in, out;
} DenseCtx;

static double dense_loss(void *vctx) {
    DenseCtx *c = vctx;
    pt_dense_forward(c->y, c->x, c->w, c->b, c->B, c->in, c->out);
    return dot_double(c->y, c->r, (size_t)c->B * c->out);
}

static void test_fd_dense(void **state) {
    (void)state;
    PtRng rng;
    pt_rng_seed(&rng, 24);
    const int batches[2] = {1, 3}; /* the sgemv/sger path and the sgemm path */
    for (int t = 0; t < 2; t++) {
        DenseCtx c = {.B = batches[t], .in = 7, .out = 5};
        c.x = random_floats((size_t)c.B * c.in, -1, 1, &rng);
        c.w = random_floats((size_t)c.in * c.out, -1, 1, &rng);
        c.b = random_floats(c.out, -1, 1, &rng);
        c.r = random_floats((size_t)c.B * c.out, -1, 1, &rng);
        c.y = zeros((size_t)c.B * c.out);
        float *dx = zeros((size_t)c.B * c.in), *dw = zeros((size_t)c.in * c.out), *db = zeros(c.out);
        pt_dense_backward(dx, dw, db, c.r, c.x, c.w, c.B, c.in, c.out);
        for (int q = 0; q < c.B * c.in; q++)
            assert_close(central_diff(dense_loss, &c, &c.x[q], 1e-2f), dx[q], 1e-3, 1e-4, "dense dx");
        for (int q = 0; q < c.in * c.out; q++)
            assert_close(central_diff(dense_loss, &c, &c.w[q], 1e-2f), dw[q], 1e-3, 1e-4, "dense dW");
        for (int q = 0; q < c.out; q++)
            assert_close(central_diff(dense_loss, &c, &c.b[q], 1e-2f), db[q], 1e-3, 1e-4, "dense db");
        free(c.x); free(c.w); free(c.b); free(c.r); free(c.y); free(dx); free(dw); free(db);
    }
}

/* dropout and relu backward */
typedef struct {
    float *x, *mask, *y, *r;
    size_t n;
} DropCtx;

static double drop_loss(void *vctx) {
    DropCtx *c = vctx;
    K->dropout_apply(c->y, c->x, c->mask, c->n);
    pt_relu_forward(c->y, c->y, c->n);
    return dot_double(c->y, c->r, c->n);
}

static void test_fd_dropout_relu(void **state) {
    (void)state;
    PtRng rng;
    pt_rng_seed(&rng, 25);
    DropCtx c = {.n = 64};
    c.x = random_floats(c.n, -1, 1, &rng);
    c.r = random_floats(c.n, -1, 1, &rng);
    c.y = zeros(c.n);
    c.mask = zeros(c.n);
    pt_dropout_mask(c.mask, c.n, 0.5f, &rng);
    drop_loss(&c);
    float *dx = zeros(c.n);
    pt_relu_backward(dx, c.r, c.y, c.n);
    K->dropout_apply(dx, dx, c.mask, c.n);
    int checked = 0, nonzero = 0;
    for (size_t q = 0; q < c.n; q++) {
        if (fabsf(c.x[q]) < 2e-2f) continue; /* relu kink */
        checked++;
        nonzero += dx[q] != 0.0f;
        assert_close(central_diff(drop_loss, &c, &c.x[q], 1e-2f), dx[q], 1e-3, 1e-4, "dropout dx");
    }
    assert_true(checked > 50 && nonzero > 5);
    free(c.x); free(c.r); free(c.y); free(c.mask); free(dx);
}

/* softmax cross-entropy */
typedef struct {
    float *logits;
    uint8_t labels[4];
} CeCtx;

static double ce_loss(void *vctx) {
    CeCtx *c = vctx;
    return pt_softmax_ce(NULL, NULL, c->logits, c->labels, 4, 10, 1) / 4.0;
}

static void test_fd_softmax_ce(void **state) {
    (void)state;
    PtRng rng;
    pt_rng_seed(&rng, 26);
    CeCtx c = {.labels = {3, 0, 9, 3}};
    c.logits = random_floats(40, -3, 3, &rng);
    float dl[40];
    pt_softmax_ce(dl, NULL, c.logits, c.labels, 4, 10, 4);
    for (int q = 0; q < 40; q++)
        assert_close(central_diff(ce_loss, &c, &c.logits[q], 1e-3f), dl[q], 1e-3, 1e-5, "softmax-ce");
    free(c.logits);
}

int main(void) {
    PtKernelSet set;
    int skip = pt_kernels_for_test(&set);
    if (skip) return skip;
    K = pt_kernels_table(set);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_hand),
        cmocka_unit_test(test_maxpool_hand),
        cmocka_unit_test(test_dropout_hand),
        cmocka_unit_test(test_dense_hand),
        cmocka_unit_test(test_dense_one_sample),
        cmocka_unit_test(test_softmax_ce_hand),
        cmocka_unit_test(test_conv1_fused_vs_naive),
        cmocka_unit_test(test_conv2_vs_naive),
        cmocka_unit_test(test_fd_conv),
        cmocka_unit_test(test_fd_conv1_relu_pool),
        cmocka_unit_test(test_fd_maxpool),
        cmocka_unit_test(test_fd_dense),
        cmocka_unit_test(test_fd_dropout_relu),
        cmocka_unit_test(test_fd_softmax_ce),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
