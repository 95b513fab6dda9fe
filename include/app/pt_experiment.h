/* pt_experiment.h: the experiment of session5.Rmd as one MPI job, once the command line is read
 * and the output file is prepared (cmd_run.c):
 *
 *   1. the data-parallel phases, in the order of a table (the supervised benchmark, then the
 *      rotation pretext model), each trained over all ranks unless the results file already
 *      holds it, checkpointed after every epoch;
 *   2. the transfer: the pretext weights (identical on every rank) start every downstream trial;
 *   3. the small-data trials of both kinds, spread over the ranks by the scheduler (pt_scheduler.h),
 *      longest first, each finished trial recorded and saved by rank 0.
 *
 * Every result depends only on the seed and its stream's coordinates (pt_streams.h), so the trial
 * results do not depend on the number of ranks or on which rank ran them. */
#ifndef PT_EXPERIMENT_H
#define PT_EXPERIMENT_H

#include <stdint.h>

#include "pt_config.h"
#include "pt_data.h"
#include "pt_fit.h"
#include "pt_model.h"
#include "pt_records.h"
#include "pt_results.h"

typedef struct {
    PtConfig cfg;
    char out_path[4096];                       /* the results file */
    char weights_path[PT_NUM_PHASES][4096];    /* each phase's Keras weights file */
    long stop_after_trials;                    /* test-only: hand out no more trials after this many */
    long stop_after_epochs;                    /* test-only: stop (as on a signal) after this many
                                                  phase epochs in this run, each checkpointed */
    long epochs_run;                           /* phase epochs completed in this run */
    PtDist world;
    PtDataset ds;
    uint32_t n_train;                          /* training images used */
    uint32_t *identity;                        /* (max(n_train, n_test)) 0, 1, 2, ... */
    uint8_t *rotations[2];                     /* (train n), (test n): the pretext pseudo-labels */
    PtResults results;                         /* rank 0 only: everything, as in the file */
    PtModel *trial_init[PT_NUM_KINDS];         /* starting weights of every trial of a kind */
    double trials_start;
    int trials_total, trials_done_now, trials_done_before;
} PtExperiment;

/* Draws the rotation pseudo-labels (every rank) and runs phases, transfer and trials. Returns
 * PT_FIT_OK when everything is done, PT_FIT_INTERRUPTED (resumable) or PT_FIT_DIVERGED (an
 * error), the same on every rank. Collective. */
int pt_experiment_run(PtExperiment *ex);

/* Rank 0: writes the results file; a failure (full disk, removed folder) ends the job with the
 * previous file intact. */
void pt_experiment_save(PtExperiment *ex);

/* The seed of trial index of a kind (its row's `seed` column). */
uint64_t pt_experiment_trial_seed(const PtConfig *cfg, int kind, int index);

#endif
