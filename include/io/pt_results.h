/* pt_results.h: everything a run produces, held in memory on rank 0 and written to ONE HDF5 file
 * after each epoch of a phase and each finished trial. Every save builds the whole file in
 * memory, writes it to a unique temporary file beside it, flushes it to disk and renames it over
 * <path>, so a kill at any moment leaves either the previous or the new complete file, never a
 * broken one. The same file is read back to resume a run (format 2, and format 1 of earlier
 * versions). A run may hold several experiment seeds, each with its own phases, and several label
 * budgets; every trial row names its seed and budget. Layout: docs/results-format.md. */
#ifndef PT_RESULTS_H
#define PT_RESULTS_H

#include <stdint.h>

#include "pt_config.h"
#include "pt_history.h"
#include "pt_model.h"
#include "pt_records.h"

#define PT_RESULTS_FORMAT_VERSION 2

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

/* One seed's data-parallel phases. */
typedef struct {
    uint64_t seed;                       /* the experiment seed */
    PtPhaseResult phase[PT_NUM_PHASES];  /* indexed by PtPhaseId: benchmark, pretext */
} PtSeedPhases;

/* One run segment: one invocation of `pretext run` that wrote the file (a resumed run adds one).
 * /provenance/segments holds one row per segment. */
typedef struct {
    char start_time[64];      /* ISO 8601 UTC */
    char end_time[64];        /* its last save */
    char status[16];          /* "running" (still, or it was killed: end_time is its last save),
                                 "complete", "interrupted" (resumable), "error" */
    char hosts[4096];         /* comma-separated distinct host names */
    int mpi_size;
    char version[64], git_commit[64], build_flags[256], blas[256], mpi_library[256];
    char kernels[32];         /* the kernel set that ran */
    char cpu[256];            /* rank 0's CPU model */
    char data_sha256[4][65];  /* the data it read */
    int phase_groups;         /* the phase groups it trained in (0: not recorded, files before it) */
} PtSegment;

typedef struct {
    int complete;             /* 1 when every phase and trial is done */
    char start_time[64];      /* ISO 8601 UTC: the first segment's start */
    char end_time[64];        /* completion ("" until complete) */
    char data_files[4][4096]; /* paths of the latest segment's data */
    char data_sha256[4][65];  /* hex: the data's identity, the same in every segment */
    int data_classes;         /* classes in the data's labels (0 in files before it was recorded) */
    int n_segments;
    PtSegment *segments;      /* (n_segments) oldest first; the last one is the current run's */
    PtConfig config;
    int n_seeds;
    PtSeedPhases *seeds;      /* (n_seeds) in the order of pt_config_seed_list */
    int n_budgets;
    int budgets[PT_MAX_BUDGETS];         /* trials.labels, in order */
    int per_cell[PT_NUM_KINDS];          /* trials of a kind per (seed, budget) */
    int n_trials[PT_NUM_KINDS];          /* n_seeds * n_budgets * per_cell[kind] */
    PtTrialResult *trials[PT_NUM_KINDS]; /* (n_trials[kind]) row pt_results_row(...) */
} PtResults;

/* The row of trial index i of a kind for seed index s and budget index b. */
int pt_results_row(const PtResults *r, int kind, int s, int b, int i);
/* Appends an empty segment (the current run's) and returns it. */
PtSegment *pt_results_add_segment(PtResults *r);
/* The index of an experiment seed in r->seeds, or -1. */
int pt_results_seed_index(const PtResults *r, uint64_t seed);

/* Drops a phase's checkpoint (when the phase completes, or starts over). */
void pt_phase_checkpoint_clear(PtPhaseResult *p);

/* Empty results sized for cfg: a phase pair per seed, the trial rows of every seed, budget and
 * kind (index, experiment_seed and labels filled; trial seeds 0: the caller sets them), nothing
 * done, no segment. */
void pt_results_init(PtResults *r, const PtConfig *cfg);
void pt_results_free(PtResults *r);

/* Atomic write of the whole file (see above). Returns -1 with err naming the path and cause
 * (no space left, permission, missing folder); the previous file is then untouched. */
int pt_results_save(const PtResults *r, const char *path, PtError *err);

/* Reads a file written by pt_results_save (format 2, or format 1 of earlier versions: one seed,
 * one budget, one segment rebuilt from its provenance). Rejects with a clear message: missing
 * file, not HDF5, truncated, an HDF5 file pretext did not write, a newer format version, tables
 * that do not match the file's configuration. */
int pt_results_load(const char *path, PtResults *r, PtError *err);

/* Checks that a loaded file's configuration equals cfg in every key that affects results;
 * the message lists each differing key with both values and suggests --force. */
int pt_results_check_config(const PtResults *r, const PtConfig *cfg, const char *path, PtError *err);
/* Checks that a loaded file was computed from the same data (SHA-256 of the four files, whatever
 * their paths): the message names both sets of files and the first difference. */
int pt_results_check_data(const PtResults *r, const char files[4][4096], const char sha256[4][65],
                          const char *path, PtError *err);
/* The configuration keys a phase's result depends on (its data, learning rate, split, its own
 * epochs and batch size), compared between two configurations for reusing a phase
 * (benchmark.from / pretext.from); -1 with err naming the first difference. */
int pt_results_check_phase_config(const PtConfig *a, const PtConfig *b, PtPhaseId phase, const char *path,
                                  PtError *err);

/* Whether path is writable for results: the folder exists and is writable, path is not a folder.
 * Creates nothing permanent. */
int pt_results_check_writable(const char *path, PtError *err);

#endif
