/* fuzz_common.h: helpers shared by the libFuzzer targets: the readers under test take a path, so
 * each input is written to a private temporary file first. */
#ifndef PT_FUZZ_COMMON_H
#define PT_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Writes data to a per-process file named after suffix (e.g. ".ini") and returns its path. */
static const char *fuzz_write_input(const uint8_t *data, size_t size, const char *suffix) {
    static char path[256];
    snprintf(path, sizeof path, "/tmp/pretext-fuzz-%ld%s", (long)getpid(), suffix);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    if (fclose(f) != 0) abort();
    return path;
}

#endif
