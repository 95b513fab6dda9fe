/* pt_args.h: what the subcommands share on their command lines and at start-up: one parser for
 * the common options (--config FILE, --data DIR, --threads T, --kernels K, --quiet, --verbose,
 * section.key=value overrides) plus each command's own options from a table; the data folder
 * search; the BLAS thread count; the version line. */
#ifndef PT_ARGS_H
#define PT_ARGS_H

#include <stddef.h>
#include <stdio.h>

#include "pt_config.h"

/* A command's own option. Either it sets a configuration key from its value (key != NULL, e.g.
 * --epochs -> benchmark.epochs), or it stores its value (value != NULL) or raises a flag
 * (flag != NULL, no value). */
typedef struct {
    const char *name;     /* "--out" */
    const char *key;      /* "benchmark.epochs", or NULL */
    const char **value;   /* where the value goes, or NULL */
    int *flag;            /* set to 1 when given, or NULL */
} PtOption;

/* Parses argv (argv[0] is the command name) into cfg, which holds the defaults on entry: first
 * the configuration file (--config), then every other option and override in order, so that
 * the command line wins over the file whatever the position. Returns -1 to go on, or the exit
 * code when the command must end: PT_EXIT_USAGE (unknown option, missing value, bad override;
 * the message names it), PT_EXIT_ERROR (the configuration file is bad). Messages go to stderr
 * only if print is nonzero (rank 0 of a job), so every rank parses alike. config_path (may be
 * NULL) receives the --config value or NULL. */
int pt_args_parse(int argc, char **argv, const char *command, const PtOption *options, int n_options,
                  PtConfig *cfg, const char **config_path, int print);

/* Whether argv asks for --help/-h or --version (before any MPI start): 'h', 'v' or 0. */
int pt_args_wants_info(int argc, char **argv);

/* Whether arg looks like a section.key=value override. */
int pt_is_override(const char *arg);

/* The data folder to use: cfg->data_dir if set, else $PRETEXT_DATA_DIR, else ./data/mnist,
 * else the source tree's data/mnist, else the installed share/pretext/data/mnist. Writes the
 * choice into buf (the first that holds train-images-idx3-ubyte[.gz]; else cfg's or ./data/mnist
 * so the loader's message names it). */
void pt_resolve_data_dir(const PtConfig *cfg, char *buf, size_t n);

/* Sets the BLAS thread count of this process (where the BLAS has an API for it). */
void pt_set_blas_threads(int threads);
/* The BLAS library's description (e.g. OpenBLAS's configuration string). */
const char *pt_blas_info(void);

/* "pretext 0.2.0 (commit abc123, kernels avx512 of avx512/avx2/generic, CPU ...)". */
void pt_print_version(FILE *out);

#endif
