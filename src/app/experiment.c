/* experiment.c: the phases, the transfer and the trials of a run (see pt_experiment.h). */
#define _POSIX_C_SOURCE 200809L
#include "pt_experiment.h"

#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_adam.h"
#include "pt_gradsync.h"
#include "pt_keras_weights.h"
#include "pt_mpi.h"
#include "pt_rng.h"
#include "pt_scheduler.h"
#include "pt_signals.h"
#include "pt_streams.h"
#include "pt_util.h"

#define EVAL_BATCH 64 /* inference batch: numerically irrelevant, bounds each model's workspace */

/* ---------------------------------------------------------------- the phases */

/* A data-parallel phase: what it trains on, and where its configuration lives. */
typedef struct {
    const char *task;         /* for the log */
    int n_classes;
    PtInitStream init;        /* its initialisation stream */
    int rotated;              /* 1: trains on the rotated images and their pseudo-labels */
    size_t epochs_key;        /* offset of its epochs in PtConfig */
    size_t batch_key;         /* offset of its batch size in PtConfig */
} PhaseSpec;

static const PhaseSpec phases[PT_NUM_PHASES] = {
    [PT_PHASE_BENCHMARK] = {"supervised (10 classes)", 10, PT_INIT_BENCHMARK, 0,
                            offsetof(PtConfig, benchmark_epochs), offsetof(PtConfig, benchmark_batch_size)},
    [PT_PHASE_PRETEXT] = {"rotation task (4 classes)", 4, PT_INIT_PRETEXT, 1,
                          offsetof(PtConfig, pretext_epochs), offsetof(PtConfig, pretext_batch_size)},
};

static int config_int(const PtConfig *cfg, size_t offset) { return *(const int *)((const char *)cfg + offset); }

void pt_experiment_save(PtExperiment *ex) {
    PtError err;
    if (pt_results_save(&ex->results, ex->out_path, &err) != 0)
        pt_fatal("could not save the results: %s (the previous contents of %s are intact; free space "
                 "or fix the folder, then rerun the same command to resume)",
                 err.msg, ex->out_path);
}

/* The per-epoch checkpoint of a phase (PtFitConfig.on_epoch): rank 0 stores the weights, Adam's
 * state and the history so far in the results file, which is rewritten atomically. */
typedef struct {
    PtExperiment *ex;
    PtPhaseResult *res;
    int n_classes;
    double t0, seconds_before; /* this run's start of the phase; time spent in earlier runs */
} PhaseCheckpoint;

static void phase_checkpoint(void *ctx, int epochs_done, const PtModel *model, const PtAdam *adam,
                             const PtHistory *hist) {
    PhaseCheckpoint *pc = ctx;
    if (pc->ex->world.rank != 0) return;
    PtPhaseResult *res = pc->res;
    size_t bytes = model->n_params * sizeof(float);
    if (!res->ckpt_weights) {
        res->ckpt_weights = pt_malloc(bytes);
        res->ckpt_adam_m = pt_malloc(bytes);
        res->ckpt_adam_v = pt_malloc(bytes);
    }
    memcpy(res->ckpt_weights, model->params, bytes);
    memcpy(res->ckpt_adam_m, adam->m, bytes);
    memcpy(res->ckpt_adam_v, adam->v, bytes);
    res->ckpt_adam_t = (int)adam->t;
    res->ckpt_epochs = epochs_done;
    res->ckpt_seconds = pc->seconds_before + (pt_now() - pc->t0);
    res->n_classes = pc->n_classes;
    pt_history_copy(&res->history, hist);
    pt_experiment_save(pc->ex);
    /* test-only: stop like a signal would; the flag reaches every rank with the next step */
    if (pc->ex->stop_after_epochs >= 0 && ++pc->ex->epochs_run >= pc->ex->stop_after_epochs)
        pt_request_stop(SIGUSR1);
}

/* Rank 0's model, Adam state and history of a phase's checkpoint, to every rank. */
static void broadcast_checkpoint(PtModel *model, PtAdam *adam) {
    long long t = (long long)adam->t;
    pt_mpi_check(MPI_Bcast(model->params, (int)model->n_params, MPI_FLOAT, 0, MPI_COMM_WORLD),
                 "MPI_Bcast (checkpoint weights)");
    pt_mpi_check(MPI_Bcast(adam->m, (int)model->n_params, MPI_FLOAT, 0, MPI_COMM_WORLD), "MPI_Bcast (checkpoint Adam m)");
    pt_mpi_check(MPI_Bcast(adam->v, (int)model->n_params, MPI_FLOAT, 0, MPI_COMM_WORLD), "MPI_Bcast (checkpoint Adam v)");
    pt_mpi_check(MPI_Bcast(&t, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD), "MPI_Bcast (checkpoint Adam t)");
    adam->t = t;
}

/* Trains one data-parallel phase unless the results file already holds it, continuing from its
 * last completed epoch if the file holds a checkpoint (the epochs' shuffles and dropout masks
 * derive from the seed and the epoch, so the continuation is the same as an uninterrupted run on
 * the same ranks); leaves the final weights in *model_out on every rank. Returns PT_FIT_*. */
static int run_phase(PtExperiment *ex, PtPhaseId id, PtModel **model_out) {
    const PtConfig *cfg = &ex->cfg;
    const PhaseSpec *spec = &phases[id];
    const char *name = pt_phase_names[id];
    PtPhaseResult *res = &ex->results.phase[id];
    const int rank0 = ex->world.rank == 0;
    int epochs = config_int(cfg, spec->epochs_key);
    int batch = config_int(cfg, spec->batch_key);
    int local_batch = (batch + ex->world.size - 1) / ex->world.size;
    PtModel *model = pt_model_create(spec->n_classes, local_batch > EVAL_BATCH ? local_batch : EVAL_BATCH);
    *model_out = model;

    int done = rank0 ? res->done : 0;
    pt_mpi_check(MPI_Bcast(&done, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast (phase state)");
    if (done) {
        if (rank0) {
            memcpy(model->params, res->weights, model->n_params * sizeof(float));
            pt_log(1, "%s: already done (test accuracy %.4f), weights read back from %s\n", name,
                   res->test_accuracy, ex->out_path);
        }
        pt_mpi_check(MPI_Bcast(model->params, (int)model->n_params, MPI_FLOAT, 0, MPI_COMM_WORLD),
                     "MPI_Bcast (phase weights)");
        return PT_FIT_OK;
    }

    PtRng init_rng;
    pt_rng_seed(&init_rng, pt_stream_init(cfg->seed, spec->init));
    pt_model_init_glorot(model, &init_rng);
    PtAdam adam;
    pt_adam_init(&adam, model->n_params, (float)cfg->learning_rate);
    PtHistory hist;
    pt_history_init(&hist, epochs);
    /* A checkpoint of this phase from an earlier run: weights, Adam state, history. */
    int first_epoch = rank0 && res->ckpt_epochs > 0 && res->ckpt_epochs <= epochs ? res->ckpt_epochs : 0;
    pt_mpi_check(MPI_Bcast(&first_epoch, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast (checkpoint epochs)");
    double seconds_before = 0.0;
    if (first_epoch > 0) {
        if (rank0) {
            size_t bytes = model->n_params * sizeof(float);
            memcpy(model->params, res->ckpt_weights, bytes);
            memcpy(adam.m, res->ckpt_adam_m, bytes);
            memcpy(adam.v, res->ckpt_adam_v, bytes);
            adam.t = res->ckpt_adam_t;
            pt_history_extend(&hist, &res->history);
            seconds_before = res->ckpt_seconds;
            pt_log(1, "%s: resuming after epoch %d of %d (checkpoint read back from %s)\n", name,
                   first_epoch, epochs, ex->out_path);
        }
        broadcast_checkpoint(model, &adam);
    } else if (rank0) {
        pt_phase_checkpoint_clear(res); /* none, or one this configuration cannot use */
    }
    const uint8_t *labels[2] = {spec->rotated ? ex->rotations[0] : ex->ds.train_y.labels,
                                spec->rotated ? ex->rotations[1] : ex->ds.test_y.labels};
    PtView train = {&ex->ds.train_x, labels[0], spec->rotated ? ex->rotations[0] : NULL, ex->identity, ex->n_train};
    PtView test = {&ex->ds.test_x, labels[1], spec->rotated ? ex->rotations[1] : NULL, ex->identity, ex->ds.test_x.n};
    PhaseCheckpoint checkpoint = {ex, res, spec->n_classes, 0.0, seconds_before};
    PtFitConfig fc = pt_fit_config_defaults();
    fc.epochs = epochs;
    fc.batch_size = batch;
    fc.validation_split = cfg->validation_split;
    fc.seed = pt_stream_phase_fit(cfg->seed, id);
    fc.eval_batch_size = EVAL_BATCH;
    fc.phase = name;
    fc.verbose = pt_verbosity() >= 1;
    fc.gradient_sum = pt_gradsum_mode(cfg->run_gradient_sum);
    fc.first_epoch = first_epoch;
    fc.on_epoch = phase_checkpoint;
    fc.on_epoch_ctx = &checkpoint;
    uint32_t n_fit = pt_split_train_count(ex->n_train, cfg->validation_split);
    pt_log(1, "%s: %s, %u images (%u train / %u validation), %d ranks, global batch %d, %d epochs\n", name,
           spec->task, ex->n_train, n_fit, ex->n_train - n_fit, ex->world.size, batch, epochs);
    double t0 = pt_now();
    checkpoint.t0 = t0;
    int status = pt_fit(model, &adam, &train, &fc, &ex->world, &hist);
    if (status == PT_FIT_OK) {
        double test_loss, test_acc;
        pt_evaluate(model, &test, EVAL_BATCH, &ex->world, &test_loss, &test_acc);
        double seconds = seconds_before + (pt_now() - t0);
        pt_log(1, "%s: test_loss %.4f - test_accuracy %.4f - %.1fs\n", name, test_loss, test_acc, seconds);
        if (rank0) {
            pt_phase_checkpoint_clear(res);
            res->done = 1;
            res->n_classes = spec->n_classes;
            res->test_loss = test_loss;
            res->test_accuracy = test_acc;
            res->seconds = seconds;
            pt_history_copy(&res->history, &hist);
            free(res->weights);
            res->weights = pt_malloc(model->n_params * sizeof(float));
            memcpy(res->weights, model->params, model->n_params * sizeof(float));
            if (spec->rotated) {
                free(res->train_labels);
                free(res->test_labels);
                res->n_train_labels = ex->ds.train_x.n;
                res->train_labels = pt_malloc(ex->ds.train_x.n);
                memcpy(res->train_labels, ex->rotations[0], ex->ds.train_x.n);
                res->n_test_labels = ex->ds.test_x.n;
                res->test_labels = pt_malloc(ex->ds.test_x.n);
                memcpy(res->test_labels, ex->rotations[1], ex->ds.test_x.n);
            }
            pt_experiment_save(ex);
            PtError err;
            if (pt_keras_weights_save(ex->weights_path[id], model->params, spec->n_classes, &err) != 0)
                pt_fatal("%s", err.msg);
        }
    }
    pt_history_free(&hist);
    pt_adam_free(&adam);
    return status;
}

/* ---------------------------------------------------------------- the trials */

uint64_t pt_experiment_trial_seed(const PtConfig *cfg, int kind, int index) {
    return pt_stream_trial(cfg->seed, kind, index);
}

static int trial_epochs(const PtConfig *cfg, int kind) {
    return kind == PT_KIND_SUPERVISED ? cfg->trials_epochs
                                      : cfg->downstream_frozen_epochs + cfg->downstream_finetune_epochs;
}

/* The scheduler's task numbers: supervised trial i is task i, self-supervised trial i is task
 * n_supervised + i. */
static void task_trial(const PtConfig *cfg, int task, int *kind, int *index) {
    *kind = task < cfg->trials_supervised ? PT_KIND_SUPERVISED : PT_KIND_SELF_SUPERVISED;
    *index = *kind == PT_KIND_SUPERVISED ? task : task - cfg->trials_supervised;
}

/* Runs one trial on this rank alone into res (history, samples, test metrics, seconds); the fit
 * calls on_step (the scheduler's poll on rank 0) once per step. model is a scratch model of 10
 * classes. Returns PT_FIT_*. */
static int run_trial(PtExperiment *ex, PtModel *model, int kind, int index, PtTrialResult *res,
                     void (*on_step)(void *), void *step_ctx) {
    const PtConfig *cfg = &ex->cfg;
    double t0 = pt_now();
    uint64_t seed = pt_experiment_trial_seed(cfg, kind, index);
    uint32_t labels = (uint32_t)cfg->trials_labels;
    uint32_t *samples = pt_malloc(labels * sizeof(uint32_t)); /* (labels) training-image indices */
    PtRng rng;
    pt_rng_seed(&rng, pt_stream_trial_sample(seed));
    pt_sample_without_replacement(samples, labels, ex->n_train, &rng);

    memcpy(model->params, ex->trial_init[kind]->params, model->n_params * sizeof(float));
    for (int l = 0; l < PT_NUM_LAYERS; l++) model->trainable[l] = 1;
    PtView train = {&ex->ds.train_x, ex->ds.train_y.labels, NULL, samples, labels};
    PtAdam adam;
    pt_adam_init(&adam, model->n_params, (float)cfg->learning_rate);
    PtHistory hist;
    pt_history_init(&hist, trial_epochs(cfg, kind));
    PtDist local = pt_dist_local();
    PtFitConfig fc = pt_fit_config_defaults();
    fc.epochs = cfg->trials_epochs;
    fc.batch_size = cfg->trials_batch_size;
    fc.validation_split = cfg->validation_split;
    fc.seed = pt_stream_trial_fit(seed, 1);
    fc.eval_batch_size = EVAL_BATCH;
    fc.phase = pt_kind_names[kind];
    fc.verbose = pt_verbosity() >= 2;
    fc.on_step = on_step;
    fc.on_step_ctx = step_ctx;
    int status = PT_FIT_OK;
    if (kind == PT_KIND_SUPERVISED) {
        status = pt_fit(model, &adam, &train, &fc, &local, &hist);
    } else {
        /* The seed: freeze the conv layers, fit; unfreeze, compile again (fresh Adam), fit. */
        model->trainable[PT_LAYER_CONV1] = model->trainable[PT_LAYER_CONV2] = 0;
        fc.epochs = cfg->downstream_frozen_epochs;
        if (fc.epochs > 0) status = pt_fit(model, &adam, &train, &fc, &local, &hist);
        model->trainable[PT_LAYER_CONV1] = model->trainable[PT_LAYER_CONV2] = 1;
        pt_adam_reset(&adam);
        fc.epochs = cfg->downstream_finetune_epochs;
        fc.seed = pt_stream_trial_fit(seed, 2);
        if (status == PT_FIT_OK && fc.epochs > 0) status = pt_fit(model, &adam, &train, &fc, &local, &hist);
    }
    pt_trial_free(res);
    pt_trial_init(res, index, 0);
    res->seed = seed;
    res->rank = ex->world.rank;
    res->n_samples = labels;
    res->sample_indices = samples;
    pt_history_copy(&res->history, &hist);
    if (status == PT_FIT_OK) {
        PtView test = {&ex->ds.test_x, ex->ds.test_y.labels, NULL, ex->identity, ex->ds.test_x.n};
        pt_evaluate(model, &test, EVAL_BATCH, &local, &res->test_loss, &res->test_accuracy);
        res->done = 1;
    } else if (status == PT_FIT_DIVERGED) {
        fprintf(stderr, "pretext: error (rank %d): %s trial %d diverged (non-finite loss)\n",
                ex->world.rank, pt_kind_names[kind], index);
    }
    res->seconds = pt_now() - t0;
    pt_history_free(&hist);
    pt_adam_free(&adam);
    return status;
}

static void format_eta(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) snprintf(buf, n, "?");
    else if (s < 90) snprintf(buf, n, "%.0fs", s);
    else if (s < 5400) snprintf(buf, n, "%.0fm%02.0fs", floor(s / 60), fmod(s, 60));
    else snprintf(buf, n, "%.0fh%02.0fm", floor(s / 3600), fmod(s / 60, 60));
}

/* Rank 0: stores a finished trial, saves the file, prints the progress line. */
static void record_trial(PtExperiment *ex, int kind, const PtTrialResult *src) {
    PtTrialResult *dst = &ex->results.trials[kind][src->index];
    pt_trial_copy(dst, src);
    dst->seed = pt_experiment_trial_seed(&ex->cfg, kind, src->index);
    pt_experiment_save(ex);
    ex->trials_done_now++;
    int done = ex->trials_done_before + ex->trials_done_now;
    double elapsed = pt_now() - ex->trials_start;
    double left = elapsed / ex->trials_done_now * (ex->trials_total - done);
    char eta[32];
    format_eta(eta, sizeof eta, left);
    pt_log(1, "trial %-15s %3d on rank %d: test_accuracy %.4f - test_loss %.4f - %.1fs - %d/%d done - ~%s left\n",
           pt_kind_names[kind], src->index, src->rank, src->test_accuracy, src->test_loss, src->seconds,
           done, ex->trials_total, eta);
}

/* The scheduler's callbacks. */
typedef struct {
    PtExperiment *ex;
    PtModel *model;          /* this rank's scratch model */
    PtTrialResult result;    /* this rank's last trial */
} TrialRunner;

static int trial_task(void *ctx, PtScheduler *sched, int task, unsigned char **out, size_t *out_len) {
    TrialRunner *tr = ctx;
    int kind, index;
    task_trial(&tr->ex->cfg, task, &kind, &index);
    int st = run_trial(tr->ex, tr->model, kind, index, &tr->result, pt_scheduler_poll, sched);
    *out_len = pt_trial_packed_size(&tr->result);
    *out = pt_malloc(*out_len);
    pt_trial_pack(&tr->result, *out);
    return st == PT_FIT_OK ? PT_TASK_OK : st == PT_FIT_DIVERGED ? PT_TASK_FAILED : PT_TASK_INTERRUPTED;
}

static void trial_done(void *ctx, int task, int status, int rank, const unsigned char *msg, size_t len) {
    TrialRunner *tr = ctx;
    if (status != PT_TASK_OK) return; /* a divergence was reported where it happened */
    int kind, index;
    task_trial(&tr->ex->cfg, task, &kind, &index);
    PtTrialResult r;
    pt_trial_init(&r, index, 0);
    PtError err;
    if (pt_trial_unpack(&r, msg, len, &err) != 0) pt_fatal("trial message from rank %d: %s", rank, err.msg);
    if (r.index != index) pt_fatal("trial message from rank %d: trial %d, expected %d", rank, r.index, index);
    record_trial(tr->ex, kind, &r);
    pt_trial_free(&r);
}

static int trial_should_stop(void *ctx, int handed_out) {
    TrialRunner *tr = ctx;
    return pt_stop_requested() || (tr->ex->stop_after_trials >= 0 && handed_out >= tr->ex->stop_after_trials);
}

typedef struct {
    int task;
    double cost; /* relative work, for longest-first ordering */
} Task;

static int compare_tasks(const void *a, const void *b) {
    const Task *x = a, *y = b;
    if (x->cost != y->cost) return x->cost < y->cost ? 1 : -1;
    return x->task - y->task;
}

/* Every trial not yet done, longest first, over all ranks. Returns PT_FIT_* on every rank. */
static int run_trials(PtExperiment *ex) {
    const PtConfig *cfg = &ex->cfg;
    TrialRunner tr;
    memset(&tr, 0, sizeof tr);
    tr.ex = ex;
    tr.model = pt_model_create(10, cfg->trials_batch_size > EVAL_BATCH ? cfg->trials_batch_size : EVAL_BATCH);
    pt_trial_init(&tr.result, 0, 0);
    int total = cfg->trials_supervised + cfg->trials_self_supervised;
    int *order = pt_malloc((size_t)(total > 0 ? total : 1) * sizeof(int));
    int n_order = 0;
    if (ex->world.rank == 0) {
        Task *tasks = pt_malloc((size_t)(total > 0 ? total : 1) * sizeof(Task));
        ex->trials_total = total;
        for (int t = 0; t < total; t++) {
            int kind, index;
            task_trial(cfg, t, &kind, &index);
            if (ex->results.trials[kind][index].done) {
                ex->trials_done_before++;
                continue;
            }
            tasks[n_order++] = (Task){t, (double)trial_epochs(cfg, kind) * cfg->trials_labels};
        }
        qsort(tasks, (size_t)n_order, sizeof(Task), compare_tasks);
        for (int i = 0; i < n_order; i++) order[i] = tasks[i].task;
        free(tasks);
        if (ex->trials_done_before)
            pt_log(1, "trials: %d of %d already done in %s, %d to run\n", ex->trials_done_before, total,
                   ex->out_path, n_order);
        else
            pt_log(1, "trials: %d supervised + %d self-supervised, %d labelled images each, over %d ranks\n",
                   cfg->trials_supervised, cfg->trials_self_supervised, cfg->trials_labels, ex->world.size);
        ex->trials_start = pt_now();
    }
    PtSchedulerCallbacks cb = {trial_task, trial_done, trial_should_stop, &tr};
    int st = pt_schedule(MPI_COMM_WORLD, order, n_order, &cb);
    free(order);
    pt_trial_free(&tr.result);
    pt_model_free(tr.model);
    return st == PT_TASK_OK ? PT_FIT_OK : st == PT_TASK_FAILED ? PT_FIT_DIVERGED : PT_FIT_INTERRUPTED;
}

/* ---------------------------------------------------------------- the whole run */

/* The pretext labels: one uniform draw from {0,1,2,3} per image, train and test streams apart. */
static void draw_rotations(PtExperiment *ex) {
    const uint32_t counts[2] = {ex->ds.train_x.n, ex->ds.test_x.n};
    for (int split = 0; split < 2; split++) {
        ex->rotations[split] = pt_malloc(counts[split] ? counts[split] : 1);
        PtRng rng;
        pt_rng_seed(&rng, pt_stream_rotations(ex->cfg.seed, split));
        for (uint32_t i = 0; i < counts[split]; i++) ex->rotations[split][i] = (uint8_t)pt_rng_below(&rng, 4);
    }
}

/* The starting weights of the trials: a Glorot init per kind; the downstream ones then take the
 * transferred tensors of the pretext model (weights[[1..6]], or the conv layers only). */
static void prepare_trial_inits(PtExperiment *ex, const PtModel *pretext) {
    PtRng rng;
    ex->trial_init[PT_KIND_SUPERVISED] = pt_model_create(10, 1);
    pt_rng_seed(&rng, pt_stream_init(ex->cfg.seed, PT_INIT_SUPERVISED_TRIALS));
    pt_model_init_glorot(ex->trial_init[PT_KIND_SUPERVISED], &rng);
    ex->trial_init[PT_KIND_SELF_SUPERVISED] = pt_model_create(10, 1);
    pt_rng_seed(&rng, pt_stream_init(ex->cfg.seed, PT_INIT_DOWNSTREAM_HEAD));
    pt_model_init_glorot(ex->trial_init[PT_KIND_SELF_SUPERVISED], &rng);
    int last = strcmp(ex->cfg.downstream_transfer, "conv") == 0 ? PT_T_CONV2_BIAS : PT_T_DENSE1_BIAS;
    pt_model_copy_tensors(ex->trial_init[PT_KIND_SELF_SUPERVISED], pretext, 0, last);
}

int pt_experiment_run(PtExperiment *ex) {
    uint32_t n_ident = ex->ds.train_x.n > ex->ds.test_x.n ? ex->ds.train_x.n : ex->ds.test_x.n;
    ex->identity = pt_malloc((size_t)(n_ident ? n_ident : 1) * sizeof(uint32_t));
    for (uint32_t i = 0; i < n_ident; i++) ex->identity[i] = i;
    draw_rotations(ex);

    int status = PT_FIT_OK;
    PtModel *models[PT_NUM_PHASES] = {NULL, NULL};
    for (int p = 0; p < PT_NUM_PHASES && status == PT_FIT_OK; p++) {
        if (p == PT_PHASE_BENCHMARK && !ex->cfg.benchmark_enabled) continue;
        status = run_phase(ex, (PtPhaseId)p, &models[p]);
        if (p == PT_PHASE_BENCHMARK) { /* its weights are in the file; the memory is better used */
            pt_model_free(models[p]);
            models[p] = NULL;
        }
    }
    if (status == PT_FIT_OK) {
        /* The transfer: rank 0's pretext weights to everyone (bit-identical starting points). */
        PtModel *pretext = models[PT_PHASE_PRETEXT];
        pt_mpi_check(MPI_Bcast(pretext->params, (int)pretext->n_params, MPI_FLOAT, 0, MPI_COMM_WORLD),
                     "MPI_Bcast (pretext weights)");
        prepare_trial_inits(ex, pretext);
        pt_model_free(pretext); /* its weights live on in the downstream start */
        models[PT_PHASE_PRETEXT] = NULL;
        status = run_trials(ex);
    }
    for (int p = 0; p < PT_NUM_PHASES; p++) pt_model_free(models[p]);
    return status;
}
