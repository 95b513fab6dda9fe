/* pt_gradsync.h: the gradient sum and optimizer step of a data-parallel fit, behind one interface
 * with two implementations:
 *
 *   MPI:    every rank holds all weights and gradients; the gradient buffer (the extras included)
 *           is summed by MPI, the dense part in an MPI_Iallreduce overlapped with the conv
 *           layers' backward; every rank then runs the same Adam step on all weights.
 *   shared: the ranks of a node (MPI_COMM_TYPE_SHARED) keep their gradients in one MPI-3
 *           shared-memory window and the weights once per node. After backward, each rank sums
 *           its 1/p slice of the gradients over the node's p ranks by reading their buffers
 *           directly (no copies), with several nodes allreduces that slice with the same slice
 *           of the other nodes, and runs Adam on the slice only, writing the node's single copy
 *           of the weights; two node barriers per step. Per rank and step that is 1/p of the
 *           summing and of Adam instead of a full allreduce plus a full Adam step.
 *
 * Both give every rank the same weights after each step (one copy per node, or identical copies),
 * and sum each gradient element over the ranks in a fixed order (shared: node ranks in rank
 * order, then nodes as MPI orders them), so a run is deterministic for a given layout. */
#ifndef PT_GRADSYNC_H
#define PT_GRADSYNC_H

#include <mpi.h>
#include <stddef.h>

#include "pt_adam.h"
#include "pt_model.h"

enum { PT_GRADSUM_AUTO = 0, PT_GRADSUM_MPI = 1 };

/* Values of a step summed over the ranks together with the gradients, in the same buffer (so in
 * the same reduction): the loss sum, the correct count and a stop flag. */
enum { PT_EXTRA_LOSS = 0, PT_EXTRA_HITS = 1, PT_EXTRA_STOP = 2, PT_GRADSYNC_EXTRAS = 3 };

/* The mode named by the config key run.gradient_sum ("auto" or "mpi"). */
int pt_gradsum_mode(const char *name);

typedef struct PtGradSync PtGradSync;

/* For a fit of model over the ranks of comm (rank, size as in PtDist). mode PT_GRADSUM_AUTO takes
 * the shared path when every node has the same number (> 1) of ranks and size > 1, else MPI;
 * PT_GRADSUM_MPI always MPI. With one rank neither communicates. The model's gradients move into
 * the sync's buffer (n_params + PT_GRADSYNC_EXTRAS floats) until pt_gradsync_free; on the shared
 * path its weights move into the window too (values are copied both ways). Collective over comm.
 * The environment variable PRETEXT_NODE_SIZE=k (tests) makes "nodes" of k consecutive ranks
 * instead of the real shared-memory nodes. */
PtGradSync *pt_gradsync_create(PtModel *model, MPI_Comm comm, int rank, int size, int mode);

/* 1 if the shared path is in use (for logs and tests). */
int pt_gradsync_is_shared(const PtGradSync *sync);
/* The path in words, for the run's log: "shared (N nodes x M ranks)", "mpi (N ranks)" or
 * "none (1 rank)". */
void pt_gradsync_describe(const PtGradSync *sync, char *buf, size_t n);

/* Zeroes this rank's gradients and extras for a new step. */
void pt_gradsync_begin_step(PtGradSync *sync);
/* This rank's extras of the step (set before backward: the MPI path sends them with the dense
 * gradients). */
void pt_gradsync_set_extras(PtGradSync *sync, float loss_sum, float hits, float stop);

/* The hooks to pass to pt_model_backward (the MPI path starts summing the dense gradients as soon
 * as they are complete, and advances that sum during the conv layers' backward). */
const PtBackwardHooks *pt_gradsync_hooks(const PtGradSync *sync);

/* After backward: sums the extras over all ranks into extras_out (PT_EXTRA_*), identical on
 * every rank. The MPI path also completes the sum of all gradients here. Collective. */
void pt_gradsync_sum(PtGradSync *sync, float extras_out[PT_GRADSYNC_EXTRAS]);

/* Completes the gradient sum if needed and applies one Adam step, so that every rank sees the
 * updated weights on return. Collective; call it after pt_gradsync_sum (or not at all for a step
 * that is abandoned: every rank must make the same choice). */
void pt_gradsync_apply(PtGradSync *sync, PtAdam *adam);

/* Makes Adam's m and v complete on rank 0 (the shared path keeps each rank's slice only; a
 * no-op otherwise), for a checkpoint. Collective. */
void pt_gradsync_gather_adam(PtGradSync *sync, PtAdam *adam);

/* Moves the weights back into the model's own buffers and frees everything. Collective. */
void pt_gradsync_free(PtGradSync *sync);

#endif
