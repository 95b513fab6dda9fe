/* pt_layers.h: the CNN's layers as forward/backward pairs of free functions over explicit,
 * caller-owned buffers (outputs first, then inputs, then dimensions), channels-last (NHWC).
 *
 * Conventions:
 * - Backward functions ACCUMULATE (+=) into weight and bias gradients, so one memset clears them;
 *   input gradients (dx) are OVERWRITTEN (they are per-step scratch buffers).
 * - Any gradient output may be NULL: it is then not computed (frozen layer, or lowest layer).
 * - Conv is Keras's 2x2 "same" convolution, stride 1: zero padding 0 before and 1 after,
 *   out[i][j][co] = bias[co] + sum_{a,b in {0,1}} x[i+a][j+b][ci] * K[a][b][ci][co]
 *   (cross-correlation, x zero outside the image). Kernel layout (kh, kw, in, out).
 * - Max pooling is 2x2, stride 2, "valid". Its argmax is stored per output unit as a uint8:
 *   2*di + dj for the winner at (2i+di, 2j+dj), first maximum in that order on ties;
 *   the fused relu versions store PT_POOL_DEAD when the pooled value is <= 0 (relu cut it:
 *   no gradient flows).
 * - No function allocates memory.
 */
#ifndef PT_LAYERS_H
#define PT_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "pt_rng.h"

#define PT_POOL_DEAD 255

/* ---- 2x2 "same" convolution: naive direct reference (any shape), for tests ---- */

/* out (B,H,W,Cout) = conv(x (B,H,W,Cin), kernel (2,2,Cin,Cout)) + bias (Cout); no activation. */
void pt_conv2x2_forward_naive(float *out, const float *x, const float *kernel, const float *bias,
                              int B, int H, int W, int Cin, int Cout);
/* dx (B,H,W,Cin) =; dkernel (2,2,Cin,Cout) +=; dbias (Cout) +=; from dout (B,H,W,Cout). */
void pt_conv2x2_backward_naive(float *dx, float *dkernel, float *dbias, const float *dout,
                               const float *x, const float *kernel,
                               int B, int H, int W, int Cin, int Cout);

/* ---- conv with one input channel (conv1): hand-written loops vectorised over Cout ---- */

/* out (B,H,W,Cout) = conv(x (B,H,W,1)) + bias; no activation. */
void pt_conv2x2_c1_forward(float *out, const float *x, const float *kernel, const float *bias,
                           int B, int H, int W, int Cout);
/* dx (B,H,W,1) =; dkernel (2,2,1,Cout) +=; dbias (Cout) +=. */
void pt_conv2x2_c1_backward(float *dx, float *dkernel, float *dbias, const float *dout,
                            const float *x, const float *kernel, int B, int H, int W, int Cout);

/* conv1 fused with relu and 2x2 max pooling (H, W even): the full-resolution activation is never
 * stored. pooled (B,H/2,W/2,Cout) = maxpool(relu(conv(x) + bias)); argmax (B,H/2,W/2,Cout). */
void pt_conv2x2_c1_relu_pool_forward(float *pooled, uint8_t *argmax, const float *x,
                                     const float *kernel, const float *bias,
                                     int B, int H, int W, int Cout);
/* Weight gradients of the fused layer from dpooled (B,H/2,W/2,Cout): dkernel +=, dbias +=. */
void pt_conv2x2_c1_relu_pool_backward(float *dkernel, float *dbias, const float *dpooled,
                                      const uint8_t *argmax, const float *x,
                                      int B, int H, int W, int Cout);

/* ---- conv as im2col + GEMM (conv2) ---- */

/* col (B*H*W, 4*Cin): row (b,i,j) holds x[b][i+a][j+c][ci] at column (a*2+c)*Cin+ci, zero
 * outside; so that out = col @ kernel viewed as (4*Cin, Cout). */
void pt_im2col_2x2(float *col, const float *x, int B, int H, int W, int Cin);
/* dx (B,H,W,Cin) = the sum of dcol (B*H*W, 4*Cin) back onto the pixels each column came from. */
void pt_col2im_2x2(float *dx, const float *dcol, int B, int H, int W, int Cin);
/* out (B,H,W,Cout) = col @ kernel + bias, with col already filled by pt_im2col_2x2. */
void pt_conv2x2_gemm_forward(float *out, const float *col, const float *kernel, const float *bias,
                             int B, int H, int W, int Cin, int Cout);
/* dkernel += col^T dout; dbias += column sums of dout; if dx: dcol = dout kernel^T, then
 * dx = col2im(dcol) (dcol (B*H*W, 4*Cin) is scratch, needed only when dx is not NULL). */
void pt_conv2x2_gemm_backward(float *dx, float *dcol, float *dkernel, float *dbias,
                              const float *dout, const float *col, const float *kernel,
                              int B, int H, int W, int Cin, int Cout);

/* Direct conv for Cin = 64, Cout = 32 (conv2) without im2col: out (B,H,W,32) = conv(x (B,H,W,64))
 * + bias, AVX-512 register-blocked. Available (fast) only when built for AVX-512; otherwise it
 * runs the naive reference, and pt_conv2x2_c64_direct_available() returns 0. */
int pt_conv2x2_c64_direct_available(void);
void pt_conv2x2_c64_direct_forward(float *out, const float *x, const float *kernel,
                                   const float *bias, int B, int H, int W);
/* Its backward, same conditions: dkernel (4,64,32) += the weight gradient; dbias (32) += the
 * column sums of dout (B,H,W,32); dx (B,H,W,64) = the input gradient. If dx_keep_scale > 0, dx
 * is multiplied elementwise by (x > 0 ? dx_keep_scale : 0): when x = dropout(relu(z)) (inverted
 * dropout, kept units scaled by dx_keep_scale = 1/(1-rate)), that is exactly the gradient with
 * respect to z through both, with no stored mask (a unit is > 0 iff it was live and kept).
 * Any of dx, dkernel, dbias may be NULL. */
void pt_conv2x2_c64_direct_backward(float *dx, float *dkernel, float *dbias, const float *dout,
                                    const float *x, const float *kernel, float dx_keep_scale,
                                    int B, int H, int W);
/* The same with the kernel already transposed per tap by pt_conv2x2_c64_transpose_kernel:
 * kernel_t (4,32,64)[t][co][ci] = kernel (4,64,32)[t][ci][co] (for callers that run it image by
 * image and transpose once per step). */
void pt_conv2x2_c64_transpose_kernel(float *kernel_t, const float *kernel);
void pt_conv2x2_c64_direct_backward_t(float *dx, float *dkernel, float *dbias, const float *dout,
                                      const float *x, const float *kernel_t,
                                      float dx_keep_scale, int B, int H, int W);

/* ---- max pooling 2x2 stride 2 ---- */

/* out (B,H/2,W/2,C) = maxpool(x (B,H,W,C)); argmax as described above. */
void pt_maxpool2_forward(float *out, uint8_t *argmax, const float *x, int B, int H, int W, int C);
/* Same, of relu(x): out = max(0, maxpool(x)); argmax = PT_POOL_DEAD where out is 0. */
void pt_relu_maxpool2_forward(float *out, uint8_t *argmax, const float *x,
                              int B, int H, int W, int C);
/* dx (B,H,W,C) = dout routed to each window's argmax, 0 elsewhere (and 0 for dead windows).
 * Serves both pt_maxpool2_forward and pt_relu_maxpool2_forward. */
void pt_maxpool2_backward(float *dx, const float *dout, const uint8_t *argmax,
                          int B, int H, int W, int C);

/* ---- inverted dropout ---- */

/* Draws n mask values in order: keep = pt_rng_uniform(rng) < 1-rate; mask = keep/(1-rate), or 0. */
void pt_dropout_mask(float *mask, size_t n, float rate, PtRng *rng);
/* The same draws for up to PT_MASK_LANES independent generators at once (one SIMD lane each):
 * masks[l] gets exactly what pt_dropout_mask(masks[l], n, rate, &rngs[l]) would give, and
 * rngs[l] advances the same way. */
#define PT_MASK_LANES 8
void pt_dropout_mask_lanes(float *const *masks, int lanes, size_t n, float rate, PtRng *rngs);
/* out = x * mask, elementwise (n values); also serves as the backward: dx = dout * mask. */
void pt_dropout_apply(float *out, const float *x, const float *mask, size_t n);

/* ---- relu ---- */

void pt_relu_forward(float *out, const float *x, size_t n);
/* dx = dout where out > 0, else 0 (out is the relu's output). dx may alias dout. */
void pt_relu_backward(float *dx, const float *dout, const float *out, size_t n);

/* ---- dense: y (B,out) = x (B,in) W (in,out) + b (out) ---- */

void pt_dense_forward(float *y, const float *x, const float *weight, const float *bias,
                      int B, int in, int out);
/* dweight += x^T dy; dbias += sum over rows of dy; dx = dy W^T. */
void pt_dense_backward(float *dx, float *dweight, float *dbias, const float *dy, const float *x,
                       const float *weight, int B, int in, int out);

/* ---- softmax cross-entropy from logits ---- */

/* Per-sample loss -log softmax(logits)[label], computed stably (max subtracted) in double.
 * Returns the SUM over the B samples; if correct: the count of argmax(logits) == label (first
 * maximum wins); if dlogits (B,C): dlogits = (softmax - onehot) / denom. */
double pt_softmax_ce(float *dlogits, int *correct, const float *logits, const uint8_t *labels,
                     int B, int C, int denom);

#endif
