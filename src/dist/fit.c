/* fit.c: Keras-like fit and evaluate, on one process or data-parallel over MPI ranks.
 *
 * Data-parallel step: the global batch (positions perm[s*B .. s*B+Bg) of the shuffled training
 * part) is split into contiguous slices, rank r taking [Bg*r/P, Bg*(r+1)/P). Each rank computes
 * the gradient of sum(its losses)/Bg, the extras (loss sum, hits, stop flag) ride at the end of
 * the same buffer, and pt_gradsync (gradsync.c) sums them over the ranks and applies the Adam
 * step: by MPI with the dense gradients' sum overlapped with the conv layers' backward, or
 * through a node's shared memory, each rank updating its slice of one copy of the weights.
 * Dropout masks are keyed by the sample's position in the global batch, so the result does not
 * depend on P (up to float summation order). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_fit.h"
#include "pt_gradsync.h"
#include "pt_mpi.h"
#include "pt_rng.h"
#include "pt_signals.h"
#include "pt_streams.h"
#include "pt_util.h"

PtFitConfig pt_fit_config_defaults(void) {
    PtFitConfig c;
    memset(&c, 0, sizeof c);
    c.epochs = 1;
    c.batch_size = 32;
    c.validation_split = 0.0;
    c.seed = 0;
    c.eval_batch_size = 64;
    c.phase = "fit";
    c.verbose = 0;
    c.gradient_sum = PT_GRADSUM_AUTO;
    c.first_epoch = 0;
    return c;
}

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
    const long steps = ((long)n_train + B - 1) / B;
    int status = PT_FIT_OK;
    PtGradSync *sync = pt_gradsync_create(model, dist->comm, dist->rank, P, cfg->gradient_sum);
    const PtBackwardHooks *hooks = pt_gradsync_hooks(sync);
    float extras[PT_GRADSYNC_EXTRAS]; /* summed over the ranks: loss sum, hits, stop flag */
    if (cfg->verbose && P > 1) {
        char how[128];
        pt_gradsync_describe(sync, how, sizeof how);
        pt_log(1, "%s: gradient sum: %s\n", cfg->phase, how);
    }

    PtView val_view = *data;
    val_view.indices = data->indices + n_train;
    val_view.n = n_val;

    if (cfg->first_epoch < 0 || cfg->first_epoch > cfg->epochs)
        pt_fatal("phase %s: cannot resume at epoch %d of %d", cfg->phase, cfg->first_epoch, cfg->epochs);
    for (int epoch = cfg->first_epoch; epoch < cfg->epochs && status == PT_FIT_OK; epoch++) {
        double t0 = pt_now();
        for (uint32_t i = 0; i < n_train; i++) perm[i] = i;
        PtRng shuffle_rng;
        pt_rng_seed(&shuffle_rng, pt_stream_epoch_shuffle(cfg->seed, epoch));
        pt_shuffle_u32(perm, n_train, &shuffle_rng);

        double loss_sum = 0.0, hits = 0.0;
        for (long step = 0; step < steps; step++) {
            uint32_t g0 = (uint32_t)(step * B);
            int Bg = (int)((n_train - g0) < (uint32_t)B ? (n_train - g0) : (uint32_t)B);
            int lo = (int)((long)Bg * dist->rank / P);
            int hi = (int)((long)Bg * (dist->rank + 1) / P);
            int Bl = hi - lo;
            if (cfg->on_step) cfg->on_step(cfg->on_step_ctx);
            pt_gradsync_begin_step(sync);
            if (Bl > 0) {
                for (int i = 0; i < Bl; i++) batch_idx[i] = data->indices[perm[g0 + (uint32_t)lo + (uint32_t)i]];
                pt_gather_images(x, data->images, batch_idx, data->rotations, Bl);
                pt_gather_labels(y, data->labels, batch_idx, Bl);
                uint64_t dropout_seed = pt_stream_step_dropout(cfg->seed, epoch, step);
                pt_model_forward(model, x, Bl, 1, dropout_seed, (uint64_t)lo);
                int correct = 0;
                double ls = pt_model_loss(model, y, Bl, Bg, &correct);
                /* The extras travel with the dense gradients: set them before backward starts it. */
                pt_gradsync_set_extras(sync, (float)ls, (float)correct, pt_stop_requested() ? 1.0f : 0.0f);
                pt_model_backward(model, Bl, hooks);
            } else {
                pt_gradsync_set_extras(sync, 0.0f, 0.0f, pt_stop_requested() ? 1.0f : 0.0f);
            }
            pt_gradsync_sum(sync, extras);
            double step_loss = extras[PT_EXTRA_LOSS];
            if (!isfinite(step_loss)) {
                if (dist->rank == 0)
                    fprintf(stderr,
                            "pretext: error: the loss became %s in phase '%s', epoch %d, step %ld of %ld "
                            "(the training diverged; try a smaller experiment.learning_rate)\n",
                            isnan(step_loss) ? "NaN" : "infinite", cfg->phase, epoch + 1, step + 1, steps);
                status = PT_FIT_DIVERGED;
                break;
            }
            if (extras[PT_EXTRA_STOP] > 0.0f) {
                status = PT_FIT_INTERRUPTED;
                break;
            }
            loss_sum += step_loss;
            hits += extras[PT_EXTRA_HITS];
            pt_gradsync_apply(sync, adam);
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
        if (cfg->on_epoch) {
            pt_gradsync_gather_adam(sync, adam); /* the shared path's slices, onto rank 0 */
            cfg->on_epoch(cfg->on_epoch_ctx, epoch + 1, model, adam, hist);
        }
    }
    pt_gradsync_free(sync);
    free(perm);
    free(batch_idx);
    free(x);
    free(y);
    return status;
}
