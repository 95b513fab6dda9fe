/* records.c: the trial record's column table, deep copies and the byte message that carries a
 * record from a worker rank to the master (see pt_records.h). */
#include "pt_records.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const pt_phase_names[PT_NUM_PHASES] = {"benchmark", "pretext"};
const char *const pt_kind_names[PT_NUM_KINDS] = {"supervised", "self_supervised"};

const PtColumn pt_trial_columns[PT_TRIAL_COLUMNS] = {
    {"index", PT_COL_I32, offsetof(PtTrialResult, index), 1},
    {"done", PT_COL_I8, offsetof(PtTrialResult, done), 1},
    {"seed", PT_COL_U64, offsetof(PtTrialResult, seed), 1},
    {"rank", PT_COL_I32, offsetof(PtTrialResult, rank), 1},
    {"test_loss", PT_COL_F64, offsetof(PtTrialResult, test_loss), 1},
    {"test_accuracy", PT_COL_F64, offsetof(PtTrialResult, test_accuracy), 1},
    {"seconds", PT_COL_F64, offsetof(PtTrialResult, seconds), 1},
    {"n_samples", PT_COL_U32, offsetof(PtTrialResult, n_samples), 1},
    {"experiment_seed", PT_COL_U64, offsetof(PtTrialResult, experiment_seed), 2},
    {"labels", PT_COL_I32, offsetof(PtTrialResult, labels), 2},
};

size_t pt_column_type_size(PtColumnType type) {
    switch (type) {
    case PT_COL_I8: return 1;
    case PT_COL_I32: return 4;
    case PT_COL_U32: return 4;
    case PT_COL_U64: return 8;
    case PT_COL_F64: return 8;
    }
    return 0;
}

double pt_column_get(const PtTrialResult *t, const PtColumn *col) {
    const char *p = (const char *)t + col->offset;
    switch (col->type) {
    case PT_COL_I8: return *(const int8_t *)p;
    case PT_COL_I32: return *(const int32_t *)p;
    case PT_COL_U32: return *(const uint32_t *)p;
    case PT_COL_U64: return (double)*(const uint64_t *)p;
    case PT_COL_F64: return *(const double *)p;
    }
    return NAN;
}

void pt_trial_init(PtTrialResult *t, int index, int epochs) {
    memset(t, 0, sizeof *t);
    t->index = index;
    t->rank = -1;
    t->test_loss = t->test_accuracy = t->seconds = NAN;
    pt_history_init(&t->history, epochs);
}

void pt_trial_free(PtTrialResult *t) {
    free(t->sample_indices);
    pt_history_free(&t->history);
    t->sample_indices = NULL;
}

void pt_trial_copy(PtTrialResult *dst, const PtTrialResult *src) {
    PtHistory history = dst->history;
    free(dst->sample_indices);
    *dst = *src;
    dst->history = history;
    dst->sample_indices = NULL;
    if (src->n_samples > 0) {
        dst->sample_indices = pt_malloc(src->n_samples * sizeof(uint32_t));
        memcpy(dst->sample_indices, src->sample_indices, src->n_samples * sizeof(uint32_t));
    }
    pt_history_copy(&dst->history, &src->history);
}

/* Message layout: the columns' raw bytes in table order, int32 epochs, the sample indices, then
 * each history column's epochs doubles. */
size_t pt_trial_packed_size(const PtTrialResult *t) {
    size_t n = sizeof(int32_t);
    for (int c = 0; c < PT_TRIAL_COLUMNS; c++) n += pt_column_type_size(pt_trial_columns[c].type);
    n += (size_t)t->n_samples * sizeof(uint32_t);
    n += (size_t)t->history.epochs * PT_HISTORY_COLUMNS * sizeof(double);
    return n;
}

size_t pt_trial_pack(const PtTrialResult *t, unsigned char *buf) {
    unsigned char *p = buf;
    for (int c = 0; c < PT_TRIAL_COLUMNS; c++) {
        size_t size = pt_column_type_size(pt_trial_columns[c].type);
        memcpy(p, (const char *)t + pt_trial_columns[c].offset, size);
        p += size;
    }
    int32_t epochs = t->history.epochs;
    memcpy(p, &epochs, sizeof epochs);
    p += sizeof epochs;
    if (t->n_samples > 0) memcpy(p, t->sample_indices, t->n_samples * sizeof(uint32_t));
    p += t->n_samples * sizeof(uint32_t);
    for (int c = 0; c < PT_HISTORY_COLUMNS; c++) {
        if (epochs > 0) memcpy(p, pt_history_column(&t->history, c), (size_t)epochs * sizeof(double));
        p += (size_t)epochs * sizeof(double);
    }
    return (size_t)(p - buf);
}

int pt_trial_unpack(PtTrialResult *t, const unsigned char *buf, size_t n, PtError *err) {
    size_t fixed = sizeof(int32_t);
    for (int c = 0; c < PT_TRIAL_COLUMNS; c++) fixed += pt_column_type_size(pt_trial_columns[c].type);
    if (n < fixed) return pt_error_set(err, "trial message of %zu bytes is shorter than its %zu fixed bytes", n, fixed);
    PtTrialResult r;
    memset(&r, 0, sizeof r);
    const unsigned char *p = buf;
    for (int c = 0; c < PT_TRIAL_COLUMNS; c++) {
        size_t size = pt_column_type_size(pt_trial_columns[c].type);
        memcpy((char *)&r + pt_trial_columns[c].offset, p, size);
        p += size;
    }
    int32_t epochs;
    memcpy(&epochs, p, sizeof epochs);
    p += sizeof epochs;
    if (epochs < 0 || fixed + (size_t)r.n_samples * sizeof(uint32_t) +
                              (size_t)epochs * PT_HISTORY_COLUMNS * sizeof(double) != n)
        return pt_error_set(err, "trial message of %zu bytes does not match its %u samples and %d epochs",
                            n, r.n_samples, epochs);
    pt_trial_free(t);
    *t = r;
    t->sample_indices = NULL;
    if (r.n_samples > 0) {
        t->sample_indices = pt_malloc(r.n_samples * sizeof(uint32_t));
        memcpy(t->sample_indices, p, r.n_samples * sizeof(uint32_t));
    }
    p += r.n_samples * sizeof(uint32_t);
    pt_history_init(&t->history, epochs);
    for (int e = 0; e < epochs; e++) {
        double row[PT_HISTORY_COLUMNS];
        for (int c = 0; c < PT_HISTORY_COLUMNS; c++)
            memcpy(&row[c], p + ((size_t)c * (size_t)epochs + (size_t)e) * sizeof(double), sizeof(double));
        pt_history_append_row(&t->history, row);
    }
    return 0;
}
