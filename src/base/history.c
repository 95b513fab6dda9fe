/* history.c: the per-epoch history of a fit and its column table (see pt_history.h). */
#include "pt_history.h"

#include <stdlib.h>
#include <string.h>

#include "pt_util.h"

const PtHistoryColumn pt_history_columns[PT_HISTORY_COLUMNS] = {
    {"loss", offsetof(PtHistory, loss)},
    {"accuracy", offsetof(PtHistory, accuracy)},
    {"val_loss", offsetof(PtHistory, val_loss)},
    {"val_accuracy", offsetof(PtHistory, val_accuracy)},
    {"seconds", offsetof(PtHistory, seconds)},
};

static double **column_slot(PtHistory *h, int c) {
    return (double **)((char *)h + pt_history_columns[c].offset);
}

double *pt_history_column(const PtHistory *h, int c) { return *column_slot((PtHistory *)h, c); }

void pt_history_init(PtHistory *h, int capacity) {
    memset(h, 0, sizeof *h);
    if (capacity < 1) capacity = 1;
    h->capacity = capacity;
    for (int c = 0; c < PT_HISTORY_COLUMNS; c++)
        *column_slot(h, c) = pt_calloc((size_t)capacity, sizeof(double));
}

void pt_history_free(PtHistory *h) {
    for (int c = 0; c < PT_HISTORY_COLUMNS; c++) free(*column_slot(h, c));
    memset(h, 0, sizeof *h);
}

void pt_history_append_row(PtHistory *h, const double row[PT_HISTORY_COLUMNS]) {
    if (h->capacity == 0) pt_history_init(h, 16);
    if (h->epochs == h->capacity) {
        int cap = h->capacity * 2;
        for (int c = 0; c < PT_HISTORY_COLUMNS; c++) {
            double **slot = column_slot(h, c);
            double *grown = pt_calloc((size_t)cap, sizeof(double));
            memcpy(grown, *slot, (size_t)h->epochs * sizeof(double));
            free(*slot);
            *slot = grown;
        }
        h->capacity = cap;
    }
    for (int c = 0; c < PT_HISTORY_COLUMNS; c++) (*column_slot(h, c))[h->epochs] = row[c];
    h->epochs++;
}

void pt_history_append(PtHistory *h, double loss, double acc, double val_loss, double val_acc,
                       double seconds) {
    const double row[PT_HISTORY_COLUMNS] = {loss, acc, val_loss, val_acc, seconds};
    pt_history_append_row(h, row);
}

void pt_history_extend(PtHistory *dst, const PtHistory *src) {
    for (int e = 0; e < src->epochs; e++) {
        double row[PT_HISTORY_COLUMNS];
        for (int c = 0; c < PT_HISTORY_COLUMNS; c++) row[c] = pt_history_column(src, c)[e];
        pt_history_append_row(dst, row);
    }
}

void pt_history_copy(PtHistory *dst, const PtHistory *src) {
    pt_history_free(dst);
    pt_history_init(dst, src->epochs);
    pt_history_extend(dst, src);
}
