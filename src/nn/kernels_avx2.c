/* kernels_avx2.c: the avx2 kernel set (see pt_kernels.h). Compiled with -mavx2 -mfma only (CMake's
 * per-file flags); called only when pt_kernels_supported(PT_KSET_AVX2). The plain loops of the
 * set come from kernels_loops.c compiled with the same flags. */
#include "kernels_internal.h"

const PtKernels pt_kernels_avx2 = {
    .name = "avx2",
    .conv1_relu_pool_forward = conv1_relu_pool_forward_avx2,
    .conv1_relu_pool_backward = conv1_relu_pool_backward_avx2,
    .conv2_forward = conv2_forward_avx2,
    .conv2_pack_backward = conv2_pack_backward_avx2,
    .conv2_backward = conv2_backward_avx2,
    .relu_maxpool_forward = relu_maxpool_forward_avx2,
    .maxpool_backward = maxpool_backward_avx2,
    .dropout_apply = dropout_apply_avx2,
    .dropout_mask_lanes = dropout_mask_lanes_avx2,
    .adam_update = adam_update_avx2,
    .adam_update_sum = adam_update_sum_avx2,
};
