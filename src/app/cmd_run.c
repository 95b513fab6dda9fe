/* cmd_run.c: `pretext run`, the whole experiment as one MPI job: the command line, the kernel set
 * every rank agrees on, the data (every rank), the output file (created, or resumed from), the
 * provenance, the experiment itself (experiment.c), the summary and the exit status.
 *
 * Rank 0 keeps every result in memory and rewrites the HDF5 file atomically after each epoch of a
 * phase and each finished trial, so a crash loses at most an epoch or the trials in flight; the
 * same command again resumes from that file. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "pt_args.h"
#include "pt_cli.h"
#include "pt_cpu.h"
#include "pt_experiment.h"
#include "pt_kernels.h"
#include "pt_mpi.h"
#include "pt_run_parts.h"
#include "pt_signals.h"
#include "pt_util.h"

void pt_cmd_run_usage(FILE *out) {
    fprintf(out,
            "usage: mpirun -np N pretext run [--config FILE] [--out PATH.h5] [--force]\n"
            "                                [--data DIR] [--threads T] [--kernels K]\n"
            "                                [--quiet|--verbose] [section.key=value ...]\n"
            "\n"
            "Runs the whole experiment of session5.Rmd: the supervised benchmark and the rotation\n"
            "pretext model trained data-parallel over all ranks, then the supervised and the\n"
            "self-supervised small-data trials spread over the ranks. Results go to one HDF5 file\n"
            "(docs/results-format.md), rewritten after each epoch of a phase and each finished\n"
            "trial; Keras weights files PATH.benchmark.weights.h5 and PATH.pretext.weights.h5 are\n"
            "written beside it.\n"
            "\n"
            "  --config FILE  INI configuration (configs/session5.ini is the seed; docs/config.md)\n"
            "  --out PATH     results file (default results/<config name>.h5, or results/pretext.h5)\n"
            "  --force        start over even if PATH holds results of another configuration\n"
            "  --data DIR     the data folder (data.dir)\n"
            "  --threads T    BLAS threads per rank (run.threads)\n"
            "  --kernels K    auto | avx512 | avx2 | generic (run.kernels)\n"
            "  --quiet        only errors and the final summary; --verbose: more detail\n"
            "  --version      the version, kernel sets and CPU\n"
            "  section.key=value   override a configuration key, e.g. trials.labels=100\n"
            "\n"
            "Run the same command again to resume an interrupted run: finished phases and trials\n"
            "are read back from PATH, not recomputed. Exit status: 0 done, 1 error, 2 usage,\n"
            "75 interrupted (resumable).\n");
}

static void iso_time(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Every rank passes its own ok flag; returns 1 only if all are ok. */
static int all_ok(int ok) {
    int all = ok;
    pt_mpi_check(MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce (status)");
    return all;
}

/* A whole number >= 0 from a test-only option; -2 if text is not one. */
static long parse_count(const char *text) {
    char *end = NULL;
    long v = strtol(text, &end, 10);
    return (!end || *end || end == text || v < 0) ? -2 : v;
}

/* Parses the command line on every rank (identical everywhere, so errors are too). Returns -1 to
 * continue, or an exit code. */
static int parse_args(PtExperiment *ex, int argc, char **argv, int *force) {
    const char *out = NULL, *stop_trials = NULL, *stop_epochs = NULL, *config_path = NULL;
    int rank0 = pt_rank() == 0;
    const PtOption options[] = {
        {"--out", NULL, &out, NULL},
        {"--force", NULL, NULL, force},
        {"--stop-after-trials", NULL, &stop_trials, NULL}, /* test-only */
        {"--stop-after-epochs", NULL, &stop_epochs, NULL}, /* test-only */
    };
    pt_config_defaults(&ex->cfg);
    int rc = pt_args_parse(argc, argv, "run", options, (int)(sizeof options / sizeof options[0]), &ex->cfg,
                           &config_path, rank0);
    if (rc >= 0) return rc;
    ex->stop_after_trials = stop_trials ? parse_count(stop_trials) : -1;
    ex->stop_after_epochs = stop_epochs ? parse_count(stop_epochs) : -1;
    if (ex->stop_after_trials == -2 || ex->stop_after_epochs == -2) {
        if (rank0)
            fprintf(stderr, "pretext run: %s needs a whole number >= 0\n",
                    ex->stop_after_trials == -2 ? "--stop-after-trials" : "--stop-after-epochs");
        return PT_EXIT_USAGE;
    }
    if (out) {
        snprintf(ex->out_path, sizeof ex->out_path, "%s", out);
    } else {
        const char *stem = "pretext";
        char buf[4096];
        if (config_path) {
            const char *base = strrchr(config_path, '/');
            snprintf(buf, sizeof buf, "%s", base ? base + 1 : config_path);
            char *dot = strrchr(buf, '.');
            if (dot && dot != buf) *dot = 0;
            stem = buf;
        }
        snprintf(ex->out_path, sizeof ex->out_path, "results/%.4000s.h5", stem);
    }
    /* NAME.h5 -> NAME.benchmark.weights.h5, NAME.pretext.weights.h5 */
    char stem[4096];
    snprintf(stem, sizeof stem, "%s", ex->out_path);
    size_t len = strlen(stem);
    if (len > 3 && strcmp(stem + len - 3, ".h5") == 0) stem[len - 3] = 0;
    for (int p = 0; p < PT_NUM_PHASES; p++)
        snprintf(ex->weights_path[p], sizeof ex->weights_path[p], "%.4000s.%s.weights.h5", stem, pt_phase_names[p]);
    return -1;
}

/* The kernel set every rank can run: run.kernels if not auto (an error on a rank whose CPU lacks
 * it), else the best set supported by ALL ranks (so a trial's result does not depend on the rank
 * that ran it). Returns 0, or -1 after printing the error (on every rank that found one). */
static int agree_on_kernels(const PtConfig *cfg) {
    PtError err;
    PtKernelSet set;
    const char *name = strcmp(cfg->run_kernels, "auto") == 0 && getenv("PRETEXT_KERNELS") ? getenv("PRETEXT_KERNELS")
                                                                                          : cfg->run_kernels;
    int ok = pt_kernels_parse(name, &set, &err) == 0;
    if (!ok) fprintf(stderr, "pretext: error%s: run.kernels: %s\n", pt_world_size() > 1 ? " (a rank)" : "", err.msg);
    if (!all_ok(ok)) return -1;
    int worst = (int)set; /* sets are numbered best first */
    pt_mpi_check(MPI_Allreduce(MPI_IN_PLACE, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce (kernels)");
    pt_kernels_use((PtKernelSet)worst);
    return 0;
}

/* Rank 0: the output is writable, and resumable if it exists. */
static int prepare_output(PtExperiment *ex, int force) {
    PtError err;
    struct stat st;
    int exists = stat(ex->out_path, &st) == 0;
    if (pt_results_check_writable(ex->out_path, &err) != 0) {
        fprintf(stderr, "pretext: error: %s\n", err.msg);
        return -1;
    }
    pt_results_init(&ex->results, &ex->cfg);
    if (exists && !force) {
        PtResults old;
        if (pt_results_load(ex->out_path, &old, &err) != 0) {
            fprintf(stderr, "pretext: error: cannot resume from %s: %s\n(use --force to start over, "
                            "which replaces the file)\n", ex->out_path, err.msg);
            return -1;
        }
        if (pt_results_check_config(&old, &ex->cfg, ex->out_path, &err) != 0) {
            fprintf(stderr, "pretext: error: %s\n", err.msg);
            pt_results_free(&old);
            return -1;
        }
        pt_results_free(&ex->results);
        ex->results = old;
        ex->results.config = ex->cfg; /* keys that do not change results (run.*) may differ */
        ex->results.complete = 0;
        pt_log(1, "resuming from %s\n", ex->out_path);
    } else {
        iso_time(ex->results.start_time, sizeof ex->results.start_time);
        for (int kind = 0; kind < PT_NUM_KINDS; kind++)
            for (int i = 0; i < ex->results.n_trials[kind]; i++) {
                ex->results.trials[kind][i].index = i;
                ex->results.trials[kind][i].seed = pt_experiment_trial_seed(&ex->cfg, kind, i);
            }
    }
    ex->results.end_time[0] = 0;
    return 0;
}

static void free_experiment(PtExperiment *ex) {
    for (int k = 0; k < PT_NUM_KINDS; k++) pt_model_free(ex->trial_init[k]);
    free(ex->identity);
    free(ex->rotations[0]);
    free(ex->rotations[1]);
    pt_dataset_free(&ex->ds);
    if (ex->world.rank == 0) pt_results_free(&ex->results);
    free(ex);
}

int pt_cmd_run(int argc, char **argv) {
    PtExperiment *ex = pt_calloc(1, sizeof *ex);
    int force = 0;
    int rc = parse_args(ex, argc, argv, &force);
    if (rc >= 0) {
        free(ex);
        return rc;
    }
    PtError err;
    ex->world = pt_dist_world(MPI_COMM_WORLD);
    const int rank0 = ex->world.rank == 0;
    pt_set_blas_threads(ex->cfg.run_threads);
    if (agree_on_kernels(&ex->cfg) != 0) {
        free(ex);
        return PT_EXIT_ERROR;
    }

    /* Data on every rank; any rank's failure ends all, reported by the ranks that failed. */
    char data_dir[4096];
    pt_resolve_data_dir(&ex->cfg, data_dir, sizeof data_dir);
    int ok = pt_dataset_load(data_dir, &ex->ds, &err) == 0;
    if (!ok && (rank0 || ex->world.size == 1)) fprintf(stderr, "pretext: error: %s\n", err.msg);
    if (!ok && !rank0) fprintf(stderr, "pretext: error (rank %d): %s\n", ex->world.rank, err.msg);
    if (!all_ok(ok)) {
        free_experiment(ex);
        return PT_EXIT_ERROR;
    }
    ok = pt_config_validate(&ex->cfg, ex->ds.train_x.n, &err) == 0;
    if (!ok && rank0) fprintf(stderr, "pretext: error: %s\n", err.msg);
    if (!all_ok(ok)) {
        free_experiment(ex);
        return PT_EXIT_ERROR;
    }
    ex->n_train = ex->cfg.train_images ? ex->cfg.train_images : ex->ds.train_x.n;

    /* Output: writable, and resumable if it exists (rank 0 decides for all). */
    ok = rank0 ? prepare_output(ex, force) == 0 : 1;
    if (!all_ok(ok)) {
        free_experiment(ex);
        return PT_EXIT_ERROR;
    }
    const char *kernels = pt_kernels_active()->name;
    if (rank0 && pt_verbosity() >= 1) {
        char cpu[256];
        pt_cpu_model(cpu, sizeof cpu);
        printf("pretext run: %d ranks, kernels %s, CPU %s, data %s, results %s\nconfiguration:\n",
               ex->world.size, kernels, cpu, data_dir, ex->out_path);
        pt_config_write_ini(&ex->cfg, stdout);
        fflush(stdout);
    }
    pt_provenance_record(ex, kernels);

    double t_start = pt_now();
    int status = pt_experiment_run(ex);

    if (rank0) {
        if (status == PT_FIT_OK) {
            ex->results.complete = 1;
            iso_time(ex->results.end_time, sizeof ex->results.end_time);
        }
        pt_experiment_save(ex);
        if (pt_verbosity() >= 0) pt_summary_print(&ex->results, ex->out_path);
        if (status == PT_FIT_OK)
            printf("done in %.1fs: results in %s; Keras weights in %s and %s\n", pt_now() - t_start,
                   ex->out_path, ex->weights_path[PT_PHASE_PRETEXT], ex->weights_path[PT_PHASE_BENCHMARK]);
        else if (status == PT_FIT_INTERRUPTED)
            printf("interrupted%s: finished results are in %s; run the same command again to resume\n",
                   pt_stop_signal() ? " by a signal" : "", ex->out_path);
        fflush(stdout);
    }
    rc = status == PT_FIT_OK ? PT_EXIT_OK : status == PT_FIT_INTERRUPTED ? PT_EXIT_RESUMABLE : PT_EXIT_ERROR;
    free_experiment(ex);
    return rc;
}
