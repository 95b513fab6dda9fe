/* cli_train.c: `pretext train`, the seed's supervised benchmark (all training images, batch 64,
 * 10 epochs, validation split 0.2) with Keras-like epoch lines and the test evaluation. Runs on one
 * process, or data-parallel when started under mpirun. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_cli.h"
#include "pt_cli_common.h"
#include "pt_config.h"
#include "pt_data.h"
#include "pt_model.h"
#include "pt_gradsync.h"
#include "pt_train.h"
#include "pt_util.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: pretext train [--config FILE] [--data DIR] [--epochs N] [--batch-size N]\n"
            "                     [--seed S] [--train-images N] [--threads T] [--quiet|--verbose]\n"
            "                     [section.key=value ...]\n"
            "\n"
            "Trains the seed's supervised benchmark CNN (benchmark.* keys) on the training images\n"
            "with Keras's validation split, printing one line per epoch, then evaluates it on the\n"
            "10,000 test images. Under mpirun the batches are split over the ranks.\n"
            "\n"
            "  --config FILE      read an INI configuration (see docs/config.md)\n"
            "  --data DIR         folder with the four MNIST/Fashion-MNIST IDX files (data.dir)\n"
            "  --epochs N         benchmark.epochs (default 10)\n"
            "  --batch-size N     benchmark.batch_size (default 64)\n"
            "  --seed S           experiment.seed (default 42)\n"
            "  --train-images N   use only the first N training images (data.train_images)\n"
            "  --threads T        BLAS threads per process (run.threads)\n"
            "  --quiet, --verbose less or more output\n");
}

int pt_cmd_train(int argc, char **argv) {
    PtConfig cfg;
    PtError err;
    pt_config_defaults(&cfg);
    const char *shortcut_key[] = {"--data", "data.dir", "--epochs", "benchmark.epochs",
                                  "--batch-size", "benchmark.batch_size", "--seed", "experiment.seed",
                                  "--train-images", "data.train_images", "--threads", "run.threads"};
    /* First pass: the config file, so that later overrides win whatever their position. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return PT_EXIT_OK;
        }
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) { fprintf(stderr, "pretext train: --config needs a file\n"); return PT_EXIT_USAGE; }
            if (pt_config_load_file(&cfg, argv[++i], &err) != 0) {
                fprintf(stderr, "pretext: error: %s\n", err.msg);
                return PT_EXIT_ERROR;
            }
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0) { i++; continue; }
        if (strcmp(a, "--quiet") == 0) { pt_set_verbosity(0); continue; }
        if (strcmp(a, "--verbose") == 0) { pt_set_verbosity(2); continue; }
        int matched = 0;
        for (size_t k = 0; k < sizeof shortcut_key / sizeof shortcut_key[0]; k += 2) {
            if (strcmp(a, shortcut_key[k]) == 0) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "pretext train: %s needs a value (see pretext train --help)\n", a);
                    return PT_EXIT_USAGE;
                }
                char assignment[8192];
                snprintf(assignment, sizeof assignment, "%s=%s", shortcut_key[k + 1], argv[++i]);
                if (pt_config_set(&cfg, assignment, "command line", &err) != 0) {
                    fprintf(stderr, "pretext: error: %s\n", err.msg);
                    return PT_EXIT_USAGE;
                }
                matched = 1;
                break;
            }
        }
        if (matched) continue;
        if (pt_is_override(a)) {
            if (pt_config_set(&cfg, a, "command line", &err) != 0) {
                fprintf(stderr, "pretext: error: %s\n", err.msg);
                return PT_EXIT_USAGE;
            }
            continue;
        }
        fprintf(stderr, "pretext train: unknown argument '%s' (see pretext train --help)\n", a);
        return PT_EXIT_USAGE;
    }

    PtDist dist = pt_dist_world(MPI_COMM_WORLD);
    pt_set_blas_threads(cfg.run_threads);
    char data_dir[4096];
    pt_resolve_data_dir(&cfg, data_dir, sizeof data_dir);
    PtDataset ds;
    if (pt_dataset_load(data_dir, &ds, &err) != 0) pt_fatal("%s", err.msg);
    if (pt_config_validate(&cfg, ds.train_x.n, &err) != 0) pt_fatal("%s", err.msg);
    uint32_t n = cfg.train_images ? cfg.train_images : ds.train_x.n;

    uint32_t *all = pt_malloc((size_t)(n > ds.test_x.n ? n : ds.test_x.n) * sizeof(uint32_t));
    for (uint32_t i = 0; i < (n > ds.test_x.n ? n : ds.test_x.n); i++) all[i] = i;
    PtView train = {&ds.train_x, ds.train_y.labels, NULL, all, n};
    PtView test = {&ds.test_x, ds.test_y.labels, NULL, all, ds.test_x.n};

    int eval_batch = 500;
    int local_batch = (cfg.benchmark_batch_size + dist.size - 1) / dist.size;
    PtModel *model = pt_model_create(10, local_batch > eval_batch ? local_batch : eval_batch);
    PtRng init_rng;
    pt_rng_seed(&init_rng, pt_seed_derive(cfg.seed, PT_STREAM_INIT, 0));
    pt_model_init_glorot(model, &init_rng);
    PtAdam adam;
    pt_adam_init(&adam, model->n_params, (float)cfg.learning_rate);
    PtHistory hist;
    pt_history_init(&hist, cfg.benchmark_epochs);
    pt_install_signal_handlers();

    pt_log(1, "pretext train: %u training images (%u train / %u validation) from %s, %d ranks, "
              "batch %d, %d epochs, seed %llu\n",
           n, pt_split_train_count(n, cfg.validation_split), n - pt_split_train_count(n, cfg.validation_split),
           data_dir, dist.size, cfg.benchmark_batch_size, cfg.benchmark_epochs,
           (unsigned long long)cfg.seed);
    PtFitConfig fc = {cfg.benchmark_epochs, cfg.benchmark_batch_size, cfg.validation_split,
                      pt_seed_derive(cfg.seed, 0x62656e6368ULL /* "bench" */, 0), eval_batch,
                      "benchmark", 1, pt_gradsum_mode(cfg.run_gradient_sum),
                      0, NULL, NULL};
    double t0 = pt_now();
    int status = pt_fit(model, &adam, &train, &fc, &dist, &hist);
    int rc = PT_EXIT_OK;
    if (status == PT_FIT_OK) {
        double test_loss, test_acc;
        pt_evaluate(model, &test, eval_batch, &dist, &test_loss, &test_acc);
        pt_log(1, "test_loss: %.4f - test_accuracy: %.4f - total %.1fs\n", test_loss, test_acc,
               pt_now() - t0);
    } else if (status == PT_FIT_DIVERGED) {
        rc = PT_EXIT_ERROR;
    } else {
        pt_log(0, "pretext train: stopped by signal %d\n", pt_stop_signal());
        rc = PT_EXIT_RESUMABLE;
    }
    pt_history_free(&hist);
    pt_adam_free(&adam);
    pt_model_free(model);
    free(all);
    pt_dataset_free(&ds);
    return rc;
}
