/* pt_history.h: the per-epoch history of a fit, as Keras's fit() returns it plus wall seconds,
 * and the table of its columns (name and place), which the results writer and reader and the
 * trial messages between ranks all use, so a column is named in exactly one place. */
#ifndef PT_HISTORY_H
#define PT_HISTORY_H

#include <stddef.h>

typedef struct {
    int epochs;            /* entries filled */
    int capacity;          /* entries allocated */
    double *loss;          /* (capacity) running mean over the epoch's batches, dropout active */
    double *accuracy;      /* (capacity) */
    double *val_loss;      /* (capacity) validation part, inference mode, end of epoch */
    double *val_accuracy;  /* (capacity) */
    double *seconds;       /* (capacity) wall time of the epoch including validation */
} PtHistory;

/* The columns, in this order everywhere (files, messages, pt_history_append's arguments). */
#define PT_HISTORY_COLUMNS 5
typedef struct {
    const char *name;      /* dataset name in the results file, e.g. "val_loss" */
    size_t offset;         /* of the column's double * in PtHistory */
} PtHistoryColumn;
extern const PtHistoryColumn pt_history_columns[PT_HISTORY_COLUMNS];

/* Column c of h: (h->capacity) doubles, the first h->epochs filled. */
double *pt_history_column(const PtHistory *h, int c);

void pt_history_init(PtHistory *h, int capacity);
void pt_history_free(PtHistory *h);
/* Appends one epoch (grows when needed). */
void pt_history_append(PtHistory *h, double loss, double acc, double val_loss, double val_acc,
                       double seconds);
/* The same with the values in column order. */
void pt_history_append_row(PtHistory *h, const double row[PT_HISTORY_COLUMNS]);
/* Appends all epochs of src to dst (the downstream trial's two fits make one history). */
void pt_history_extend(PtHistory *dst, const PtHistory *src);
/* dst = a copy of src (dst is freed first; both must be initialised or zeroed). */
void pt_history_copy(PtHistory *dst, const PtHistory *src);

#endif
