/* pt_fit.h: Keras-like fit and evaluate over a view of the data, on one process or
 * data-parallel over the ranks of a communicator (each global batch split over the ranks,
 * gradients summed over the ranks (pt_gradsync.h), identical Adam steps everywhere). */
#ifndef PT_FIT_H
#define PT_FIT_H

#include <mpi.h>
#include <stdint.h>

#include "pt_adam.h"
#include "pt_data.h"
#include "pt_history.h"
#include "pt_model.h"

/* The examples given to fit or evaluate, in the order of Keras's x array: example i is image
 * images->pixels[indices[i]] (rotated by rotations[indices[i]] quarter turns if rotations is not
 * NULL) with label labels[indices[i]]. */
typedef struct {
    const PtImages *images;
    const uint8_t *labels;     /* indexed by image index */
    const uint8_t *rotations;  /* NULL, or quarter turns indexed by image index */
    const uint32_t *indices;   /* (n) */
    uint32_t n;
} PtView;

/* Where fit and evaluate run: size 1 (no MPI calls) or data-parallel over comm. */
typedef struct {
    MPI_Comm comm;
    int rank;
    int size;
} PtDist;

PtDist pt_dist_local(void);           /* one process, no communication */
PtDist pt_dist_world(MPI_Comm comm);  /* all ranks of comm */

/* How pt_fit trains. Start from pt_fit_config_defaults() and set fields by name. */
typedef struct {
    int epochs;                   /* epochs to reach (counting first_epoch's) */
    int batch_size;               /* the GLOBAL batch size */
    double validation_split;      /* Keras: the last fraction of the view validates; 0 = none */
    uint64_t seed;                /* the fit's stream (pt_streams.h): shuffles from
                                     pt_stream_epoch_shuffle, dropout from pt_stream_step_dropout */
    int eval_batch_size;          /* batch size of the validation pass (numerically irrelevant) */
    const char *phase;            /* name used in progress lines and error messages */
    int verbose;                  /* 1: a Keras-like line per epoch on rank 0 (and, data-parallel,
                                     which gradient sum runs) */
    int gradient_sum;             /* PT_GRADSUM_AUTO or PT_GRADSUM_MPI (pt_gradsync.h) */
    int first_epoch;              /* 0, or the epochs already done (resuming from a checkpoint:
                                     model, Adam state and history as they were after them) */
    /* If set, called on every rank after each completed epoch with the number of epochs done;
     * the model's weights and the Adam state (m, v, t) are then complete on rank 0 (a
     * checkpoint). Collective: every rank calls it at the same point. */
    void (*on_epoch)(void *ctx, int epochs_done, const PtModel *model, const PtAdam *adam,
                     const PtHistory *hist);
    void *on_epoch_ctx;
    /* If set, called on this process once per training step, before it (rank 0 answers the
     * other ranks' messages there while it trains a trial itself). */
    void (*on_step)(void *ctx);
    void *on_step_ctx;
} PtFitConfig;

/* One epoch, batch 32, no validation, seed 0, evaluation batch 64, phase "fit", quiet, automatic
 * gradient sum, from the start, no callbacks. */
PtFitConfig pt_fit_config_defaults(void);

/* Result of pt_fit. */
enum { PT_FIT_OK = 0, PT_FIT_DIVERGED = 1, PT_FIT_INTERRUPTED = 2 };

/* Trains model with adam for cfg->epochs epochs, appending to hist. Every rank must call it with
 * the same arguments (data, config, initial weights): the global batch of each step is split
 * over the ranks in contiguous slices. Stops early with PT_FIT_DIVERGED (a non-finite loss,
 * reported with phase, epoch and step) or PT_FIT_INTERRUPTED (pt_stop_requested() became true;
 * checked collectively once per step, so every rank stops at the same step). */
int pt_fit(PtModel *model, PtAdam *adam, const PtView *data, const PtFitConfig *cfg,
           const PtDist *dist, PtHistory *hist);

/* Mean loss and accuracy of the model on view in inference mode; with dist->size > 1 the view
 * is split over the ranks and the sums reduced, every rank gets the result. */
void pt_evaluate(PtModel *model, const PtView *data, int batch_size, const PtDist *dist,
                 double *loss, double *accuracy);

#endif
