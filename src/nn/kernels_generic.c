/* kernels_generic.c: the generic kernel set (see pt_kernels.h): conv2's kernels in portable C11
 * for CPUs with neither AVX-512 nor AVX2 (x86-64 baseline = SSE2, aarch64 NEON, anything else),
 * plus the plain loops of kernels_loops.c compiled for the baseline. No intrinsics, no vector
 * extensions: GCC's vectoriser does the SIMD. Compiled with the project's flags only (any -m flag
 * of PRETEXT_NATIVE only makes it faster).
 *
 * Blocking: the same register tiles as kernels_avx2.c (see there), sized for the register file:
 * GEN_P rows x GEN_C columns of accumulators in a small local array, fully unrolled
 * (#pragma GCC unroll) so that GCC's basic-block (SLP) vectoriser keeps them in vector registers
 * and turns each row update into GEN_C/vector-width multiply-adds against the shared row:
 *   SSE2 (16 xmm x 4 floats, no FMA):     4 x 8  = 8 accumulators + 2 shared + broadcast + temps
 *   AVX or aarch64 (16 ymm / 32 q regs):  6 x 16 = 12 (AVX) or 24 (NEON) accumulators
 * Forward: rows = pixels of the flat pixel list, columns = output channels; dx: rows = pixels,
 * columns = input channels. dk is different (see there): rank-4 updates of the dk slice in L1.
 *
 * One GCC-specific detail: GCC 12's *loop* vectoriser otherwise "vectorises" the reduction loop
 * (over input channels / pixels) of a tile with transposes and an in-order reduction, which is
 * several times slower than the straightforward register tile; the tile functions therefore
 * switch the loop vectoriser off for themselves (optimize("no-tree-loop-vectorize"); the SLP
 * vectoriser stays on). Other compilers ignore this. The mask function keeps the loop vectoriser.
 */
#include <string.h>

#include "kernels_internal.h"

#if defined(__GNUC__) && !defined(__clang__)
#define TILE_FN static __attribute__((noinline, optimize("no-tree-loop-vectorize")))
#define UNROLL _Pragma("GCC unroll 16")
#else
#define TILE_FN static
#define UNROLL
#endif

#ifndef GEN_P
#if defined(__AVX__) || defined(__aarch64__) || defined(__ARM_NEON)
#define GEN_P 6
#define GEN_C 16
#else
#define GEN_P 4
#define GEN_C 8
#endif
#endif


static const float zeros64[64];

/* ------------------------------------------------------------------------------------------
 * Forward: tile of GEN_P pixels x GEN_C output channels; src[t*GEN_P+p] = input row of pixel p
 * for tap t (or the zero row); kc = kernel + c0, bc = bias + c0, out = out row of pixel 0 + c0.
 * The last, partial tile of the pixel list is computed in full (missing pixels read the zero
 * row) into a local buffer, of which only the valid pixels are copied.
 */
#define FWD_TILE_BODY(NP)                                                                          \
    float acc[GEN_P][GEN_C];                                                                       \
    UNROLL for (int p = 0; p < NP; p++) UNROLL for (int c = 0; c < GEN_C; c++) acc[p][c] = bc[c]; \
    for (int t = 0; t < 4; t++) {                                                                  \
        const float *s[GEN_P];                                                                     \
        UNROLL for (int p = 0; p < NP; p++) s[p] = src[t * GEN_P + p];                             \
        const float *restrict k = kc + t * 64 * 32;                                                \
        for (int ci = 0; ci < 64; ci++) {                                                          \
            UNROLL for (int p = 0; p < NP; p++) {                                                  \
                const float v = s[p][ci];                                                          \
                UNROLL for (int c = 0; c < GEN_C; c++) acc[p][c] += v * k[ci * 32 + c];            \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    UNROLL for (int p = 0; p < NP; p++) UNROLL for (int c = 0; c < GEN_C; c++) out[p * 32 + c] = acc[p][c];

TILE_FN void fwd_tile(float *restrict out, const float *const *src, const float *restrict kc,
                      const float *restrict bc) {
    FWD_TILE_BODY(GEN_P)
}

static void conv2_forward_image(float *restrict out, const float *restrict x,
                                const float *restrict kernel, const float *restrict bias, int H, int W) {
    const int npix = H * W;
    for (int c0 = 0; c0 < 32; c0 += GEN_C) { /* column block outer: its kernel slice stays in L1 */
        int i0 = 0, j0 = 0;
        for (int q0 = 0; q0 < npix; q0 += GEN_P) {
            const int P = npix - q0 < GEN_P ? npix - q0 : GEN_P;
            const float *src[4 * GEN_P];
            int i = i0, j = j0;
            for (int p = 0; p < GEN_P; p++) {
                for (int t = 0; t < 4; t++) {
                    int ii = i + (t >> 1), jj = j + (t & 1);
                    src[t * GEN_P + p] = (p < P && ii < H && jj < W) ? x + ((size_t)ii * W + jj) * 64 : zeros64;
                }
                if (++j == W) { j = 0; i++; }
            }
            i0 = i;
            j0 = j;
            float *o = out + (size_t)q0 * 32 + c0;
            if (P == GEN_P) {
                fwd_tile(o, src, kernel + c0, bias + c0);
            } else {
                float buf[GEN_P * 32];
                fwd_tile(buf, src, kernel + c0, bias + c0);
                for (int p = 0; p < P; p++) memcpy(o + p * 32, buf + p * 32, GEN_C * sizeof(float));
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * Input gradient: tile of GEN_P pixels x GEN_C input channels; src[t*GEN_P+p] = dout row of
 * output pixel (y-a, x-b) for tap t = (a,b) (or the zero row); kc = kernel_t + c0.
 */
#define DX_TILE_BODY(NP)                                                                           \
    float acc[GEN_P][GEN_C];                                                                       \
    UNROLL for (int p = 0; p < NP; p++) UNROLL for (int c = 0; c < GEN_C; c++) acc[p][c] = 0.0f;  \
    for (int t = 0; t < 4; t++) {                                                                  \
        const float *s[GEN_P];                                                                     \
        UNROLL for (int p = 0; p < NP; p++) s[p] = src[t * GEN_P + p];                             \
        const float *restrict k = kc + t * 32 * 64;                                                \
        for (int co = 0; co < 32; co++) {                                                          \
            UNROLL for (int p = 0; p < NP; p++) {                                                  \
                const float v = s[p][co];                                                          \
                UNROLL for (int c = 0; c < GEN_C; c++) acc[p][c] += v * k[co * 64 + c];            \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    if (keep_scale > 0.0f) {                                                                       \
        UNROLL for (int p = 0; p < NP; p++) UNROLL for (int c = 0; c < GEN_C; c++)                 \
            acc[p][c] = xin[p * 64 + c] > 0.0f ? acc[p][c] * keep_scale : 0.0f;                    \
    }                                                                                              \
    UNROLL for (int p = 0; p < NP; p++) UNROLL for (int c = 0; c < GEN_C; c++) dx[p * 64 + c] = acc[p][c];

TILE_FN void dx_tile(float *restrict dx, const float *const *src, const float *restrict kc,
                     const float *restrict xin, float keep_scale) {
    DX_TILE_BODY(GEN_P)
}

static void conv2_dx_image(float *restrict dx, const float *restrict dout,
                           const float *restrict kernel_t, const float *restrict x, float keep_scale,
                           int H, int W) {
    const int npix = H * W;
    for (int c0 = 0; c0 < 64; c0 += GEN_C) {
        int i0 = 0, j0 = 0;
        for (int q0 = 0; q0 < npix; q0 += GEN_P) {
            const int P = npix - q0 < GEN_P ? npix - q0 : GEN_P;
            const float *src[4 * GEN_P];
            int i = i0, j = j0;
            for (int p = 0; p < GEN_P; p++) {
                for (int t = 0; t < 4; t++) {
                    int ii = i - (t >> 1), jj = j - (t & 1);
                    src[t * GEN_P + p] = (p < P && ii >= 0 && jj >= 0) ? dout + ((size_t)ii * W + jj) * 32 : zeros64;
                }
                if (++j == W) { j = 0; i++; }
            }
            i0 = i;
            j0 = j;
            size_t o = (size_t)q0 * 64 + c0;
            if (P == GEN_P) {
                dx_tile(dx + o, src, kernel_t + c0, x + o, keep_scale);
            } else { /* partial tile: full tile on local buffers, valid pixels copied */
                float buf[GEN_P * 64], xb[GEN_P * 64];
                for (int p = 0; p < GEN_P; p++)
                    for (int c = 0; c < GEN_C; c++) xb[p * 64 + c] = p < P ? x[o + p * 64 + c] : 0.0f;
                dx_tile(buf, src, kernel_t + c0, xb, keep_scale);
                for (int p = 0; p < P; p++) memcpy(dx + o + p * 64, buf + p * 64, GEN_C * sizeof(float));
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * Weight gradient: per tap, the (64,32) slice of dk is updated in memory (it stays in L1) by
 * rank-DK_NPX updates: DK_NPX output pixels at a time, dkt[ci][:] += sum_p x_p[ci] * g_p[:];
 * the loop over the 32 output channels is what GCC vectorises (loop vectoriser; 8 SSE vectors).
 * Measured on SSE2: 1.7x the register-tile form used for forward/dx (for a dk tile GCC's SLP
 * vectoriser left one row of accumulators scalar and spilled), and 1.4x rank-1 updates: 4
 * multiply-adds per load and store of dk. The last group of pixels is padded with zero rows.
 */
#ifndef DK_NPX
#define DK_NPX 4 /* pixels per update: 1, 2 or 4 */
#endif
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void dk_pixels(float *restrict dkt, const float *const *xs,
                                                const float *const *gs) {
    const float *restrict x0 = xs[0], *restrict g0 = gs[0];
#if DK_NPX >= 2
    const float *restrict x1 = xs[1], *restrict g1 = gs[1];
#endif
#if DK_NPX >= 4
    const float *restrict x2 = xs[2], *restrict g2 = gs[2];
    const float *restrict x3 = xs[3], *restrict g3 = gs[3];
#endif
    for (int ci = 0; ci < 64; ci++) {
        const float v0 = x0[ci];
#if DK_NPX >= 2
        const float v1 = x1[ci];
#endif
#if DK_NPX >= 4
        const float v2 = x2[ci], v3 = x3[ci];
#endif
        for (int c = 0; c < 32; c++) {
            float s = v0 * g0[c];
#if DK_NPX >= 2
            s += v1 * g1[c];
#endif
#if DK_NPX >= 4
            s += v2 * g2[c] + v3 * g3[c];
#endif
            dkt[ci * 32 + c] += s;
        }
    }
}
static void conv2_dk_image(float *restrict dk, const float *restrict dout, const float *restrict x,
                           int H, int W) {
    for (int t = 0; t < 4; t++) {
        const int a = t >> 1, b = t & 1;
        float *dkt = dk + (size_t)t * 64 * 32;
        const float *xs[DK_NPX], *gs[DK_NPX];
        int n = 0;
        for (int i = 0; i + a < H; i++)
            for (int j = 0; j + b < W; j++) {
                xs[n] = x + ((size_t)(i + a) * W + j + b) * 64;
                gs[n] = dout + ((size_t)i * W + j) * 32;
                if (++n == DK_NPX) { dk_pixels(dkt, xs, gs); n = 0; }
            }
        for (int p = n; p < DK_NPX && n > 0; p++) { xs[p] = zeros64; gs[p] = zeros64; } /* pad */
        if (n > 0) dk_pixels(dkt, xs, gs);
    }
}

/* ------------------------------------------------------------------------------------------
 * The set's table: these kernels over a batch, and the plain loops compiled for the baseline. */

static void conv2_forward_generic_direct(float *out, const float *x, const float *kernel,
                                         const float *bias, int B, int H, int W) {
    for (int b = 0; b < B; b++)
        conv2_forward_image(out + (size_t)b * H * W * 32, x + (size_t)b * H * W * 64, kernel, bias, H, W);
}

static void conv2_backward_generic_direct(float *dx, float *dkernel, float *dbias, const float *dout,
                                          const float *x, const float *packed, float dx_keep_scale,
                                          int B, int H, int W) {
    size_t n_in = (size_t)H * W * 64, n_out = (size_t)H * W * 32;
    if (dbias) conv2_bias_grad_generic(dbias, dout, (size_t)B * H * W);
    if (dkernel)
        for (int b = 0; b < B; b++) conv2_dk_image(dkernel, dout + b * n_out, x + b * n_in, H, W);
    if (dx)
        for (int b = 0; b < B; b++)
            conv2_dx_image(dx + b * n_in, dout + b * n_out, packed, x + b * n_in, dx_keep_scale, H, W);
}

const PtKernels pt_kernels_generic = {
    .name = "generic",
    .conv1_relu_pool_forward = conv1_relu_pool_forward_generic,
    .conv1_relu_pool_backward = conv1_relu_pool_backward_generic,
    .conv2_forward = conv2_forward_generic_direct,
    .conv2_pack_backward = conv2_pack_backward_generic,
    .conv2_backward = conv2_backward_generic_direct,
    .relu_maxpool_forward = relu_maxpool_forward_generic,
    .maxpool_backward = maxpool_backward_generic,
    .dropout_apply = dropout_apply_generic,
    .dropout_mask_lanes = dropout_mask_lanes_generic,
    .adam_update = adam_update_generic,
    .adam_update_sum = adam_update_sum_generic,
    .adam_update_outer = adam_update_outer_generic,
    .dense_forward_one = dense_forward_one_generic,
    .dense_input_grad_one = dense_input_grad_one_generic,
};
