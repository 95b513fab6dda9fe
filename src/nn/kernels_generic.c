/* kernels_generic.c: the generic kernel set (see pt_kernels.h): the portable loops of
 * kernels_loops.c compiled for the architecture's baseline (SSE2 on x86-64, the base vector unit
 * elsewhere), correct on any CPU. */
#include "kernels_internal.h"

const PtKernels pt_kernels_generic = {
    .name = "generic",
    .conv1_relu_pool_forward = conv1_relu_pool_forward_generic,
    .conv1_relu_pool_backward = conv1_relu_pool_backward_generic,
    .conv2_forward = conv2_forward_generic,
    .conv2_pack_backward = conv2_pack_backward_generic,
    .conv2_backward = conv2_backward_generic,
    .relu_maxpool_forward = relu_maxpool_forward_generic,
    .maxpool_backward = maxpool_backward_generic,
    .dropout_apply = dropout_apply_generic,
    .dropout_mask_lanes = dropout_mask_lanes_generic,
    .adam_update = adam_update_generic,
    .adam_update_sum = adam_update_sum_generic,
};
