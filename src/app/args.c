/* args.c: the subcommands' shared command-line parser, data folder search, BLAS threads and
 * version line (see pt_args.h). */
#define _POSIX_C_SOURCE 200809L
#include "pt_args.h"

#include "pt_cblas.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pt_build_commit.h"
#include "pt_cpu.h"
#include "pt_kernels.h"
#include "pt_util.h"

/* The options every command takes, each setting a configuration key from its value. */
static const struct {
    const char *name, *key;
} common_keys[] = {{"--data", "data.dir"}, {"--threads", "run.threads"}, {"--kernels", "run.kernels"}};
#define N_COMMON_KEYS ((int)(sizeof common_keys / sizeof common_keys[0]))

int pt_is_override(const char *arg) {
    const char *eq = strchr(arg, '=');
    const char *dot = strchr(arg, '.');
    return arg[0] != '-' && eq && dot && dot < eq;
}

int pt_args_wants_info(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 'h';
        if (strcmp(argv[i], "--version") == 0) return 'v';
    }
    return 0;
}

/* The configuration key an option sets, or NULL (then *own is the command's option, if any). */
static const char *option_key(const char *arg, const PtOption *options, int n_options, const PtOption **own) {
    *own = NULL;
    for (int k = 0; k < N_COMMON_KEYS; k++)
        if (strcmp(arg, common_keys[k].name) == 0) return common_keys[k].key;
    for (int k = 0; k < n_options; k++)
        if (strcmp(arg, options[k].name) == 0) {
            *own = &options[k];
            return options[k].key;
        }
    return NULL;
}

int pt_args_parse(int argc, char **argv, const char *command, const PtOption *options, int n_options,
                  PtConfig *cfg, const char **config_path, int print) {
    PtError err;
    const char *config = NULL;
    if (config_path) *config_path = NULL;
    /* Pass 1: the configuration file, so that later options win whatever their position. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") != 0) continue;
        if (i + 1 >= argc) {
            if (print) fprintf(stderr, "pretext %s: --config needs a file (see pretext %s --help)\n", command, command);
            return PT_EXIT_USAGE;
        }
        config = argv[++i];
    }
    if (config && pt_config_load_file(cfg, config, &err) != 0) {
        if (print) fprintf(stderr, "pretext: error: %s\n", err.msg);
        return PT_EXIT_ERROR;
    }
    if (config_path) *config_path = config;
    /* Pass 2: everything else, in order. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        if (strcmp(a, "--quiet") == 0) {
            pt_set_verbosity(0);
            continue;
        }
        if (strcmp(a, "--verbose") == 0) {
            pt_set_verbosity(2);
            continue;
        }
        const PtOption *own = NULL;
        const char *key = option_key(a, options, n_options, &own);
        if (own && own->flag) {
            *own->flag = 1;
            continue;
        }
        if (key || own) {
            if (i + 1 >= argc) {
                if (print) fprintf(stderr, "pretext %s: %s needs a value (see pretext %s --help)\n", command, a, command);
                return PT_EXIT_USAGE;
            }
            const char *value = argv[++i];
            if (own && own->value) {
                *own->value = value;
                continue;
            }
            char assignment[8192];
            snprintf(assignment, sizeof assignment, "%s=%s", key, value);
            if (pt_config_set(cfg, assignment, "command line", &err) != 0) {
                if (print) fprintf(stderr, "pretext: error: %s\n", err.msg);
                return PT_EXIT_USAGE;
            }
            continue;
        }
        if (pt_is_override(a)) {
            if (pt_config_set(cfg, a, "command line", &err) != 0) {
                if (print) fprintf(stderr, "pretext: error: %s\n", err.msg);
                return PT_EXIT_USAGE;
            }
            continue;
        }
        if (print) fprintf(stderr, "pretext %s: unknown argument '%s' (see pretext %s --help)\n", command, a, command);
        return PT_EXIT_USAGE;
    }
    return -1;
}

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

#if defined(PRETEXT_BLAS_OPENBLAS)
void pt_set_blas_threads(int threads) { openblas_set_num_threads(threads < 1 ? 1 : threads); }
const char *pt_blas_info(void) { return openblas_get_config(); }
#else
void pt_set_blas_threads(int threads) { (void)threads; /* the BLAS's own environment variable */ }
const char *pt_blas_info(void) { return PRETEXT_BLAS_VENDOR; }
#endif

void pt_print_version(FILE *out) {
    char cpu[256];
    pt_cpu_model(cpu, sizeof cpu);
    fprintf(out, "pretext " PRETEXT_VERSION " (commit " PRETEXT_GIT_COMMIT ")\n");
    fprintf(out, "kernels: %s (built:", pt_kernels_active()->name);
    for (int s = 0; s < PT_NUM_KSETS; s++)
        if (pt_kernels_table((PtKernelSet)s))
            fprintf(out, " %s%s", pt_kernels_table((PtKernelSet)s)->name,
                    pt_kernels_supported((PtKernelSet)s) ? "" : " (not on this CPU)");
    int flush = pt_fp_flushes_denormals();
    fprintf(out, ")\narithmetic: float32, %s\ncpu: %s\nblas: %s\n",
            flush ? "denormals flushed to zero (as TensorFlow's CPU ops)"
                  : "denormals kept (this CPU or emulator ignores the flush mode)",
            cpu, pt_blas_info());
}
