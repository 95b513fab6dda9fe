/* layers.c: the CNN's layers (see pt_layers.h for the conventions): a naive direct 2x2 "same"
 * convolution kept as the reference, a hand-vectorised conv for one input channel (fused with
 * relu and max pooling for conv1), im2col + sgemm for conv2, max pooling with stored argmax,
 * inverted dropout, relu, dense via sgemm/sgemv, and softmax cross-entropy from logits. */
#include "pt_layers.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* ---------------------------------------------------------------------------------------------
 * Naive direct convolution: the definition, written as plainly as possible.
 */

void pt_conv2x2_forward_naive(float *out, const float *x, const float *kernel, const float *bias,
                              int B, int H, int W, int Cin, int Cout) {
    for (int b = 0; b < B; b++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                for (int co = 0; co < Cout; co++) {
                    float sum = bias ? bias[co] : 0.0f;
                    for (int a = 0; a < 2; a++)
                        for (int c = 0; c < 2; c++) {
                            if (i + a >= H || j + c >= W) continue; /* zero padding */
                            const float *px = x + (((size_t)b * H + i + a) * W + j + c) * Cin;
                            const float *pk = kernel + (size_t)(a * 2 + c) * Cin * Cout + co;
                            for (int ci = 0; ci < Cin; ci++) sum += px[ci] * pk[(size_t)ci * Cout];
                        }
                    out[(((size_t)b * H + i) * W + j) * Cout + co] = sum;
                }
}

void pt_conv2x2_backward_naive(float *dx, float *dkernel, float *dbias, const float *dout,
                               const float *x, const float *kernel,
                               int B, int H, int W, int Cin, int Cout) {
    if (dx) memset(dx, 0, (size_t)B * H * W * Cin * sizeof *dx);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                for (int co = 0; co < Cout; co++) {
                    float g = dout[(((size_t)b * H + i) * W + j) * Cout + co];
                    if (dbias) dbias[co] += g;
                    for (int a = 0; a < 2; a++)
                        for (int c = 0; c < 2; c++) {
                            if (i + a >= H || j + c >= W) continue;
                            size_t px = (((size_t)b * H + i + a) * W + j + c) * Cin;
                            size_t pk = (size_t)(a * 2 + c) * Cin * Cout + co;
                            for (int ci = 0; ci < Cin; ci++) {
                                if (dkernel) dkernel[pk + (size_t)ci * Cout] += x[px + ci] * g;
                                if (dx) dx[px + ci] += kernel[pk + (size_t)ci * Cout] * g;
                            }
                        }
                }
}

/* ---------------------------------------------------------------------------------------------
 * One input channel: each output pixel is 4 scalar taps times 4 kernel rows of Cout values; the
 * inner loops run over Cout with restrict pointers so GCC vectorises them.
 */

/* Pixel (i, j) of one (H,W) image, zero outside. */
static inline float pixel_or_zero(const float *img, int H, int W, int i, int j) {
    return (i < H && j < W) ? img[(size_t)i * W + j] : 0.0f;
}

void pt_conv2x2_c1_forward(float *restrict out, const float *restrict x,
                           const float *restrict kernel, const float *restrict bias,
                           int B, int H, int W, int Cout) {
    const float *k0 = kernel, *k1 = kernel + Cout, *k2 = kernel + 2 * Cout, *k3 = kernel + 3 * Cout;
    for (int b = 0; b < B; b++) {
        const float *img = x + (size_t)b * H * W;
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                float x00 = pixel_or_zero(img, H, W, i, j), x01 = pixel_or_zero(img, H, W, i, j + 1);
                float x10 = pixel_or_zero(img, H, W, i + 1, j);
                float x11 = pixel_or_zero(img, H, W, i + 1, j + 1);
                float *restrict o = out + (((size_t)b * H + i) * W + j) * Cout;
                for (int co = 0; co < Cout; co++)
                    o[co] = bias[co] + x00 * k0[co] + x01 * k1[co] + x10 * k2[co] + x11 * k3[co];
            }
    }
}

void pt_conv2x2_c1_backward(float *restrict dx, float *restrict dkernel, float *restrict dbias,
                            const float *restrict dout, const float *restrict x,
                            const float *restrict kernel, int B, int H, int W, int Cout) {
    for (int b = 0; b < B; b++) {
        const float *img = x + (size_t)b * H * W;
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                const float *restrict g = dout + (((size_t)b * H + i) * W + j) * Cout;
                float taps[4] = {pixel_or_zero(img, H, W, i, j), pixel_or_zero(img, H, W, i, j + 1),
                                 pixel_or_zero(img, H, W, i + 1, j),
                                 pixel_or_zero(img, H, W, i + 1, j + 1)};
                if (dbias)
                    for (int co = 0; co < Cout; co++) dbias[co] += g[co];
                if (dkernel)
                    for (int t = 0; t < 4; t++)
                        for (int co = 0; co < Cout; co++) dkernel[t * Cout + co] += taps[t] * g[co];
            }
    }
    if (dx) {
        /* Gather form: pixel (y, x) received tap (a, c) from output (y-a, x-c). */
        for (int b = 0; b < B; b++)
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    float sum = 0.0f;
                    for (int a = 0; a < 2; a++)
                        for (int c = 0; c < 2; c++) {
                            int i = y - a, j = xx - c;
                            if (i < 0 || j < 0) continue;
                            const float *g = dout + (((size_t)b * H + i) * W + j) * Cout;
                            const float *k = kernel + (a * 2 + c) * Cout;
                            for (int co = 0; co < Cout; co++) sum += g[co] * k[co];
                        }
                    dx[((size_t)b * H + y) * W + xx] = sum;
                }
    }
}

/* Fused conv1 + relu + maxpool for one image. Each pooled unit reads a 3x3 input patch; the four
 * pre-activations of its window are computed per channel and only the winner is kept. */
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

void pt_conv2x2_c1_relu_pool_forward(float *pooled, uint8_t *argmax, const float *x,
                                     const float *kernel, const float *bias,
                                     int B, int H, int W, int Cout) {
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

/* The same for the model's 64 channels, one window at a time: a separate, non-inlined function
 * over a constant 64 channels with the nine window pixels as scalars, which GCC vectorises with
 * full-width vectors (inlined into the window loops, or with a variable channel count, it falls
 * back to narrow vectors and spills). Accumulates into dk (4,64) and db (64). */
__attribute__((noinline)) static void conv_c1_pool_grad_window64(
    float *restrict dk, float *restrict db, const float *restrict g, const uint8_t *restrict am,
    float p00, float p01, float p02, float p10, float p11, float p12, float p20, float p21,
    float p22) {
    for (int co = 0; co < 64; co++) {
        float gv = g[co];
        int q = am[co];
        float g0 = q == 0 ? gv : 0.0f, g1 = q == 1 ? gv : 0.0f;
        float g2 = q == 2 ? gv : 0.0f, g3 = q == 3 ? gv : 0.0f;
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

void pt_conv2x2_c1_relu_pool_backward(float *dkernel, float *dbias, const float *dpooled,
                                      const uint8_t *argmax, const float *x,
                                      int B, int H, int W, int Cout) {
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
 * im2col + GEMM.
 */

void pt_im2col_2x2(float *restrict col, const float *restrict x, int B, int H, int W, int Cin) {
    size_t row_len = 4 * (size_t)Cin;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                float *row = col + (((size_t)b * H + i) * W + j) * row_len;
                for (int a = 0; a < 2; a++)
                    for (int c = 0; c < 2; c++) {
                        float *restrict dst = row + (size_t)(a * 2 + c) * Cin;
                        if (i + a < H && j + c < W) {
                            /* an inline loop: memcpy's call overhead dominates 256-byte copies */
                            const float *restrict src = x + (((size_t)b * H + i + a) * W + j + c) * Cin;
                            for (int ci = 0; ci < Cin; ci++) dst[ci] = src[ci];
                        } else {
                            for (int ci = 0; ci < Cin; ci++) dst[ci] = 0.0f;
                        }
                    }
            }
}

void pt_col2im_2x2(float *restrict dx, const float *restrict dcol, int B, int H, int W, int Cin) {
    size_t row_len = 4 * (size_t)Cin;
    for (int b = 0; b < B; b++)
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++) {
                float *restrict d = dx + (((size_t)b * H + y) * W + xx) * Cin;
                /* Pixel (y, x) was tap (a, c) of output row (y-a, x-c); tap (0,0) always exists. */
                const float *restrict t0 = dcol + (((size_t)b * H + y) * W + xx) * row_len;
                for (int ci = 0; ci < Cin; ci++) d[ci] = t0[ci];
                if (xx >= 1) {
                    const float *restrict t1 = dcol + (((size_t)b * H + y) * W + xx - 1) * row_len + Cin;
                    for (int ci = 0; ci < Cin; ci++) d[ci] += t1[ci];
                }
                if (y >= 1) {
                    const float *restrict t2 = dcol + (((size_t)b * H + y - 1) * W + xx) * row_len + 2 * Cin;
                    for (int ci = 0; ci < Cin; ci++) d[ci] += t2[ci];
                }
                if (y >= 1 && xx >= 1) {
                    const float *restrict t3 = dcol + (((size_t)b * H + y - 1) * W + xx - 1) * row_len + 3 * Cin;
                    for (int ci = 0; ci < Cin; ci++) d[ci] += t3[ci];
                }
            }
}

void pt_conv2x2_gemm_forward(float *out, const float *col, const float *kernel, const float *bias,
                             int B, int H, int W, int Cin, int Cout) {
    int M = B * H * W, K = 4 * Cin;
    for (int r = 0; r < M; r++) {
        float *restrict o = out + (size_t)r * Cout;
        for (int co = 0; co < Cout; co++) o[co] = bias[co];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, Cout, K, 1.0f, col, K, kernel, Cout,
                1.0f, out, Cout);
}

/* Direct conv2 forward for Cin = 64, Cout = 32 (the model's conv2), without im2col: each output
 * row of 14 pixels is two blocks of 7; a block keeps its 7 x 32 sums in 14 AVX-512 registers, and
 * for each of the 4 taps and 64 input channels broadcasts one input value per pixel against the
 * two 16-wide halves of that kernel row (read from L1). Taps that fall outside the image read a
 * zero row. Without AVX-512 it is the naive convolution (callers check _available first). */
#if defined(__AVX512F__)
#define DIRECT_BLOCK 7
static void conv2_direct_image(float *restrict out, const float *restrict x,
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
#endif

int pt_conv2x2_c64_direct_available(void) {
#if defined(__AVX512F__)
    return 1;
#else
    return 0;
#endif
}

void pt_conv2x2_c64_direct_forward(float *out, const float *x, const float *kernel,
                                   const float *bias, int B, int H, int W) {
#if defined(__AVX512F__)
    for (int b = 0; b < B; b++)
        conv2_direct_image(out + (size_t)b * H * W * 32, x + (size_t)b * H * W * 64, kernel, bias, H, W);
#else
    pt_conv2x2_forward_naive(out, x, kernel, bias, B, H, W, 64, 32); /* correct, slow */
#endif
}

void pt_conv2x2_c64_transpose_kernel(float *kernel_t, const float *kernel) {
    for (int t = 0; t < 4; t++)
        for (int ci = 0; ci < 64; ci++)
            for (int co = 0; co < 32; co++) kernel_t[(t * 32 + co) * 64 + ci] = kernel[(t * 64 + ci) * 32 + co];
}

void pt_conv2x2_c64_direct_backward_t(float *dx, float *dkernel, float *dbias, const float *dout,
                                      const float *x, const float *kernel_t,
                                      float dx_keep_scale, int B, int H, int W) {
    size_t n_in = (size_t)H * W * 64, n_out = (size_t)H * W * 32;
    if (dbias)
        for (size_t r = 0; r < (size_t)B * H * W; r++) {
            const float *restrict g = dout + r * 32;
            for (int co = 0; co < 32; co++) dbias[co] += g[co];
        }
#if defined(__AVX512F__)
    if (dkernel)
        for (int b = 0; b < B; b++) conv2_direct_dk_image(dkernel, dout + b * n_out, x + b * n_in, H, W);
    if (dx)
        for (int b = 0; b < B; b++)
            conv2_direct_dx_image(dx + b * n_in, dout + b * n_out, kernel_t, x + b * n_in, dx_keep_scale, H, W);
#else
    /* correct, slow: the naive reference (its dbias is already done above) */
    float kernel[4 * 64 * 32];
    for (int t = 0; t < 4; t++)
        for (int ci = 0; ci < 64; ci++)
            for (int co = 0; co < 32; co++) kernel[(t * 64 + ci) * 32 + co] = kernel_t[(t * 32 + co) * 64 + ci];
    pt_conv2x2_backward_naive(dx, dkernel, NULL, dout, x, kernel, B, H, W, 64, 32);
    if (dx && dx_keep_scale > 0.0f)
        for (size_t q = 0; q < (size_t)B * n_in; q++) dx[q] = x[q] > 0.0f ? dx[q] * dx_keep_scale : 0.0f;
#endif
}

void pt_conv2x2_c64_direct_backward(float *dx, float *dkernel, float *dbias, const float *dout,
                                    const float *x, const float *kernel, float dx_keep_scale,
                                    int B, int H, int W) {
    float kernel_t[4 * 32 * 64] __attribute__((aligned(64))); /* (4,32,64) */
    pt_conv2x2_c64_transpose_kernel(kernel_t, kernel);
    pt_conv2x2_c64_direct_backward_t(dx, dkernel, dbias, dout, x, kernel_t, dx_keep_scale, B, H, W);
}

void pt_conv2x2_gemm_backward(float *dx, float *dcol, float *dkernel, float *dbias,
                              const float *dout, const float *col, const float *kernel,
                              int B, int H, int W, int Cin, int Cout) {
    int M = B * H * W, K = 4 * Cin;
    if (dbias)
        for (int r = 0; r < M; r++) {
            const float *restrict g = dout + (size_t)r * Cout;
            for (int co = 0; co < Cout; co++) dbias[co] += g[co];
        }
    if (dkernel)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, Cout, M, 1.0f, col, K, dout, Cout,
                    1.0f, dkernel, Cout);
    if (dx) {
        assert(dcol);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, K, Cout, 1.0f, dout, Cout, kernel,
                    Cout, 0.0f, dcol, K);
        pt_col2im_2x2(dx, dcol, B, H, W, Cin);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Max pooling 2x2 stride 2.
 */

static inline void maxpool2(float *restrict out, uint8_t *restrict argmax, const float *restrict x,
                            int B, int H, int W, int C, int relu) {
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
                    if (relu) {
                        o[c] = best > 0.0f ? best : 0.0f;
                        am[c] = (uint8_t)(best > 0.0f ? idx : PT_POOL_DEAD);
                    } else {
                        o[c] = best;
                        am[c] = (uint8_t)idx;
                    }
                }
            }
}

void pt_maxpool2_forward(float *out, uint8_t *argmax, const float *x, int B, int H, int W, int C) {
    assert(H % 2 == 0 && W % 2 == 0);
    maxpool2(out, argmax, x, B, H, W, C, 0);
}

void pt_relu_maxpool2_forward(float *out, uint8_t *argmax, const float *x,
                              int B, int H, int W, int C) {
    assert(H % 2 == 0 && W % 2 == 0);
    maxpool2(out, argmax, x, B, H, W, C, 1);
}

void pt_maxpool2_backward(float *restrict dx, const float *restrict dout,
                          const uint8_t *restrict argmax, int B, int H, int W, int C) {
    int PH = H / 2, PW = W / 2;
    for (int b = 0; b < B; b++)
        for (int pi = 0; pi < PH; pi++)
            for (int pj = 0; pj < PW; pj++) {
                float *restrict r0 = dx + (((size_t)b * H + 2 * pi) * W + 2 * pj) * C;
                float *restrict r1 = r0 + (size_t)W * C;
                size_t o = (((size_t)b * PH + pi) * PW + pj) * C;
                const float *restrict g = dout + o;
                const uint8_t *restrict am = argmax + o;
                for (int c = 0; c < C; c++) {
                    r0[c] = am[c] == 0 ? g[c] : 0.0f;
                    r0[C + c] = am[c] == 1 ? g[c] : 0.0f;
                    r1[c] = am[c] == 2 ? g[c] : 0.0f;
                    r1[C + c] = am[c] == 3 ? g[c] : 0.0f;
                }
            }
}

/* ---------------------------------------------------------------------------------------------
 * Dropout, relu.
 */

/* The masks are the hottest random draws (14,368 per training image): this is pt_rng_next and
 * pt_rng_uniform of rng.c (xoshiro256**, top 24 bits) inlined on the same state, so the stream is
 * exactly the one pt_rng_uniform would give (test_layers checks it draw by draw). */
static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* keep iff u = (r >> 40) * 2^-24 < keep_prob, i.e. iff the integer r >> 40 is below this (the
 * float product keep_prob * 2^24 is exact): the draw of pt_rng_uniform compared as an integer. */
static uint64_t keep_threshold(float keep_prob) { return (uint64_t)ceilf(keep_prob * 16777216.0f); }

void pt_dropout_mask(float *restrict mask, size_t n, float rate, PtRng *rng) {
    float keep_prob = 1.0f - rate;
    float scale = 1.0f / keep_prob;
    /* keep_threshold's integer compare, then a select without a branch (a random branch
     * mispredicts on every other draw): scale's bits or +0.0f's. */
    const uint64_t threshold = keep_threshold(keep_prob);
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

void pt_dropout_mask_lanes(float *const *masks, int lanes, size_t n, float rate, PtRng *rngs) {
    assert(lanes >= 1 && lanes <= PT_MASK_LANES);
    if (lanes == 1) { /* batch 1: one scalar generator beats 8 SIMD lanes of which 7 are wasted */
        pt_dropout_mask(masks[0], n, rate, &rngs[0]);
        return;
    }
    float keep_prob = 1.0f - rate;
    float scale = 1.0f / keep_prob;
#if defined(__AVX512F__)
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
        const __m512i threshold = _mm512_set1_epi64((long long)keep_threshold(keep_prob));
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
#endif
    /* Structure of arrays: lane l is generator l; the inner loop over lanes is one SIMD vector.
     * Unused lanes run a copy of lane 0 and are not stored. */
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
                float u = (float)(int32_t)(result >> 40) * (1.0f / 16777216.0f);
                tile[k][l] = u < keep_prob ? scale : 0.0f;
            }
        for (int l = 0; l < lanes; l++)
            for (size_t k = 0; k < len; k++) masks[l][base + k] = tile[k][l];
    }
    for (int l = 0; l < lanes; l++) {
        rngs[l].s[0] = s0[l]; rngs[l].s[1] = s1[l]; rngs[l].s[2] = s2[l]; rngs[l].s[3] = s3[l];
    }
}

void pt_dropout_apply(float *restrict out, const float *restrict x, const float *restrict mask,
                      size_t n) {
    for (size_t k = 0; k < n; k++) out[k] = x[k] * mask[k];
}

void pt_relu_forward(float *out, const float *x, size_t n) {
    for (size_t k = 0; k < n; k++) out[k] = x[k] > 0.0f ? x[k] : 0.0f;
}

void pt_relu_backward(float *dx, const float *dout, const float *out, size_t n) {
    for (size_t k = 0; k < n; k++) dx[k] = out[k] > 0.0f ? dout[k] : 0.0f;
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
