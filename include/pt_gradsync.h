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

#include "pt_model.h"

enum { PT_GRADSUM_AUTO = 0, PT_GRADSUM_MPI = 1 };

/* The mode named by the config key run.gradient_sum ("auto" or "mpi"). */
int pt_gradsum_mode(const char *name);

typedef struct PtGradSync PtGradSync;

/* For a fit of model over the ranks of comm (rank, size as in PtDist). mode PT_GRADSUM_AUTO takes
 * the shared path when every node has the same number (> 1) of ranks and size > 1, else MPI;
 * PT_GRADSUM_MPI always MPI. With one rank neither communicates. On the shared path the model's
 * weights and gradients move into the window until pt_gradsync_free (values are copied both
 * ways). Collective over comm. The environment variable PRETEXT_NODE_SIZE=k (tests) makes
 * "nodes" of k consecutive ranks instead of the real shared-memory nodes. */
PtGradSync *pt_gradsync_create(PtModel *model, MPI_Comm comm, int rank, int size, int mode);

/* 1 if the shared path is in use (for logs and tests). */
int pt_gradsync_is_shared(const PtGradSync *sync);

/* Zeroes this rank's gradients (the extras included) for a new step. */
void pt_gradsync_begin_step(PtGradSync *sync);

/* The on_dense_ready callback to pass to pt_model_backward, with sync as its context (NULL when
 * there is nothing to start early). */
PtGradReadyFn pt_gradsync_dense_ready_fn(const PtGradSync *sync);

/* After backward: sums the extras (PT_GRAD_EXTRA floats after the parameters: loss sum, hits,
 * stop flag) over all ranks into extras_out, identical on every rank. The MPI path also completes
 * the sum of all gradients here. Collective. */
void pt_gradsync_sum(PtGradSync *sync, float extras_out[PT_GRAD_EXTRA]);

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
