/* train.c: Keras-like fit and evaluate, on one process or data-parallel over MPI ranks, and the
 * signal flag that lets a run stop cleanly at a step boundary.
 *
 * Data-parallel step: the global batch (positions perm[s*B .. s*B+Bg) of the shuffled training
 * part) is split into contiguous slices, rank r taking [Bg*r/P, Bg*(r+1)/P). Each rank computes
 * the gradient of sum(its losses)/Bg, the extras (loss sum, hits, stop flag) ride at the end of
 * the same buffer, and ONE MPI_Allreduce sums everything. Dropout masks are keyed by the sample's
 * position in the global batch, so the result does not depend on P (up to float summation order).
 *
 * Overlap: the gradient buffer is summed in two parts that together cover it exactly once, so each
 * element is still summed over the ranks exactly as by one allreduce. The dense layers' gradients
 * (97% of the parameters) plus the extras, contiguous at the end of the buffer, go out in an
 * MPI_Iallreduce started from backward's on_dense_ready callback, while the conv layers' backward
 * still runs; Open MPI advances a nonblocking collective only inside MPI calls, so backward calls
 * MPI_Test between slices of conv2's backward (model->progress). The small conv part follows in
 * a blocking MPI_Allreduce, then the first completes.
 * Every rank issues the two collectives in the same order (a rank without samples in a step, or
 * a model whose dense layers are frozen, starts the first one itself after backward). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "pt_rng.h"
#include "pt_train.h"
#include "pt_util.h"

static volatile sig_atomic_t g_stop_signal = 0;
static PtFitHook g_hook;

void pt_set_fit_hook(const PtFitHook *hook) {
    if (hook) g_hook = *hook;
    else g_hook.fn = NULL;
}

static void on_signal(int signum) { g_stop_signal = signum; }

void pt_install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int pt_stop_requested(void) { return g_stop_signal != 0; }
int pt_stop_signal(void) { return (int)g_stop_signal; }
void pt_request_stop(int signum) { g_stop_signal = signum; }

PtDist pt_dist_local(void) {
    PtDist d = {MPI_COMM_SELF, 0, 1};
    return d;
}

PtDist pt_dist_world(MPI_Comm comm) {
    PtDist d;
    d.comm = comm;
    MPI_Comm_rank(comm, &d.rank);
    MPI_Comm_size(comm, &d.size);
    return d;
}

void pt_evaluate(PtModel *model, const PtView *data, int batch_size, const PtDist *dist,
                 double *loss, double *accuracy) {
    int bs = batch_size < 1 ? model->max_batch : batch_size;
    if (bs > model->max_batch) bs = model->max_batch;
    uint32_t n = data->n;
    uint32_t lo = (uint32_t)((uint64_t)n * (uint64_t)dist->rank / (uint64_t)dist->size);
    uint32_t hi = (uint32_t)((uint64_t)n * (uint64_t)(dist->rank + 1) / (uint64_t)dist->size);
    float *x = pt_aligned_alloc((size_t)bs * PT_IMG_PIXELS * sizeof(float)); /* (bs,28,28,1) */
    uint8_t *y = pt_malloc((size_t)bs);                                      /* (bs) */
    double sums[2] = {0.0, 0.0}; /* loss sum, hits */
    for (uint32_t start = lo; start < hi; start += (uint32_t)bs) {
        int B = (int)((hi - start) < (uint32_t)bs ? (hi - start) : (uint32_t)bs);
        pt_gather_images(x, data->images, data->indices + start, data->rotations, B);
        pt_gather_labels(y, data->labels, data->indices + start, B);
        pt_model_forward(model, x, B, 0, 0, 0);
        int correct = 0;
        sums[0] += pt_model_loss_only(model, y, B, &correct);
        sums[1] += correct;
    }
    free(x);
    free(y);
    if (dist->size > 1)
        pt_mpi_check(MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, dist->comm),
                  "MPI_Allreduce (evaluation sums)");
    *loss = n ? sums[0] / n : NAN;
    *accuracy = n ? sums[1] / n : NAN;
}

/* The in-flight part of a step's gradient sum (see the top of the file). */
typedef struct {
    PtModel *model;
    const PtDist *dist;
    size_t first;          /* first element of the nonblocking part: dense1's kernel */
    MPI_Request request;
    int started;
    int done;              /* MPI_Test reported the nonblocking part complete */
} GradReduce;

/* Starts the nonblocking sum of grads[first .. n_params + PT_GRAD_EXTRA). */
static void grad_reduce_start(GradReduce *gr) {
    size_t count = gr->model->n_params + PT_GRAD_EXTRA - gr->first;
    pt_mpi_check(MPI_Iallreduce(MPI_IN_PLACE, gr->model->grads + gr->first, (int)count, MPI_FLOAT,
                             MPI_SUM, gr->dist->comm, &gr->request),
              "MPI_Iallreduce (dense gradients)");
    gr->started = 1;
    gr->done = 0;
}

/* pt_model_backward's on_dense_ready: the dense gradients are final, start their sum. */
static void on_dense_ready(void *ctx, size_t first_param, size_t n_params) {
    GradReduce *gr = ctx;
    if (first_param != gr->first || first_param + n_params != gr->model->n_params)
        pt_fatal("train: unexpected dense gradient range [%zu, %zu)", first_param, first_param + n_params);
    grad_reduce_start(gr);
}

/* model->progress during conv2's backward: lets MPI advance the in-flight sum (Open MPI moves
 * a nonblocking collective only inside MPI calls). */
static void grad_reduce_progress(void *ctx) {
    GradReduce *gr = ctx;
    if (!gr->started || gr->done) return;
    pt_mpi_check(MPI_Test(&gr->request, &gr->done, MPI_STATUS_IGNORE), "MPI_Test (dense gradients)");
}

/* Sums the rest (the conv layers' gradients) and completes the nonblocking part. */
static void grad_reduce_finish(GradReduce *gr) {
    if (!gr->started) grad_reduce_start(gr);
    if (gr->first > 0)
        pt_mpi_check(MPI_Allreduce(MPI_IN_PLACE, gr->model->grads, (int)gr->first, MPI_FLOAT, MPI_SUM,
                                gr->dist->comm),
                  "MPI_Allreduce (conv gradients)");
    if (!gr->done) pt_mpi_check(MPI_Wait(&gr->request, MPI_STATUS_IGNORE), "MPI_Wait (dense gradients)");
    gr->started = 0;
}

static void format_duration(char *buf, size_t n, double s) {
    if (s < 100) snprintf(buf, n, "%.1fs", s);
    else snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
}

int pt_fit(PtModel *model, PtAdam *adam, const PtView *data, const PtFitConfig *cfg,
           const PtDist *dist, PtHistory *hist) {
    const int P = dist->size;
    const uint32_t n_train = cfg->validation_split > 0 ? pt_split_train_count(data->n, cfg->validation_split)
                                                       : data->n;
    const uint32_t n_val = data->n - n_train;
    const int B = cfg->batch_size;
    const int local_max = (B + P - 1) / P;
    if (local_max > model->max_batch)
        pt_fatal("phase %s: local batch %d exceeds the model's capacity %d", cfg->phase, local_max,
                 model->max_batch);
    if (n_train == 0) pt_fatal("phase %s: no training examples after the validation split", cfg->phase);

    uint32_t *perm = pt_malloc((size_t)n_train * sizeof(uint32_t));   /* (n_train) positions */
    uint32_t *batch_idx = pt_malloc((size_t)local_max * sizeof(uint32_t)); /* (local_max) image indices */
    float *x = pt_aligned_alloc((size_t)local_max * PT_IMG_PIXELS * sizeof(float)); /* (local_max,28,28,1) */
    uint8_t *y = pt_malloc((size_t)local_max);                         /* (local_max) */
    const size_t n_params = model->n_params;
    const long steps = ((long)n_train + B - 1) / B;
    int status = PT_FIT_OK;
    GradReduce reduce = {model, dist, model->tensors[PT_T_DENSE1_KERNEL].offset, MPI_REQUEST_NULL, 0, 0};
    if (P > 1) {
        model->progress = grad_reduce_progress;
        model->progress_ctx = &reduce;
    }

    PtView val_view = *data;
    val_view.indices = data->indices + n_train;
    val_view.n = n_val;

    for (int epoch = 0; epoch < cfg->epochs && status == PT_FIT_OK; epoch++) {
        double t0 = pt_now();
        for (uint32_t i = 0; i < n_train; i++) perm[i] = i;
        PtRng shuffle_rng;
        pt_rng_seed(&shuffle_rng, pt_seed_derive(cfg->seed, PT_STREAM_SHUFFLE, (uint64_t)epoch));
        pt_shuffle_u32(perm, n_train, &shuffle_rng);

        double loss_sum = 0.0, hits = 0.0;
        for (long step = 0; step < steps; step++) {
            uint32_t g0 = (uint32_t)(step * B);
            int Bg = (int)((n_train - g0) < (uint32_t)B ? (n_train - g0) : (uint32_t)B);
            int lo = (int)((long)Bg * dist->rank / P);
            int hi = (int)((long)Bg * (dist->rank + 1) / P);
            int Bl = hi - lo;
            if (g_hook.fn) g_hook.fn(g_hook.ctx);
            pt_model_zero_grads(model);
            if (Bl > 0) {
                for (int i = 0; i < Bl; i++) batch_idx[i] = data->indices[perm[g0 + (uint32_t)lo + (uint32_t)i]];
                pt_gather_images(x, data->images, batch_idx, data->rotations, Bl);
                pt_gather_labels(y, data->labels, batch_idx, Bl);
                uint64_t dropout_seed = pt_seed_derive(cfg->seed, PT_STREAM_DROPOUT,
                                                       ((uint64_t)epoch << 32) | (uint64_t)step);
                pt_model_forward(model, x, Bl, 1, dropout_seed, (uint64_t)lo);
                int correct = 0;
                double ls = pt_model_loss(model, y, Bl, Bg, &correct);
                /* The extras travel with the dense gradients: set them before backward starts it. */
                model->grads[n_params] = (float)ls;
                model->grads[n_params + 1] = (float)correct;
                model->grads[n_params + 2] = pt_stop_requested() ? 1.0f : 0.0f;
                pt_model_backward(model, Bl, P > 1 ? on_dense_ready : NULL, &reduce);
            } else {
                model->grads[n_params + 2] = pt_stop_requested() ? 1.0f : 0.0f;
            }
            if (P > 1) grad_reduce_finish(&reduce);
            double step_loss = model->grads[n_params];
            if (!isfinite(step_loss)) {
                if (dist->rank == 0)
                    fprintf(stderr,
                            "pretext: error: the loss became %s in phase '%s', epoch %d, step %ld of %ld "
                            "(the training diverged; try a smaller experiment.learning_rate)\n",
                            isnan(step_loss) ? "NaN" : "infinite", cfg->phase, epoch + 1, step + 1, steps);
                status = PT_FIT_DIVERGED;
                break;
            }
            if (model->grads[n_params + 2] > 0.0f) {
                status = PT_FIT_INTERRUPTED;
                break;
            }
            loss_sum += step_loss;
            hits += model->grads[n_params + 1];
            pt_adam_step(adam, model);
        }
        if (status != PT_FIT_OK) break;
        double val_loss = NAN, val_acc = NAN;
        if (n_val > 0) pt_evaluate(model, &val_view, cfg->eval_batch_size, dist, &val_loss, &val_acc);
        double seconds = pt_now() - t0;
        double loss = loss_sum / n_train, acc = hits / n_train;
        pt_history_append(hist, loss, acc, val_loss, val_acc, seconds);
        if (cfg->verbose && dist->rank == 0) {
            char dur[32];
            format_duration(dur, sizeof dur, seconds);
            pt_log(1, "%s epoch %d/%d - %ld steps - %s - %.0f img/s - loss: %.4f - accuracy: %.4f",
                   cfg->phase, epoch + 1, cfg->epochs, steps, dur, n_train / seconds, loss, acc);
            if (n_val > 0) pt_log(1, " - val_loss: %.4f - val_accuracy: %.4f", val_loss, val_acc);
            pt_log(1, "\n");
        }
    }
    model->progress = NULL;
    model->progress_ctx = NULL;
    free(perm);
    free(batch_idx);
    free(x);
    free(y);
    return status;
}
