/* history.c: the per-epoch history of a fit (loss, accuracy, val_loss, val_accuracy, seconds). */
#include <stdlib.h>
#include <string.h>

#include "pt_train.h"
#include "pt_util.h"

void pt_history_init(PtHistory *h, int capacity) {
    memset(h, 0, sizeof *h);
    if (capacity < 1) capacity = 1;
    h->capacity = capacity;
    h->loss = pt_calloc((size_t)capacity, sizeof(double));
    h->accuracy = pt_calloc((size_t)capacity, sizeof(double));
    h->val_loss = pt_calloc((size_t)capacity, sizeof(double));
    h->val_accuracy = pt_calloc((size_t)capacity, sizeof(double));
    h->seconds = pt_calloc((size_t)capacity, sizeof(double));
}

void pt_history_free(PtHistory *h) {
    free(h->loss);
    free(h->accuracy);
    free(h->val_loss);
    free(h->val_accuracy);
    free(h->seconds);
    memset(h, 0, sizeof *h);
}

static double *grow(double *a, int old_n, int new_n) {
    double *b = pt_calloc((size_t)new_n, sizeof(double));
    if (a && old_n > 0) memcpy(b, a, (size_t)old_n * sizeof(double));
    free(a);
    return b;
}

void pt_history_append(PtHistory *h, double loss, double acc, double val_loss, double val_acc,
                       double seconds) {
    if (h->capacity == 0) pt_history_init(h, 16);
    if (h->epochs == h->capacity) {
        int cap = h->capacity * 2;
        h->loss = grow(h->loss, h->epochs, cap);
        h->accuracy = grow(h->accuracy, h->epochs, cap);
        h->val_loss = grow(h->val_loss, h->epochs, cap);
        h->val_accuracy = grow(h->val_accuracy, h->epochs, cap);
        h->seconds = grow(h->seconds, h->epochs, cap);
        h->capacity = cap;
    }
    int e = h->epochs++;
    h->loss[e] = loss;
    h->accuracy[e] = acc;
    h->val_loss[e] = val_loss;
    h->val_accuracy[e] = val_acc;
    h->seconds[e] = seconds;
}

void pt_history_extend(PtHistory *dst, const PtHistory *src) {
    for (int e = 0; e < src->epochs; e++)
        pt_history_append(dst, src->loss[e], src->accuracy[e], src->val_loss[e],
                          src->val_accuracy[e], src->seconds[e]);
}
