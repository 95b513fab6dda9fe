/* config.c: the experiment's configuration. One table of keys (section, name, type, place in
 * PtConfig, range, whether it changes results, description, default) drives everything: the
 * defaults, the INI reader, section.key=value overrides, validation, the key listing and the
 * INI writer, so a key is added in exactly one place.
 *
 * The INI reader is written here rather than taken from libinih: Debian's libinih is built
 * without INI_HANDLER_LINENO (no line number per key), cuts lines at 200 characters (a long
 * data folder would be split into a second, bogus line) and treats an indented line as the
 * continuation of the previous value (an indented "epochs = 1" would silently become part of
 * the previous key), and it gives no reason for a syntax error. The format accepted is the
 * usual one: comments start with ';' or '#', blank lines, [section], key = value, whitespace
 * trimmed, an inline comment after whitespace, and optional double quotes around a value. */
#define _POSIX_C_SOURCE 200809L
#include "pt_config.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum {
    KEY_BOOL,   /* int: 0 or 1 */
    KEY_INT,    /* int, range [int_min, int_max] */
    KEY_UINT,   /* uint32_t, range [0, UINT32_MAX] */
    KEY_UINT64, /* uint64_t, any value */
    KEY_DOUBLE, /* double, finite, range given by min/max and whether each bound is excluded */
    KEY_STRING, /* char[field_size] */
    KEY_ENUM,   /* char[field_size], one of enum_values */
    KEY_SEEDS,  /* PtSeedList: "1,2,3", ranges "1-5"; may be empty */
    KEY_INTS    /* PtIntList: "50,100,150", each in [int_min, int_max]; at least one */
} KeyType;

typedef struct {
    const char *section;
    const char *name;
    KeyType type;
    size_t offset;            /* of the field in PtConfig */
    size_t field_size;        /* bytes of the field (strings: including the terminating NUL) */
    long long int_min, int_max;
    double double_min, double_max;
    int double_min_open, double_max_open; /* 1: the bound itself is not allowed */
    const char *const *enum_values;       /* NULL-terminated */
    int affects_results;
    const char *default_text;             /* parsed by the same code as a file's value */
    const char *description;
} KeySpec;

static const char *const transfer_values[] = {"conv+dense", "conv", NULL};
static const char *const gradient_sum_values[] = {"auto", "mpi", NULL};
static const char *const kernels_values[] = {"auto", "avx512", "avx2", "generic", NULL};

#define FIELD(f) offsetof(PtConfig, f), sizeof(((PtConfig *)0)->f)
#define INT_RANGE(lo, hi) (lo), (hi), 0, 0, 0, 0, NULL
#define NO_RANGE 0, 0, 0, 0, 0, 0, NULL

static const KeySpec keys[] = {
    {"data", "dir", KEY_STRING, FIELD(data_dir), NO_RANGE, 0, "",
     "folder with the four IDX files (MNIST or any 28x28 set); empty: $PRETEXT_DATA_DIR, then ./data/mnist, then the source tree's data/mnist. A resume checks the data's SHA-256, not this path"},
    {"data", "train_images", KEY_UINT, FIELD(train_images), INT_RANGE(0, UINT32_MAX), 1, "0",
     "use only the first N training images (0: all of them)"},
    {"experiment", "seed", KEY_UINT64, FIELD(seed), NO_RANGE, 1, "42",
     "base of every random stream (the seed's set.seed(42))"},
    {"experiment", "seeds", KEY_SEEDS, FIELD(seeds), NO_RANGE, 1, "",
     "several experiment seeds in one job (a study): a list or ranges, e.g. 1,2,3 or 1-5; each seed gets its own benchmark, pretext model and trials; empty: experiment.seed alone"},
    {"experiment", "learning_rate", KEY_DOUBLE, FIELD(learning_rate), 0, 0, 0.0, INFINITY, 1, 0, NULL, 1,
     "0.001", "Adam's learning rate (Keras's default for optimizer = \"adam\")"},
    {"experiment", "validation_split", KEY_DOUBLE, FIELD(validation_split), 0, 0, 0.0, 1.0, 1, 1, NULL, 1,
     "0.2", "fraction of each fit's data kept for validation (the last part, as Keras does)"},
    {"benchmark", "enabled", KEY_BOOL, FIELD(benchmark_enabled), NO_RANGE, 1, "true",
     "train the supervised benchmark on all training images"},
    {"benchmark", "from", KEY_STRING, FIELD(benchmark_from), NO_RANGE, 0, "",
     "take each seed's benchmark phase (weights, history, test metrics) from this earlier results file instead of training it; refused unless that file's data and phase configuration match"},
    {"benchmark", "epochs", KEY_INT, FIELD(benchmark_epochs), INT_RANGE(1, INT_MAX), 1, "10",
     "epochs of the benchmark fit"},
    {"benchmark", "batch_size", KEY_INT, FIELD(benchmark_batch_size), INT_RANGE(1, INT_MAX), 1, "64",
     "batch size of the benchmark fit"},
    {"pretext", "epochs", KEY_INT, FIELD(pretext_epochs), INT_RANGE(1, INT_MAX), 1, "10",
     "epochs of the rotation (pretext) fit"},
    {"pretext", "batch_size", KEY_INT, FIELD(pretext_batch_size), INT_RANGE(1, INT_MAX), 1, "64",
     "batch size of the rotation (pretext) fit"},
    {"pretext", "from", KEY_STRING, FIELD(pretext_from), NO_RANGE, 0, "",
     "take each seed's pretext phase from this earlier results file instead of training it; refused unless that file's data and phase configuration match"},
    {"trials", "supervised", KEY_INT, FIELD(trials_supervised), INT_RANGE(0, INT_MAX), 1, "20",
     "number of supervised small-data trials (the seed's M)"},
    {"trials", "self_supervised", KEY_INT, FIELD(trials_self_supervised), INT_RANGE(0, INT_MAX), 1, "20",
     "number of self-supervised downstream trials (the seed's M)"},
    {"trials", "labels", KEY_INTS, FIELD(trials_labels), INT_RANGE(2, INT_MAX), 1, "150",
     "labelled images drawn (without replacement) for each trial (0.0025 * 60000), or a list of label budgets, e.g. 50,100,150,300,1000 (every budget gets its trials)"},
    {"trials", "paired", KEY_BOOL, FIELD(trials_paired), NO_RANGE, 1, "false",
     "pair the kinds: supervised and self-supervised trial i (of a seed and budget) draw the same labelled images, the same head initialisation and the same shuffles and dropout, so only the transferred weights differ (false: the seed's independent trials)"},
    {"trials", "epochs", KEY_INT, FIELD(trials_epochs), INT_RANGE(1, INT_MAX), 1, "10",
     "epochs of a supervised small-data trial"},
    {"trials", "batch_size", KEY_INT, FIELD(trials_batch_size), INT_RANGE(1, INT_MAX), 1, "1",
     "batch size of every trial fit (supervised and downstream)"},
    {"downstream", "frozen_epochs", KEY_INT, FIELD(downstream_frozen_epochs), INT_RANGE(0, INT_MAX), 1, "10",
     "downstream epochs with the two conv layers frozen"},
    {"downstream", "finetune_epochs", KEY_INT, FIELD(downstream_finetune_epochs), INT_RANGE(0, INT_MAX), 1, "10",
     "downstream epochs after unfreezing (fresh Adam state)"},
    {"downstream", "transfer", KEY_ENUM, FIELD(downstream_transfer), 0, 0, 0, 0, 0, 0, transfer_values, 1,
     "conv+dense", "weights copied from the pretext model: conv+dense (the seed's weights[[1..6]]) or conv (conv layers only)"},
    {"run", "threads", KEY_INT, FIELD(run_threads), INT_RANGE(1, 256), 0, "1",
     "BLAS threads per MPI rank (does not change results)"},
    {"run", "gradient_sum", KEY_ENUM, FIELD(run_gradient_sum), 0, 0, 0, 0, 0, 0, gradient_sum_values, 0,
     "auto", "how the data-parallel phases sum gradients: auto (through shared memory among the ranks of a node, each updating a slice of one copy of the weights; MPI across nodes) or mpi (MPI_Allreduce only); changes only the float summation order, like the rank count"},
    {"run", "kernels", KEY_ENUM, FIELD(run_kernels), 0, 0, 0, 0, 0, 0, kernels_values, 0,
     "auto", "the engine's kernel set: auto (the best set every rank's CPU supports), avx512, avx2 or generic (an error if a CPU lacks it); PRETEXT_KERNELS sets it when this key is auto; changes only float rounding"},
    {"run", "phase_groups", KEY_STRING, FIELD(run_phase_groups), NO_RANGE, 0, "auto",
     "into how many groups of ranks the job splits to train phases at the same time (each group data-parallel; a seed's benchmark and pretext phases are independent, so even one seed has two to share out); auto: a cost model chooses (docs/performance.md); 1: every phase on all ranks, one after the other; changes only float rounding of the phases"},
};

#define KEY_COUNT ((int)(sizeof keys / sizeof keys[0]))

/* Longest "section.key" name. */
enum { KEY_NAME_MAX = 64 };

static char key_full_names[KEY_COUNT][KEY_NAME_MAX];

static const char *full_name(int i) {
    if (!key_full_names[i][0])
        snprintf(key_full_names[i], KEY_NAME_MAX, "%s.%s", keys[i].section, keys[i].name);
    return key_full_names[i];
}

/* ---------------------------------------------------------------------------------------- */
/* Small string helpers. */

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n' || *s == '\f' || *s == '\v') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n' ||
                     s[n - 1] == '\f' || s[n - 1] == '\v'))
        s[--n] = '\0';
    return s;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

/* Levenshtein distance, for "did you mean" hints (names are short). */
static int edit_distance(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    if (na >= KEY_NAME_MAX * 4 || nb >= KEY_NAME_MAX * 4) return INT_MAX;
    int row[KEY_NAME_MAX * 4 + 1];
    for (size_t j = 0; j <= nb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        int diagonal = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= nb; j++) {
            int above = row[j];
            int substitute = diagonal + (a[i - 1] != b[j - 1]);
            int best = above + 1 < row[j - 1] + 1 ? above + 1 : row[j - 1] + 1;
            row[j] = substitute < best ? substitute : best;
            diagonal = above;
        }
    }
    return row[nb];
}

static int close_enough(int distance, const char *name) {
    int len = (int)strlen(name);
    return distance <= 2 || distance * 3 <= len;
}

/* Key index of "section.key", or -1. */
static int find_key(const char *section, const char *name) {
    for (int i = 0; i < KEY_COUNT; i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0) return i;
    return -1;
}

static int section_exists(const char *section) {
    for (int i = 0; i < KEY_COUNT; i++)
        if (strcmp(keys[i].section, section) == 0) return 1;
    return 0;
}

/* Writes " (did you mean 'x'?)" into hint for the key closest to section.name, or "". */
static void suggest_key(const char *section, const char *name, char *hint, size_t n) {
    char wanted[2 * KEY_NAME_MAX * 4];
    snprintf(wanted, sizeof wanted, "%s.%s", section, name);
    int best = -1, best_distance = INT_MAX;
    for (int i = 0; i < KEY_COUNT; i++) {
        int d = edit_distance(wanted, full_name(i));
        /* The right key under the wrong section counts as close. */
        if (strcmp(keys[i].name, name) == 0 && d > 1) d = 1;
        if (d < best_distance) { best_distance = d; best = i; }
    }
    hint[0] = '\0';
    if (best >= 0 && close_enough(best_distance, wanted))
        snprintf(hint, n, " (did you mean '%s'?)", full_name(best));
}

static void suggest_section(const char *section, char *hint, size_t n) {
    const char *best = NULL;
    int best_distance = INT_MAX;
    for (int i = 0; i < KEY_COUNT; i++) {
        int d = edit_distance(section, keys[i].section);
        if (d < best_distance) { best_distance = d; best = keys[i].section; }
    }
    hint[0] = '\0';
    if (best && close_enough(best_distance, section)) snprintf(hint, n, " (did you mean '[%s]'?)", best);
}

/* ---------------------------------------------------------------------------------------- */
/* Values: text -> typed value -> range check -> field. */

typedef struct {
    long long as_int;     /* KEY_BOOL, KEY_INT, KEY_UINT */
    uint64_t as_uint64;   /* KEY_UINT64 */
    double as_double;     /* KEY_DOUBLE */
    const char *as_text;  /* KEY_STRING, KEY_ENUM */
    const PtSeedList *as_seeds; /* KEY_SEEDS */
    const PtIntList *as_ints;   /* KEY_INTS */
} Value;

static int parse_bool(const char *text, int *out) {
    static const char *const truths[] = {"true", "1", "yes", "on"};
    static const char *const falsehoods[] = {"false", "0", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(text, truths[i]) == 0) { *out = 1; return 0; }
        if (strcasecmp(text, falsehoods[i]) == 0) { *out = 0; return 0; }
    }
    return -1;
}

/* Checks the range of an already typed value; where: "file:line" or the origin. */
static int check_range(int k, const Value *v, const char *where, const char *shown, PtError *err) {
    const KeySpec *key = &keys[k];
    switch (key->type) {
    case KEY_INT:
    case KEY_UINT:
        if (v->as_int < key->int_min)
            return pt_error_set(err, "%s: %s = %s: must be at least %lld", where, full_name(k), shown, key->int_min);
        if (v->as_int > key->int_max)
            return pt_error_set(err, "%s: %s = %s: must be at most %lld", where, full_name(k), shown, key->int_max);
        return 0;
    case KEY_DOUBLE:
        if (!isfinite(v->as_double))
            return pt_error_set(err, "%s: %s = %s: must be a finite number", where, full_name(k), shown);
        if (key->double_min_open ? !(v->as_double > key->double_min) : !(v->as_double >= key->double_min))
            return pt_error_set(err, "%s: %s = %s: must be %s %g", where, full_name(k), shown,
                                key->double_min_open ? "greater than" : "at least", key->double_min);
        if (key->double_max_open ? !(v->as_double < key->double_max) : !(v->as_double <= key->double_max))
            return pt_error_set(err, "%s: %s = %s: must be %s %g", where, full_name(k), shown,
                                key->double_max_open ? "less than" : "at most", key->double_max);
        return 0;
    case KEY_STRING:
        if (strlen(v->as_text) >= key->field_size)
            return pt_error_set(err, "%s: %s: value too long (%zu characters, at most %zu)", where, full_name(k),
                                strlen(v->as_text), key->field_size - 1);
        return 0;
    case KEY_ENUM:
        for (const char *const *e = key->enum_values; *e; e++)
            if (strcmp(*e, v->as_text) == 0) return 0;
        {
            char choices[256] = "";
            for (const char *const *e = key->enum_values; *e; e++) {
                size_t used = strlen(choices);
                snprintf(choices + used, sizeof choices - used, "%s'%s'", e == key->enum_values ? "" : ", ", *e);
            }
            return pt_error_set(err, "%s: %s = '%s': expected one of %s", where, full_name(k), v->as_text, choices);
        }
    case KEY_INTS:
        if (v->as_ints->n < 1 || v->as_ints->n > PT_MAX_BUDGETS)
            return pt_error_set(err, "%s: %s = %s: expected 1 to %d values", where, full_name(k), shown, PT_MAX_BUDGETS);
        for (int i = 0; i < v->as_ints->n; i++) {
            if (v->as_ints->v[i] < key->int_min)
                return v->as_ints->n == 1
                           ? pt_error_set(err, "%s: %s = %s: must be at least %lld", where, full_name(k), shown, key->int_min)
                           : pt_error_set(err, "%s: %s = %s: %d is less than %lld", where, full_name(k), shown,
                                          v->as_ints->v[i], key->int_min);
            if (v->as_ints->v[i] > key->int_max)
                return v->as_ints->n == 1
                           ? pt_error_set(err, "%s: %s = %s: must be at most %lld", where, full_name(k), shown, key->int_max)
                           : pt_error_set(err, "%s: %s = %s: %d is more than %lld", where, full_name(k), shown,
                                          v->as_ints->v[i], key->int_max);
            for (int j = 0; j < i; j++)
                if (v->as_ints->v[j] == v->as_ints->v[i])
                    return pt_error_set(err, "%s: %s = %s: %d is given twice", where, full_name(k), shown,
                                        v->as_ints->v[i]);
        }
        return 0;
    case KEY_SEEDS:
        if (v->as_seeds->n < 0 || v->as_seeds->n > PT_MAX_SEEDS)
            return pt_error_set(err, "%s: %s: at most %d seeds", where, full_name(k), PT_MAX_SEEDS);
        for (int i = 0; i < v->as_seeds->n; i++)
            for (int j = 0; j < i; j++)
                if (v->as_seeds->v[j] == v->as_seeds->v[i])
                    return pt_error_set(err, "%s: %s = %s: seed %" PRIu64 " is given twice", where, full_name(k),
                                        shown, v->as_seeds->v[i]);
        return 0;
    case KEY_BOOL:
    case KEY_UINT64:
        return 0;
    }
    return 0;
}

/* One unsigned whole number in text[0..len) (no sign, no spaces); -1 if it is not one. */
static int parse_u64_token(const char *text, size_t len, uint64_t *out) {
    if (len == 0 || len > 20) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') return -1;
        uint64_t d = (uint64_t)(text[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Splits text at commas into trimmed tokens; calls fn on each; -1 at the first failure. */
static int parse_list(const char *text, int (*fn)(void *ctx, const char *token, size_t len), void *ctx) {
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len > 0 && is_space(*p)) { p++; len--; }
        while (len > 0 && is_space(p[len - 1])) len--;
        if (fn(ctx, p, len) != 0) return -1;
        if (!comma) return 0;
        p = comma + 1;
    }
}

static int add_seed_token(void *ctx, const char *token, size_t len) {
    PtSeedList *list = ctx;
    const char *dash = memchr(token, '-', len);
    uint64_t lo, hi;
    if (dash) {
        if (parse_u64_token(token, (size_t)(dash - token), &lo) != 0 ||
            parse_u64_token(dash + 1, len - (size_t)(dash - token) - 1, &hi) != 0 || hi < lo)
            return -1;
    } else {
        if (parse_u64_token(token, len, &lo) != 0) return -1;
        hi = lo;
    }
    for (uint64_t s = lo;; s++) {
        if (list->n >= PT_MAX_SEEDS) return -2;
        list->v[list->n++] = s;
        if (s == hi) break;
    }
    return 0;
}

static int add_int_token(void *ctx, const char *token, size_t len) {
    PtIntList *list = ctx;
    uint64_t v;
    if (parse_u64_token(token, len, &v) != 0 || v > INT_MAX) return -1;
    if (list->n >= PT_MAX_BUDGETS) return -2;
    list->v[list->n++] = (int)v;
    return 0;
}

/* Parses text (already trimmed and unquoted) for key k and stores it in cfg. */
static int set_from_text(PtConfig *cfg, int k, const char *text, const char *where, PtError *err) {
    const KeySpec *key = &keys[k];
    char *field = (char *)cfg + key->offset;
    Value v = {0};
    char *end = NULL;

    if (text[0] == '\0' && key->type != KEY_STRING && key->type != KEY_SEEDS)
        return pt_error_set(err, "%s: %s: the value is empty", where, full_name(k));

    switch (key->type) {
    case KEY_BOOL: {
        int b = 0;
        if (parse_bool(text, &b) != 0)
            return pt_error_set(err, "%s: %s = '%s': expected true or false (also yes/no, on/off, 1/0)", where,
                                full_name(k), text);
        memcpy(field, &b, sizeof b);
        return 0;
    }
    case KEY_INT:
    case KEY_UINT: {
        errno = 0;
        long long parsed = strtoll(text, &end, 10);
        if (end == text || *end != '\0' || is_space(text[0]))
            return pt_error_set(err, "%s: %s = '%s': expected a whole number", where, full_name(k), text);
        /* On overflow strtoll gives LLONG_MAX or LLONG_MIN, which the range check rejects. */
        v.as_int = parsed;
        if (check_range(k, &v, where, text, err) != 0) return -1;
        if (key->type == KEY_INT) {
            int as_int = (int)parsed;
            memcpy(field, &as_int, sizeof as_int);
        } else {
            uint32_t as_uint = (uint32_t)parsed;
            memcpy(field, &as_uint, sizeof as_uint);
        }
        return 0;
    }
    case KEY_UINT64: {
        if (text[0] == '-' || is_space(text[0]))
            return pt_error_set(err, "%s: %s = '%s': expected a whole number that is not negative", where,
                                full_name(k), text);
        errno = 0;
        unsigned long long parsed = strtoull(text, &end, 10);
        if (end == text || *end != '\0')
            return pt_error_set(err, "%s: %s = '%s': expected a whole number", where, full_name(k), text);
        if (errno == ERANGE)
            return pt_error_set(err, "%s: %s = %s: the number is too large (at most %" PRIu64 ")", where,
                                full_name(k), text, UINT64_MAX);
        uint64_t as_uint64 = (uint64_t)parsed;
        memcpy(field, &as_uint64, sizeof as_uint64);
        return 0;
    }
    case KEY_DOUBLE: {
        errno = 0;
        double parsed = strtod(text, &end);
        if (end == text || *end != '\0' || is_space(text[0]))
            return pt_error_set(err, "%s: %s = '%s': expected a number", where, full_name(k), text);
        if (errno == ERANGE && (parsed == 0.0 || fabs(parsed) < DBL_MIN))
            return pt_error_set(err, "%s: %s = %s: the number is too small to represent", where, full_name(k), text);
        if (errno == ERANGE || !isfinite(parsed))
            return pt_error_set(err, "%s: %s = %s: must be a finite number", where, full_name(k), text);
        v.as_double = parsed;
        if (check_range(k, &v, where, text, err) != 0) return -1;
        memcpy(field, &parsed, sizeof parsed);
        return 0;
    }
    case KEY_STRING:
    case KEY_ENUM:
        v.as_text = text;
        if (check_range(k, &v, where, text, err) != 0) return -1;
        memcpy(field, text, strlen(text) + 1);
        return 0;
    case KEY_SEEDS: {
        PtSeedList list;
        list.n = 0;
        int rc = text[0] ? parse_list(text, add_seed_token, &list) : 0;
        if (rc != 0)
            return pt_error_set(err, "%s: %s = '%s': expected seeds (whole numbers >= 0) or ranges a-b, separated "
                                     "by commas, at most %d seeds in all", where, full_name(k), text, PT_MAX_SEEDS);
        v.as_seeds = &list;
        if (check_range(k, &v, where, text, err) != 0) return -1;
        memcpy(field, &list, sizeof list);
        return 0;
    }
    case KEY_INTS: {
        PtIntList list;
        list.n = 0;
        if (parse_list(text, add_int_token, &list) != 0)
            return pt_error_set(err, "%s: %s = '%s': expected whole numbers separated by commas, at most %d",
                                where, full_name(k), text, PT_MAX_BUDGETS);
        v.as_ints = &list;
        if (check_range(k, &v, where, text, err) != 0) return -1;
        memcpy(field, &list, sizeof list);
        return 0;
    }
    }
    return pt_error_set(err, "%s: %s: internal error: unknown key type", where, full_name(k));
}

/* Reads key k's current value from cfg as a typed value (for validation). */
static Value value_of(const PtConfig *cfg, int k) {
    const char *field = (const char *)cfg + keys[k].offset;
    Value v = {0};
    switch (keys[k].type) {
    case KEY_BOOL:
    case KEY_INT: {
        int x;
        memcpy(&x, field, sizeof x);
        v.as_int = x;
        break;
    }
    case KEY_UINT: {
        uint32_t x;
        memcpy(&x, field, sizeof x);
        v.as_int = x;
        break;
    }
    case KEY_UINT64:
        memcpy(&v.as_uint64, field, sizeof v.as_uint64);
        break;
    case KEY_DOUBLE:
        memcpy(&v.as_double, field, sizeof v.as_double);
        break;
    case KEY_STRING:
    case KEY_ENUM:
        v.as_text = field;
        break;
    case KEY_SEEDS:
        v.as_seeds = (const PtSeedList *)field;
        break;
    case KEY_INTS:
        v.as_ints = (const PtIntList *)field;
        break;
    }
    return v;
}

/* ---------------------------------------------------------------------------------------- */
/* Public: defaults, key listing. */

void pt_config_defaults(PtConfig *cfg) {
    memset(cfg, 0, sizeof *cfg);
    for (int k = 0; k < KEY_COUNT; k++) {
        PtError err;
        if (set_from_text(cfg, k, keys[k].default_text, "built-in default", &err) != 0)
            pt_fatal("%s", err.msg); /* a bug in the table above */
    }
}

int pt_config_key_count(void) { return KEY_COUNT; }

const char *pt_config_key_name(int i) {
    if (i < 0 || i >= KEY_COUNT) return NULL;
    return full_name(i);
}

int pt_config_key_affects_results(int i) {
    if (i < 0 || i >= KEY_COUNT) return 0;
    return keys[i].affects_results;
}

void pt_config_key_value(const PtConfig *cfg, int i, char *buf, size_t n) {
    if (n == 0) return;
    buf[0] = '\0';
    if (i < 0 || i >= KEY_COUNT) return;
    Value v = value_of(cfg, i);
    switch (keys[i].type) {
    case KEY_BOOL:
        snprintf(buf, n, "%s", v.as_int ? "true" : "false");
        break;
    case KEY_INT:
    case KEY_UINT:
        snprintf(buf, n, "%lld", v.as_int);
        break;
    case KEY_UINT64:
        snprintf(buf, n, "%" PRIu64, v.as_uint64);
        break;
    case KEY_DOUBLE: {
        /* The shortest of %.15g/%.17g that reads back as the same double. */
        snprintf(buf, n, "%.15g", v.as_double);
        if (strtod(buf, NULL) != v.as_double) snprintf(buf, n, "%.17g", v.as_double);
        break;
    }
    case KEY_STRING:
    case KEY_ENUM:
        snprintf(buf, n, "%.*s", (int)strnlen(v.as_text, keys[i].field_size), v.as_text);
        break;
    case KEY_SEEDS: /* runs of consecutive seeds as ranges: 1-5,10 */
        for (int a = 0; a < v.as_seeds->n;) {
            int b = a;
            while (b + 1 < v.as_seeds->n && v.as_seeds->v[b + 1] == v.as_seeds->v[b] + 1) b++;
            size_t used = strlen(buf);
            if (b > a + 1)
                snprintf(buf + used, n - used, "%s%" PRIu64 "-%" PRIu64, a ? "," : "", v.as_seeds->v[a], v.as_seeds->v[b]);
            else
                snprintf(buf + used, n - used, "%s%" PRIu64, a ? "," : "", v.as_seeds->v[a]);
            if (b == a + 1) {
                used = strlen(buf);
                snprintf(buf + used, n - used, ",%" PRIu64, v.as_seeds->v[b]);
            }
            a = b + 1;
        }
        break;
    case KEY_INTS:
        for (int a = 0; a < v.as_ints->n; a++) {
            size_t used = strlen(buf);
            snprintf(buf + used, n - used, "%s%d", a ? "," : "", v.as_ints->v[a]);
        }
        break;
    }
}

int pt_config_seed_list(const PtConfig *cfg, uint64_t *out) {
    if (cfg->seeds.n == 0) {
        out[0] = cfg->seed;
        return 1;
    }
    for (int i = 0; i < cfg->seeds.n; i++) out[i] = cfg->seeds.v[i];
    return cfg->seeds.n;
}

int pt_config_phase_groups(const PtConfig *cfg) {
    if (strcmp(cfg->run_phase_groups, "auto") == 0) return 0;
    return atoi(cfg->run_phase_groups);
}

/* ---------------------------------------------------------------------------------------- */
/* INI file. */

/* Splits a value at an inline comment and removes optional double quotes. Returns the value
 * (inside line) or NULL with a reason in *problem. */
static char *clean_value(char *raw, const char **problem) {
    char *value = raw;
    while (is_space(*value)) value++;
    if (*value == '"') {
        char *closing = strchr(value + 1, '"');
        if (!closing) {
            *problem = "missing closing '\"'";
            return NULL;
        }
        *closing = '\0';
        char *rest = closing + 1;
        while (is_space(*rest)) rest++;
        if (*rest != '\0' && *rest != ';' && *rest != '#') {
            *problem = "unexpected text after the closing '\"'";
            return NULL;
        }
        return value + 1;
    }
    /* An inline comment starts at ';' or '#' preceded by whitespace (or at the very start). */
    for (char *p = value; *p; p++) {
        if ((*p == ';' || *p == '#') && (p == value || is_space(p[-1]))) {
            *p = '\0';
            break;
        }
    }
    return trim(value);
}

int pt_config_load_file(PtConfig *cfg, const char *path, PtError *err) {
    FILE *file = fopen(path, "r");
    if (!file) return pt_error_set(err, "cannot open configuration file '%s': %s", path, strerror(errno));

    PtConfig loaded = *cfg;      /* cfg changes only if the whole file is good */
    int first_line[KEY_COUNT];   /* line where each key was set in this file; 0: not yet */
    memset(first_line, 0, sizeof first_line);
    char section[256] = "";
    int in_section = 0;
    char *line = NULL;
    size_t capacity = 0;
    ssize_t length;
    int line_number = 0;
    int status = 0;
    char where[4200];

    errno = 0;
    while ((length = getline(&line, &capacity, file)) != -1) {
        line_number++;
        snprintf(where, sizeof where, "%s:%d", path, line_number);
        if ((size_t)length != strlen(line)) {
            status = pt_error_set(err, "%s: syntax error: the line contains a NUL byte (not a text file?)", where);
            break;
        }
        char *text = line;
        /* A UTF-8 byte order mark on the first line is allowed. */
        if (line_number == 1 && (unsigned char)text[0] == 0xEF && (unsigned char)text[1] == 0xBB &&
            (unsigned char)text[2] == 0xBF)
            text += 3;
        text = trim(text);
        if (text[0] == '\0' || text[0] == ';' || text[0] == '#') continue;

        if (text[0] == '[') {
            char *closing = strchr(text, ']');
            if (!closing) {
                status = pt_error_set(err, "%s: syntax error: missing ']' in section header '%s'", where, text);
                break;
            }
            char *after = closing + 1;
            while (is_space(*after)) after++;
            if (*after != '\0' && *after != ';' && *after != '#') {
                status = pt_error_set(err, "%s: syntax error: unexpected text '%s' after the section header", where,
                                      after);
                break;
            }
            *closing = '\0';
            char *name = trim(text + 1);
            if (name[0] == '\0') {
                status = pt_error_set(err, "%s: syntax error: empty section name '[]'", where);
                break;
            }
            if (!section_exists(name)) {
                char hint[128];
                suggest_section(name, hint, sizeof hint);
                status = pt_error_set(err, "%s: unknown section '[%s]'%s", where, name, hint);
                break;
            }
            snprintf(section, sizeof section, "%s", name);
            in_section = 1;
            continue;
        }

        char *equals = strchr(text, '=');
        if (!equals) {
            status = pt_error_set(err, "%s: syntax error: expected 'key = value', '[section]' or a comment, got '%s'",
                                  where, text);
            break;
        }
        *equals = '\0';
        char *name = trim(text);
        if (name[0] == '\0') {
            status = pt_error_set(err, "%s: syntax error: missing key name before '='", where);
            break;
        }
        if (!in_section) {
            status = pt_error_set(err, "%s: syntax error: key '%s' comes before any [section] header", where, name);
            break;
        }
        const char *problem = NULL;
        char *value = clean_value(equals + 1, &problem);
        if (!value) {
            status = pt_error_set(err, "%s: syntax error: %s.%s: %s", where, section, name, problem);
            break;
        }
        int k = find_key(section, name);
        if (k < 0) {
            char hint[160];
            suggest_key(section, name, hint, sizeof hint);
            status = pt_error_set(err, "%s: unknown key '%s.%s'%s", where, section, name, hint);
            break;
        }
        if (first_line[k]) {
            status = pt_error_set(err, "%s: key '%s' given twice (first at line %d)", where, full_name(k),
                                  first_line[k]);
            break;
        }
        first_line[k] = line_number;
        if (set_from_text(&loaded, k, value, where, err) != 0) {
            status = -1;
            break;
        }
    }
    if (status == 0 && ferror(file))
        status = pt_error_set(err, "cannot read configuration file '%s': %s", path, strerror(errno ? errno : EIO));
    free(line);
    fclose(file);
    if (status == 0) *cfg = loaded;
    return status;
}

int pt_config_set(PtConfig *cfg, const char *assignment, const char *origin, PtError *err) {
    if (!origin) origin = "override";
    size_t length = strlen(assignment);
    if (length > 8192) return pt_error_set(err, "%s: override too long (%zu characters)", origin, length);
    char *copy = pt_malloc(length + 1);
    memcpy(copy, assignment, length + 1);
    int status = -1;

    char *equals = strchr(copy, '=');
    char *name = NULL;
    if (!equals) {
        pt_error_set(err, "%s: '%s' is not an assignment: expected section.key=value (e.g. trials.labels=150)", origin,
                     assignment);
        goto done;
    }
    *equals = '\0';
    name = trim(copy);
    char *value = trim(equals + 1);
    if (name[0] == '\0') {
        pt_error_set(err, "%s: '%s': missing key name before '='", origin, assignment);
        goto done;
    }
    char *dot = strchr(name, '.');
    if (!dot) {
        /* Suggest the key with that bare name, if there is one. */
        int match = -1, matches = 0;
        for (int i = 0; i < KEY_COUNT; i++)
            if (strcmp(keys[i].name, name) == 0) { match = i; matches++; }
        if (matches == 1)
            pt_error_set(err, "%s: '%s': keys are written section.key (did you mean '%s=%s'?)", origin, assignment,
                         full_name(match), value);
        else
            pt_error_set(err, "%s: '%s': keys are written section.key (e.g. trials.labels=150)", origin, assignment);
        goto done;
    }
    *dot = '\0';
    char *section = trim(name);
    char *key_name = trim(dot + 1);
    /* Quotes are allowed on the command line too, for symmetry with the file. */
    size_t value_length = strlen(value);
    if (value_length >= 2 && value[0] == '"' && value[value_length - 1] == '"') {
        value[value_length - 1] = '\0';
        value++;
    }
    int k = find_key(section, key_name);
    if (k < 0) {
        char hint[160];
        suggest_key(section, key_name, hint, sizeof hint);
        pt_error_set(err, "%s: unknown key '%s.%s'%s", origin, section, key_name, hint);
        goto done;
    }
    PtConfig updated = *cfg;
    if (set_from_text(&updated, k, value, origin, err) != 0) goto done;
    *cfg = updated;
    status = 0;
done:
    free(copy);
    return status;
}

/* ---------------------------------------------------------------------------------------- */
/* Relations between keys. */

/* Keras's split: train = floor(n * (1 - split)), validation = the rest; both must be >= 1. */
static int check_split(const PtConfig *cfg, long long n, const char *what, PtError *err) {
    long long n_train = (long long)floor((double)n * (1.0 - cfg->validation_split));
    long long n_validation = n - n_train;
    if (n_train < 1)
        return pt_error_set(err,
                            "experiment.validation_split = %g leaves no training example for %s "
                            "(floor(%lld * (1 - %g)) = %lld)",
                            cfg->validation_split, what, n, cfg->validation_split, n_train);
    if (n_validation < 1)
        return pt_error_set(err,
                            "experiment.validation_split = %g leaves no validation example for %s "
                            "(%lld - floor(%lld * (1 - %g)) = 0)",
                            cfg->validation_split, what, n, n, cfg->validation_split);
    return 0;
}

int pt_config_validate(const PtConfig *cfg, uint32_t n_train_available, PtError *err) {
    /* Every key's own range again, for a struct filled by hand. */
    for (int k = 0; k < KEY_COUNT; k++) {
        Value v = value_of(cfg, k);
        char shown[128];
        if ((keys[k].type == KEY_STRING || keys[k].type == KEY_ENUM) &&
            strnlen(v.as_text, keys[k].field_size) == keys[k].field_size)
            return pt_error_set(err, "configuration: %s is not terminated", full_name(k));
        pt_config_key_value(cfg, k, shown, sizeof shown);
        if (check_range(k, &v, "configuration", shown, err) != 0) return -1;
        if (keys[k].type == KEY_BOOL && v.as_int != 0 && v.as_int != 1)
            return pt_error_set(err, "configuration: %s = %lld: must be 0 or 1", full_name(k), v.as_int);
    }

    if (cfg->train_images > 0 && n_train_available > 0 && cfg->train_images > n_train_available)
        return pt_error_set(err, "data.train_images = %" PRIu32 " is more than the %" PRIu32
                                 " training images in the data folder",
                            cfg->train_images, n_train_available);
    long long used = cfg->train_images > 0 ? (long long)cfg->train_images : (long long)n_train_available;
    int any_trials = cfg->trials_supervised > 0 || cfg->trials_self_supervised > 0;

    for (int b = 0; any_trials && b < cfg->trials_labels.n; b++) {
        int labels = cfg->trials_labels.v[b];
        if (used > 0 && labels > used) {
            if (cfg->train_images > 0)
                return pt_error_set(err, "trials.labels = %d is more than the %lld training images used "
                                         "(data.train_images = %lld)",
                                    labels, used, used);
            return pt_error_set(err, "trials.labels = %d is more than the %lld training images available",
                                labels, used);
        }
        char what[96];
        snprintf(what, sizeof what, "a trial's trials.labels = %d images", labels);
        if (check_split(cfg, labels, what, err) != 0) return -1;
    }
    if (strcmp(cfg->run_phase_groups, "auto") != 0) {
        char *end = NULL;
        long g = strtol(cfg->run_phase_groups, &end, 10);
        if (!end || *end || end == cfg->run_phase_groups || g < 1 || g > PT_MAX_SEEDS)
            return pt_error_set(err, "run.phase_groups = '%s': expected auto or a whole number from 1 to %d",
                                cfg->run_phase_groups, PT_MAX_SEEDS);
    }
    if (cfg->trials_self_supervised > 0 && cfg->downstream_frozen_epochs + (long long)cfg->downstream_finetune_epochs < 1)
        return pt_error_set(err, "downstream.frozen_epochs + downstream.finetune_epochs = 0: the downstream trials "
                                 "need at least one epoch (trials.self_supervised = %d)",
                            cfg->trials_self_supervised);
    if (used > 0) {
        char what[96];
        snprintf(what, sizeof what, "the %lld training images", used);
        if (cfg->benchmark_enabled && check_split(cfg, used, what, err) != 0) return -1;
        if (cfg->trials_self_supervised > 0 && check_split(cfg, used, what, err) != 0) return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* INI writer. */

static void write_range(const KeySpec *key, FILE *out) {
    switch (key->type) {
    case KEY_BOOL:
        fprintf(out, "true or false");
        break;
    case KEY_INT:
    case KEY_UINT:
        if (key->int_max == INT_MAX || key->int_max == UINT32_MAX)
            fprintf(out, "whole number >= %lld", key->int_min);
        else
            fprintf(out, "whole number %lld..%lld", key->int_min, key->int_max);
        break;
    case KEY_UINT64:
        fprintf(out, "whole number >= 0");
        break;
    case KEY_DOUBLE:
        fprintf(out, "number %s %g", key->double_min_open ? ">" : ">=", key->double_min);
        if (!isinf(key->double_max))
            fprintf(out, " and %s %g", key->double_max_open ? "<" : "<=", key->double_max);
        break;
    case KEY_STRING:
        fprintf(out, "text");
        break;
    case KEY_ENUM:
        for (const char *const *e = key->enum_values; *e; e++)
            fprintf(out, "%s%s", e == key->enum_values ? "" : " or ", *e);
        break;
    case KEY_SEEDS:
        fprintf(out, "seeds and ranges a-b separated by commas, or empty");
        break;
    case KEY_INTS:
        fprintf(out, "whole numbers >= %lld separated by commas", key->int_min);
        break;
    }
}

/* Whether a string value must be quoted to read back unchanged. */
static int needs_quotes(const char *value) {
    size_t n = strlen(value);
    if (n == 0) return 0;
    if (is_space(value[0]) || is_space(value[n - 1]) || value[0] == '"') return 1;
    for (size_t i = 0; i < n; i++)
        if ((value[i] == ';' || value[i] == '#') && (i == 0 || is_space(value[i - 1]))) return 1;
    return 0;
}

void pt_config_write_ini(const PtConfig *cfg, FILE *out) {
    fprintf(out, "; pretext configuration, every key (load with: pretext run --config FILE; see docs/config.md)\n");
    const char *section = NULL;
    for (int k = 0; k < KEY_COUNT; k++) {
        const KeySpec *key = &keys[k];
        if (!section || strcmp(section, key->section) != 0) {
            fprintf(out, "\n[%s]\n", key->section);
            section = key->section;
        }
        char value[4200];
        pt_config_key_value(cfg, k, value, sizeof value);
        fprintf(out, "; %s. Type: ", key->description);
        write_range(key, out);
        fprintf(out, "; default: %s%s%s.\n", key->default_text[0] ? "" : "\"", key->default_text,
                key->default_text[0] ? "" : "\"");
        if (value[0] == '\0')
            fprintf(out, "%s =\n", key->name);
        else if (key->type == KEY_STRING && needs_quotes(value) && !strchr(value, '"'))
            fprintf(out, "%s = \"%s\"\n", key->name, value);
        else
            fprintf(out, "%s = %s\n", key->name, value);
    }
}
