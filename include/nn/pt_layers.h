/* pt_layers.h: the CNN's layers that are the same on every CPU, as forward/backward pairs of free
 * functions over explicit, caller-owned buffers (outputs first, then inputs, then dimensions),
 * channels-last (NHWC): the naive references of the convolution and pooling (for the tests), the
 * scalar dropout mask, relu, dense through the CBLAS, softmax cross-entropy. The hot loops that
 * differ per CPU family are the kernel sets of pt_kernels.h, with the same conventions.
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

/* ---- 2x2 "same" convolution: naive direct reference (any shape) ---- */

/* out (B,H,W,Cout) = conv(x (B,H,W,Cin), kernel (2,2,Cin,Cout)) + bias (Cout); no activation. */
void pt_conv2x2_forward_naive(float *out, const float *x, const float *kernel, const float *bias,
                              int B, int H, int W, int Cin, int Cout);
/* dx (B,H,W,Cin) =; dkernel (2,2,Cin,Cout) +=; dbias (Cout) +=; from dout (B,H,W,Cout). */
void pt_conv2x2_backward_naive(float *dx, float *dkernel, float *dbias, const float *dout,
                               const float *x, const float *kernel,
                               int B, int H, int W, int Cin, int Cout);

/* ---- max pooling 2x2 stride 2: reference ---- */

/* out (B,H/2,W/2,C) = maxpool(x (B,H,W,C)); argmax as described above (no relu). The fast
 * relu + pooling and its backward are kernels (pt_kernels.h). */
void pt_maxpool2_forward(float *out, uint8_t *argmax, const float *x, int B, int H, int W, int C);

/* ---- inverted dropout ---- */

/* Draws n mask values in order: keep = pt_rng_uniform(rng) < 1-rate; mask = keep/(1-rate), or 0. */
void pt_dropout_mask(float *mask, size_t n, float rate, PtRng *rng);
/* Several generators at once, and applying a mask: kernels (pt_kernels.h). */

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
