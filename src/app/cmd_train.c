/* cmd_train.c: `pretext train`, the seed's supervised benchmark (all training images, batch 64,
 * 10 epochs, validation split 0.2) with Keras-like epoch lines and the test evaluation. Runs on one
 * process, or data-parallel when started under mpirun. Its initialisation and fit streams are the
 * benchmark phase's of `pretext run`, so it trains exactly that phase. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pt_adam.h"
#include "pt_args.h"
#include "pt_cli.h"
#include "pt_config.h"
#include "pt_data.h"
#include "pt_fit.h"
#include "pt_gradsync.h"
#include "pt_kernels.h"
#include "pt_model.h"
#include "pt_signals.h"
#include "pt_streams.h"
#include "pt_util.h"

void pt_cmd_train_usage(FILE *out) {
    fprintf(out,
            "usage: pretext train [--config FILE] [--data DIR] [--epochs N] [--batch-size N]\n"
            "                     [--seed S] [--train-images N] [--threads T] [--kernels K]\n"
            "                     [--quiet|--verbose] [section.key=value ...]\n"
            "\n"
            "Trains the seed's supervised benchmark CNN (benchmark.* keys) on the training images\n"
            "with Keras's validation split, printing one line per epoch, then evaluates it on the\n"
            "test images: the benchmark phase of `pretext run`, with the same random streams.\n"
            "Under mpirun the batches are split over the ranks.\n"
            "\n"
            "  --config FILE      read an INI configuration (see docs/config.md)\n"
            "  --data DIR         folder with the four MNIST/Fashion-MNIST IDX files (data.dir)\n"
            "  --epochs N         benchmark.epochs (default 10)\n"
            "  --batch-size N     benchmark.batch_size (default 64)\n"
            "  --seed S           experiment.seed (default 42)\n"
            "  --train-images N   use only the first N training images (data.train_images)\n"
            "  --threads T        BLAS threads per process (run.threads)\n"
            "  --kernels K        auto | avx512 | avx2 | generic (run.kernels)\n"
            "  --quiet, --verbose less or more output\n"
            "  --version          the version, kernel sets and CPU\n");
}

int pt_cmd_train(int argc, char **argv) {
    PtConfig cfg;
    PtError err;
    pt_config_defaults(&cfg);
    const PtOption options[] = {
        {"--epochs", "benchmark.epochs", NULL, NULL},
        {"--batch-size", "benchmark.batch_size", NULL, NULL},
        {"--seed", "experiment.seed", NULL, NULL},
        {"--train-images", "data.train_images", NULL, NULL},
    };
    int rc = pt_args_parse(argc, argv, "train", options, (int)(sizeof options / sizeof options[0]), &cfg, NULL,
                           pt_rank() == 0);
    if (rc >= 0) return rc;

    PtDist dist = pt_dist_world(MPI_COMM_WORLD);
    pt_set_blas_threads(cfg.run_threads);
    PtKernelSet set;
    const char *kernels = strcmp(cfg.run_kernels, "auto") == 0 && getenv("PRETEXT_KERNELS") ? getenv("PRETEXT_KERNELS")
                                                                                            : cfg.run_kernels;
    if (pt_kernels_parse(kernels, &set, &err) != 0) pt_fatal("run.kernels: %s", err.msg);
    pt_kernels_use(set);
    char data_dir[4096];
    pt_resolve_data_dir(&cfg, data_dir, sizeof data_dir);
    PtDataset ds;
    if (pt_dataset_load(data_dir, &ds, &err) != 0) pt_fatal("%s", err.msg);
    if (pt_config_validate(&cfg, ds.train_x.n, &err) != 0) pt_fatal("%s", err.msg);
    uint32_t n = cfg.train_images ? cfg.train_images : ds.train_x.n;

    uint32_t n_all = n > ds.test_x.n ? n : ds.test_x.n;
    uint32_t *all = pt_malloc((size_t)n_all * sizeof(uint32_t));
    for (uint32_t i = 0; i < n_all; i++) all[i] = i;
    PtView train = {&ds.train_x, ds.train_y.labels, NULL, all, n};
    PtView test = {&ds.test_x, ds.test_y.labels, NULL, all, ds.test_x.n};

    int eval_batch = 500;
    int local_batch = (cfg.benchmark_batch_size + dist.size - 1) / dist.size;
    PtModel *model = pt_model_create(ds.n_classes, local_batch > eval_batch ? local_batch : eval_batch);
    PtRng init_rng;
    pt_rng_seed(&init_rng, pt_stream_init(cfg.seed, PT_INIT_BENCHMARK));
    pt_model_init_glorot(model, &init_rng);
    PtAdam adam;
    pt_adam_init(&adam, model->n_params, (float)cfg.learning_rate);
    PtHistory hist;
    pt_history_init(&hist, cfg.benchmark_epochs);

    pt_log(1, "pretext train: %u training images (%u train / %u validation) from %s, %d ranks, "
              "batch %d, %d epochs, seed %llu, kernels %s\n",
           n, pt_split_train_count(n, cfg.validation_split), n - pt_split_train_count(n, cfg.validation_split),
           data_dir, dist.size, cfg.benchmark_batch_size, cfg.benchmark_epochs, (unsigned long long)cfg.seed,
           pt_kernels_active()->name);
    PtFitConfig fc = pt_fit_config_defaults();
    fc.epochs = cfg.benchmark_epochs;
    fc.batch_size = cfg.benchmark_batch_size;
    fc.validation_split = cfg.validation_split;
    fc.seed = pt_stream_phase_fit(cfg.seed, PT_PHASE_BENCHMARK);
    fc.eval_batch_size = eval_batch;
    fc.phase = "benchmark";
    fc.verbose = 1;
    fc.gradient_sum = pt_gradsum_mode(cfg.run_gradient_sum);
    double t0 = pt_now();
    int status = pt_fit(model, &adam, &train, &fc, &dist, &hist);
    rc = PT_EXIT_OK;
    if (status == PT_FIT_OK) {
        double test_loss, test_acc;
        pt_evaluate(model, &test, eval_batch, &dist, &test_loss, &test_acc);
        pt_log(1, "test_loss: %.4f - test_accuracy: %.4f - total %.1fs\n", test_loss, test_acc, pt_now() - t0);
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
