/* idx.c: reading IDX files (the MNIST container format), raw or gzip-compressed, into uint8
 * arrays, and loading a whole data folder (train and test images and labels).
 *
 * IDX layout (big-endian): magic = 00 00 <type> <ndims>, then ndims uint32 sizes, then the data.
 * Images: type 0x08 (unsigned byte), 3 dims (n, rows, cols), magic 2051 = 0x00000803.
 * Labels: type 0x08, 1 dim (n), magic 2049 = 0x00000801.
 *
 * Every malformed input is reported as a recoverable error (PtError, return -1) naming the file
 * and the problem; on failure nothing is left allocated and the output struct is zeroed.
 * gzip is detected from the content (1f 8b), not the file name, and decompressed with zlib's
 * inflate directly so that truncation, corrupt data (CRC mismatch) and trailing garbage after
 * the compressed stream are all seen, which gzread would partly hide. */
#define _POSIX_C_SOURCE 200809L
#include "pt_data.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_TYPE_UBYTE 0x08
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAGIC_IMAGES 0x00000803u
/* No data set this program handles comes near this; it also keeps every size in 32 bits. */
#define IDX_MAX_DATA_BYTES (UINT64_C(1) << 31)
#define IDX_INBUF_BYTES (1u << 16)

/* ------------------------------------------------------------------------------------------ */
/* A byte source: the file read either as is or through inflate. */

typedef struct {
    const char *path;
    FILE *file;
    int is_gzip;
    z_stream zs;
    int zs_live;                            /* inflateInit2 succeeded: inflateEnd needed */
    int member_done;                        /* inflate reached the end of a gzip member */
    unsigned char inbuf[IDX_INBUF_BYTES];   /* compressed input (gzip only) */
    PtError *err;
} ByteSource;

/* Makes at least `want` compressed bytes available in zs (moving leftovers to the front),
 * unless the file ends first. Returns 0, or -1 on a read error. */
static int source_fill(ByteSource *src, size_t want) {
    if (src->zs.avail_in >= want) return 0;
    if (src->zs.avail_in > 0 && src->zs.next_in != src->inbuf)
        memmove(src->inbuf, src->zs.next_in, src->zs.avail_in);
    src->zs.next_in = src->inbuf;
    while (src->zs.avail_in < want && !feof(src->file)) {
        size_t got = fread(src->inbuf + src->zs.avail_in, 1, IDX_INBUF_BYTES - src->zs.avail_in,
                           src->file);
        if (got == 0 && ferror(src->file))
            return pt_error_set(src->err, "'%s': read error: %s", src->path, strerror(errno));
        src->zs.avail_in += (uInt)got;
    }
    return 0;
}

/* Reads up to n bytes into buf. Returns the number read (fewer than n only at the clean end of
 * the data), or -1 with the error set (read error, corrupt or truncated gzip, garbage after the
 * gzip stream). */
static int64_t source_read(ByteSource *src, uint8_t *buf, size_t n) {
    if (!src->is_gzip) {
        size_t got = fread(buf, 1, n, src->file);
        if (got < n && ferror(src->file))
            return pt_error_set(src->err, "'%s': read error: %s", src->path, strerror(errno));
        return (int64_t)got;
    }
    size_t done = 0;
    while (done < n) {
        if (src->member_done) {
            /* After a gzip member: the end of the file, another member (legal: concatenated
             * gzip), or garbage. */
            if (source_fill(src, 2) != 0) return -1;
            if (src->zs.avail_in == 0) break; /* clean end */
            if (src->zs.avail_in < 2 || src->zs.next_in[0] != 0x1f || src->zs.next_in[1] != 0x8b)
                return pt_error_set(src->err,
                                    "'%s': trailing garbage after the end of the gzip stream "
                                    "(the file is damaged or not a single gzip file)",
                                    src->path);
            if (inflateReset(&src->zs) != Z_OK)
                return pt_error_set(src->err, "'%s': zlib inflateReset failed", src->path);
            src->member_done = 0;
        }
        if (source_fill(src, 1) != 0) return -1;
        if (src->zs.avail_in == 0)
            return pt_error_set(src->err,
                                "'%s': truncated gzip file: the compressed stream ends early "
                                "(incomplete download? delete it and fetch it again)",
                                src->path);
        size_t chunk = n - done;
        if (chunk > UINT_MAX) chunk = UINT_MAX;
        src->zs.next_out = buf + done;
        src->zs.avail_out = (uInt)chunk;
        int ret = inflate(&src->zs, Z_NO_FLUSH);
        done += chunk - src->zs.avail_out;
        if (ret == Z_STREAM_END) {
            src->member_done = 1;
        } else if (ret == Z_OK) {
            /* progress made; loop */
        } else if (ret == Z_BUF_ERROR) {
            /* No progress possible with the input given: only happens when input ran out,
             * which the fill above rules out, so treat it as corrupt. */
            return pt_error_set(src->err, "'%s': corrupt gzip data (zlib: no progress possible)",
                                src->path);
        } else if (ret == Z_MEM_ERROR) {
            return pt_error_set(src->err, "'%s': out of memory while decompressing", src->path);
        } else {
            return pt_error_set(src->err, "'%s': corrupt gzip data (zlib: %s)", src->path,
                                src->zs.msg ? src->zs.msg : "unknown error");
        }
    }
    return (int64_t)done;
}

static void source_close(ByteSource *src) {
    if (src->zs_live) inflateEnd(&src->zs);
    src->zs_live = 0;
    if (src->file) fclose(src->file);
    src->file = NULL;
}

/* Opens path as a byte source: checks it is a non-empty regular file and detects gzip. */
static int source_open(ByteSource *src, const char *path, PtError *err) {
    memset(src, 0, sizeof *src);
    src->path = path;
    src->err = err;
    struct stat st;
    if (stat(path, &st) != 0)
        return pt_error_set(err, "'%s': cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return pt_error_set(err, "'%s': is a directory, expected an IDX file", path);
    if (!S_ISREG(st.st_mode))
        return pt_error_set(err, "'%s': is not a regular file, expected an IDX file", path);
    if (st.st_size == 0) return pt_error_set(err, "'%s': the file is empty", path);
    src->file = fopen(path, "rb");
    if (!src->file) return pt_error_set(err, "'%s': cannot open: %s", path, strerror(errno));

    unsigned char head[2];
    size_t got = fread(head, 1, 2, src->file);
    if (got < 2 && ferror(src->file)) {
        int saved = errno;
        source_close(src);
        return pt_error_set(err, "'%s': read error: %s", path, strerror(saved));
    }
    src->is_gzip = (got == 2 && head[0] == 0x1f && head[1] == 0x8b);
    if (src->is_gzip) {
        /* 16 + MAX_WBITS: gzip wrapper only, with CRC-32 and length checks of the trailer. */
        if (inflateInit2(&src->zs, 16 + MAX_WBITS) != Z_OK) {
            source_close(src);
            return pt_error_set(err, "'%s': zlib inflateInit2 failed", path);
        }
        src->zs_live = 1;
        memcpy(src->inbuf, head, 2);
        src->zs.next_in = src->inbuf;
        src->zs.avail_in = 2;
    } else if (fseek(src->file, 0, SEEK_SET) != 0) {
        int saved = errno;
        source_close(src);
        return pt_error_set(err, "'%s': cannot seek: %s", path, strerror(saved));
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The IDX container. */

static uint32_t be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static const char *magic_kind(uint32_t magic) {
    if (magic == IDX_MAGIC_IMAGES) return "an IDX image file";
    if (magic == IDX_MAGIC_LABELS) return "an IDX label file";
    return "not an IDX file of unsigned bytes";
}

/* Reads one IDX file with the expected magic into a freshly allocated buffer.
 * dims receives the ndims sizes; *data the (product of dims) bytes. */
static int idx_read(const char *path, uint32_t expected_magic, uint32_t *dims, uint8_t **data,
                    PtError *err) {
    *data = NULL;
    const char *what = expected_magic == IDX_MAGIC_IMAGES ? "image" : "label";
    const int ndims = (int)(expected_magic & 0xff);
    ByteSource *src = malloc(sizeof *src);
    if (!src) return pt_error_set(err, "'%s': out of memory", path);
    if (source_open(src, path, err) != 0) {
        free(src);
        return -1;
    }
    int status = -1;
    uint8_t *buf = NULL;
    const char *gz = src->is_gzip ? " (after gzip decompression)" : "";

    /* Header: magic and sizes. */
    uint8_t header[4 + 4 * 3];
    const size_t header_bytes = 4 + 4 * (size_t)ndims;
    int64_t got = source_read(src, header, 4);
    if (got < 0) goto done;
    if (got == 0) {
        pt_error_set(err, "'%s': the file is empty%s", path, gz);
        goto done;
    }
    if (got < 4) {
        pt_error_set(err, "'%s': header truncated: %" PRId64 " bytes, an IDX %s header has %zu%s",
                     path, got, what, header_bytes, gz);
        goto done;
    }
    uint32_t magic = be32(header);
    if (magic != expected_magic) {
        if ((magic >> 16) == 0 && ((magic >> 8) & 0xff) == IDX_TYPE_UBYTE &&
            (magic == IDX_MAGIC_IMAGES || magic == IDX_MAGIC_LABELS)) {
            pt_error_set(err,
                         "'%s': wrong magic number %u (0x%08x): this looks like %s, "
                         "expected an %s file with magic %u (0x%08x)",
                         path, magic, magic, magic_kind(magic), what, expected_magic,
                         expected_magic);
        } else if ((magic >> 16) == 0 && ((magic >> 8) & 0xff) == IDX_TYPE_UBYTE) {
            pt_error_set(err,
                         "'%s': wrong dimension count %u in magic 0x%08x: an IDX %s file has "
                         "dimension count %d (magic %u, 0x%08x)",
                         path, magic & 0xff, magic, what, ndims, expected_magic, expected_magic);
        } else if ((magic >> 16) == 0) {
            pt_error_set(err,
                         "'%s': wrong magic number 0x%08x: data type 0x%02x is not unsigned byte "
                         "(0x08); expected an %s file with magic %u (0x%08x)",
                         path, magic, (magic >> 8) & 0xff, what, expected_magic, expected_magic);
        } else {
            pt_error_set(err,
                         "'%s': wrong magic number 0x%08x: not an IDX file; expected an %s file "
                         "with magic %u (0x%08x)%s",
                         path, magic, what, expected_magic, expected_magic, gz);
        }
        goto done;
    }
    got = source_read(src, header + 4, 4 * (size_t)ndims);
    if (got < 0) goto done;
    if ((size_t)got < 4 * (size_t)ndims) {
        pt_error_set(err, "'%s': header truncated: %" PRId64 " bytes, an IDX %s header has %zu%s",
                     path, got + 4, what, header_bytes, gz);
        goto done;
    }
    uint64_t data_bytes = 1;
    for (int d = 0; d < ndims; d++) {
        dims[d] = be32(header + 4 + 4 * d);
        if (dims[d] == 0) {
            pt_error_set(err, "'%s': dimension %d of the header is zero (sizes must be >= 1)",
                         path, d);
            goto done;
        }
        /* data_bytes <= 2^31 before the multiply and dims[d] < 2^32: no overflow. */
        data_bytes *= dims[d];
        if (data_bytes > IDX_MAX_DATA_BYTES) {
            pt_error_set(err,
                         "'%s': header sizes too large: the data would exceed %" PRIu64
                         " bytes (dimension %d is %u); the header is corrupt",
                         path, IDX_MAX_DATA_BYTES, d, dims[d]);
            goto done;
        }
    }

    /* Raw files: compare with the file size before allocating anything big. */
    if (!src->is_gzip) {
        struct stat st;
        if (fstat(fileno(src->file), &st) == 0) {
            uint64_t file_bytes = (uint64_t)st.st_size;
            uint64_t want = header_bytes + data_bytes;
            if (file_bytes < want) {
                pt_error_set(err,
                             "'%s': data truncated: expected %" PRIu64 " bytes of %s data after "
                             "the header, found %" PRIu64,
                             path, data_bytes, what, file_bytes - header_bytes);
                goto done;
            }
            if (file_bytes > want) {
                pt_error_set(err,
                             "'%s': trailing garbage: %" PRIu64 " extra bytes after the expected "
                             "%" PRIu64 " bytes of %s data",
                             path, file_bytes - want, data_bytes, what);
                goto done;
            }
        }
    }

    /* Data: grown in steps for gzip, so a damaged header claiming 2 GiB over a tiny compressed
     * file does not allocate 2 GiB up front. */
    uint64_t capacity = src->is_gzip ? (data_bytes < (UINT64_C(1) << 24) ? data_bytes
                                                                          : (UINT64_C(1) << 24))
                                     : data_bytes;
    buf = malloc((size_t)capacity);
    if (!buf) {
        pt_error_set(err, "'%s': out of memory allocating %" PRIu64 " bytes", path, capacity);
        goto done;
    }
    uint64_t filled = 0;
    while (filled < data_bytes) {
        if (filled == capacity) {
            uint64_t grown = capacity * 2 < data_bytes ? capacity * 2 : data_bytes;
            uint8_t *bigger = realloc(buf, (size_t)grown);
            if (!bigger) {
                pt_error_set(err, "'%s': out of memory allocating %" PRIu64 " bytes", path, grown);
                goto done;
            }
            buf = bigger;
            capacity = grown;
        }
        uint64_t requested = capacity - filled;
        got = source_read(src, buf + filled, (size_t)requested);
        if (got < 0) goto done;
        filled += (uint64_t)got;
        if ((uint64_t)got < requested) break; /* end of the data */
    }
    if (filled < data_bytes) {
        pt_error_set(err,
                     "'%s': data truncated: expected %" PRIu64 " bytes of %s data after the "
                     "header, found %" PRIu64 "%s",
                     path, data_bytes, what, filled, gz);
        goto done;
    }

    /* Nothing may follow the data. */
    uint8_t scratch[4096];
    uint64_t extra = 0;
    for (;;) {
        got = source_read(src, scratch, sizeof scratch);
        if (got < 0) goto done;
        extra += (uint64_t)got;
        if (got < (int64_t)sizeof scratch || extra >= (UINT64_C(1) << 20)) break;
    }
    if (extra > 0) {
        pt_error_set(err,
                     "'%s': trailing garbage: %s%" PRIu64 " extra bytes after the expected "
                     "%" PRIu64 " bytes of %s data%s",
                     path, extra >= (UINT64_C(1) << 20) ? "at least " : "", extra, data_bytes,
                     what, gz);
        goto done;
    }
    *data = buf;
    buf = NULL;
    status = 0;

done:
    free(buf);
    source_close(src);
    free(src);
    return status;
}

int pt_idx_read_images(const char *path, PtImages *out, PtError *err) {
    memset(out, 0, sizeof *out);
    uint32_t dims[3];
    uint8_t *data;
    if (idx_read(path, IDX_MAGIC_IMAGES, dims, &data, err) != 0) return -1;
    out->n = dims[0];
    out->rows = dims[1];
    out->cols = dims[2];
    out->pixels = data;
    return 0;
}

int pt_idx_read_labels(const char *path, int n_classes, PtLabels *out, PtError *err) {
    memset(out, 0, sizeof *out);
    if (n_classes < 1 || n_classes > 256)
        return pt_error_set(err, "'%s': n_classes %d is outside [1, 256]", path, n_classes);
    uint32_t dims[1];
    uint8_t *data;
    if (idx_read(path, IDX_MAGIC_LABELS, dims, &data, err) != 0) return -1;
    for (uint32_t i = 0; i < dims[0]; i++) {
        if (data[i] >= n_classes) {
            pt_error_set(err, "'%s': label at index %u has value %u, outside [0, %d)", path, i,
                         data[i], n_classes);
            free(data);
            return -1;
        }
    }
    out->n = dims[0];
    out->labels = data;
    return 0;
}

void pt_images_free(PtImages *images) {
    if (!images) return;
    free(images->pixels);
    memset(images, 0, sizeof *images);
}

void pt_labels_free(PtLabels *labels) {
    if (!labels) return;
    free(labels->labels);
    memset(labels, 0, sizeof *labels);
}

/* ------------------------------------------------------------------------------------------ */
/* A data folder. */

static const char *const k_dataset_files[4] = {
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",  "t10k-labels-idx1-ubyte"};

/* Finds dir/name, else dir/name.gz. Returns 1 if found (path filled), 0 if neither exists,
 * -1 if the path does not fit. Anything that exists counts (a directory is reported later by
 * the reader, with a clearer message than "missing"). */
static int resolve_file(const char *dir, const char *name, char *path, size_t cap) {
    struct stat st;
    int len = snprintf(path, cap, "%s/%s", dir, name);
    if (len < 0 || (size_t)len >= cap) return -1;
    if (stat(path, &st) == 0) return 1;
    len = snprintf(path, cap, "%s/%s.gz", dir, name);
    if (len < 0 || (size_t)len >= cap) return -1;
    if (stat(path, &st) == 0) return 1;
    path[0] = '\0';
    return 0;
}

int pt_dataset_load(const char *dir, PtDataset *out, PtError *err) {
    memset(out, 0, sizeof *out);
    struct stat st;
    if (stat(dir, &st) != 0)
        return pt_error_set(err,
                            "data folder '%s' cannot be opened: %s; run scripts/fetch-data.sh "
                            "to download MNIST (or scripts/fetch-data.sh --fashion)",
                            dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return pt_error_set(err, "data folder '%s' is not a directory", dir);

    char missing[1024] = "";
    size_t missing_len = 0;
    for (int f = 0; f < 4; f++) {
        int found = resolve_file(dir, k_dataset_files[f], out->paths[f], sizeof out->paths[f]);
        if (found < 0) return pt_error_set(err, "data folder path '%s' is too long", dir);
        if (found == 0) {
            int w = snprintf(missing + missing_len, sizeof missing - missing_len, "%s%s[.gz]",
                             missing_len ? ", " : "", k_dataset_files[f]);
            if (w > 0) missing_len += (size_t)w;
            if (missing_len >= sizeof missing) missing_len = sizeof missing - 1;
        }
    }
    if (missing_len > 0) {
        memset(out->paths, 0, sizeof out->paths);
        return pt_error_set(err,
                            "data folder '%s' lacks %s (expected train-images-idx3-ubyte, "
                            "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                            "t10k-labels-idx1-ubyte, each raw or .gz); run scripts/fetch-data.sh "
                            "to download MNIST (or scripts/fetch-data.sh --fashion)",
                            dir, missing);
    }

    if (pt_idx_read_images(out->paths[0], &out->train_x, err) != 0) goto fail;
    if (pt_idx_read_labels(out->paths[1], PT_DATA_MAX_CLASSES, &out->train_y, err) != 0) goto fail;
    if (pt_idx_read_images(out->paths[2], &out->test_x, err) != 0) goto fail;
    if (pt_idx_read_labels(out->paths[3], PT_DATA_MAX_CLASSES, &out->test_y, err) != 0) goto fail;
    const PtImages *images[2] = {&out->train_x, &out->test_x};
    const PtLabels *labels[2] = {&out->train_y, &out->test_y};
    for (int s = 0; s < 2; s++) {
        if (images[s]->rows != PT_IMG_ROWS || images[s]->cols != PT_IMG_COLS) {
            pt_error_set(err, "'%s': images are %ux%u, expected %dx%d", out->paths[2 * s],
                         images[s]->rows, images[s]->cols, PT_IMG_ROWS, PT_IMG_COLS);
            goto fail;
        }
        if (images[s]->n != labels[s]->n) {
            pt_error_set(err, "image and label counts differ: '%s' has %u images but '%s' has %u "
                              "labels",
                         out->paths[2 * s], images[s]->n, out->paths[2 * s + 1], labels[s]->n);
            goto fail;
        }
    }
    /* The classes: every label of both sets is below this (and both sets count). */
    int largest = 0;
    for (int s = 0; s < 2; s++)
        for (uint32_t i = 0; i < labels[s]->n; i++)
            if (labels[s]->labels[i] > largest) largest = labels[s]->labels[i];
    out->n_classes = largest + 1;
    if (out->n_classes < 2) {
        pt_error_set(err, "'%s' and '%s' hold a single class (every label is %d): nothing to learn",
                     out->paths[1], out->paths[3], largest);
        goto fail;
    }
    return 0;

fail:
    pt_dataset_free(out);
    return -1;
}

void pt_dataset_free(PtDataset *ds) {
    if (!ds) return;
    pt_images_free(&ds->train_x);
    pt_images_free(&ds->test_x);
    pt_labels_free(&ds->train_y);
    pt_labels_free(&ds->test_y);
    memset(ds, 0, sizeof *ds);
}
