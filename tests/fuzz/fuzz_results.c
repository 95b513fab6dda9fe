/* fuzz_results.c: libFuzzer target for the results-file reader used by resume (pt_results_load in
 * src/results.c). The input is not the file's bytes: it is a list of edits applied through the
 * HDF5 API to a valid pretext results file (datasets and groups deleted, attributes and datasets
 * replaced by other types, shapes and values: negative, NaN, huge, empty, strings). So every file
 * is valid HDF5 with content pretext must check; each must load or be rejected with a message,
 * never crash or leak in pretext's code.
 * Why not raw bytes: the Debian HDF5 library (1.10.8) itself crashes on corrupted files (a
 * mutated seed crashed inside H5Aget_name_by_idx -> H5A__close within 400 runs), which pretext
 * cannot prevent; those crashes say nothing about pretext. Byte-level damage that HDF5 does
 * detect (truncation, garbage) is covered by tests/e2e_bad_input.sh. */
#define _POSIX_C_SOURCE 200809L
#include <assert.h>
#include <hdf5.h>
#include <math.h>
#include <string.h>

#include "fuzz_common.h"
#include "seed_results.h"
#include "pt_results.h"

#define MAX_NAMES 256
static char *object_names[MAX_NAMES]; /* every group and dataset of the seed file */
static int n_objects;
static unsigned char *seed_bytes;
static size_t seed_size;

static herr_t collect(hid_t obj, const char *name, const H5O_info_t *info, void *data) {
    (void)obj; (void)info; (void)data;
    if (strcmp(name, ".") != 0 && n_objects < MAX_NAMES) object_names[n_objects++] = strdup(name);
    return 0;
}

/* The seed: a small results file with one trial of each kind finished (as make_results_seed). */
static void make_seed(void) {
    PtResults r;
    fuzz_seed_results(&r);
    char path[256];
    snprintf(path, sizeof path, "/tmp/pretext-fuzz-%ld.seed.h5", (long)getpid());
    PtError err;
    if (pt_results_save(&r, path, &err) != 0) {
        fprintf(stderr, "fuzz_results: %s\n", err.msg);
        abort();
    }
    pt_results_free(&r);
    FILE *f = fopen(path, "rb");
    if (!f) abort();
    fseek(f, 0, SEEK_END);
    seed_size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    seed_bytes = malloc(seed_size);
    if (fread(seed_bytes, 1, seed_size, f) != seed_size) abort();
    fclose(f);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    H5Ovisit2(file, H5_INDEX_NAME, H5_ITER_NATIVE, collect, NULL, H5O_INFO_BASIC);
    H5Fclose(file);
    unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    make_seed();
    return 0;
}

/* A value chosen by v: ordinary, negative, zero, NaN, infinite, huge, tiny. */
static double pick_value(unsigned v) {
    static const double specials[] = {0.0, -1.0, 1.0, 1e300, -1e300, 4294967296.0, 0.5, 150.0};
    switch (v % 4) {
    case 0: return specials[(v / 4) % 8];
    case 1: return NAN;
    case 2: return (v % 8 == 2) ? INFINITY : -INFINITY;
    default: return (double)(int)(v / 4) - 100.0;
    }
}

static void replace_attribute(hid_t file, unsigned target, unsigned v, const uint8_t *text, size_t text_len) {
    static const char *const owners[] = {"/", "/config", "/provenance"};
    hid_t obj = H5Oopen(file, owners[target % 3], H5P_DEFAULT);
    if (obj < 0) return;
    H5O_info_t info;
    if (H5Oget_info2(obj, &info, H5O_INFO_NUM_ATTRS) < 0 || info.num_attrs == 0) {
        H5Oclose(obj);
        return;
    }
    char name[256];
    hsize_t index = (target / 3) % info.num_attrs;
    if (H5Aget_name_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_INC, index, name, sizeof name, H5P_DEFAULT) < 0) {
        H5Oclose(obj);
        return;
    }
    H5Adelete(obj, name);
    if (v % 5 != 4) { /* v % 5 == 4: the attribute is just removed */
        hid_t space = H5Screate(H5S_SCALAR), type = -1, attr = -1;
        if (v % 5 == 0) {
            int value = (int)(int16_t)v;
            attr = H5Acreate2(obj, name, H5T_NATIVE_INT, space, H5P_DEFAULT, H5P_DEFAULT);
            H5Awrite(attr, H5T_NATIVE_INT, &value);
        } else if (v % 5 == 1) {
            double value = pick_value(v / 5);
            attr = H5Acreate2(obj, name, H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT);
            H5Awrite(attr, H5T_NATIVE_DOUBLE, &value);
        } else {
            /* A fixed-length (v%5 == 2) or variable-length (3) string from the input bytes. */
            char buf[64];
            size_t n = text_len < sizeof buf - 1 ? text_len : sizeof buf - 1;
            memcpy(buf, text, n);
            buf[n] = '\0';
            type = H5Tcopy(H5T_C_S1);
            if (v % 5 == 2) {
                H5Tset_size(type, n ? n : 1);
                attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
                H5Awrite(attr, type, buf);
            } else {
                H5Tset_size(type, H5T_VARIABLE);
                const char *p = buf;
                attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
                H5Awrite(attr, type, &p);
            }
        }
        if (attr >= 0) H5Aclose(attr);
        if (type >= 0) H5Tclose(type);
        H5Sclose(space);
    }
    H5Oclose(obj);
}

static void replace_dataset(hid_t file, const char *name, unsigned v) {
    H5Ldelete(file, name, H5P_DEFAULT);
    int rank = (int)(v % 3);
    hsize_t dims[2] = {(hsize_t)(v / 3) % 12, (hsize_t)(v / 36) % 5 + 1};
    hid_t space = rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(rank, dims, NULL);
    hid_t type = (v / 200) % 2 ? H5T_NATIVE_INT : H5T_NATIVE_DOUBLE;
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t dset = H5Dcreate2(file, name, type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (dset >= 0) {
        hssize_t n = H5Sget_simple_extent_npoints(space);
        double *values = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
        for (hssize_t i = 0; i < n; i++) values[i] = pick_value(v + (unsigned)i);
        H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values);
        free(values);
        H5Dclose(dset);
    }
    H5Pclose(lcpl);
    H5Sclose(space);
}

static void overwrite_values(hid_t file, const char *name, unsigned v) {
    hid_t dset = H5Dopen2(file, name, H5P_DEFAULT);
    if (dset < 0) return;
    hid_t space = H5Dget_space(dset);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    hid_t type = H5Dget_type(dset);
    if (n > 0 && n < 1000000 && H5Tget_class(type) != H5T_STRING) {
        double *values = malloc((size_t)n * sizeof(double));
        H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values);
        values[(v / 8) % (size_t)n] = pick_value(v);
        /* Conversion errors (NaN into an integer type) are refused by HDF5: then nothing changes. */
        H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values);
        free(values);
    }
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(dset);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_input(seed_bytes, seed_size, ".h5");
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (file < 0) abort();
    /* Edits of 4 bytes: operation, target, 16-bit value. At most 16 edits. */
    for (size_t at = 0; at + 4 <= size && at < 64; at += 4) {
        unsigned op = data[at] % 5, target = data[at + 1], v = data[at + 2] | (unsigned)data[at + 3] << 8;
        const char *object = object_names[target % n_objects];
        switch (op) {
        case 0: H5Ldelete(file, object, H5P_DEFAULT); break;
        case 1: replace_attribute(file, target, v, data + at, size - at); break;
        case 2: replace_dataset(file, object, v); break;
        case 3: overwrite_values(file, object, v); break;
        default: {
            hid_t g = H5Gcreate2(file, v % 2 ? "/trials/extra" : "/unexpected", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (g >= 0) H5Gclose(g);
        }
        }
    }
    if (H5Fclose(file) < 0) abort();

    PtResults r;
    PtError err;
    if (pt_results_load(path, &r, &err) == 0) {
        (void)pt_results_check_config(&r, &r.config, path, &err);
        for (int k = 0; k < PT_NUM_KINDS; k++)
            for (int i = 0; i < r.n_trials[k]; i++)
                if (r.trials[k][i].done) assert(r.trials[k][i].n_samples == 0 || r.trials[k][i].sample_indices);
        pt_results_free(&r);
    } else {
        assert(err.msg[0] != '\0');
    }
    return 0;
}
