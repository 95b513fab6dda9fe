/* model.c: the seed's CNN (pt_model.h) assembled from the kernels of the chosen set (pt_kernels.h)
 * and the portable layers (pt_layers.h): the parameter layout in Keras order, one preallocated
 * set of activation and workspace buffers sized for max_batch (forward, loss and backward never
 * allocate), Glorot init, per-sample dropout masks derived from the sample's global index, and a
 * backward pass that skips frozen layers. The conv layers run one image at a time (their
 * activations stay in the cache), the dense layers on the whole batch (BLAS); at batch 1 (the
 * trials) dense1 runs the kernel set's one-sample loops, which skip its zero inputs and the
 * input gradients that dropout or relu discard. */
#include "pt_model.h"

#include <assert.h>
#include <math.h>
#include <string.h>
#include <stdlib.h>

#include "pt_layers.h"
#include "pt_streams.h"
#include "pt_util.h"

#define IMG 28                      /* input side */
#define P1 14                       /* side after pool1 */
#define P2 7                        /* side after pool2 */
#define N_POOL1 (P1 * P1 * PT_CONV1_FILTERS)   /* 12544 units per image */
#define N_CONV2 (P1 * P1 * PT_CONV2_FILTERS)   /* 6272 */
/* backward calls hooks->progress after every this many images */
#define PROGRESS_SLICE 4

struct PtActivations {
    int B;                  /* batch of the last forward */
    int training;           /* dropout applied in the last forward */
    float *input;           /* (B,28,28,1) copy of the last forward's images (conv1's backward) */
    float *mask1;           /* (PT_MASK_LANES,14,14,64) dropout1's scale, 0 or 1/(1-rate), of the
                             * images being drawn (its backward needs no mask: see backward) */
    float *mask2;           /* (B,1568) */
    float *mask3;           /* (B,256) */
    float *pool1;           /* (B,14,14,64) maxpool(relu(conv1)), dropped out in place */
    uint8_t *arg1;          /* (B,14,14,64) pool1 winners (PT_POOL_DEAD: relu zero) */
    float *pre2;            /* (1,14,14,32) conv2 pre-activation of the image being computed */
    float *pool2;           /* (B,7,7,32) = (B,1568) maxpool(relu(conv2)), dropped out in place */
    uint8_t *arg2;          /* (B,7,7,32) */
    uint8_t *rows1;         /* (1568) at batch 1: whether dense1's input gradient is used (the unit
                             * is live and kept) */
    float *hidden;          /* (B,256) relu(dense1) before dropout */
    float *drop3;           /* (B,256) hidden after dropout (dense2's input) */
    float *logits;          /* (B,C) */
    float *dlogits;         /* (B,C) d(loss)/d(logits) from pt_model_loss */
    float *d_drop3;         /* (B,256) */
    float *d_flat;          /* (B,1568) */
    float *d_pre2;          /* (1,14,14,32) */
    float *d_pool1;         /* (1,14,14,64) */
    float *conv2_packed;    /* (PT_CONV2_PACKED) conv2's kernel arranged for its backward */
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
    m->params = m->own_params = alloc_floats(m->n_params);
    m->grads = m->own_grads = alloc_floats(m->n_params);
    m->k = pt_kernels_active();
    set_pointers(&m->p, m->params, m->tensors);
    set_pointers(&m->g, m->grads, m->tensors);
    for (int l = 0; l < PT_NUM_LAYERS; l++) m->trainable[l] = 1;
    m->dropout_rate[0] = 0.3f;
    m->dropout_rate[1] = 0.3f;
    m->dropout_rate[2] = 0.5f;

    size_t B = (size_t)max_batch;
    PtActivations *a = pt_calloc(1, sizeof *a);
    a->input = alloc_floats(B * IMG * IMG);
    a->mask1 = alloc_floats((B < PT_MASK_LANES ? B : PT_MASK_LANES) * N_POOL1);
    a->mask2 = alloc_floats(B * PT_FLAT);
    a->mask3 = alloc_floats(B * PT_HIDDEN);
    a->pool1 = alloc_floats(B * N_POOL1);
    a->arg1 = pt_aligned_alloc(B * N_POOL1);
    a->pre2 = alloc_floats(N_CONV2);
    a->pool2 = alloc_floats(B * PT_FLAT);
    a->arg2 = pt_aligned_alloc(B * PT_FLAT);
    a->rows1 = pt_aligned_alloc(PT_FLAT);
    a->hidden = alloc_floats(B * PT_HIDDEN);
    a->drop3 = alloc_floats(B * PT_HIDDEN);
    a->logits = alloc_floats(B * PT_MAX_CLASSES);
    a->dlogits = alloc_floats(B * PT_MAX_CLASSES);
    a->d_drop3 = alloc_floats(B * PT_HIDDEN);
    a->d_flat = alloc_floats(B * PT_FLAT);
    a->d_pre2 = alloc_floats(N_CONV2);
    a->d_pool1 = alloc_floats(N_POOL1);
    a->conv2_packed = alloc_floats(PT_CONV2_PACKED);
    m->act = a;
    return m;
}

void pt_model_free(PtModel *model) {
    if (!model) return;
    PtActivations *a = model->act;
    if (a) {
        free(a->input); free(a->mask1); free(a->mask2); free(a->mask3);
        free(a->pool1); free(a->arg1); free(a->pre2); free(a->pool2); free(a->arg2); free(a->rows1);
        free(a->hidden); free(a->drop3); free(a->logits); free(a->dlogits);
        free(a->d_drop3); free(a->d_flat); free(a->d_pre2); free(a->d_pool1);
        free(a->conv2_packed);
        free(a);
    }
    free(model->own_params);
    free(model->own_grads);
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

/* Draws the masks of batch elements i0 .. i0+n-1 (n <= PT_MASK_LANES), each from its own stream
 * in a fixed order (mask1, 2, 3), so a sample's masks do not depend on the batch split; the n
 * samples are drawn at once, one generator per SIMD lane (same values as one by one). mask1 of
 * sample i0+l goes to mask1_slots + l*N_POOL1; masks 2 and 3 to the batch buffers. */
static void draw_masks(PtModel *model, int i0, int n, uint64_t dropout_seed,
                       uint64_t first_sample, float *mask1_slots) {
    PtActivations *a = model->act;
    assert(n >= 1 && n <= PT_MASK_LANES);
    PtRng rngs[PT_MASK_LANES];
    float *m1[PT_MASK_LANES], *m2[PT_MASK_LANES], *m3[PT_MASK_LANES];
    for (int l = 0; l < n; l++) {
        size_t i = (size_t)(i0 + l);
        pt_rng_seed(&rngs[l], pt_stream_sample_dropout(dropout_seed, first_sample + i));
        m1[l] = mask1_slots + (size_t)l * N_POOL1;
        m2[l] = a->mask2 + i * PT_FLAT;
        m3[l] = a->mask3 + i * PT_HIDDEN;
    }
    model->k->dropout_mask_lanes(m1, n, N_POOL1, model->dropout_rate[0], rngs);
    model->k->dropout_mask_lanes(m2, n, PT_FLAT, model->dropout_rate[1], rngs);
    model->k->dropout_mask_lanes(m3, n, PT_HIDDEN, model->dropout_rate[2], rngs);
}

void pt_model_forward(PtModel *model, const float *x, int B, int training,
                      uint64_t dropout_seed, uint64_t first_sample) {
    if (B < 1 || B > model->max_batch)
        pt_fatal("model: batch %d outside [1, %d]", B, model->max_batch);
    PtActivations *a = model->act;
    const PtParamPtrs *p = &model->p;
    const PtKernels *k = model->k;
    a->B = B;
    a->training = training;
    memcpy(a->input, x, (size_t)B * IMG * IMG * sizeof(float));

    /* The conv stack, one image at a time; masks drawn for PT_MASK_LANES images at a time. */
    for (int i = 0; i < B; i++) {
        int lane = i % PT_MASK_LANES;
        if (training && lane == 0)
            draw_masks(model, i, B - i < PT_MASK_LANES ? B - i : PT_MASK_LANES, dropout_seed,
                       first_sample, a->mask1);
        float *pool1 = a->pool1 + (size_t)i * N_POOL1;  /* (14,14,64) */
        uint8_t *arg1 = a->arg1 + (size_t)i * N_POOL1;  /* (14,14,64) */
        float *pool2 = a->pool2 + (size_t)i * PT_FLAT;  /* (7,7,32): already the (h,w,c) flatten */
        uint8_t *arg2 = a->arg2 + (size_t)i * PT_FLAT;  /* (7,7,32) */
        /* conv1 + relu + pool1 */
        k->conv1_relu_pool_forward(pool1, arg1, x + (size_t)i * IMG * IMG, p->conv1_kernel,
                                   p->conv1_bias, 1, IMG, IMG, PT_CONV1_FILTERS);
        /* dropout1 */
        if (training) k->dropout_apply(pool1, pool1, a->mask1 + (size_t)lane * N_POOL1, N_POOL1);
        /* conv2 -> pre2 (14,14,32) */
        k->conv2_forward(a->pre2, pool1, p->conv2_kernel, p->conv2_bias, 1, P1, P1);
        /* relu + pool2 */
        k->relu_maxpool_forward(pool2, arg2, a->pre2, 1, P1, P1, PT_CONV2_FILTERS);
        /* dropout2 */
        if (training) k->dropout_apply(pool2, pool2, a->mask2 + (size_t)i * PT_FLAT, PT_FLAT);
    }

    /* dense1 (B,1568) -> (B,256) + relu; one sample skips its zero inputs (83% in a trial) */
    if (B == 1)
        k->dense_forward_one(a->hidden, a->pool2, p->dense1_kernel, p->dense1_bias, PT_FLAT, PT_HIDDEN);
    else
        pt_dense_forward(a->hidden, a->pool2, p->dense1_kernel, p->dense1_bias, B, PT_FLAT, PT_HIDDEN);
    pt_relu_forward(a->hidden, a->hidden, (size_t)B * PT_HIDDEN);
    /* dropout3 */
    const float *dense2_in = a->hidden;
    if (training) {
        k->dropout_apply(a->drop3, a->hidden, a->mask3, (size_t)B * PT_HIDDEN);
        dense2_in = a->drop3;
    }
    /* dense2 (B,256) -> logits (B,C) */
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

void pt_model_backward(PtModel *model, int B, const PtBackwardHooks *hooks) {
    PtActivations *a = model->act;
    assert(B == a->B);
    const PtParamPtrs *p = &model->p;
    const PtParamPtrs *g = &model->g;
    const PtKernels *k = model->k;
    const int *tr = model->trainable;
    int lowest = PT_NUM_LAYERS; /* lowest trainable layer: no input gradient is needed below it */
    for (int l = PT_NUM_LAYERS - 1; l >= 0; l--)
        if (tr[l]) lowest = l;
    if (lowest == PT_NUM_LAYERS) return;
    int C = model->n_classes;

    /* dense2: dlogits (B,C) -> d_drop3 (B,256) */
    const float *dense2_in = a->training ? a->drop3 : a->hidden;
    pt_dense_backward(lowest < PT_LAYER_DENSE2 ? a->d_drop3 : NULL,
                      tr[PT_LAYER_DENSE2] ? g->dense2_kernel : NULL,
                      tr[PT_LAYER_DENSE2] ? g->dense2_bias : NULL, a->dlogits, dense2_in,
                      p->dense2_kernel, B, PT_HIDDEN, C);
    model->dense1_grad_deferred = 0;
    if (lowest < PT_LAYER_DENSE2) {
        /* dropout3, relu, dense1: d_drop3 (B,256) -> d_flat (B,1568) */
        size_t n = (size_t)B * PT_HIDDEN;
        if (a->training) k->dropout_apply(a->d_drop3, a->d_drop3, a->mask3, n);
        pt_relu_backward(a->d_drop3, a->d_drop3, a->hidden, n);
        float *dk1 = tr[PT_LAYER_DENSE1] ? g->dense1_kernel : NULL;
        if (dk1 && model->defer_dense1_grad) {
            if (B == 1) {
                model->dense1_grad_deferred = 1; /* Adam forms x (outer) d_drop3 itself */
                dk1 = NULL;
            } else {
                memset(dk1, 0, (size_t)PT_FLAT * PT_HIDDEN * sizeof *dk1); /* not zeroed before */
            }
        }
        /* One sample: the input gradient only of the units that dropout2 kept and relu passed
         * (the others' is discarded below), 17% of them in a trial. */
        int rows_only = B == 1 && lowest < PT_LAYER_DENSE1;
        pt_dense_backward(lowest < PT_LAYER_DENSE1 && !rows_only ? a->d_flat : NULL, dk1,
                          tr[PT_LAYER_DENSE1] ? g->dense1_bias : NULL, a->d_drop3, a->pool2,
                          p->dense1_kernel, B, PT_FLAT, PT_HIDDEN);
        if (rows_only) {
            if (a->training)
                for (int q = 0; q < PT_FLAT; q++) /* & rather than &&: no branch per unit */
                    a->rows1[q] = (uint8_t)((a->arg2[q] != PT_POOL_DEAD) & (a->mask2[q] != 0.0f));
            else
                for (int q = 0; q < PT_FLAT; q++) a->rows1[q] = a->arg2[q] != PT_POOL_DEAD;
            k->dense_input_grad_one(a->d_flat, a->rows1, p->dense1_kernel, a->d_drop3, PT_FLAT, PT_HIDDEN);
        }
    }
    if (hooks && hooks->dense_ready && model->dense1_grad_deferred)
        pt_fatal("model: dense1's gradient is deferred to Adam, but the caller sums gradients");
    if (hooks && hooks->dense_ready && tr[PT_LAYER_DENSE1] && tr[PT_LAYER_DENSE2]) {
        size_t first = model->tensors[PT_T_DENSE1_KERNEL].offset;
        hooks->dense_ready(hooks->ctx, first, model->n_params - first);
    }
    if (lowest >= PT_LAYER_DENSE1) return;

    /* dropout2 */
    if (a->training) k->dropout_apply(a->d_flat, a->d_flat, a->mask2, (size_t)B * PT_FLAT);
    int need_dx2 = lowest < PT_LAYER_CONV2;
    float *dk2 = tr[PT_LAYER_CONV2] ? g->conv2_kernel : NULL;
    float *db2 = tr[PT_LAYER_CONV2] ? g->conv2_bias : NULL;
    /* Dropout1 and relu1 are fused into conv2's input gradient, from pool1 itself (> 0 iff live
     * and kept): no stored mask is needed. */
    float keep_scale1 = a->training ? 1.0f / (1.0f - model->dropout_rate[0]) : 0.0f;
    k->conv2_pack_backward(a->conv2_packed, p->conv2_kernel);
    /* The conv stack, one image at a time, its gradients staying in the cache. */
    for (int i = 0; i < B; i++) {
        const float *pool1 = a->pool1 + (size_t)i * N_POOL1;
        /* relu + pool2: d_flat (7,7,32) -> d_pre2 (14,14,32) */
        k->maxpool_backward(a->d_pre2, a->d_flat + (size_t)i * PT_FLAT, a->arg2 + (size_t)i * PT_FLAT,
                            1, P1, P1, PT_CONV2_FILTERS);
        /* conv2 (+ dropout1, relu1): d_pre2 -> d_pool1 (14,14,64) */
        k->conv2_backward(need_dx2 ? a->d_pool1 : NULL, dk2, db2, a->d_pre2, pool1, a->conv2_packed,
                          keep_scale1, 1, P1, P1);
        /* pool1 + conv1 (the input image needs no gradient) */
        if (need_dx2)
            k->conv1_relu_pool_backward(g->conv1_kernel, g->conv1_bias, a->d_pool1,
                                        a->arg1 + (size_t)i * N_POOL1, a->input + (size_t)i * IMG * IMG,
                                        1, IMG, IMG, PT_CONV1_FILTERS);
        if (hooks && hooks->progress && (i + 1) % PROGRESS_SLICE == 0) hooks->progress(hooks->ctx);
    }
}

void pt_model_bind_buffers(PtModel *model, float *params, float *grads) {
    float *new_params = params ? params : model->own_params;
    float *new_grads = grads ? grads : model->own_grads;
    if (new_params != model->params)
        memcpy(new_params, model->params, model->n_params * sizeof(float));
    if (new_grads != model->grads)
        memcpy(new_grads, model->grads, model->n_params * sizeof(float));
    model->params = new_params;
    model->grads = new_grads;
    set_pointers(&model->p, model->params, model->tensors);
    set_pointers(&model->g, model->grads, model->tensors);
}

void pt_model_share_params(PtModel *model, float *params) {
    model->params = params;
    set_pointers(&model->p, model->params, model->tensors);
}

void pt_model_zero_grads(PtModel *model) {
    if (!model->defer_dense1_grad) {
        memset(model->grads, 0, model->n_params * sizeof(float));
        return;
    }
    const PtTensorInfo *t = &model->tensors[PT_T_DENSE1_KERNEL];
    memset(model->grads, 0, t->offset * sizeof(float));
    memset(model->grads + t->offset + t->size, 0, (model->n_params - t->offset - t->size) * sizeof(float));
}

void pt_model_defer_dense1_grad(PtModel *model, int on) {
    if (model->defer_dense1_grad && !on) {
        const PtTensorInfo *t = &model->tensors[PT_T_DENSE1_KERNEL];
        memset(model->grads + t->offset, 0, t->size * sizeof(float));
    }
    model->defer_dense1_grad = on != 0;
    model->dense1_grad_deferred = 0;
}

int pt_model_dense1_outer(const PtModel *model, const float **x, const float **dy) {
    if (!model->dense1_grad_deferred) return 0;
    *x = model->act->pool2;
    *dy = model->act->d_drop3;
    return 1;
}
