/* trials.c: the small-data trials of every (seed, budget, kind, index) as tasks of the scheduler:
 * their order (longest first), when they may start (a self-supervised trial needs its seed's
 * pretext model), the weights sent with them, running one on a rank, and rank 0's record of each
 * finished trial (see pt_experiment.h). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_adam.h"
#include "pt_experiment.h"
#include "pt_rng.h"
#include "pt_signals.h"
#include "pt_streams.h"
#include "pt_util.h"

#define EVAL_BATCH 64

/* The scheduler's task numbers: a supervised trial's task is its row; a self-supervised trial's
 * is n_supervised_rows + its row. Rows: pt_results_row (seed, budget, index). */
typedef struct {
    int kind, s, b, i;
} TrialId;

static int rows_of(const PtExperiment *ex, int kind) {
    int per = kind == PT_KIND_SUPERVISED ? ex->cfg.trials_supervised : ex->cfg.trials_self_supervised;
    return ex->n_seeds * ex->cfg.trials_labels.n * (per > 0 ? per : 0);
}

static TrialId task_trial(const PtExperiment *ex, int task) {
    TrialId t;
    int n_sup = rows_of(ex, PT_KIND_SUPERVISED);
    t.kind = task < n_sup ? PT_KIND_SUPERVISED : PT_KIND_SELF_SUPERVISED;
    int row = t.kind == PT_KIND_SUPERVISED ? task : task - n_sup;
    int per = t.kind == PT_KIND_SUPERVISED ? ex->cfg.trials_supervised : ex->cfg.trials_self_supervised;
    int nb = ex->cfg.trials_labels.n;
    t.i = row % per;
    t.b = (row / per) % nb;
    t.s = row / per / nb;
    return t;
}

static int trial_epochs(const PtConfig *cfg, int kind) {
    return kind == PT_KIND_SUPERVISED ? cfg->trials_epochs
                                      : cfg->downstream_frozen_epochs + cfg->downstream_finetune_epochs;
}

/* A trial's relative work, for longest-first ordering and the time-left estimate, in training
 * images: epochs x labelled images, plus the final test pass (a forward image costs about a third
 * of a training image). */
static double trial_cost(const PtExperiment *ex, TrialId id) {
    return (double)trial_epochs(&ex->cfg, id.kind) * ex->cfg.trials_labels.v[id.b] + ex->ds.test_x.n / 3.0;
}

/* The last tensor the downstream trials take from the pretext model (weights[[1..6]] or the conv
 * layers only). */
static int last_transferred(const PtConfig *cfg) {
    return strcmp(cfg->downstream_transfer, "conv") == 0 ? PT_T_CONV2_BIAS : PT_T_DENSE1_BIAS;
}

/* The starting weights of a trial of seed s: the supervised trials' Glorot init (with paired
 * trials, its head taken from the downstream head's init, so the two kinds differ only in the
 * transferred tensors); the downstream trials' head init with the pretext model's transferred
 * tensors. */
static void trial_init_weights(const PtExperiment *ex, int kind, int s, PtModel *model) {
    PtRng rng;
    uint64_t seed = ex->seeds[s];
    int last = last_transferred(&ex->cfg);
    if (kind == PT_KIND_SUPERVISED) {
        pt_rng_seed(&rng, pt_stream_init(seed, PT_INIT_SUPERVISED_TRIALS));
        pt_model_init_glorot(model, &rng);
        if (ex->cfg.trials_paired) {
            PtModel *head = pt_model_create(model->n_classes, 1);
            pt_rng_seed(&rng, pt_stream_init(seed, PT_INIT_DOWNSTREAM_HEAD));
            pt_model_init_glorot(head, &rng);
            pt_model_copy_tensors(model, head, last + 1, PT_NUM_TENSORS - 1);
            pt_model_free(head);
        }
    } else {
        pt_rng_seed(&rng, pt_stream_init(seed, PT_INIT_DOWNSTREAM_HEAD));
        pt_model_init_glorot(model, &rng);
        const float *w = ex->pretext_weights[s];
        if (!w) pt_fatal("internal: rank %d has no pretext weights of seed %llu", ex->world.rank, (unsigned long long)seed);
        size_t end = model->tensors[last].offset + model->tensors[last].size;
        memcpy(model->params, w, end * sizeof(float)); /* the transferred tensors are the first ones */
    }
}

/* Runs one trial on this rank alone into res; the fit calls on_step (the scheduler's poll on rank
 * 0) once per step. model: a scratch model of 10 classes. Returns PT_FIT_*. */
static int run_trial(PtExperiment *ex, PtModel *model, TrialId id, PtTrialResult *res, void (*on_step)(void *),
                     void *step_ctx) {
    const PtConfig *cfg = &ex->cfg;
    double t0 = pt_now();
    uint64_t seed = pt_experiment_trial_seed(cfg, ex->seeds[id.s], id.kind, id.i);
    uint32_t labels = (uint32_t)cfg->trials_labels.v[id.b];
    uint32_t *samples = pt_malloc(labels * sizeof(uint32_t)); /* (labels) training-image indices */
    PtRng rng;
    pt_rng_seed(&rng, pt_stream_trial_sample(seed));
    pt_sample_without_replacement(samples, labels, ex->n_train, &rng);

    trial_init_weights(ex, id.kind, id.s, model);
    for (int l = 0; l < PT_NUM_LAYERS; l++) model->trainable[l] = 1;
    PtView train = {&ex->ds.train_x, ex->ds.train_y.labels, NULL, samples, labels};
    PtAdam adam;
    pt_adam_init(&adam, model->n_params, (float)cfg->learning_rate);
    PtHistory hist;
    pt_history_init(&hist, trial_epochs(cfg, id.kind));
    PtDist local = pt_dist_local();
    PtFitConfig fc = pt_fit_config_defaults();
    fc.epochs = cfg->trials_epochs;
    fc.batch_size = cfg->trials_batch_size;
    fc.validation_split = cfg->validation_split;
    fc.seed = pt_stream_trial_fit(seed, 1);
    fc.eval_batch_size = EVAL_BATCH;
    fc.phase = pt_kind_names[id.kind];
    fc.verbose = pt_verbosity() >= 2;
    fc.on_step = on_step;
    fc.on_step_ctx = step_ctx;
    int status = PT_FIT_OK;
    if (id.kind == PT_KIND_SUPERVISED) {
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
    pt_trial_init(res, id.i, 0);
    res->seed = seed;
    res->rank = ex->world.rank;
    res->experiment_seed = ex->seeds[id.s];
    res->labels = (int32_t)labels;
    res->n_samples = labels;
    res->sample_indices = samples;
    pt_history_copy(&res->history, &hist);
    if (status == PT_FIT_OK) {
        PtView test = {&ex->ds.test_x, ex->ds.test_y.labels, NULL, ex->identity, ex->ds.test_x.n};
        pt_evaluate(model, &test, EVAL_BATCH, &local, &res->test_loss, &res->test_accuracy);
        res->done = 1;
    } else if (status == PT_FIT_DIVERGED) {
        fprintf(stderr, "pretext: error (rank %d): %s trial %d (seed %llu, %u labels) diverged (non-finite loss)\n",
                ex->world.rank, pt_kind_names[id.kind], id.i, (unsigned long long)ex->seeds[id.s], labels);
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
static void record_trial(PtExperiment *ex, TrialId id, const PtTrialResult *src) {
    PtResults *r = &ex->results;
    PtTrialResult *dst = &r->trials[id.kind][pt_results_row(r, id.kind, id.s, id.b, id.i)];
    pt_trial_copy(dst, src);
    pt_experiment_save(ex);
    ex->trials_done_now++;
    int done = ex->trials_done_before + ex->trials_done_now;
    /* Time left: the work left (in trial_cost units) at the seconds per unit the finished trials
     * took, spread over all ranks. Not elapsed time per trial: trials run longest first and
     * while other ranks still train phases, so that would overestimate many times over. */
    double cost = trial_cost(ex, id);
    ex->trials_work_left -= cost;
    ex->trials_work_done += cost;
    ex->trials_seconds_done += src->seconds;
    double work_left = ex->trials_work_left > 0 ? ex->trials_work_left : 0.0; /* float sums may undershoot */
    double left = work_left * (ex->trials_seconds_done / ex->trials_work_done) / ex->world.size;
    char eta[32];
    format_eta(eta, sizeof eta, left);
    if (ex->n_seeds == 1 && ex->cfg.trials_labels.n == 1)
        pt_log(1, "trial %-15s %3d on rank %d: test_accuracy %.4f - test_loss %.4f - %.1fs - %d/%d done - ~%s left\n",
               pt_kind_names[id.kind], src->index, src->rank, src->test_accuracy, src->test_loss, src->seconds, done,
               ex->trials_total, eta);
    else
        pt_log(1, "trial %-15s seed %llu labels %d #%d on rank %d: test_accuracy %.4f - test_loss %.4f - %.1fs - "
                  "%d/%d done - ~%s left\n",
               pt_kind_names[id.kind], (unsigned long long)src->experiment_seed, src->labels, src->index, src->rank,
               src->test_accuracy, src->test_loss, src->seconds, done, ex->trials_total, eta);
}

/* ---------------------------------------------------------------- the scheduler's callbacks */

typedef struct {
    PtExperiment *ex;
    PtModel *model;          /* this rank's scratch model */
    PtTrialResult result;    /* this rank's last trial */
} TrialRunner;

static TrialRunner g_runner; /* the callbacks' context: one queue per process */

static int trial_task(void *ctx, PtScheduler *sched, int task, const unsigned char *payload, size_t payload_len,
                      unsigned char **out, size_t *out_len) {
    TrialRunner *tr = ctx;
    PtExperiment *ex = tr->ex;
    TrialId id = task_trial(ex, task);
    if (payload_len) { /* the pretext weights of a seed this rank has not had yet */
        int32_t s;
        memcpy(&s, payload, sizeof s);
        size_t n = (payload_len - sizeof s) / sizeof(float);
        if (s < 0 || s >= ex->n_seeds || sizeof s + n * sizeof(float) != payload_len)
            pt_fatal("internal: a task payload of %zu bytes for seed %d", payload_len, s);
        free(ex->pretext_weights[s]);
        ex->pretext_weights[s] = pt_malloc(n * sizeof(float));
        memcpy(ex->pretext_weights[s], payload + sizeof s, n * sizeof(float));
    }
    if (id.kind == PT_KIND_SELF_SUPERVISED && ex->world.rank == 0 && !ex->pretext_weights[id.s]) {
        const float *w = ex->results.seeds[id.s].phase[PT_PHASE_PRETEXT].weights;
        size_t n = ex->pretext_params;
        ex->pretext_weights[id.s] = pt_malloc(n * sizeof(float));
        memcpy(ex->pretext_weights[id.s], w, n * sizeof(float));
    }
    int st = run_trial(ex, tr->model, id, &tr->result, pt_scheduler_poll, sched);
    *out_len = pt_trial_packed_size(&tr->result);
    *out = pt_malloc(*out_len);
    pt_trial_pack(&tr->result, *out);
    return st == PT_FIT_OK ? PT_TASK_OK : st == PT_FIT_DIVERGED ? PT_TASK_FAILED : PT_TASK_INTERRUPTED;
}

static void trial_done(void *ctx, int task, int status, int rank, const unsigned char *msg, size_t len) {
    TrialRunner *tr = ctx;
    if (status != PT_TASK_OK) return; /* a divergence was reported where it happened */
    TrialId id = task_trial(tr->ex, task);
    PtTrialResult r;
    pt_trial_init(&r, id.i, 0);
    PtError err;
    if (pt_trial_unpack(&r, msg, len, &err) != 0) pt_fatal("trial message from rank %d: %s", rank, err.msg);
    if (r.index != id.i || r.experiment_seed != tr->ex->seeds[id.s] || r.labels != tr->ex->cfg.trials_labels.v[id.b])
        pt_fatal("trial message from rank %d: trial %d (seed %llu, labels %d), expected %d", rank, r.index,
                 (unsigned long long)r.experiment_seed, r.labels, id.i);
    record_trial(tr->ex, id, &r);
    pt_trial_free(&r);
}

static int trial_should_stop(void *ctx, int handed_out) {
    TrialRunner *tr = ctx;
    return pt_stop_requested() ||
           (tr->ex->test.stop_after_trials >= 0 && handed_out >= tr->ex->test.stop_after_trials);
}

static int trial_ready(void *ctx, int task) {
    TrialRunner *tr = ctx;
    TrialId id = task_trial(tr->ex, task);
    return id.kind == PT_KIND_SUPERVISED || tr->ex->results.seeds[id.s].phase[PT_PHASE_PRETEXT].done;
}

/* The pretext weights of the task's seed, once per rank (rank 0 has them in its results). */
static void trial_payload(void *ctx, int task, int rank, unsigned char **bytes, size_t *len) {
    TrialRunner *tr = ctx;
    PtExperiment *ex = tr->ex;
    TrialId id = task_trial(ex, task);
    *bytes = NULL;
    *len = 0;
    if (id.kind != PT_KIND_SELF_SUPERVISED) return;
    int64_t *sent = &ex->sent_seeds[(size_t)rank * (size_t)((ex->n_seeds + 63) / 64) + (size_t)(id.s / 64)];
    if (*sent & ((int64_t)1 << (id.s % 64))) return;
    *sent |= (int64_t)1 << (id.s % 64);
    size_t n = ex->pretext_params;
    int32_t s = id.s;
    *len = sizeof s + n * sizeof(float);
    *bytes = pt_malloc(*len);
    memcpy(*bytes, &s, sizeof s);
    memcpy(*bytes + sizeof s, ex->results.seeds[id.s].phase[PT_PHASE_PRETEXT].weights, n * sizeof(float));
}

/* Events of other groups' phases go to experiment.c. */
static void trial_event(void *ctx, int rank, const unsigned char *msg, size_t len) {
    TrialRunner *tr = ctx;
    pt_experiment_on_event(tr->ex, rank, msg, len);
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

void pt_trials_prepare(PtExperiment *ex) {
    const PtConfig *cfg = &ex->cfg;
    g_runner.ex = ex;
    g_runner.model = pt_model_create(ex->ds.n_classes, cfg->trials_batch_size > EVAL_BATCH ? cfg->trials_batch_size : EVAL_BATCH);
    pt_trial_init(&g_runner.result, 0, 0);
    {
        PtTensorInfo info[PT_NUM_TENSORS];
        ex->pretext_params = pt_tensor_layout(4, info);
    }
    int total = rows_of(ex, PT_KIND_SUPERVISED) + rows_of(ex, PT_KIND_SELF_SUPERVISED);
    int *order = pt_malloc((size_t)(total > 0 ? total : 1) * sizeof(int));
    int n_order = 0;
    if (ex->world.rank == 0) {
        ex->sent_seeds = pt_calloc((size_t)ex->world.size * (size_t)((ex->n_seeds + 63) / 64), sizeof(int64_t));
        Task *tasks = pt_malloc((size_t)(total > 0 ? total : 1) * sizeof(Task));
        ex->trials_total = total;
        for (int t = 0; t < total; t++) {
            TrialId id = task_trial(ex, t);
            if (ex->results.trials[id.kind][pt_results_row(&ex->results, id.kind, id.s, id.b, id.i)].done) {
                ex->trials_done_before++;
                continue;
            }
            tasks[n_order].task = t;
            tasks[n_order].cost = trial_cost(ex, id);
            ex->trials_work_left += tasks[n_order++].cost;
        }
        qsort(tasks, (size_t)n_order, sizeof(Task), compare_tasks);
        for (int i = 0; i < n_order; i++) order[i] = tasks[i].task;
        free(tasks);
        ex->trials_start = pt_now();
    }
    PtSchedulerCallbacks cb = {trial_task, trial_done, trial_should_stop, trial_ready, trial_payload, trial_event,
                               &g_runner};
    ex->sched = pt_scheduler_create(MPI_COMM_WORLD, order, n_order, &cb);
    free(order);
}

int pt_trials_run(PtExperiment *ex) {
    const PtConfig *cfg = &ex->cfg;
    if (ex->world.rank == 0) {
        if (ex->trials_done_before)
            pt_log(1, "trials: %d of %d already done in %s, %d to run\n", ex->trials_done_before, ex->trials_total,
                   ex->out_path, ex->trials_total - ex->trials_done_before);
        else if (ex->n_seeds == 1 && cfg->trials_labels.n == 1)
            pt_log(1, "trials: %d supervised + %d self-supervised, %d labelled images each, over %d ranks\n",
                   cfg->trials_supervised, cfg->trials_self_supervised, cfg->trials_labels.v[0], ex->world.size);
        else
            pt_log(1, "trials: %d in all (%d seeds x %d budgets x (%d supervised + %d self-supervised)%s), over %d ranks\n",
                   ex->trials_total, ex->n_seeds, cfg->trials_labels.n, cfg->trials_supervised,
                   cfg->trials_self_supervised, cfg->trials_paired ? ", paired" : "", ex->world.size);
    }
    int st = pt_scheduler_run(ex->sched);
    return st == PT_TASK_OK ? PT_FIT_OK : st == PT_TASK_FAILED ? PT_FIT_DIVERGED : PT_FIT_INTERRUPTED;
}

void pt_trials_free(PtExperiment *ex) {
    pt_scheduler_free(ex->sched);
    ex->sched = NULL;
    pt_trial_free(&g_runner.result);
    pt_model_free(g_runner.model);
    g_runner.model = NULL;
    if (ex->pretext_weights)
        for (int s = 0; s < ex->n_seeds; s++) free(ex->pretext_weights[s]);
    free(ex->pretext_weights);
    ex->pretext_weights = NULL;
    free(ex->sent_seeds);
    ex->sent_seeds = NULL;
}
