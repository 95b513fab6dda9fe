/* results.c: the results file (one HDF5 file holding the configuration, provenance, both
 * data-parallel phases with weights and histories, and the trial tables), written atomically
 * (whole file to "<path>.tmp", flushed, fsynced, renamed) and read back in full to resume a run;
 * plus the Keras-compatible weights file. Layout: docs/results-format.md.
 *
 * Every HDF5 call goes through PT_H5_TRY, which on failure records the call, file:line, errno and the
 * innermost HDF5 error description in the caller's PtError and jumps to the function's cleanup.
 * HDF5's own error-stack printing is switched off so the user sees one clear message. Only rank 0
 * calls these functions, with serial file drivers (never MPI-IO): files are built in memory (core
 * driver) and written with plain write() calls (see pt_h5_atomic_write), and read with sec2. */
#define _POSIX_C_SOURCE 200809L
#include "pt_results.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5.h"
#include "pt_util.h"

static const char *const format_name = "pretext-results";

/* The four data files recorded in /provenance, in the order of PtResults.data_files. */
static const char *const data_file_names[4] = {"train_images", "train_labels", "test_images",
                                               "test_labels"};

/* ---------------------------------------------------------------------------------------------
 * Results: writing */

/* Tensor dataset name: the Keras name with '/' replaced by '_' ("conv2d/kernel" -> conv2d_kernel). */
static void tensor_dataset_name(const char *keras_name, char *dst, size_t n) {
    snprintf(dst, n, "%s", keras_name);
    for (char *p = dst; *p; p++)
        if (*p == '/') *p = '_';
}

static int write_history(PtH5Ctx *c, hid_t parent, const PtHistory *h) {
    hid_t g = -1;
    int rc = -1;
    hsize_t dims[1] = {(hsize_t)h->epochs};
    if ((g = pt_h5_group_create(c, parent, "history")) < 0) goto fail;
    for (int k = 0; k < PT_HISTORY_COLUMNS; k++)
        if (pt_h5_dset_write_doubles(c, g, pt_history_columns[k].name, 1, dims, pt_history_column(h, k)) < 0)
            goto fail;
    rc = 0;
fail:
    PT_H5_CLOSE(H5Gclose, g);
    return rc;
}

static int write_weights(PtH5Ctx *c, hid_t parent, const float *params, int n_classes) {
    hid_t g = -1;
    int rc = -1;
    PtTensorInfo info[PT_NUM_TENSORS];
    pt_tensor_layout(n_classes, info);
    if ((g = pt_h5_group_create(c, parent, "weights")) < 0) goto fail;
    for (int t = 0; t < PT_NUM_TENSORS; t++) {
        char name[64];
        tensor_dataset_name(info[t].name, name, sizeof name);
        hsize_t dims[4];
        for (int d = 0; d < info[t].ndim; d++) dims[d] = (hsize_t)info[t].shape[d];
        if (pt_h5_dset_write(c, g, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, info[t].ndim, dims,
                       params + info[t].offset) < 0)
            goto fail;
    }
    rc = 0;
fail:
    PT_H5_CLOSE(H5Gclose, g);
    return rc;
}

static int write_phase(PtH5Ctx *c, hid_t file, const char *name, const PtPhaseResult *p) {
    hid_t g = -1;
    int rc = -1;
    if (p->n_classes < 2 || p->n_classes > PT_MAX_CLASSES) {
        pt_h5_failf(c, "phase %s has %d classes", name, p->n_classes);
        goto fail;
    }
    if ((g = pt_h5_group_create(c, file, name)) < 0) goto fail;
    if (pt_h5_attr_write_int(c, g, "n_classes", p->n_classes) < 0) goto fail;
    if (pt_h5_dset_write_double(c, g, "test_loss", p->test_loss) < 0) goto fail;
    if (pt_h5_dset_write_double(c, g, "test_accuracy", p->test_accuracy) < 0) goto fail;
    if (pt_h5_dset_write_double(c, g, "seconds", p->seconds) < 0) goto fail;
    if (write_history(c, g, &p->history) < 0) goto fail;
    if (p->weights && write_weights(c, g, p->weights, p->n_classes) < 0) goto fail;
    if (p->train_labels) {
        hsize_t dims[1] = {p->n_train_labels};
        if (pt_h5_dset_write(c, g, "train_rotations", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, dims, p->train_labels) < 0)
            goto fail;
    }
    if (p->test_labels) {
        hsize_t dims[1] = {p->n_test_labels};
        if (pt_h5_dset_write(c, g, "test_rotations", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, dims, p->test_labels) < 0)
            goto fail;
    }
    rc = 0;
fail:
    PT_H5_CLOSE(H5Gclose, g);
    return rc;
}

/* /checkpoint/<phase> of an unfinished phase: attributes n_classes, epochs_done, adam_t; datasets
 * seconds, weights, adam_m, adam_v (flat, n_params float32 each) and the history so far. */
static int write_checkpoint(PtH5Ctx *c, hid_t parent, const char *name, const PtPhaseResult *p) {
    hid_t g = -1;
    int rc = -1;
    PtTensorInfo info[PT_NUM_TENSORS];
    hsize_t dims[1] = {(hsize_t)pt_tensor_layout(p->n_classes, info)};
    if ((g = pt_h5_group_create(c, parent, name)) < 0) goto fail;
    if (pt_h5_attr_write_int(c, g, "n_classes", p->n_classes) < 0) goto fail;
    if (pt_h5_attr_write_int(c, g, "epochs_done", p->ckpt_epochs) < 0) goto fail;
    if (pt_h5_attr_write_int(c, g, "adam_t", p->ckpt_adam_t) < 0) goto fail;
    if (pt_h5_dset_write_double(c, g, "seconds", p->ckpt_seconds) < 0) goto fail;
    const char *names[3] = {"weights", "adam_m", "adam_v"};
    const float *data[3] = {p->ckpt_weights, p->ckpt_adam_m, p->ckpt_adam_v};
    for (int k = 0; k < 3; k++)
        if (pt_h5_dset_write(c, g, names[k], H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, dims, data[k]) < 0) goto fail;
    if (write_history(c, g, &p->history) < 0) goto fail;
    rc = 0;
fail:
    PT_H5_CLOSE(H5Gclose, g);
    return rc;
}

static int has_checkpoint(const PtPhaseResult *p) {
    return !p->done && p->ckpt_epochs > 0 && p->ckpt_weights && p->ckpt_adam_m && p->ckpt_adam_v;
}

/* The file and memory types of a column type. */
static hid_t column_file_type(PtColumnType t) {
    switch (t) {
    case PT_COL_I8: return H5T_STD_I8LE;
    case PT_COL_I32: return H5T_STD_I32LE;
    case PT_COL_U32: return H5T_STD_U32LE;
    case PT_COL_U64: return H5T_STD_U64LE;
    case PT_COL_F64: return H5T_IEEE_F64LE;
    }
    return -1;
}
static hid_t column_mem_type(PtColumnType t) {
    switch (t) {
    case PT_COL_I8: return H5T_NATIVE_INT8;
    case PT_COL_I32: return H5T_NATIVE_INT32;
    case PT_COL_U32: return H5T_NATIVE_UINT32;
    case PT_COL_U64: return H5T_NATIVE_UINT64;
    case PT_COL_F64: return H5T_NATIVE_DOUBLE;
    }
    return -1;
}

/* /trials/<kind>: one dataset per column of pt_trial_columns (row i = trial index i), then
 * sample_indices (n, width) and history/epochs (n) with one (n, max_epochs) dataset per history
 * column, NaN-padded. */
static int write_trials(PtH5Ctx *c, hid_t trials_group, const PtResults *r, int kind) {
    hid_t g = -1, hg = -1;
    int rc = -1;
    const int n = r->n_trials[kind];
    const PtTrialResult *trials = r->trials[kind];
    const size_t n_alloc = (size_t)(n > 0 ? n : 1);

    /* Table widths: the widest sample list and the longest history among finished trials. */
    uint32_t width = 0;
    for (int b = 0; b < r->n_budgets; b++)
        if ((uint32_t)r->budgets[b] > width) width = (uint32_t)r->budgets[b];
    int max_epochs = 0;
    for (int i = 0; i < n; i++) {
        if (!trials[i].done) continue;
        if (trials[i].n_samples > width) width = trials[i].n_samples;
        if (trials[i].history.epochs > max_epochs) max_epochs = trials[i].history.epochs;
    }
    unsigned char *column = pt_calloc(n_alloc, 8);                                 /* (n) one column */
    uint32_t *samples = pt_calloc(n_alloc * (width ? width : 1), sizeof(uint32_t)); /* (n, width) */
    int32_t *epochs = pt_calloc(n_alloc, sizeof(int32_t));                          /* (n) */
    size_t hist_size = n_alloc * (size_t)(max_epochs ? max_epochs : 1);
    double *hist = pt_malloc(hist_size * sizeof(double));                           /* (n, max_epochs) */
    hsize_t dims1[1] = {(hsize_t)n};
    hsize_t dims_samples[2] = {(hsize_t)n, width};
    hsize_t dims_hist[2] = {(hsize_t)n, (hsize_t)max_epochs};

    if ((g = pt_h5_group_create(c, trials_group, pt_kind_names[kind])) < 0) goto fail;
    for (int k = 0; k < PT_TRIAL_COLUMNS; k++) {
        const PtColumn *col = &pt_trial_columns[k];
        size_t size = pt_column_type_size(col->type);
        for (int i = 0; i < n; i++) memcpy(column + (size_t)i * size, (const char *)&trials[i] + col->offset, size);
        if (pt_h5_dset_write(c, g, col->name, column_file_type(col->type), column_mem_type(col->type), 1, dims1,
                             column) < 0)
            goto fail;
    }
    for (int i = 0; i < n; i++) {
        const PtTrialResult *t = &trials[i];
        if (!t->done) continue;
        if (t->n_samples > 0 && t->sample_indices)
            memcpy(samples + (size_t)i * width, t->sample_indices, t->n_samples * sizeof(uint32_t));
        epochs[i] = t->history.epochs;
    }
    if (pt_h5_dset_write(c, g, "sample_indices", H5T_STD_U32LE, H5T_NATIVE_UINT32, 2, dims_samples, samples) < 0)
        goto fail;
    if ((hg = pt_h5_group_create(c, g, "history")) < 0) goto fail;
    if (pt_h5_dset_write(c, hg, "epochs", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims1, epochs) < 0) goto fail;
    for (int k = 0; k < PT_HISTORY_COLUMNS; k++) {
        for (size_t j = 0; j < hist_size; j++) hist[j] = NAN;
        for (int i = 0; i < n; i++)
            if (trials[i].done)
                memcpy(hist + (size_t)i * max_epochs, pt_history_column(&trials[i].history, k),
                       (size_t)trials[i].history.epochs * sizeof(double));
        if (pt_h5_dset_write_doubles(c, hg, pt_history_columns[k].name, 2, dims_hist, hist) < 0) goto fail;
    }
    rc = 0;
fail:
    PT_H5_CLOSE(H5Gclose, hg);
    PT_H5_CLOSE(H5Gclose, g);
    free(column);
    free(samples);
    free(epochs);
    free(hist);
    return rc;
}

static int write_config(PtH5Ctx *c, hid_t file, const PtConfig *cfg) {
    hid_t g = -1;
    int rc = -1;
    char *ini = NULL;
    size_t ini_size = 0;
    if ((g = pt_h5_group_create(c, file, "config")) < 0) goto fail;
    for (int i = 0; i < pt_config_key_count(); i++) {
        char value[4200];
        pt_config_key_value(cfg, i, value, sizeof value);
        if (pt_h5_attr_write_string(c, g, pt_config_key_name(i), value) < 0) goto fail;
    }
    FILE *mem = open_memstream(&ini, &ini_size);
    if (!mem) {
        pt_h5_failf(c, "cannot format the configuration: %s", strerror(errno));
        goto fail;
    }
    pt_config_write_ini(cfg, mem);
    if (fclose(mem) != 0) {
        pt_h5_failf(c, "cannot format the configuration: %s", strerror(errno));
        goto fail;
    }
    if (pt_h5_attr_write_string(c, g, "ini", ini) < 0) goto fail;
    rc = 0;
fail:
    free(ini);
    PT_H5_CLOSE(H5Gclose, g);
    return rc;
}

/* The segment table's text columns, in file order, and its place in PtSegment. */
static const struct {
    const char *name;
    size_t offset, size;
} segment_strings[] = {
#define SEG(f) {#f, offsetof(PtSegment, f), sizeof(((PtSegment *)0)->f)}
    SEG(start_time), SEG(end_time), SEG(status), SEG(hosts), SEG(version), SEG(git_commit),
    SEG(build_flags), SEG(blas), SEG(mpi_library), SEG(kernels), SEG(cpu),
#undef SEG
};
#define N_SEGMENT_STRINGS ((int)(sizeof segment_strings / sizeof segment_strings[0]))

/* /provenance: the run as a whole as attributes (the latest segment's build and hosts, the first
 * start, the completion, the data files and their SHA-256), and /provenance/segments: one row per
 * run segment (a column per field, as the trial tables). */
static int write_provenance(PtH5Ctx *c, hid_t file, const PtResults *r) {
    hid_t g = -1, sg = -1;
    int rc = -1;
    const char **column = pt_calloc((size_t)(r->n_segments > 0 ? r->n_segments : 1), sizeof *column);
    int32_t *sizes = pt_calloc((size_t)(r->n_segments > 0 ? r->n_segments : 1), sizeof *sizes);
    static const PtSegment none; /* a file without segment (never written by pretext run) */
    const PtSegment *last = r->n_segments > 0 ? &r->segments[r->n_segments - 1] : &none;
    if ((g = pt_h5_group_create(c, file, "provenance")) < 0) goto fail;
    const char *names[10] = {"version", "git_commit", "build_flags", "blas", "mpi_library", "hosts",
                             "start_time", "end_time", "kernels", "cpu"};
    const char *values[10] = {last->version, last->git_commit, last->build_flags, last->blas, last->mpi_library,
                              last->hosts, r->start_time, r->end_time, last->kernels, last->cpu};
    for (int i = 0; i < 10; i++)
        if (pt_h5_attr_write_string(c, g, names[i], values[i]) < 0) goto fail;
    if (pt_h5_attr_write_int(c, g, "mpi_size", last->mpi_size) < 0) goto fail;
    if (pt_h5_attr_write_int(c, g, "data_classes", r->data_classes) < 0) goto fail;
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "data_files.%s", data_file_names[i]);
        if (pt_h5_attr_write_string(c, g, name, r->data_files[i]) < 0) goto fail;
        snprintf(name, sizeof name, "data_sha256.%s", data_file_names[i]);
        if (pt_h5_attr_write_string(c, g, name, r->data_sha256[i]) < 0) goto fail;
    }
    if ((sg = pt_h5_group_create(c, g, "segments")) < 0) goto fail;
    for (int k = 0; k < N_SEGMENT_STRINGS; k++) {
        for (int i = 0; i < r->n_segments; i++) column[i] = (const char *)&r->segments[i] + segment_strings[k].offset;
        if (pt_h5_dset_write_strings(c, sg, segment_strings[k].name, column, r->n_segments) < 0) goto fail;
    }
    for (int f = 0; f < 4; f++) {
        char name[64];
        snprintf(name, sizeof name, "data_sha256.%s", data_file_names[f]);
        for (int i = 0; i < r->n_segments; i++) column[i] = r->segments[i].data_sha256[f];
        if (pt_h5_dset_write_strings(c, sg, name, column, r->n_segments) < 0) goto fail;
    }
    for (int i = 0; i < r->n_segments; i++) sizes[i] = r->segments[i].mpi_size;
    hsize_t dims[1] = {(hsize_t)r->n_segments};
    if (pt_h5_dset_write(c, sg, "mpi_size", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, sizes) < 0) goto fail;
    for (int i = 0; i < r->n_segments; i++) sizes[i] = r->segments[i].phase_groups;
    if (pt_h5_dset_write(c, sg, "phase_groups", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, sizes) < 0) goto fail;
    rc = 0;
fail:
    free(column);
    free(sizes);
    PT_H5_CLOSE(H5Gclose, sg);
    PT_H5_CLOSE(H5Gclose, g);
    return rc;
}

/* A seed's group name under /phases and /checkpoint: the seed in decimal. */
static void seed_name(uint64_t seed, char *buf, size_t n) { snprintf(buf, n, "%llu", (unsigned long long)seed); }

/* /phases/<seed>/<phase> for every finished phase, /checkpoint/<seed>/<phase> for every
 * unfinished one with a checkpoint, and /benchmark, /pretext as soft links to the first seed's
 * (the names of format 1, which scripts may use). */
static int write_phases(PtH5Ctx *c, hid_t file, const PtResults *r) {
    hid_t phases = -1, ckpt = -1, sg = -1;
    int rc = -1;
    if ((phases = pt_h5_group_create(c, file, "phases")) < 0) goto fail;
    for (int s = 0; s < r->n_seeds; s++) {
        const PtSeedPhases *sp = &r->seeds[s];
        char name[32];
        seed_name(sp->seed, name, sizeof name);
        int any = 0, any_ckpt = 0;
        for (int p = 0; p < PT_NUM_PHASES; p++) {
            any |= sp->phase[p].done;
            any_ckpt |= has_checkpoint(&sp->phase[p]);
        }
        if (any) {
            if ((sg = pt_h5_group_create(c, phases, name)) < 0) goto fail;
            for (int p = 0; p < PT_NUM_PHASES; p++)
                if (sp->phase[p].done && write_phase(c, sg, pt_phase_names[p], &sp->phase[p]) < 0) goto fail;
            PT_H5_CLOSE(H5Gclose, sg);
        }
        if (any_ckpt) {
            if (ckpt < 0 && (ckpt = pt_h5_group_create(c, file, "checkpoint")) < 0) goto fail;
            if ((sg = pt_h5_group_create(c, ckpt, name)) < 0) goto fail;
            for (int p = 0; p < PT_NUM_PHASES; p++)
                if (has_checkpoint(&sp->phase[p]) && write_checkpoint(c, sg, pt_phase_names[p], &sp->phase[p]) < 0)
                    goto fail;
            PT_H5_CLOSE(H5Gclose, sg);
        }
    }
    if (r->n_seeds > 0) {
        char name[32];
        seed_name(r->seeds[0].seed, name, sizeof name);
        for (int p = 0; p < PT_NUM_PHASES; p++) {
            if (!r->seeds[0].phase[p].done) continue;
            char target[96];
            snprintf(target, sizeof target, "/phases/%s/%s", name, pt_phase_names[p]);
            PT_H5_TRY(c, H5Lcreate_soft(target, file, pt_phase_names[p], H5P_DEFAULT, H5P_DEFAULT));
        }
    }
    rc = 0;
fail:
    PT_H5_CLOSE(H5Gclose, sg);
    PT_H5_CLOSE(H5Gclose, ckpt);
    PT_H5_CLOSE(H5Gclose, phases);
    return rc;
}

static int write_results(PtH5Ctx *c, hid_t file, const void *arg) {
    const PtResults *r = arg;
    hid_t trials = -1;
    int rc = -1;
    if (pt_h5_attr_write_string(c, file, "format", format_name) < 0) goto fail;
    if (pt_h5_attr_write_int(c, file, "format_version", PT_RESULTS_FORMAT_VERSION) < 0) goto fail;
    if (pt_h5_attr_write_int(c, file, "complete", r->complete ? 1 : 0) < 0) goto fail;
    if (write_config(c, file, &r->config) < 0) goto fail;
    if (write_provenance(c, file, r) < 0) goto fail;
    if (write_phases(c, file, r) < 0) goto fail;
    if ((trials = pt_h5_group_create(c, file, "trials")) < 0) goto fail;
    for (int k = 0; k < PT_NUM_KINDS; k++)
        if (write_trials(c, trials, r, k) < 0) goto fail;
    rc = 0;
fail:
    PT_H5_CLOSE(H5Gclose, trials);
    return rc;
}

int pt_results_save(const PtResults *r, const char *path, PtError *err) {
    return pt_h5_atomic_write(path, "results file", write_results, r, err);
}

/* ---------------------------------------------------------------------------------------------
 * Results: memory */

static void phase_init(PtPhaseResult *p, int n_classes, int epochs) {
    memset(p, 0, sizeof *p);
    p->n_classes = n_classes;
    p->test_loss = p->test_accuracy = p->seconds = NAN;
    pt_history_init(&p->history, epochs);
}

int pt_results_row(const PtResults *r, int kind, int s, int b, int i) {
    return (s * r->n_budgets + b) * r->per_cell[kind] + i;
}

int pt_results_seed_index(const PtResults *r, uint64_t seed) {
    for (int s = 0; s < r->n_seeds; s++)
        if (r->seeds[s].seed == seed) return s;
    return -1;
}

PtSegment *pt_results_add_segment(PtResults *r) {
    PtSegment *grown = pt_calloc((size_t)r->n_segments + 1, sizeof *grown);
    if (r->n_segments) memcpy(grown, r->segments, (size_t)r->n_segments * sizeof *grown);
    free(r->segments);
    r->segments = grown;
    return &r->segments[r->n_segments++];
}

/* The epochs of a trial of each kind (for the initial history capacity). */
static int kind_epochs(const PtConfig *cfg, int kind) {
    return kind == PT_KIND_SUPERVISED ? cfg->trials_epochs
                                      : cfg->downstream_frozen_epochs + cfg->downstream_finetune_epochs;
}

void pt_results_init(PtResults *r, const PtConfig *cfg) {
    memset(r, 0, sizeof *r);
    r->config = *cfg;
    uint64_t seeds[PT_MAX_SEEDS];
    r->n_seeds = pt_config_seed_list(cfg, seeds);
    r->seeds = pt_calloc((size_t)r->n_seeds, sizeof *r->seeds);
    for (int s = 0; s < r->n_seeds; s++) {
        r->seeds[s].seed = seeds[s];
        phase_init(&r->seeds[s].phase[PT_PHASE_BENCHMARK], 10, cfg->benchmark_epochs);
        phase_init(&r->seeds[s].phase[PT_PHASE_PRETEXT], 4, cfg->pretext_epochs);
    }
    r->n_budgets = cfg->trials_labels.n;
    for (int b = 0; b < r->n_budgets; b++) r->budgets[b] = cfg->trials_labels.v[b];
    r->per_cell[PT_KIND_SUPERVISED] = cfg->trials_supervised > 0 ? cfg->trials_supervised : 0;
    r->per_cell[PT_KIND_SELF_SUPERVISED] = cfg->trials_self_supervised > 0 ? cfg->trials_self_supervised : 0;
    for (int k = 0; k < PT_NUM_KINDS; k++) {
        int n = r->n_seeds * r->n_budgets * r->per_cell[k];
        r->trials[k] = pt_calloc((size_t)(n > 0 ? n : 1), sizeof(PtTrialResult));
        r->n_trials[k] = n;
        for (int s = 0; s < r->n_seeds; s++)
            for (int b = 0; b < r->n_budgets; b++)
                for (int i = 0; i < r->per_cell[k]; i++) {
                    PtTrialResult *t = &r->trials[k][pt_results_row(r, k, s, b, i)];
                    pt_trial_init(t, i, kind_epochs(cfg, k));
                    t->experiment_seed = seeds[s];
                    t->labels = r->budgets[b];
                }
    }
}

void pt_phase_checkpoint_clear(PtPhaseResult *p) {
    free(p->ckpt_weights);
    free(p->ckpt_adam_m);
    free(p->ckpt_adam_v);
    p->ckpt_weights = p->ckpt_adam_m = p->ckpt_adam_v = NULL;
    p->ckpt_epochs = p->ckpt_adam_t = 0;
    p->ckpt_seconds = 0.0;
}

static void phase_free(PtPhaseResult *p) {
    pt_phase_checkpoint_clear(p);
    pt_history_free(&p->history);
    free(p->weights);
    p->weights = NULL;
    free(p->train_labels);
    free(p->test_labels);
    p->train_labels = p->test_labels = NULL;
    p->n_train_labels = p->n_test_labels = 0;
}

void pt_results_free(PtResults *r) {
    for (int s = 0; s < r->n_seeds; s++)
        for (int p = 0; p < PT_NUM_PHASES; p++) phase_free(&r->seeds[s].phase[p]);
    free(r->seeds);
    r->seeds = NULL;
    r->n_seeds = 0;
    free(r->segments);
    r->segments = NULL;
    r->n_segments = 0;
    for (int k = 0; k < PT_NUM_KINDS; k++) {
        if (r->trials[k]) {
            for (int i = 0; i < r->n_trials[k]; i++) pt_trial_free(&r->trials[k][i]);
        }
        free(r->trials[k]);
        r->trials[k] = NULL;
        r->n_trials[k] = 0;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Results: reading */

static int read_history(PtH5Ctx *c, hid_t parent, const char *where, PtHistory *h) {
    hid_t g = -1;
    int rc = -1;
    char here[192];
    snprintf(here, sizeof here, "%s/history", where);
    double *columns[PT_HISTORY_COLUMNS] = {NULL};
    PT_H5_TRY(c, g = H5Gopen2(parent, "history", H5P_DEFAULT));
    hsize_t dims[1];
    if (pt_h5_dset_dims(c, g, here, pt_history_columns[0].name, 1, dims) < 0) goto fail;
    for (int k = 0; k < PT_HISTORY_COLUMNS; k++) {
        columns[k] = pt_malloc((dims[0] ? dims[0] : 1) * sizeof(double));
        if (pt_h5_dset_read(c, g, here, pt_history_columns[k].name, H5T_NATIVE_DOUBLE, 1, dims, columns[k]) < 0)
            goto fail;
    }
    pt_history_free(h);
    pt_history_init(h, (int)dims[0]);
    for (hsize_t e = 0; e < dims[0]; e++) {
        double row[PT_HISTORY_COLUMNS];
        for (int k = 0; k < PT_HISTORY_COLUMNS; k++) row[k] = columns[k][e];
        pt_history_append_row(h, row);
    }
    rc = 0;
fail:
    for (int k = 0; k < PT_HISTORY_COLUMNS; k++) free(columns[k]);
    PT_H5_CLOSE(H5Gclose, g);
    return rc;
}

/* <group>/<name> if present, group being "/checkpoint" (format 1) or "/checkpoint/<seed>": the
 * checkpoint of a phase that is not done yet. */
static int read_checkpoint(PtH5Ctx *c, hid_t file, const char *group, const char *name, PtPhaseResult *p) {
    hid_t cg = -1, g = -1;
    int rc = -1, exists = 0;
    char where[160];
    snprintf(where, sizeof where, "%s/%s", group, name);
    if (H5Lexists(file, "checkpoint", H5P_DEFAULT) <= 0) return 0;
    PT_H5_TRY(c, exists = H5Lexists(file, group, H5P_DEFAULT) > 0);
    if (!exists) return 0;
    PT_H5_TRY(c, cg = H5Gopen2(file, group, H5P_DEFAULT));
    if (pt_h5_link_exists(c, cg, name, &exists) < 0) goto fail;
    if (!exists) {
        rc = 0;
        goto fail;
    }
    PT_H5_TRY(c, g = H5Gopen2(cg, name, H5P_DEFAULT));
    int n_classes = 0, epochs = 0, t = 0;
    if (pt_h5_attr_read_int(c, g, where, "n_classes", &n_classes) < 0) goto fail;
    if (pt_h5_attr_read_int(c, g, where, "epochs_done", &epochs) < 0) goto fail;
    if (pt_h5_attr_read_int(c, g, where, "adam_t", &t) < 0) goto fail;
    /* the benchmark's classes are the data's (2 .. PT_MAX_CLASSES); the pretext model's are 4 */
    if (n_classes < 2 || n_classes > PT_MAX_CLASSES || (p->n_classes == 4 && n_classes != 4) || epochs < 1 || t < 1) {
        pt_h5_failf(c, "%s is inconsistent (n_classes %d, epochs_done %d, adam_t %d)", where, n_classes, epochs, t);
        goto fail;
    }
    PtTensorInfo info[PT_NUM_TENSORS];
    hsize_t dims[1] = {(hsize_t)pt_tensor_layout(n_classes, info)};
    pt_phase_checkpoint_clear(p);
    p->n_classes = n_classes;
    p->ckpt_weights = pt_malloc(dims[0] * sizeof(float));
    p->ckpt_adam_m = pt_malloc(dims[0] * sizeof(float));
    p->ckpt_adam_v = pt_malloc(dims[0] * sizeof(float));
    if (pt_h5_dset_read_double(c, g, where, "seconds", &p->ckpt_seconds) < 0) goto fail;
    if (pt_h5_dset_read(c, g, where, "weights", H5T_NATIVE_FLOAT, 1, dims, p->ckpt_weights) < 0) goto fail;
    if (pt_h5_dset_read(c, g, where, "adam_m", H5T_NATIVE_FLOAT, 1, dims, p->ckpt_adam_m) < 0) goto fail;
    if (pt_h5_dset_read(c, g, where, "adam_v", H5T_NATIVE_FLOAT, 1, dims, p->ckpt_adam_v) < 0) goto fail;
    if (read_history(c, g, where, &p->history) < 0) goto fail;
    if (p->history.epochs != epochs) {
        pt_h5_failf(c, "%s has %d epochs of history for epochs_done %d", where, p->history.epochs, epochs);
        goto fail;
    }
    p->ckpt_epochs = epochs;
    p->ckpt_adam_t = t;
    rc = 0;
fail:
    if (rc != 0) pt_phase_checkpoint_clear(p);
    PT_H5_CLOSE(H5Gclose, g);
    PT_H5_CLOSE(H5Gclose, cg);
    return rc;
}

/* A phase: <group>/<name> if done (group "" for format 1's root, "/phases/<seed>" for format 2),
 * else its checkpoint in ckpt_group/<name> if any. */
static int read_phase(PtH5Ctx *c, hid_t file, const char *group, const char *ckpt_group, const char *name,
                      PtPhaseResult *p) {
    hid_t g = -1, wg = -1;
    int rc = -1, exists = 0;
    char where[160];
    snprintf(where, sizeof where, "%s/%s", group, name);
    if (group[0]) {
        PT_H5_TRY(c, exists = H5Lexists(file, group, H5P_DEFAULT) > 0);
        if (exists) PT_H5_TRY(c, exists = H5Lexists(file, where, H5P_DEFAULT) > 0);
    } else {
        if (pt_h5_link_exists(c, file, name, &exists) < 0) goto fail;
    }
    if (!exists) return read_checkpoint(c, file, ckpt_group, name, p); /* not done yet: maybe part of it */
    PT_H5_TRY(c, g = H5Gopen2(file, where, H5P_DEFAULT));
    if (pt_h5_attr_read_int(c, g, where, "n_classes", &p->n_classes) < 0) goto fail;
    if (p->n_classes < 2 || p->n_classes > PT_MAX_CLASSES) {
        pt_h5_failf(c, "%s has %d classes", where, p->n_classes);
        goto fail;
    }
    if (pt_h5_dset_read_double(c, g, where, "test_loss", &p->test_loss) < 0) goto fail;
    if (pt_h5_dset_read_double(c, g, where, "test_accuracy", &p->test_accuracy) < 0) goto fail;
    if (pt_h5_dset_read_double(c, g, where, "seconds", &p->seconds) < 0) goto fail;
    if (read_history(c, g, where, &p->history) < 0) goto fail;
    if (pt_h5_link_exists(c, g, "weights", &exists) < 0) goto fail;
    if (exists) {
        char here[192];
        snprintf(here, sizeof here, "%s/weights", where);
        PtTensorInfo info[PT_NUM_TENSORS];
        size_t n_params = pt_tensor_layout(p->n_classes, info);
        free(p->weights);
        p->weights = pt_malloc(n_params * sizeof(float));
        PT_H5_TRY(c, wg = H5Gopen2(g, "weights", H5P_DEFAULT));
        for (int t = 0; t < PT_NUM_TENSORS; t++) {
            char dname[64];
            tensor_dataset_name(info[t].name, dname, sizeof dname);
            hsize_t dims[4];
            for (int d = 0; d < info[t].ndim; d++) dims[d] = (hsize_t)info[t].shape[d];
            if (pt_h5_dset_read(c, wg, here, dname, H5T_NATIVE_FLOAT, info[t].ndim, dims,
                          p->weights + info[t].offset) < 0)
                goto fail;
        }
    }
    const char *label_sets[2] = {"train_rotations", "test_rotations"};
    for (int k = 0; k < 2; k++) {
        if (pt_h5_link_exists(c, g, label_sets[k], &exists) < 0) goto fail;
        if (!exists) continue;
        hsize_t dims[1];
        if (pt_h5_dset_dims(c, g, where, label_sets[k], 1, dims) < 0) goto fail;
        uint8_t *labels = pt_malloc((size_t)(dims[0] ? dims[0] : 1));
        if (k == 0) { free(p->train_labels); p->train_labels = labels; p->n_train_labels = (uint32_t)dims[0]; }
        else { free(p->test_labels); p->test_labels = labels; p->n_test_labels = (uint32_t)dims[0]; }
        if (pt_h5_dset_read(c, g, where, label_sets[k], H5T_NATIVE_UINT8, 1, dims, labels) < 0) goto fail;
    }
    p->done = 1;
    rc = 0;
fail:
    PT_H5_CLOSE(H5Gclose, wg);
    PT_H5_CLOSE(H5Gclose, g);
    return rc;
}

/* /trials/<kind> into r's rows (already laid out by pt_results_init from the file's
 * configuration): the table must have exactly those rows, each naming its place (index, and from
 * format 2 on its experiment seed and budget); columns a format predates keep the laid-out
 * values. */
static int read_trials(PtH5Ctx *c, hid_t file, PtResults *r, int kind, int version) {
    hid_t g = -1, hg = -1;
    int rc = -1;
    char where[64], hwhere[80];
    snprintf(where, sizeof where, "/trials/%s", pt_kind_names[kind]);
    snprintf(hwhere, sizeof hwhere, "%s/history", where);
    unsigned char *columns[PT_TRIAL_COLUMNS] = {NULL};
    int32_t *epochs = NULL;
    uint32_t *samples = NULL;
    double *hist[PT_HISTORY_COLUMNS] = {NULL};
    PtTrialResult *trials = NULL;

    PT_H5_TRY(c, g = H5Gopen2(file, where, H5P_DEFAULT));
    hsize_t dims1[1];
    if (pt_h5_dset_dims(c, g, where, pt_trial_columns[0].name, 1, dims1) < 0) goto fail;
    if (dims1[0] > 1000000) {
        pt_h5_failf(c, "%s holds %llu trials", where, (unsigned long long)dims1[0]);
        goto fail;
    }
    const int n = (int)dims1[0];
    const size_t n_alloc = (size_t)(n > 0 ? n : 1);
    if (n != r->n_trials[kind]) {
        pt_h5_failf(c, "%s has %d rows, but its configuration (%d seeds x %d budgets x %d trials) makes %d", where,
                    n, r->n_seeds, r->n_budgets, r->per_cell[kind], r->n_trials[kind]);
        goto fail;
    }
    for (int k = 0; k < PT_TRIAL_COLUMNS; k++) {
        const PtColumn *col = &pt_trial_columns[k];
        if (col->since > version) continue; /* the format predates it: the laid-out value stays */
        columns[k] = pt_malloc(n_alloc * pt_column_type_size(col->type));
        if (pt_h5_dset_read(c, g, where, col->name, column_mem_type(col->type), 1, dims1, columns[k]) < 0) goto fail;
    }
    hsize_t dims_samples[2];
    if (pt_h5_dset_dims(c, g, where, "sample_indices", 2, dims_samples) < 0) goto fail;
    if (dims_samples[0] != dims1[0]) {
        pt_h5_failf(c, "%s/sample_indices has %llu rows for %d trials", where,
                    (unsigned long long)dims_samples[0], n);
        goto fail;
    }
    const size_t width = (size_t)dims_samples[1];
    samples = pt_malloc(n_alloc * (width ? width : 1) * sizeof(uint32_t));
    if (pt_h5_dset_read(c, g, where, "sample_indices", H5T_NATIVE_UINT32, 2, dims_samples, samples) < 0) goto fail;

    PT_H5_TRY(c, hg = H5Gopen2(g, "history", H5P_DEFAULT));
    epochs = pt_malloc(n_alloc * sizeof(int32_t));
    if (pt_h5_dset_read(c, hg, hwhere, "epochs", H5T_NATIVE_INT32, 1, dims1, epochs) < 0) goto fail;
    hsize_t dims_hist[2];
    if (pt_h5_dset_dims(c, hg, hwhere, pt_history_columns[0].name, 2, dims_hist) < 0) goto fail;
    if (dims_hist[0] != dims1[0]) {
        pt_h5_failf(c, "%s/%s has %llu rows for %d trials", hwhere, pt_history_columns[0].name,
                    (unsigned long long)dims_hist[0], n);
        goto fail;
    }
    const size_t max_epochs = (size_t)dims_hist[1];
    for (int k = 0; k < PT_HISTORY_COLUMNS; k++) {
        hist[k] = pt_malloc(n_alloc * (max_epochs ? max_epochs : 1) * sizeof(double));
        if (pt_h5_dset_read(c, hg, hwhere, pt_history_columns[k].name, H5T_NATIVE_DOUBLE, 2, dims_hist, hist[k]) < 0)
            goto fail;
    }

    /* The rows, validated before any is kept, so a damaged table is rejected whole. */
    trials = pt_calloc(n_alloc, sizeof(PtTrialResult));
    for (int i = 0; i < n; i++) {
        PtTrialResult *t = &trials[i];
        const PtTrialResult *want = &r->trials[kind][i]; /* its place, from the configuration */
        *t = *want;
        t->sample_indices = NULL;
        memset(&t->history, 0, sizeof t->history);
        for (int k = 0; k < PT_TRIAL_COLUMNS; k++) {
            if (!columns[k]) continue;
            size_t size = pt_column_type_size(pt_trial_columns[k].type);
            memcpy((char *)t + pt_trial_columns[k].offset, columns[k] + (size_t)i * size, size);
        }
        if (t->index != want->index || t->experiment_seed != want->experiment_seed || t->labels != want->labels ||
            (t->done != 0 && t->done != 1) || t->n_samples > width || epochs[i] < 0 ||
            (size_t)epochs[i] > max_epochs) {
            pt_h5_failf(c, "%s: row %d is inconsistent (index %d, seed %llu, labels %d where the configuration "
                           "puts index %d, seed %llu, labels %d; done %d, %u samples of %zu, %d epochs of %zu)",
                        where, i, t->index, (unsigned long long)t->experiment_seed, t->labels, want->index,
                        (unsigned long long)want->experiment_seed, want->labels, t->done, t->n_samples, width,
                        epochs[i], max_epochs);
            goto fail;
        }
    }
    for (int i = 0; i < n; i++) {
        PtTrialResult *t = &trials[i];
        if (t->n_samples > 0) {
            t->sample_indices = pt_malloc(t->n_samples * sizeof(uint32_t));
            memcpy(t->sample_indices, samples + (size_t)i * width, t->n_samples * sizeof(uint32_t));
        }
        pt_history_init(&t->history, epochs[i]);
        for (int e = 0; e < epochs[i]; e++) {
            double row[PT_HISTORY_COLUMNS];
            for (int k = 0; k < PT_HISTORY_COLUMNS; k++) row[k] = hist[k][(size_t)i * max_epochs + (size_t)e];
            pt_history_append_row(&t->history, row);
        }
    }
    for (int i = 0; i < n; i++) pt_trial_free(&r->trials[kind][i]);
    free(r->trials[kind]);
    r->trials[kind] = trials;
    trials = NULL;
    rc = 0;
fail:
    free(trials); /* only on failure, before any row owns memory */
    PT_H5_CLOSE(H5Gclose, hg);
    PT_H5_CLOSE(H5Gclose, g);
    for (int k = 0; k < PT_TRIAL_COLUMNS; k++) free(columns[k]);
    for (int k = 0; k < PT_HISTORY_COLUMNS; k++) free(hist[k]);
    free(epochs);
    free(samples);
    return rc;
}

static int read_config(PtH5Ctx *c, hid_t file, PtConfig *cfg) {
    hid_t g = -1;
    int rc = -1;
    char *value = NULL, *assignment = NULL;
    pt_config_defaults(cfg);
    PT_H5_TRY(c, g = H5Gopen2(file, "config", H5P_DEFAULT));
    H5O_info_t info;
    PT_H5_TRY(c, H5Oget_info2(g, &info, H5O_INFO_NUM_ATTRS));
    for (hsize_t i = 0; i < info.num_attrs; i++) {
        char name[256];
        ssize_t name_len = -1;
        PT_H5_TRY(c, name_len = H5Aget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
                                                 H5P_DEFAULT));
        if ((size_t)name_len >= sizeof name) {
            pt_h5_failf(c, "/config has an attribute with a name of %zd characters", name_len);
            goto fail;
        }
        if (strcmp(name, "ini") == 0) continue;
        if (pt_h5_attr_read_string(c, g, "/config", name, &value) < 0) goto fail;
        size_t n = strlen(name) + strlen(value) + 2;
        assignment = pt_malloc(n);
        snprintf(assignment, n, "%s=%s", name, value);
        PtError set_err;
        if (pt_config_set(cfg, assignment, "/config", &set_err) < 0) {
            pt_h5_failf(c, "%s", set_err.msg);
            goto fail;
        }
        free(value);
        free(assignment);
        value = assignment = NULL;
    }
    rc = 0;
fail:
    free(value);
    free(assignment);
    PT_H5_CLOSE(H5Gclose, g);
    return rc;
}

/* /provenance: the run's attributes and, from format 2 on, the segment table; a format 1 file
 * becomes one segment rebuilt from its attributes (status "unknown"). */
static int read_provenance(PtH5Ctx *c, hid_t file, PtResults *r, int version) {
    hid_t g = -1, sg = -1;
    int rc = -1;
    char **column = NULL;
    int32_t *sizes = NULL;
    PT_H5_TRY(c, g = H5Gopen2(file, "provenance", H5P_DEFAULT));
    if (pt_h5_attr_read_string_into(c, g, "/provenance", "start_time", r->start_time, sizeof r->start_time) < 0 ||
        pt_h5_attr_read_string_into(c, g, "/provenance", "end_time", r->end_time, sizeof r->end_time) < 0)
        goto fail;
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "data_files.%s", data_file_names[i]);
        if (pt_h5_attr_read_string_into(c, g, "/provenance", name, r->data_files[i], sizeof r->data_files[i]) < 0)
            goto fail;
        snprintf(name, sizeof name, "data_sha256.%s", data_file_names[i]);
        if (pt_h5_attr_read_string_into(c, g, "/provenance", name, r->data_sha256[i], sizeof r->data_sha256[i]) < 0)
            goto fail;
    }
    int exists = 0;
    if (pt_h5_attr_exists(c, g, "data_classes", &exists) < 0) goto fail;
    if (exists && pt_h5_attr_read_int(c, g, "/provenance", "data_classes", &r->data_classes) < 0) goto fail;
    if (version < 2) {
        PtSegment *seg = pt_results_add_segment(r);
        struct { const char *name; char *dst; size_t size; } fields[8] = {
            {"version", seg->version, sizeof seg->version},
            {"git_commit", seg->git_commit, sizeof seg->git_commit},
            {"build_flags", seg->build_flags, sizeof seg->build_flags},
            {"blas", seg->blas, sizeof seg->blas},
            {"mpi_library", seg->mpi_library, sizeof seg->mpi_library},
            {"hosts", seg->hosts, sizeof seg->hosts},
            {"start_time", seg->start_time, sizeof seg->start_time},
            {"end_time", seg->end_time, sizeof seg->end_time}};
        for (int i = 0; i < 8; i++)
            if (pt_h5_attr_read_string_into(c, g, "/provenance", fields[i].name, fields[i].dst, fields[i].size) < 0)
                goto fail;
        if (pt_h5_attr_read_int(c, g, "/provenance", "mpi_size", &seg->mpi_size) < 0) goto fail;
        snprintf(seg->status, sizeof seg->status, "unknown");
        for (int i = 0; i < 4; i++) memcpy(seg->data_sha256[i], r->data_sha256[i], sizeof seg->data_sha256[i]);
        rc = 0;
        goto fail;
    }
    PT_H5_TRY(c, sg = H5Gopen2(g, "segments", H5P_DEFAULT));
    hsize_t dims[1];
    if (pt_h5_dset_dims(c, sg, "/provenance/segments", "mpi_size", 1, dims) < 0) goto fail;
    if (dims[0] > 100000) {
        pt_h5_failf(c, "/provenance/segments has %llu rows", (unsigned long long)dims[0]);
        goto fail;
    }
    int n = (int)dims[0];
    for (int i = 0; i < n; i++) pt_results_add_segment(r);
    sizes = pt_malloc((size_t)n * sizeof *sizes);
    if (pt_h5_dset_read(c, sg, "/provenance/segments", "mpi_size", H5T_NATIVE_INT32, 1, dims, sizes) < 0) goto fail;
    for (int i = 0; i < n; i++) r->segments[i].mpi_size = sizes[i];
    int has_groups = 0; /* written since the phase groups became per (seed, phase) */
    if (pt_h5_link_exists(c, sg, "phase_groups", &has_groups) < 0) goto fail;
    if (has_groups) {
        hsize_t gdims[1];
        if (pt_h5_dset_dims(c, sg, "/provenance/segments", "phase_groups", 1, gdims) < 0) goto fail;
        if (gdims[0] != dims[0]) {
            pt_h5_failf(c, "/provenance/segments/phase_groups has %llu rows, mpi_size %llu",
                        (unsigned long long)gdims[0], (unsigned long long)dims[0]);
            goto fail;
        }
        if (pt_h5_dset_read(c, sg, "/provenance/segments", "phase_groups", H5T_NATIVE_INT32, 1, dims, sizes) < 0)
            goto fail;
        for (int i = 0; i < n; i++) r->segments[i].phase_groups = sizes[i];
    }
    for (int k = 0; k < N_SEGMENT_STRINGS + 4; k++) {
        char name[64];
        if (k < N_SEGMENT_STRINGS) snprintf(name, sizeof name, "%s", segment_strings[k].name);
        else snprintf(name, sizeof name, "data_sha256.%s", data_file_names[k - N_SEGMENT_STRINGS]);
        if (pt_h5_dset_read_strings(c, sg, "/provenance/segments", name, n, &column) < 0) goto fail;
        for (int i = 0; i < n; i++) {
            char *dst = k < N_SEGMENT_STRINGS ? (char *)&r->segments[i] + segment_strings[k].offset
                                              : r->segments[i].data_sha256[k - N_SEGMENT_STRINGS];
            size_t size = k < N_SEGMENT_STRINGS ? segment_strings[k].size : sizeof r->segments[i].data_sha256[0];
            if (strlen(column[i]) >= size) {
                pt_h5_failf(c, "/provenance/segments/%s row %d is too long", name, i);
                goto fail;
            }
            memcpy(dst, column[i], strlen(column[i]) + 1);
        }
        for (int i = 0; i < n; i++) free(column[i]);
        free(column);
        column = NULL;
    }
    rc = 0;
fail:
    if (column) {
        for (int i = 0; i < (int)r->n_segments; i++) free(column[i]);
        free(column);
    }
    free(sizes);
    PT_H5_CLOSE(H5Gclose, sg);
    PT_H5_CLOSE(H5Gclose, g);
    return rc;
}

int pt_results_load(const char *path, PtResults *r, PtError *err) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    memset(r, 0, sizeof *r);
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno == ENOENT) return pt_error_set(err, "results file '%s' does not exist", path);
        return pt_error_set(err, "cannot read results file '%s': %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode))
        return pt_error_set(err, "results file '%s' is a folder, not a file", path);
    if (access(path, R_OK) < 0)
        return pt_error_set(err, "cannot read results file '%s': %s", path, strerror(errno));
    if (H5Fis_hdf5(path) <= 0)
        return pt_error_set(err, "'%s' is not an HDF5 file: it was not written by pretext", path);

    char what[4200];
    snprintf(what, sizeof what, "cannot read results file '%s'", path);
    PtH5Ctx ctx = {err, what, 0};
    PtH5Ctx *c = &ctx;
    hid_t fapl = -1, file = -1;
    char *format = NULL;
    PT_H5_TRY(c, fapl = H5Pcreate(H5P_FILE_ACCESS));
    PT_H5_TRY(c, H5Pset_fapl_sec2(fapl));
    PT_H5_TRY(c, H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG));
    file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (file < 0) {
        char detail[256] = "";
        H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, pt_h5_innermost_error, detail);
        PT_H5_CLOSE(H5Pclose, fapl);
        return pt_error_set(err, "cannot read results file '%s': it is truncated or damaged%s%s%s", path,
                            detail[0] ? " (HDF5: " : "", detail, detail[0] ? ")" : "");
    }

    /* Is it ours? A missing or non-string format attribute means it is not. */
    {
        PtH5Ctx quiet = {NULL, what, 0};
        if (pt_h5_attr_read_string(&quiet, file, "/", "format", &format) < 0 || strcmp(format, format_name) != 0) {
            pt_h5_failf(c, "it is an HDF5 file but was not written by pretext (no root attribute format=\"%s\")",
                     format_name);
            goto fail;
        }
    }
    int version = 0;
    if (pt_h5_attr_read_int(c, file, "/", "format_version", &version) < 0) goto fail;
    if (version < 1 || version > PT_RESULTS_FORMAT_VERSION) {
        pt_h5_failf(c, "format version %d, but this pretext reads versions 1 to %d%s", version,
                 PT_RESULTS_FORMAT_VERSION, version > PT_RESULTS_FORMAT_VERSION ? " (written by a newer pretext)" : "");
        goto fail;
    }
    if (pt_h5_attr_read_int(c, file, "/", "complete", &r->complete) < 0) goto fail;

    PtConfig cfg;
    if (read_config(c, file, &cfg) < 0) goto fail;
    {
        int complete = r->complete;
        pt_results_init(r, &cfg); /* the layout of seeds, budgets and rows the file must have */
        r->complete = complete;
    }
    if (read_provenance(c, file, r, version) < 0) goto fail;
    for (int s = 0; s < r->n_seeds; s++) {
        char group[64] = "", ckpt_group[64] = "/checkpoint";
        if (version >= 2) {
            char name[32];
            seed_name(r->seeds[s].seed, name, sizeof name);
            snprintf(group, sizeof group, "/phases/%s", name);
            snprintf(ckpt_group, sizeof ckpt_group, "/checkpoint/%s", name);
        }
        for (int p = 0; p < PT_NUM_PHASES; p++)
            if (read_phase(c, file, group, ckpt_group, pt_phase_names[p], &r->seeds[s].phase[p]) < 0) goto fail;
    }
    for (int k = 0; k < PT_NUM_KINDS; k++)
        if (read_trials(c, file, r, k, version) < 0) goto fail;

    PT_H5_TRY(c, H5Fclose(file));
    file = -1;
    PT_H5_CLOSE(H5Pclose, fapl);
    free(format);
    return 0;
fail:
    free(format);
    PT_H5_CLOSE(H5Fclose, file);
    PT_H5_CLOSE(H5Pclose, fapl);
    pt_results_free(r);
    memset(r, 0, sizeof *r);
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Checks before a run */

int pt_results_check_config(const PtResults *r, const PtConfig *cfg, const char *path, PtError *err) {
    char msg[sizeof err->msg];
    int used = snprintf(msg, sizeof msg, "results file '%s' was written with a different configuration:", path);
    int differences = 0;
    for (int i = 0; i < pt_config_key_count(); i++) {
        if (!pt_config_key_affects_results(i)) continue;
        char in_file[4200], now[4200];
        pt_config_key_value(&r->config, i, in_file, sizeof in_file);
        pt_config_key_value(cfg, i, now, sizeof now);
        if (strcmp(in_file, now) == 0) continue;
        differences++;
        if (used >= 0 && (size_t)used < sizeof msg)
            used += snprintf(msg + used, sizeof msg - (size_t)used, "%s %s is '%s' in the file but '%s' now",
                             differences > 1 ? ";" : "", pt_config_key_name(i), in_file, now);
    }
    if (differences == 0) return 0;
    const char *hint = " (use the same configuration to resume, or --force to overwrite the file and start over)";
    /* Keep the hint even when the list of differences fills the message. */
    size_t room = sizeof msg - strlen(hint) - 1;
    if (strlen(msg) > room) {
        msg[room - 4] = '\0';
        strcat(msg, " ...");
    }
    return pt_error_set(err, "%s%s", msg, hint);
}

int pt_results_check_data(const PtResults *r, const char files[4][4096], const char sha256[4][65],
                          const char *path, PtError *err) {
    for (int f = 0; f < 4; f++) {
        if (strcmp(r->data_sha256[f], sha256[f]) == 0) continue;
        return pt_error_set(err, "results file '%s' was computed from other data: its %s '%s' has SHA-256 %.16s..., "
                                 "but this run's '%s' has %.16s... (the path may change; the content may not: "
                                 "point data.dir at the data the file was made with, or use another --out, or "
                                 "--force to start over)",
                            path, data_file_names[f], r->data_files[f], r->data_sha256[f], files[f], sha256[f]);
    }
    return 0;
}

int pt_results_check_phase_config(const PtConfig *a, const PtConfig *b, PtPhaseId phase, const char *path,
                                  PtError *err) {
    /* What a phase's result depends on, besides the seed and the data's content. */
    const char *common[] = {"data.train_images", "experiment.learning_rate", "experiment.validation_split"};
    const char *own[PT_NUM_PHASES][2] = {{"benchmark.epochs", "benchmark.batch_size"},
                                          {"pretext.epochs", "pretext.batch_size"}};
    for (int i = 0; i < pt_config_key_count(); i++) {
        const char *name = pt_config_key_name(i);
        int relevant = 0;
        for (int k = 0; k < 3; k++) relevant |= strcmp(name, common[k]) == 0;
        for (int k = 0; k < 2; k++) relevant |= strcmp(name, own[phase][k]) == 0;
        if (!relevant) continue;
        char va[4200], vb[4200];
        pt_config_key_value(a, i, va, sizeof va);
        pt_config_key_value(b, i, vb, sizeof vb);
        if (strcmp(va, vb) != 0)
            return pt_error_set(err, "cannot take the %s phase from '%s': it was trained with %s = %s, this run has %s",
                                pt_phase_names[phase], path, name, va, vb);
    }
    return 0;
}

int pt_results_check_writable(const char *path, PtError *err) {
    if (!path || path[0] == '\0') return pt_error_set(err, "results file: empty path");
    struct stat st;
    char folder[4096];
    pt_h5_folder_of(path, folder, sizeof folder);
    if (stat(folder, &st) < 0)
        return pt_error_set(err, "cannot write results file '%s': the folder '%s' %s", path, folder,
                            errno == ENOENT ? "does not exist" : strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return pt_error_set(err, "cannot write results file '%s': '%s' is not a folder", path, folder);
    if (access(folder, W_OK | X_OK) < 0)
        return pt_error_set(err, "cannot write results file '%s': the folder '%s' is not writable (%s)", path,
                            folder, strerror(errno));
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return pt_error_set(err, "cannot write results file '%s': it is a folder", path);
        if (access(path, W_OK) < 0)
            return pt_error_set(err, "cannot write results file '%s': %s", path, strerror(errno));
    } else if (errno != ENOENT) {
        return pt_error_set(err, "cannot write results file '%s': %s", path, strerror(errno));
    }
    /* access() says yes to root everywhere, even on /proc or a read-only mount: really create a
     * file beside path, as the saves will, and remove it again. */
    char probe[4200];
    snprintf(probe, sizeof probe, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(probe);
    if (fd < 0)
        return pt_error_set(err, "cannot write results file '%s': cannot create a file in its folder: %s", path,
                            strerror(errno));
    close(fd);
    unlink(probe);
    return 0;
}

