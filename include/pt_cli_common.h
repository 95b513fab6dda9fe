/* pt_cli_common.h: pieces shared by the subcommands: locating the data folder, BLAS threads,
 * reading --config FILE and section.key=value overrides into a PtConfig. */
#ifndef PT_CLI_COMMON_H
#define PT_CLI_COMMON_H

#include <stddef.h>

#include "pt_config.h"

/* The data folder to use: cfg->data_dir if set, else $PRETEXT_DATA_DIR, else ./data/mnist,
 * else the source tree's data/mnist, else the installed share/pretext/data/mnist. Writes the
 * choice into buf (the first that holds train-images-idx3-ubyte[.gz]; else cfg's or ./data/mnist
 * so the loader's message names it). */
void pt_resolve_data_dir(const PtConfig *cfg, char *buf, size_t n);

/* Sets the BLAS thread count of this process (OpenBLAS). */
void pt_set_blas_threads(int threads);
/* The BLAS library's description (OpenBLAS config string). */
const char *pt_blas_info(void);

/* Whether arg looks like a section.key=value override. */
int pt_is_override(const char *arg);

#endif
