/* test_config.c: the configuration module: defaults equal the seed's experiment, the shipped
 * INI files load, every kind of bad input is rejected with a message naming file, line and key,
 * overrides, the INI writer's round trip, the key listing and the relation checks. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pt_config.h"

/* ---------------------------------------------------------------------------------------- */
/* Helpers. */

static const char *source_dir(void) {
    const char *dir = getenv("PRETEXT_SOURCE_DIR");
    return dir && dir[0] ? dir : PRETEXT_SOURCE_DIR;
}

static void source_path(char *buf, size_t n, const char *relative) {
    snprintf(buf, n, "%s/%s", source_dir(), relative);
}

/* Writes text to a fresh temporary file; path receives its name. */
static void write_temp(char *path, size_t n, const char *text) {
    snprintf(path, n, "/tmp/pretext-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Loads text (as a file) over the defaults; returns the status, err receives the message. */
static int load_text(const char *text, PtConfig *cfg, PtError *err, char *path, size_t path_size) {
    write_temp(path, path_size, text);
    pt_config_defaults(cfg);
    memset(err->msg, 0, sizeof err->msg);
    int status = pt_config_load_file(cfg, path, err);
    unlink(path);
    return status;
}

#define assert_contains(haystack, needle)                                                          \
    do {                                                                                           \
        if (!strstr((haystack), (needle))) fail_msg("'%s' does not contain '%s'", (haystack), (needle)); \
    } while (0)

/* Every field compared one by one (memcmp would also compare padding bytes). */
static void assert_config_equal(const PtConfig *a, const PtConfig *b) {
    assert_string_equal(a->data_dir, b->data_dir);
    assert_int_equal(a->train_images, b->train_images);
    assert_true(a->seed == b->seed);
    assert_true(a->learning_rate == b->learning_rate);
    assert_true(a->validation_split == b->validation_split);
    assert_int_equal(a->benchmark_enabled, b->benchmark_enabled);
    assert_int_equal(a->benchmark_epochs, b->benchmark_epochs);
    assert_int_equal(a->benchmark_batch_size, b->benchmark_batch_size);
    assert_int_equal(a->pretext_epochs, b->pretext_epochs);
    assert_int_equal(a->pretext_batch_size, b->pretext_batch_size);
    assert_int_equal(a->trials_supervised, b->trials_supervised);
    assert_int_equal(a->trials_self_supervised, b->trials_self_supervised);
    assert_int_equal(a->trials_labels.n, b->trials_labels.n);
    for (int i = 0; i < a->trials_labels.n; i++) assert_int_equal(a->trials_labels.v[i], b->trials_labels.v[i]);
    assert_int_equal(a->seeds.n, b->seeds.n);
    for (int i = 0; i < a->seeds.n; i++) assert_true(a->seeds.v[i] == b->seeds.v[i]);
    assert_int_equal(a->trials_paired, b->trials_paired);
    assert_int_equal(a->trials_epochs, b->trials_epochs);
    assert_int_equal(a->trials_batch_size, b->trials_batch_size);
    assert_int_equal(a->downstream_frozen_epochs, b->downstream_frozen_epochs);
    assert_int_equal(a->downstream_finetune_epochs, b->downstream_finetune_epochs);
    assert_string_equal(a->downstream_transfer, b->downstream_transfer);
    assert_int_equal(a->run_threads, b->run_threads);
    assert_string_equal(a->run_gradient_sum, b->run_gradient_sum);
    assert_string_equal(a->run_kernels, b->run_kernels);
    /* And the canonical text of every key. */
    for (int i = 0; i < pt_config_key_count(); i++) {
        char va[4200], vb[4200];
        pt_config_key_value(a, i, va, sizeof va);
        pt_config_key_value(b, i, vb, sizeof vb);
        assert_string_equal(va, vb);
    }
}

static void set_ok(PtConfig *cfg, const char *assignment) {
    PtError err = {{0}};
    int status = pt_config_set(cfg, assignment, "test", &err);
    if (status != 0) fail_msg("pt_config_set(%s) failed: %s", assignment, err.msg);
}

/* A configuration with every key different from its default. */
static void scrambled(PtConfig *cfg) {
    pt_config_defaults(cfg);
    const char *assignments[] = {
        "data.dir=/somewhere/else", "data.train_images=1234", "experiment.seed=18446744073709551615",
        "experiment.learning_rate=0.0123456789012345", "experiment.validation_split=0.3",
        "benchmark.enabled=false", "benchmark.epochs=3", "benchmark.batch_size=17", "pretext.epochs=4",
        "pretext.batch_size=33", "trials.supervised=5", "trials.self_supervised=6", "trials.labels=99",
        "trials.epochs=7", "trials.batch_size=8", "downstream.frozen_epochs=2",
        "downstream.finetune_epochs=0", "downstream.transfer=conv", "run.threads=4",
        "run.gradient_sum=mpi", "run.kernels=generic", "experiment.seeds=1-3,10",
        "benchmark.from=/earlier/run.h5", "pretext.from=/earlier/other.h5", "trials.paired=true",
        "run.phase_groups=3"};
    size_t n = sizeof assignments / sizeof assignments[0];
    assert_int_equal((int)n, pt_config_key_count());
    for (size_t i = 0; i < n; i++) set_ok(cfg, assignments[i]);
}

/* Expects loading text to fail with a message naming the file, "<file>:<line>:" and needle. */
static void expect_file_error(const char *text, int line, const char *needle, const char *needle2) {
    PtConfig cfg, before;
    PtError err;
    char path[64];
    int status = load_text(text, &cfg, &err, path, sizeof path);
    if (status != -1) fail_msg("expected an error for:\n%s", text);
    char where[128];
    snprintf(where, sizeof where, "%s:%d:", path, line);
    assert_contains(err.msg, path);
    assert_contains(err.msg, where);
    assert_contains(err.msg, needle);
    if (needle2) assert_contains(err.msg, needle2);
    /* A failed load leaves the configuration untouched. */
    pt_config_defaults(&before);
    assert_config_equal(&cfg, &before);
}

/* ---------------------------------------------------------------------------------------- */
/* Defaults and the shipped files. */

static void test_defaults_are_the_seed(void **state) {
    (void)state;
    PtConfig cfg;
    memset(&cfg, 0xAB, sizeof cfg);
    pt_config_defaults(&cfg);
    /* Values read from session5.Rmd (docs/keras-semantics.md). */
    assert_string_equal(cfg.data_dir, "");
    assert_int_equal(cfg.train_images, 0);
    assert_true(cfg.seed == 42);
    assert_true(cfg.learning_rate == 0.001);
    assert_true(cfg.validation_split == 0.2);
    assert_int_equal(cfg.benchmark_enabled, 1);
    assert_int_equal(cfg.benchmark_epochs, 10);
    assert_int_equal(cfg.benchmark_batch_size, 64);
    assert_int_equal(cfg.pretext_epochs, 10);
    assert_int_equal(cfg.pretext_batch_size, 64);
    assert_int_equal(cfg.trials_supervised, 20);
    assert_int_equal(cfg.trials_self_supervised, 20);
    assert_int_equal(cfg.trials_labels.n, 1);
    assert_int_equal(cfg.trials_labels.v[0], 150);
    assert_int_equal(cfg.trials_epochs, 10);
    assert_int_equal(cfg.trials_batch_size, 1);
    assert_int_equal(cfg.downstream_frozen_epochs, 10);
    assert_int_equal(cfg.downstream_finetune_epochs, 10);
    assert_string_equal(cfg.downstream_transfer, "conv+dense");
    assert_int_equal(cfg.run_threads, 1);
    PtError err;
    assert_int_equal(pt_config_validate(&cfg, 60000, &err), 0);
    assert_int_equal(pt_config_validate(&cfg, 0, &err), 0);
}

static void test_session5_ini_equals_defaults(void **state) {
    (void)state;
    char path[4096];
    source_path(path, sizeof path, "configs/session5.ini");
    /* Loaded over a configuration where every key differs: the file must set every key. */
    PtConfig cfg, defaults;
    scrambled(&cfg);
    PtError err = {{0}};
    int status = pt_config_load_file(&cfg, path, &err);
    if (status != 0) fail_msg("%s", err.msg);
    pt_config_defaults(&defaults);
    assert_config_equal(&cfg, &defaults);
}

static void test_smoke_ini_loads(void **state) {
    (void)state;
    char path[4096];
    source_path(path, sizeof path, "configs/smoke.ini");
    PtConfig cfg;
    pt_config_defaults(&cfg);
    PtError err = {{0}};
    int status = pt_config_load_file(&cfg, path, &err);
    if (status != 0) fail_msg("%s", err.msg);
    assert_int_equal(cfg.train_images, 3000);
    assert_int_equal(cfg.benchmark_epochs, 1);
    assert_int_equal(cfg.pretext_epochs, 1);
    assert_int_equal(cfg.trials_supervised, 3);
    assert_int_equal(cfg.trials_self_supervised, 3);
    assert_int_equal(cfg.trials_labels.n, 1);
    assert_int_equal(cfg.trials_labels.v[0], 150);
    assert_int_equal(cfg.trials_epochs, 2);
    assert_int_equal(cfg.downstream_frozen_epochs, 1);
    assert_int_equal(cfg.downstream_finetune_epochs, 1);
    /* Untouched keys keep the seed's values. */
    assert_int_equal(cfg.benchmark_batch_size, 64);
    assert_true(cfg.seed == 42);
    assert_int_equal(pt_config_validate(&cfg, 60000, &err), 0);
}

/* ---------------------------------------------------------------------------------------- */
/* Reading: accepted forms. */

static void test_file_syntax_accepted(void **state) {
    (void)state;
    PtConfig cfg;
    PtError err = {{0}};
    char path[64];
    const char *text = "\xEF\xBB\xBF; comment\r\n"
                       "# another comment\n"
                       "\n"
                       "  [ trials ]   ; section with spaces and a comment\n"
                       "    labels = 40   ; indented key, inline comment\n"
                       "\tepochs=3# not a comment: no space before '#'\n";
    /* "3# ..." is not a number: the '#' is part of the value. */
    int status = load_text(text, &cfg, &err, path, sizeof path);
    assert_int_equal(status, -1);
    assert_contains(err.msg, ":6:");
    assert_contains(err.msg, "trials.epochs");

    text = "\xEF\xBB\xBF; comment\r\n"
           "  [ trials ]   ; section with spaces and a comment\r\n"
           "    labels = 40   ; indented key, inline comment\r\n"
           "\tepochs=3 # hash comment\n"
           "[benchmark]\n"
           "enabled = Off\n"
           "[data]\n"
           "dir = \"/path with spaces ; and a semicolon\"  ; comment\n"
           "[experiment]\n"
           "seed = 18446744073709551615\n"
           "learning_rate = 1e-4\n"
           "[downstream]\n"
           "transfer = conv\n";
    status = load_text(text, &cfg, &err, path, sizeof path);
    if (status != 0) fail_msg("%s", err.msg);
    assert_int_equal(cfg.trials_labels.n, 1);
    assert_int_equal(cfg.trials_labels.v[0], 40);
    assert_int_equal(cfg.trials_epochs, 3);
    assert_int_equal(cfg.benchmark_enabled, 0);
    assert_string_equal(cfg.data_dir, "/path with spaces ; and a semicolon");
    assert_true(cfg.seed == UINT64_MAX);
    assert_true(cfg.learning_rate == 1e-4);
    assert_string_equal(cfg.downstream_transfer, "conv");

    /* Every spelling of a boolean. */
    const char *truths[] = {"true", "TRUE", "1", "yes", "on", "On"};
    const char *falsehoods[] = {"false", "False", "0", "no", "off", "OFF"};
    for (int i = 0; i < 6; i++) {
        char assignment[64];
        pt_config_defaults(&cfg);
        snprintf(assignment, sizeof assignment, "benchmark.enabled=%s", falsehoods[i]);
        set_ok(&cfg, assignment);
        assert_int_equal(cfg.benchmark_enabled, 0);
        snprintf(assignment, sizeof assignment, "benchmark.enabled=%s", truths[i]);
        set_ok(&cfg, assignment);
        assert_int_equal(cfg.benchmark_enabled, 1);
    }
}

static void test_long_data_dir(void **state) {
    (void)state;
    /* Longer than libinih's 200-character line: must survive intact. */
    char dir[1001];
    for (int i = 0; i < 1000; i++) dir[i] = (char)('a' + i % 26);
    dir[0] = '/';
    dir[1000] = '\0';
    char *text = malloc(2000);
    assert_non_null(text);
    snprintf(text, 2000, "[data]\ndir = %s\n", dir);
    PtConfig cfg;
    PtError err = {{0}};
    char path[64];
    int status = load_text(text, &cfg, &err, path, sizeof path);
    free(text);
    if (status != 0) fail_msg("%s", err.msg);
    assert_string_equal(cfg.data_dir, dir);

    /* Longer than the field: rejected, not cut. */
    char *huge = malloc(6000);
    assert_non_null(huge);
    strcpy(huge, "[data]\ndir = /");
    size_t used = strlen(huge);
    memset(huge + used, 'x', 5000);
    strcpy(huge + used + 5000, "\n");
    expect_file_error(huge, 2, "data.dir", "too long");
    free(huge);
}

/* ---------------------------------------------------------------------------------------- */
/* Reading: every error. */

static void test_missing_file(void **state) {
    (void)state;
    PtConfig cfg;
    PtError err = {{0}};
    pt_config_defaults(&cfg);
    const char *path = "/nonexistent/folder/pretext.ini";
    assert_int_equal(pt_config_load_file(&cfg, path, &err), -1);
    assert_contains(err.msg, path);
    assert_contains(err.msg, strerror(ENOENT));
}

static void test_syntax_errors(void **state) {
    (void)state;
    expect_file_error("; comment\n\n[trials\nlabels = 3\n", 3, "syntax error", "missing ']'");
    expect_file_error("[trials]\nlabels = 3\nepochs 10\n", 3, "syntax error", "epochs 10");
    expect_file_error("labels = 3\n", 1, "syntax error", "labels");
    expect_file_error("[trials]\n= 3\n", 2, "syntax error", "missing key name");
    expect_file_error("[]\n", 1, "syntax error", "empty section");
    expect_file_error("[trials] junk\n", 1, "syntax error", "junk");
    expect_file_error("[data]\ndir = \"/unterminated\n", 2, "syntax error", "data.dir");
    expect_file_error("[data]\ndir = \"/a\" b\n", 2, "syntax error", "data.dir");
}

static void test_unknown_section_and_key(void **state) {
    (void)state;
    expect_file_error("[trial]\nlabels = 3\n", 1, "unknown section '[trial]'", "did you mean '[trials]'");
    expect_file_error("# c\n[trials]\nlabel = 149\n", 3, "unknown key 'trials.label'",
                      "(did you mean 'trials.labels'?)");
    expect_file_error("[trials]\nbatchsize = 2\n", 2, "unknown key 'trials.batchsize'",
                      "did you mean 'trials.batch_size'");
    /* The right key under the wrong section. */
    expect_file_error("[pretext]\nlabels = 3\n", 2, "unknown key 'pretext.labels'", "did you mean 'trials.labels'");
    /* Nothing close: no hint. */
    PtConfig cfg;
    PtError err;
    char path[64];
    assert_int_equal(load_text("[trials]\nqwertyuiopasdf = 1\n", &cfg, &err, path, sizeof path), -1);
    assert_contains(err.msg, "unknown key 'trials.qwertyuiopasdf'");
    assert_null(strstr(err.msg, "did you mean"));
}

static void test_duplicate_key(void **state) {
    (void)state;
    expect_file_error("[pretext]\nepochs = 1\n\n; again\nepochs = 2\n", 5, "key 'pretext.epochs' given twice",
                      "(first at line 2)");
    /* The same key under a repeated section header is still a duplicate. */
    expect_file_error("[trials]\nlabels = 10\n[pretext]\nepochs = 1\n[trials]\nlabels = 11\n", 6,
                      "key 'trials.labels' given twice", "first at line 2");
    /* The same name in two sections is two different keys. */
    PtConfig cfg;
    PtError err = {{0}};
    char path[64];
    int status = load_text("[pretext]\nepochs = 2\n[trials]\nepochs = 3\n", &cfg, &err, path, sizeof path);
    if (status != 0) fail_msg("%s", err.msg);
    assert_int_equal(cfg.pretext_epochs, 2);
    assert_int_equal(cfg.trials_epochs, 3);
}

static void test_wrong_type(void **state) {
    (void)state;
    expect_file_error("[trials]\nepochs = ten\n", 2, "trials.epochs = 'ten': expected a whole number", NULL);
    expect_file_error("[trials]\nepochs = 10x\n", 2, "trials.epochs = '10x'", "whole number");
    expect_file_error("[trials]\nepochs = 1.5\n", 2, "trials.epochs = '1.5'", "whole number");
    expect_file_error("[trials]\nepochs = 0x10\n", 2, "trials.epochs = '0x10'", "whole number");
    expect_file_error("[trials]\nepochs =\n", 2, "trials.epochs", "empty");
    expect_file_error("[trials]\nepochs = ; only a comment\n", 2, "trials.epochs", "empty");
    expect_file_error("[experiment]\nlearning_rate = 0.001abc\n", 2, "experiment.learning_rate = '0.001abc'",
                      "expected a number");
    expect_file_error("[experiment]\nseed = -1\n", 2, "experiment.seed = '-1'", "not negative");
    expect_file_error("[experiment]\nseed = 4x\n", 2, "experiment.seed = '4x'", "whole number");
    expect_file_error("[benchmark]\nenabled = maybe\n", 2, "benchmark.enabled = 'maybe'", "true or false");
    expect_file_error("[downstream]\ntransfer = dense\n", 2, "downstream.transfer = 'dense'", "'conv+dense', 'conv'");
}

static void test_out_of_range(void **state) {
    (void)state;
    expect_file_error("[trials]\nbatch_size = 0\n", 2, "trials.batch_size = 0: must be at least 1", NULL);
    expect_file_error("[trials]\nlabels = 1\n", 2, "trials.labels = 1: must be at least 2", NULL);
    expect_file_error("[trials]\nsupervised = -1\n", 2, "trials.supervised = -1: must be at least 0", NULL);
    expect_file_error("[run]\nthreads = 257\n", 2, "run.threads = 257: must be at most 256", NULL);
    expect_file_error("[data]\ntrain_images = -5\n", 2, "data.train_images = -5: must be at least 0", NULL);
    expect_file_error("[data]\ntrain_images = 4294967296\n", 2, "data.train_images = 4294967296", "at most");
    expect_file_error("[experiment]\nlearning_rate = 0\n", 2, "experiment.learning_rate = 0: must be greater than 0",
                      NULL);
    expect_file_error("[experiment]\nvalidation_split = 1\n", 2, "experiment.validation_split = 1: must be less than 1",
                      NULL);
    expect_file_error("[experiment]\nvalidation_split = 0\n", 2, "experiment.validation_split = 0", "greater than 0");
    expect_file_error("[experiment]\nvalidation_split = nan\n", 2, "experiment.validation_split = nan", "finite");
    expect_file_error("[experiment]\nlearning_rate = inf\n", 2, "experiment.learning_rate = inf", "finite");
    expect_file_error("[experiment]\nlearning_rate = 1e999\n", 2, "experiment.learning_rate = 1e999", "finite");
    /* Overflow of the parsers themselves. */
    expect_file_error("[trials]\nepochs = 99999999999999999999999\n", 2, "trials.epochs = 99999999999999999999999",
                      "at most");
    expect_file_error("[trials]\nepochs = 2147483648\n", 2, "trials.epochs = 2147483648", "at most 2147483647");
    expect_file_error("[experiment]\nseed = 18446744073709551616\n", 2, "experiment.seed = 18446744073709551616",
                      "too large");
    /* The bounds themselves are accepted. */
    PtConfig cfg;
    pt_config_defaults(&cfg);
    set_ok(&cfg, "run.threads=256");
    set_ok(&cfg, "trials.labels=2");
    set_ok(&cfg, "trials.supervised=0");
    set_ok(&cfg, "data.train_images=4294967295");
    assert_int_equal(cfg.run_threads, 256);
    assert_int_equal(cfg.train_images, 4294967295u);
}

/* ---------------------------------------------------------------------------------------- */
/* Overrides. */

static void test_overrides(void **state) {
    (void)state;
    PtConfig cfg;
    pt_config_defaults(&cfg);
    set_ok(&cfg, "trials.labels=100");
    assert_int_equal(cfg.trials_labels.n, 1);
    assert_int_equal(cfg.trials_labels.v[0], 100);
    set_ok(&cfg, "  trials.labels = 120  ");
    assert_int_equal(cfg.trials_labels.n, 1);
    assert_int_equal(cfg.trials_labels.v[0], 120);
    /* Later wins on the command line. */
    set_ok(&cfg, "trials.labels=130");
    assert_int_equal(cfg.trials_labels.n, 1);
    assert_int_equal(cfg.trials_labels.v[0], 130);
    set_ok(&cfg, "data.dir=/tmp/x=y");
    assert_string_equal(cfg.data_dir, "/tmp/x=y");
    set_ok(&cfg, "data.dir=");
    assert_string_equal(cfg.data_dir, "");
    set_ok(&cfg, "downstream.transfer=conv");
    assert_string_equal(cfg.downstream_transfer, "conv");
    set_ok(&cfg, "experiment.validation_split=0.25");
    assert_true(cfg.validation_split == 0.25);

    struct {
        const char *assignment, *needle, *needle2;
    } bad[] = {
        {"trials.labels", "not an assignment", "trials.labels"},
        {"labels=5", "section.key", "did you mean 'trials.labels=5'"},
        {"epochs=5", "section.key", "epochs=5"},
        {"trials.label=5", "unknown key 'trials.label'", "did you mean 'trials.labels'"},
        {"trial.labels=5", "unknown key 'trial.labels'", "did you mean 'trials.labels'"},
        {"trials.epochs=ten", "trials.epochs = 'ten': expected a whole number", NULL},
        {"trials.batch_size=0", "trials.batch_size = 0: must be at least 1", NULL},
        {"trials.epochs=", "trials.epochs", "empty"},
        {"=5", "missing key name", NULL},
        {"run.threads=1000", "run.threads = 1000: must be at most 256", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        PtConfig before = cfg;
        PtError err = {{0}};
        assert_int_equal(pt_config_set(&cfg, bad[i].assignment, "command line", &err), -1);
        if (strncmp(err.msg, "command line", 12) != 0) fail_msg("message does not start with the origin: %s", err.msg);
        assert_contains(err.msg, bad[i].needle);
        if (bad[i].needle2) assert_contains(err.msg, bad[i].needle2);
        assert_config_equal(&cfg, &before);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Writer, key listing, relations. */

static void round_trip(const PtConfig *original) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/pretext-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *out = fdopen(fd, "w");
    assert_non_null(out);
    pt_config_write_ini(original, out);
    assert_int_equal(fclose(out), 0);

    /* Every key appears in the written text, with its description as a comment. */
    FILE *in = fopen(path, "r");
    assert_non_null(in);
    char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, in);
    text[n] = '\0';
    fclose(in);
    assert_contains(text, "[data]\n");
    assert_contains(text, "[run]\n");
    assert_contains(text, "; BLAS threads per MPI rank");
    assert_true(strstr(text, "[data]") < strstr(text, "[experiment]"));
    assert_true(strstr(text, "[downstream]") < strstr(text, "[run]"));

    /* Loaded over the defaults and over a configuration where every key differs. */
    for (int start = 0; start < 2; start++) {
        PtConfig loaded;
        if (start == 0)
            pt_config_defaults(&loaded);
        else
            scrambled(&loaded);
        PtError err = {{0}};
        int status = pt_config_load_file(&loaded, path, &err);
        if (status != 0) fail_msg("written INI does not load: %s", err.msg);
        assert_config_equal(&loaded, original);
    }
    unlink(path);
}

static void test_write_ini_round_trip(void **state) {
    (void)state;
    PtConfig cfg;
    pt_config_defaults(&cfg);
    round_trip(&cfg);
    scrambled(&cfg);
    round_trip(&cfg);
    /* Values that need care: quotes, comment characters, an exact double. */
    set_ok(&cfg, "data.dir=\" /odd path ; # with spaces \"");
    assert_string_equal(cfg.data_dir, " /odd path ; # with spaces ");
    set_ok(&cfg, "experiment.learning_rate=0.1");
    cfg.validation_split = 1.0 / 3.0;
    round_trip(&cfg);
}

static void test_key_listing(void **state) {
    (void)state;
    assert_int_equal(pt_config_key_count(), 26);
    assert_null(pt_config_key_name(-1));
    assert_null(pt_config_key_name(pt_config_key_count()));
    PtConfig cfg, copy;
    scrambled(&cfg);
    pt_config_defaults(&copy);
    int threads_seen = 0;
    for (int i = 0; i < pt_config_key_count(); i++) {
        const char *name = pt_config_key_name(i);
        assert_non_null(name);
        assert_non_null(strchr(name, '.'));
        for (int j = 0; j < i; j++) assert_string_not_equal(name, pt_config_key_name(j));
        if (strcmp(name, "run.threads") == 0 || strcmp(name, "run.gradient_sum") == 0 ||
            strcmp(name, "run.kernels") == 0 || strcmp(name, "run.phase_groups") == 0 ||
            strcmp(name, "data.dir") == 0 || strcmp(name, "benchmark.from") == 0 ||
            strcmp(name, "pretext.from") == 0) {
            threads_seen++;
            assert_int_equal(pt_config_key_affects_results(i), 0);
        } else {
            assert_int_equal(pt_config_key_affects_results(i), 1);
        }
        /* name=value from the listing is a valid override giving the same value. */
        char value[4200], assignment[4300];
        pt_config_key_value(&cfg, i, value, sizeof value);
        snprintf(assignment, sizeof assignment, "%s=%s", name, value);
        set_ok(&copy, assignment);
    }
    assert_int_equal(threads_seen, 7);
    assert_config_equal(&copy, &cfg);

    /* Spot checks of the canonical text. */
    char value[64];
    pt_config_defaults(&cfg);
    for (int i = 0; i < pt_config_key_count(); i++) {
        pt_config_key_value(&cfg, i, value, sizeof value);
        if (strcmp(pt_config_key_name(i), "experiment.learning_rate") == 0) assert_string_equal(value, "0.001");
        if (strcmp(pt_config_key_name(i), "benchmark.enabled") == 0) assert_string_equal(value, "true");
        if (strcmp(pt_config_key_name(i), "downstream.transfer") == 0) assert_string_equal(value, "conv+dense");
        if (strcmp(pt_config_key_name(i), "run.gradient_sum") == 0) assert_string_equal(value, "auto");
        if (strcmp(pt_config_key_name(i), "experiment.seed") == 0) assert_string_equal(value, "42");
    }
}

static void expect_invalid(const PtConfig *cfg, uint32_t available, const char *needle, const char *needle2) {
    PtError err = {{0}};
    assert_int_equal(pt_config_validate(cfg, available, &err), -1);
    assert_contains(err.msg, needle);
    if (needle2) assert_contains(err.msg, needle2);
}

static void test_validate_relations(void **state) {
    (void)state;
    PtConfig cfg;
    PtError err = {{0}};

    /* labels <= training images used (train_images when set, else the folder's count). */
    pt_config_defaults(&cfg);
    set_ok(&cfg, "data.train_images=100");
    expect_invalid(&cfg, 60000, "150", "100");
    expect_invalid(&cfg, 0, "trials.labels = 150", "100");
    pt_config_defaults(&cfg);
    expect_invalid(&cfg, 120, "trials.labels = 150", "120");
    assert_int_equal(pt_config_validate(&cfg, 150, &err), 0);
    /* No trials: no labels needed. */
    set_ok(&cfg, "trials.supervised=0");
    set_ok(&cfg, "trials.self_supervised=0");
    assert_int_equal(pt_config_validate(&cfg, 120, &err), 0);

    /* train_images <= available. */
    pt_config_defaults(&cfg);
    set_ok(&cfg, "data.train_images=60001");
    expect_invalid(&cfg, 60000, "data.train_images = 60001", "60000");
    assert_int_equal(pt_config_validate(&cfg, 0, &err), 0); /* not known yet */
    assert_int_equal(pt_config_validate(&cfg, 60001, &err), 0);

    /* The split must leave a training example of the 150 per trial: floor(150 * 0.001) = 0. */
    pt_config_defaults(&cfg);
    set_ok(&cfg, "experiment.validation_split=0.999");
    expect_invalid(&cfg, 60000, "experiment.validation_split = 0.999", "no training example");
    set_ok(&cfg, "experiment.validation_split=0.99"); /* floor(1.5) = 1 */
    assert_int_equal(pt_config_validate(&cfg, 60000, &err), 0);
    /* ... and a validation example: 2 labels at split 0.2 give 1 + 1; a split so small that
     * 1 - split rounds to 1 gives floor(10 * 1) = 10 + 0. */
    pt_config_defaults(&cfg);
    set_ok(&cfg, "trials.labels=2");
    assert_int_equal(pt_config_validate(&cfg, 60000, &err), 0);
    set_ok(&cfg, "trials.labels=10");
    set_ok(&cfg, "experiment.validation_split=0.01"); /* 9 + 1 */
    assert_int_equal(pt_config_validate(&cfg, 60000, &err), 0);
    set_ok(&cfg, "experiment.validation_split=1e-17");
    expect_invalid(&cfg, 60000, "no validation example", "10");
    /* The phases on all images at split 0.2: 3 images give 2 + 1 (fine), 1 image gives 0 + 1. */
    pt_config_defaults(&cfg);
    set_ok(&cfg, "trials.supervised=0");
    set_ok(&cfg, "trials.self_supervised=0");
    set_ok(&cfg, "data.train_images=1");
    expect_invalid(&cfg, 60000, "experiment.validation_split = 0.2", "1 training images");
    set_ok(&cfg, "data.train_images=3");
    assert_int_equal(pt_config_validate(&cfg, 60000, &err), 0);

    /* The downstream trials need at least one epoch. */
    pt_config_defaults(&cfg);
    set_ok(&cfg, "downstream.frozen_epochs=0");
    set_ok(&cfg, "downstream.finetune_epochs=0");
    expect_invalid(&cfg, 60000, "downstream.frozen_epochs", "downstream.finetune_epochs");
    set_ok(&cfg, "trials.self_supervised=0");
    assert_int_equal(pt_config_validate(&cfg, 60000, &err), 0);
    set_ok(&cfg, "trials.self_supervised=1");
    set_ok(&cfg, "downstream.finetune_epochs=1");
    assert_int_equal(pt_config_validate(&cfg, 60000, &err), 0);

    /* A struct filled by hand is range-checked too. */
    pt_config_defaults(&cfg);
    cfg.trials_batch_size = 0;
    expect_invalid(&cfg, 60000, "trials.batch_size = 0", "at least 1");
    pt_config_defaults(&cfg);
    strcpy(cfg.downstream_transfer, "dense");
    expect_invalid(&cfg, 60000, "downstream.transfer", "dense");
}

/* List keys: seeds (values and ranges), label budgets, their canonical text and every refusal. */
static void test_lists(void **state) {
    (void)state;
    PtConfig cfg;
    PtError err = {{0}};
    uint64_t seeds[PT_MAX_SEEDS];
    pt_config_defaults(&cfg);
    /* no list: experiment.seed alone */
    assert_int_equal(pt_config_seed_list(&cfg, seeds), 1);
    assert_true(seeds[0] == 42);
    set_ok(&cfg, "experiment.seeds= 3-5, 10 ,1");
    assert_int_equal(pt_config_seed_list(&cfg, seeds), 5);
    const uint64_t want[5] = {3, 4, 5, 10, 1};
    for (int i = 0; i < 5; i++) assert_true(seeds[i] == want[i]);
    char text[256];
    for (int k = 0; k < pt_config_key_count(); k++)
        if (strcmp(pt_config_key_name(k), "experiment.seeds") == 0) {
            pt_config_key_value(&cfg, k, text, sizeof text);
            assert_string_equal(text, "3-5,10,1"); /* runs of three or more become ranges */
        }
    set_ok(&cfg, "experiment.seeds=7,8");
    assert_int_equal(pt_config_seed_list(&cfg, seeds), 2);
    set_ok(&cfg, "experiment.seeds=");
    assert_int_equal(pt_config_seed_list(&cfg, seeds), 1);
    set_ok(&cfg, "experiment.seeds=18446744073709551614-18446744073709551615");
    assert_int_equal(pt_config_seed_list(&cfg, seeds), 2);
    assert_true(seeds[1] == UINT64_MAX);
    const char *bad_seeds[] = {"experiment.seeds=1,,2", "experiment.seeds=5-3", "experiment.seeds=-1",
                               "experiment.seeds=1,x", "experiment.seeds=1-300", "experiment.seeds=2,1-3"};
    for (size_t i = 0; i < sizeof bad_seeds / sizeof bad_seeds[0]; i++) {
        PtConfig before = cfg;
        assert_int_equal(pt_config_set(&cfg, bad_seeds[i], "test", &err), -1);
        assert_non_null(strstr(err.msg, "experiment.seeds"));
        assert_int_equal(cfg.seeds.n, before.seeds.n); /* unchanged */
    }
    assert_non_null(strstr(err.msg, "given twice")); /* the last one: 2 twice */
    /* budgets */
    set_ok(&cfg, "trials.labels=50, 100,1000");
    assert_int_equal(cfg.trials_labels.n, 3);
    assert_int_equal(cfg.trials_labels.v[2], 1000);
    for (int k = 0; k < pt_config_key_count(); k++)
        if (strcmp(pt_config_key_name(k), "trials.labels") == 0) {
            pt_config_key_value(&cfg, k, text, sizeof text);
            assert_string_equal(text, "50,100,1000");
        }
    const char *bad_budgets[] = {"trials.labels=", "trials.labels=50,50", "trials.labels=50,1", "trials.labels=50-60",
                                 "trials.labels=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,"
                                 "27,28,29,30,31,32,33"};
    for (size_t i = 0; i < sizeof bad_budgets / sizeof bad_budgets[0]; i++) {
        assert_int_equal(pt_config_set(&cfg, bad_budgets[i], "test", &err), -1);
        assert_non_null(strstr(err.msg, "trials.labels"));
        assert_int_equal(cfg.trials_labels.n, 3);
    }
    /* every budget is checked against the data */
    assert_int_equal(pt_config_validate(&cfg, 900, &err), -1);
    assert_non_null(strstr(err.msg, "trials.labels = 1000 is more than the 900"));
    assert_int_equal(pt_config_validate(&cfg, 60000, &err), 0);
    /* phase groups: auto or a count */
    assert_int_equal(pt_config_phase_groups(&cfg), 0);
    set_ok(&cfg, "run.phase_groups=4");
    assert_int_equal(pt_config_phase_groups(&cfg), 4);
    set_ok(&cfg, "run.phase_groups=many");
    assert_int_equal(pt_config_validate(&cfg, 60000, &err), -1);
    assert_non_null(strstr(err.msg, "run.phase_groups"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_the_seed),
        cmocka_unit_test(test_session5_ini_equals_defaults),
        cmocka_unit_test(test_smoke_ini_loads),
        cmocka_unit_test(test_file_syntax_accepted),
        cmocka_unit_test(test_long_data_dir),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_unknown_section_and_key),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_write_ini_round_trip),
        cmocka_unit_test(test_key_listing),
        cmocka_unit_test(test_validate_relations),
        cmocka_unit_test(test_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
