/* results.c: the results file (one HDF5 file holding the configuration, provenance, both
 * data-parallel phases with weights and histories, and the trial tables), written atomically
 * (whole file to "<path>.tmp", flushed, fsynced, renamed) and read back in full to resume a run;
 * plus the Keras-compatible weights file. Layout: docs/results-format.md.
 *
 * Every HDF5 call goes through H5TRY, which on failure records the call, file:line, errno and the
 * innermost HDF5 error description in the caller's PtError and jumps to the function's cleanup.
 * HDF5's own error-stack printing is switched off so the user sees one clear message. Only rank 0
 * calls these functions, with serial file drivers (never MPI-IO): files are built in memory (core
 * driver) and written with plain write() calls (see atomic_h5_write), and read with sec2. */
#define _POSIX_C_SOURCE 200809L
#include "pt_build_commit.h"
#include "pt_results.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pt_util.h"

const char *const pt_kind_names[PT_NUM_KINDS] = {"supervised", "self_supervised"};

static const char *const format_name = "pretext-results";

/* The four data files recorded in /provenance, in the order of PtResults.data_files. */
static const char *const data_file_names[4] = {"train_images", "train_labels", "test_images",
                                               "test_labels"};

/* ---------------------------------------------------------------------------------------------
 * Checked HDF5 calls */

typedef struct {
    PtError *err;
    const char *what;   /* e.g. "cannot write results file 'r.h5'" */
    int failed;         /* only the first failure is reported */
} H5Ctx;

/* Collects the innermost (most specific) HDF5 error description. */
static herr_t innermost_error(unsigned n, const H5E_error2_t *desc, void *data) {
    char *out = data;
    if (n == 0 && desc->desc) snprintf(out, 256, "%s", desc->desc);
    return 0;
}

static void h5_fail(H5Ctx *c, int saved_errno, const char *call, const char *file, int line) {
    if (c->failed) return;
    c->failed = 1;
    /* Name the HDF5 function, not the whole expression ("dset = H5Dcreate2(...)" -> H5Dcreate2). */
    const char *fn = strstr(call, "H5");
    if (!fn) fn = call;
    size_t fn_len = strcspn(fn, "(");
    char detail[256] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_error, detail);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    pt_error_set(c->err, "%s: %.*s failed (%s:%d)%s%s%s%s%s", c->what, (int)fn_len, fn, base, line,
                 saved_errno ? ": " : "", saved_errno ? strerror(saved_errno) : "",
                 detail[0] ? " [HDF5: " : "", detail, detail[0] ? "]" : "");
}

/* A failure that is not an HDF5 call (a missing attribute, a wrong shape, ...). */
static void ctx_fail(H5Ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ctx_fail(H5Ctx *c, const char *fmt, ...) {
    if (c->failed) return;
    c->failed = 1;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pt_error_set(c->err, "%s: %s", c->what, msg);
}

/* Evaluates an HDF5 call (herr_t, htri_t or hid_t); a negative result fails the context and
 * jumps to the enclosing function's "fail:" label. */
#define H5TRY(c, expr)                                                  \
    do {                                                                \
        errno = 0;                                                      \
        if ((expr) < 0) {                                               \
            h5_fail((c), errno, #expr, __FILE__, __LINE__);             \
            goto fail;                                                  \
        }                                                               \
    } while (0)

#define CLOSE_ID(fn, id) do { if ((id) >= 0) fn(id); (id) = -1; } while (0)

static char *copy_string(const char *s) {
    size_t n = strlen(s);
    char *d = pt_malloc(n + 1);
    memcpy(d, s, n + 1);
    return d;
}

/* ---------------------------------------------------------------------------------------------
 * Writers */

static hid_t group_create(H5Ctx *c, hid_t loc, const char *name) {
    hid_t g = -1;
    H5TRY(c, g = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    return g;
fail:
    return -1;
}

/* Fixed-length, null-padded ASCII string type of size n (>= 1): what numpy's 'S' dtype and
 * Keras write, and what R reads as character. */
static hid_t fixed_string_type(H5Ctx *c, size_t n) {
    hid_t type = -1;
    H5TRY(c, type = H5Tcopy(H5T_C_S1));
    H5TRY(c, H5Tset_size(type, n ? n : 1));
    H5TRY(c, H5Tset_strpad(type, H5T_STR_NULLPAD));
    return type;
fail:
    CLOSE_ID(H5Tclose, type);
    return -1;
}

static int attr_write_string(H5Ctx *c, hid_t loc, const char *name, const char *value) {
    hid_t type = -1, space = -1, attr = -1;
    int rc = -1;
    size_t len = strlen(value);
    char empty[1] = {0};
    if ((type = fixed_string_type(c, len)) < 0) goto fail;
    H5TRY(c, space = H5Screate(H5S_SCALAR));
    H5TRY(c, attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT));
    H5TRY(c, H5Awrite(attr, type, len ? value : empty));
    rc = 0;
fail:
    CLOSE_ID(H5Aclose, attr);
    CLOSE_ID(H5Sclose, space);
    CLOSE_ID(H5Tclose, type);
    return rc;
}

/* A 1-D attribute of n fixed-length strings (n may be 0: an empty array). */
static int attr_write_string_array(H5Ctx *c, hid_t loc, const char *name, const char *const *values,
                                   int n) {
    hid_t type = -1, space = -1, attr = -1;
    int rc = -1;
    size_t width = 1;
    for (int i = 0; i < n; i++)
        if (strlen(values[i]) > width) width = strlen(values[i]);
    char *buf = pt_calloc((size_t)(n > 0 ? n : 1), width); /* (n, width) null-padded */
    for (int i = 0; i < n; i++) memcpy(buf + (size_t)i * width, values[i], strlen(values[i]));
    hsize_t dims[1] = {(hsize_t)n};
    if ((type = fixed_string_type(c, width)) < 0) goto fail;
    H5TRY(c, space = H5Screate_simple(1, dims, NULL));
    H5TRY(c, attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT));
    if (n > 0) H5TRY(c, H5Awrite(attr, type, buf));
    rc = 0;
fail:
    free(buf);
    CLOSE_ID(H5Aclose, attr);
    CLOSE_ID(H5Sclose, space);
    CLOSE_ID(H5Tclose, type);
    return rc;
}

static int attr_write_int(H5Ctx *c, hid_t loc, const char *name, int value) {
    hid_t space = -1, attr = -1;
    int rc = -1;
    H5TRY(c, space = H5Screate(H5S_SCALAR));
    H5TRY(c, attr = H5Acreate2(loc, name, H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT));
    H5TRY(c, H5Awrite(attr, H5T_NATIVE_INT, &value));
    rc = 0;
fail:
    CLOSE_ID(H5Aclose, attr);
    CLOSE_ID(H5Sclose, space);
    return rc;
}

/* A dataset of rank 0 (scalar), 1 or 2; data may be NULL only when it has no elements. */
static int dset_write(H5Ctx *c, hid_t loc, const char *name, hid_t file_type, hid_t mem_type,
                      int rank, const hsize_t *dims, const void *data) {
    hid_t space = -1, dset = -1;
    int rc = -1;
    hsize_t count = 1;
    for (int i = 0; i < rank; i++) count *= dims[i];
    if (rank == 0)
        H5TRY(c, space = H5Screate(H5S_SCALAR));
    else
        H5TRY(c, space = H5Screate_simple(rank, dims, NULL));
    H5TRY(c, dset = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (count > 0) H5TRY(c, H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
    rc = 0;
fail:
    CLOSE_ID(H5Dclose, dset);
    CLOSE_ID(H5Sclose, space);
    return rc;
}

static int dset_write_double(H5Ctx *c, hid_t loc, const char *name, double value) {
    return dset_write(c, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, NULL, &value);
}

static int dset_write_doubles(H5Ctx *c, hid_t loc, const char *name, int rank, const hsize_t *dims,
                              const double *data) {
    return dset_write(c, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, rank, dims, data);
}

/* ---------------------------------------------------------------------------------------------
 * Readers */

static int attr_exists(H5Ctx *c, hid_t loc, const char *name, int *exists) {
    htri_t e = -1;
    H5TRY(c, e = H5Aexists(loc, name));
    *exists = e > 0;
    return 0;
fail:
    return -1;
}

/* Reads a scalar (or one-element) string attribute, fixed- or variable-length; *out is malloc'ed. */
/* Opens attribute name of loc, which must exist and hold one value of class cls (what names the
 * class in the message); *attr and *type are left open for the caller to close. */
static int attr_open_single(H5Ctx *c, hid_t loc, const char *where, const char *name, H5T_class_t cls,
                            const char *what, hid_t *attr, hid_t *type) {
    hid_t space = -1;
    int rc = -1, exists = 0;
    *attr = *type = -1;
    if (attr_exists(c, loc, name, &exists) < 0) goto fail;
    if (!exists) {
        ctx_fail(c, "attribute '%s' of %s is missing", name, where);
        goto fail;
    }
    H5TRY(c, *attr = H5Aopen(loc, name, H5P_DEFAULT));
    H5TRY(c, *type = H5Aget_type(*attr));
    H5TRY(c, space = H5Aget_space(*attr));
    hssize_t n_points = -1;
    H5TRY(c, n_points = H5Sget_simple_extent_npoints(space));
    if (H5Tget_class(*type) != cls || n_points != 1) {
        ctx_fail(c, "attribute '%s' of %s is not a single %s", name, where, what);
        goto fail;
    }
    rc = 0;
fail:
    CLOSE_ID(H5Sclose, space);
    if (rc < 0) {
        CLOSE_ID(H5Tclose, *type);
        CLOSE_ID(H5Aclose, *attr);
    }
    return rc;
}

static int attr_read_string(H5Ctx *c, hid_t loc, const char *where, const char *name, char **out) {
    hid_t attr = -1, type = -1, mem_type = -1;
    int rc = -1;
    char *buf = NULL;
    *out = NULL;
    if (attr_open_single(c, loc, where, name, H5T_STRING, "string", &attr, &type) < 0) goto fail;
    htri_t is_variable = -1;
    H5TRY(c, is_variable = H5Tis_variable_str(type));
    H5TRY(c, mem_type = H5Tcopy(H5T_C_S1));
    if (is_variable) {
        char *value = NULL;
        H5TRY(c, H5Tset_size(mem_type, H5T_VARIABLE));
        H5TRY(c, H5Aread(attr, mem_type, &value));
        *out = copy_string(value ? value : "");
        H5free_memory(value);
    } else {
        size_t size = H5Tget_size(type);
        if (size == 0) {
            ctx_fail(c, "attribute '%s' of %s has no size", name, where);
            goto fail;
        }
        /* One byte more than stored, null-terminated: the conversion keeps every character. */
        H5TRY(c, H5Tset_size(mem_type, size + 1));
        H5TRY(c, H5Tset_strpad(mem_type, H5T_STR_NULLTERM));
        buf = pt_calloc(size + 2, 1);
        H5TRY(c, H5Aread(attr, mem_type, buf));
        *out = buf;
        buf = NULL;
    }
    rc = 0;
fail:
    free(buf);
    CLOSE_ID(H5Tclose, mem_type);
    CLOSE_ID(H5Tclose, type);
    CLOSE_ID(H5Aclose, attr);
    return rc;
}

/* Reads a string attribute into a fixed buffer; too long is an error. */
static int attr_read_string_into(H5Ctx *c, hid_t loc, const char *where, const char *name, char *dst,
                                 size_t dst_size) {
    char *value = NULL;
    if (attr_read_string(c, loc, where, name, &value) < 0) return -1;
    if (strlen(value) >= dst_size) {
        ctx_fail(c, "attribute '%s' of %s is too long (%zu characters)", name, where, strlen(value));
        free(value);
        return -1;
    }
    memcpy(dst, value, strlen(value) + 1);
    free(value);
    return 0;
}

static int attr_read_int(H5Ctx *c, hid_t loc, const char *where, const char *name, int *value) {
    hid_t attr = -1, type = -1;
    int rc = -1;
    if (attr_open_single(c, loc, where, name, H5T_INTEGER, "integer", &attr, &type) < 0) goto fail;
    H5TRY(c, H5Aread(attr, H5T_NATIVE_INT, value));
    rc = 0;
fail:
    CLOSE_ID(H5Tclose, type);
    CLOSE_ID(H5Aclose, attr);
    return rc;
}

static int link_exists(H5Ctx *c, hid_t loc, const char *name, int *exists) {
    htri_t e = -1;
    H5TRY(c, e = H5Lexists(loc, name, H5P_DEFAULT));
    *exists = e > 0;
    return 0;
fail:
    return -1;
}

/* The dimensions of dataset name (which must have the given rank). */
static int dset_dims(H5Ctx *c, hid_t loc, const char *where, const char *name, int rank, hsize_t *dims) {
    hid_t dset = -1, space = -1;
    int rc = -1, exists = 0;
    if (link_exists(c, loc, name, &exists) < 0) goto fail;
    if (!exists) {
        ctx_fail(c, "dataset %s/%s is missing", where, name);
        goto fail;
    }
    H5TRY(c, dset = H5Dopen2(loc, name, H5P_DEFAULT));
    H5TRY(c, space = H5Dget_space(dset));
    int file_rank = -1;
    H5TRY(c, file_rank = H5Sget_simple_extent_ndims(space));
    if (file_rank != rank) {
        ctx_fail(c, "dataset %s/%s has %d dimensions, expected %d", where, name, file_rank, rank);
        goto fail;
    }
    if (rank > 0) H5TRY(c, H5Sget_simple_extent_dims(space, dims, NULL));
    rc = 0;
fail:
    CLOSE_ID(H5Sclose, space);
    CLOSE_ID(H5Dclose, dset);
    return rc;
}

/* Reads dataset name, which must have exactly the expected rank and dimensions, converting to
 * mem_type. */
static int dset_read(H5Ctx *c, hid_t loc, const char *where, const char *name, hid_t mem_type, int rank,
                     const hsize_t *expect, void *buf) {
    hid_t dset = -1;
    int rc = -1;
    hsize_t dims[4] = {0, 0, 0, 0};
    hsize_t count = 1;
    if (dset_dims(c, loc, where, name, rank, dims) < 0) goto fail;
    for (int i = 0; i < rank; i++) {
        if (dims[i] != expect[i]) {
            ctx_fail(c, "dataset %s/%s has size %llu in dimension %d, expected %llu", where, name,
                     (unsigned long long)dims[i], i, (unsigned long long)expect[i]);
            goto fail;
        }
        count *= dims[i];
    }
    H5TRY(c, dset = H5Dopen2(loc, name, H5P_DEFAULT));
    if (count > 0) H5TRY(c, H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
    rc = 0;
fail:
    CLOSE_ID(H5Dclose, dset);
    return rc;
}

static int dset_read_double(H5Ctx *c, hid_t loc, const char *where, const char *name, double *value) {
    return dset_read(c, loc, where, name, H5T_NATIVE_DOUBLE, 0, NULL, value);
}

/* ---------------------------------------------------------------------------------------------
 * Atomic file writing */

/* The folder part of path ("." when it has none). */
static void folder_of(const char *path, char *dst, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dst, n, ".");
    else if (slash == path)
        snprintf(dst, n, "/");
    else
        snprintf(dst, n, "%.*s", (int)(slash - path), path);
}

static int fsync_path(const char *path, int is_folder) {
    int fd = open(path, is_folder ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    /* Some file systems cannot fsync a folder (EINVAL): nothing more can be done there. */
    if (rc < 0 && is_folder && errno == EINVAL) rc = 0;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

typedef int (*H5Writer)(H5Ctx *c, hid_t file, const void *arg);

/* Writes all n bytes to fd, retrying short writes and EINTR. */
static int write_all(int fd, const unsigned char *data, size_t n) {
    while (n > 0) {
        ssize_t done = write(fd, data, n);
        if (done < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        data += done;
        n -= (size_t)done;
    }
    return 0;
}

/* Builds the whole file with fn in memory (HDF5's core driver, no backing store), then writes the
 * image to "<path>.tmp" with plain checked write() calls, fsyncs it, renames it over path and
 * fsyncs the folder. On failure removes the temporary file: path is untouched.
 *
 * Why not the sec2 driver straight to disk: when the disk fills up during H5Fflush/H5Fclose,
 * HDF5 1.10 leaves a half-closed file behind that crashes the library at exit. In memory, HDF5
 * cannot meet a disk error, and errno from write()/fsync() names the cause exactly. */
static int atomic_h5_write(const char *path, const char *kind, H5Writer fn, const void *arg,
                           PtError *err) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char what[5120];
    snprintf(what, sizeof what, "cannot write %s '%s'", kind, path);
    H5Ctx ctx = {err, what, 0};
    H5Ctx *c = &ctx;
    if (path[0] == '\0') return pt_error_set(err, "cannot write %s: empty path", kind);
    size_t len = strlen(path);
    if (len + 5 > 4096) return pt_error_set(err, "%s: path too long", what);
    char tmp[4096 + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    char folder[4096];
    folder_of(path, folder, sizeof folder);

    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return pt_error_set(err, "%s: it is a folder", what);

    hid_t fapl = -1, file = -1;
    int fd = -1, created = 0;
    unsigned char *image = NULL;
    ssize_t image_size = -1;

    /* 1. The file, in memory. */
    H5TRY(c, fapl = H5Pcreate(H5P_FILE_ACCESS));
    H5TRY(c, H5Pset_fapl_core(fapl, (size_t)1 << 20, 0));
    /* Closing the file closes every object still open in it (cleanup after a failure). */
    H5TRY(c, H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG));
    H5TRY(c, file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl));
    if (fn(c, file, arg) < 0) goto fail;
    H5TRY(c, H5Fflush(file, H5F_SCOPE_GLOBAL));
    H5TRY(c, image_size = H5Fget_file_image(file, NULL, 0));
    image = pt_malloc((size_t)image_size);
    H5TRY(c, H5Fget_file_image(file, image, (size_t)image_size));
    herr_t close_status = H5Fclose(file);
    file = -1;
    if (close_status < 0) {
        h5_fail(c, errno, "H5Fclose", __FILE__, __LINE__);
        goto fail;
    }
    CLOSE_ID(H5Pclose, fapl);

    /* 2. The image, to disk under the temporary name. */
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT && stat(folder, &st) < 0)
            ctx_fail(c, "the folder '%s' does not exist", folder);
        else
            ctx_fail(c, "cannot create '%s': %s", tmp, strerror(e));
        goto fail;
    }
    created = 1;
    if (write_all(fd, image, (size_t)image_size) < 0) {
        ctx_fail(c, "cannot write '%s': %s", tmp, strerror(errno));
        goto fail;
    }
    if (fsync(fd) < 0) {
        ctx_fail(c, "cannot flush '%s' to disk: %s", tmp, strerror(errno));
        goto fail;
    }
    int close_fd = close(fd);
    fd = -1;
    if (close_fd < 0) {
        ctx_fail(c, "cannot close '%s': %s", tmp, strerror(errno));
        goto fail;
    }

    /* 3. Into place. */
    if (rename(tmp, path) < 0) {
        ctx_fail(c, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        goto fail;
    }
    free(image);
    if (fsync_path(folder, 1) < 0)
        return pt_error_set(err, "wrote %s '%s' but cannot flush its folder '%s' to disk: %s", kind,
                            path, folder, strerror(errno));
    return 0;
fail:
    free(image);
    if (fd >= 0) close(fd);
    CLOSE_ID(H5Fclose, file);
    CLOSE_ID(H5Pclose, fapl);
    if (created) unlink(tmp);
    if (!ctx.failed) pt_error_set(err, "%s: unknown failure", what);
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Results: writing */

/* Tensor dataset name: the Keras name with '/' replaced by '_' ("conv2d/kernel" -> conv2d_kernel). */
static void tensor_dataset_name(const char *keras_name, char *dst, size_t n) {
    snprintf(dst, n, "%s", keras_name);
    for (char *p = dst; *p; p++)
        if (*p == '/') *p = '_';
}

static int write_history(H5Ctx *c, hid_t parent, const PtHistory *h) {
    hid_t g = -1;
    int rc = -1;
    hsize_t dims[1] = {(hsize_t)h->epochs};
    if ((g = group_create(c, parent, "history")) < 0) goto fail;
    if (dset_write_doubles(c, g, "loss", 1, dims, h->loss) < 0) goto fail;
    if (dset_write_doubles(c, g, "accuracy", 1, dims, h->accuracy) < 0) goto fail;
    if (dset_write_doubles(c, g, "val_loss", 1, dims, h->val_loss) < 0) goto fail;
    if (dset_write_doubles(c, g, "val_accuracy", 1, dims, h->val_accuracy) < 0) goto fail;
    if (dset_write_doubles(c, g, "seconds", 1, dims, h->seconds) < 0) goto fail;
    rc = 0;
fail:
    CLOSE_ID(H5Gclose, g);
    return rc;
}

static int write_weights(H5Ctx *c, hid_t parent, const float *params, int n_classes) {
    hid_t g = -1;
    int rc = -1;
    PtTensorInfo info[PT_NUM_TENSORS];
    pt_tensor_layout(n_classes, info);
    if ((g = group_create(c, parent, "weights")) < 0) goto fail;
    for (int t = 0; t < PT_NUM_TENSORS; t++) {
        char name[64];
        tensor_dataset_name(info[t].name, name, sizeof name);
        hsize_t dims[4];
        for (int d = 0; d < info[t].ndim; d++) dims[d] = (hsize_t)info[t].shape[d];
        if (dset_write(c, g, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, info[t].ndim, dims,
                       params + info[t].offset) < 0)
            goto fail;
    }
    rc = 0;
fail:
    CLOSE_ID(H5Gclose, g);
    return rc;
}

static int write_phase(H5Ctx *c, hid_t file, const char *name, const PtPhaseResult *p) {
    hid_t g = -1;
    int rc = -1;
    if (p->n_classes < 2 || p->n_classes > PT_MAX_CLASSES) {
        ctx_fail(c, "phase %s has %d classes", name, p->n_classes);
        goto fail;
    }
    if ((g = group_create(c, file, name)) < 0) goto fail;
    if (attr_write_int(c, g, "n_classes", p->n_classes) < 0) goto fail;
    if (dset_write_double(c, g, "test_loss", p->test_loss) < 0) goto fail;
    if (dset_write_double(c, g, "test_accuracy", p->test_accuracy) < 0) goto fail;
    if (dset_write_double(c, g, "seconds", p->seconds) < 0) goto fail;
    if (write_history(c, g, &p->history) < 0) goto fail;
    if (p->weights && write_weights(c, g, p->weights, p->n_classes) < 0) goto fail;
    if (p->train_labels) {
        hsize_t dims[1] = {p->n_train_labels};
        if (dset_write(c, g, "train_rotations", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, dims, p->train_labels) < 0)
            goto fail;
    }
    if (p->test_labels) {
        hsize_t dims[1] = {p->n_test_labels};
        if (dset_write(c, g, "test_rotations", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, dims, p->test_labels) < 0)
            goto fail;
    }
    rc = 0;
fail:
    CLOSE_ID(H5Gclose, g);
    return rc;
}

/* /checkpoint/<phase> of an unfinished phase: attributes n_classes, epochs_done, adam_t; datasets
 * seconds, weights, adam_m, adam_v (flat, n_params float32 each) and the history so far. */
static int write_checkpoint(H5Ctx *c, hid_t parent, const char *name, const PtPhaseResult *p) {
    hid_t g = -1;
    int rc = -1;
    PtTensorInfo info[PT_NUM_TENSORS];
    hsize_t dims[1] = {(hsize_t)pt_tensor_layout(p->n_classes, info)};
    if ((g = group_create(c, parent, name)) < 0) goto fail;
    if (attr_write_int(c, g, "n_classes", p->n_classes) < 0) goto fail;
    if (attr_write_int(c, g, "epochs_done", p->ckpt_epochs) < 0) goto fail;
    if (attr_write_int(c, g, "adam_t", p->ckpt_adam_t) < 0) goto fail;
    if (dset_write_double(c, g, "seconds", p->ckpt_seconds) < 0) goto fail;
    const char *names[3] = {"weights", "adam_m", "adam_v"};
    const float *data[3] = {p->ckpt_weights, p->ckpt_adam_m, p->ckpt_adam_v};
    for (int k = 0; k < 3; k++)
        if (dset_write(c, g, names[k], H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, dims, data[k]) < 0) goto fail;
    if (write_history(c, g, &p->history) < 0) goto fail;
    rc = 0;
fail:
    CLOSE_ID(H5Gclose, g);
    return rc;
}

static int has_checkpoint(const PtPhaseResult *p) {
    return !p->done && p->ckpt_epochs > 0 && p->ckpt_weights && p->ckpt_adam_m && p->ckpt_adam_v;
}

static int write_trials(H5Ctx *c, hid_t trials_group, const PtResults *r, int kind) {
    hid_t g = -1, hg = -1;
    int rc = -1;
    const int n = r->n_trials[kind];
    const PtTrialResult *trials = r->trials[kind];
    const size_t n_alloc = (size_t)(n > 0 ? n : 1);

    /* Table widths: the widest sample list and the longest history among finished trials. */
    uint32_t width = r->config.trials_labels > 0 ? (uint32_t)r->config.trials_labels : 0;
    int max_epochs = 0;
    for (int i = 0; i < n; i++) {
        if (!trials[i].done) continue;
        if (trials[i].n_samples > width) width = trials[i].n_samples;
        if (trials[i].history.epochs > max_epochs) max_epochs = trials[i].history.epochs;
    }

    int32_t *index = pt_calloc(n_alloc, sizeof *index);       /* (n) */
    int8_t *done = pt_calloc(n_alloc, sizeof *done);          /* (n) */
    uint64_t *seed = pt_calloc(n_alloc, sizeof *seed);        /* (n) */
    int32_t *rank = pt_calloc(n_alloc, sizeof *rank);         /* (n) */
    double *test_loss = pt_calloc(n_alloc, sizeof(double));   /* (n) */
    double *test_acc = pt_calloc(n_alloc, sizeof(double));    /* (n) */
    double *seconds = pt_calloc(n_alloc, sizeof(double));     /* (n) */
    uint32_t *n_samples = pt_calloc(n_alloc, sizeof(uint32_t)); /* (n) */
    int32_t *epochs = pt_calloc(n_alloc, sizeof(int32_t));    /* (n) */
    uint32_t *samples = pt_calloc(n_alloc * (width ? width : 1), sizeof(uint32_t)); /* (n, width) */
    size_t hist_size = n_alloc * (size_t)(max_epochs ? max_epochs : 1);
    double *hist[5]; /* loss, accuracy, val_loss, val_accuracy, seconds: each (n, max_epochs) */
    for (int k = 0; k < 5; k++) {
        hist[k] = pt_malloc(hist_size * sizeof(double));
        for (size_t j = 0; j < hist_size; j++) hist[k][j] = NAN;
    }
    for (int i = 0; i < n; i++) {
        const PtTrialResult *t = &trials[i];
        index[i] = i;
        done[i] = (int8_t)(t->done ? 1 : 0);
        seed[i] = t->seed;
        rank[i] = t->rank;
        if (!t->done) {
            test_loss[i] = test_acc[i] = seconds[i] = NAN;
            continue;
        }
        test_loss[i] = t->test_loss;
        test_acc[i] = t->test_accuracy;
        seconds[i] = t->seconds;
        n_samples[i] = t->n_samples;
        if (t->n_samples > 0 && t->sample_indices)
            memcpy(samples + (size_t)i * width, t->sample_indices, t->n_samples * sizeof(uint32_t));
        epochs[i] = t->history.epochs;
        const double *columns[5] = {t->history.loss, t->history.accuracy, t->history.val_loss,
                                    t->history.val_accuracy, t->history.seconds};
        for (int k = 0; k < 5; k++)
            for (int e = 0; e < t->history.epochs; e++) hist[k][(size_t)i * max_epochs + e] = columns[k][e];
    }

    hsize_t dims1[1] = {(hsize_t)n};
    hsize_t dims_samples[2] = {(hsize_t)n, width};
    hsize_t dims_hist[2] = {(hsize_t)n, (hsize_t)max_epochs};
    if ((g = group_create(c, trials_group, pt_kind_names[kind])) < 0) goto fail;
    if (dset_write(c, g, "index", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims1, index) < 0) goto fail;
    if (dset_write(c, g, "done", H5T_STD_I8LE, H5T_NATIVE_INT8, 1, dims1, done) < 0) goto fail;
    if (dset_write(c, g, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, dims1, seed) < 0) goto fail;
    if (dset_write(c, g, "rank", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims1, rank) < 0) goto fail;
    if (dset_write_doubles(c, g, "test_loss", 1, dims1, test_loss) < 0) goto fail;
    if (dset_write_doubles(c, g, "test_accuracy", 1, dims1, test_acc) < 0) goto fail;
    if (dset_write_doubles(c, g, "seconds", 1, dims1, seconds) < 0) goto fail;
    if (dset_write(c, g, "n_samples", H5T_STD_U32LE, H5T_NATIVE_UINT32, 1, dims1, n_samples) < 0) goto fail;
    if (dset_write(c, g, "sample_indices", H5T_STD_U32LE, H5T_NATIVE_UINT32, 2, dims_samples, samples) < 0)
        goto fail;
    if ((hg = group_create(c, g, "history")) < 0) goto fail;
    if (dset_write(c, hg, "epochs", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims1, epochs) < 0) goto fail;
    static const char *const hist_names[5] = {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"};
    for (int k = 0; k < 5; k++)
        if (dset_write_doubles(c, hg, hist_names[k], 2, dims_hist, hist[k]) < 0) goto fail;
    rc = 0;
fail:
    CLOSE_ID(H5Gclose, hg);
    CLOSE_ID(H5Gclose, g);
    free(index); free(done); free(seed); free(rank); free(test_loss); free(test_acc);
    free(seconds); free(n_samples); free(epochs); free(samples);
    for (int k = 0; k < 5; k++) free(hist[k]);
    return rc;
}

static int write_config(H5Ctx *c, hid_t file, const PtConfig *cfg) {
    hid_t g = -1;
    int rc = -1;
    char *ini = NULL;
    size_t ini_size = 0;
    if ((g = group_create(c, file, "config")) < 0) goto fail;
    for (int i = 0; i < pt_config_key_count(); i++) {
        char value[4200];
        pt_config_key_value(cfg, i, value, sizeof value);
        if (attr_write_string(c, g, pt_config_key_name(i), value) < 0) goto fail;
    }
    FILE *mem = open_memstream(&ini, &ini_size);
    if (!mem) {
        ctx_fail(c, "cannot format the configuration: %s", strerror(errno));
        goto fail;
    }
    pt_config_write_ini(cfg, mem);
    if (fclose(mem) != 0) {
        ctx_fail(c, "cannot format the configuration: %s", strerror(errno));
        goto fail;
    }
    if (attr_write_string(c, g, "ini", ini) < 0) goto fail;
    rc = 0;
fail:
    free(ini);
    CLOSE_ID(H5Gclose, g);
    return rc;
}

static int write_provenance(H5Ctx *c, hid_t file, const PtResults *r) {
    hid_t g = -1;
    int rc = -1;
    if ((g = group_create(c, file, "provenance")) < 0) goto fail;
    const char *names[8] = {"version", "git_commit", "build_flags", "blas", "mpi_library", "hosts",
                            "start_time", "end_time"};
    const char *values[8] = {r->version, r->git_commit, r->build_flags, r->blas, r->mpi_library, r->hosts,
                             r->start_time, r->end_time};
    for (int i = 0; i < 8; i++)
        if (attr_write_string(c, g, names[i], values[i]) < 0) goto fail;
    if (attr_write_int(c, g, "mpi_size", r->mpi_size) < 0) goto fail;
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "data_files.%s", data_file_names[i]);
        if (attr_write_string(c, g, name, r->data_files[i]) < 0) goto fail;
        snprintf(name, sizeof name, "data_sha256.%s", data_file_names[i]);
        if (attr_write_string(c, g, name, r->data_sha256[i]) < 0) goto fail;
    }
    rc = 0;
fail:
    CLOSE_ID(H5Gclose, g);
    return rc;
}

static int write_results(H5Ctx *c, hid_t file, const void *arg) {
    const PtResults *r = arg;
    hid_t trials = -1;
    int rc = -1;
    if (attr_write_string(c, file, "format", format_name) < 0) goto fail;
    if (attr_write_int(c, file, "format_version", PT_RESULTS_FORMAT_VERSION) < 0) goto fail;
    if (attr_write_int(c, file, "complete", r->complete ? 1 : 0) < 0) goto fail;
    if (write_config(c, file, &r->config) < 0) goto fail;
    if (write_provenance(c, file, r) < 0) goto fail;
    if (r->benchmark.done && write_phase(c, file, "benchmark", &r->benchmark) < 0) goto fail;
    if (r->pretext.done && write_phase(c, file, "pretext", &r->pretext) < 0) goto fail;
    if (has_checkpoint(&r->benchmark) || has_checkpoint(&r->pretext)) {
        hid_t ckpt = -1;
        if ((ckpt = group_create(c, file, "checkpoint")) < 0) goto fail;
        int bad = (has_checkpoint(&r->benchmark) && write_checkpoint(c, ckpt, "benchmark", &r->benchmark) < 0) ||
                  (has_checkpoint(&r->pretext) && write_checkpoint(c, ckpt, "pretext", &r->pretext) < 0);
        CLOSE_ID(H5Gclose, ckpt);
        if (bad) goto fail;
    }
    if ((trials = group_create(c, file, "trials")) < 0) goto fail;
    for (int k = 0; k < PT_NUM_KINDS; k++)
        if (write_trials(c, trials, r, k) < 0) goto fail;
    rc = 0;
fail:
    CLOSE_ID(H5Gclose, trials);
    return rc;
}

int pt_results_save(const PtResults *r, const char *path, PtError *err) {
    return atomic_h5_write(path, "results file", write_results, r, err);
}

/* ---------------------------------------------------------------------------------------------
 * Results: memory */

static void phase_init(PtPhaseResult *p, int n_classes, int epochs) {
    memset(p, 0, sizeof *p);
    p->n_classes = n_classes;
    p->test_loss = p->test_accuracy = p->seconds = NAN;
    pt_history_init(&p->history, epochs);
}

static void trial_init(PtTrialResult *t, int index, int epochs) {
    memset(t, 0, sizeof *t);
    t->index = index;
    t->rank = -1;
    t->test_loss = t->test_accuracy = t->seconds = NAN;
    pt_history_init(&t->history, epochs);
}

void pt_results_init(PtResults *r, const PtConfig *cfg) {
    memset(r, 0, sizeof *r);
    r->config = *cfg;
    snprintf(r->version, sizeof r->version, "%s", PRETEXT_VERSION);
    snprintf(r->git_commit, sizeof r->git_commit, "%s", PRETEXT_GIT_COMMIT);
    snprintf(r->build_flags, sizeof r->build_flags, "%s", PRETEXT_BUILD_FLAGS);
    r->mpi_size = pt_world_size();
    phase_init(&r->benchmark, 10, cfg->benchmark_epochs);
    phase_init(&r->pretext, 4, cfg->pretext_epochs);
    const int counts[PT_NUM_KINDS] = {cfg->trials_supervised, cfg->trials_self_supervised};
    const int epochs[PT_NUM_KINDS] = {cfg->trials_epochs,
                                      cfg->downstream_frozen_epochs + cfg->downstream_finetune_epochs};
    for (int k = 0; k < PT_NUM_KINDS; k++) {
        int n = counts[k] > 0 ? counts[k] : 0;
        r->trials[k] = pt_calloc((size_t)(n > 0 ? n : 1), sizeof(PtTrialResult));
        for (int i = 0; i < n; i++) trial_init(&r->trials[k][i], i, epochs[k]);
        r->n_trials[k] = n;
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
    phase_free(&r->benchmark);
    phase_free(&r->pretext);
    for (int k = 0; k < PT_NUM_KINDS; k++) {
        if (r->trials[k]) {
            for (int i = 0; i < r->n_trials[k]; i++) {
                free(r->trials[k][i].sample_indices);
                pt_history_free(&r->trials[k][i].history);
            }
        }
        free(r->trials[k]);
        r->trials[k] = NULL;
        r->n_trials[k] = 0;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Results: reading */

static int read_history(H5Ctx *c, hid_t parent, const char *where, PtHistory *h) {
    hid_t g = -1;
    int rc = -1;
    char here[128];
    snprintf(here, sizeof here, "%s/history", where);
    double *columns[5] = {NULL, NULL, NULL, NULL, NULL};
    H5TRY(c, g = H5Gopen2(parent, "history", H5P_DEFAULT));
    hsize_t dims[1];
    if (dset_dims(c, g, here, "loss", 1, dims) < 0) goto fail;
    static const char *const names[5] = {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"};
    for (int k = 0; k < 5; k++) {
        columns[k] = pt_malloc((dims[0] ? dims[0] : 1) * sizeof(double));
        if (dset_read(c, g, here, names[k], H5T_NATIVE_DOUBLE, 1, dims, columns[k]) < 0) goto fail;
    }
    pt_history_free(h);
    pt_history_init(h, (int)dims[0]);
    for (hsize_t e = 0; e < dims[0]; e++)
        pt_history_append(h, columns[0][e], columns[1][e], columns[2][e], columns[3][e], columns[4][e]);
    rc = 0;
fail:
    for (int k = 0; k < 5; k++) free(columns[k]);
    CLOSE_ID(H5Gclose, g);
    return rc;
}

/* /checkpoint/<name> if present (a phase that is not done yet). */
static int read_checkpoint(H5Ctx *c, hid_t file, const char *name, PtPhaseResult *p) {
    hid_t cg = -1, g = -1;
    int rc = -1, exists = 0;
    char where[64];
    snprintf(where, sizeof where, "/checkpoint/%s", name);
    if (link_exists(c, file, "checkpoint", &exists) < 0) goto fail;
    if (!exists) return 0;
    H5TRY(c, cg = H5Gopen2(file, "checkpoint", H5P_DEFAULT));
    if (link_exists(c, cg, name, &exists) < 0) goto fail;
    if (!exists) {
        rc = 0;
        goto fail;
    }
    H5TRY(c, g = H5Gopen2(cg, name, H5P_DEFAULT));
    int n_classes = 0, epochs = 0, t = 0;
    if (attr_read_int(c, g, where, "n_classes", &n_classes) < 0) goto fail;
    if (attr_read_int(c, g, where, "epochs_done", &epochs) < 0) goto fail;
    if (attr_read_int(c, g, where, "adam_t", &t) < 0) goto fail;
    if (n_classes != p->n_classes || epochs < 1 || t < 1) {
        ctx_fail(c, "%s is inconsistent (n_classes %d, epochs_done %d, adam_t %d)", where, n_classes, epochs, t);
        goto fail;
    }
    PtTensorInfo info[PT_NUM_TENSORS];
    hsize_t dims[1] = {(hsize_t)pt_tensor_layout(n_classes, info)};
    pt_phase_checkpoint_clear(p);
    p->ckpt_weights = pt_malloc(dims[0] * sizeof(float));
    p->ckpt_adam_m = pt_malloc(dims[0] * sizeof(float));
    p->ckpt_adam_v = pt_malloc(dims[0] * sizeof(float));
    if (dset_read_double(c, g, where, "seconds", &p->ckpt_seconds) < 0) goto fail;
    if (dset_read(c, g, where, "weights", H5T_NATIVE_FLOAT, 1, dims, p->ckpt_weights) < 0) goto fail;
    if (dset_read(c, g, where, "adam_m", H5T_NATIVE_FLOAT, 1, dims, p->ckpt_adam_m) < 0) goto fail;
    if (dset_read(c, g, where, "adam_v", H5T_NATIVE_FLOAT, 1, dims, p->ckpt_adam_v) < 0) goto fail;
    if (read_history(c, g, where, &p->history) < 0) goto fail;
    if (p->history.epochs != epochs) {
        ctx_fail(c, "%s has %d epochs of history for epochs_done %d", where, p->history.epochs, epochs);
        goto fail;
    }
    p->ckpt_epochs = epochs;
    p->ckpt_adam_t = t;
    rc = 0;
fail:
    if (rc != 0) pt_phase_checkpoint_clear(p);
    CLOSE_ID(H5Gclose, g);
    CLOSE_ID(H5Gclose, cg);
    return rc;
}

static int read_phase(H5Ctx *c, hid_t file, const char *name, PtPhaseResult *p) {
    hid_t g = -1, wg = -1;
    int rc = -1, exists = 0;
    char where[64];
    snprintf(where, sizeof where, "/%s", name);
    if (link_exists(c, file, name, &exists) < 0) goto fail;
    if (!exists) return read_checkpoint(c, file, name, p); /* not done yet: maybe part of it */
    H5TRY(c, g = H5Gopen2(file, name, H5P_DEFAULT));
    if (attr_read_int(c, g, where, "n_classes", &p->n_classes) < 0) goto fail;
    if (p->n_classes < 2 || p->n_classes > PT_MAX_CLASSES) {
        ctx_fail(c, "%s has %d classes", where, p->n_classes);
        goto fail;
    }
    if (dset_read_double(c, g, where, "test_loss", &p->test_loss) < 0) goto fail;
    if (dset_read_double(c, g, where, "test_accuracy", &p->test_accuracy) < 0) goto fail;
    if (dset_read_double(c, g, where, "seconds", &p->seconds) < 0) goto fail;
    if (read_history(c, g, where, &p->history) < 0) goto fail;
    if (link_exists(c, g, "weights", &exists) < 0) goto fail;
    if (exists) {
        char here[96];
        snprintf(here, sizeof here, "%s/weights", where);
        PtTensorInfo info[PT_NUM_TENSORS];
        size_t n_params = pt_tensor_layout(p->n_classes, info);
        free(p->weights);
        p->weights = pt_malloc(n_params * sizeof(float));
        H5TRY(c, wg = H5Gopen2(g, "weights", H5P_DEFAULT));
        for (int t = 0; t < PT_NUM_TENSORS; t++) {
            char dname[64];
            tensor_dataset_name(info[t].name, dname, sizeof dname);
            hsize_t dims[4];
            for (int d = 0; d < info[t].ndim; d++) dims[d] = (hsize_t)info[t].shape[d];
            if (dset_read(c, wg, here, dname, H5T_NATIVE_FLOAT, info[t].ndim, dims,
                          p->weights + info[t].offset) < 0)
                goto fail;
        }
    }
    const char *label_sets[2] = {"train_rotations", "test_rotations"};
    for (int k = 0; k < 2; k++) {
        if (link_exists(c, g, label_sets[k], &exists) < 0) goto fail;
        if (!exists) continue;
        hsize_t dims[1];
        if (dset_dims(c, g, where, label_sets[k], 1, dims) < 0) goto fail;
        uint8_t *labels = pt_malloc((size_t)(dims[0] ? dims[0] : 1));
        if (k == 0) { free(p->train_labels); p->train_labels = labels; p->n_train_labels = (uint32_t)dims[0]; }
        else { free(p->test_labels); p->test_labels = labels; p->n_test_labels = (uint32_t)dims[0]; }
        if (dset_read(c, g, where, label_sets[k], H5T_NATIVE_UINT8, 1, dims, labels) < 0) goto fail;
    }
    p->done = 1;
    rc = 0;
fail:
    CLOSE_ID(H5Gclose, wg);
    CLOSE_ID(H5Gclose, g);
    return rc;
}

static int read_trials(H5Ctx *c, hid_t file, PtResults *r, int kind) {
    hid_t g = -1, hg = -1;
    int rc = -1;
    char where[64], hwhere[80];
    snprintf(where, sizeof where, "/trials/%s", pt_kind_names[kind]);
    snprintf(hwhere, sizeof hwhere, "%s/history", where);
    int32_t *index = NULL, *rank = NULL, *epochs = NULL;
    int8_t *done = NULL;
    uint64_t *seed = NULL;
    double *test_loss = NULL, *test_acc = NULL, *seconds = NULL;
    uint32_t *n_samples = NULL, *samples = NULL;
    double *hist[5] = {NULL, NULL, NULL, NULL, NULL};

    H5TRY(c, g = H5Gopen2(file, where, H5P_DEFAULT));
    hsize_t dims1[1];
    if (dset_dims(c, g, where, "index", 1, dims1) < 0) goto fail;
    if (dims1[0] > 1000000) {
        ctx_fail(c, "%s holds %llu trials", where, (unsigned long long)dims1[0]);
        goto fail;
    }
    const int n = (int)dims1[0];
    const size_t n_alloc = (size_t)(n > 0 ? n : 1);
    index = pt_malloc(n_alloc * sizeof *index);
    done = pt_malloc(n_alloc * sizeof *done);
    seed = pt_malloc(n_alloc * sizeof *seed);
    rank = pt_malloc(n_alloc * sizeof *rank);
    test_loss = pt_malloc(n_alloc * sizeof(double));
    test_acc = pt_malloc(n_alloc * sizeof(double));
    seconds = pt_malloc(n_alloc * sizeof(double));
    n_samples = pt_malloc(n_alloc * sizeof(uint32_t));
    epochs = pt_malloc(n_alloc * sizeof(int32_t));
    if (dset_read(c, g, where, "index", H5T_NATIVE_INT32, 1, dims1, index) < 0) goto fail;
    if (dset_read(c, g, where, "done", H5T_NATIVE_INT8, 1, dims1, done) < 0) goto fail;
    if (dset_read(c, g, where, "seed", H5T_NATIVE_UINT64, 1, dims1, seed) < 0) goto fail;
    if (dset_read(c, g, where, "rank", H5T_NATIVE_INT32, 1, dims1, rank) < 0) goto fail;
    if (dset_read(c, g, where, "test_loss", H5T_NATIVE_DOUBLE, 1, dims1, test_loss) < 0) goto fail;
    if (dset_read(c, g, where, "test_accuracy", H5T_NATIVE_DOUBLE, 1, dims1, test_acc) < 0) goto fail;
    if (dset_read(c, g, where, "seconds", H5T_NATIVE_DOUBLE, 1, dims1, seconds) < 0) goto fail;
    if (dset_read(c, g, where, "n_samples", H5T_NATIVE_UINT32, 1, dims1, n_samples) < 0) goto fail;

    hsize_t dims_samples[2];
    if (dset_dims(c, g, where, "sample_indices", 2, dims_samples) < 0) goto fail;
    if (dims_samples[0] != dims1[0]) {
        ctx_fail(c, "%s/sample_indices has %llu rows for %d trials", where,
                 (unsigned long long)dims_samples[0], n);
        goto fail;
    }
    const size_t width = (size_t)dims_samples[1];
    samples = pt_malloc(n_alloc * (width ? width : 1) * sizeof(uint32_t));
    if (dset_read(c, g, where, "sample_indices", H5T_NATIVE_UINT32, 2, dims_samples, samples) < 0) goto fail;

    H5TRY(c, hg = H5Gopen2(g, "history", H5P_DEFAULT));
    if (dset_read(c, hg, hwhere, "epochs", H5T_NATIVE_INT32, 1, dims1, epochs) < 0) goto fail;
    hsize_t dims_hist[2];
    if (dset_dims(c, hg, hwhere, "loss", 2, dims_hist) < 0) goto fail;
    if (dims_hist[0] != dims1[0]) {
        ctx_fail(c, "%s/loss has %llu rows for %d trials", hwhere, (unsigned long long)dims_hist[0], n);
        goto fail;
    }
    const size_t max_epochs = (size_t)dims_hist[1];
    static const char *const hist_names[5] = {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"};
    for (int k = 0; k < 5; k++) {
        hist[k] = pt_malloc(n_alloc * (max_epochs ? max_epochs : 1) * sizeof(double));
        if (dset_read(c, hg, hwhere, hist_names[k], H5T_NATIVE_DOUBLE, 2, dims_hist, hist[k]) < 0) goto fail;
    }

    /* Validate every row before building the trials, so a damaged table is rejected whole. */
    for (int i = 0; i < n; i++) {
        if (index[i] != i || (done[i] != 0 && done[i] != 1) || n_samples[i] > width ||
            epochs[i] < 0 || (size_t)epochs[i] > max_epochs) {
            ctx_fail(c, "%s: row %d is inconsistent (index %d, done %d, %u samples of %zu, %d epochs of %zu)",
                     where, i, index[i], done[i], n_samples[i], width, epochs[i], max_epochs);
            goto fail;
        }
    }

    PtTrialResult *trials = pt_calloc(n_alloc, sizeof(PtTrialResult));
    for (int i = 0; i < n; i++) {
        PtTrialResult *t = &trials[i];
        t->done = done[i];
        t->index = i;
        t->seed = seed[i];
        t->rank = rank[i];
        t->test_loss = test_loss[i];
        t->test_accuracy = test_acc[i];
        t->seconds = seconds[i];
        t->n_samples = n_samples[i];
        if (t->n_samples > 0) {
            t->sample_indices = pt_malloc(t->n_samples * sizeof(uint32_t));
            memcpy(t->sample_indices, samples + (size_t)i * width, t->n_samples * sizeof(uint32_t));
        }
        pt_history_init(&t->history, epochs[i]);
        for (int e = 0; e < epochs[i]; e++) {
            size_t at = (size_t)i * max_epochs + (size_t)e;
            pt_history_append(&t->history, hist[0][at], hist[1][at], hist[2][at], hist[3][at], hist[4][at]);
        }
    }
    r->trials[kind] = trials;
    r->n_trials[kind] = n;
    rc = 0;
fail:
    CLOSE_ID(H5Gclose, hg);
    CLOSE_ID(H5Gclose, g);
    free(index); free(done); free(seed); free(rank); free(test_loss); free(test_acc);
    free(seconds); free(n_samples); free(epochs); free(samples);
    for (int k = 0; k < 5; k++) free(hist[k]);
    return rc;
}

static int read_config(H5Ctx *c, hid_t file, PtConfig *cfg) {
    hid_t g = -1;
    int rc = -1;
    char *value = NULL, *assignment = NULL;
    pt_config_defaults(cfg);
    H5TRY(c, g = H5Gopen2(file, "config", H5P_DEFAULT));
    H5O_info_t info;
    H5TRY(c, H5Oget_info2(g, &info, H5O_INFO_NUM_ATTRS));
    for (hsize_t i = 0; i < info.num_attrs; i++) {
        char name[256];
        ssize_t name_len = -1;
        H5TRY(c, name_len = H5Aget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
                                                 H5P_DEFAULT));
        if ((size_t)name_len >= sizeof name) {
            ctx_fail(c, "/config has an attribute with a name of %zd characters", name_len);
            goto fail;
        }
        if (strcmp(name, "ini") == 0) continue;
        if (attr_read_string(c, g, "/config", name, &value) < 0) goto fail;
        size_t n = strlen(name) + strlen(value) + 2;
        assignment = pt_malloc(n);
        snprintf(assignment, n, "%s=%s", name, value);
        PtError set_err;
        if (pt_config_set(cfg, assignment, "/config", &set_err) < 0) {
            ctx_fail(c, "%s", set_err.msg);
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
    CLOSE_ID(H5Gclose, g);
    return rc;
}

static int read_provenance(H5Ctx *c, hid_t file, PtResults *r) {
    hid_t g = -1;
    int rc = -1;
    H5TRY(c, g = H5Gopen2(file, "provenance", H5P_DEFAULT));
    struct { const char *name; char *dst; size_t size; } fields[8] = {
        {"version", r->version, sizeof r->version},
        {"git_commit", r->git_commit, sizeof r->git_commit},
        {"build_flags", r->build_flags, sizeof r->build_flags},
        {"blas", r->blas, sizeof r->blas},
        {"mpi_library", r->mpi_library, sizeof r->mpi_library},
        {"hosts", r->hosts, sizeof r->hosts},
        {"start_time", r->start_time, sizeof r->start_time},
        {"end_time", r->end_time, sizeof r->end_time}};
    for (int i = 0; i < 8; i++)
        if (attr_read_string_into(c, g, "/provenance", fields[i].name, fields[i].dst, fields[i].size) < 0)
            goto fail;
    if (attr_read_int(c, g, "/provenance", "mpi_size", &r->mpi_size) < 0) goto fail;
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "data_files.%s", data_file_names[i]);
        if (attr_read_string_into(c, g, "/provenance", name, r->data_files[i], sizeof r->data_files[i]) < 0)
            goto fail;
        snprintf(name, sizeof name, "data_sha256.%s", data_file_names[i]);
        if (attr_read_string_into(c, g, "/provenance", name, r->data_sha256[i], sizeof r->data_sha256[i]) < 0)
            goto fail;
    }
    rc = 0;
fail:
    CLOSE_ID(H5Gclose, g);
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
    H5Ctx ctx = {err, what, 0};
    H5Ctx *c = &ctx;
    hid_t fapl = -1, file = -1;
    char *format = NULL;
    H5TRY(c, fapl = H5Pcreate(H5P_FILE_ACCESS));
    H5TRY(c, H5Pset_fapl_sec2(fapl));
    H5TRY(c, H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG));
    file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (file < 0) {
        char detail[256] = "";
        H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_error, detail);
        CLOSE_ID(H5Pclose, fapl);
        return pt_error_set(err, "cannot read results file '%s': it is truncated or damaged%s%s%s", path,
                            detail[0] ? " (HDF5: " : "", detail, detail[0] ? ")" : "");
    }

    /* Is it ours? A missing or non-string format attribute means it is not. */
    {
        H5Ctx quiet = {NULL, what, 0};
        if (attr_read_string(&quiet, file, "/", "format", &format) < 0 || strcmp(format, format_name) != 0) {
            ctx_fail(c, "it is an HDF5 file but was not written by pretext (no root attribute format=\"%s\")",
                     format_name);
            goto fail;
        }
    }
    int version = 0;
    if (attr_read_int(c, file, "/", "format_version", &version) < 0) goto fail;
    if (version < 1 || version > PT_RESULTS_FORMAT_VERSION) {
        ctx_fail(c, "format version %d, but this pretext reads versions 1 to %d%s", version,
                 PT_RESULTS_FORMAT_VERSION, version > PT_RESULTS_FORMAT_VERSION ? " (written by a newer pretext)" : "");
        goto fail;
    }
    if (attr_read_int(c, file, "/", "complete", &r->complete) < 0) goto fail;

    if (read_config(c, file, &r->config) < 0) goto fail;
    if (read_provenance(c, file, r) < 0) goto fail;
    phase_init(&r->benchmark, 10, 1);
    phase_init(&r->pretext, 4, 1);
    if (read_phase(c, file, "benchmark", &r->benchmark) < 0) goto fail;
    if (read_phase(c, file, "pretext", &r->pretext) < 0) goto fail;
    for (int k = 0; k < PT_NUM_KINDS; k++)
        if (read_trials(c, file, r, k) < 0) goto fail;

    H5TRY(c, H5Fclose(file));
    file = -1;
    CLOSE_ID(H5Pclose, fapl);
    free(format);
    return 0;
fail:
    free(format);
    CLOSE_ID(H5Fclose, file);
    CLOSE_ID(H5Pclose, fapl);
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

int pt_results_check_writable(const char *path, PtError *err) {
    if (!path || path[0] == '\0') return pt_error_set(err, "results file: empty path");
    struct stat st;
    char folder[4096];
    folder_of(path, folder, sizeof folder);
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
    /* access() says yes to root everywhere, even on /proc or a read-only mount: really create the
     * file the saves will write (<path>.tmp) and remove it again. */
    char probe[4200];
    snprintf(probe, sizeof probe, "%s.tmp", path);
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0 && errno == EEXIST) {
        /* A leftover of a killed save: it is never read, so it may go. */
        if (unlink(probe) == 0) fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0644);
    }
    if (fd < 0)
        return pt_error_set(err, "cannot write results file '%s': cannot create '%s': %s", path, probe,
                            strerror(errno));
    close(fd);
    unlink(probe);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Keras weights file */

/* The Sequential model's layers in order, as Keras names them; first_tensor is the index of the
 * layer's kernel (its bias follows), or -1 for layers without weights. */
static const struct {
    const char *name;
    int first_tensor;
} keras_layers[] = {
    {"conv2d", PT_T_CONV1_KERNEL}, {"max_pooling2d", -1}, {"dropout", -1},
    {"conv2d_1", PT_T_CONV2_KERNEL}, {"max_pooling2d_1", -1}, {"dropout_1", -1},
    {"flatten", -1}, {"dense", PT_T_DENSE1_KERNEL}, {"dropout_2", -1},
    {"dense_1", PT_T_DENSE2_KERNEL},
};
#define N_KERAS_LAYERS ((int)(sizeof keras_layers / sizeof keras_layers[0]))

typedef struct {
    const float *params;
    int n_classes;
} KerasWeightsArg;

static int write_keras_layer(H5Ctx *c, hid_t file, int l, const PtTensorInfo *info, const float *params) {
    hid_t g = -1, inner = -1;
    int rc = -1;
    const char *name = keras_layers[l].name;
    H5TRY(c, g = H5Gcreate2(file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (keras_layers[l].first_tensor < 0) {
        if (attr_write_string_array(c, g, "weight_names", NULL, 0) < 0) goto fail;
    } else {
        char kernel_name[64], bias_name[64];
        snprintf(kernel_name, sizeof kernel_name, "%s/kernel:0", name);
        snprintf(bias_name, sizeof bias_name, "%s/bias:0", name);
        const char *names[2] = {kernel_name, bias_name};
        if (attr_write_string_array(c, g, "weight_names", names, 2) < 0) goto fail;
        H5TRY(c, inner = H5Gcreate2(g, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        static const char *const dataset_names[2] = {"kernel:0", "bias:0"};
        for (int w = 0; w < 2; w++) {
            const PtTensorInfo *t = &info[keras_layers[l].first_tensor + w];
            hsize_t dims[4];
            for (int d = 0; d < t->ndim; d++) dims[d] = (hsize_t)t->shape[d];
            if (dset_write(c, inner, dataset_names[w], H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, t->ndim, dims,
                           params + t->offset) < 0)
                goto fail;
        }
    }
    rc = 0;
fail:
    CLOSE_ID(H5Gclose, inner);
    CLOSE_ID(H5Gclose, g);
    return rc;
}

static int write_keras_weights(H5Ctx *c, hid_t file, const void *arg) {
    const KerasWeightsArg *a = arg;
    PtTensorInfo info[PT_NUM_TENSORS];
    pt_tensor_layout(a->n_classes, info);
    const char *names[N_KERAS_LAYERS];
    for (int l = 0; l < N_KERAS_LAYERS; l++) names[l] = keras_layers[l].name;
    if (attr_write_string_array(c, file, "layer_names", names, N_KERAS_LAYERS) < 0) return -1;
    if (attr_write_string(c, file, "backend", "tensorflow") < 0) return -1;
    if (attr_write_string(c, file, "keras_version", "2.3.0") < 0) return -1;
    for (int l = 0; l < N_KERAS_LAYERS; l++)
        if (write_keras_layer(c, file, l, info, a->params) < 0) return -1;
    return 0;
}

int pt_keras_weights_save(const char *path, const float *params, int n_classes, PtError *err) {
    if (n_classes < 2 || n_classes > PT_MAX_CLASSES)
        return pt_error_set(err, "cannot write Keras weights file '%s': %d classes", path, n_classes);
    KerasWeightsArg arg = {params, n_classes};
    return atomic_h5_write(path, "Keras weights file", write_keras_weights, &arg, err);
}
