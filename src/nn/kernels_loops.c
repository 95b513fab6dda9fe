/* kernels_loops.c: the engine's plain hot loops, written once in portable C and compiled once per
 * kernel set (CMake builds this file three times, with -DPT_KSET=generic, avx2 or avx512 and that
 * set's instruction flags), so GCC vectorises each copy for its set's vector width. Every function
 * gets the set's name as suffix (see kernels_internal.h). Without -ffast-math and in ISO C mode
 * the compiler neither reorders float sums nor contracts a*b+c into an FMA, so these loops give
 * the same bits in every set.
 *
 * Contents: conv1 fused with relu and max pooling (forward, weight gradients), relu + max pooling
 * and its backward, dropout (apply; masks for several generators at once, structure of arrays),
 * Adam's update, conv2's kernel rearrangement and bias gradient, and the dense layer of one
 * sample. */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "kernels_internal.h"
#include "pt_layers.h"

#ifndef PT_KSET
#error "kernels_loops.c is compiled once per kernel set with -DPT_KSET=<generic|avx2|avx512>"
#endif
#define PT_CAT_(a, b) a##_##b
#define PT_CAT(a, b) PT_CAT_(a, b)
#define KFN(name) PT_CAT(name, PT_KSET) /* conv2_forward -> conv2_forward_avx2 */

/* ---------------------------------------------------------------------------------------------
 * conv1 (one input channel) fused with relu and 2x2 max pooling. */

/* Pixel (i, j) of one (H,W) image, zero outside. */
static inline float pixel_or_zero(const float *img, int H, int W, int i, int j) {
    return (i < H && j < W) ? img[(size_t)i * W + j] : 0.0f;
}

/* One image. Each pooled unit reads a 3x3 input patch; the four pre-activations of its window are
 * computed per channel and only the winner is kept. */
static inline void conv_c1_relu_pool_image(float *restrict pooled, uint8_t *restrict argmax,
                                           const float *restrict img, const float *restrict kernel,
                                           const float *restrict bias, int H, int W, int Cout) {
    const float *k0 = kernel, *k1 = kernel + Cout, *k2 = kernel + 2 * Cout, *k3 = kernel + 3 * Cout;
    int PH = H / 2, PW = W / 2;
    for (int pi = 0; pi < PH; pi++)
        for (int pj = 0; pj < PW; pj++) {
            float p[3][3];
            for (int r = 0; r < 3; r++)
                for (int c = 0; c < 3; c++) p[r][c] = pixel_or_zero(img, H, W, 2 * pi + r, 2 * pj + c);
            float *restrict o = pooled + ((size_t)pi * PW + pj) * Cout;
            uint8_t *restrict am = argmax + ((size_t)pi * PW + pj) * Cout;
            for (int co = 0; co < Cout; co++) {
                float v0 = bias[co] + p[0][0] * k0[co] + p[0][1] * k1[co] + p[1][0] * k2[co] + p[1][1] * k3[co];
                float v1 = bias[co] + p[0][1] * k0[co] + p[0][2] * k1[co] + p[1][1] * k2[co] + p[1][2] * k3[co];
                float v2 = bias[co] + p[1][0] * k0[co] + p[1][1] * k1[co] + p[2][0] * k2[co] + p[2][1] * k3[co];
                float v3 = bias[co] + p[1][1] * k0[co] + p[1][2] * k1[co] + p[2][1] * k2[co] + p[2][2] * k3[co];
                float best = v0;
                int idx = 0;
                if (v1 > best) { best = v1; idx = 1; }
                if (v2 > best) { best = v2; idx = 2; }
                if (v3 > best) { best = v3; idx = 3; }
                o[co] = best > 0.0f ? best : 0.0f;
                am[co] = (uint8_t)(best > 0.0f ? idx : PT_POOL_DEAD);
            }
        }
}

void KFN(conv1_relu_pool_forward)(float *pooled, uint8_t *argmax, const float *x,
                                  const float *kernel, const float *bias, int B, int H, int W,
                                  int Cout) {
    assert(H % 2 == 0 && W % 2 == 0);
    size_t per_out = (size_t)(H / 2) * (W / 2) * Cout;
    for (int b = 0; b < B; b++) {
        const float *img = x + (size_t)b * H * W;
        if (Cout == 64) /* the model's conv1: a constant trip count vectorises best */
            conv_c1_relu_pool_image(pooled + b * per_out, argmax + b * per_out, img, kernel, bias, H, W, 64);
        else
            conv_c1_relu_pool_image(pooled + b * per_out, argmax + b * per_out, img, kernel, bias, H, W, Cout);
    }
}

/* Weight gradients of one image: the winner q of a window gets the gradient g; it saw the taps
 * p[di+a][dj+c] with (di, dj) = (q/2, q%2). Written with a 0/g select per window position so the
 * loop over channels stays branch-free, and by blocks of 16 channels over all windows so the
 * five accumulators stay in registers. Accumulates into dk (4, Cout) and db (Cout). */
#define GRAD_BLOCK 16
static void conv_c1_relu_pool_grad_image(float *restrict dk, float *restrict db,
                                         const float *restrict dpooled,
                                         const uint8_t *restrict argmax,
                                         const float *restrict img, int H, int W, int Cout) {
    int PH = H / 2, PW = W / 2;
    for (int cb = 0; cb < Cout; cb += GRAD_BLOCK) {
        float a0[GRAD_BLOCK] = {0}, a1[GRAD_BLOCK] = {0}, a2[GRAD_BLOCK] = {0},
              a3[GRAD_BLOCK] = {0}, ab[GRAD_BLOCK] = {0};
        for (int pi = 0; pi < PH; pi++)
            for (int pj = 0; pj < PW; pj++) {
                float p[3][3];
                for (int r = 0; r < 3; r++)
                    for (int c = 0; c < 3; c++) p[r][c] = pixel_or_zero(img, H, W, 2 * pi + r, 2 * pj + c);
                const float *restrict g = dpooled + ((size_t)pi * PW + pj) * Cout + cb;
                const uint8_t *restrict am = argmax + ((size_t)pi * PW + pj) * Cout + cb;
                for (int co = 0; co < GRAD_BLOCK; co++) {
                    float gv = g[co]; /* loaded once, unconditionally: lets GCC if-convert */
                    int q = am[co];
                    float g0 = q == 0 ? gv : 0.0f, g1 = q == 1 ? gv : 0.0f;
                    float g2 = q == 2 ? gv : 0.0f, g3 = q == 3 ? gv : 0.0f;
                    a0[co] += p[0][0] * g0 + p[0][1] * g1 + p[1][0] * g2 + p[1][1] * g3;
                    a1[co] += p[0][1] * g0 + p[0][2] * g1 + p[1][1] * g2 + p[1][2] * g3;
                    a2[co] += p[1][0] * g0 + p[1][1] * g1 + p[2][0] * g2 + p[2][1] * g3;
                    a3[co] += p[1][1] * g0 + p[1][2] * g1 + p[2][1] * g2 + p[2][2] * g3;
                    ab[co] += (g0 + g1) + (g2 + g3);
                }
            }
        for (int co = 0; co < GRAD_BLOCK; co++) {
            dk[0 * Cout + cb + co] += a0[co];
            dk[1 * Cout + cb + co] += a1[co];
            dk[2 * Cout + cb + co] += a2[co];
            dk[3 * Cout + cb + co] += a3[co];
            db[cb + co] += ab[co];
        }
    }
}

static inline float bits_float(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* The same for the model's 64 channels, one window at a time: a separate, non-inlined function
 * over a constant 64 channels with the nine window pixels as scalars, which GCC vectorises with
 * full-width vectors (inlined into the window loops, or with a variable channel count, it falls
 * back to narrow vectors and spills). Accumulates into dk (4,64) and db (64). */
__attribute__((noinline)) static void conv_c1_pool_grad_window64(
    float *restrict dk, float *restrict db, const float *restrict g, const uint8_t *restrict am,
    float p00, float p01, float p02, float p10, float p11, float p12, float p20, float p21,
    float p22) {
    for (int co = 0; co < 64; co++) {
        /* g_k = (argmax == k ? g : +0), selected with bit masks: GCC if-converts the plain
         * conditionals only with AVX-512's mask registers, and left the AVX2 and SSE2 copies
         * scalar with mispredicted branches (a third of an AVX2 training step) */
        uint32_t gbits;
        memcpy(&gbits, &g[co], sizeof gbits);
        uint32_t q = am[co];
        float g0 = bits_float(gbits & (0u - (uint32_t)(q == 0))), g1 = bits_float(gbits & (0u - (uint32_t)(q == 1)));
        float g2 = bits_float(gbits & (0u - (uint32_t)(q == 2))), g3 = bits_float(gbits & (0u - (uint32_t)(q == 3)));
        dk[co] += p00 * g0 + p01 * g1 + p10 * g2 + p11 * g3;
        dk[64 + co] += p01 * g0 + p02 * g1 + p11 * g2 + p12 * g3;
        dk[128 + co] += p10 * g0 + p11 * g1 + p20 * g2 + p21 * g3;
        dk[192 + co] += p11 * g0 + p12 * g1 + p21 * g2 + p22 * g3;
        db[co] += (g0 + g1) + (g2 + g3);
    }
}

static void conv_c1_relu_pool_grad_image64(float *restrict dk, float *restrict db,
                                           const float *restrict dpooled,
                                           const uint8_t *restrict argmax,
                                           const float *restrict img, int H, int W) {
    int PH = H / 2, PW = W / 2;
    for (int pi = 0; pi < PH; pi++)
        for (int pj = 0; pj < PW; pj++) {
            float p[3][3];
            for (int r = 0; r < 3; r++)
                for (int c = 0; c < 3; c++) p[r][c] = pixel_or_zero(img, H, W, 2 * pi + r, 2 * pj + c);
            size_t o = ((size_t)pi * PW + pj) * 64;
            conv_c1_pool_grad_window64(dk, db, dpooled + o, argmax + o, p[0][0], p[0][1], p[0][2],
                                       p[1][0], p[1][1], p[1][2], p[2][0], p[2][1], p[2][2]);
        }
}

void KFN(conv1_relu_pool_backward)(float *dkernel, float *dbias, const float *dpooled,
                                   const uint8_t *argmax, const float *x, int B, int H, int W,
                                   int Cout) {
    assert(H % 2 == 0 && W % 2 == 0);
    if (!dkernel && !dbias) return;
    float dk_local[4 * 256], db_local[256]; /* per-call sums, added to the gradients at the end */
    assert(Cout <= 256 && Cout % GRAD_BLOCK == 0);
    memset(dk_local, 0, sizeof(float) * 4 * (size_t)Cout);
    memset(db_local, 0, sizeof(float) * (size_t)Cout);
    size_t per_out = (size_t)(H / 2) * (W / 2) * Cout;
    for (int b = 0; b < B; b++) {
        const float *img = x + (size_t)b * H * W;
        if (Cout == 64)
            conv_c1_relu_pool_grad_image64(dk_local, db_local, dpooled + b * per_out,
                                           argmax + b * per_out, img, H, W);
        else
            conv_c1_relu_pool_grad_image(dk_local, db_local, dpooled + b * per_out,
                                         argmax + b * per_out, img, H, W, Cout);
    }
    if (dkernel)
        for (int t = 0; t < 4 * Cout; t++) dkernel[t] += dk_local[t];
    if (dbias)
        for (int co = 0; co < Cout; co++) dbias[co] += db_local[co];
}

/* ---------------------------------------------------------------------------------------------
 * conv2's helpers shared by every set (its kernels are the sets' own). */

#define C2_IN 64
#define C2_OUT 32

/* packed = the kernel transposed per tap: (4,32,64)[t][co][ci] = kernel (4,64,32)[t][ci][co]. */
void KFN(conv2_pack_backward)(float *packed, const float *kernel) {
    for (int t = 0; t < 4; t++)
        for (int ci = 0; ci < C2_IN; ci++)
            for (int co = 0; co < C2_OUT; co++)
                packed[(t * C2_OUT + co) * C2_IN + ci] = kernel[(t * C2_IN + ci) * C2_OUT + co];
}

void KFN(conv2_bias_grad)(float *dbias, const float *dout, size_t rows) {
    for (size_t r = 0; r < rows; r++) {
        const float *restrict g = dout + r * C2_OUT;
        for (int co = 0; co < C2_OUT; co++) dbias[co] += g[co];
    }
}

/* ---------------------------------------------------------------------------------------------
 * relu + max pooling 2x2 stride 2, and its backward. */

void KFN(relu_maxpool_forward)(float *restrict out, uint8_t *restrict argmax, const float *restrict x,
                               int B, int H, int W, int C) {
    assert(H % 2 == 0 && W % 2 == 0);
    int PH = H / 2, PW = W / 2;
    for (int b = 0; b < B; b++)
        for (int pi = 0; pi < PH; pi++)
            for (int pj = 0; pj < PW; pj++) {
                const float *restrict r0 = x + (((size_t)b * H + 2 * pi) * W + 2 * pj) * C;
                const float *restrict r1 = r0 + (size_t)W * C;
                float *restrict o = out + (((size_t)b * PH + pi) * PW + pj) * C;
                uint8_t *restrict am = argmax + (((size_t)b * PH + pi) * PW + pj) * C;
                for (int c = 0; c < C; c++) {
                    float best = r0[c];
                    int idx = 0;
                    if (r0[C + c] > best) { best = r0[C + c]; idx = 1; }
                    if (r1[c] > best) { best = r1[c]; idx = 2; }
                    if (r1[C + c] > best) { best = r1[C + c]; idx = 3; }
                    o[c] = best > 0.0f ? best : 0.0f;
                    am[c] = (uint8_t)(best > 0.0f ? idx : PT_POOL_DEAD);
                }
            }
}

/* One 2x2 window's gradient: each of the four positions gets g where the argmax names it and +0
 * elsewhere (argmax PT_POOL_DEAD: all four +0), selected with bit masks as in
 * conv_c1_pool_grad_window64. The four outputs are separate restrict pointers: written through one
 * pointer with offsets, GCC could not rule out overlap and ran a scalar loop with four
 * mispredicted branches per channel (5% of a training step). C is a constant in the model's
 * case (32), so the loop is unrolled into full-width vectors. */
static inline void maxpool_grad_window(float *restrict d00, float *restrict d01, float *restrict d10,
                                       float *restrict d11, const float *restrict g,
                                       const uint8_t *restrict am, int C) {
    for (int c = 0; c < C; c++) {
        uint32_t gbits;
        memcpy(&gbits, &g[c], sizeof gbits);
        uint32_t q = am[c];
        d00[c] = bits_float(gbits & (0u - (uint32_t)(q == 0)));
        d01[c] = bits_float(gbits & (0u - (uint32_t)(q == 1)));
        d10[c] = bits_float(gbits & (0u - (uint32_t)(q == 2)));
        d11[c] = bits_float(gbits & (0u - (uint32_t)(q == 3)));
    }
}

__attribute__((noinline)) static void maxpool_grad_window32(float *restrict d00, float *restrict d01,
                                                            float *restrict d10, float *restrict d11,
                                                            const float *restrict g,
                                                            const uint8_t *restrict am) {
    maxpool_grad_window(d00, d01, d10, d11, g, am, 32);
}

__attribute__((noinline)) static void maxpool_grad_window_any(float *restrict d00, float *restrict d01,
                                                              float *restrict d10, float *restrict d11,
                                                              const float *restrict g,
                                                              const uint8_t *restrict am, int C) {
    maxpool_grad_window(d00, d01, d10, d11, g, am, C);
}

void KFN(maxpool_backward)(float *restrict dx, const float *restrict dout,
                           const uint8_t *restrict argmax, int B, int H, int W, int C) {
    int PH = H / 2, PW = W / 2;
    for (int b = 0; b < B; b++)
        for (int pi = 0; pi < PH; pi++)
            for (int pj = 0; pj < PW; pj++) {
                float *r0 = dx + (((size_t)b * H + 2 * pi) * W + 2 * pj) * C;
                float *r1 = r0 + (size_t)W * C;
                size_t o = (((size_t)b * PH + pi) * PW + pj) * C;
                if (C == 32) maxpool_grad_window32(r0, r0 + C, r1, r1 + C, dout + o, argmax + o);
                else maxpool_grad_window_any(r0, r0 + C, r1, r1 + C, dout + o, argmax + o, C);
            }
}

/* ---------------------------------------------------------------------------------------------
 * Dropout. */

void KFN(dropout_apply)(float *out, const float *x, const float *mask, size_t n) {
    /* out may alias x (in-place dropout): element k is read before it is written. */
    for (size_t k = 0; k < n; k++) out[k] = x[k] * mask[k];
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* The generators in structure-of-arrays form: lane l is generator l; the inner loop over lanes
 * is one SIMD vector. Unused lanes run a copy of lane 0 and are not stored. This is pt_rng_next
 * and pt_rng_uniform of rng.c (xoshiro256**, top 24 bits) written out, so the stream is exactly
 * the one pt_dropout_mask would give (the tests check it draw by draw). */
void KFN(dropout_mask_lanes)(float *const *masks, int lanes, size_t n, float rate, PtRng *rngs) {
    assert(lanes >= 1 && lanes <= PT_MASK_LANES);
    if (lanes == 1) { /* batch 1: one scalar generator beats 8 lanes of which 7 are wasted */
        pt_dropout_mask(masks[0], n, rate, &rngs[0]);
        return;
    }
    float keep_prob = 1.0f - rate;
    float scale = 1.0f / keep_prob;
    const uint64_t threshold = pt_dropout_keep_threshold(keep_prob);
    uint64_t s0[PT_MASK_LANES], s1[PT_MASK_LANES], s2[PT_MASK_LANES], s3[PT_MASK_LANES];
    for (int l = 0; l < PT_MASK_LANES; l++) {
        const PtRng *r = &rngs[l < lanes ? l : 0];
        s0[l] = r->s[0]; s1[l] = r->s[1]; s2[l] = r->s[2]; s3[l] = r->s[3];
    }
    enum { TILE = 256 };
    float tile[TILE][PT_MASK_LANES];
    for (size_t base = 0; base < n; base += TILE) {
        size_t len = n - base < TILE ? n - base : TILE;
        for (size_t k = 0; k < len; k++)
            for (int l = 0; l < PT_MASK_LANES; l++) {
                uint64_t result = rotl64(s1[l] * 5, 7) * 9;
                uint64_t t = s1[l] << 17;
                s2[l] ^= s0[l];
                s3[l] ^= s1[l];
                s1[l] ^= s2[l];
                s0[l] ^= s3[l];
                s2[l] ^= t;
                s3[l] = rotl64(s3[l], 45);
                tile[k][l] = (result >> 40) < threshold ? scale : 0.0f;
            }
        for (int l = 0; l < lanes; l++)
            for (size_t k = 0; k < len; k++) masks[l][base + k] = tile[k][l];
    }
    for (int l = 0; l < lanes; l++) {
        rngs[l].s[0] = s0[l]; rngs[l].s[1] = s1[l]; rngs[l].s[2] = s2[l]; rngs[l].s[3] = s3[l];
    }
}

/* ---------------------------------------------------------------------------------------------
 * Adam (TensorFlow's; see pt_adam.h). sqrtf vectorises with -fno-math-errno. */

void KFN(adam_update)(float *restrict w, float *restrict m, float *restrict v, const float *restrict g,
                      size_t n, float lr_t, float one_minus_b1, float one_minus_b2, float eps) {
    for (size_t k = 0; k < n; k++) {
        float gk = g[k];
        float mk = m[k] + (gk - m[k]) * one_minus_b1;
        float vk = v[k] + (gk * gk - v[k]) * one_minus_b2;
        m[k] = mk;
        v[k] = vk;
        w[k] -= lr_t * mk / (sqrtf(vk) + eps);
    }
}

/* Row by row of the kernel (in, out): g = x[i] * dy[j] + 0.0f, the + 0 turning a -0 product into
 * the +0 that sger's accumulation into a zeroed buffer leaves (this file is compiled without FMA
 * contraction, so the product is rounded once, as sger's is). */
void KFN(adam_update_outer)(float *restrict w, float *restrict m, float *restrict v,
                            const float *restrict x, const float *restrict dy, int in, int out,
                            float lr_t, float one_minus_b1, float one_minus_b2, float eps) {
    for (int i = 0; i < in; i++) {
        const float xi = x[i];
        float *restrict wr = w + (size_t)i * out, *restrict mr = m + (size_t)i * out,
                        *restrict vr = v + (size_t)i * out;
        for (int j = 0; j < out; j++) {
            float gk = xi * dy[j] + 0.0f;
            float mk = mr[j] + (gk - mr[j]) * one_minus_b1;
            float vk = vr[j] + (gk * gk - vr[j]) * one_minus_b2;
            mr[j] = mk;
            vr[j] = vk;
            wr[j] -= lr_t * mk / (sqrtf(vk) + eps);
        }
    }
}

/* By blocks that stay in L1: the summed gradient is never stored. */
void KFN(adam_update_sum)(float *w, float *m, float *v, const float *const *src, int n_src,
                          size_t off, size_t n, float lr_t, float one_minus_b1,
                          float one_minus_b2, float eps) {
    enum { BLOCK = 1024 };
    float g[BLOCK] __attribute__((aligned(64)));
    for (size_t k0 = 0; k0 < n; k0 += BLOCK) {
        size_t len = n - k0 < BLOCK ? n - k0 : BLOCK;
        const float *restrict s0 = src[0] + off + k0;
        for (size_t j = 0; j < len; j++) g[j] = s0[j];
        for (int r = 1; r < n_src; r++) {
            const float *restrict sr = src[r] + off + k0;
            for (size_t j = 0; j < len; j++) g[j] += sr[j];
        }
        KFN(adam_update)(w + k0, m + k0, v + k0, g, len, lr_t, one_minus_b1, one_minus_b2, eps);
    }
}

/* ---------------------------------------------------------------------------------------------
 * The dense layer of one sample (the trials' steps), skipping the rows of the kernel (in, out)
 * that cannot matter: inputs that are 0 (dropped out or cut by relu: 83% of dense1's in a
 * trial on MNIST) add nothing to the forward sum, and the input gradient of a unit that dropout
 * or relu cut is never used. Summation orders are fixed, so these give the same bits in every set. */

/* y = bias + the sum over the rows i with x[i] != 0, in increasing i, of x[i] * weight[i][:],
 * summed in blocks: each block of 16 such rows is summed on its own from 0, then added to y (a
 * plain running sum of 784 rows carried twice the rounding error of OpenBLAS's sgemv in a
 * test; blocks of 16 carried less than it). out <= 512. */
void KFN(dense_forward_one)(float *restrict y, const float *restrict x, const float *restrict weight,
                            const float *restrict bias, int in, int out) {
    enum { BLOCK_ROWS = 16, MAX_OUT = 512 };
    assert(out <= MAX_OUT);
    float block[MAX_OUT] __attribute__((aligned(64))); /* (out) the current block's sum */
    for (int j = 0; j < out; j++) {
        y[j] = bias[j];
        block[j] = 0.0f;
    }
    int rows_in_block = 0;
    for (int i = 0; i < in; i++) {
        const float xi = x[i];
        if (xi == 0.0f) continue;
        const float *restrict wr = weight + (size_t)i * out;
        for (int j = 0; j < out; j++) block[j] += xi * wr[j];
        if (++rows_in_block == BLOCK_ROWS) {
            for (int j = 0; j < out; j++) {
                y[j] += block[j];
                block[j] = 0.0f;
            }
            rows_in_block = 0;
        }
    }
    if (rows_in_block > 0)
        for (int j = 0; j < out; j++) y[j] += block[j];
}

/* dx[i] = weight[i][:] . dy where rows[i] != 0, else 0. The dot product runs in 16 lanes (lane l
 * sums the products j = l, l+16, ... in order; out is a multiple of 16), added pairwise: 0+8,
 * then 0+4, 0+2, 0+1 of the halves (one 512-bit vector, two 256-bit or four 128-bit ones, the
 * same arithmetic). */
void KFN(dense_input_grad_one)(float *restrict dx, const uint8_t *restrict rows,
                               const float *restrict weight, const float *restrict dy, int in,
                               int out) {
    enum { LANES = 16 };
    assert(out % LANES == 0);
    for (int i = 0; i < in; i++) {
        if (!rows[i]) {
            dx[i] = 0.0f;
            continue;
        }
        const float *restrict wr = weight + (size_t)i * out;
        float acc[LANES];
        for (int l = 0; l < LANES; l++) acc[l] = wr[l] * dy[l];
        for (int j = LANES; j < out; j += LANES)
            for (int l = 0; l < LANES; l++) acc[l] += wr[j + l] * dy[j + l];
        for (int half = LANES / 2; half >= 1; half /= 2)
            for (int l = 0; l < half; l++) acc[l] += acc[l + half];
        dx[i] = acc[0];
    }
}
