/* experiment.c: the phases of every seed, trained by groups of ranks, their checkpoints and results
 * reported to rank 0 (directly, or as scheduler events from the other groups' first ranks), and
 * the run as a whole (see pt_experiment.h). */
#define _POSIX_C_SOURCE 200809L
#include "pt_experiment.h"

#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pt_adam.h"
#include "pt_gradsync.h"
#include "pt_keras_weights.h"
#include "pt_mpi.h"
#include "pt_rng.h"
#include "pt_signals.h"
#include "pt_streams.h"
#include "pt_util.h"

#define EVAL_BATCH 64 /* inference batch: numerically irrelevant, bounds each model's workspace */

/* ---------------------------------------------------------------- the phases' table */

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
    [PT_PHASE_BENCHMARK] = {"supervised", 0 /* the data's classes */, PT_INIT_BENCHMARK, 0,
                            offsetof(PtConfig, benchmark_epochs), offsetof(PtConfig, benchmark_batch_size)},
    [PT_PHASE_PRETEXT] = {"rotation task", 4, PT_INIT_PRETEXT, 1,
                          offsetof(PtConfig, pretext_epochs), offsetof(PtConfig, pretext_batch_size)},
};

static int config_int(const PtConfig *cfg, size_t offset) { return *(const int *)((const char *)cfg + offset); }

/* A phase's classes: its own (4 rotations), or the data's. */
static int phase_classes(const PtExperiment *ex, PtPhaseId p) {
    return phases[p].n_classes ? phases[p].n_classes : ex->ds.n_classes;
}

int pt_experiment_phase_wanted(const PtConfig *cfg, PtPhaseId p) {
    return p != PT_PHASE_BENCHMARK || cfg->benchmark_enabled;
}

/* The phases to train are units (seed, phase): the wanted phases of seed 0 in phase order, then
 * seed 1's, and so on; unit u is trained by group u % n_groups. One seed's benchmark and pretext
 * phases are independent, so with two groups they train at the same time. */
int pt_experiment_phase_units(const PtConfig *cfg, int n_seeds) {
    int per_seed = 0;
    for (int p = 0; p < PT_NUM_PHASES; p++) per_seed += pt_experiment_phase_wanted(cfg, (PtPhaseId)p);
    return n_seeds * per_seed;
}

int pt_experiment_phase_group(const PtConfig *cfg, int s, PtPhaseId p, int n_groups) {
    int k = 0; /* p's index among the wanted phases */
    for (int q = 0; q < (int)p; q++) k += pt_experiment_phase_wanted(cfg, (PtPhaseId)q);
    return (pt_experiment_phase_units(cfg, s) + k) % n_groups;
}

static int phase_group(const PtExperiment *ex, int s, PtPhaseId p) {
    return pt_experiment_phase_group(&ex->cfg, s, p, ex->n_groups);
}

uint64_t pt_experiment_trial_seed(const PtConfig *cfg, uint64_t experiment_seed, int kind, int index) {
    return cfg->trials_paired ? pt_stream_trial_pair(experiment_seed, index)
                              : pt_stream_trial(experiment_seed, kind, index);
}

void pt_experiment_weights_path(const PtExperiment *ex, int s, PtPhaseId phase, char *buf, size_t n) {
    if (ex->n_seeds == 1)
        snprintf(buf, n, "%.4000s.%s.weights.h5", ex->weights_stem, pt_phase_names[phase]);
    else
        snprintf(buf, n, "%.4000s.seed%llu.%s.weights.h5", ex->weights_stem, (unsigned long long)ex->seeds[s],
                 pt_phase_names[phase]);
}

static void iso_now(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void pt_experiment_save(PtExperiment *ex) {
    PtError err;
    PtResults *r = &ex->results;
    if (r->n_segments > 0) iso_now(r->segments[r->n_segments - 1].end_time, sizeof r->segments[0].end_time);
    if (pt_results_save(r, ex->out_path, &err) != 0)
        pt_fatal("could not save the results: %s (the previous contents of %s are intact; free space "
                 "or fix the folder, then rerun the same command to resume)",
                 err.msg, ex->out_path);
}

/* The pretext pseudo-labels of a seed: one uniform draw from {0,1,2,3} per image, train and test
 * streams apart. out[0] (train n), out[1] (test n), malloc'ed. */
static void draw_rotations(const PtExperiment *ex, uint64_t seed, uint8_t *out[2]) {
    const uint32_t counts[2] = {ex->ds.train_x.n, ex->ds.test_x.n};
    for (int split = 0; split < 2; split++) {
        out[split] = pt_malloc(counts[split] ? counts[split] : 1);
        PtRng rng;
        pt_rng_seed(&rng, pt_stream_rotations(seed, split));
        for (uint32_t i = 0; i < counts[split]; i++) out[split][i] = (uint8_t)pt_rng_below(&rng, 4);
    }
}

/* ---------------------------------------------------------------- messages between groups */

/* A byte buffer for the events other groups' first ranks send rank 0. */
typedef struct {
    unsigned char *data;
    size_t len, cap, pos;
} Buf;

static void put(Buf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n) cap *= 2;
        unsigned char *grown = pt_malloc(cap);
        if (b->len) memcpy(grown, b->data, b->len);
        free(b->data);
        b->data = grown;
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
}
static void put_i32(Buf *b, int32_t v) { put(b, &v, sizeof v); }
static void put_f64(Buf *b, double v) { put(b, &v, sizeof v); }
static void get(Buf *b, void *p, size_t n) {
    if (b->pos + n > b->len) pt_fatal("internal: a malformed message between ranks (%zu bytes)", b->len);
    memcpy(p, b->data + b->pos, n);
    b->pos += n;
}
static int32_t get_i32(Buf *b) { int32_t v; get(b, &v, sizeof v); return v; }
static double get_f64(Buf *b) { double v; get(b, &v, sizeof v); return v; }
static void put_history(Buf *b, const PtHistory *h) {
    put_i32(b, h->epochs);
    for (int c = 0; c < PT_HISTORY_COLUMNS; c++) put(b, pt_history_column(h, c), (size_t)h->epochs * sizeof(double));
}
static void get_history(Buf *b, PtHistory *h) {
    int epochs = get_i32(b);
    if (epochs < 0 || epochs > 1000000) pt_fatal("internal: a message with %d epochs", epochs);
    double *cols = pt_malloc((size_t)(epochs > 0 ? epochs : 1) * PT_HISTORY_COLUMNS * sizeof(double));
    for (int c = 0; c < PT_HISTORY_COLUMNS; c++) get(b, cols + (size_t)c * epochs, (size_t)epochs * sizeof(double));
    pt_history_free(h);
    pt_history_init(h, epochs);
    for (int e = 0; e < epochs; e++) {
        double row[PT_HISTORY_COLUMNS];
        for (int c = 0; c < PT_HISTORY_COLUMNS; c++) row[c] = cols[(size_t)c * epochs + e];
        pt_history_append_row(h, row);
    }
    free(cols);
}

enum { EV_CHECKPOINT = 1, EV_PHASE_DONE = 2, EV_PHASE_STOPPED = 3, EV_GROUP_OVER = 4 };

/* ---------------------------------------------------------------- rank 0's records */

/* Rank 0: a phase's checkpoint (its own group's, or from an event). */
static void record_checkpoint(PtExperiment *ex, int s, PtPhaseId p, int epochs_done, int adam_t, double seconds,
                              const float *weights, const float *m, const float *v, size_t n_params,
                              const PtHistory *hist) {
    PtPhaseResult *res = &ex->results.seeds[s].phase[p];
    size_t bytes = n_params * sizeof(float);
    if (!res->ckpt_weights) {
        res->ckpt_weights = pt_malloc(bytes);
        res->ckpt_adam_m = pt_malloc(bytes);
        res->ckpt_adam_v = pt_malloc(bytes);
    }
    memcpy(res->ckpt_weights, weights, bytes);
    memcpy(res->ckpt_adam_m, m, bytes);
    memcpy(res->ckpt_adam_v, v, bytes);
    res->ckpt_adam_t = adam_t;
    res->ckpt_epochs = epochs_done;
    res->ckpt_seconds = seconds;
    res->n_classes = phase_classes(ex, p);
    pt_history_copy(&res->history, hist);
    pt_experiment_save(ex);
}

/* Rank 0: a finished phase: stored, saved, its Keras weights file written; a pretext model makes
 * its seed's self-supervised trials possible. */
static void record_phase(PtExperiment *ex, int s, PtPhaseId p, double test_loss, double test_acc, double seconds,
                         const float *weights, size_t n_params, const PtHistory *hist) {
    PtPhaseResult *res = &ex->results.seeds[s].phase[p];
    pt_phase_checkpoint_clear(res);
    res->done = 1;
    res->n_classes = phase_classes(ex, p);
    res->test_loss = test_loss;
    res->test_accuracy = test_acc;
    res->seconds = seconds;
    pt_history_copy(&res->history, hist);
    free(res->weights);
    res->weights = pt_malloc(n_params * sizeof(float));
    memcpy(res->weights, weights, n_params * sizeof(float));
    if (phases[p].rotated) {
        uint8_t *rot[2];
        draw_rotations(ex, ex->seeds[s], rot);
        free(res->train_labels);
        free(res->test_labels);
        res->train_labels = rot[0];
        res->n_train_labels = ex->ds.train_x.n;
        res->test_labels = rot[1];
        res->n_test_labels = ex->ds.test_x.n;
    }
    pt_experiment_save(ex);
    char path[4200];
    pt_experiment_weights_path(ex, s, p, path, sizeof path);
    PtError err;
    if (pt_keras_weights_save(path, weights, phase_classes(ex, p), &err) != 0) pt_fatal("%s", err.msg);
    if (ex->n_groups > 1 && ex->n_seeds == 1)
        pt_log(1, "%s: test_loss %.4f - test_accuracy %.4f - %.1fs\n", pt_phase_names[p], test_loss, test_acc, seconds);
    else if (ex->n_seeds > 1)
        pt_log(1, "%s of seed %llu: test_loss %.4f - test_accuracy %.4f - %.1fs\n", pt_phase_names[p],
               (unsigned long long)ex->seeds[s], test_loss, test_acc, seconds);
}

/* Rank 0: stop everything: the other groups still in their phases are told to stop, and rank 0's
 * own group stops at its next step; the queue hands out nothing more. */
static void stop_all(PtExperiment *ex, int failed) {
    if (failed) ex->phases_failed = 1;
    else ex->phases_stopped = 1;
    pt_scheduler_stop(ex->sched, failed);
    for (int g = 1; g < ex->n_groups; g++)
        if (!ex->group_phases_over[g]) {
            pt_scheduler_order_stop(ex->sched, ex->group_leader[g]);
            ex->group_phases_over[g] = 1; /* told once */
        }
    if (!pt_stop_requested()) pt_request_stop(SIGUSR1);
}

void pt_experiment_on_event(PtExperiment *ex, int rank, const unsigned char *msg, size_t len) {
    Buf b = {(unsigned char *)msg, len, len, 0};
    int type = get_i32(&b);
    if (type == EV_GROUP_OVER) {
        int g = get_i32(&b);
        if (g > 0 && g < ex->n_groups) ex->group_phases_over[g] = 1;
        return;
    }
    int s = get_i32(&b);
    PtPhaseId p = (PtPhaseId)get_i32(&b);
    if (s < 0 || s >= ex->n_seeds || p < 0 || p >= PT_NUM_PHASES)
        pt_fatal("internal: an event from rank %d about seed %d, phase %d", rank, s, (int)p);
    if (type == EV_PHASE_STOPPED) {
        int status = get_i32(&b);
        stop_all(ex, status == PT_FIT_DIVERGED);
        return;
    }
    PtHistory hist;
    pt_history_init(&hist, 1);
    if (type == EV_CHECKPOINT) {
        int epochs_done = get_i32(&b), adam_t = get_i32(&b);
        double seconds = get_f64(&b);
        size_t n = (size_t)get_i32(&b);
        const float *w = (const float *)(b.data + b.pos);
        if (b.pos + 3 * n * sizeof(float) > b.len) pt_fatal("internal: a short checkpoint message");
        float *copy = pt_malloc(3 * n * sizeof(float)); /* aligned copies of w, m, v */
        memcpy(copy, w, 3 * n * sizeof(float));
        b.pos += 3 * n * sizeof(float);
        get_history(&b, &hist);
        record_checkpoint(ex, s, p, epochs_done, adam_t, seconds, copy, copy + n, copy + 2 * n, n, &hist);
        free(copy);
    } else if (type == EV_PHASE_DONE) {
        double test_loss = get_f64(&b), test_acc = get_f64(&b), seconds = get_f64(&b);
        size_t n = (size_t)get_i32(&b);
        float *w = pt_malloc(n * sizeof(float));
        get(&b, w, n * sizeof(float));
        get_history(&b, &hist);
        record_phase(ex, s, p, test_loss, test_acc, seconds, w, n, &hist);
        free(w);
    } else {
        pt_fatal("internal: an event of type %d from rank %d", type, rank);
    }
    pt_history_free(&hist);
}

/* ---------------------------------------------------------------- one phase, one group */

/* What a group knows of a phase before it starts: done (nothing to train), or the checkpoint to
 * continue from (epochs > 0: weights, Adam state, history, seconds so far). */
typedef struct {
    int done;
    int epochs;
    int adam_t;
    double seconds;
    float *weights, *m, *v;   /* (n_params) each, on the group's first rank */
    PtHistory history;
} PhaseStart;

/* The per-epoch checkpoint of a phase (PtFitConfig.on_epoch): the group's first rank sends the
 * weights, Adam's state and the history so far to rank 0, which saves them. */
typedef struct {
    PtExperiment *ex;
    int s;
    PtPhaseId p;
    double t0, seconds_before; /* this run's start of the phase; time spent in earlier runs */
} PhaseCheckpoint;

static void phase_checkpoint(void *ctx, int epochs_done, const PtModel *model, const PtAdam *adam,
                             const PtHistory *hist) {
    PhaseCheckpoint *pc = ctx;
    PtExperiment *ex = pc->ex;
    double seconds = pc->seconds_before + (pt_now() - pc->t0);
    if (ex->group_dist.rank == 0) {
        if (ex->world.rank == 0) {
            record_checkpoint(ex, pc->s, pc->p, epochs_done, (int)adam->t, seconds, model->params, adam->m, adam->v,
                              model->n_params, hist);
        } else {
            Buf b = {0};
            put_i32(&b, EV_CHECKPOINT);
            put_i32(&b, pc->s);
            put_i32(&b, pc->p);
            put_i32(&b, epochs_done);
            put_i32(&b, (int32_t)adam->t);
            put_f64(&b, seconds);
            put_i32(&b, (int32_t)model->n_params);
            put(&b, model->params, model->n_params * sizeof(float));
            put(&b, adam->m, model->n_params * sizeof(float));
            put(&b, adam->v, model->n_params * sizeof(float));
            put_history(&b, hist);
            pt_scheduler_send_event(ex->sched, b.data, b.len);
            free(b.data);
        }
    }
    /* test-only: stop like a signal would; the flag reaches the group's ranks with the next step */
    if (ex->test.stop_after_epochs >= 0 && ++ex->epochs_run >= ex->test.stop_after_epochs)
        pt_request_stop(SIGUSR1);
}

/* The fits' per-step hook: rank 0 answers the queue (trials of ranks done with their phases,
 * events of other groups); another group's first rank checks for a stop order. */
static void phase_step(void *ctx) {
    PtExperiment *ex = ctx;
    if (ex->world.rank == 0) pt_scheduler_poll(ex->sched);
    else if (pt_scheduler_stop_ordered(ex->sched)) pt_request_stop(SIGUSR1);
}

/* Trains phase p of seed index s on this rank's group, continuing from start; returns PT_FIT_*
 * (the same on every rank of the group) and reports to rank 0. */
static int train_phase(PtExperiment *ex, int s, PtPhaseId p, PhaseStart *start) {
    const PtConfig *cfg = &ex->cfg;
    const PhaseSpec *spec = &phases[p];
    const PtDist *g = &ex->group_dist;
    const char *name = pt_phase_names[p];
    uint64_t seed = ex->seeds[s];
    int epochs = config_int(cfg, spec->epochs_key);
    int batch = config_int(cfg, spec->batch_key);
    int local_batch = (batch + g->size - 1) / g->size;
    PtModel *model = pt_model_create(phase_classes(ex, p), local_batch > EVAL_BATCH ? local_batch : EVAL_BATCH);
    PtRng init_rng;
    pt_rng_seed(&init_rng, pt_stream_init(seed, spec->init));
    pt_model_init_glorot(model, &init_rng);
    PtAdam adam;
    pt_adam_init(&adam, model->n_params, (float)cfg->learning_rate);
    PtHistory hist;
    pt_history_init(&hist, epochs);
    int first_epoch = start->epochs > 0 && start->epochs <= epochs ? start->epochs : 0;
    double seconds_before = 0.0;
    if (first_epoch > 0) {
        if (g->rank == 0) {
            size_t bytes = model->n_params * sizeof(float);
            memcpy(model->params, start->weights, bytes);
            memcpy(adam.m, start->m, bytes);
            memcpy(adam.v, start->v, bytes);
            adam.t = start->adam_t;
            pt_history_extend(&hist, &start->history);
            seconds_before = start->seconds;
        }
        long long t = (long long)adam.t;
        pt_mpi_check(MPI_Bcast(model->params, (int)model->n_params, MPI_FLOAT, 0, g->comm), "MPI_Bcast (checkpoint weights)");
        pt_mpi_check(MPI_Bcast(adam.m, (int)model->n_params, MPI_FLOAT, 0, g->comm), "MPI_Bcast (checkpoint Adam m)");
        pt_mpi_check(MPI_Bcast(adam.v, (int)model->n_params, MPI_FLOAT, 0, g->comm), "MPI_Bcast (checkpoint Adam v)");
        pt_mpi_check(MPI_Bcast(&t, 1, MPI_LONG_LONG, 0, g->comm), "MPI_Bcast (checkpoint Adam t)");
        pt_mpi_check(MPI_Bcast(&seconds_before, 1, MPI_DOUBLE, 0, g->comm), "MPI_Bcast (checkpoint seconds)");
        adam.t = t;
        /* the history (epochs so far) lives on the group's first rank, which reports */
    }
    uint8_t *rot[2] = {NULL, NULL};
    if (spec->rotated) draw_rotations(ex, seed, rot);
    const uint8_t *labels[2] = {spec->rotated ? rot[0] : ex->ds.train_y.labels, spec->rotated ? rot[1] : ex->ds.test_y.labels};
    PtView train = {&ex->ds.train_x, labels[0], rot[0], ex->identity, ex->n_train};
    PtView test = {&ex->ds.test_x, labels[1], rot[1], ex->identity, ex->ds.test_x.n};
    PhaseCheckpoint checkpoint = {ex, s, p, 0.0, seconds_before};
    PtFitConfig fc = pt_fit_config_defaults();
    fc.epochs = epochs;
    fc.batch_size = batch;
    fc.validation_split = cfg->validation_split;
    fc.seed = pt_stream_phase_fit(seed, p);
    fc.eval_batch_size = EVAL_BATCH;
    fc.phase = name;
    fc.verbose = pt_verbosity() >= 1 && ex->world.rank == 0;
    fc.gradient_sum = pt_gradsum_mode(cfg->run_gradient_sum);
    fc.first_epoch = first_epoch;
    fc.on_epoch = phase_checkpoint;
    fc.on_epoch_ctx = &checkpoint;
    if (ex->world.rank == 0 || g->rank == 0) {
        fc.on_step = phase_step;
        fc.on_step_ctx = ex;
    }
    uint32_t n_fit = pt_split_train_count(ex->n_train, cfg->validation_split);
    if (ex->n_seeds > 1)
        pt_log(1, "%s of seed %llu: %s (%d classes), %u images (%u train / %u validation), %d ranks, global batch %d, "
                  "%d epochs\n",
               name, (unsigned long long)seed, spec->task, phase_classes(ex, p), ex->n_train, n_fit, ex->n_train - n_fit,
               g->size, batch, epochs);
    else
        pt_log(1, "%s: %s (%d classes), %u images (%u train / %u validation), %d ranks, global batch %d, %d epochs\n",
               name, spec->task, phase_classes(ex, p), ex->n_train, n_fit, ex->n_train - n_fit, g->size, batch, epochs);
    double t0 = pt_now();
    checkpoint.t0 = t0;
    int status = pt_fit(model, &adam, &train, &fc, g, &hist);
    if (status == PT_FIT_OK) {
        double test_loss, test_acc;
        pt_evaluate(model, &test, EVAL_BATCH, g, &test_loss, &test_acc);
        double seconds = seconds_before + (pt_now() - t0);
        if (ex->n_seeds == 1 && ex->n_groups == 1) /* otherwise rank 0 says it as the results come in */
            pt_log(1, "%s: test_loss %.4f - test_accuracy %.4f - %.1fs\n", name, test_loss, test_acc, seconds);
        if (g->rank == 0) {
            if (ex->world.rank == 0) {
                record_phase(ex, s, p, test_loss, test_acc, seconds, model->params, model->n_params, &hist);
            } else {
                Buf b = {0};
                put_i32(&b, EV_PHASE_DONE);
                put_i32(&b, s);
                put_i32(&b, p);
                put_f64(&b, test_loss);
                put_f64(&b, test_acc);
                put_f64(&b, seconds);
                put_i32(&b, (int32_t)model->n_params);
                put(&b, model->params, model->n_params * sizeof(float));
                put_history(&b, &hist);
                pt_scheduler_send_event(ex->sched, b.data, b.len);
                free(b.data);
            }
        }
    } else if (g->rank == 0) {
        if (ex->world.rank == 0) {
            stop_all(ex, status == PT_FIT_DIVERGED);
        } else {
            Buf b = {0};
            put_i32(&b, EV_PHASE_STOPPED);
            put_i32(&b, s);
            put_i32(&b, p);
            put_i32(&b, status);
            pt_scheduler_send_event(ex->sched, b.data, b.len);
            free(b.data);
        }
    }
    free(rot[0]);
    free(rot[1]);
    pt_history_free(&hist);
    pt_adam_free(&adam);
    pt_model_free(model);
    return status;
}

/* ---------------------------------------------------------------- the phases of all seeds */

/* Where every phase stands when the run starts: rank 0 tells every rank which phases are done
 * and how far checkpoints got, and sends each other group's first rank the checkpoints it will
 * continue from. starts: (n_seeds * PT_NUM_PHASES), filled for this rank's group's seeds. */
static void distribute_starts(PtExperiment *ex, PhaseStart *starts) {
    int n = ex->n_seeds * PT_NUM_PHASES;
    int *state = pt_calloc((size_t)n * 2, sizeof *state); /* done, checkpoint epochs */
    if (ex->world.rank == 0)
        for (int s = 0; s < ex->n_seeds; s++)
            for (int p = 0; p < PT_NUM_PHASES; p++) {
                const PtPhaseResult *res = &ex->results.seeds[s].phase[p];
                state[2 * (s * PT_NUM_PHASES + p)] = res->done;
                state[2 * (s * PT_NUM_PHASES + p) + 1] = res->done ? 0 : res->ckpt_epochs;
            }
    pt_mpi_check(MPI_Bcast(state, 2 * n, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast (phase states)");
    MPI_Request *requests = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof *requests);
    unsigned char **blobs = pt_calloc((size_t)(n > 0 ? n : 1), sizeof *blobs); /* rank 0's sends */
    int n_requests = 0;
    for (int s = 0; s < ex->n_seeds; s++)
        for (int p = 0; p < PT_NUM_PHASES; p++) {
            int i = s * PT_NUM_PHASES + p;
            int g = phase_group(ex, s, (PtPhaseId)p);
            PhaseStart *st = &starts[i];
            st->done = state[2 * i];
            st->epochs = state[2 * i + 1];
            /* rank 0 says what it found for every group (a group's own first rank prints nothing) */
            char of_seed[64] = "";
            if (ex->n_seeds > 1) snprintf(of_seed, sizeof of_seed, " of seed %llu", (unsigned long long)ex->seeds[s]);
            if (ex->world.rank == 0 && pt_experiment_phase_wanted(&ex->cfg, (PtPhaseId)p) && st->done)
                pt_log(1, "%s%s: already done (test accuracy %.4f), read back from %s\n", pt_phase_names[p], of_seed,
                       ex->results.seeds[s].phase[p].test_accuracy, ex->out_path);
            if (st->epochs == 0) continue;
            int leader = ex->group_leader[g];
            if (ex->world.rank == 0 && pt_experiment_phase_wanted(&ex->cfg, (PtPhaseId)p))
                pt_log(1, "%s%s: resuming after epoch %d of %d (checkpoint read back from %s)\n", pt_phase_names[p],
                       of_seed, st->epochs, config_int(&ex->cfg, phases[p].epochs_key), ex->out_path);
            if (ex->world.rank == 0 && leader == 0) { /* rank 0's own group: straight from the results */
                const PtPhaseResult *res = &ex->results.seeds[s].phase[p];
                st->weights = res->ckpt_weights;
                st->m = res->ckpt_adam_m;
                st->v = res->ckpt_adam_v;
                st->adam_t = res->ckpt_adam_t;
                st->seconds = res->ckpt_seconds;
                pt_history_copy(&st->history, &res->history);
            } else if (ex->world.rank == 0) { /* to that group's first rank */
                const PtPhaseResult *res = &ex->results.seeds[s].phase[p];
                Buf b = {0};
                put_i32(&b, res->ckpt_adam_t);
                put_f64(&b, res->ckpt_seconds);
                size_t np = pt_tensor_layout(res->n_classes, (PtTensorInfo[PT_NUM_TENSORS]){{0}});
                put_i32(&b, (int32_t)np);
                put(&b, res->ckpt_weights, np * sizeof(float));
                put(&b, res->ckpt_adam_m, np * sizeof(float));
                put(&b, res->ckpt_adam_v, np * sizeof(float));
                put_history(&b, &res->history);
                blobs[i] = b.data;
                pt_mpi_check(MPI_Isend(b.data, (int)b.len, MPI_BYTE, leader, 100 + i, MPI_COMM_WORLD, &requests[n_requests++]),
                             "MPI_Isend (checkpoint)");
            } else if (ex->world.rank == leader) { /* this group's first rank receives it */
                MPI_Status mst;
                pt_mpi_check(MPI_Probe(0, 100 + i, MPI_COMM_WORLD, &mst), "MPI_Probe (checkpoint)");
                int count;
                MPI_Get_count(&mst, MPI_BYTE, &count);
                Buf b = {pt_malloc((size_t)count), (size_t)count, (size_t)count, 0};
                pt_mpi_check(MPI_Recv(b.data, count, MPI_BYTE, 0, 100 + i, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
                             "MPI_Recv (checkpoint)");
                st->adam_t = get_i32(&b);
                st->seconds = get_f64(&b);
                size_t np = (size_t)get_i32(&b);
                st->weights = pt_malloc(np * sizeof(float));
                st->m = pt_malloc(np * sizeof(float));
                st->v = pt_malloc(np * sizeof(float));
                get(&b, st->weights, np * sizeof(float));
                get(&b, st->m, np * sizeof(float));
                get(&b, st->v, np * sizeof(float));
                get_history(&b, &st->history);
                free(b.data); /* st owns its arrays now: freed at the end of the run */
            }
        }
    if (n_requests) {
        /* real statuses rather than MPI_STATUSES_IGNORE, which MPICH defines as (MPI_Status *)1,
         * and which GCC 12 then takes for a 1-byte buffer (-Wstringop-overflow) */
        MPI_Status *statuses = pt_malloc((size_t)n_requests * sizeof *statuses);
        pt_mpi_check(MPI_Waitall(n_requests, requests, statuses), "MPI_Waitall (checkpoints)");
        free(statuses);
    }
    for (int i = 0; i < n; i++) free(blobs[i]);
    free(blobs);
    free(requests);
    free(state);
}

/* Every phase unit of this rank's group that still needs training, in unit order; then the
 * group's first rank tells rank 0 its phases are over. Returns PT_FIT_*. */
static int train_group_phases(PtExperiment *ex, PhaseStart *starts) {
    int status = PT_FIT_OK;
    for (int s = 0; s < ex->n_seeds && status == PT_FIT_OK; s++)
        for (int p = 0; p < PT_NUM_PHASES && status == PT_FIT_OK; p++) {
            PhaseStart *st = &starts[s * PT_NUM_PHASES + p];
            if (!pt_experiment_phase_wanted(&ex->cfg, (PtPhaseId)p)) continue;
            if (phase_group(ex, s, (PtPhaseId)p) != ex->group) continue;
            if (st->done) continue; /* distribute_starts said so */
            /* a stop ordered while nothing was training: honour it before starting */
            if (ex->world.rank != 0 && ex->group_dist.rank == 0 && pt_scheduler_stop_ordered(ex->sched))
                pt_request_stop(SIGUSR1);
            status = train_phase(ex, s, (PtPhaseId)p, st);
        }
    if (ex->world.rank != 0 && ex->group_dist.rank == 0) {
        Buf b = {0};
        put_i32(&b, EV_GROUP_OVER);
        put_i32(&b, ex->group);
        pt_scheduler_send_event(ex->sched, b.data, b.len);
        free(b.data);
    }
    return status;
}

int pt_experiment_run(PtExperiment *ex) {
    uint32_t n_ident = ex->ds.train_x.n > ex->ds.test_x.n ? ex->ds.train_x.n : ex->ds.test_x.n;
    ex->identity = pt_malloc((size_t)(n_ident ? n_ident : 1) * sizeof(uint32_t));
    for (uint32_t i = 0; i < n_ident; i++) ex->identity[i] = i;
    ex->pretext_weights = pt_calloc((size_t)ex->n_seeds, sizeof *ex->pretext_weights);

    /* The groups: contiguous blocks of ranks, group 0 holding rank 0. */
    ex->n_groups = pt_phase_groups_choose(ex);
    if (ex->world.rank == 0 && ex->results.n_segments > 0) /* recorded: a resume keeps it */
        ex->results.segments[ex->results.n_segments - 1].phase_groups = ex->n_groups;
    int R = ex->world.size;
    ex->group = (int)((long)ex->world.rank * ex->n_groups / R);
    ex->group_leader = pt_malloc((size_t)ex->n_groups * sizeof *ex->group_leader);
    for (int g = 0; g < ex->n_groups; g++) ex->group_leader[g] = (int)(((long)g * R + ex->n_groups - 1) / ex->n_groups);
    if (ex->n_groups == 1) {
        ex->group_dist = ex->world;
    } else {
        MPI_Comm comm;
        pt_mpi_check(MPI_Comm_split(MPI_COMM_WORLD, ex->group, ex->world.rank, &comm), "MPI_Comm_split (phase groups)");
        ex->group_dist = pt_dist_world(comm);
        int leader_check = ex->group_dist.rank == 0 ? ex->world.rank : -1;
        if (leader_check >= 0 && leader_check != ex->group_leader[ex->group])
            pt_fatal("internal: group %d's first rank is %d, expected %d", ex->group, leader_check,
                     ex->group_leader[ex->group]);
    }
    if (ex->world.rank == 0) {
        ex->group_phases_over = pt_calloc((size_t)ex->n_groups, sizeof *ex->group_phases_over);
        if (ex->n_groups > 1)
            pt_log(1, "phases: %d phases of %d seed(s) on %d groups of about %d ranks, trained at the same time "
                      "(run.phase_groups = %s); the epoch lines are rank 0's group's, the other groups' phases "
                      "are reported as they end\n",
                   pt_experiment_phase_units(&ex->cfg, ex->n_seeds), ex->n_seeds, ex->n_groups, R / ex->n_groups,
                   ex->cfg.run_phase_groups);
    }

    pt_trials_prepare(ex); /* the queue exists from the start: rank 0 answers it during its phases */
    PhaseStart *starts = pt_calloc((size_t)ex->n_seeds * PT_NUM_PHASES, sizeof *starts);
    distribute_starts(ex, starts);
    int phase_status = train_group_phases(ex, starts);
    int status = pt_trials_run(ex);

    for (int i = 0; i < ex->n_seeds * PT_NUM_PHASES; i++) {
        if (ex->world.rank != 0 && starts[i].weights) {
            free(starts[i].weights);
            free(starts[i].m);
            free(starts[i].v);
        }
        pt_history_free(&starts[i].history);
    }
    free(starts);
    if (ex->n_groups > 1) MPI_Comm_free(&ex->group_dist.comm);

    /* The run's status: failed anywhere beats interrupted beats done (every phase and trial). */
    int flags[2] = {phase_status == PT_FIT_DIVERGED || status == PT_FIT_DIVERGED,
                    phase_status == PT_FIT_INTERRUPTED || status == PT_FIT_INTERRUPTED};
    if (ex->world.rank == 0) {
        flags[0] |= ex->phases_failed;
        flags[1] |= ex->phases_stopped;
        for (int s = 0; s < ex->n_seeds; s++)
            for (int p = 0; p < PT_NUM_PHASES; p++)
                if (pt_experiment_phase_wanted(&ex->cfg, (PtPhaseId)p) && !ex->results.seeds[s].phase[p].done) flags[1] = 1;
    }
    pt_mpi_check(MPI_Allreduce(MPI_IN_PLACE, flags, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce (run status)");
    return flags[0] ? PT_FIT_DIVERGED : flags[1] ? PT_FIT_INTERRUPTED : PT_FIT_OK;
}
