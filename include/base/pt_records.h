/* pt_records.h: what one small-data trial produces, described once. The table of its scalar
 * columns (name, type, place) drives the results file's trial tables (writer and reader) and the
 * message a worker rank sends the master, so a new column is added here and nowhere else. */
#ifndef PT_RECORDS_H
#define PT_RECORDS_H

#include <stddef.h>
#include <stdint.h>

#include "pt_history.h"
#include "pt_streams.h"
#include "pt_util.h"

/* The data-parallel phases' names ("benchmark", "pretext"), indexed by PtPhaseId. */
extern const char *const pt_phase_names[PT_NUM_PHASES];

/* The two kinds of trial. */
enum { PT_KIND_SUPERVISED = 0, PT_KIND_SELF_SUPERVISED = 1, PT_NUM_KINDS = 2 };
extern const char *const pt_kind_names[PT_NUM_KINDS]; /* "supervised", "self_supervised" */

typedef struct {
    /* scalar columns (pt_trial_columns) */
    int8_t done;              /* 1 when finished and stored */
    int32_t index;            /* trial index within its kind, seed and budget, 0-based */
    uint64_t seed;            /* the trial's own seed (pt_stream_trial / pt_stream_trial_pair) */
    int32_t rank;             /* rank that ran it, -1 if not run */
    double test_loss;         /* NaN until done */
    double test_accuracy;     /* NaN until done */
    double seconds;           /* wall time of the trial, NaN until done */
    uint32_t n_samples;       /* labelled images used (0 until done) */
    uint64_t experiment_seed; /* the experiment seed the trial belongs to */
    int32_t labels;           /* its label budget (trials.labels) */
    /* variable parts */
    uint32_t *sample_indices; /* (n_samples) training-image indices, in draw order */
    PtHistory history;        /* all epochs (downstream: frozen then fine-tune) */
} PtTrialResult;

typedef enum { PT_COL_I8, PT_COL_I32, PT_COL_U32, PT_COL_U64, PT_COL_F64 } PtColumnType;

typedef struct {
    const char *name;         /* dataset name in /trials/<kind>/ */
    PtColumnType type;        /* the field's C type and the file's type */
    size_t offset;            /* of the field in PtTrialResult */
    int since;                /* the results format version that added it (older files lack it) */
} PtColumn;

#define PT_TRIAL_COLUMNS 10
extern const PtColumn pt_trial_columns[PT_TRIAL_COLUMNS];

/* Bytes of one value of a column type. */
size_t pt_column_type_size(PtColumnType type);
/* A column's value in a record, as a double (for messages and printing). */
double pt_column_get(const PtTrialResult *t, const PtColumn *col);

/* A fresh, not-done record (history sized for epochs). */
void pt_trial_init(PtTrialResult *t, int index, int epochs);
void pt_trial_free(PtTrialResult *t);
/* dst = a deep copy of src (dst must be initialised or zeroed; its old contents are freed). */
void pt_trial_copy(PtTrialResult *dst, const PtTrialResult *src);

/* Serialises a record (every column, the sample indices, the history) into buf, which holds at
 * least pt_trial_packed_size(t) bytes; returns the bytes written. Native byte order: for
 * messages between the ranks of one job. */
size_t pt_trial_packed_size(const PtTrialResult *t);
size_t pt_trial_pack(const PtTrialResult *t, unsigned char *buf);
/* The reverse, into an initialised record; -1 with err if the n bytes are not one record. */
int pt_trial_unpack(PtTrialResult *t, const unsigned char *buf, size_t n, PtError *err);

#endif
