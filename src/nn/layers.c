/* layers.c: the layers that are the same on every CPU: relu, the dense layer through the CBLAS
 * (which picks its own kernels for the CPU), softmax cross-entropy from logits, and the scalar
 * dropout mask of one generator. The hot convolution, pooling and dropout loops are kernel sets
 * (pt_kernels.h); the naive references are in reference.c. */
#include "pt_layers.h"

#include <assert.h>
#include "pt_cblas.h"
#include <math.h>
#include <string.h>

#include "kernels_internal.h"

/* ---------------------------------------------------------------------------------------------
 * Dropout, relu.
 */

/* The masks are the hottest random draws (14,368 per training image): this is pt_rng_next and
 * pt_rng_uniform of rng.c (xoshiro256**, top 24 bits) inlined on the same state, so the stream is
 * exactly the one pt_rng_uniform would give (test_layers checks it draw by draw). */
static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* keep iff u = (r >> 40) * 2^-24 < keep_prob, i.e. iff the integer r >> 40 is below this (the
 * float product keep_prob * 2^24 is exact): the draw of pt_rng_uniform compared as an integer. */
uint64_t pt_dropout_keep_threshold(float keep_prob) { return (uint64_t)ceilf(keep_prob * 16777216.0f); }

void pt_dropout_mask(float *restrict mask, size_t n, float rate, PtRng *rng) {
    float keep_prob = 1.0f - rate;
    float scale = 1.0f / keep_prob;
    /* keep_threshold's integer compare, then a select without a branch (a random branch
     * mispredicts on every other draw): scale's bits or +0.0f's. */
    const uint64_t threshold = pt_dropout_keep_threshold(keep_prob);
    uint32_t scale_bits;
    memcpy(&scale_bits, &scale, sizeof scale_bits);
    uint64_t s0 = rng->s[0], s1 = rng->s[1], s2 = rng->s[2], s3 = rng->s[3];
    for (size_t k = 0; k < n; k++) {
        uint64_t result = rotl64(s1 * 5, 7) * 9;
        uint64_t t = s1 << 17;
        s2 ^= s0;
        s3 ^= s1;
        s1 ^= s2;
        s0 ^= s3;
        s2 ^= t;
        s3 = rotl64(s3, 45);
        uint32_t bits = scale_bits & (0u - (uint32_t)((result >> 40) < threshold));
        memcpy(&mask[k], &bits, sizeof bits); /* a plain store, without type punning */
    }
    rng->s[0] = s0;
    rng->s[1] = s1;
    rng->s[2] = s2;
    rng->s[3] = s3;
}

void pt_relu_forward(float *out, const float *x, size_t n) {
    for (size_t k = 0; k < n; k++) out[k] = x[k] > 0.0f ? x[k] : 0.0f;
}

void pt_relu_backward(float *dx, const float *dout, const float *out, size_t n) {
    /* dx may be dout (in place): element k reads only index k, so no iteration depends on
     * another, which ivdep tells GCC (its overlap check otherwise picked a scalar loop with a
     * branch per element). */
#pragma GCC ivdep
    for (size_t k = 0; k < n; k++) {
        float d = dout[k]; /* read unconditionally, so the select needs no branch */
        dx[k] = out[k] > 0.0f ? d : 0.0f;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Dense. One sample is a matrix-vector product: sgemv/sger avoid sgemm's packing overhead.
 */

void pt_dense_forward(float *y, const float *x, const float *weight, const float *bias,
                      int B, int in, int out) {
    for (int r = 0; r < B; r++) memcpy(y + (size_t)r * out, bias, (size_t)out * sizeof(float));
    if (B == 1)
        cblas_sgemv(CblasRowMajor, CblasTrans, in, out, 1.0f, weight, out, x, 1, 1.0f, y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, out, in, 1.0f, x, in, weight, out,
                    1.0f, y, out);
}

void pt_dense_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                       const float *weight, int B, int in, int out) {
    if (dbias)
        for (int r = 0; r < B; r++) {
            const float *restrict g = dy + (size_t)r * out;
            for (int o = 0; o < out; o++) dbias[o] += g[o];
        }
    if (dweight) {
        if (B == 1)
            cblas_sger(CblasRowMajor, in, out, 1.0f, x, 1, dy, 1, dweight, out);
        else
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, B, 1.0f, x, in, dy, out,
                        1.0f, dweight, out);
    }
    if (dx) {
        if (B == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, in, out, 1.0f, weight, out, dy, 1, 0.0f, dx, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, in, out, 1.0f, dy, out, weight,
                        out, 0.0f, dx, in);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Softmax cross-entropy.
 */

double pt_softmax_ce(float *dlogits, int *correct, const float *logits, const uint8_t *labels,
                     int B, int C, int denom) {
    double total = 0.0;
    int hits = 0;
    for (int r = 0; r < B; r++) {
        const float *z = logits + (size_t)r * C;
        int label = labels[r];
        assert(label >= 0 && label < C);
        int best = 0;
        for (int c = 1; c < C; c++)
            if (z[c] > z[best]) best = c;
        hits += best == label;
        double zmax = z[best], sum = 0.0;
        for (int c = 0; c < C; c++) sum += exp((double)z[c] - zmax);
        double log_sum = log(sum);
        total += log_sum - ((double)z[label] - zmax);
        if (dlogits) {
            for (int c = 0; c < C; c++) {
                double p = exp((double)z[c] - zmax - log_sum);
                dlogits[(size_t)r * C + c] = (float)((p - (c == label ? 1.0 : 0.0)) / denom);
            }
        }
    }
    if (correct) *correct = hits;
    return total;
}
