/* cli_common.c: data folder search, BLAS threads, and small helpers for the subcommands. */
#define _POSIX_C_SOURCE 200809L
#include "pt_cli_common.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int has_train_images(const char *dir) {
    char path[8192];
    struct stat st;
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) return 1;
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

void pt_resolve_data_dir(const PtConfig *cfg, char *buf, size_t n) {
    if (cfg->data_dir[0]) {
        snprintf(buf, n, "%s", cfg->data_dir);
        return;
    }
    const char *env = getenv("PRETEXT_DATA_DIR");
    /* An installed program finds PREFIX/share/pretext/data/mnist from its own location, wherever
     * the tree was installed or moved to. */
    char beside_exe[4096] = "";
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(beside_exe, sizeof beside_exe, "%.4000s/../share/pretext/data/mnist", exe);
        }
    }
    const char *candidates[] = {env, "data/mnist", beside_exe, PRETEXT_SOURCE_DIR "/data/mnist",
                                PRETEXT_INSTALL_DATADIR "/data/mnist"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        if (candidates[i] && candidates[i][0] && has_train_images(candidates[i])) {
            snprintf(buf, n, "%s", candidates[i]);
            return;
        }
    }
    snprintf(buf, n, "%s", env && env[0] ? env : "data/mnist");
}

void pt_set_blas_threads(int threads) { openblas_set_num_threads(threads < 1 ? 1 : threads); }

const char *pt_blas_info(void) { return openblas_get_config(); }

int pt_is_override(const char *arg) {
    const char *eq = strchr(arg, '=');
    const char *dot = strchr(arg, '.');
    return arg[0] != '-' && eq && dot && dot < eq;
}
