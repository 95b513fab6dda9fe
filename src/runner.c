/* runner.c: `pretext run`, the whole experiment as one MPI job.
 *
 *   1. every rank loads the data and checks the configuration;
 *   2. the supervised benchmark and 3. the rotation pretext model train data-parallel over all
 *      ranks (pt_fit with the world communicator);
 *   4. rank 0 broadcasts the pretext weights;
 *   5. the supervised and self-supervised trials are scheduled dynamically, longest first: rank 0
 *      is master and worker at once (it answers workers between its own training steps), every
 *      other rank asks for a trial, runs it alone and sends the result back;
 *   6. rank 0 keeps every result in memory and rewrites the HDF5 file atomically after each
 *      finished phase or trial, so a crash loses at most the trials in flight;
 *   7. the same command again resumes from that file. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pt_build_commit.h"
#include "pt_cli.h"
#include "pt_cli_common.h"
#include "pt_config.h"
#include "pt_data.h"
#include "pt_model.h"
#include "pt_gradsync.h"
#include "pt_results.h"
#include "pt_rng.h"
#include "pt_train.h"
#include "pt_util.h"

#define EVAL_BATCH 64 /* inference batch: numerically irrelevant, bounds each model's workspace */
#define TAG_RESULT 11 /* worker -> master: a finished (or abandoned) trial, or a first hello */
#define TAG_TASK 12   /* master -> worker: {kind, index} or {-1, -1} = no more work */

/* Seeds of the model initialisations: one per kind of model, shared by all trials of a kind. */
enum { INIT_BENCHMARK = 0, INIT_PRETEXT = 1, INIT_SUPERVISED_TRIALS = 2, INIT_DOWNSTREAM_HEAD = 3 };

typedef struct {
    PtConfig cfg;
    char out_path[4096];
    char weights_path[2][4096]; /* benchmark, pretext Keras weights files */
    int force;
    long stop_after_trials;     /* test-only: rank 0 stops handing out trials after this many */
    long stop_after_epochs;     /* test-only: the run stops (as on a signal) after this many
                                   phase epochs in this run, each checkpointed */
    long epochs_run;            /* phase epochs completed in this run */
    PtDist world;
    PtDataset ds;
    uint32_t n_train;           /* training images used */
    uint32_t *identity;         /* (max(n_train, n_test)) 0, 1, 2, ... */
    uint8_t *train_rotations;   /* (ds.train_x.n) pretext labels */
    uint8_t *test_rotations;    /* (ds.test_x.n) */
    PtResults results;          /* rank 0 only */
    PtModel *pretext_model;     /* the transferred weights, identical on every rank */
    PtModel *trial_init[PT_NUM_KINDS]; /* starting weights of every trial of a kind */
    double trials_start;
    int trials_total, trials_done_now, trials_done_before;
    int handed_out;             /* trials given out in this run (for --stop-after-trials) */
} Run;

/* Every rank passes its own ok flag; returns 1 only if all are ok. */
static int all_ok(const Run *run, int ok) {
    int all = ok;
    pt_mpi_check(MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce (status)");
    return all;
}

static void iso_time(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: mpirun -np N pretext run [--config FILE] [--out PATH.h5] [--force]\n"
            "                                [--quiet|--verbose] [section.key=value ...]\n"
            "\n"
            "Runs the whole experiment of session5.Rmd: the supervised benchmark and the rotation\n"
            "pretext model trained data-parallel over all ranks, then the supervised and the\n"
            "self-supervised small-data trials spread over the ranks. Results go to one HDF5 file\n"
            "(docs/results-format.md), rewritten after each finished phase or trial; Keras weights\n"
            "files PATH.benchmark.weights.h5 and PATH.pretext.weights.h5 are written beside it.\n"
            "\n"
            "  --config FILE  INI configuration (configs/session5.ini is the seed; docs/config.md)\n"
            "  --out PATH     results file (default results/<config name>.h5, or results/pretext.h5)\n"
            "  --force        start over even if PATH holds results of another configuration\n"
            "  --quiet        only errors and the final summary; --verbose: more detail\n"
            "  section.key=value   override a configuration key, e.g. trials.labels=100\n"
            "\n"
            "Run the same command again to resume an interrupted run: finished phases and trials\n"
            "are read back from PATH, not recomputed. Exit status: 0 done, 1 error, 2 usage,\n"
            "75 interrupted (resumable).\n");
}

/* Parses the command line on every rank (identical everywhere, so errors are too). Returns -1 to
 * continue, or an exit code. */
static int parse_args(Run *run, int argc, char **argv) {
    PtError err;
    int rank0 = pt_rank() == 0;
    const char *config_path = NULL;
    pt_config_defaults(&run->cfg);
    run->stop_after_trials = -1;
    run->stop_after_epochs = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            if (rank0) usage(stdout);
            return PT_EXIT_OK;
        } else if (strcmp(a, "--config") == 0 || strcmp(a, "--out") == 0 ||
                   strcmp(a, "--stop-after-trials") == 0 || strcmp(a, "--stop-after-epochs") == 0) {
            if (i + 1 >= argc) {
                if (rank0) fprintf(stderr, "pretext run: %s needs a value (see pretext run --help)\n", a);
                return PT_EXIT_USAGE;
            }
            const char *v = argv[++i];
            if (strcmp(a, "--config") == 0) config_path = v;
            else if (strcmp(a, "--out") == 0) snprintf(run->out_path, sizeof run->out_path, "%s", v);
            else {
                char *end = NULL;
                long *target = strcmp(a, "--stop-after-trials") == 0 ? &run->stop_after_trials
                                                                       : &run->stop_after_epochs;
                *target = strtol(v, &end, 10);
                if (!end || *end || *target < 0) {
                    if (rank0) fprintf(stderr, "pretext run: %s needs a whole number >= 0\n", a);
                    return PT_EXIT_USAGE;
                }
            }
        } else if (strcmp(a, "--force") == 0) {
            run->force = 1;
        } else if (strcmp(a, "--quiet") == 0) {
            pt_set_verbosity(0);
        } else if (strcmp(a, "--verbose") == 0) {
            pt_set_verbosity(2);
        } else if (!pt_is_override(a)) {
            if (rank0) fprintf(stderr, "pretext run: unknown argument '%s' (see pretext run --help)\n", a);
            return PT_EXIT_USAGE;
        }
    }
    if (config_path && pt_config_load_file(&run->cfg, config_path, &err) != 0) {
        if (rank0) fprintf(stderr, "pretext: error: %s\n", err.msg);
        return PT_EXIT_ERROR;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "--out") == 0 ||
            strcmp(argv[i], "--stop-after-trials") == 0 || strcmp(argv[i], "--stop-after-epochs") == 0) {
            i++;
            continue;
        }
        if (pt_is_override(argv[i]) && pt_config_set(&run->cfg, argv[i], "command line", &err) != 0) {
            if (rank0) fprintf(stderr, "pretext: error: %s\n", err.msg);
            return PT_EXIT_USAGE;
        }
    }
    if (!run->out_path[0]) {
        const char *stem = "pretext";
        char buf[4096];
        if (config_path) {
            const char *base = strrchr(config_path, '/');
            snprintf(buf, sizeof buf, "%s", base ? base + 1 : config_path);
            char *dot = strrchr(buf, '.');
            if (dot && dot != buf) *dot = 0;
            stem = buf;
        }
        snprintf(run->out_path, sizeof run->out_path, "results/%.4000s.h5", stem);
    }
    /* NAME.h5 -> NAME.benchmark.weights.h5, NAME.pretext.weights.h5 */
    char stem[4096];
    snprintf(stem, sizeof stem, "%s", run->out_path);
    size_t len = strlen(stem);
    if (len > 3 && strcmp(stem + len - 3, ".h5") == 0) stem[len - 3] = 0;
    snprintf(run->weights_path[0], sizeof run->weights_path[0], "%.4000s.benchmark.weights.h5", stem);
    snprintf(run->weights_path[1], sizeof run->weights_path[1], "%.4000s.pretext.weights.h5", stem);
    return -1;
}

/* Rank 0: writes the results file; a failure (full disk, removed folder) ends the job with the
 * previous file intact. */
static void save_results(Run *run) {
    PtError err;
    if (pt_results_save(&run->results, run->out_path, &err) != 0)
        pt_fatal("could not save the results: %s (the previous contents of %s are intact; free space "
                 "or fix the folder, then rerun the same command to resume)",
                 err.msg, run->out_path);
}

static void record_provenance(Run *run) {
    PtResults *r = &run->results;
    int size = run->world.size;
    char name[MPI_MAX_PROCESSOR_NAME] = {0};
    int len = 0;
    MPI_Get_processor_name(name, &len);
    char *all = NULL;
    if (run->world.rank == 0) all = pt_calloc((size_t)size, MPI_MAX_PROCESSOR_NAME);
    pt_mpi_check(MPI_Gather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0,
                         MPI_COMM_WORLD),
              "MPI_Gather (host names)");
    if (run->world.rank != 0) return;
    r->hosts[0] = 0;
    for (int i = 0; i < size; i++) {
        const char *h = all + (size_t)i * MPI_MAX_PROCESSOR_NAME;
        int seen = 0;
        for (int j = 0; j < i; j++)
            if (strcmp(h, all + (size_t)j * MPI_MAX_PROCESSOR_NAME) == 0) seen = 1;
        if (seen) continue;
        size_t used = strlen(r->hosts);
        snprintf(r->hosts + used, sizeof r->hosts - used, "%s%s", used ? "," : "", h);
    }
    free(all);
    snprintf(r->version, sizeof r->version, "%s", PRETEXT_VERSION);
    snprintf(r->git_commit, sizeof r->git_commit, "%s", PRETEXT_GIT_COMMIT);
    snprintf(r->build_flags, sizeof r->build_flags, "%s", PRETEXT_BUILD_FLAGS);
    snprintf(r->blas, sizeof r->blas, "%s", pt_blas_info());
    char lib[MPI_MAX_LIBRARY_VERSION_STRING];
    int liblen = 0;
    MPI_Get_library_version(lib, &liblen);
    char *nl = strchr(lib, '\n');
    if (nl) *nl = 0;
    char *comma = strchr(lib, ',');
    if (comma) *comma = 0;
    snprintf(r->mpi_library, sizeof r->mpi_library, "%s", lib);
    r->mpi_size = size;
    for (int f = 0; f < 4; f++) {
        PtError err;
        snprintf(r->data_files[f], sizeof r->data_files[f], "%s", run->ds.paths[f]);
        if (pt_sha256_file(run->ds.paths[f], r->data_sha256[f], &err) != 0) pt_fatal("%s", err.msg);
    }
}

/* ---------------------------------------------------------------- data-parallel phases */

static void copy_history(PtHistory *dst, const PtHistory *src) {
    pt_history_free(dst);
    pt_history_init(dst, src->epochs);
    pt_history_extend(dst, src);
}

/* The per-epoch checkpoint of a phase (PtFitConfig.on_epoch): rank 0 stores the weights, Adam's
 * state and the history so far in the results file, which is rewritten atomically. */
typedef struct {
    Run *run;
    PtPhaseResult *res;
    int n_classes;
    double t0, seconds_before; /* this run's start of the phase; time spent in earlier runs */
} PhaseCheckpoint;

static void phase_checkpoint(void *ctx, int epochs_done, const PtModel *model, const PtAdam *adam,
                             const PtHistory *hist) {
    PhaseCheckpoint *pc = ctx;
    if (pc->run->world.rank != 0) return;
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
    copy_history(&res->history, hist);
    save_results(pc->run);
    /* test-only: stop like a signal would; the flag reaches every rank with the next step */
    if (pc->run->stop_after_epochs >= 0 && ++pc->run->epochs_run >= pc->run->stop_after_epochs)
        pt_request_stop(SIGUSR1);
}

/* Trains one data-parallel phase ("benchmark" or "pretext") unless the results file already
 * holds it, continuing from its last completed epoch if the file holds a checkpoint (the
 * epochs' shuffles and dropout masks derive from the seed and the epoch, so the continuation
 * is the same as an uninterrupted run on the same ranks); leaves the final weights in
 * *model_out on every rank. Returns a PT_FIT_* status. */
static int run_phase(Run *run, int pretext, PtModel **model_out) {
    PtConfig *cfg = &run->cfg;
    PtPhaseResult *res = pretext ? &run->results.pretext : &run->results.benchmark;
    const char *name = pretext ? "pretext" : "benchmark";
    int n_classes = pretext ? 4 : 10;
    int epochs = pretext ? cfg->pretext_epochs : cfg->benchmark_epochs;
    int batch = pretext ? cfg->pretext_batch_size : cfg->benchmark_batch_size;
    int local_batch = (batch + run->world.size - 1) / run->world.size;
    PtModel *model = pt_model_create(n_classes, local_batch > EVAL_BATCH ? local_batch : EVAL_BATCH);

    int done = run->world.rank == 0 ? res->done : 0;
    pt_mpi_check(MPI_Bcast(&done, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast (phase state)");
    if (done) {
        if (run->world.rank == 0) {
            memcpy(model->params, res->weights, model->n_params * sizeof(float));
            pt_log(1, "%s: already done (test accuracy %.4f), weights read back from %s\n", name,
                   res->test_accuracy, run->out_path);
        }
        pt_mpi_check(MPI_Bcast(model->params, (int)model->n_params, MPI_FLOAT, 0, MPI_COMM_WORLD),
                  "MPI_Bcast (phase weights)");
        *model_out = model;
        return PT_FIT_OK;
    }

    PtRng init_rng;
    pt_rng_seed(&init_rng, pt_seed_derive(cfg->seed, PT_STREAM_INIT, pretext ? INIT_PRETEXT : INIT_BENCHMARK));
    pt_model_init_glorot(model, &init_rng);
    PtAdam adam;
    pt_adam_init(&adam, model->n_params, (float)cfg->learning_rate);
    PtHistory hist;
    pt_history_init(&hist, epochs);
    /* A checkpoint of this phase from an earlier run: weights, Adam state, history. */
    int first_epoch = run->world.rank == 0 && res->ckpt_epochs > 0 && res->ckpt_epochs <= epochs
                          ? res->ckpt_epochs : 0;
    pt_mpi_check(MPI_Bcast(&first_epoch, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast (checkpoint epochs)");
    double seconds_before = 0.0;
    if (first_epoch > 0) {
        if (run->world.rank == 0) {
            size_t bytes = model->n_params * sizeof(float);
            memcpy(model->params, res->ckpt_weights, bytes);
            memcpy(adam.m, res->ckpt_adam_m, bytes);
            memcpy(adam.v, res->ckpt_adam_v, bytes);
            adam.t = res->ckpt_adam_t;
            pt_history_extend(&hist, &res->history);
            seconds_before = res->ckpt_seconds;
            pt_log(1, "%s: resuming after epoch %d of %d (checkpoint read back from %s)\n", name,
                   first_epoch, epochs, run->out_path);
        }
        long long t = (long long)adam.t;
        pt_mpi_check(MPI_Bcast(model->params, (int)model->n_params, MPI_FLOAT, 0, MPI_COMM_WORLD),
                     "MPI_Bcast (checkpoint weights)");
        pt_mpi_check(MPI_Bcast(adam.m, (int)model->n_params, MPI_FLOAT, 0, MPI_COMM_WORLD),
                     "MPI_Bcast (checkpoint Adam m)");
        pt_mpi_check(MPI_Bcast(adam.v, (int)model->n_params, MPI_FLOAT, 0, MPI_COMM_WORLD),
                     "MPI_Bcast (checkpoint Adam v)");
        pt_mpi_check(MPI_Bcast(&t, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD), "MPI_Bcast (checkpoint Adam t)");
        adam.t = t;
    } else if (run->world.rank == 0) {
        pt_phase_checkpoint_clear(res); /* none, or one this configuration cannot use */
    }
    PtView train = {&run->ds.train_x, pretext ? run->train_rotations : run->ds.train_y.labels,
                    pretext ? run->train_rotations : NULL, run->identity, run->n_train};
    PtView test = {&run->ds.test_x, pretext ? run->test_rotations : run->ds.test_y.labels,
                   pretext ? run->test_rotations : NULL, run->identity, run->ds.test_x.n};
    PtFitConfig fc = {epochs, batch, cfg->validation_split,
                      pt_seed_derive(cfg->seed, 0x7068617365ULL /* "phase" */, (uint64_t)pretext),
                      EVAL_BATCH, name, pt_verbosity() >= 1,
                      pt_gradsum_mode(cfg->run_gradient_sum),
                      first_epoch, phase_checkpoint, NULL};
    PhaseCheckpoint checkpoint = {run, res, n_classes, 0.0, seconds_before};
    fc.on_epoch_ctx = &checkpoint;
    pt_log(1, "%s: %s, %u images (%u train / %u validation), %d ranks, global batch %d, %d epochs\n",
           name, pretext ? "rotation task (4 classes)" : "supervised (10 classes)", run->n_train,
           pt_split_train_count(run->n_train, cfg->validation_split),
           run->n_train - pt_split_train_count(run->n_train, cfg->validation_split), run->world.size,
           batch, epochs);
    double t0 = pt_now();
    checkpoint.t0 = t0;
    int status = pt_fit(model, &adam, &train, &fc, &run->world, &hist);
    if (status == PT_FIT_OK) {
        double test_loss, test_acc;
        pt_evaluate(model, &test, EVAL_BATCH, &run->world, &test_loss, &test_acc);
        double seconds = seconds_before + (pt_now() - t0);
        pt_log(1, "%s: test_loss %.4f - test_accuracy %.4f - %.1fs\n", name, test_loss, test_acc, seconds);
        if (run->world.rank == 0) {
            pt_phase_checkpoint_clear(res);
            res->done = 1;
            res->n_classes = n_classes;
            res->test_loss = test_loss;
            res->test_accuracy = test_acc;
            res->seconds = seconds;
            copy_history(&res->history, &hist);
            free(res->weights);
            res->weights = pt_malloc(model->n_params * sizeof(float));
            memcpy(res->weights, model->params, model->n_params * sizeof(float));
            if (pretext) {
                free(res->train_labels);
                free(res->test_labels);
                res->n_train_labels = run->ds.train_x.n;
                res->train_labels = pt_malloc(run->ds.train_x.n);
                memcpy(res->train_labels, run->train_rotations, run->ds.train_x.n);
                res->n_test_labels = run->ds.test_x.n;
                res->test_labels = pt_malloc(run->ds.test_x.n);
                memcpy(res->test_labels, run->test_rotations, run->ds.test_x.n);
            }
            save_results(run);
            PtError err;
            if (pt_keras_weights_save(run->weights_path[pretext], model->params, n_classes, &err) != 0)
                pt_fatal("%s", err.msg);
        }
    }
    pt_history_free(&hist);
    pt_adam_free(&adam);
    *model_out = model;
    return status;
}

/* ---------------------------------------------------------------- trials */

typedef struct {
    int kind, index;
    double cost; /* relative work, for longest-first ordering */
} Task;

static uint64_t trial_seed(const PtConfig *cfg, int kind, int index) {
    return pt_seed_derive(cfg->seed, 0x747269616cULL /* "trial" */ + (uint64_t)kind, (uint64_t)index);
}

static int trial_epochs(const PtConfig *cfg, int kind) {
    return kind == PT_KIND_SUPERVISED ? cfg->trials_epochs
                                      : cfg->downstream_frozen_epochs + cfg->downstream_finetune_epochs;
}

/* Runs one trial on this rank alone; fills res (history, samples, test metrics, seconds).
 * Returns a PT_FIT_* status. model is a scratch model of 10 classes. */
static int run_trial(Run *run, PtModel *model, int kind, int index, PtTrialResult *res) {
    const PtConfig *cfg = &run->cfg;
    double t0 = pt_now();
    uint64_t seed = trial_seed(cfg, kind, index);
    uint32_t labels = (uint32_t)cfg->trials_labels;
    uint32_t *samples = pt_malloc(labels * sizeof(uint32_t)); /* (labels) training-image indices */
    PtRng rng;
    pt_rng_seed(&rng, pt_seed_derive(seed, PT_STREAM_SAMPLE, 0));
    pt_sample_without_replacement(samples, labels, run->n_train, &rng);

    memcpy(model->params, run->trial_init[kind]->params, model->n_params * sizeof(float));
    for (int l = 0; l < PT_NUM_LAYERS; l++) model->trainable[l] = 1;
    PtView train = {&run->ds.train_x, run->ds.train_y.labels, NULL, samples, labels};
    PtAdam adam;
    pt_adam_init(&adam, model->n_params, (float)cfg->learning_rate);
    PtHistory hist;
    pt_history_init(&hist, trial_epochs(cfg, kind));
    PtDist local = pt_dist_local();
    PtFitConfig fc = {cfg->trials_epochs, cfg->trials_batch_size, cfg->validation_split,
                      pt_seed_derive(seed, 1, 0), EVAL_BATCH, pt_kind_names[kind], pt_verbosity() >= 2,
                      PT_GRADSUM_AUTO /* one process: no sum */, 0, NULL, NULL};
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
        fc.seed = pt_seed_derive(seed, 2, 0);
        if (status == PT_FIT_OK && fc.epochs > 0) status = pt_fit(model, &adam, &train, &fc, &local, &hist);
    }
    res->index = index;
    res->seed = seed;
    res->rank = run->world.rank;
    res->n_samples = labels;
    free(res->sample_indices);
    res->sample_indices = samples;
    copy_history(&res->history, &hist);
    if (status == PT_FIT_OK) {
        PtView test = {&run->ds.test_x, run->ds.test_y.labels, NULL, run->identity, run->ds.test_x.n};
        pt_evaluate(model, &test, EVAL_BATCH, &local, &res->test_loss, &res->test_accuracy);
        res->done = 1;
    } else if (status == PT_FIT_DIVERGED) {
        fprintf(stderr, "pretext: error (rank %d): %s trial %d diverged (non-finite loss)\n",
                run->world.rank, pt_kind_names[kind], index);
    }
    res->seconds = pt_now() - t0;
    pt_history_free(&hist);
    pt_adam_free(&adam);
    return status;
}

/* Message of a finished trial, all doubles: kind, index, rank, status, loss, acc, seconds,
 * n_samples, epochs, samples[n_samples], then loss/acc/val_loss/val_acc/seconds[epochs] each. */
static double *pack_result(int kind, int status, const PtTrialResult *r, int *count) {
    int ep = r->history.epochs;
    int n = 9 + (int)r->n_samples + 5 * ep;
    double *m = pt_malloc((size_t)n * sizeof(double));
    m[0] = kind; m[1] = r->index; m[2] = r->rank; m[3] = status;
    m[4] = r->test_loss; m[5] = r->test_accuracy; m[6] = r->seconds; m[7] = r->n_samples; m[8] = ep;
    double *p = m + 9;
    for (uint32_t i = 0; i < r->n_samples; i++) *p++ = r->sample_indices[i];
    const double *cols[5] = {r->history.loss, r->history.accuracy, r->history.val_loss,
                             r->history.val_accuracy, r->history.seconds};
    for (int c = 0; c < 5; c++)
        for (int e = 0; e < ep; e++) *p++ = cols[c][e];
    *count = n;
    return m;
}

static void unpack_result(const double *m, int count, int *kind, int *status, PtTrialResult *r) {
    *kind = (int)m[0];
    r->index = (int)m[1];
    r->rank = (int)m[2];
    *status = (int)m[3];
    r->test_loss = m[4];
    r->test_accuracy = m[5];
    r->seconds = m[6];
    r->n_samples = (uint32_t)m[7];
    int ep = (int)m[8];
    if (count != 9 + (int)r->n_samples + 5 * ep) pt_fatal("internal: malformed trial message");
    free(r->sample_indices);
    r->sample_indices = pt_malloc(r->n_samples * sizeof(uint32_t));
    const double *p = m + 9;
    for (uint32_t i = 0; i < r->n_samples; i++) r->sample_indices[i] = (uint32_t)*p++;
    pt_history_free(&r->history);
    pt_history_init(&r->history, ep);
    for (int e = 0; e < ep; e++)
        pt_history_append(&r->history, p[e], p[ep + e], p[2 * ep + e], p[3 * ep + e], p[4 * ep + e]);
}

static void format_eta(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) snprintf(buf, n, "?");
    else if (s < 90) snprintf(buf, n, "%.0fs", s);
    else if (s < 5400) snprintf(buf, n, "%.0fm%02.0fs", floor(s / 60), fmod(s, 60));
    else snprintf(buf, n, "%.0fh%02.0fm", floor(s / 3600), fmod(s / 60, 60));
}

/* Rank 0: stores a finished trial, saves the file, prints the progress line. */
static void record_trial(Run *run, int kind, const PtTrialResult *src) {
    PtTrialResult *dst = &run->results.trials[kind][src->index];
    dst->done = 1;
    dst->index = src->index;
    dst->seed = trial_seed(&run->cfg, kind, src->index);
    dst->rank = src->rank;
    dst->test_loss = src->test_loss;
    dst->test_accuracy = src->test_accuracy;
    dst->seconds = src->seconds;
    dst->n_samples = src->n_samples;
    free(dst->sample_indices);
    dst->sample_indices = pt_malloc(src->n_samples * sizeof(uint32_t));
    memcpy(dst->sample_indices, src->sample_indices, src->n_samples * sizeof(uint32_t));
    copy_history(&dst->history, &src->history);
    save_results(run);
    run->trials_done_now++;
    int done = run->trials_done_before + run->trials_done_now;
    double elapsed = pt_now() - run->trials_start;
    double left = elapsed / run->trials_done_now * (run->trials_total - done);
    char eta[32];
    format_eta(eta, sizeof eta, left);
    pt_log(1, "trial %-15s %3d on rank %d: test_accuracy %.4f - test_loss %.4f - %.1fs - %d/%d done - ~%s left\n",
           pt_kind_names[kind], src->index, src->rank, src->test_accuracy, src->test_loss, src->seconds,
           done, run->trials_total, eta);
}

typedef struct {
    Run *run;
    Task *tasks;
    int n_tasks, next_task;
    int active_workers;   /* workers not yet told to stop */
    int stopping;         /* no more trials handed out (signal, --stop-after-trials) */
    int failed;           /* a trial diverged */
} Master;

static int master_next_task(Master *m, Task *t) {
    Run *run = m->run;
    if (pt_stop_requested()) m->stopping = 1;
    if (run->stop_after_trials >= 0 && run->handed_out >= run->stop_after_trials) m->stopping = 1;
    if (m->stopping || m->failed || m->next_task >= m->n_tasks) return 0;
    *t = m->tasks[m->next_task++];
    run->handed_out++;
    return 1;
}

/* Rank 0: answers every waiting worker message (non-blocking unless block is set). */
static void master_service(Master *m, int block) {
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (block && m->active_workers > 0) {
            pt_mpi_check(MPI_Probe(MPI_ANY_SOURCE, TAG_RESULT, MPI_COMM_WORLD, &st), "MPI_Probe");
            flag = 1;
            block = 0;
        } else {
            pt_mpi_check(MPI_Iprobe(MPI_ANY_SOURCE, TAG_RESULT, MPI_COMM_WORLD, &flag, &st), "MPI_Iprobe");
        }
        if (!flag) return;
        int count = 0;
        MPI_Get_count(&st, MPI_DOUBLE, &count);
        double *msg = pt_malloc((size_t)(count > 0 ? count : 1) * sizeof(double));
        pt_mpi_check(MPI_Recv(msg, count, MPI_DOUBLE, st.MPI_SOURCE, TAG_RESULT, MPI_COMM_WORLD, MPI_STATUS_IGNORE),
                  "MPI_Recv (trial result)");
        int worker_quits = 0;
        if (count > 1) {
            int kind, status;
            PtTrialResult r;
            memset(&r, 0, sizeof r);
            unpack_result(msg, count, &kind, &status, &r);
            if (status == PT_FIT_OK) record_trial(m->run, kind, &r);
            else if (status == PT_FIT_DIVERGED) m->failed = 1;
            else {
                /* Interrupted: that rank got a signal (a batch system's warning reaches every
                 * rank, but possibly at different moments): the whole run stops, resumably. */
                worker_quits = 1;
                m->stopping = 1;
            }
            free(r.sample_indices);
            pt_history_free(&r.history);
        }
        free(msg);
        Task t;
        int task[2] = {-1, -1};
        if (!worker_quits && master_next_task(m, &t)) {
            task[0] = t.kind;
            task[1] = t.index;
        }
        pt_mpi_check(MPI_Send(task, 2, MPI_INT, st.MPI_SOURCE, TAG_TASK, MPI_COMM_WORLD), "MPI_Send (task)");
        if (task[0] < 0) m->active_workers--;
    }
}

static void master_step_hook(void *ctx) { master_service((Master *)ctx, 0); }

static int compare_tasks(const void *a, const void *b) {
    const Task *x = a, *y = b;
    if (x->cost != y->cost) return x->cost < y->cost ? 1 : -1;
    if (x->kind != y->kind) return x->kind - y->kind;
    return x->index - y->index;
}

/* Returns PT_FIT_OK when every trial is done, PT_FIT_INTERRUPTED or PT_FIT_DIVERGED otherwise
 * (the same on every rank). */
static int run_trials(Run *run) {
    const PtConfig *cfg = &run->cfg;
    PtModel *model = pt_model_create(10, cfg->trials_batch_size > EVAL_BATCH ? cfg->trials_batch_size : EVAL_BATCH);
    int status = PT_FIT_OK;
    if (run->world.rank == 0) {
        Master m;
        memset(&m, 0, sizeof m);
        m.run = run;
        m.active_workers = run->world.size - 1;
        int total = cfg->trials_supervised + cfg->trials_self_supervised;
        m.tasks = pt_malloc((size_t)(total > 0 ? total : 1) * sizeof(Task));
        run->trials_total = total;
        for (int kind = 0; kind < PT_NUM_KINDS; kind++) {
            int n = kind == PT_KIND_SUPERVISED ? cfg->trials_supervised : cfg->trials_self_supervised;
            for (int i = 0; i < n; i++) {
                if (run->results.trials[kind][i].done) {
                    run->trials_done_before++;
                    continue;
                }
                Task t = {kind, i, (double)trial_epochs(cfg, kind) * cfg->trials_labels};
                m.tasks[m.n_tasks++] = t;
            }
        }
        qsort(m.tasks, (size_t)m.n_tasks, sizeof(Task), compare_tasks);
        if (run->trials_done_before)
            pt_log(1, "trials: %d of %d already done in %s, %d to run\n", run->trials_done_before, total,
                   run->out_path, m.n_tasks);
        else
            pt_log(1, "trials: %d supervised + %d self-supervised, %d labelled images each, over %d ranks\n",
                   cfg->trials_supervised, cfg->trials_self_supervised, cfg->trials_labels, run->world.size);
        run->trials_start = pt_now();
        PtTrialResult r;
        memset(&r, 0, sizeof r);
        for (;;) {
            master_service(&m, 0);
            Task t;
            if (master_next_task(&m, &t)) {
                PtFitHook hook = {master_step_hook, &m};
                pt_set_fit_hook(&hook);
                int st = run_trial(run, model, t.kind, t.index, &r);
                pt_set_fit_hook(NULL);
                if (st == PT_FIT_OK) record_trial(run, t.kind, &r);
                else if (st == PT_FIT_DIVERGED) m.failed = 1;
                else m.stopping = 1;
            } else if (m.active_workers > 0) {
                master_service(&m, 1);
            } else {
                break;
            }
        }
        free(r.sample_indices);
        pt_history_free(&r.history);
        int remaining = run->trials_total - run->trials_done_before - run->trials_done_now;
        status = m.failed ? PT_FIT_DIVERGED : remaining > 0 ? PT_FIT_INTERRUPTED : PT_FIT_OK;
        free(m.tasks);
    } else {
        double hello = 0;
        pt_mpi_check(MPI_Send(&hello, 1, MPI_DOUBLE, 0, TAG_RESULT, MPI_COMM_WORLD), "MPI_Send (hello)");
        PtTrialResult r;
        memset(&r, 0, sizeof r);
        for (;;) {
            int task[2];
            pt_mpi_check(MPI_Recv(task, 2, MPI_INT, 0, TAG_TASK, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv (task)");
            if (task[0] < 0) break;
            int st = run_trial(run, model, task[0], task[1], &r);
            int count;
            double *msg = pack_result(task[0], st, &r, &count);
            pt_mpi_check(MPI_Send(msg, count, MPI_DOUBLE, 0, TAG_RESULT, MPI_COMM_WORLD), "MPI_Send (trial result)");
            free(msg);
        }
        free(r.sample_indices);
        pt_history_free(&r.history);
    }
    pt_model_free(model);
    pt_mpi_check(MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast (trial status)");
    return status;
}

/* ---------------------------------------------------------------- summary */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summarise(const double *v, int n, double out[5]) {
    double *s = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++) { s[i] = v[i]; sum += v[i]; }
    double mean = n ? sum / n : NAN;
    for (int i = 0; i < n; i++) sq += (v[i] - mean) * (v[i] - mean);
    qsort(s, (size_t)n, sizeof(double), cmp_double);
    out[0] = mean;
    out[1] = n > 1 ? sqrt(sq / (n - 1)) : NAN;
    out[2] = n ? (n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2])) : NAN;
    out[3] = n ? s[0] : NAN;
    out[4] = n ? s[n - 1] : NAN;
    free(s);
}

static void print_summary(const Run *run) {
    const PtResults *r = &run->results;
    printf("\nsummary (%s)\n", run->out_path);
    if (r->benchmark.done)
        printf("  benchmark: test_accuracy %.4f, test_loss %.4f\n", r->benchmark.test_accuracy, r->benchmark.test_loss);
    if (r->pretext.done)
        printf("  pretext (rotation): test_accuracy %.4f, test_loss %.4f\n", r->pretext.test_accuracy,
               r->pretext.test_loss);
    printf("  %-16s %4s | %-41s | %s\n", "trials", "n", "test accuracy: mean    sd     median min    max",
           "test loss: mean    sd     median min    max");
    for (int kind = 0; kind < PT_NUM_KINDS; kind++) {
        int n = r->n_trials[kind], k = 0;
        double *acc = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
        double *loss = pt_malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
        for (int i = 0; i < n; i++)
            if (r->trials[kind][i].done) {
                acc[k] = r->trials[kind][i].test_accuracy;
                loss[k++] = r->trials[kind][i].test_loss;
            }
        double a[5], l[5];
        summarise(acc, k, a);
        summarise(loss, k, l);
        if (k == 0) {
            printf("  %-16s %4d | (none finished)\n", pt_kind_names[kind], k);
            free(acc);
            free(loss);
            continue;
        }
        printf("  %-16s %4d | %15s%.4f %.4f %.4f %.4f %.4f | %11s%.4f %.4f %.4f %.4f %.4f\n",
               pt_kind_names[kind], k, "", a[0], a[1], a[2], a[3], a[4], "", l[0], l[1], l[2], l[3], l[4]);
        free(acc);
        free(loss);
    }
    fflush(stdout);
}

/* ---------------------------------------------------------------- the command */

static int prepare_output(Run *run) {
    PtError err;
    struct stat st;
    int exists = stat(run->out_path, &st) == 0;
    if (pt_results_check_writable(run->out_path, &err) != 0) {
        fprintf(stderr, "pretext: error: %s\n", err.msg);
        return -1;
    }
    pt_results_init(&run->results, &run->cfg);
    if (exists && !run->force) {
        PtResults old;
        if (pt_results_load(run->out_path, &old, &err) != 0) {
            fprintf(stderr, "pretext: error: cannot resume from %s: %s\n(use --force to start over, "
                            "which replaces the file)\n", run->out_path, err.msg);
            return -1;
        }
        if (pt_results_check_config(&old, &run->cfg, run->out_path, &err) != 0) {
            fprintf(stderr, "pretext: error: %s\n", err.msg);
            pt_results_free(&old);
            return -1;
        }
        pt_results_free(&run->results);
        run->results = old;
        run->results.config = run->cfg; /* run.threads may differ */
        run->results.complete = 0;
        pt_log(1, "resuming from %s\n", run->out_path);
    } else {
        iso_time(run->results.start_time, sizeof run->results.start_time);
        for (int kind = 0; kind < PT_NUM_KINDS; kind++)
            for (int i = 0; i < run->results.n_trials[kind]; i++) {
                run->results.trials[kind][i].index = i;
                run->results.trials[kind][i].seed = trial_seed(&run->cfg, kind, i);
            }
    }
    run->results.end_time[0] = 0;
    return 0;
}

int pt_cmd_run(int argc, char **argv) {
    Run *run = pt_calloc(1, sizeof *run);
    int rc = parse_args(run, argc, argv);
    if (rc >= 0) {
        free(run);
        return rc;
    }
    PtError err;
    run->world = pt_dist_world(MPI_COMM_WORLD);
    pt_set_blas_threads(run->cfg.run_threads);
    pt_install_signal_handlers();
    int rank0 = run->world.rank == 0;

    /* 1. Data on every rank; any rank's failure ends all, reported by the ranks that failed. */
    char data_dir[4096];
    pt_resolve_data_dir(&run->cfg, data_dir, sizeof data_dir);
    int ok = pt_dataset_load(data_dir, &run->ds, &err) == 0;
    if (!ok && (rank0 || run->world.size == 1)) fprintf(stderr, "pretext: error: %s\n", err.msg);
    if (!ok && !rank0) fprintf(stderr, "pretext: error (rank %d): %s\n", run->world.rank, err.msg);
    if (!all_ok(run, ok)) return PT_EXIT_ERROR;
    ok = pt_config_validate(&run->cfg, run->ds.train_x.n, &err) == 0;
    if (!ok && rank0) fprintf(stderr, "pretext: error: %s\n", err.msg);
    if (!all_ok(run, ok)) return PT_EXIT_ERROR;
    run->n_train = run->cfg.train_images ? run->cfg.train_images : run->ds.train_x.n;

    /* 2. Output: writable, and resumable if it exists (rank 0 decides for all). */
    ok = rank0 ? prepare_output(run) == 0 : 1;
    if (!all_ok(run, ok)) return PT_EXIT_ERROR;
    if (rank0 && pt_verbosity() >= 1) {
        printf("pretext run: %d ranks, data %s, results %s\nconfiguration:\n", run->world.size, data_dir,
               run->out_path);
        pt_config_write_ini(&run->cfg, stdout);
        fflush(stdout);
    }
    record_provenance(run);

    uint32_t n_ident = run->ds.train_x.n > run->ds.test_x.n ? run->ds.train_x.n : run->ds.test_x.n;
    run->identity = pt_malloc((size_t)n_ident * sizeof(uint32_t));
    for (uint32_t i = 0; i < n_ident; i++) run->identity[i] = i;
    /* Pretext labels: one uniform draw from {0,1,2,3} per image, train and test streams apart. */
    run->train_rotations = pt_malloc(run->ds.train_x.n);
    run->test_rotations = pt_malloc(run->ds.test_x.n);
    PtRng rot_rng;
    pt_rng_seed(&rot_rng, pt_seed_derive(run->cfg.seed, PT_STREAM_ROTATION, 0));
    for (uint32_t i = 0; i < run->ds.train_x.n; i++) run->train_rotations[i] = (uint8_t)pt_rng_below(&rot_rng, 4);
    pt_rng_seed(&rot_rng, pt_seed_derive(run->cfg.seed, PT_STREAM_ROTATION, 1));
    for (uint32_t i = 0; i < run->ds.test_x.n; i++) run->test_rotations[i] = (uint8_t)pt_rng_below(&rot_rng, 4);

    double t_start = pt_now();
    int status = PT_FIT_OK;
    /* 3. Benchmark, 4. pretext: data-parallel. */
    if (run->cfg.benchmark_enabled) {
        PtModel *bench = NULL;
        status = run_phase(run, 0, &bench);
        pt_model_free(bench);
    }
    if (status == PT_FIT_OK) status = run_phase(run, 1, &run->pretext_model);

    /* 5. Transfer: rank 0's pretext weights to everyone (bit-identical starting points). */
    if (status == PT_FIT_OK) {
        pt_mpi_check(MPI_Bcast(run->pretext_model->params, (int)run->pretext_model->n_params, MPI_FLOAT, 0,
                            MPI_COMM_WORLD),
                  "MPI_Bcast (pretext weights)");
        PtRng rng;
        run->trial_init[PT_KIND_SUPERVISED] = pt_model_create(10, 1);
        pt_rng_seed(&rng, pt_seed_derive(run->cfg.seed, PT_STREAM_INIT, INIT_SUPERVISED_TRIALS));
        pt_model_init_glorot(run->trial_init[PT_KIND_SUPERVISED], &rng);
        run->trial_init[PT_KIND_SELF_SUPERVISED] = pt_model_create(10, 1);
        pt_rng_seed(&rng, pt_seed_derive(run->cfg.seed, PT_STREAM_INIT, INIT_DOWNSTREAM_HEAD));
        pt_model_init_glorot(run->trial_init[PT_KIND_SELF_SUPERVISED], &rng);
        int last = strcmp(run->cfg.downstream_transfer, "conv") == 0 ? PT_T_CONV2_BIAS : PT_T_DENSE1_BIAS;
        pt_model_copy_tensors(run->trial_init[PT_KIND_SELF_SUPERVISED], run->pretext_model, 0, last);
        pt_model_free(run->pretext_model); /* its weights live on in the downstream start */
        run->pretext_model = NULL;
        /* 6. Trials. */
        status = run_trials(run);
    }

    if (rank0) {
        if (status == PT_FIT_OK) {
            run->results.complete = 1;
            iso_time(run->results.end_time, sizeof run->results.end_time);
        }
        save_results(run);
        if (pt_verbosity() >= 0) print_summary(run);
        if (status == PT_FIT_OK)
            printf("done in %.1fs: results in %s; Keras weights in %s and %s\n", pt_now() - t_start,
                   run->out_path, run->weights_path[1], run->weights_path[0]);
        else if (status == PT_FIT_INTERRUPTED)
            printf("interrupted%s: finished results are in %s; run the same command again to resume\n",
                   pt_stop_signal() ? " by a signal" : "", run->out_path);
        fflush(stdout);
        pt_results_free(&run->results);
    }
    rc = status == PT_FIT_OK ? PT_EXIT_OK : status == PT_FIT_INTERRUPTED ? PT_EXIT_RESUMABLE : PT_EXIT_ERROR;
    for (int k = 0; k < PT_NUM_KINDS; k++) pt_model_free(run->trial_init[k]);
    pt_model_free(run->pretext_model);
    free(run->identity);
    free(run->train_rotations);
    free(run->test_rotations);
    pt_dataset_free(&run->ds);
    free(run);
    return rc;
}
