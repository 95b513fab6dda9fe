/* test_golden.c: the CNN engine against an independent PyTorch implementation. The golden files
 * tests/data/golden_n10.bin and golden_n4.bin are written by scripts/make-reference.py (format
 * documented there): initial weights, a batch of 4 images, the float64 reference logits, loss and
 * all 8 gradients, and 5 steps of TensorFlow's Adam. No PyTorch is needed here.
 * Every comparison prints the largest difference per tensor, relative to the tensor's largest
 * reference magnitude, and fails past the tolerance. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pt_adam.h"
#include "pt_kernels.h"
#include "pt_model.h"
#include "pt_util.h"

/* Tolerances: max |engine - reference| / max(max |reference|, floor), per tensor. */
#define TOL_FORWARD 1e-4  /* logits, loss and gradients after one backward */
#define TOL_ADAM 1e-4     /* the 5 losses and the parameters after 5 Adam steps */
#define REL_FLOOR 1e-6    /* absolute floor of the denominator */

/* ------------------------------------------------------------------------------------------
 * Golden file reader */

#define GOLDEN_MAGIC "PTGOLDEN"
#define GOLDEN_VERSION 1u
#define GOLDEN_MAX_TENSORS 64
#define GOLDEN_MAX_NAME 64

enum { GOLDEN_F32 = 1, GOLDEN_F64 = 2, GOLDEN_U8 = 3 };

typedef struct {
    char name[GOLDEN_MAX_NAME];
    uint32_t dtype;     /* GOLDEN_* */
    uint32_t ndim;
    uint32_t shape[4];
    size_t count;       /* element count */
    void *data;         /* (count) of dtype */
} GoldenTensor;

typedef struct {
    uint32_t n_classes;
    uint32_t batch;
    uint32_t adam_steps;
    uint32_t n_tensors;
    GoldenTensor tensors[GOLDEN_MAX_TENSORS];
} GoldenFile;

static void golden_free(GoldenFile *golden) {
    for (uint32_t i = 0; i < golden->n_tensors; i++) free(golden->tensors[i].data);
    golden->n_tensors = 0;
}

static int read_u32(FILE *f, uint32_t *value) {
    unsigned char b[4];
    if (fread(b, 1, 4, f) != 4) return -1;
    *value = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 0;
}

static size_t dtype_size(uint32_t dtype) {
    return dtype == GOLDEN_F32 ? 4 : dtype == GOLDEN_F64 ? 8 : dtype == GOLDEN_U8 ? 1 : 0;
}

/* Reads a golden file; on any malformation returns -1 with a message in err (nothing leaks).
 * The data are little-endian; this test (like the engine) assumes a little-endian host. */
static int golden_read(const char *path, GoldenFile *golden, PtError *err) {
    memset(golden, 0, sizeof *golden);
    FILE *f = fopen(path, "rb");
    if (!f) return pt_error_set(err, "%s: cannot open (run scripts/make-reference.py?)", path);
    char magic[8];
    uint32_t version = 0, n_tensors = 0;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, GOLDEN_MAGIC, 8) != 0) {
        fclose(f);
        return pt_error_set(err, "%s: bad magic, not a golden file", path);
    }
    if (read_u32(f, &version) || version != GOLDEN_VERSION) {
        fclose(f);
        return pt_error_set(err, "%s: unsupported version %u (expected %u)", path, version,
                            GOLDEN_VERSION);
    }
    if (read_u32(f, &golden->n_classes) || read_u32(f, &golden->batch) ||
        read_u32(f, &golden->adam_steps) || read_u32(f, &n_tensors)) {
        fclose(f);
        return pt_error_set(err, "%s: truncated header", path);
    }
    if (n_tensors > GOLDEN_MAX_TENSORS) {
        fclose(f);
        return pt_error_set(err, "%s: %u tensors, at most %d supported", path, n_tensors,
                            GOLDEN_MAX_TENSORS);
    }
    for (uint32_t i = 0; i < n_tensors; i++) {
        GoldenTensor *t = &golden->tensors[i];
        uint32_t name_len = 0;
        if (read_u32(f, &name_len) || name_len == 0 || name_len >= GOLDEN_MAX_NAME ||
            fread(t->name, 1, name_len, f) != name_len) {
            fclose(f);
            golden_free(golden);
            return pt_error_set(err, "%s: tensor %u: bad or truncated name", path, i);
        }
        t->name[name_len] = '\0';
        if (read_u32(f, &t->dtype) || dtype_size(t->dtype) == 0 || read_u32(f, &t->ndim) ||
            t->ndim > 4) {
            fclose(f);
            golden_free(golden);
            return pt_error_set(err, "%s: tensor %s: bad dtype or rank", path, t->name);
        }
        t->count = 1;
        for (uint32_t d = 0; d < t->ndim; d++) {
            if (read_u32(f, &t->shape[d]) || t->shape[d] == 0 || t->shape[d] > (1u << 24)) {
                fclose(f);
                golden_free(golden);
                return pt_error_set(err, "%s: tensor %s: bad shape", path, t->name);
            }
            t->count *= t->shape[d];
        }
        if (t->count > ((size_t)1 << 26)) {
            fclose(f);
            golden_free(golden);
            return pt_error_set(err, "%s: tensor %s: too large", path, t->name);
        }
        t->data = pt_malloc(t->count * dtype_size(t->dtype));
        golden->n_tensors = i + 1; /* owns t->data from here on */
        if (fread(t->data, dtype_size(t->dtype), t->count, f) != t->count) {
            fclose(f);
            golden_free(golden);
            return pt_error_set(err, "%s: tensor %s: truncated data", path, t->name);
        }
    }
    int trailing = fgetc(f);
    fclose(f);
    if (trailing != EOF) {
        golden_free(golden);
        return pt_error_set(err, "%s: trailing bytes after the last tensor", path);
    }
    return 0;
}

/* The tensor called name with the given dtype and element count; fails the test otherwise. */
static const GoldenTensor *golden_get(const GoldenFile *golden, const char *name, uint32_t dtype,
                                      size_t count) {
    for (uint32_t i = 0; i < golden->n_tensors; i++) {
        const GoldenTensor *t = &golden->tensors[i];
        if (strcmp(t->name, name) != 0) continue;
        if (t->dtype != dtype || t->count != count) {
            fail_msg("golden tensor %s: dtype %u count %zu, expected dtype %u count %zu", name,
                     t->dtype, t->count, dtype, count);
        }
        return t;
    }
    fail_msg("golden tensor %s missing", name);
    return NULL;
}

static void golden_path(char *out, size_t size, const char *file) {
    const char *root = getenv("PRETEXT_SOURCE_DIR");
    if (!root || !*root) root = PRETEXT_SOURCE_DIR;
    snprintf(out, size, "%s/tests/data/%s", root, file);
}

/* Keras names of the 8 tensors, in get_weights() order (the names the script uses). */
static const char *const keras_names[PT_NUM_TENSORS] = {
    "conv2d/kernel", "conv2d/bias", "conv2d_1/kernel", "conv2d_1/bias",
    "dense/kernel",  "dense/bias",  "dense_1/kernel",  "dense_1/bias"};

/* ------------------------------------------------------------------------------------------
 * Comparison helpers */

/* max |got - want| / max(max |want|, REL_FLOOR), printed with the worst index. */
static double compare_f32(const char *what, const float *got, const float *want, size_t n) {
    double worst = 0.0, scale = 0.0;
    size_t worst_at = 0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - (double)want[i]);
        if (!(diff <= worst)) { worst = diff; worst_at = i; } /* also catches NaN */
        if (fabs((double)want[i]) > scale) scale = fabs((double)want[i]);
    }
    double rel = worst / (scale > REL_FLOOR ? scale : REL_FLOOR);
    printf("  %-28s max|diff| %.3e  max|ref| %.3e  rel %.2e  (at %zu: %.9g vs %.9g)\n", what, worst,
           scale, rel, worst_at, (double)got[worst_at], (double)want[worst_at]);
    return isnan(worst) ? INFINITY : rel;
}

static double compare_scalar(const char *what, double got, double want) {
    double rel = fabs(got - want) / (fabs(want) > REL_FLOOR ? fabs(want) : REL_FLOOR);
    printf("  %-28s %.9f vs %.9f  rel %.2e\n", what, got, want, rel);
    return isnan(rel) ? INFINITY : rel;
}

/* ------------------------------------------------------------------------------------------
 * Fixture: one golden file and a model loaded with its initial weights */

typedef struct {
    GoldenFile golden;
    PtModel *model;
    int batch;
    int n_classes;
    const float *x;         /* (B,28,28,1) */
    const uint8_t *labels;  /* (B) */
} Golden;

/* Copies the golden tensors named prefix + Keras name into the model's parameters, checking
 * the engine's table (shapes, sizes) against the file's shapes. */
static void load_params(PtModel *model, const GoldenFile *golden, const char *prefix) {
    for (int t = 0; t < PT_NUM_TENSORS; t++) {
        const PtTensorInfo *info = &model->tensors[t];
        char name[GOLDEN_MAX_NAME * 2];
        snprintf(name, sizeof name, "%s%s", prefix, keras_names[t]);
        const GoldenTensor *g = golden_get(golden, name, GOLDEN_F32, info->size);
        assert_int_equal(g->ndim, info->ndim);
        for (int d = 0; d < info->ndim; d++) assert_int_equal(g->shape[d], info->shape[d]);
        memcpy(model->params + info->offset, g->data, info->size * sizeof(float));
    }
}

static Golden *golden_open(const char *file) {
    Golden *gd = pt_calloc(1, sizeof *gd);
    char path[4096];
    golden_path(path, sizeof path, file);
    PtError err;
    if (golden_read(path, &gd->golden, &err) != 0) fail_msg("%s", err.msg);
    gd->batch = (int)gd->golden.batch;
    gd->n_classes = (int)gd->golden.n_classes;
    assert_true(gd->batch >= 1 && gd->batch <= 64);
    assert_true(gd->n_classes == 10 || gd->n_classes == 4);
    gd->x = golden_get(&gd->golden, "x", GOLDEN_F32, (size_t)gd->batch * 28 * 28)->data;
    gd->labels = golden_get(&gd->golden, "labels", GOLDEN_U8, (size_t)gd->batch)->data;
    for (int i = 0; i < gd->batch; i++) assert_true(gd->labels[i] < gd->n_classes);

    gd->model = pt_model_create(gd->n_classes, gd->batch);
    PtTensorInfo table[PT_NUM_TENSORS];
    size_t total = pt_tensor_layout(gd->n_classes, table);
    assert_int_equal(total, gd->model->n_params);
    assert_int_equal(total, gd->n_classes == 10 ? 412778 : 411236);
    for (int l = 0; l < PT_NUM_LAYERS; l++) gd->model->trainable[l] = 1;
    load_params(gd->model, &gd->golden, "param/");
    return gd;
}

static void golden_close(Golden *gd) {
    pt_model_free(gd->model);
    golden_free(&gd->golden);
    free(gd);
}

/* Argmax hits of the reference logits: an independent count for pt_model_loss's *correct. */
static int reference_correct(const Golden *gd, const float *logits) {
    int hits = 0;
    for (int b = 0; b < gd->batch; b++) {
        int best = 0;
        for (int c = 1; c < gd->n_classes; c++)
            if (logits[b * gd->n_classes + c] > logits[b * gd->n_classes + best]) best = c;
        hits += best == gd->labels[b];
    }
    return hits;
}

/* Compares the model's gradients of tensors [first, last] with the reference, scaled by factor
 * (2 after two accumulated backwards); returns the worst relative difference. */
static double compare_grads(const Golden *gd, int first, int last, float factor) {
    double worst = 0.0;
    for (int t = first; t <= last; t++) {
        const PtTensorInfo *info = &gd->model->tensors[t];
        char name[GOLDEN_MAX_NAME * 2];
        snprintf(name, sizeof name, "grad/%s", keras_names[t]);
        const float *want = golden_get(&gd->golden, name, GOLDEN_F32, info->size)->data;
        float *scaled = pt_malloc(info->size * sizeof(float)); /* (size) */
        for (size_t i = 0; i < info->size; i++) scaled[i] = want[i] * factor;
        double rel = compare_f32(name, gd->model->grads + info->offset, scaled, info->size);
        free(scaled);
        if (rel > worst) worst = rel;
    }
    return worst;
}

/* State of the on_dense_ready callback: when and with which range it was called, and how the
 * dense gradients compared at that moment (they must be complete). */
typedef struct {
    const Golden *gd;
    int calls;
    size_t first_param, n_params;
    double dense_rel;
} ReadyCheck;

static void on_dense_ready(void *ctx, size_t first_param, size_t n_params) {
    ReadyCheck *check = ctx;
    check->calls++;
    check->first_param = first_param;
    check->n_params = n_params;
    printf("  on_dense_ready(first %zu, n %zu): dense gradients at that moment\n", first_param,
           n_params);
    check->dense_rel = compare_grads(check->gd, PT_T_DENSE1_KERNEL, PT_T_DENSE2_BIAS, 1.0f);
}

/* ------------------------------------------------------------------------------------------
 * Tests */

/* Forward (inference), loss and one backward: logits, loss, hits and all 8 gradients. */
static void check_forward_backward(const char *file) {
    Golden *gd = golden_open(file);
    PtModel *model = gd->model;
    int B = gd->batch, C = gd->n_classes;
    printf("%s: %d classes, batch %d\n", file, C, B);

    pt_model_zero_grads(model);
    pt_model_forward(model, gd->x, B, 0, 12345, 0);
    const float *want_logits =
        golden_get(&gd->golden, "logits", GOLDEN_F32, (size_t)B * C)->data;
    double rel_logits = compare_f32("logits", pt_model_logits(model), want_logits, (size_t)B * C);

    int correct = -1;
    double loss_sum = pt_model_loss(model, gd->labels, B, B, &correct);
    const double *want_loss = golden_get(&gd->golden, "loss", GOLDEN_F64, 1)->data;
    double rel_loss = compare_scalar("loss (mean)", loss_sum / B, want_loss[0]);
    int correct_only = -1;
    double loss_only = pt_model_loss_only(model, gd->labels, B, &correct_only);
    double rel_loss_only = compare_scalar("loss_only (mean)", loss_only / B, want_loss[0]);

    ReadyCheck check = {.gd = gd};
    pt_model_backward(model, B, &(PtBackwardHooks){on_dense_ready, NULL, &check});
    printf("  after backward:\n");
    double rel_grads = compare_grads(gd, 0, PT_NUM_TENSORS - 1, 1.0f);

    assert_true(rel_logits <= TOL_FORWARD);
    assert_true(rel_loss <= TOL_FORWARD);
    assert_true(rel_loss_only <= TOL_FORWARD);
    assert_int_equal(correct, reference_correct(gd, want_logits));
    assert_int_equal(correct_only, correct);
    assert_true(rel_grads <= TOL_FORWARD);
    /* The callback fires once, covering exactly the dense tensors, with them complete. */
    assert_int_equal(check.calls, 1);
    assert_int_equal(check.first_param, model->tensors[PT_T_DENSE1_KERNEL].offset);
    assert_int_equal(check.n_params, model->n_params - model->tensors[PT_T_DENSE1_KERNEL].offset);
    assert_true(check.dense_rel <= TOL_FORWARD);
    golden_close(gd);
}

static void test_forward_backward_n10(void **state) {
    (void)state;
    check_forward_backward("golden_n10.bin");
}

static void test_forward_backward_n4(void **state) {
    (void)state;
    check_forward_backward("golden_n4.bin");
}

/* The batch split in two halves (loss denominator = full batch), backwards accumulated: the
 * data-parallel contract. Then a second full backward without zeroing: gradients accumulate. */
static void test_split_batch_and_accumulation(void **state) {
    (void)state;
    Golden *gd = golden_open("golden_n10.bin");
    PtModel *model = gd->model;
    int B = gd->batch, half = B / 2;
    assert_true(half >= 1);
    printf("golden_n10.bin split into %d + %d samples, denominator %d:\n", half, B - half, B);

    pt_model_zero_grads(model);
    double loss_sum = 0.0;
    int correct_total = 0;
    for (int part = 0; part < 2; part++) {
        int first = part == 0 ? 0 : half, n = part == 0 ? half : B - half;
        int correct = 0;
        pt_model_forward(model, gd->x + (size_t)first * 28 * 28, n, 0, 1, (uint64_t)first);
        loss_sum += pt_model_loss(model, gd->labels + first, n, B, &correct);
        correct_total += correct;
        pt_model_backward(model, n, NULL);
    }
    const double *want_loss = golden_get(&gd->golden, "loss", GOLDEN_F64, 1)->data;
    const float *want_logits =
        golden_get(&gd->golden, "logits", GOLDEN_F32, (size_t)B * gd->n_classes)->data;
    double rel_loss = compare_scalar("loss (mean of parts)", loss_sum / B, want_loss[0]);
    double rel_split = compare_grads(gd, 0, PT_NUM_TENSORS - 1, 1.0f);

    printf("a second full backward without zeroing (expect 2x):\n");
    pt_model_forward(model, gd->x, B, 0, 1, 0);
    int correct_again = 0;
    pt_model_loss(model, gd->labels, B, B, &correct_again);
    pt_model_backward(model, B, NULL);
    double rel_double = compare_grads(gd, 0, PT_NUM_TENSORS - 1, 2.0f);

    assert_true(rel_loss <= TOL_FORWARD);
    assert_int_equal(correct_total, reference_correct(gd, want_logits));
    assert_true(rel_split <= TOL_FORWARD);
    assert_true(rel_double <= TOL_FORWARD);
    golden_close(gd);
}

/* Conv layers frozen (as in the downstream task): dense gradients unchanged, conv gradients not
 * computed (left at zero), and Adam leaves the conv weights untouched. */
static void test_frozen_conv_layers(void **state) {
    (void)state;
    Golden *gd = golden_open("golden_n10.bin");
    PtModel *model = gd->model;
    int B = gd->batch;
    model->trainable[PT_LAYER_CONV1] = 0;
    model->trainable[PT_LAYER_CONV2] = 0;
    printf("golden_n10.bin with conv1 and conv2 frozen:\n");

    pt_model_zero_grads(model);
    pt_model_forward(model, gd->x, B, 0, 1, 0);
    int correct = 0;
    pt_model_loss(model, gd->labels, B, B, &correct);
    pt_model_backward(model, B, NULL);
    double rel_dense = compare_grads(gd, PT_T_DENSE1_KERNEL, PT_T_DENSE2_BIAS, 1.0f);
    size_t conv_end = model->tensors[PT_T_DENSE1_KERNEL].offset;
    size_t nonzero = 0;
    for (size_t i = 0; i < conv_end; i++) nonzero += model->grads[i] != 0.0f;
    printf("  nonzero conv gradients: %zu of %zu\n", nonzero, conv_end);

    /* One Adam step from m = v = 0 moves a weight by lr_1 * (1-b1) g / (sqrt((1-b2) g^2) + eps)
     * = about lr * sign(g) where |g| >> 3e-6 (TensorFlow's epsilon placement shows below), and
     * leaves it exactly where g == 0 (a dead unit). */
    float *before = pt_malloc(model->n_params * sizeof(float)); /* (n_params) */
    memcpy(before, model->params, model->n_params * sizeof(float));
    PtAdam adam;
    pt_adam_init(&adam, model->n_params, 0.001f);
    pt_adam_step(&adam, model);
    size_t conv_changed = 0, dense_with_grad = 0, dense_moved_right = 0, dense_zero_grad_moved = 0;
    for (size_t i = 0; i < model->n_params; i++) {
        float step = model->params[i] - before[i];
        if (i < conv_end) {
            conv_changed += step != 0.0f;
        } else if (fabsf(model->grads[i]) > 1e-6f) {
            dense_with_grad++;
            double g = model->grads[i];
            double lr_1 = 1e-3 * sqrt(1.0 - 0.999) / (1.0 - 0.9);
            double expected = -lr_1 * 0.1 * g / (sqrt(0.001 * g * g) + 1e-7);
            /* float32 rounding of w (|w| < 0.1) blurs the step by about 1e-8 */
            dense_moved_right += fabs(step - expected) <= 1e-4 * fabs(expected) + 2e-8;
        } else if (model->grads[i] == 0.0f) {
            dense_zero_grad_moved += step != 0.0f;
        }
    }
    printf("  after one Adam step: %zu conv parameters changed; %zu of %zu dense parameters with "
           "|g| > 1e-6 moved as expected; %zu with g == 0 moved\n", conv_changed,
           dense_moved_right, dense_with_grad, dense_zero_grad_moved);
    pt_adam_free(&adam);
    free(before);

    assert_true(rel_dense <= TOL_FORWARD);
    assert_int_equal(nonzero, 0);
    assert_int_equal(conv_changed, 0);
    assert_true(dense_with_grad > 1000);
    assert_int_equal(dense_moved_right, dense_with_grad);
    assert_int_equal(dense_zero_grad_moved, 0);
    golden_close(gd);
}

/* 5 steps of TensorFlow's Adam on the same batch: the loss before each step, final weights. */
static void check_adam(const char *file) {
    Golden *gd = golden_open(file);
    PtModel *model = gd->model;
    int B = gd->batch, steps = (int)gd->golden.adam_steps;
    assert_true(steps >= 1 && steps <= 100);
    const double *want_losses =
        golden_get(&gd->golden, "adam/losses", GOLDEN_F64, (size_t)steps)->data;
    printf("%s: %d Adam steps (lr 0.001)\n", file, steps);

    PtAdam adam;
    pt_adam_init(&adam, model->n_params, 0.001f);
    assert_int_equal(adam.n, model->n_params);
    assert_true(adam.beta1 == 0.9f && adam.beta2 == 0.999f && adam.epsilon == 1e-7f);
    double worst_loss = 0.0;
    for (int s = 0; s < steps; s++) {
        pt_model_zero_grads(model);
        pt_model_forward(model, gd->x, B, 0, 1, 0);
        int correct = 0;
        double loss = pt_model_loss(model, gd->labels, B, B, &correct) / B;
        char what[64];
        snprintf(what, sizeof what, "loss before step %d", s + 1);
        double rel = compare_scalar(what, loss, want_losses[s]);
        if (rel > worst_loss) worst_loss = rel;
        pt_model_backward(model, B, NULL);
        pt_adam_step(&adam, model);
    }
    assert_int_equal(adam.t, steps);

    /* The reference's final weights, compared tensor by tensor. */
    double worst_param = 0.0;
    for (int t = 0; t < PT_NUM_TENSORS; t++) {
        const PtTensorInfo *info = &model->tensors[t];
        char name[GOLDEN_MAX_NAME * 2];
        snprintf(name, sizeof name, "adam/param/%s", keras_names[t]);
        const float *want = golden_get(&gd->golden, name, GOLDEN_F32, info->size)->data;
        double rel = compare_f32(name, model->params + info->offset, want, info->size);
        if (rel > worst_param) worst_param = rel;
    }
    /* The weights did move: the comparison is not of the initial weights with themselves. */
    double moved = compare_f32("(initial vs final ref)",
                               golden_get(&gd->golden, "param/dense/kernel", GOLDEN_F32,
                                          model->tensors[PT_T_DENSE1_KERNEL].size)->data,
                               golden_get(&gd->golden, "adam/param/dense/kernel", GOLDEN_F32,
                                          model->tensors[PT_T_DENSE1_KERNEL].size)->data,
                               model->tensors[PT_T_DENSE1_KERNEL].size);
    pt_adam_free(&adam);

    assert_true(worst_loss <= TOL_ADAM);
    assert_true(worst_param <= TOL_ADAM);
    assert_true(moved > 100 * TOL_ADAM);
    golden_close(gd);
}

static void test_adam_n10(void **state) {
    (void)state;
    check_adam("golden_n10.bin");
}

static void test_adam_n4(void **state) {
    (void)state;
    check_adam("golden_n4.bin");
}

/* Writes bytes to a fresh temporary file; returns its path in path (size >= 64). */
static void write_temp(char *path, const void *bytes, size_t n) {
    snprintf(path, 64, "/tmp/pretext_golden_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* The reader rejects a bad magic, a wrong version, a truncated file and trailing garbage, and
 * accepts the real file's bytes (so the rejections are not of an unreadable file). */
static void test_reader_rejects_bad_files(void **state) {
    (void)state;
    char real_path[4096];
    golden_path(real_path, sizeof real_path, "golden_n4.bin");
    FILE *f = fopen(real_path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size > 64);
    rewind(f);
    unsigned char *bytes = pt_malloc((size_t)size + 1); /* (size + 1) */
    assert_int_equal(fread(bytes, 1, (size_t)size, f), (size_t)size);
    fclose(f);

    char path[64];
    GoldenFile golden;
    PtError err;

    write_temp(path, bytes, (size_t)size);
    assert_int_equal(golden_read(path, &golden, &err), 0);
    assert_int_equal(golden.n_classes, 4);
    golden_free(&golden);
    unlink(path);

    bytes[0] = 'X'; /* bad magic */
    write_temp(path, bytes, (size_t)size);
    assert_int_equal(golden_read(path, &golden, &err), -1);
    printf("  %s\n", err.msg);
    assert_non_null(strstr(err.msg, "bad magic"));
    unlink(path);
    bytes[0] = 'P';

    bytes[8] = 2; /* version 2 */
    write_temp(path, bytes, (size_t)size);
    assert_int_equal(golden_read(path, &golden, &err), -1);
    printf("  %s\n", err.msg);
    assert_non_null(strstr(err.msg, "version"));
    unlink(path);
    bytes[8] = 1;

    write_temp(path, bytes, (size_t)size - 3); /* truncated in the last tensor */
    assert_int_equal(golden_read(path, &golden, &err), -1);
    printf("  %s\n", err.msg);
    assert_non_null(strstr(err.msg, "truncated"));
    unlink(path);

    bytes[size] = 0; /* one trailing byte */
    write_temp(path, bytes, (size_t)size + 1);
    assert_int_equal(golden_read(path, &golden, &err), -1);
    printf("  %s\n", err.msg);
    assert_non_null(strstr(err.msg, "trailing"));
    unlink(path);

    assert_int_equal(golden_read("/nonexistent/golden.bin", &golden, &err), -1);
    free(bytes);
}

int main(void) {
    PtKernelSet set;
    int skip = pt_kernels_for_test(&set); /* the set named by PRETEXT_KERNELS */
    if (skip) return skip;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_rejects_bad_files),
        cmocka_unit_test(test_forward_backward_n10),
        cmocka_unit_test(test_forward_backward_n4),
        cmocka_unit_test(test_split_batch_and_accumulation),
        cmocka_unit_test(test_frozen_conv_layers),
        cmocka_unit_test(test_adam_n10),
        cmocka_unit_test(test_adam_n4),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
