/* h5.c: checked HDF5 calls, read/write helpers and the atomic whole-file write (see h5.h). Only
 * serial drivers are used: files are built in memory (the core driver) and written with plain
 * write() calls, and read with sec2; only rank 0 of a job calls these. */
#define _POSIX_C_SOURCE 200809L
#include "h5.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------
 * Checked HDF5 calls */


/* Collects the innermost (most specific) HDF5 error description. */
herr_t pt_h5_innermost_error(unsigned n, const H5E_error2_t *desc, void *data) {
    char *out = data;
    if (n == 0 && desc->desc) snprintf(out, 256, "%s", desc->desc);
    return 0;
}

void pt_h5_fail(PtH5Ctx *c, int saved_errno, const char *call, const char *file, int line) {
    if (c->failed) return;
    c->failed = 1;
    /* Name the HDF5 function, not the whole expression ("dset = H5Dcreate2(...)" -> H5Dcreate2). */
    const char *fn = strstr(call, "H5");
    if (!fn) fn = call;
    size_t fn_len = strcspn(fn, "(");
    char detail[256] = "";
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, pt_h5_innermost_error, detail);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    pt_error_set(c->err, "%s: %.*s failed (%s:%d)%s%s%s%s%s", c->what, (int)fn_len, fn, base, line,
                 saved_errno ? ": " : "", saved_errno ? strerror(saved_errno) : "",
                 detail[0] ? " [HDF5: " : "", detail, detail[0] ? "]" : "");
}

/* A failure that is not an HDF5 call (a missing attribute, a wrong shape, ...). */
void pt_h5_failf(PtH5Ctx *c, const char *fmt, ...) {
    if (c->failed) return;
    c->failed = 1;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pt_error_set(c->err, "%s: %s", c->what, msg);
}

char *pt_h5_copy_string(const char *s) {
    size_t n = strlen(s);
    char *d = pt_malloc(n + 1);
    memcpy(d, s, n + 1);
    return d;
}

/* ---------------------------------------------------------------------------------------------
 * Writers */

hid_t pt_h5_group_create(PtH5Ctx *c, hid_t loc, const char *name) {
    hid_t g = -1;
    PT_H5_TRY(c, g = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    return g;
fail:
    return -1;
}

/* Fixed-length, null-padded ASCII string type of size n (>= 1): what numpy's 'S' dtype and
 * Keras write, and what R reads as character. */
hid_t pt_h5_fixed_string_type(PtH5Ctx *c, size_t n) {
    hid_t type = -1;
    PT_H5_TRY(c, type = H5Tcopy(H5T_C_S1));
    PT_H5_TRY(c, H5Tset_size(type, n ? n : 1));
    PT_H5_TRY(c, H5Tset_strpad(type, H5T_STR_NULLPAD));
    return type;
fail:
    PT_H5_CLOSE(H5Tclose, type);
    return -1;
}

int pt_h5_attr_write_string(PtH5Ctx *c, hid_t loc, const char *name, const char *value) {
    hid_t type = -1, space = -1, attr = -1;
    int rc = -1;
    size_t len = strlen(value);
    char empty[1] = {0};
    if ((type = pt_h5_fixed_string_type(c, len)) < 0) goto fail;
    PT_H5_TRY(c, space = H5Screate(H5S_SCALAR));
    PT_H5_TRY(c, attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT));
    PT_H5_TRY(c, H5Awrite(attr, type, len ? value : empty));
    rc = 0;
fail:
    PT_H5_CLOSE(H5Aclose, attr);
    PT_H5_CLOSE(H5Sclose, space);
    PT_H5_CLOSE(H5Tclose, type);
    return rc;
}

/* A 1-D attribute of n fixed-length strings (n may be 0: an empty array). */
int pt_h5_attr_write_string_array(PtH5Ctx *c, hid_t loc, const char *name, const char *const *values,
                                   int n) {
    hid_t type = -1, space = -1, attr = -1;
    int rc = -1;
    size_t width = 1;
    for (int i = 0; i < n; i++)
        if (strlen(values[i]) > width) width = strlen(values[i]);
    char *buf = pt_calloc((size_t)(n > 0 ? n : 1), width); /* (n, width) null-padded */
    for (int i = 0; i < n; i++) memcpy(buf + (size_t)i * width, values[i], strlen(values[i]));
    hsize_t dims[1] = {(hsize_t)n};
    if ((type = pt_h5_fixed_string_type(c, width)) < 0) goto fail;
    PT_H5_TRY(c, space = H5Screate_simple(1, dims, NULL));
    PT_H5_TRY(c, attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT));
    if (n > 0) PT_H5_TRY(c, H5Awrite(attr, type, buf));
    rc = 0;
fail:
    free(buf);
    PT_H5_CLOSE(H5Aclose, attr);
    PT_H5_CLOSE(H5Sclose, space);
    PT_H5_CLOSE(H5Tclose, type);
    return rc;
}

int pt_h5_attr_write_int(PtH5Ctx *c, hid_t loc, const char *name, int value) {
    hid_t space = -1, attr = -1;
    int rc = -1;
    PT_H5_TRY(c, space = H5Screate(H5S_SCALAR));
    PT_H5_TRY(c, attr = H5Acreate2(loc, name, H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT));
    PT_H5_TRY(c, H5Awrite(attr, H5T_NATIVE_INT, &value));
    rc = 0;
fail:
    PT_H5_CLOSE(H5Aclose, attr);
    PT_H5_CLOSE(H5Sclose, space);
    return rc;
}

/* A dataset of rank 0 (scalar), 1 or 2; data may be NULL only when it has no elements. */
int pt_h5_dset_write(PtH5Ctx *c, hid_t loc, const char *name, hid_t file_type, hid_t mem_type,
                      int rank, const hsize_t *dims, const void *data) {
    hid_t space = -1, dset = -1;
    int rc = -1;
    hsize_t count = 1;
    for (int i = 0; i < rank; i++) count *= dims[i];
    if (rank == 0)
        PT_H5_TRY(c, space = H5Screate(H5S_SCALAR));
    else
        PT_H5_TRY(c, space = H5Screate_simple(rank, dims, NULL));
    PT_H5_TRY(c, dset = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (count > 0) PT_H5_TRY(c, H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
    rc = 0;
fail:
    PT_H5_CLOSE(H5Dclose, dset);
    PT_H5_CLOSE(H5Sclose, space);
    return rc;
}

int pt_h5_dset_write_double(PtH5Ctx *c, hid_t loc, const char *name, double value) {
    return pt_h5_dset_write(c, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 0, NULL, &value);
}

int pt_h5_dset_write_doubles(PtH5Ctx *c, hid_t loc, const char *name, int rank, const hsize_t *dims,
                              const double *data) {
    return pt_h5_dset_write(c, loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, rank, dims, data);
}

/* ---------------------------------------------------------------------------------------------
 * Readers */

int pt_h5_attr_exists(PtH5Ctx *c, hid_t loc, const char *name, int *exists) {
    htri_t e = -1;
    PT_H5_TRY(c, e = H5Aexists(loc, name));
    *exists = e > 0;
    return 0;
fail:
    return -1;
}

/* Reads a scalar (or one-element) string attribute, fixed- or variable-length; *out is malloc'ed. */
/* Opens attribute name of loc, which must exist and hold one value of class cls (what names the
 * class in the message); *attr and *type are left open for the caller to close. */
int pt_h5_attr_open_single(PtH5Ctx *c, hid_t loc, const char *where, const char *name, H5T_class_t cls,
                            const char *what, hid_t *attr, hid_t *type) {
    hid_t space = -1;
    int rc = -1, exists = 0;
    *attr = *type = -1;
    if (pt_h5_attr_exists(c, loc, name, &exists) < 0) goto fail;
    if (!exists) {
        pt_h5_failf(c, "attribute '%s' of %s is missing", name, where);
        goto fail;
    }
    PT_H5_TRY(c, *attr = H5Aopen(loc, name, H5P_DEFAULT));
    PT_H5_TRY(c, *type = H5Aget_type(*attr));
    PT_H5_TRY(c, space = H5Aget_space(*attr));
    hssize_t n_points = -1;
    PT_H5_TRY(c, n_points = H5Sget_simple_extent_npoints(space));
    if (H5Tget_class(*type) != cls || n_points != 1) {
        pt_h5_failf(c, "attribute '%s' of %s is not a single %s", name, where, what);
        goto fail;
    }
    rc = 0;
fail:
    PT_H5_CLOSE(H5Sclose, space);
    if (rc < 0) {
        PT_H5_CLOSE(H5Tclose, *type);
        PT_H5_CLOSE(H5Aclose, *attr);
    }
    return rc;
}

int pt_h5_attr_read_string(PtH5Ctx *c, hid_t loc, const char *where, const char *name, char **out) {
    hid_t attr = -1, type = -1, mem_type = -1;
    int rc = -1;
    char *buf = NULL;
    *out = NULL;
    if (pt_h5_attr_open_single(c, loc, where, name, H5T_STRING, "string", &attr, &type) < 0) goto fail;
    htri_t is_variable = -1;
    PT_H5_TRY(c, is_variable = H5Tis_variable_str(type));
    PT_H5_TRY(c, mem_type = H5Tcopy(H5T_C_S1));
    if (is_variable) {
        char *value = NULL;
        PT_H5_TRY(c, H5Tset_size(mem_type, H5T_VARIABLE));
        PT_H5_TRY(c, H5Aread(attr, mem_type, &value));
        *out = pt_h5_copy_string(value ? value : "");
        H5free_memory(value);
    } else {
        size_t size = H5Tget_size(type);
        if (size == 0) {
            pt_h5_failf(c, "attribute '%s' of %s has no size", name, where);
            goto fail;
        }
        /* One byte more than stored, null-terminated: the conversion keeps every character. */
        PT_H5_TRY(c, H5Tset_size(mem_type, size + 1));
        PT_H5_TRY(c, H5Tset_strpad(mem_type, H5T_STR_NULLTERM));
        buf = pt_calloc(size + 2, 1);
        PT_H5_TRY(c, H5Aread(attr, mem_type, buf));
        *out = buf;
        buf = NULL;
    }
    rc = 0;
fail:
    free(buf);
    PT_H5_CLOSE(H5Tclose, mem_type);
    PT_H5_CLOSE(H5Tclose, type);
    PT_H5_CLOSE(H5Aclose, attr);
    return rc;
}

/* Reads a string attribute into a fixed buffer; too long is an error. */
int pt_h5_attr_read_string_into(PtH5Ctx *c, hid_t loc, const char *where, const char *name, char *dst,
                                 size_t dst_size) {
    char *value = NULL;
    if (pt_h5_attr_read_string(c, loc, where, name, &value) < 0) return -1;
    if (strlen(value) >= dst_size) {
        pt_h5_failf(c, "attribute '%s' of %s is too long (%zu characters)", name, where, strlen(value));
        free(value);
        return -1;
    }
    memcpy(dst, value, strlen(value) + 1);
    free(value);
    return 0;
}

int pt_h5_attr_read_int(PtH5Ctx *c, hid_t loc, const char *where, const char *name, int *value) {
    hid_t attr = -1, type = -1;
    int rc = -1;
    if (pt_h5_attr_open_single(c, loc, where, name, H5T_INTEGER, "integer", &attr, &type) < 0) goto fail;
    PT_H5_TRY(c, H5Aread(attr, H5T_NATIVE_INT, value));
    rc = 0;
fail:
    PT_H5_CLOSE(H5Tclose, type);
    PT_H5_CLOSE(H5Aclose, attr);
    return rc;
}

int pt_h5_link_exists(PtH5Ctx *c, hid_t loc, const char *name, int *exists) {
    htri_t e = -1;
    PT_H5_TRY(c, e = H5Lexists(loc, name, H5P_DEFAULT));
    *exists = e > 0;
    return 0;
fail:
    return -1;
}

/* The dimensions of dataset name (which must have the given rank). */
int pt_h5_dset_dims(PtH5Ctx *c, hid_t loc, const char *where, const char *name, int rank, hsize_t *dims) {
    hid_t dset = -1, space = -1;
    int rc = -1, exists = 0;
    if (pt_h5_link_exists(c, loc, name, &exists) < 0) goto fail;
    if (!exists) {
        pt_h5_failf(c, "dataset %s/%s is missing", where, name);
        goto fail;
    }
    PT_H5_TRY(c, dset = H5Dopen2(loc, name, H5P_DEFAULT));
    PT_H5_TRY(c, space = H5Dget_space(dset));
    int file_rank = -1;
    PT_H5_TRY(c, file_rank = H5Sget_simple_extent_ndims(space));
    if (file_rank != rank) {
        pt_h5_failf(c, "dataset %s/%s has %d dimensions, expected %d", where, name, file_rank, rank);
        goto fail;
    }
    if (rank > 0) PT_H5_TRY(c, H5Sget_simple_extent_dims(space, dims, NULL));
    rc = 0;
fail:
    PT_H5_CLOSE(H5Sclose, space);
    PT_H5_CLOSE(H5Dclose, dset);
    return rc;
}

/* Reads dataset name, which must have exactly the expected rank and dimensions, converting to
 * mem_type. */
int pt_h5_dset_read(PtH5Ctx *c, hid_t loc, const char *where, const char *name, hid_t mem_type, int rank,
                     const hsize_t *expect, void *buf) {
    hid_t dset = -1;
    int rc = -1;
    hsize_t dims[4] = {0, 0, 0, 0};
    hsize_t count = 1;
    if (pt_h5_dset_dims(c, loc, where, name, rank, dims) < 0) goto fail;
    for (int i = 0; i < rank; i++) {
        if (dims[i] != expect[i]) {
            pt_h5_failf(c, "dataset %s/%s has size %llu in dimension %d, expected %llu", where, name,
                     (unsigned long long)dims[i], i, (unsigned long long)expect[i]);
            goto fail;
        }
        count *= dims[i];
    }
    PT_H5_TRY(c, dset = H5Dopen2(loc, name, H5P_DEFAULT));
    if (count > 0) PT_H5_TRY(c, H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
    rc = 0;
fail:
    PT_H5_CLOSE(H5Dclose, dset);
    return rc;
}

int pt_h5_dset_read_double(PtH5Ctx *c, hid_t loc, const char *where, const char *name, double *value) {
    return pt_h5_dset_read(c, loc, where, name, H5T_NATIVE_DOUBLE, 0, NULL, value);
}

/* ---------------------------------------------------------------------------------------------
 * Atomic file writing */

/* The folder part of path ("." when it has none). */
void pt_h5_folder_of(const char *path, char *dst, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dst, n, ".");
    else if (slash == path)
        snprintf(dst, n, "/");
    else
        snprintf(dst, n, "%.*s", (int)(slash - path), path);
}

int pt_h5_fsync_path(const char *path, int is_folder) {
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


/* Writes all n bytes to fd, retrying short writes and EINTR. */
int pt_h5_write_all(int fd, const unsigned char *data, size_t n) {
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
 * image to a unique "<path>.tmp-XXXXXX" with plain checked write() calls, fsyncs it, renames it over path and
 * fsyncs the folder. On failure removes the temporary file: path is untouched.
 *
 * Why not the sec2 driver straight to disk: when the disk fills up during H5Fflush/H5Fclose,
 * HDF5 1.10 leaves a half-closed file behind that crashes the library at exit. In memory, HDF5
 * cannot meet a disk error, and errno from write()/fsync() names the cause exactly. */
int pt_h5_atomic_write(const char *path, const char *kind, PtH5Writer fn, const void *arg,
                           PtError *err) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char what[5120];
    snprintf(what, sizeof what, "cannot write %s '%s'", kind, path);
    PtH5Ctx ctx = {err, what, 0};
    PtH5Ctx *c = &ctx;
    if (path[0] == '\0') return pt_error_set(err, "cannot write %s: empty path", kind);
    size_t len = strlen(path);
    if (len + 5 > 4096) return pt_error_set(err, "%s: path too long", what);
    char tmp[4096 + 16];
    snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", path); /* made unique by mkstemp below */
    char folder[4096];
    pt_h5_folder_of(path, folder, sizeof folder);

    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return pt_error_set(err, "%s: it is a folder", what);

    hid_t fapl = -1, file = -1;
    int fd = -1, created = 0;
    unsigned char *image = NULL;
    ssize_t image_size = -1;

    /* 1. The file, in memory. */
    PT_H5_TRY(c, fapl = H5Pcreate(H5P_FILE_ACCESS));
    PT_H5_TRY(c, H5Pset_fapl_core(fapl, (size_t)1 << 20, 0));
    /* Closing the file closes every object still open in it (cleanup after a failure). */
    PT_H5_TRY(c, H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG));
    PT_H5_TRY(c, file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl));
    if (fn(c, file, arg) < 0) goto fail;
    PT_H5_TRY(c, H5Fflush(file, H5F_SCOPE_GLOBAL));
    PT_H5_TRY(c, image_size = H5Fget_file_image(file, NULL, 0));
    image = pt_malloc((size_t)image_size);
    PT_H5_TRY(c, H5Fget_file_image(file, image, (size_t)image_size));
    herr_t close_status = H5Fclose(file);
    file = -1;
    if (close_status < 0) {
        pt_h5_fail(c, errno, "H5Fclose", __FILE__, __LINE__);
        goto fail;
    }
    PT_H5_CLOSE(H5Pclose, fapl);

    /* 2. The image, to disk under the temporary name. */
    /* A name no other process uses (never a fixed "<path>.tmp" that two writers would share),
     * with the permissions an ordinary create would give (mkstemp makes it 0600). */
    fd = mkstemp(tmp);
    if (fd >= 0) {
        mode_t mask = umask(0);
        umask(mask);
        if (fchmod(fd, 0666 & ~mask) < 0) { /* harmless if refused: the file stays private */ }
    }
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT && stat(folder, &st) < 0)
            pt_h5_failf(c, "the folder '%s' does not exist", folder);
        else
            pt_h5_failf(c, "cannot create '%s': %s", tmp, strerror(e));
        goto fail;
    }
    created = 1;
    if (pt_h5_write_all(fd, image, (size_t)image_size) < 0) {
        pt_h5_failf(c, "cannot write '%s': %s", tmp, strerror(errno));
        goto fail;
    }
    if (fsync(fd) < 0) {
        pt_h5_failf(c, "cannot flush '%s' to disk: %s", tmp, strerror(errno));
        goto fail;
    }
    int close_fd = close(fd);
    fd = -1;
    if (close_fd < 0) {
        pt_h5_failf(c, "cannot close '%s': %s", tmp, strerror(errno));
        goto fail;
    }

    /* 3. Into place. */
    if (rename(tmp, path) < 0) {
        pt_h5_failf(c, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        goto fail;
    }
    free(image);
    if (pt_h5_fsync_path(folder, 1) < 0)
        return pt_error_set(err, "wrote %s '%s' but cannot flush its folder '%s' to disk: %s", kind,
                            path, folder, strerror(errno));
    return 0;
fail:
    free(image);
    if (fd >= 0) close(fd);
    PT_H5_CLOSE(H5Fclose, file);
    PT_H5_CLOSE(H5Pclose, fapl);
    if (created) unlink(tmp);
    if (!ctx.failed) pt_error_set(err, "%s: unknown failure", what);
    return -1;
}


int pt_h5_dset_write_strings(PtH5Ctx *c, hid_t loc, const char *name, const char *const *values, int n) {
    hid_t type = -1;
    int rc = -1;
    size_t width = 1;
    for (int i = 0; i < n; i++)
        if (strlen(values[i]) > width) width = strlen(values[i]);
    char *buf = pt_calloc((size_t)(n > 0 ? n : 1), width); /* (n, width) null-padded */
    for (int i = 0; i < n; i++) memcpy(buf + (size_t)i * width, values[i], strlen(values[i]));
    hsize_t dims[1] = {(hsize_t)n};
    if ((type = pt_h5_fixed_string_type(c, width)) < 0) goto fail;
    if (pt_h5_dset_write(c, loc, name, type, type, 1, dims, buf) < 0) goto fail;
    rc = 0;
fail:
    free(buf);
    PT_H5_CLOSE(H5Tclose, type);
    return rc;
}

int pt_h5_dset_read_strings(PtH5Ctx *c, hid_t loc, const char *where, const char *name, int n, char ***out) {
    hid_t dset = -1, type = -1, mem = -1;
    int rc = -1;
    char *buf = NULL;
    *out = NULL;
    hsize_t dims[1];
    if (pt_h5_dset_dims(c, loc, where, name, 1, dims) < 0) goto fail;
    if ((int)dims[0] != n) {
        pt_h5_failf(c, "dataset %s/%s has %llu rows, expected %d", where, name, (unsigned long long)dims[0], n);
        goto fail;
    }
    PT_H5_TRY(c, dset = H5Dopen2(loc, name, H5P_DEFAULT));
    PT_H5_TRY(c, type = H5Dget_type(dset));
    if (H5Tget_class(type) != H5T_STRING) {
        pt_h5_failf(c, "dataset %s/%s does not hold strings", where, name);
        goto fail;
    }
    htri_t variable = -1;
    PT_H5_TRY(c, variable = H5Tis_variable_str(type));
    if (variable) {
        pt_h5_failf(c, "dataset %s/%s holds variable-length strings (pretext writes fixed-length ones)", where, name);
        goto fail;
    }
    size_t width = H5Tget_size(type);
    PT_H5_TRY(c, mem = H5Tcopy(H5T_C_S1));
    PT_H5_TRY(c, H5Tset_size(mem, width + 1)); /* one byte more: every string null-terminated */
    PT_H5_TRY(c, H5Tset_strpad(mem, H5T_STR_NULLTERM));
    buf = pt_calloc((size_t)(n > 0 ? n : 1), width + 1);
    if (n > 0) PT_H5_TRY(c, H5Dread(dset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
    *out = pt_calloc((size_t)(n > 0 ? n : 1), sizeof **out);
    for (int i = 0; i < n; i++) (*out)[i] = pt_h5_copy_string(buf + (size_t)i * (width + 1));
    rc = 0;
fail:
    free(buf);
    PT_H5_CLOSE(H5Tclose, mem);
    PT_H5_CLOSE(H5Tclose, type);
    PT_H5_CLOSE(H5Dclose, dset);
    return rc;
}
