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
#include "pt_lock.h"
#include "pt_mpi.h"
#include "pt_run_parts.h"
#include "pt_sha256.h"
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
            "Several seeds and label budgets in one job: experiment.seeds=1-5 trials.labels=50,150,1000\n"
            "(configs/label-curve.ini). Run the same command again to resume an interrupted run:\n"
            "finished phases and trials are read back from PATH, not recomputed; only one run at a\n"
            "time may write PATH. Exit status: 0 done, 1 error, 2 usage, 75 interrupted (resumable).\n");
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
    const char *out = NULL, *stop_trials = NULL, *stop_epochs = NULL, *test_exit = NULL, *config_path = NULL;
    int rank0 = pt_rank() == 0;
    const PtOption options[] = {
        {"--out", NULL, &out, NULL},
        {"--force", NULL, NULL, force},
        /* test-only switches (PtTestSwitches) */
        {"--stop-after-trials", NULL, &stop_trials, NULL},
        {"--stop-after-epochs", NULL, &stop_epochs, NULL},
        {"--test-exit", NULL, &test_exit, NULL},
    };
    pt_config_defaults(&ex->cfg);
    int rc = pt_args_parse(argc, argv, "run", options, (int)(sizeof options / sizeof options[0]), &ex->cfg,
                           &config_path, rank0);
    if (rc >= 0) return rc;
    ex->test.stop_after_trials = stop_trials ? parse_count(stop_trials) : -1;
    ex->test.stop_after_epochs = stop_epochs ? parse_count(stop_epochs) : -1;
    if (ex->test.stop_after_trials == -2 || ex->test.stop_after_epochs == -2) {
        if (rank0)
            fprintf(stderr, "pretext run: %s needs a whole number >= 0\n",
                    ex->test.stop_after_trials == -2 ? "--stop-after-trials" : "--stop-after-epochs");
        return PT_EXIT_USAGE;
    }
    ex->test.exit_rank = -1;
    if (test_exit && sscanf(test_exit, "%d:%d", &ex->test.exit_rank, &ex->test.exit_status) != 2) {
        if (rank0) fprintf(stderr, "pretext run: --test-exit needs RANK:STATUS\n");
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
    /* NAME.h5 -> NAME.benchmark.weights.h5, NAME.pretext.weights.h5 (NAME.seed<S>.* for studies) */
    snprintf(ex->weights_stem, sizeof ex->weights_stem, "%s", ex->out_path);
    size_t len = strlen(ex->weights_stem);
    if (len > 3 && strcmp(ex->weights_stem + len - 3, ".h5") == 0) ex->weights_stem[len - 3] = 0;
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

/* Rank 0: takes each seed's phase p from an earlier results file (benchmark.from, pretext.from),
 * refused unless the data and the phase's configuration match and the file holds that seed's
 * finished phase; phases this run's file already holds are kept. */
static int reuse_phases(PtExperiment *ex, PtPhaseId p, const char *from, const char sha[4][65]) {
    PtError err;
    PtResults old;
    if (pt_results_load(from, &old, &err) != 0) {
        fprintf(stderr, "pretext: error: %s.from: %s\n", pt_phase_names[p], err.msg);
        return -1;
    }
    int rc = -1;
    if (pt_results_check_data(&old, ex->ds.paths, sha, from, &err) != 0 ||
        pt_results_check_phase_config(&old.config, &ex->cfg, p, from, &err) != 0) {
        fprintf(stderr, "pretext: error: %s.from: %s\n", pt_phase_names[p], err.msg);
        goto out;
    }
    for (int s = 0; s < ex->results.n_seeds; s++) {
        PtPhaseResult *dst = &ex->results.seeds[s].phase[p];
        if (dst->done) continue;
        int o = pt_results_seed_index(&old, ex->results.seeds[s].seed);
        if (o < 0 || !old.seeds[o].phase[p].done) {
            fprintf(stderr, "pretext: error: %s.from: '%s' holds no finished %s phase of seed %llu\n",
                    pt_phase_names[p], from, pt_phase_names[p], (unsigned long long)ex->results.seeds[s].seed);
            goto out;
        }
        /* move the finished phase over (the old results are freed below without it) */
        pt_phase_checkpoint_clear(dst);
        pt_history_free(&dst->history);
        free(dst->weights);
        free(dst->train_labels);
        free(dst->test_labels);
        *dst = old.seeds[o].phase[p];
        memset(&old.seeds[o].phase[p], 0, sizeof old.seeds[o].phase[p]);
        pt_log(1, "%s of seed %llu: taken from %s (test accuracy %.4f)\n", pt_phase_names[p],
               (unsigned long long)ex->results.seeds[s].seed, from, dst->test_accuracy);
    }
    rc = 0;
out:
    pt_results_free(&old);
    return rc;
}

/* Rank 0: the output is writable and ours alone (the lock), resumable if it exists (same
 * configuration, same data), phases taken from earlier files where asked, and a new run segment
 * in the provenance. sha: the SHA-256 of this run's four data files. */
static int prepare_output(PtExperiment *ex, int force, const char sha[4][65]) {
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
        if (pt_results_check_config(&old, &ex->cfg, ex->out_path, &err) != 0 ||
            pt_results_check_data(&old, ex->ds.paths, sha, ex->out_path, &err) != 0) {
            fprintf(stderr, "pretext: error: %s\n", err.msg);
            pt_results_free(&old);
            return -1;
        }
        pt_results_free(&ex->results);
        ex->results = old;
        ex->results.config = ex->cfg; /* keys that do not change results (run.*, data.dir) may differ */
        ex->results.complete = 0;
        pt_log(1, "resuming from %s\n", ex->out_path);
    } else {
        iso_time(ex->results.start_time, sizeof ex->results.start_time);
    }
    PtResults *r = &ex->results;
    /* every row's trial seed (a resumed file has them; a new one gets them here) */
    for (int kind = 0; kind < PT_NUM_KINDS; kind++)
        for (int s = 0; s < r->n_seeds; s++)
            for (int b = 0; b < r->n_budgets; b++)
                for (int i = 0; i < r->per_cell[kind]; i++)
                    r->trials[kind][pt_results_row(r, kind, s, b, i)].seed =
                        pt_experiment_trial_seed(&ex->cfg, r->seeds[s].seed, kind, i);
    for (int f = 0; f < 4; f++) {
        snprintf(r->data_files[f], sizeof r->data_files[f], "%s", ex->ds.paths[f]);
        memcpy(r->data_sha256[f], sha[f], sizeof r->data_sha256[f]);
    }
    r->data_classes = ex->ds.n_classes;
    if (ex->cfg.benchmark_from[0] && reuse_phases(ex, PT_PHASE_BENCHMARK, ex->cfg.benchmark_from, sha) != 0) return -1;
    if (ex->cfg.pretext_from[0] && reuse_phases(ex, PT_PHASE_PRETEXT, ex->cfg.pretext_from, sha) != 0) return -1;
    r->end_time[0] = 0;
    PtSegment *seg = pt_results_add_segment(r);
    iso_time(seg->start_time, sizeof seg->start_time);
    snprintf(seg->status, sizeof seg->status, "running");
    return 0;
}

static void free_experiment(PtExperiment *ex) {
    pt_trials_free(ex);
    free(ex->identity);
    free(ex->group_leader);
    free(ex->group_phases_over);
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
    /* The results file is ours alone for the whole run (rank 0 holds the lock): a second run aimed
     * at it is refused at once, before it loads anything. */
    PtLock *lock = NULL;
    int ok = 1;
    if (rank0 && (pt_results_check_writable(ex->out_path, &err) != 0 || !(lock = pt_lock_acquire(ex->out_path, &err)))) {
        fprintf(stderr, "pretext: error: %s\n", err.msg);
        ok = 0;
    }
    if (!all_ok(ok)) {
        free(ex);
        return PT_EXIT_ERROR;
    }

    /* Data on every rank; any rank's failure ends all, reported by the ranks that failed. */
    char data_dir[4096];
    pt_resolve_data_dir(&ex->cfg, data_dir, sizeof data_dir);
    ok = pt_dataset_load(data_dir, &ex->ds, &err) == 0;
    if (!ok && (rank0 || ex->world.size == 1)) fprintf(stderr, "pretext: error: %s\n", err.msg);
    if (!ok && !rank0) fprintf(stderr, "pretext: error (rank %d): %s\n", ex->world.rank, err.msg);
    if (!all_ok(ok)) {
        pt_lock_release(lock);
        free_experiment(ex);
        return PT_EXIT_ERROR;
    }
    ok = pt_config_validate(&ex->cfg, ex->ds.train_x.n, &err) == 0;
    if (!ok && rank0) fprintf(stderr, "pretext: error: %s\n", err.msg);
    if (!all_ok(ok)) {
        pt_lock_release(lock);
        free_experiment(ex);
        return PT_EXIT_ERROR;
    }
    ex->n_train = ex->cfg.train_images ? ex->cfg.train_images : ex->ds.train_x.n;
    ex->n_seeds = pt_config_seed_list(&ex->cfg, ex->seeds);

    /* Output: writable, and resumable if it exists (rank 0 decides for all). */
    if (rank0) {
        char sha[4][65];
        ok = 1;
        for (int f = 0; f < 4 && ok; f++)
            if (pt_sha256_file(ex->ds.paths[f], sha[f], &err) != 0) {
                fprintf(stderr, "pretext: error: %s\n", err.msg);
                ok = 0;
            }
        if (ok) ok = prepare_output(ex, force, (const char(*)[65])sha) == 0;
    }
    if (!all_ok(ok)) {
        pt_lock_release(lock);
        free_experiment(ex);
        return PT_EXIT_ERROR;
    }
    const char *kernels = pt_kernels_active()->name;
    if (rank0 && pt_verbosity() >= 1) {
        char cpu[256];
        pt_cpu_model(cpu, sizeof cpu);
        printf("pretext run: %d ranks, kernels %s, CPU %s, data %s, results %s\nconfiguration:\n",
               ex->world.size, kernels, cpu, data_dir, ex->out_path);
        /* An environment that forces OpenBLAS's kernels (seen on a machine whose default
         * environment set Haswell on an AVX-512 CPU: half the sgemm rate) deserves a word. */
        const char *coretype = getenv("OPENBLAS_CORETYPE");
        if (coretype && coretype[0] && strstr(pt_blas_info(), "OpenBLAS"))
            printf("note: OPENBLAS_CORETYPE=%s is set, so OpenBLAS runs the kernels it names (%s), not "
                   "necessarily the fastest for this CPU; unset it unless that is meant\n",
                   coretype, pt_blas_info());
        pt_config_write_ini(&ex->cfg, stdout);
        fflush(stdout);
    }
    pt_provenance_record(ex, kernels);

    double t_start = pt_now();
    int status = pt_experiment_run(ex);

    if (rank0) {
        PtSegment *seg = &ex->results.segments[ex->results.n_segments - 1];
        snprintf(seg->status, sizeof seg->status, "%s",
                 status == PT_FIT_OK ? "complete" : status == PT_FIT_INTERRUPTED ? "interrupted" : "error");
        if (status == PT_FIT_OK) {
            ex->results.complete = 1;
            iso_time(ex->results.end_time, sizeof ex->results.end_time);
        }
        pt_experiment_save(ex);
        if (pt_verbosity() >= 0) pt_summary_print(&ex->results, ex->out_path);
        if (status == PT_FIT_OK) {
            char pretext[4200], bench[4200];
            pt_experiment_weights_path(ex, 0, PT_PHASE_PRETEXT, pretext, sizeof pretext);
            pt_experiment_weights_path(ex, 0, PT_PHASE_BENCHMARK, bench, sizeof bench);
            if (ex->n_seeds == 1)
                printf("done in %.1fs: results in %s; Keras weights in %s and %s\n", pt_now() - t_start,
                       ex->out_path, pretext, bench);
            else
                printf("done in %.1fs: results in %s; Keras weights in %s.seed<S>.{pretext,benchmark}.weights.h5\n",
                       pt_now() - t_start, ex->out_path, ex->weights_stem);
        } else if (status == PT_FIT_INTERRUPTED) {
            printf("interrupted%s: finished results are in %s; run the same command again to resume\n",
                   pt_stop_signal() ? " by a signal" : "", ex->out_path);
        }
        fflush(stdout);
    }
    pt_lock_release(lock);
    rc = status == PT_FIT_OK ? PT_EXIT_OK : status == PT_FIT_INTERRUPTED ? PT_EXIT_RESUMABLE : PT_EXIT_ERROR;
    if (ex->test.exit_rank == ex->world.rank) rc = ex->test.exit_status; /* test-only */
    free_experiment(ex);
    return rc;
}
