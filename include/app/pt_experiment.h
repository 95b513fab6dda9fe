/* pt_experiment.h: the experiment of session5.Rmd as one MPI job, for one seed or a study of
 * several seeds and label budgets, once the command line is read and the output file is prepared
 * (cmd_run.c):
 *
 *   1. the data-parallel phases of every seed (the supervised benchmark, then the rotation pretext
 *      model), in the order of a table: all ranks train the seeds one after another, or the ranks
 *      split into groups (run.phase_groups, or a cost model) that train different seeds at once,
 *      each group data-parallel; every phase is checkpointed after each epoch;
 *   2. the transfer: each seed's pretext weights start that seed's self-supervised trials;
 *   3. the small-data trials of every (seed, budget, kind, index), spread over the ranks by the
 *      scheduler (pt_scheduler.h), longest first; a rank whose group has finished its phases
 *      starts on trials at once, and a self-supervised trial starts as soon as its seed's pretext
 *      model exists. Rank 0 records every finished phase and trial and saves the file.
 *
 * Every result depends only on the seed and its stream's coordinates (pt_streams.h), so a trial's
 * result does not depend on the number of ranks, the grouping, or which rank ran it (for equal
 * phase weights). experiment.c holds the phases and the orchestration, trials.c the trials,
 * phase_groups.c the cost model. */
#ifndef PT_EXPERIMENT_H
#define PT_EXPERIMENT_H

#include <stdint.h>

#include "pt_config.h"
#include "pt_data.h"
#include "pt_fit.h"
#include "pt_model.h"
#include "pt_records.h"
#include "pt_results.h"
#include "pt_scheduler.h"

/* Switches for the tests only, all in one place (command-line options --test-*). */
typedef struct {
    long stop_after_trials;  /* hand out no more trials after this many (-1: no limit) */
    long stop_after_epochs;  /* stop as on a signal after this many phase epochs of this rank's
                                group in this run, each checkpointed (-1: never) */
    int exit_rank;           /* this rank (-1: none) ends with exit_status instead of its own, */
    int exit_status;         /*   to exercise how the ranks' statuses combine */
} PtTestSwitches;

typedef struct {
    PtConfig cfg;
    char out_path[4096];                    /* the results file */
    char weights_stem[4096];                /* out_path without ".h5": stem of the Keras files */
    PtTestSwitches test;
    PtDist world;
    PtDataset ds;
    uint32_t n_train;                       /* training images used */
    uint32_t *identity;                     /* (max(n_train, n_test)) 0, 1, 2, ... */
    int n_seeds;
    uint64_t seeds[PT_MAX_SEEDS];           /* the experiment seeds, in order */
    /* the phases' groups of ranks */
    int n_groups;                           /* groups training phases at once (>= 1) */
    int group;                              /* this rank's group: it trains the phase units u (see
                                             * pt_experiment_phase_units) with u % n_groups == group */
    PtDist group_dist;                      /* the group's ranks (the world when n_groups == 1) */
    int *group_leader;                      /* (n_groups) world rank of each group's first rank */
    long epochs_run;                        /* phase epochs this rank's group completed in this run */
    PtScheduler *sched;                     /* the trial queue; rank 0 answers it during its phases */
    /* rank 0 only */
    PtResults results;                      /* everything, as in the file */
    int group_phases_done_count;            /* groups whose phases are over (done or stopped) */
    int *group_phases_over;                 /* (n_groups) 1 once a group reported its phases over */
    int phases_failed, phases_stopped;      /* a phase diverged / was interrupted somewhere */
    double trials_start;
    int trials_total, trials_done_now, trials_done_before;
    /* rank 0, for the time-left estimate: trial work (trial_cost units) left and done in this
     * segment, and the seconds the done trials took */
    double trials_work_left, trials_work_done, trials_seconds_done;
    /* every rank: the transferred tensors of seeds' pretext models it has received */
    float **pretext_weights;                /* (n_seeds) NULL until needed, else (pretext_params) */
    size_t pretext_params;                  /* parameters of the 4-class pretext model */
    int64_t *sent_seeds;                    /* rank 0: (world size) bit s: seed s's weights sent */
} PtExperiment;

/* Runs phases, transfer and trials (every rank). Returns PT_FIT_OK when everything is done,
 * PT_FIT_INTERRUPTED (resumable) or PT_FIT_DIVERGED (an error), the same on every rank.
 * Collective. */
int pt_experiment_run(PtExperiment *ex);

/* Rank 0: writes the results file (the current segment's end time updated first); a failure
 * (full disk, removed folder) ends the job with the previous file intact. */
void pt_experiment_save(PtExperiment *ex);

/* The seed of trial `index` of a kind for experiment seed s (its row's `seed` column): the
 * kind's own stream, or with trials.paired the pair's stream that both kinds share. */
uint64_t pt_experiment_trial_seed(const PtConfig *cfg, uint64_t experiment_seed, int kind, int index);

/* ---- shared by experiment.c, trials.c and phase_groups.c ---- */

/* The trial queue's callbacks and tasks: builds them (rank 0: every trial not done, longest
 * first) and creates ex->sched. Collective only in that every rank calls it. */
void pt_trials_prepare(PtExperiment *ex);
/* Rank 0: an event from another group's first rank (a phase's checkpoint or result, or that its
 * phases are over): recorded; the scheduler then hands out what became ready. */
void pt_experiment_on_event(PtExperiment *ex, int rank, const unsigned char *msg, size_t len);
/* Runs the queue to its end (every rank); returns PT_FIT_*. */
int pt_trials_run(PtExperiment *ex);
void pt_trials_free(PtExperiment *ex);

/* How many groups of ranks train the phases: run.phase_groups (at most the phase units and the
 * ranks), or the cost model's choice (docs/performance.md), which measures the step and allreduce
 * costs it needs on the spot. Writes one line per candidate into the log on rank 0. Collective. */
int pt_phase_groups_choose(PtExperiment *ex);

/* Whether the config trains phase p (the pretext phase always; the benchmark unless disabled). */
int pt_experiment_phase_wanted(const PtConfig *cfg, PtPhaseId p);
/* The phase units of a run: n_seeds times the phases the config trains (benchmark and pretext,
 * or pretext alone). Unit u = seed index * (phases per seed) + the phase's index among them. */
int pt_experiment_phase_units(const PtConfig *cfg, int n_seeds);
/* The group (of n_groups) that trains seed index s's phase p: its unit modulo n_groups. */
int pt_experiment_phase_group(const PtConfig *cfg, int s, PtPhaseId p, int n_groups);

/* The Keras weights file of seed index s's phase. */
void pt_experiment_weights_path(const PtExperiment *ex, int s, PtPhaseId phase, char *buf, size_t n);

#endif
