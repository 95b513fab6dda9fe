/* pt_results.h: everything a run produces, held in memory on rank 0 and written to ONE HDF5 file
 * after each finished phase or trial. Every save writes the whole file to "<path>.tmp", flushes
 * it to disk and renames it over <path>, so a kill at any moment leaves either the previous or
 * the new complete file, never a broken one. The same file is read back to resume a run.
 * Layout: docs/results-format.md. */
#ifndef PT_RESULTS_H
#define PT_RESULTS_H

#include <stdint.h>

#include "pt_config.h"
#include "pt_history.h"
#include "pt_model.h"
#include "pt_records.h"

#define PT_RESULTS_FORMAT_VERSION 1

/* A data-parallel phase: "benchmark" (10 classes) or "pretext" (4 classes). */
typedef struct {
    int done;                 /* 1 when finished and stored */
    PtHistory history;
    double test_loss, test_accuracy;
    double seconds;           /* wall time of the phase */
    int n_classes;
    float *weights;           /* (n_params) in pt_tensor_layout(n_classes) order, or NULL */
    uint32_t n_train_labels;  /* pretext only: length of train_labels (0 otherwise) */
    uint8_t *train_labels;    /* (n_train_labels) the pseudo-labels (quarter turns) of the training
                                 images, or NULL; stored as /pretext/train_rotations */
    uint32_t n_test_labels;
    uint8_t *test_labels;     /* (n_test_labels) as /pretext/test_rotations, or NULL */
    /* Checkpoint of an unfinished phase (done = 0), rewritten after every epoch and read back on
     * resume, stored as /checkpoint/<phase>; history above holds its epochs. */
    int ckpt_epochs;          /* epochs completed; 0: no checkpoint */
    int ckpt_adam_t;          /* Adam's step count t */
    double ckpt_seconds;      /* wall time of the phase so far */
    float *ckpt_weights;      /* (n_params) weights after ckpt_epochs epochs */
    float *ckpt_adam_m;       /* (n_params) Adam's first moments */
    float *ckpt_adam_v;       /* (n_params) Adam's second moments */
} PtPhaseResult;

typedef struct {
    /* provenance */
    char version[64], git_commit[64], build_flags[256], blas[256], mpi_library[256];
    char kernels[32];         /* the kernel set that ran ("" in files before it was recorded) */
    char cpu[256];            /* rank 0's CPU model ("" likewise) */
    int mpi_size;
    char hosts[4096];         /* comma-separated distinct host names */
    char start_time[64], end_time[64];  /* ISO 8601 UTC; end_time "" until complete */
    char data_files[4][4096]; /* paths */
    char data_sha256[4][65];  /* hex */
    int complete;             /* 1 when every phase and trial is done */
    /* content */
    PtConfig config;
    PtPhaseResult phase[PT_NUM_PHASES]; /* indexed by PtPhaseId: benchmark, pretext */
    int n_trials[PT_NUM_KINDS];
    PtTrialResult *trials[PT_NUM_KINDS]; /* (n_trials[kind]) */
} PtResults;

/* Drops a phase's checkpoint (when the phase completes, or starts over). */
void pt_phase_checkpoint_clear(PtPhaseResult *p);

/* Empty results sized for cfg (trial arrays allocated, nothing done). */
void pt_results_init(PtResults *r, const PtConfig *cfg);
void pt_results_free(PtResults *r);

/* Atomic write of the whole file (see above). Returns -1 with err naming the path and cause
 * (no space left, permission, missing folder); the previous file is then untouched. */
int pt_results_save(const PtResults *r, const char *path, PtError *err);

/* Reads a file written by pt_results_save. Rejects with a clear message: missing file, not
 * HDF5, truncated, an HDF5 file pretext did not write, a newer format version. */
int pt_results_load(const char *path, PtResults *r, PtError *err);

/* Checks that a loaded file's configuration equals cfg in every key that affects results;
 * the message lists each differing key with both values and suggests --force. */
int pt_results_check_config(const PtResults *r, const PtConfig *cfg, const char *path, PtError *err);

/* Whether path is writable for results: the folder exists and is writable, path is not a folder.
 * Creates nothing permanent. */
int pt_results_check_writable(const char *path, PtError *err);

#endif
