/* kernels_internal.h: private to the nn library: the functions of src/nn/kernels_loops.c, which is
 * compiled once per kernel set with -DPT_KSET=<set> and that set's instruction flags, each copy
 * named with the set as suffix (conv2_forward_avx2, ...), and the three tables. */
#ifndef PT_KERNELS_INTERNAL_H
#define PT_KERNELS_INTERNAL_H

#include "pt_kernels.h"

#define PT_KERNEL_LOOPS(S)                                                                        \
    void conv1_relu_pool_forward_##S(float *pooled, uint8_t *argmax, const float *x,              \
                                     const float *kernel, const float *bias, int B, int H, int W, \
                                     int Cout);                                                   \
    void conv1_relu_pool_backward_##S(float *dkernel, float *dbias, const float *dpooled,         \
                                      const uint8_t *argmax, const float *x, int B, int H, int W, \
                                      int Cout);                                                  \
    void conv2_pack_backward_##S(float *packed, const float *kernel);                             \
    void conv2_bias_grad_##S(float *dbias, const float *dout, size_t rows);                       \
    void relu_maxpool_forward_##S(float *out, uint8_t *argmax, const float *x, int B, int H,     \
                                  int W, int C);                                                  \
    void maxpool_backward_##S(float *dx, const float *dout, const uint8_t *argmax, int B, int H, \
                              int W, int C);                                                      \
    void dropout_apply_##S(float *out, const float *x, const float *mask, size_t n);              \
    void dropout_mask_lanes_##S(float *const *masks, int lanes, size_t n, float rate,             \
                                PtRng *rngs);                                                     \
    void adam_update_##S(float *w, float *m, float *v, const float *g, size_t n, float lr_t,      \
                         float one_minus_b1, float one_minus_b2, float eps);                      \
    void adam_update_sum_##S(float *w, float *m, float *v, const float *const *src, int n_src,    \
                             size_t off, size_t n, float lr_t, float one_minus_b1,                \
                             float one_minus_b2, float eps);                                  \
    void adam_update_outer_##S(float *w, float *m, float *v, const float *x, const float *dy,     \
                               int in, int out, float lr_t, float one_minus_b1,                   \
                               float one_minus_b2, float eps);                                \
    void dense_forward_one_##S(float *y, const float *x, const float *weight, const float *bias,  \
                               int in, int out);                                                  \
    void dense_input_grad_one_##S(float *dx, const uint8_t *rows, const float *weight,            \
                                  const float *dy, int in, int out);

PT_KERNEL_LOOPS(generic)
#if defined(PT_HAVE_X86_KERNELS)
PT_KERNEL_LOOPS(avx2)
PT_KERNEL_LOOPS(avx512)
extern const PtKernels pt_kernels_avx2;
extern const PtKernels pt_kernels_avx512;
#endif
extern const PtKernels pt_kernels_generic;

/* The integer threshold of a keep probability: a draw r keeps iff (r >> 40) < threshold, which is
 * exactly pt_rng_uniform(r) < keep_prob (the float product keep_prob * 2^24 is exact). */
uint64_t pt_dropout_keep_threshold(float keep_prob);

#endif
