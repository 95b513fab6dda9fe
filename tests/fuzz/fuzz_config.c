/* fuzz_config.c: libFuzzer target for the configuration parser (src/config.c): any bytes as an
 * INI file and as a section.key=value override must be accepted or rejected with a message naming
 * the file and line (or the origin), never crash; an accepted configuration written back with
 * pt_config_write_ini must load again to the same values (the stored config is resumable). */
#define _POSIX_C_SOURCE 200809L
#include <assert.h>
#include <string.h>

#include "fuzz_common.h"
#include "pt_config.h"

static void assert_same(const PtConfig *a, const PtConfig *b) {
    for (int k = 0; k < pt_config_key_count(); k++) {
        char x[4200], y[4200];
        pt_config_key_value(a, k, x, sizeof x);
        pt_config_key_value(b, k, y, sizeof y);
        if (strcmp(x, y) != 0) {
            fprintf(stderr, "round trip changed %s: '%s' -> '%s'\n", pt_config_key_name(k), x, y);
            abort();
        }
    }
}

/* Writes cfg as INI, reads it back into a default configuration and checks nothing changed. */
static void round_trip(const PtConfig *cfg) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/pretext-fuzz-%ld.roundtrip.ini", (long)getpid());
    FILE *f = fopen(path, "w");
    if (!f) abort();
    pt_config_write_ini(cfg, f);
    fclose(f);
    PtConfig again;
    pt_config_defaults(&again);
    PtError err;
    if (pt_config_load_file(&again, path, &err) != 0) {
        fprintf(stderr, "written configuration does not load back: %s\n", err.msg);
        abort();
    }
    assert_same(cfg, &again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_input(data, size, ".ini");
    PtConfig cfg;
    pt_config_defaults(&cfg);
    PtError err;
    if (pt_config_load_file(&cfg, path, &err) == 0) {
        (void)pt_config_validate(&cfg, 60000, &err);
        round_trip(&cfg);
    } else {
        assert(strncmp(err.msg, path, strlen(path)) == 0 || strstr(err.msg, path) != NULL);
    }

    /* The same bytes as one command-line override (up to the first NUL). */
    char *text = malloc(size + 1);
    if (!text) abort();
    memcpy(text, data, size);
    text[size] = '\0';
    PtConfig over;
    pt_config_defaults(&over);
    if (pt_config_set(&over, text, "command line", &err) == 0) round_trip(&over);
    else assert(strncmp(err.msg, "command line", 12) == 0);
    free(text);
    return 0;
}
