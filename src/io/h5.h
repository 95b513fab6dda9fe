/* h5.h: private to the io library: checked HDF5 calls and small read/write helpers that report
 * failures into a PtError (the call, file:line, errno and the innermost HDF5 error description),
 * and the atomic whole-file write (built in memory, written to a unique temporary file, fsynced,
 * renamed into place) that every file pretext writes goes through. */
#ifndef PT_IO_H5_H
#define PT_IO_H5_H

#include <errno.h>
#include <hdf5.h>
#include <stddef.h>

#include "pt_util.h"

/* Where a failure is reported: only the first failure of a context is kept. */
typedef struct {
    PtError *err;
    const char *what;   /* e.g. "cannot write results file 'r.h5'" */
    int failed;         /* only the first failure is reported */
} PtH5Ctx;

/* Evaluates an HDF5 call (herr_t, htri_t or hid_t); a negative result fails the context and
 * jumps to the enclosing function's "fail:" label. */
#define PT_H5_TRY(c, expr)                                                  \
    do {                                                                \
        errno = 0;                                                      \
        if ((expr) < 0) {                                               \
            pt_h5_fail((c), errno, #expr, __FILE__, __LINE__);             \
            goto fail;                                                  \
        }                                                               \
    } while (0)

#define PT_H5_CLOSE(fn, id) do { if ((id) >= 0) fn(id); (id) = -1; } while (0)


/* Builds a file's content into an open HDF5 file; returns 0, or -1 with the context failed. */
typedef int (*PtH5Writer)(PtH5Ctx *c, hid_t file, const void *arg);

/* H5Ewalk2 callback: copies the innermost (most specific) HDF5 error description into data
 * (a char[256]). */
herr_t pt_h5_innermost_error(unsigned n, const H5E_error2_t *desc, void *data);

void pt_h5_fail(PtH5Ctx *c, int saved_errno, const char *call, const char *file, int line);

/* A failure that is not an HDF5 call (a missing attribute, a wrong shape, ...). */
void pt_h5_failf(PtH5Ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

hid_t pt_h5_group_create(PtH5Ctx *c, hid_t loc, const char *name);

/* Fixed-length, null-padded ASCII string type of size n (>= 1): what numpy's 'S' dtype and
 * Keras write, and what R reads as character. */
hid_t pt_h5_fixed_string_type(PtH5Ctx *c, size_t n);

int pt_h5_attr_write_string(PtH5Ctx *c, hid_t loc, const char *name, const char *value);

/* A 1-D attribute of n fixed-length strings (n may be 0: an empty array). */
int pt_h5_attr_write_string_array(PtH5Ctx *c, hid_t loc, const char *name, const char *const *values,
                                   int n);

int pt_h5_attr_write_int(PtH5Ctx *c, hid_t loc, const char *name, int value);

/* A dataset of rank 0 (scalar), 1 or 2; data may be NULL only when it has no elements. */
int pt_h5_dset_write(PtH5Ctx *c, hid_t loc, const char *name, hid_t file_type, hid_t mem_type,
                      int rank, const hsize_t *dims, const void *data);

int pt_h5_dset_write_double(PtH5Ctx *c, hid_t loc, const char *name, double value);

int pt_h5_dset_write_doubles(PtH5Ctx *c, hid_t loc, const char *name, int rank, const hsize_t *dims,
                              const double *data);

int pt_h5_attr_exists(PtH5Ctx *c, hid_t loc, const char *name, int *exists);

/* Opens attribute name of loc, which must exist and hold one value of class cls (what names the
 * class in the message); *attr and *type are left open for the caller to close. */
int pt_h5_attr_open_single(PtH5Ctx *c, hid_t loc, const char *where, const char *name, H5T_class_t cls,
                            const char *what, hid_t *attr, hid_t *type);

int pt_h5_attr_read_string(PtH5Ctx *c, hid_t loc, const char *where, const char *name, char **out);

/* Reads a string attribute into a fixed buffer; too long is an error. */
int pt_h5_attr_read_string_into(PtH5Ctx *c, hid_t loc, const char *where, const char *name, char *dst,
                                 size_t dst_size);

int pt_h5_attr_read_int(PtH5Ctx *c, hid_t loc, const char *where, const char *name, int *value);

int pt_h5_link_exists(PtH5Ctx *c, hid_t loc, const char *name, int *exists);

/* The dimensions of dataset name (which must have the given rank). */
int pt_h5_dset_dims(PtH5Ctx *c, hid_t loc, const char *where, const char *name, int rank, hsize_t *dims);

/* Reads dataset name, which must have exactly the expected rank and dimensions, converting to
 * mem_type. */
int pt_h5_dset_read(PtH5Ctx *c, hid_t loc, const char *where, const char *name, hid_t mem_type, int rank,
                     const hsize_t *expect, void *buf);

int pt_h5_dset_read_double(PtH5Ctx *c, hid_t loc, const char *where, const char *name, double *value);

/* The folder part of path ("." when it has none). */
void pt_h5_folder_of(const char *path, char *dst, size_t n);

int pt_h5_fsync_path(const char *path, int is_folder);

/* Writes all n bytes to fd, retrying short writes and EINTR. */
int pt_h5_write_all(int fd, const unsigned char *data, size_t n);

/* Builds the whole file with fn in memory (HDF5's core driver, no backing store), then writes the
 * image to "<path>.tmp" with plain checked write() calls, fsyncs it, renames it over path and
 * fsyncs the folder. On failure removes the temporary file: path is untouched.
 *
 * Why not the sec2 driver straight to disk: when the disk fills up during H5Fflush/H5Fclose,
 * HDF5 1.10 leaves a half-closed file behind that crashes the library at exit. In memory, HDF5
 * cannot meet a disk error, and errno from write()/fsync() names the cause exactly. */
int pt_h5_atomic_write(const char *path, const char *kind, PtH5Writer fn, const void *arg,
                           PtError *err);

/* A 1-D dataset of n fixed-length, null-padded strings (the width of the longest; n may be 0). */
int pt_h5_dset_write_strings(PtH5Ctx *c, hid_t loc, const char *name, const char *const *values, int n);
/* Reads such a dataset, which must have n rows, into *out: n malloc'ed strings in a malloc'ed
 * array (the caller frees both). */
int pt_h5_dset_read_strings(PtH5Ctx *c, hid_t loc, const char *where, const char *name, int n, char ***out);

#endif
