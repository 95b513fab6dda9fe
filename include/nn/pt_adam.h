/* pt_adam.h: TensorFlow's Adam over a model's single parameter buffer (docs/keras-semantics.md):
 * one loop over the trainable layers' contiguous tensors, the update itself a kernel of the active
 * kernel set. */
#ifndef PT_ADAM_H
#define PT_ADAM_H

#include <stddef.h>

#include "pt_kernels.h"
#include "pt_model.h"

/* TensorFlow's Adam: lr_t = lr*sqrt(1-b2^t)/(1-b1^t); m += (g-m)(1-b1); v += (g*g-v)(1-b2);
 * w -= lr_t*m/(sqrt(v)+eps). Only tensors of trainable layers are touched; t counts steps. */
typedef struct {
    size_t n;          /* parameter count */
    float *m;          /* (n) */
    float *v;          /* (n) */
    long t;            /* steps taken */
    float lr, beta1, beta2, epsilon;
    const PtKernels *k;  /* the kernel set of the update loops */
} PtAdam;

/* Adam for n parameters with learning rate lr (beta1 0.9, beta2 0.999, epsilon 1e-7, Keras's
 * defaults), running the process's active kernel set. */
void pt_adam_init(PtAdam *adam, size_t n, float lr);
void pt_adam_reset(PtAdam *adam);                       /* m = v = 0, t = 0 (Keras compile()) */
void pt_adam_free(PtAdam *adam);
void pt_adam_step(PtAdam *adam, PtModel *model);
/* The same step restricted to parameters [lo, hi) of the buffer (t still counts the step), e.g. a
 * process that owns that slice of weights shared with others. */
void pt_adam_step_range(PtAdam *adam, PtModel *model, size_t lo, size_t hi);
/* The same with the gradient of each parameter k = grads[0][k] + grads[1][k] + ... (added in that
 * order, never stored), e.g. the gradient buffers of several processes sharing memory
 * (model->grads is not read). */
void pt_adam_step_range_sum(PtAdam *adam, PtModel *model, size_t lo, size_t hi,
                            const float *const *grads, int n_grads);

#endif
