/* gradsync.c: the gradient sum and Adam step of a data-parallel fit (see pt_gradsync.h): the MPI
 * path (one allreduce, its dense part overlapped with the conv layers' backward) and the shared
 * path (node-local shared-memory window, each rank summing and updating its slice of the weights,
 * one copy of the weights per node, slices allreduced across nodes). */
#include "pt_gradsync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_mpi.h"
#include "pt_util.h"

enum { SYNC_LOCAL, SYNC_MPI, SYNC_SHARED };

/* Slices start on 16-float (64-byte) boundaries, so two ranks never write one cache line. */
#define SLICE_ALIGN 16

struct PtGradSync {
    PtModel *model;
    MPI_Comm comm;
    int rank, size;
    int kind;
    size_t n_grad;          /* n_params + PT_GRADSYNC_EXTRAS */
    float *own;             /* (n_grad) this rank's gradients and extras (local and MPI paths) */
    PtBackwardHooks hooks;  /* for pt_model_backward */

    /* MPI path: grads[first .. n_grad) (dense layers and extras) go out early, nonblocking */
    size_t first;
    MPI_Request request;
    int started, done;

    /* shared path */
    MPI_Comm node;          /* the ranks of this node (or of an emulated node) */
    int node_rank, node_size;
    MPI_Comm cross;         /* the ranks with this node_rank on every node */
    int n_nodes;
    MPI_Win win;
    float **grads_of;       /* (node_size) each node rank's gradient buffer, in the window */
    float *params;          /* (n_params) the node's weights, in node rank 0's segment */
    size_t lo, hi;          /* this rank's slice of the weights */
};

int pt_gradsum_mode(const char *name) { return strcmp(name, "mpi") == 0 ? PT_GRADSUM_MPI : PT_GRADSUM_AUTO; }

/* ---- MPI path -------------------------------------------------------------------------- */

static void mpi_start_dense(PtGradSync *s) {
    pt_mpi_check(MPI_Iallreduce(MPI_IN_PLACE, s->model->grads + s->first, (int)(s->n_grad - s->first),
                                MPI_FLOAT, MPI_SUM, s->comm, &s->request),
                 "MPI_Iallreduce (dense gradients)");
    s->started = 1;
    s->done = 0;
}

/* pt_model_backward's on_dense_ready: the dense gradients are final, start their sum. */
static void mpi_on_dense_ready(void *ctx, size_t first_param, size_t n_params) {
    PtGradSync *s = ctx;
    if (first_param != s->first || first_param + n_params != s->model->n_params)
        pt_fatal("gradsync: unexpected dense gradient range [%zu, %zu)", first_param,
                 first_param + n_params);
    mpi_start_dense(s);
}

/* The progress hook during the conv layers' backward: Open MPI advances a nonblocking collective
 * only inside MPI calls. */
static void mpi_progress(void *ctx) {
    PtGradSync *s = ctx;
    if (!s->started || s->done) return;
    pt_mpi_check(MPI_Test(&s->request, &s->done, MPI_STATUS_IGNORE), "MPI_Test (dense gradients)");
}

/* Sums the conv part (blocking) and completes the dense part: every element summed once. */
static void mpi_finish(PtGradSync *s) {
    if (!s->started) mpi_start_dense(s); /* no samples on this rank, or dense layers frozen */
    if (s->first > 0)
        pt_mpi_check(MPI_Allreduce(MPI_IN_PLACE, s->model->grads, (int)s->first, MPI_FLOAT, MPI_SUM,
                                   s->comm),
                     "MPI_Allreduce (conv gradients)");
    if (!s->done) pt_mpi_check(MPI_Wait(&s->request, MPI_STATUS_IGNORE), "MPI_Wait (dense gradients)");
    s->started = 0;
}

/* ---- shared path ----------------------------------------------------------------------- */

/* All node ranks reach this point; their earlier stores to the window are visible after it. */
static void node_barrier(PtGradSync *s) {
    pt_mpi_check(MPI_Win_sync(s->win), "MPI_Win_sync");
    pt_mpi_check(MPI_Barrier(s->node), "MPI_Barrier (node)");
    pt_mpi_check(MPI_Win_sync(s->win), "MPI_Win_sync");
}

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* Splits comm into nodes (or emulated ones); returns 1 and fills the shared-path fields if every
 * node has the same number of ranks, more than one. Collective. */
static int shared_layout(PtGradSync *s) {
    const char *emulate = getenv("PRETEXT_NODE_SIZE");
    if (emulate && *emulate) {
        int k = atoi(emulate);
        if (k < 1) pt_fatal("PRETEXT_NODE_SIZE must be a whole number >= 1 (got '%s')", emulate);
        pt_mpi_check(MPI_Comm_split(s->comm, s->rank / k, s->rank, &s->node), "MPI_Comm_split (node)");
    } else {
        pt_mpi_check(MPI_Comm_split_type(s->comm, MPI_COMM_TYPE_SHARED, s->rank, MPI_INFO_NULL, &s->node),
                     "MPI_Comm_split_type (node)");
    }
    MPI_Comm_rank(s->node, &s->node_rank);
    MPI_Comm_size(s->node, &s->node_size);
    int sizes[2] = {s->node_size, -s->node_size}; /* min and -max over all ranks */
    pt_mpi_check(MPI_Allreduce(MPI_IN_PLACE, sizes, 2, MPI_INT, MPI_MIN, s->comm), "MPI_Allreduce (node sizes)");
    if (sizes[0] != -sizes[1] || s->node_size < 2) {
        MPI_Comm_free(&s->node);
        return 0;
    }
    s->n_nodes = s->size / s->node_size;
    pt_mpi_check(MPI_Comm_split(s->comm, s->node_rank, s->rank, &s->cross), "MPI_Comm_split (cross)");
    return 1;
}

static void shared_create(PtGradSync *s) {
    PtModel *m = s->model;
    size_t grad_bytes = round_up(s->n_grad * sizeof(float), 64);
    size_t param_bytes = round_up(m->n_params * sizeof(float), 64);
    size_t mine = grad_bytes + (s->node_rank == 0 ? param_bytes : 0);
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "true"); /* each segment near its owner */
    float *base = NULL;
    pt_mpi_check(MPI_Win_allocate_shared((MPI_Aint)mine, sizeof(float), info, s->node, &base, &s->win),
                 "MPI_Win_allocate_shared (gradients and weights)");
    MPI_Info_free(&info);
    pt_mpi_check(MPI_Win_lock_all(MPI_MODE_NOCHECK, s->win), "MPI_Win_lock_all");
    s->grads_of = pt_malloc((size_t)s->node_size * sizeof(float *));
    for (int r = 0; r < s->node_size; r++) {
        MPI_Aint bytes;
        int disp;
        float *seg;
        pt_mpi_check(MPI_Win_shared_query(s->win, r, &bytes, &disp, &seg), "MPI_Win_shared_query");
        if (r == 0) {
            s->params = seg;
            s->grads_of[0] = seg + param_bytes / sizeof(float);
        } else {
            s->grads_of[r] = seg;
        }
    }
    /* Every rank moves its gradient buffer into its own segment; node rank 0 copies the weights
     * in, the others (which hold the same weights: every rank starts a fit from the same ones)
     * point at that copy once it is written. */
    if (s->node_rank == 0) pt_model_bind_buffers(m, s->params, s->grads_of[0]);
    else pt_model_bind_buffers(m, NULL, s->grads_of[s->node_rank]);
    node_barrier(s);
    if (s->node_rank != 0) pt_model_share_params(m, s->params);
    size_t n = m->n_params, p = (size_t)s->node_size, r = (size_t)s->node_rank;
    s->lo = r == 0 ? 0 : round_up(n * r / p, SLICE_ALIGN);
    s->hi = r + 1 == p ? n : round_up(n * (r + 1) / p, SLICE_ALIGN);
    if (s->hi > n) s->hi = n;
    if (s->lo > s->hi) s->lo = s->hi;
}

/* Sums this rank's slice of the gradients over the node's ranks, in node rank order, into its
 * own buffer (the other ranks read only other slices of it meanwhile), then over the nodes. */
static void shared_sum_slice(PtGradSync *s) {
    enum { BLOCK = 1024 };
    float sum[BLOCK] __attribute__((aligned(64)));
    float *dst = s->grads_of[s->node_rank];
    for (size_t k0 = s->lo; k0 < s->hi; k0 += BLOCK) {
        size_t len = s->hi - k0 < BLOCK ? s->hi - k0 : BLOCK;
        const float *restrict g0 = s->grads_of[0] + k0;
        for (size_t j = 0; j < len; j++) sum[j] = g0[j];
        for (int r = 1; r < s->node_size; r++) {
            const float *restrict g = s->grads_of[r] + k0;
            for (size_t j = 0; j < len; j++) sum[j] += g[j];
        }
        memcpy(dst + k0, sum, len * sizeof(float));
    }
    if (s->n_nodes > 1 && s->hi > s->lo)
        pt_mpi_check(MPI_Allreduce(MPI_IN_PLACE, dst + s->lo, (int)(s->hi - s->lo), MPI_FLOAT, MPI_SUM,
                                   s->cross),
                     "MPI_Allreduce (gradient slice across nodes)");
}

PtGradSync *pt_gradsync_create(PtModel *model, MPI_Comm comm, int rank, int size, int mode) {
    PtGradSync *s = pt_calloc(1, sizeof *s);
    s->model = model;
    s->comm = comm;
    s->rank = rank;
    s->size = size;
    s->n_grad = model->n_params + PT_GRADSYNC_EXTRAS;
    s->request = MPI_REQUEST_NULL;
    s->node = s->cross = MPI_COMM_NULL;
    s->win = MPI_WIN_NULL;
    s->hooks.ctx = s;
    if (size <= 1) {
        s->kind = SYNC_LOCAL;
    } else if (mode == PT_GRADSUM_AUTO && shared_layout(s)) {
        s->kind = SYNC_SHARED;
        shared_create(s);
    } else {
        s->kind = SYNC_MPI;
        s->first = model->tensors[PT_T_DENSE1_KERNEL].offset;
        s->hooks.dense_ready = mpi_on_dense_ready;
        s->hooks.progress = mpi_progress;
    }
    if (s->kind != SYNC_SHARED) {
        s->own = pt_aligned_alloc(s->n_grad * sizeof(float));
        memset(s->own, 0, s->n_grad * sizeof(float));
        pt_model_bind_buffers(model, NULL, s->own);
    }
    /* One rank: the gradient goes to Adam only, so a one-sample step (the trials) lets Adam form
     * dense1's kernel gradient on the fly (pt_model_defer_dense1_grad). */
    if (s->kind == SYNC_LOCAL) pt_model_defer_dense1_grad(model, 1);
    return s;
}

int pt_gradsync_is_shared(const PtGradSync *s) { return s->kind == SYNC_SHARED; }

void pt_gradsync_describe(const PtGradSync *s, char *buf, size_t n) {
    if (s->kind == SYNC_SHARED) snprintf(buf, n, "shared (%d nodes x %d ranks)", s->n_nodes, s->node_size);
    else if (s->kind == SYNC_MPI) snprintf(buf, n, "mpi (%d ranks)", s->size);
    else snprintf(buf, n, "none (1 rank)");
}

void pt_gradsync_begin_step(PtGradSync *s) {
    pt_model_zero_grads(s->model);
    memset(s->model->grads + s->model->n_params, 0, PT_GRADSYNC_EXTRAS * sizeof(float)); /* after them */
}

void pt_gradsync_set_extras(PtGradSync *s, float loss_sum, float hits, float stop) {
    float *extras = s->model->grads + s->model->n_params;
    extras[PT_EXTRA_LOSS] = loss_sum;
    extras[PT_EXTRA_HITS] = hits;
    extras[PT_EXTRA_STOP] = stop;
}

const PtBackwardHooks *pt_gradsync_hooks(const PtGradSync *s) { return &s->hooks; }

void pt_gradsync_sum(PtGradSync *s, float extras_out[PT_GRADSYNC_EXTRAS]) {
    const size_t n = s->model->n_params;
    if (s->kind == SYNC_MPI) mpi_finish(s);
    if (s->kind != SYNC_SHARED) {
        memcpy(extras_out, s->model->grads + n, PT_GRADSYNC_EXTRAS * sizeof(float));
        return;
    }
    node_barrier(s); /* every node rank's gradients and extras are complete */
    for (int e = 0; e < PT_GRADSYNC_EXTRAS; e++) {
        float sum = s->grads_of[0][n + (size_t)e];
        for (int r = 1; r < s->node_size; r++) sum += s->grads_of[r][n + (size_t)e];
        extras_out[e] = sum;
    }
    if (s->n_nodes > 1)
        pt_mpi_check(MPI_Allreduce(MPI_IN_PLACE, extras_out, PT_GRADSYNC_EXTRAS, MPI_FLOAT, MPI_SUM, s->cross),
                     "MPI_Allreduce (step extras across nodes)");
}

void pt_gradsync_apply(PtGradSync *s, PtAdam *adam) {
    if (s->kind != SYNC_SHARED) {
        pt_adam_step(adam, s->model);
        return;
    }
    if (s->n_nodes == 1) {
        /* one node: Adam reads the node ranks' gradients and sums them on the fly */
        pt_adam_step_range_sum(adam, s->model, s->lo, s->hi, (const float *const *)s->grads_of,
                               s->node_size);
    } else {
        shared_sum_slice(s); /* into this rank's buffer, then across the nodes */
        pt_adam_step_range(adam, s->model, s->lo, s->hi);
    }
    node_barrier(s); /* the node's weights are complete; nobody reads the gradients any more */
}

void pt_gradsync_gather_adam(PtGradSync *s, PtAdam *adam) {
    if (s->kind != SYNC_SHARED) return;
    /* Every node holds the same slices (allreduced across nodes): gather them on the node of
     * world rank 0, which is its node rank 0 (nodes order their ranks by world rank). */
    int on_first_node = s->rank == 0;
    pt_mpi_check(MPI_Bcast(&on_first_node, 1, MPI_INT, 0, s->node), "MPI_Bcast (checkpoint node)");
    if (!on_first_node) return;
    int *counts = pt_malloc((size_t)s->node_size * sizeof(int));
    int *displs = pt_malloc((size_t)s->node_size * sizeof(int));
    int mine[2] = {(int)s->lo, (int)(s->hi - s->lo)}, *all = pt_malloc((size_t)s->node_size * 2 * sizeof(int));
    pt_mpi_check(MPI_Gather(mine, 2, MPI_INT, all, 2, MPI_INT, 0, s->node), "MPI_Gather (Adam slices)");
    for (int r = 0; r < s->node_size; r++) {
        displs[r] = all[2 * r];
        counts[r] = all[2 * r + 1];
    }
    float *moments[2] = {adam->m, adam->v};
    for (int k = 0; k < 2; k++) {
        const void *send = s->node_rank == 0 ? MPI_IN_PLACE : (const void *)(moments[k] + s->lo);
        pt_mpi_check(MPI_Gatherv(send, mine[1], MPI_FLOAT, moments[k], counts, displs, MPI_FLOAT, 0, s->node),
                     "MPI_Gatherv (Adam moments)");
    }
    free(all);
    free(counts);
    free(displs);
}

void pt_gradsync_free(PtGradSync *s) {
    if (!s) return;
    PtModel *m = s->model;
    if (s->kind == SYNC_LOCAL) pt_model_defer_dense1_grad(m, 0); /* zeroes that region */
    if (s->kind == SYNC_MPI && s->started)
        pt_mpi_check(MPI_Wait(&s->request, MPI_STATUS_IGNORE), "MPI_Wait (dense gradients)");
    if (s->own) {
        pt_model_bind_buffers(m, NULL, NULL); /* the gradients back to the model's own buffer */
        free(s->own);
    }
    if (s->kind == SYNC_SHARED) {
        node_barrier(s);                    /* nobody writes the weights any more */
        pt_model_bind_buffers(m, NULL, NULL); /* copy the weights and gradients back */
        node_barrier(s);                    /* every rank has its copy */
        pt_mpi_check(MPI_Win_unlock_all(s->win), "MPI_Win_unlock_all");
        pt_mpi_check(MPI_Win_free(&s->win), "MPI_Win_free");
        MPI_Comm_free(&s->cross);
        MPI_Comm_free(&s->node);
        free(s->grads_of);
    }
    free(s);
}
