/* model.c: the seed's CNN (pt_model.h) assembled from the layers of pt_layers.h: the parameter
 * layout in Keras order, one preallocated set of activation and workspace buffers sized for
 * max_batch (forward, loss and backward never allocate), Glorot init, per-sample dropout masks
 * derived from the sample's global index, and a backward pass that skips frozen layers. */
#include "pt_model.h"

#include <assert.h>
#include <math.h>
#include <string.h>
#include <stdlib.h>

#include "pt_layers.h"
#include "pt_util.h"

#define IMG 28                      /* input side */
#define P1 14                       /* side after pool1 */
#define P2 7                        /* side after pool2 */
#define N_POOL1 (P1 * P1 * PT_CONV1_FILTERS)   /* 12544 units per image */
#define N_CONV2 (P1 * P1 * PT_CONV2_FILTERS)   /* 6272 */
#define COL_K (4 * PT_CONV1_FILTERS)           /* 256: conv2's im2col row length */
/* conv2's im2col works on chunks of at most this many images, so its workspace stays bounded
 * when max_batch is large (evaluation); a training batch of <= 64 is one sgemm of M = B*196. */
#define CONV2_CHUNK 64
/* conv2's direct backward runs by slices of this many images, model->progress between them */
#define PROGRESS_SLICE 4

struct PtActivations {
    int B;                  /* batch of the last forward */
    int training;           /* dropout applied in the last forward */
    float *input;           /* (B,28,28,1) copy of the last forward's images (conv1's backward) */
    float *mask1;           /* (B,14,14,64) dropout scale: 0 or 1/(1-rate) */
    float *mask2;           /* (B,1568) */
    float *mask3;           /* (B,256) */
    float *pool1;           /* (B,14,14,64) maxpool(relu(conv1)), dropped out in place */
    uint8_t *arg1;          /* (B,14,14,64) pool1 winners (PT_POOL_DEAD: relu zero) */
    float *col;             /* (chunk*196, 256) im2col of conv2's input */
    int col_first;          /* first image of the chunk currently held in col, -1 if none */
    float *pre2;            /* (B,14,14,32) conv2 pre-activation */
    float *pool2;           /* (B,7,7,32) = (B,1568) maxpool(relu(conv2)), dropped out in place */
    uint8_t *arg2;          /* (B,7,7,32) */
    float *hidden;          /* (B,256) relu(dense1) before dropout */
    float *drop3;           /* (B,256) hidden after dropout (dense2's input) */
    float *logits;          /* (B,C) */
    float *dlogits;         /* (B,C) d(loss)/d(logits) from pt_model_loss */
    float *d_drop3;         /* (B,256) */
    float *d_flat;          /* (B,1568) */
    float *d_pre2;          /* (B,14,14,32) */
    float *d_col;           /* (chunk*196, 256) */
    float *d_pool1;         /* (B,14,14,64) */
};

size_t pt_tensor_layout(int n_classes, PtTensorInfo out[PT_NUM_TENSORS]) {
    assert(n_classes >= 2 && n_classes <= PT_MAX_CLASSES);
    static const char *names[PT_NUM_TENSORS] = {
        "conv2d/kernel", "conv2d/bias", "conv2d_1/kernel", "conv2d_1/bias",
        "dense/kernel",  "dense/bias",  "dense_1/kernel",  "dense_1/bias"};
    const int shapes[PT_NUM_TENSORS][5] = {/* ndim, dims */
        {4, 2, 2, 1, PT_CONV1_FILTERS},
        {1, PT_CONV1_FILTERS, 0, 0, 0},
        {4, 2, 2, PT_CONV1_FILTERS, PT_CONV2_FILTERS},
        {1, PT_CONV2_FILTERS, 0, 0, 0},
        {2, PT_FLAT, PT_HIDDEN, 0, 0},
        {1, PT_HIDDEN, 0, 0, 0},
        {2, PT_HIDDEN, n_classes, 0, 0},
        {1, n_classes, 0, 0, 0}};
    size_t offset = 0;
    for (int t = 0; t < PT_NUM_TENSORS; t++) {
        PtTensorInfo *info = &out[t];
        info->name = names[t];
        info->layer = t / 2;
        info->ndim = shapes[t][0];
        info->size = 1;
        for (int d = 0; d < 4; d++) {
            info->shape[d] = d < info->ndim ? shapes[t][1 + d] : 0;
            if (d < info->ndim) info->size *= (size_t)info->shape[d];
        }
        info->offset = offset;
        offset += info->size;
    }
    return offset;
}

static void set_pointers(PtParamPtrs *p, float *base, const PtTensorInfo *t) {
    p->conv1_kernel = base + t[PT_T_CONV1_KERNEL].offset;
    p->conv1_bias = base + t[PT_T_CONV1_BIAS].offset;
    p->conv2_kernel = base + t[PT_T_CONV2_KERNEL].offset;
    p->conv2_bias = base + t[PT_T_CONV2_BIAS].offset;
    p->dense1_kernel = base + t[PT_T_DENSE1_KERNEL].offset;
    p->dense1_bias = base + t[PT_T_DENSE1_BIAS].offset;
    p->dense2_kernel = base + t[PT_T_DENSE2_KERNEL].offset;
    p->dense2_bias = base + t[PT_T_DENSE2_BIAS].offset;
}

static float *alloc_floats(size_t n) {
    float *p = pt_aligned_alloc(n * sizeof(float));
    memset(p, 0, n * sizeof(float));
    return p;
}

PtModel *pt_model_create(int n_classes, int max_batch) {
    if (n_classes < 2 || n_classes > PT_MAX_CLASSES)
        pt_fatal("model: %d classes is outside [2, %d]", n_classes, PT_MAX_CLASSES);
    if (max_batch < 1) pt_fatal("model: max_batch must be >= 1 (got %d)", max_batch);
    PtModel *m = pt_calloc(1, sizeof *m);
    m->n_classes = n_classes;
    m->max_batch = max_batch;
    m->n_params = pt_tensor_layout(n_classes, m->tensors);
    m->params = alloc_floats(m->n_params);
    m->grads = alloc_floats(m->n_params + PT_GRAD_EXTRA);
    set_pointers(&m->p, m->params, m->tensors);
    set_pointers(&m->g, m->grads, m->tensors);
    for (int l = 0; l < PT_NUM_LAYERS; l++) m->trainable[l] = 1;
    m->dropout_rate[0] = 0.3f;
    m->dropout_rate[1] = 0.3f;
    m->dropout_rate[2] = 0.5f;

    size_t B = (size_t)max_batch;
    size_t chunk = B < CONV2_CHUNK ? B : CONV2_CHUNK;
    PtActivations *a = pt_calloc(1, sizeof *a);
    a->input = alloc_floats(B * IMG * IMG);
    a->mask1 = alloc_floats(B * N_POOL1);
    a->mask2 = alloc_floats(B * PT_FLAT);
    a->mask3 = alloc_floats(B * PT_HIDDEN);
    a->pool1 = alloc_floats(B * N_POOL1);
    a->arg1 = pt_aligned_alloc(B * N_POOL1);
    /* im2col workspaces only for the fallback path (2 x 12.8 MB at a chunk of 64) */
    int use_col = !pt_conv2x2_c64_direct_available();
    a->col = use_col ? alloc_floats(chunk * P1 * P1 * COL_K) : NULL;
    a->col_first = -1;
    a->pre2 = alloc_floats(B * N_CONV2);
    a->pool2 = alloc_floats(B * PT_FLAT);
    a->arg2 = pt_aligned_alloc(B * PT_FLAT);
    a->hidden = alloc_floats(B * PT_HIDDEN);
    a->drop3 = alloc_floats(B * PT_HIDDEN);
    a->logits = alloc_floats(B * PT_MAX_CLASSES);
    a->dlogits = alloc_floats(B * PT_MAX_CLASSES);
    a->d_drop3 = alloc_floats(B * PT_HIDDEN);
    a->d_flat = alloc_floats(B * PT_FLAT);
    a->d_pre2 = alloc_floats(B * N_CONV2);
    a->d_col = use_col ? alloc_floats(chunk * P1 * P1 * COL_K) : NULL;
    a->d_pool1 = alloc_floats(B * N_POOL1);
    m->act = a;
    return m;
}

void pt_model_free(PtModel *model) {
    if (!model) return;
    PtActivations *a = model->act;
    if (a) {
        free(a->input); free(a->mask1); free(a->mask2); free(a->mask3);
        free(a->pool1); free(a->arg1); free(a->col); free(a->pre2); free(a->pool2); free(a->arg2);
        free(a->hidden); free(a->drop3); free(a->logits); free(a->dlogits);
        free(a->d_drop3); free(a->d_flat); free(a->d_pre2); free(a->d_col); free(a->d_pool1);
        free(a);
    }
    free(model->params);
    free(model->grads);
    free(model);
}

void pt_model_init_glorot(PtModel *model, PtRng *rng) {
    for (int t = 0; t < PT_NUM_TENSORS; t++) {
        const PtTensorInfo *info = &model->tensors[t];
        float *w = model->params + info->offset;
        if (info->ndim == 1) { /* bias */
            memset(w, 0, info->size * sizeof *w);
            continue;
        }
        /* Keras: fan_in = receptive field * in, fan_out = receptive field * out. */
        size_t receptive = 1;
        for (int d = 0; d < info->ndim - 2; d++) receptive *= (size_t)info->shape[d];
        double fan_in = (double)(receptive * (size_t)info->shape[info->ndim - 2]);
        double fan_out = (double)(receptive * (size_t)info->shape[info->ndim - 1]);
        float limit = (float)sqrt(6.0 / (fan_in + fan_out));
        for (size_t k = 0; k < info->size; k++) w[k] = limit * (2.0f * pt_rng_uniform(rng) - 1.0f);
    }
}

void pt_model_copy_tensors(PtModel *dst, const PtModel *src, int first, int last) {
    if (first < 0 || last >= PT_NUM_TENSORS || first > last)
        pt_fatal("model: bad tensor range [%d, %d]", first, last);
    for (int t = first; t <= last; t++) {
        const PtTensorInfo *d = &dst->tensors[t], *s = &src->tensors[t];
        if (d->size != s->size || d->ndim != s->ndim || memcmp(d->shape, s->shape, sizeof d->shape))
            pt_fatal("model: cannot copy tensor %s: shapes differ (%zu vs %zu values)", d->name,
                     s->size, d->size);
        memcpy(dst->params + d->offset, src->params + s->offset, d->size * sizeof(float));
    }
}

/* Draws the masks of batch element i from its own stream, in a fixed order (mask1, 2, 3), so a
 * sample's masks do not depend on the batch split. Up to PT_MASK_LANES samples are drawn at
 * once, one generator per SIMD lane (same values as drawing them one by one). */
static void draw_masks(PtModel *model, int B, uint64_t dropout_seed, uint64_t first_sample) {
    PtActivations *a = model->act;
    for (int i0 = 0; i0 < B; i0 += PT_MASK_LANES) {
        int lanes = B - i0 < PT_MASK_LANES ? B - i0 : PT_MASK_LANES;
        PtRng rngs[PT_MASK_LANES];
        float *m1[PT_MASK_LANES], *m2[PT_MASK_LANES], *m3[PT_MASK_LANES];
        for (int l = 0; l < lanes; l++) {
            size_t i = (size_t)(i0 + l);
            pt_rng_seed(&rngs[l], pt_seed_derive(dropout_seed, first_sample + i, 0));
            m1[l] = a->mask1 + i * N_POOL1;
            m2[l] = a->mask2 + i * PT_FLAT;
            m3[l] = a->mask3 + i * PT_HIDDEN;
        }
        pt_dropout_mask_lanes(m1, lanes, N_POOL1, model->dropout_rate[0], rngs);
        pt_dropout_mask_lanes(m2, lanes, PT_FLAT, model->dropout_rate[1], rngs);
        pt_dropout_mask_lanes(m3, lanes, PT_HIDDEN, model->dropout_rate[2], rngs);
    }
}

void pt_model_forward(PtModel *model, const float *x, int B, int training,
                      uint64_t dropout_seed, uint64_t first_sample) {
    if (B < 1 || B > model->max_batch)
        pt_fatal("model: batch %d outside [1, %d]", B, model->max_batch);
    PtActivations *a = model->act;
    const PtParamPtrs *p = &model->p;
    a->B = B;
    a->training = training;
    if (training) draw_masks(model, B, dropout_seed, first_sample);
    memcpy(a->input, x, (size_t)B * IMG * IMG * sizeof(float));

    /* conv1 + relu + pool1 (+ dropout1 in place) */
    pt_conv2x2_c1_relu_pool_forward(a->pool1, a->arg1, x, p->conv1_kernel, p->conv1_bias, B, IMG,
                                    IMG, PT_CONV1_FILTERS);
    if (training) pt_dropout_apply(a->pool1, a->pool1, a->mask1, (size_t)B * N_POOL1);

    /* conv2: the direct AVX-512 kernel when built for it (no im2col, no BLAS packing: 1.7x the
     * im2col + sgemm rate), and its backward likewise. Else im2col + sgemm by chunks. */
    if (pt_conv2x2_c64_direct_available()) {
        pt_conv2x2_c64_direct_forward(a->pre2, a->pool1, p->conv2_kernel, p->conv2_bias, B, P1, P1);
        a->col_first = -1;
    } else for (int first = 0; first < B; first += CONV2_CHUNK) {
        int n = B - first < CONV2_CHUNK ? B - first : CONV2_CHUNK;
        pt_im2col_2x2(a->col, a->pool1 + (size_t)first * N_POOL1, n, P1, P1, PT_CONV1_FILTERS);
        pt_conv2x2_gemm_forward(a->pre2 + (size_t)first * N_CONV2, a->col, p->conv2_kernel,
                                p->conv2_bias, n, P1, P1, PT_CONV1_FILTERS, PT_CONV2_FILTERS);
        a->col_first = first;
    }
    /* relu + pool2 (+ dropout2 in place); the (7,7,32) result is already the (h,w,c) flatten */
    pt_relu_maxpool2_forward(a->pool2, a->arg2, a->pre2, B, P1, P1, PT_CONV2_FILTERS);
    if (training) pt_dropout_apply(a->pool2, a->pool2, a->mask2, (size_t)B * PT_FLAT);

    /* dense1 + relu (+ dropout3), dense2 */
    pt_dense_forward(a->hidden, a->pool2, p->dense1_kernel, p->dense1_bias, B, PT_FLAT, PT_HIDDEN);
    pt_relu_forward(a->hidden, a->hidden, (size_t)B * PT_HIDDEN);
    const float *dense2_in = a->hidden;
    if (training) {
        pt_dropout_apply(a->drop3, a->hidden, a->mask3, (size_t)B * PT_HIDDEN);
        dense2_in = a->drop3;
    }
    pt_dense_forward(a->logits, dense2_in, p->dense2_kernel, p->dense2_bias, B, PT_HIDDEN,
                     model->n_classes);
}

double pt_model_loss(PtModel *model, const uint8_t *labels, int B, int denom, int *correct) {
    assert(B == model->act->B && denom >= 1);
    return pt_softmax_ce(model->act->dlogits, correct, model->act->logits, labels, B,
                         model->n_classes, denom);
}

double pt_model_loss_only(const PtModel *model, const uint8_t *labels, int B, int *correct) {
    assert(B == model->act->B);
    return pt_softmax_ce(NULL, correct, model->act->logits, labels, B, model->n_classes, 1);
}

const float *pt_model_logits(const PtModel *model) { return model->act->logits; }

void pt_model_backward(PtModel *model, int B, PtGradReadyFn on_dense_ready, void *ctx) {
    PtActivations *a = model->act;
    assert(B == a->B);
    const PtParamPtrs *p = &model->p;
    const PtParamPtrs *g = &model->g;
    const int *tr = model->trainable;
    int lowest = PT_NUM_LAYERS; /* lowest trainable layer: no input gradient is needed below it */
    for (int l = PT_NUM_LAYERS - 1; l >= 0; l--)
        if (tr[l]) lowest = l;
    if (lowest == PT_NUM_LAYERS) return;
    int C = model->n_classes;

    /* dense2 */
    const float *dense2_in = a->training ? a->drop3 : a->hidden;
    pt_dense_backward(lowest < PT_LAYER_DENSE2 ? a->d_drop3 : NULL,
                      tr[PT_LAYER_DENSE2] ? g->dense2_kernel : NULL,
                      tr[PT_LAYER_DENSE2] ? g->dense2_bias : NULL, a->dlogits, dense2_in,
                      p->dense2_kernel, B, PT_HIDDEN, C);
    if (lowest < PT_LAYER_DENSE2) {
        /* dropout3, relu, dense1 */
        size_t n = (size_t)B * PT_HIDDEN;
        if (a->training) pt_dropout_apply(a->d_drop3, a->d_drop3, a->mask3, n);
        pt_relu_backward(a->d_drop3, a->d_drop3, a->hidden, n);
        pt_dense_backward(lowest < PT_LAYER_DENSE1 ? a->d_flat : NULL,
                          tr[PT_LAYER_DENSE1] ? g->dense1_kernel : NULL,
                          tr[PT_LAYER_DENSE1] ? g->dense1_bias : NULL, a->d_drop3, a->pool2,
                          p->dense1_kernel, B, PT_FLAT, PT_HIDDEN);
    }
    if (on_dense_ready && tr[PT_LAYER_DENSE1] && tr[PT_LAYER_DENSE2]) {
        size_t first = model->tensors[PT_T_DENSE1_KERNEL].offset;
        on_dense_ready(ctx, first, model->n_params - first);
    }
    if (lowest >= PT_LAYER_DENSE1) return;

    /* dropout2, relu + pool2 */
    if (a->training) pt_dropout_apply(a->d_flat, a->d_flat, a->mask2, (size_t)B * PT_FLAT);
    pt_maxpool2_backward(a->d_pre2, a->d_flat, a->arg2, B, P1, P1, PT_CONV2_FILTERS);

    int need_dx2 = lowest < PT_LAYER_CONV2;
    if (pt_conv2x2_c64_direct_available()) {
        /* conv2 direct (no col buffers), with dropout1's mask fused into the input gradient */
        for (int first = 0; first < B; first += PROGRESS_SLICE) {
            int n = B - first < PROGRESS_SLICE ? B - first : PROGRESS_SLICE;
            size_t in = (size_t)first * N_POOL1;
            pt_conv2x2_c64_direct_backward(need_dx2 ? a->d_pool1 + in : NULL,
                                           tr[PT_LAYER_CONV2] ? g->conv2_kernel : NULL,
                                           tr[PT_LAYER_CONV2] ? g->conv2_bias : NULL,
                                           a->d_pre2 + (size_t)first * N_CONV2, a->pool1 + in,
                                           p->conv2_kernel, a->training ? a->mask1 + in : NULL,
                                           n, P1, P1);
            if (model->progress) model->progress(model->progress_ctx);
        }
        if (!need_dx2) return;
    } else {
        /* conv2 by the same chunks as the forward; col is rebuilt unless it still holds the chunk */
        for (int first = 0; first < B; first += CONV2_CHUNK) {
        int n = B - first < CONV2_CHUNK ? B - first : CONV2_CHUNK;
        if (a->col_first != first) {
            pt_im2col_2x2(a->col, a->pool1 + (size_t)first * N_POOL1, n, P1, P1, PT_CONV1_FILTERS);
            a->col_first = first;
        }
        pt_conv2x2_gemm_backward(need_dx2 ? a->d_pool1 + (size_t)first * N_POOL1 : NULL, a->d_col,
                                 tr[PT_LAYER_CONV2] ? g->conv2_kernel : NULL,
                                 tr[PT_LAYER_CONV2] ? g->conv2_bias : NULL,
                                 a->d_pre2 + (size_t)first * N_CONV2, a->col, p->conv2_kernel, n,
                                 P1, P1, PT_CONV1_FILTERS, PT_CONV2_FILTERS);
        }
        if (!need_dx2) return;
        if (a->training) pt_dropout_apply(a->d_pool1, a->d_pool1, a->mask1, (size_t)B * N_POOL1);
    }

    /* conv1 + relu + pool1 (the input image needs no gradient) */
    pt_conv2x2_c1_relu_pool_backward(g->conv1_kernel, g->conv1_bias, a->d_pool1, a->arg1,
                                     a->input, B, IMG, IMG, PT_CONV1_FILTERS);
}

void pt_model_zero_grads(PtModel *model) {
    memset(model->grads, 0, (model->n_params + PT_GRAD_EXTRA) * sizeof(float));
}
