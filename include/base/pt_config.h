/* pt_config.h: the experiment's configuration: defaults (the seed's experiment exactly), INI
 * files ([section] key = value), section.key=value overrides, validation with messages that
 * name the file, line and key, and the canonical text stored with the results. */
#ifndef PT_CONFIG_H
#define PT_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pt_util.h"

#define PT_MAX_SEEDS 256   /* experiment.seeds */
#define PT_MAX_BUDGETS 32  /* trials.labels */

/* A list of experiment seeds ("1,2,3", "1-5", "1-3,10"). */
typedef struct {
    int n;
    uint64_t v[PT_MAX_SEEDS];
} PtSeedList;

/* A list of whole numbers ("50,100,150"). */
typedef struct {
    int n;
    int v[PT_MAX_BUDGETS];
} PtIntList;

typedef struct {
    /* [data] */
    char data_dir[4096];            /* dir: folder with the four IDX files ("" = default search) */
    uint32_t train_images;          /* train_images: use only the first N training images; 0 = all */
    /* [experiment] */
    uint64_t seed;                  /* seed: base of every random stream (one run) */
    PtSeedList seeds;               /* seeds: several seeds in one job (a study); empty: seed */
    double learning_rate;           /* learning_rate: Adam's lr (0.001) */
    double validation_split;        /* validation_split: Keras's validation_split (0.2) */
    /* [benchmark] */
    int benchmark_enabled;          /* enabled: train the supervised benchmark (true) */
    char benchmark_from[4096];      /* from: take the phase from this earlier results file ("": train) */
    int benchmark_epochs;           /* epochs (10) */
    int benchmark_batch_size;       /* batch_size (64) */
    /* [pretext] */
    int pretext_epochs;             /* epochs (10) */
    int pretext_batch_size;         /* batch_size (64) */
    char pretext_from[4096];        /* from: take the phase from this earlier results file ("": train) */
    /* [trials] */
    int trials_supervised;          /* supervised: number of supervised small-data trials (20) */
    int trials_self_supervised;     /* self_supervised: number of downstream trials (20) */
    PtIntList trials_labels;        /* labels: labelled images per trial (150), or several budgets */
    int trials_paired;              /* paired: trial i of both kinds shares images, head init, streams */
    int trials_epochs;              /* epochs: epochs of a supervised trial (10) */
    int trials_batch_size;          /* batch_size (1) */
    /* [downstream] */
    int downstream_frozen_epochs;   /* frozen_epochs: epochs with conv layers frozen (10) */
    int downstream_finetune_epochs; /* finetune_epochs: epochs after unfreezing (10) */
    char downstream_transfer[32];   /* transfer: "conv+dense" (weights[[1..6]], the seed) or "conv" */
    /* [run] */
    int run_threads;                /* threads: BLAS threads per rank (1) */
    char run_gradient_sum[16];      /* gradient_sum: "auto" (shared memory within nodes) or "mpi" */
    char run_kernels[16];           /* kernels: "auto" (the best the CPUs support), avx512, avx2, generic */
    char run_phase_groups[16];      /* phase_groups: "auto" (cost model) or how many groups of ranks
                                       train the seeds' phases at once */
} PtConfig;

/* The seed's experiment. */
void pt_config_defaults(PtConfig *cfg);

/* Reads an INI file over cfg. Rejects (returns -1, err names file:line and key): syntax errors,
 * unknown sections or keys, a key given twice, values of the wrong type or out of range. */
int pt_config_load_file(PtConfig *cfg, const char *path, PtError *err);

/* Applies one "section.key=value" override (origin names where it came from, e.g.
 * "command line"). Same checks as the file. */
int pt_config_set(PtConfig *cfg, const char *assignment, const char *origin, PtError *err);

/* Checks relations between keys (e.g. labels <= training images available, a validation split
 * that leaves at least one training example). n_train_available: training images in the data
 * folder, or 0 if not known yet. */
int pt_config_validate(const PtConfig *cfg, uint32_t n_train_available, PtError *err);

/* Number of keys, and key i as "section.key" with its current value as text. */
int pt_config_key_count(void);
const char *pt_config_key_name(int i);
void pt_config_key_value(const PtConfig *cfg, int i, char *buf, size_t n);
/* Whether key i changes results (run.threads does not): used to decide if a resume is allowed. */
int pt_config_key_affects_results(int i);

/* The run's experiment seeds: experiment.seeds if given, else experiment.seed alone. Returns
 * their count (>= 1); out holds PT_MAX_SEEDS values. */
int pt_config_seed_list(const PtConfig *cfg, uint64_t *out);

/* run.phase_groups as a number: 0 for "auto", else the count. */
int pt_config_phase_groups(const PtConfig *cfg);

/* Writes the effective configuration as an INI text (loadable by pt_config_load_file). */
void pt_config_write_ini(const PtConfig *cfg, FILE *out);

#endif
