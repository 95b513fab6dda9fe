/* kernels_avx512.c: the avx512 kernel set (see pt_kernels.h): conv2's forward, weight gradient and
 * input gradient as register-blocked AVX-512 kernels (no im2col, no BLAS packing), and the dropout
 * masks of 8 generators in the 8 64-bit lanes of one vector. Compiled with -mavx512f -mavx512vl
 * -mavx512bw -mavx512dq -mavx2 -mfma only (CMake's per-file flags); called only when
 * pt_kernels_supported(PT_KSET_AVX512). The plain loops of the set come from kernels_loops.c
 * compiled with the same flags. */
#include <immintrin.h>
#include <string.h>

#include "kernels_internal.h"
#include "pt_layers.h"

/* Direct conv2 forward for Cin = 64, Cout = 32, one image: each output row of 14 pixels is two
 * blocks of 7; a block keeps its 7 x 32 sums in 14 AVX-512 registers, and for each of the 4 taps
 * and 64 input channels broadcasts one input value per pixel against the two 16-wide halves of
 * that kernel row (read from L1). Taps that fall outside the image read a zero row. */
#define DIRECT_BLOCK 7
static void conv2_forward_image(float *restrict out, const float *restrict x,
                               const float *restrict kernel, const float *restrict bias, int H,
                               int W) {
    static const float zeros[64] __attribute__((aligned(64)));
    for (int i = 0; i < H; i++)
        for (int j0 = 0; j0 < W; j0 += DIRECT_BLOCK) {
            int np = W - j0 < DIRECT_BLOCK ? W - j0 : DIRECT_BLOCK;
            __m512 acc[DIRECT_BLOCK][2];
            __m512 b0 = _mm512_loadu_ps(bias), b1 = _mm512_loadu_ps(bias + 16);
            for (int p = 0; p < DIRECT_BLOCK; p++) { acc[p][0] = b0; acc[p][1] = b1; }
            for (int a = 0; a < 2; a++) {
                if (i + a >= H) continue;
                for (int c = 0; c < 2; c++) {
                    const float *src[DIRECT_BLOCK];
                    for (int p = 0; p < DIRECT_BLOCK; p++) {
                        int jj = j0 + p + c;
                        src[p] = (p < np && jj < W) ? x + ((size_t)(i + a) * W + jj) * 64 : zeros;
                    }
                    const float *k = kernel + (size_t)(a * 2 + c) * 64 * 32;
                    for (int ci = 0; ci < 64; ci++) {
                        __m512 k0 = _mm512_loadu_ps(k + ci * 32), k1 = _mm512_loadu_ps(k + ci * 32 + 16);
                        for (int p = 0; p < DIRECT_BLOCK; p++) {
                            __m512 v = _mm512_set1_ps(src[p][ci]);
                            acc[p][0] = _mm512_fmadd_ps(v, k0, acc[p][0]);
                            acc[p][1] = _mm512_fmadd_ps(v, k1, acc[p][1]);
                        }
                    }
                }
            }
            for (int p = 0; p < np; p++) {
                float *o = out + ((size_t)i * W + j0 + p) * 32;
                _mm512_storeu_ps(o, acc[p][0]);
                _mm512_storeu_ps(o + 16, acc[p][1]);
            }
        }
}

/* Input gradient of one image, gather form: dx[y][x][ci] = sum over taps (a,c) with y-a, x-c
 * inside the image of sum_co dout[y-a][x-c][co] * K[a][c][ci][co]. The same blocking as the
 * forward: 7 pixels x 32 input channels (one half of 64) in 14 registers; for each tap and each
 * of the 32 output channels, one row of the transposed kernel kt (4,32,64) against one broadcast
 * gradient value per pixel. If keep_scale > 0, each stored value is multiplied by
 * (x > 0 ? keep_scale : 0), x (H,W,64) being the layer's input (see pt_layers.h). */
static void conv2_direct_dx_image(float *restrict dx, const float *restrict dout,
                                  const float *restrict kt, const float *restrict x,
                                  float keep_scale, int H, int W) {
    static const float zeros[32] __attribute__((aligned(64)));
    for (int y = 0; y < H; y++)
        for (int x0 = 0; x0 < W; x0 += DIRECT_BLOCK) {
            int np = W - x0 < DIRECT_BLOCK ? W - x0 : DIRECT_BLOCK;
            for (int half = 0; half < 2; half++) {
                __m512 acc[DIRECT_BLOCK][2];
                for (int p = 0; p < DIRECT_BLOCK; p++) acc[p][0] = acc[p][1] = _mm512_setzero_ps();
                for (int a = 0; a < 2; a++) {
                    if (y - a < 0) continue;
                    for (int c = 0; c < 2; c++) {
                        const float *src[DIRECT_BLOCK];
                        for (int p = 0; p < DIRECT_BLOCK; p++) {
                            int xx = x0 + p - c;
                            src[p] = (p < np && xx >= 0) ? dout + ((size_t)(y - a) * W + xx) * 32 : zeros;
                        }
                        const float *k = kt + (size_t)(a * 2 + c) * 32 * 64 + half * 32;
                        for (int co = 0; co < 32; co++) {
                            __m512 k0 = _mm512_loadu_ps(k + co * 64), k1 = _mm512_loadu_ps(k + co * 64 + 16);
                            for (int p = 0; p < DIRECT_BLOCK; p++) {
                                __m512 v = _mm512_set1_ps(src[p][co]);
                                acc[p][0] = _mm512_fmadd_ps(v, k0, acc[p][0]);
                                acc[p][1] = _mm512_fmadd_ps(v, k1, acc[p][1]);
                            }
                        }
                    }
                }
                for (int p = 0; p < np; p++) {
                    size_t o = ((size_t)y * W + x0 + p) * 64 + half * 32;
                    __m512 r0 = acc[p][0], r1 = acc[p][1];
                    if (keep_scale > 0.0f) {
                        const __m512 scale = _mm512_set1_ps(keep_scale), zero = _mm512_setzero_ps();
                        r0 = _mm512_maskz_mul_ps(_mm512_cmp_ps_mask(_mm512_loadu_ps(x + o), zero, _CMP_GT_OQ), r0, scale);
                        r1 = _mm512_maskz_mul_ps(_mm512_cmp_ps_mask(_mm512_loadu_ps(x + o + 16), zero, _CMP_GT_OQ), r1, scale);
                    }
                    _mm512_storeu_ps(dx + o, r0);
                    _mm512_storeu_ps(dx + o + 16, r1);
                }
            }
        }
}

/* Weight gradient of one image: dk[a][c][ci][co] += sum over output pixels (i,j) with (i+a, j+c)
 * inside the image of x[i+a][j+c][ci] * dout[i][j][co]. For each tap and block of 8 input
 * channels, the 8 x 32 sums stay in 16 registers over all pixels (per pixel: two loads of the
 * gradient row, 8 broadcasts, 16 FMAs), then are added to dk. */
#define DW_BLOCK 8
static void conv2_direct_dk_image(float *restrict dk, const float *restrict dout,
                                  const float *restrict x, int H, int W) {
    for (int a = 0; a < 2; a++)
        for (int c = 0; c < 2; c++)
            for (int cb = 0; cb < 64; cb += DW_BLOCK) {
                __m512 acc[DW_BLOCK][2];
                for (int r = 0; r < DW_BLOCK; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
                for (int i = 0; i + a < H; i++)
                    for (int j = 0; j + c < W; j++) {
                        const float *g = dout + ((size_t)i * W + j) * 32;
                        const float *xs = x + ((size_t)(i + a) * W + j + c) * 64 + cb;
                        __m512 g0 = _mm512_loadu_ps(g), g1 = _mm512_loadu_ps(g + 16);
                        for (int r = 0; r < DW_BLOCK; r++) {
                            __m512 v = _mm512_set1_ps(xs[r]);
                            acc[r][0] = _mm512_fmadd_ps(v, g0, acc[r][0]);
                            acc[r][1] = _mm512_fmadd_ps(v, g1, acc[r][1]);
                        }
                    }
                float *d = dk + ((size_t)(a * 2 + c) * 64 + cb) * 32;
                for (int r = 0; r < DW_BLOCK; r++) {
                    _mm512_storeu_ps(d + r * 32, _mm512_add_ps(_mm512_loadu_ps(d + r * 32), acc[r][0]));
                    _mm512_storeu_ps(d + r * 32 + 16, _mm512_add_ps(_mm512_loadu_ps(d + r * 32 + 16), acc[r][1]));
                }
            }
}

static void conv2_forward_avx512_direct(float *out, const float *x, const float *kernel,
                                        const float *bias, int B, int H, int W) {
    for (int b = 0; b < B; b++)
        conv2_forward_image(out + (size_t)b * H * W * 32, x + (size_t)b * H * W * 64, kernel, bias, H, W);
}

static void conv2_backward_avx512_direct(float *dx, float *dkernel, float *dbias, const float *dout,
                                         const float *x, const float *packed, float dx_keep_scale,
                                         int B, int H, int W) {
    size_t n_in = (size_t)H * W * 64, n_out = (size_t)H * W * 32;
    if (dbias) conv2_bias_grad_avx512(dbias, dout, (size_t)B * H * W);
    if (dkernel)
        for (int b = 0; b < B; b++) conv2_direct_dk_image(dkernel, dout + b * n_out, x + b * n_in, H, W);
    if (dx)
        for (int b = 0; b < B; b++)
            conv2_direct_dx_image(dx + b * n_in, dout + b * n_out, packed, x + b * n_in, dx_keep_scale, H, W);
}

static void dropout_mask_lanes_avx512_direct(float *const *masks, int lanes, size_t n, float rate,
                                             PtRng *rngs) {
    if (lanes == 1) { /* batch 1: one scalar generator beats 8 SIMD lanes of which 7 are wasted */
        pt_dropout_mask(masks[0], n, rate, &rngs[0]);
        return;
    }
    float keep_prob = 1.0f - rate;
    float scale = 1.0f / keep_prob;
    /* The 8 generators' states in the 8 64-bit lanes of 4 vectors, kept by keep_threshold's
     * integer compare. Each block of up to 16 draws gives 16 8-bit lane masks; lane l's
     * 16 bits are gathered from them with one shift and one byte movemask, then expand to a
     * store of 16 floats (scale or 0). */
    {
        __m512i s0, s1, s2, s3;
        uint64_t init[4][PT_MASK_LANES];
        for (int l = 0; l < PT_MASK_LANES; l++)
            for (int q = 0; q < 4; q++) init[q][l] = rngs[l < lanes ? l : 0].s[q];
        s0 = _mm512_loadu_si512(init[0]);
        s1 = _mm512_loadu_si512(init[1]);
        s2 = _mm512_loadu_si512(init[2]);
        s3 = _mm512_loadu_si512(init[3]);
        const __m512i threshold = _mm512_set1_epi64((long long)pt_dropout_keep_threshold(keep_prob));
        const __m512 scale_v = _mm512_set1_ps(scale);
        for (size_t base = 0; base < n; base += 16) {
            int len = n - base < 16 ? (int)(n - base) : 16;
            uint8_t keep_bits[16] = {0}; /* keep_bits[k] bit l: lane l keeps unit base + k */
            for (int k = 0; k < len; k++) {
                __m512i r = _mm512_add_epi64(s1, _mm512_slli_epi64(s1, 2)); /* s1 * 5 */
                r = _mm512_rol_epi64(r, 7);
                r = _mm512_add_epi64(r, _mm512_slli_epi64(r, 3));            /* * 9 */
                __m512i t = _mm512_slli_epi64(s1, 17);
                s2 = _mm512_xor_si512(s2, s0);
                s3 = _mm512_xor_si512(s3, s1);
                s1 = _mm512_xor_si512(s1, s2);
                s0 = _mm512_xor_si512(s0, s3);
                s2 = _mm512_xor_si512(s2, t);
                s3 = _mm512_rol_epi64(s3, 45);
                keep_bits[k] = (uint8_t)_mm512_cmplt_epu64_mask(_mm512_srli_epi64(r, 40), threshold);
            }
            __m128i bits = _mm_loadu_si128((const __m128i *)keep_bits);
            __mmask16 valid = (__mmask16)((1u << len) - 1u);
            for (int l = 0; l < lanes; l++) {
                /* bit l of each byte to bit 7 (a shift below 8 keeps bytes apart at bit 7) */
                __mmask16 m = (__mmask16)_mm_movemask_epi8(_mm_sll_epi64(bits, _mm_cvtsi32_si128(7 - l)));
                _mm512_mask_storeu_ps(masks[l] + base, valid, _mm512_maskz_mov_ps(m, scale_v));
            }
        }
        uint64_t out[4][PT_MASK_LANES];
        _mm512_storeu_si512(out[0], s0);
        _mm512_storeu_si512(out[1], s1);
        _mm512_storeu_si512(out[2], s2);
        _mm512_storeu_si512(out[3], s3);
        for (int l = 0; l < lanes; l++)
            for (int q = 0; q < 4; q++) rngs[l].s[q] = out[q][l];
        return;
    }
}

const PtKernels pt_kernels_avx512 = {
    .name = "avx512",
    .conv1_relu_pool_forward = conv1_relu_pool_forward_avx512,
    .conv1_relu_pool_backward = conv1_relu_pool_backward_avx512,
    .conv2_forward = conv2_forward_avx512_direct,
    .conv2_pack_backward = conv2_pack_backward_avx512,
    .conv2_backward = conv2_backward_avx512_direct,
    .relu_maxpool_forward = relu_maxpool_forward_avx512,
    .maxpool_backward = maxpool_backward_avx512,
    .dropout_apply = dropout_apply_avx512,
    .dropout_mask_lanes = dropout_mask_lanes_avx512_direct,
    .adam_update = adam_update_avx512,
    .adam_update_sum = adam_update_sum_avx512,
    .adam_update_outer = adam_update_outer_avx512,
    .dense_forward_one = dense_forward_one_avx512,
    .dense_input_grad_one = dense_input_grad_one_avx512,
};
