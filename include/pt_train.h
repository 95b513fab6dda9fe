/* pt_train.h: Keras-like fit and evaluate over a view of the data, on one process or
 * data-parallel over the ranks of a communicator (each global batch split over the ranks,
 * gradients summed with one MPI_Allreduce, identical Adam steps everywhere). */
#ifndef PT_TRAIN_H
#define PT_TRAIN_H

#include <mpi.h>
#include <stdint.h>

#include "pt_data.h"
#include "pt_model.h"

/* Per-epoch history, as Keras's fit returns it, plus wall seconds. */
typedef struct {
    int epochs;            /* entries filled */
    int capacity;          /* entries allocated */
    double *loss;          /* (capacity) running mean over the epoch's batches, dropout active */
    double *accuracy;      /* (capacity) */
    double *val_loss;      /* (capacity) validation part, inference mode, end of epoch */
    double *val_accuracy;  /* (capacity) */
    double *seconds;       /* (capacity) wall time of the epoch including validation */
} PtHistory;

void pt_history_init(PtHistory *h, int capacity);
void pt_history_free(PtHistory *h);
/* Appends one epoch (grows when needed). */
void pt_history_append(PtHistory *h, double loss, double acc, double val_loss, double val_acc,
                       double seconds);
/* Appends all epochs of src to dst (the downstream trial's two fits make one history). */
void pt_history_extend(PtHistory *dst, const PtHistory *src);

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

typedef struct {
    int epochs;
    int batch_size;               /* the GLOBAL batch size */
    double validation_split;      /* Keras: last fraction of the view validates; 0 = none */
    uint64_t seed;                /* shuffles: pt_seed_derive(seed, PT_STREAM_SHUFFLE, epoch);
                                     dropout: pt_seed_derive(seed, PT_STREAM_DROPOUT, epoch*2^32+step) */
    int eval_batch_size;          /* batch size of the validation pass (numerically irrelevant) */
    const char *phase;            /* name used in progress lines and error messages */
    int verbose;                  /* 1: print a Keras-like line per epoch on rank 0 */
    int gradient_sum;             /* PT_GRADSUM_AUTO (0: shared memory within nodes when it
                                     can) or PT_GRADSUM_MPI; see pt_gradsync.h */
    int first_epoch;              /* 0, or the epochs already done (resuming from a checkpoint:
                                     model, Adam state and history as they were after them) */
    /* If set, called on every rank after each completed epoch with the number of epochs done;
     * the model's weights and the Adam state (m, v, t) are then complete on rank 0 (a
     * checkpoint). Collective: every rank calls it at the same point. */
    void (*on_epoch)(void *ctx, int epochs_done, const PtModel *model, const PtAdam *adam,
                     const PtHistory *hist);
    void *on_epoch_ctx;
} PtFitConfig;

/* Result of pt_fit. */
enum { PT_FIT_OK = 0, PT_FIT_DIVERGED = 1, PT_FIT_INTERRUPTED = 2 };

/* Trains model with adam for cfg->epochs epochs, appending to hist. Every rank must call it with
 * the same arguments (data, config, initial weights): the global batch of each step is split
 * over the ranks in contiguous slices. Stops early with PT_FIT_DIVERGED (a non-finite loss,
 * reported with phase, epoch and step) or PT_FIT_INTERRUPTED (pt_stop_requested() became true;
 * checked collectively once per step, so every rank stops at the same step). */
int pt_fit(PtModel *model, PtAdam *adam, const PtView *data, const PtFitConfig *cfg,
           const PtDist *dist, PtHistory *hist);

/* A function pt_fit calls once per training step on this process (rank 0 uses it to answer the
 * other ranks while it trains a trial itself). NULL: none. */
typedef struct {
    void (*fn)(void *ctx);
    void *ctx;
} PtFitHook;
void pt_set_fit_hook(const PtFitHook *hook);

/* Mean loss and accuracy of the model on view in inference mode; with dist->size > 1 the view
 * is split over the ranks and the sums reduced, every rank gets the result. */
void pt_evaluate(PtModel *model, const PtView *data, int batch_size, const PtDist *dist,
                 double *loss, double *accuracy);

/* Signal handling: SIGINT, SIGTERM and SIGUSR1 set a flag that training loops poll. */
void pt_install_signal_handlers(void);
int pt_stop_requested(void);
int pt_stop_signal(void);  /* the signal number received, 0 if none */
void pt_request_stop(int signum); /* for tests: as if signum had arrived */

#endif
