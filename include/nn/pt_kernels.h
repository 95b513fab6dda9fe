/* pt_kernels.h: the engine's hot loops as one table per CPU family ("kernel set"), chosen once at
 * start. Every set is compiled into every x86-64 build, each for its own instruction set (per-file
 * flags), and the program takes the best one the CPU supports, so one binary runs everywhere and
 * is fast everywhere:
 *
 *   avx512   AVX-512 F/VL/BW/DQ + AVX2 + FMA: register-blocked direct conv2 kernels, 8-lane masks
 *   avx2     AVX2 + FMA: the same kernels blocked for 16 ymm registers
 *   generic  portable C11 (x86-64 baseline SSE2, or any other CPU): correct everywhere
 *
 * The plain loops (conv1 fused with relu and pooling, pooling, dropout, Adam) are one C source
 * compiled once per set, so they are vectorised for each set's width; results of those loops do
 * not depend on the set (no FMA contraction: ISO C mode). The explicit conv2 kernels use FMA in
 * the avx2 and avx512 sets, so results differ between sets in float rounding only.
 *
 * Conventions as in pt_layers.h: channels-last, backward functions accumulate (+=) into weight
 * and bias gradients and overwrite input gradients, any gradient output may be NULL. No function
 * allocates. Shapes: conv1 is 2x2 "same" with one input channel and Cout outputs, conv2 is 2x2
 * "same" with 64 inputs and 32 outputs (the model's), H and W free. */
#ifndef PT_KERNELS_H
#define PT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "pt_rng.h"
#include "pt_util.h"

typedef struct PtKernels {
    const char *name; /* "avx512", "avx2" or "generic" */

    /* conv1 + relu + 2x2 max pool, fused (H, W even): pooled (B,H/2,W/2,Cout) =
     * maxpool(relu(conv(x (B,H,W,1)) + bias)); argmax (B,H/2,W/2,Cout) as in pt_layers.h. */
    void (*conv1_relu_pool_forward)(float *pooled, uint8_t *argmax, const float *x,
                                    const float *kernel, const float *bias, int B, int H, int W,
                                    int Cout);
    /* Its weight gradients from dpooled (B,H/2,W/2,Cout): dkernel (4,Cout) +=, dbias (Cout) +=.
     * Cout <= 256 and a multiple of 16. */
    void (*conv1_relu_pool_backward)(float *dkernel, float *dbias, const float *dpooled,
                                     const uint8_t *argmax, const float *x, int B, int H, int W,
                                     int Cout);

    /* conv2: out (B,H,W,32) = conv(x (B,H,W,64), kernel (4,64,32)) + bias (32). */
    void (*conv2_forward)(float *out, const float *x, const float *kernel, const float *bias, int B,
                          int H, int W);
    /* Rearranges conv2's kernel (4,64,32) for conv2_backward (once per step): packed holds
     * PT_CONV2_PACKED floats. */
    void (*conv2_pack_backward)(float *packed, const float *kernel);
    /* conv2's backward from dout (B,H,W,32): dkernel (4,64,32) +=; dbias (32) +=; dx (B,H,W,64) =
     * the input gradient, multiplied elementwise by (x > 0 ? dx_keep_scale : 0) when
     * dx_keep_scale > 0 (x = dropout(relu(z)) with inverted dropout: exactly the gradient with
     * respect to z, no stored mask). packed is conv2_pack_backward's output. */
    void (*conv2_backward)(float *dx, float *dkernel, float *dbias, const float *dout,
                           const float *x, const float *packed, float dx_keep_scale, int B, int H,
                           int W);

    /* out (B,H/2,W/2,C) = max(0, maxpool(x (B,H,W,C))); argmax (PT_POOL_DEAD where out is 0). */
    void (*relu_maxpool_forward)(float *out, uint8_t *argmax, const float *x, int B, int H, int W,
                                 int C);
    /* dx (B,H,W,C) = dout (B,H/2,W/2,C) routed to each window's argmax, 0 elsewhere. */
    void (*maxpool_backward)(float *dx, const float *dout, const uint8_t *argmax, int B, int H,
                             int W, int C);

    /* out = x * mask (n values); also the backward dx = dout * mask. out may alias x. */
    void (*dropout_apply)(float *out, const float *x, const float *mask, size_t n);
    /* pt_dropout_mask for 1 <= lanes <= PT_MASK_LANES independent generators at once: masks[l]
     * and rngs[l] end exactly as pt_dropout_mask(masks[l], n, rate, &rngs[l]) leaves them. */
    void (*dropout_mask_lanes)(float *const *masks, int lanes, size_t n, float rate, PtRng *rngs);

    /* TensorFlow's Adam on n parameters: m += (g-m)(1-b1); v += (g*g-v)(1-b2);
     * w -= lr_t*m/(sqrt(v)+eps). */
    void (*adam_update)(float *w, float *m, float *v, const float *g, size_t n, float lr_t,
                        float one_minus_b1, float one_minus_b2, float eps);
    /* The same with g[k] = src[0][off+k] + src[1][off+k] + ... (added in that order, never
     * stored): the gradient buffers of the ranks sharing a node. */
    void (*adam_update_sum)(float *w, float *m, float *v, const float *const *src, int n_src,
                            size_t off, size_t n, float lr_t, float one_minus_b1,
                            float one_minus_b2, float eps);
    /* The same on a dense kernel w (in, out) whose gradient is one sample's outer product,
     * g[i][j] = x[i] * dy[j] + 0 (exactly the value sger adds to a zeroed gradient), computed on
     * the fly and never stored: bit for bit adam_update on that gradient, with 3 of its 7 memory
     * streams and the zeroing and sger passes gone. */
    void (*adam_update_outer)(float *w, float *m, float *v, const float *x, const float *dy,
                              int in, int out, float lr_t, float one_minus_b1, float one_minus_b2,
                              float eps);

    /* The dense layer (kernel (in, out), pt_layers.h's layout) of one sample, skipping rows:
     * y (out) = bias + the sum, over the rows i with x[i] != 0 in increasing i, of x[i] * row i
     * (a zero input adds nothing); dx (in) = row i . dy (out a multiple of 16) where rows[i] != 0,
     * else 0 (for units whose gradient dropout or relu discards). Same bits in every set. */
    void (*dense_forward_one)(float *y, const float *x, const float *weight, const float *bias,
                              int in, int out);
    void (*dense_input_grad_one)(float *dx, const uint8_t *rows, const float *weight,
                                 const float *dy, int in, int out);
} PtKernels;

#define PT_MASK_LANES 8
#define PT_CONV2_PACKED (4 * 64 * 32)

/* The sets, best first. */
typedef enum { PT_KSET_AVX512 = 0, PT_KSET_AVX2 = 1, PT_KSET_GENERIC = 2, PT_NUM_KSETS = 3 } PtKernelSet;

/* The set's table, or NULL if this build does not contain it (e.g. avx2 on aarch64). */
const PtKernels *pt_kernels_table(PtKernelSet set);
/* Whether this CPU (and OS) can run the set, and this build contains it. */
int pt_kernels_supported(PtKernelSet set);
/* The best set the CPU supports. */
PtKernelSet pt_kernels_best(void);
/* The set named by name ("auto" = the best, or a set's name); -1 with err if the name is unknown
 * or the CPU lacks the set (the message names the CPU's missing instructions). */
int pt_kernels_parse(const char *name, PtKernelSet *set, PtError *err);

/* The process-wide choice that pt_model_create and pt_adam_init take. Until pt_kernels_use is
 * called it is the environment variable PRETEXT_KERNELS if set (auto|avx512|avx2|generic;
 * a bad value is fatal), else the best set. */
const PtKernels *pt_kernels_active(void);
void pt_kernels_use(PtKernelSet set);
PtKernelSet pt_kernels_active_set(void);

/* TensorFlow's CPU arithmetic mode, which Keras runs every op in: denormal (subnormal) results are
 * flushed to zero and denormal inputs read as zero (x86 MXCSR FTZ + DAZ; aarch64 FPCR.FZ; nothing
 * elsewhere). The mode belongs to the calling thread: pt_kernels_use and the first
 * pt_kernels_active call set it for theirs, which is the thread that runs the engine (OpenBLAS
 * hands the caller's mode to its worker threads). Besides matching Keras, it keeps Adam's moments
 * of parameters whose gradient stays 0 from decaying into denormals, whose arithmetic is many times
 * slower. on = 0 restores IEEE gradual underflow (for tests). Returns 1 if the mode was set, 0 if
 * this CPU family has no such switch. */
int pt_fp_flush_denormals(int on);
/* Whether the calling thread's arithmetic flushes denormals (1) or not (0), by computing one
 * (valgrind, for one, ignores the mode). */
int pt_fp_flushes_denormals(void);

/* For the tests: the set named by PRETEXT_KERNELS (default auto); returns 0 and sets *set, or
 * returns 77 (ctest's skip code) after printing why if the CPU lacks it. */
int pt_kernels_for_test(PtKernelSet *set);

#endif
