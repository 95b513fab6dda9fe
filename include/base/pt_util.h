/* pt_util.h: error reporting, checked wrappers (allocation, files), timing, logging and the exit
 * codes shared by the whole program. A fatal error prints one clear line and ends the process
 * through the abort handler the program installs (pretext's MPI layer installs one that calls
 * MPI_Abort, so no rank of a job is ever left waiting); this layer itself knows nothing of MPI. */
#ifndef PT_UTIL_H
#define PT_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes of the program (documented in docs/reliability.md). */
enum {
    PT_EXIT_OK = 0,
    PT_EXIT_ERROR = 1,       /* bad input, I/O failure, divergence: fix and rerun */
    PT_EXIT_USAGE = 2,       /* command-line misuse */
    PT_EXIT_RESUMABLE = 75   /* interrupted (signal, time limit): rerun the same command to resume */
};

/* A recoverable error: library functions that read user input fill one of these and return -1,
 * so the caller (or a test) can print or inspect the message. */
typedef struct {
    char msg[1024];
} PtError;

/* Formats msg into err (if err is not NULL) and returns -1. */
int pt_error_set(PtError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "pretext: error: <message>" (with the rank when several run) and ends the job: calls the
 * abort handler if one is installed (it must not return), else exit(PT_EXIT_ERROR). */
_Noreturn void pt_fatal_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define pt_fatal(...) pt_fatal_at(__FILE__, __LINE__, __VA_ARGS__)

/* Checked allocation: a failure names the size and the call site and ends the job. */
void *pt_malloc_at(size_t size, const char *file, int line);
void *pt_calloc_at(size_t count, size_t size, const char *file, int line);
/* 64-byte aligned, for SIMD-friendly activation and parameter buffers; free with free(). */
void *pt_aligned_alloc_at(size_t size, const char *file, int line);
#define pt_malloc(size) pt_malloc_at((size), __FILE__, __LINE__)
#define pt_calloc(count, size) pt_calloc_at((count), (size), __FILE__, __LINE__)
#define pt_aligned_alloc(size) pt_aligned_alloc_at((size), __FILE__, __LINE__)

/* Checked fopen: a failure names the path and the reason (strerror) and ends the job. */
FILE *pt_fopen_at(const char *path, const char *mode, const char *file, int line);
#define pt_fopen(path, mode) pt_fopen_at((path), (mode), __FILE__, __LINE__)

/* How a fatal error ends the process: handler(PT_EXIT_ERROR) is called after the message is
 * printed and must not return (e.g. MPI_Abort in a job of several ranks). NULL: exit(). */
typedef void (*PtAbortHandler)(int exit_code);
void pt_set_abort_handler(PtAbortHandler handler);

/* Monotonic wall clock in seconds. */
double pt_now(void);

/* This process's rank and the job's size, for messages and rank-0-only logging, as recorded by
 * pt_util_set_rank (0 and 1 until the program sets them). */
void pt_util_set_rank(int rank, int size);
int pt_rank(void);
int pt_world_size(void);

/* Verbosity: 0 quiet, 1 normal, 2 verbose. pt_log prints on rank 0 only when level <= verbosity. */
void pt_set_verbosity(int level);
int pt_verbosity(void);
void pt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
