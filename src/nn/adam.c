/* adam.c: TensorFlow's Adam over the model's single parameter buffer (docs/keras-semantics.md):
 * lr_t = lr*sqrt(1-b2^t)/(1-b1^t) (double, then float); m += (g-m)(1-b1); v += (g*g-v)(1-b2);
 * w -= lr_t*m/(sqrt(v)+eps), the update being a kernel of the active set. Tensors of frozen
 * layers, and their m and v, are left untouched. A gradient the last backward deferred (dense1's
 * kernel at batch 1, pt_model_defer_dense1_grad) is formed on the fly by adam_update_outer. */
#include "pt_adam.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pt_util.h"

void pt_adam_init(PtAdam *adam, size_t n, float lr) {
    adam->n = n;
    adam->m = pt_aligned_alloc(n * sizeof(float));
    adam->v = pt_aligned_alloc(n * sizeof(float));
    adam->lr = lr;
    adam->beta1 = 0.9f;
    adam->beta2 = 0.999f;
    adam->epsilon = 1e-7f;
    adam->k = pt_kernels_active();
    pt_adam_reset(adam);
}

void pt_adam_reset(PtAdam *adam) {
    memset(adam->m, 0, adam->n * sizeof(float));
    memset(adam->v, 0, adam->n * sizeof(float));
    adam->t = 0;
}

void pt_adam_free(PtAdam *adam) {
    free(adam->m);
    free(adam->v);
    adam->m = adam->v = NULL;
    adam->n = 0;
}

void pt_adam_step(PtAdam *adam, PtModel *model) { pt_adam_step_range(adam, model, 0, model->n_params); }

void pt_adam_step_range(PtAdam *adam, PtModel *model, size_t lo, size_t hi) {
    pt_adam_step_range_sum(adam, model, lo, hi, NULL, 0);
}

void pt_adam_step_range_sum(PtAdam *adam, PtModel *model, size_t lo, size_t hi,
                            const float *const *grads, int n_grads) {
    if (adam->n != model->n_params)
        pt_fatal("adam: built for %zu parameters, model has %zu", adam->n, model->n_params);
    const float *outer_x = NULL, *outer_dy = NULL; /* dense1's deferred gradient, if any */
    size_t outer_lo = 0, outer_hi = 0;
    if (pt_model_dense1_outer(model, &outer_x, &outer_dy)) {
        if (lo != 0 || hi != model->n_params || n_grads > 0)
            pt_fatal("adam: dense1's gradient was deferred, but this step reads stored or summed gradients");
        outer_lo = model->tensors[PT_T_DENSE1_KERNEL].offset;
        outer_hi = outer_lo + model->tensors[PT_T_DENSE1_KERNEL].size;
        model->dense1_grad_deferred = 0; /* consumed by this step */
    }
    adam->t++;
    double t = (double)adam->t;
    double lr_t = (double)adam->lr * sqrt(1.0 - pow((double)adam->beta2, t)) /
                  (1.0 - pow((double)adam->beta1, t));
    float one_minus_b1 = 1.0f - adam->beta1, one_minus_b2 = 1.0f - adam->beta2;
    /* Tensors of one layer are adjacent: update maximal runs of trainable tensors. */
    for (int first = 0; first < PT_NUM_TENSORS;) {
        if (!model->trainable[model->tensors[first].layer]) {
            first++;
            continue;
        }
        int last = first;
        while (last + 1 < PT_NUM_TENSORS && model->trainable[model->tensors[last + 1].layer]) last++;
        size_t off = model->tensors[first].offset;
        size_t end = model->tensors[last].offset + model->tensors[last].size;
        if (off < lo) off = lo; /* the run, clipped to [lo, hi) */
        if (end > hi) end = hi;
        if (outer_x && off <= outer_lo && outer_hi <= end) {
            /* [off, outer_lo) stored, dense1's kernel formed on the fly, then the run's rest */
            adam->k->adam_update(model->params + off, adam->m + off, adam->v + off, model->grads + off,
                                 outer_lo - off, (float)lr_t, one_minus_b1, one_minus_b2, adam->epsilon);
            adam->k->adam_update_outer(model->params + outer_lo, adam->m + outer_lo, adam->v + outer_lo,
                                       outer_x, outer_dy, PT_FLAT, PT_HIDDEN, (float)lr_t, one_minus_b1,
                                       one_minus_b2, adam->epsilon);
            off = outer_hi;
        }
        if (off < end && n_grads > 0)
            adam->k->adam_update_sum(model->params + off, adam->m + off, adam->v + off, grads, n_grads, off,
                            end - off, (float)lr_t, one_minus_b1, one_minus_b2, adam->epsilon);
        else if (off < end)
            adam->k->adam_update(model->params + off, adam->m + off, adam->v + off, model->grads + off,
                        end - off, (float)lr_t, one_minus_b1, one_minus_b2, adam->epsilon);
        first = last + 1;
    }
}
