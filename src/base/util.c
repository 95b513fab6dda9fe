/* util.c: error reporting (with the program's abort handler), checked allocation and file
 * wrappers, clock, rank-aware logging. No MPI here: the MPI layer installs its abort handler. */
#define _POSIX_C_SOURCE 200809L
#include "pt_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_rank = 0;
static int g_size = 1;
static int g_verbosity = 1;
static PtAbortHandler g_abort_handler = NULL;

void pt_set_abort_handler(PtAbortHandler handler) { g_abort_handler = handler; }

void pt_util_set_rank(int rank, int size) { g_rank = rank; g_size = size; }
int pt_rank(void) { return g_rank; }
int pt_world_size(void) { return g_size; }
void pt_set_verbosity(int level) { g_verbosity = level; }
int pt_verbosity(void) { return g_verbosity; }

int pt_error_set(PtError *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

_Noreturn void pt_fatal_at(const char *file, int line, const char *fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_size > 1)
        fprintf(stderr, "pretext: error (rank %d): %s\n", g_rank, msg);
    else
        fprintf(stderr, "pretext: error: %s\n", msg);
    if (g_verbosity >= 2) fprintf(stderr, "  (raised at %s:%d)\n", file, line);
    fflush(stderr);
    fflush(stdout);
    if (g_abort_handler) g_abort_handler(PT_EXIT_ERROR);
    exit(PT_EXIT_ERROR);
}

void *pt_malloc_at(size_t size, const char *file, int line) {
    void *p = malloc(size ? size : 1);
    if (!p) pt_fatal_at(file, line, "out of memory allocating %zu bytes (%s:%d)", size, file, line);
    return p;
}

void *pt_calloc_at(size_t count, size_t size, const char *file, int line) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) pt_fatal_at(file, line, "out of memory allocating %zu x %zu bytes (%s:%d)", count, size, file, line);
    return p;
}

void *pt_aligned_alloc_at(size_t size, const char *file, int line) {
    void *p = NULL;
    size_t rounded = (size + 63) / 64 * 64;
    if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0 || !p)
        pt_fatal_at(file, line, "out of memory allocating %zu aligned bytes (%s:%d)", size, file, line);
    return p;
}

FILE *pt_fopen_at(const char *path, const char *mode, const char *file, int line) {
    FILE *f = fopen(path, mode);
    if (!f) pt_fatal_at(file, line, "cannot open '%s' (mode %s): %s", path, mode, strerror(errno));
    return f;
}

double pt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void pt_log(int level, const char *fmt, ...) {
    if (g_rank != 0 || level > g_verbosity) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fflush(stdout);
}
