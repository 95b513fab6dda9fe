/* pt_model.h: the seed's CNN (Keras semantics, channels-last) with one contiguous parameter
 * buffer in Keras's order and layouts, forward/backward over preallocated buffers and per-layer
 * trainable flags. The kernel set (pt_kernels.h) is chosen once, when the model is created.
 *
 *   input (B,28,28,1)
 *   conv1  2x2 same, 64, relu  -> (B,28,28,64)   kernel (2,2,1,64)  bias (64)
 *   maxpool 2                  -> (B,14,14,64)
 *   dropout 0.3
 *   conv2  2x2 same, 32, relu  -> (B,14,14,32)   kernel (2,2,64,32) bias (32)
 *   maxpool 2                  -> (B,7,7,32)
 *   dropout 0.3
 *   flatten (h,w,c)            -> (B,1568)
 *   dense1 256 relu            -> (B,256)        kernel (1568,256)  bias (256)
 *   dropout 0.5
 *   dense2 C (10, or 4 for the rotation task) -> logits (B,C), softmax cross-entropy
 */
#ifndef PT_MODEL_H
#define PT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "pt_kernels.h"
#include "pt_rng.h"

#define PT_CONV1_FILTERS 64
#define PT_CONV2_FILTERS 32
#define PT_HIDDEN 256
#define PT_FLAT (7 * 7 * PT_CONV2_FILTERS) /* 1568 */
#define PT_MAX_CLASSES 62 /* outputs of dense2: up to EMNIST byclass's 62 classes */

/* Layers that own weights (the index of trainable[]). */
enum { PT_LAYER_CONV1, PT_LAYER_CONV2, PT_LAYER_DENSE1, PT_LAYER_DENSE2, PT_NUM_LAYERS };

/* Tensors in Keras get_weights() order; R's weights[[i]] is tensor i-1. */
enum {
    PT_T_CONV1_KERNEL, PT_T_CONV1_BIAS, PT_T_CONV2_KERNEL, PT_T_CONV2_BIAS,
    PT_T_DENSE1_KERNEL, PT_T_DENSE1_BIAS, PT_T_DENSE2_KERNEL, PT_T_DENSE2_BIAS,
    PT_NUM_TENSORS
};

typedef struct {
    const char *name;    /* Keras-style, e.g. "conv2d/kernel" */
    int layer;           /* PT_LAYER_* owning it */
    int ndim;
    int shape[4];        /* Keras layout */
    size_t offset;       /* in floats from the start of params */
    size_t size;         /* element count */
} PtTensorInfo;

/* Fills the table for a model with n_classes outputs; returns the total parameter count
 * (412,778 for 10 classes, 411,236 for 4). */
size_t pt_tensor_layout(int n_classes, PtTensorInfo out[PT_NUM_TENSORS]);

typedef struct {
    float *conv1_kernel;  /* (2,2,1,64) */
    float *conv1_bias;    /* (64) */
    float *conv2_kernel;  /* (2,2,64,32) */
    float *conv2_bias;    /* (32) */
    float *dense1_kernel; /* (1568,256) */
    float *dense1_bias;   /* (256) */
    float *dense2_kernel; /* (256,C) */
    float *dense2_bias;   /* (C) */
} PtParamPtrs;

typedef struct PtActivations PtActivations; /* private to model.c: activations and workspaces */

typedef struct {
    int n_classes;                   /* 10 or 4 */
    int max_batch;                   /* forward/backward accept 1 <= B <= max_batch */
    size_t n_params;
    PtTensorInfo tensors[PT_NUM_TENSORS];
    float *params;                   /* (n_params) one buffer, Keras order */
    float *grads;                    /* (n_params) same layout */
    PtParamPtrs p;                   /* pointers into params */
    PtParamPtrs g;                   /* pointers into grads */
    int trainable[PT_NUM_LAYERS];    /* 0: frozen, no weight gradient computed, no update */
    float dropout_rate[3];           /* 0.3, 0.3, 0.5 */
    const PtKernels *k;              /* the kernel set, pt_kernels_active() at creation */
    float *own_params;               /* the model's own buffers (params/grads may point elsewhere */
    float *own_grads;                /*   while bound, see pt_model_bind_buffers) */
    int defer_dense1_grad;           /* pt_model_defer_dense1_grad */
    int dense1_grad_deferred;        /* the last backward left dense1's kernel gradient to Adam */
    PtActivations *act;
} PtModel;

/* A model with n_classes outputs for batches of up to max_batch images, running the process's
 * active kernel set (pt_kernels_active). */
PtModel *pt_model_create(int n_classes, int max_batch);
void pt_model_free(PtModel *model);

/* Glorot-uniform kernels with Keras's fans, drawn in tensor order from rng; zero biases. */
void pt_model_init_glorot(PtModel *model, PtRng *rng);

/* Copies parameter tensors [first, last] (tensor indices, inclusive) from src; shapes must match. */
void pt_model_copy_tensors(PtModel *dst, const PtModel *src, int first, int last);

/* Forward pass over B images x (B,28,28,1). training=1 applies dropout: the masks of batch
 * element i come from a generator seeded with pt_seed_derive(dropout_seed, first_sample + i, 0),
 * so they depend only on the sample's position in the global batch, not on how the batch is split
 * over ranks. The logits are kept in the model. */
void pt_model_forward(PtModel *model, const float *x, int B, int training,
                      uint64_t dropout_seed, uint64_t first_sample);

/* Softmax cross-entropy of the last forward against labels (B). Stores d(loss)/d(logits) where
 * loss = (sum over this batch of per-sample losses) / denom (denom = global batch size), for the
 * following backward. Returns the SUM of per-sample losses; *correct gets the argmax hits. */
double pt_model_loss(PtModel *model, const uint8_t *labels, int B, int denom, int *correct);

/* Sum of per-sample losses and hits without storing gradients (inference evaluation). */
double pt_model_loss_only(const PtModel *model, const uint8_t *labels, int B, int *correct);

/* Logits of the last forward: (B, C). */
const float *pt_model_logits(const PtModel *model);

/* What backward tells its caller while it runs (any member may be NULL): dense_ready as soon as
 * the gradients of the dense layers (parameters [first_param, first_param + n_params)) are
 * complete, before the conv layers' backward starts (a caller summing gradients over several
 * processes can start on them early); progress every few images of the conv layers' backward (to
 * let such a sum advance). */
typedef struct {
    void (*dense_ready)(void *ctx, size_t first_param, size_t n_params);
    void (*progress)(void *ctx);
    void *ctx;
} PtBackwardHooks;

/* Backward pass of the last forward+loss: ACCUMULATES (+=) into model->grads for trainable layers
 * only; weight gradients of frozen layers are not computed, nor input gradients below the lowest
 * trainable layer. hooks may be NULL. */
void pt_model_backward(PtModel *model, int B, const PtBackwardHooks *hooks);

/* Points params and grads at caller-owned buffers of at least n_params floats each (e.g. a
 * shared-memory window), copying the current values into them; NULL for either returns to the
 * model's own buffer, copying the values back. The caller keeps the buffers alive while bound. */
void pt_model_bind_buffers(PtModel *model, float *params, float *grads);
/* Points params at a buffer that already holds this model's weights, without copying (the other
 * ranks of a node, once node rank 0 has copied them in); undone by pt_model_bind_buffers. */
void pt_model_share_params(PtModel *model, float *params);

/* Sets grads to zero (all but dense1's kernel while its gradient is deferred, below). */
void pt_model_zero_grads(PtModel *model);

/* One-sample steps whose gradient goes to pt_adam_step and nowhere else (the trials: batch 1, no
 * sum over ranks). While on, a backward at B = 1 does not store dense1's kernel gradient (401,408
 * of the 412,778 parameters, one sample's outer product); the following pt_adam_step computes it
 * on the fly from the layer's input and output gradient, which stay in the activations until the
 * next forward (adam_update_outer in pt_kernels.h: bit for bit the stored path's update, without
 * zeroing, writing and reading 1.6 MB per step). pt_model_zero_grads then leaves that region
 * alone, and a backward at B > 1 overwrites it instead of accumulating. model->grads holds no
 * dense1 kernel gradient while on; turning it off zeroes that region. */
void pt_model_defer_dense1_grad(PtModel *model, int on);
/* 1 and dense1's input x (PT_FLAT) and output gradient dy (PT_HIDDEN) if the last backward
 * deferred the gradient, else 0. */
int pt_model_dense1_outer(const PtModel *model, const float **x, const float **dy);

#endif
