/* test_idx.c: the IDX reader and the data-folder loader. Small IDX files (raw and gzip) are
 * written into a temporary folder; a good file must round-trip and every malformed case must be
 * rejected with -1, an empty output and a message naming the file and the problem. Then the real
 * MNIST (raw, in the repository's data/mnist) and Fashion-MNIST (gzip, Debian's package) load. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "pt_data.h"
#include "pt_rng.h"

/* ------------------------------------------------------------------------------------------ */
/* Helpers: a temporary folder, IDX byte images, raw and gzip writers. */

static char g_tmpdir[256];

static int setup_tmpdir(void **state) {
    (void)state;
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/pretext_test_idx_XXXXXX");
    assert_non_null(mkdtemp(g_tmpdir));
    return 0;
}

static int teardown_tmpdir(void **state) {
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmpdir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* Path of a file in the temporary folder (a few rotating static buffers). */
static const char *tmp_path(const char *name) {
    static char paths[8][512];
    static int next = 0;
    char *p = paths[next++ % 8];
    snprintf(p, 512, "%s/%s", g_tmpdir, name);
    return p;
}

typedef struct {
    uint8_t *bytes;
    size_t len;
} Buffer;

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* An IDX file image: magic, ndims sizes, then data_len bytes of data (not necessarily matching
 * the sizes, to build malformed files). */
static Buffer make_idx(uint32_t magic, const uint32_t *dims, int ndims, const uint8_t *data,
                       size_t data_len) {
    Buffer b;
    b.len = 4 + 4 * (size_t)ndims + data_len;
    b.bytes = malloc(b.len);
    assert_non_null(b.bytes);
    put_be32(b.bytes, magic);
    for (int d = 0; d < ndims; d++) put_be32(b.bytes + 4 + 4 * d, dims[d]);
    if (data_len) memcpy(b.bytes + 4 + 4 * ndims, data, data_len);
    return b;
}

static void write_raw(const char *path, const void *bytes, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Written with zlib's gzopen, independent of the reader's inflate path. mode "wb" or "ab". */
static void write_gz_mode(const char *path, const void *bytes, size_t len, const char *mode) {
    gzFile g = gzopen(path, mode);
    assert_non_null(g);
    if (len) assert_int_equal(gzwrite(g, bytes, (unsigned)len), (int)len);
    assert_int_equal(gzclose(g), Z_OK);
}
static void write_gz(const char *path, const void *bytes, size_t len) {
    write_gz_mode(path, bytes, len, "wb");
}

static Buffer read_whole(const char *path) {
    Buffer b;
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    b.len = (size_t)st.st_size;
    b.bytes = malloc(b.len ? b.len : 1);
    assert_non_null(b.bytes);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(b.bytes, 1, b.len, f), b.len);
    fclose(f);
    return b;
}

/* Random pixels from a seeded stream (values 0..255). */
static uint8_t *random_bytes(size_t len, uint64_t seed, uint32_t below) {
    PtRng rng;
    pt_rng_seed(&rng, seed);
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++) p[i] = (uint8_t)pt_rng_below(&rng, below);
    return p;
}

static void assert_contains(const char *haystack, const char *needle) {
    if (strstr(haystack, needle) == NULL)
        fail_msg("message \"%s\" does not contain \"%s\"", haystack, needle);
}

/* Reading path as images must fail with a message naming the file and containing each of the
 * given keywords (NULL-terminated); the output must be left empty. */
static void expect_images_error(const char *path, ...) {
    PtImages im;
    memset(&im, 0xAB, sizeof im);
    PtError err = {{0}};
    assert_int_equal(pt_idx_read_images(path, &im, &err), -1);
    print_message("  rejected as expected: %s\n", err.msg);
    assert_contains(err.msg, path);
    va_list ap;
    va_start(ap, path);
    for (const char *kw = va_arg(ap, const char *); kw; kw = va_arg(ap, const char *))
        assert_contains(err.msg, kw);
    va_end(ap);
    assert_null(im.pixels);
    assert_int_equal(im.n, 0);
}

static void expect_labels_error(const char *path, int n_classes, ...) {
    PtLabels lb;
    memset(&lb, 0xAB, sizeof lb);
    PtError err = {{0}};
    assert_int_equal(pt_idx_read_labels(path, n_classes, &lb, &err), -1);
    print_message("  rejected as expected: %s\n", err.msg);
    assert_contains(err.msg, path);
    va_list ap;
    va_start(ap, n_classes);
    for (const char *kw = va_arg(ap, const char *); kw; kw = va_arg(ap, const char *))
        assert_contains(err.msg, kw);
    va_end(ap);
    assert_null(lb.labels);
    assert_int_equal(lb.n, 0);
}

static const uint32_t k_good_dims[3] = {3, 4, 5}; /* 3 images of 4 x 5 */
#define GOOD_BYTES (3 * 4 * 5)

/* ------------------------------------------------------------------------------------------ */
/* Good files. */

static void check_good_images(const char *path, const uint8_t *pixels) {
    PtImages im;
    PtError err = {{0}};
    int rc = pt_idx_read_images(path, &im, &err);
    if (rc != 0) fail_msg("good file rejected: %s", err.msg);
    assert_int_equal(im.n, 3);
    assert_int_equal(im.rows, 4);
    assert_int_equal(im.cols, 5);
    assert_memory_equal(im.pixels, pixels, GOOD_BYTES);
    pt_images_free(&im);
    assert_null(im.pixels);
}

static void test_good_images_raw_and_gzip(void **state) {
    (void)state;
    uint8_t *pixels = random_bytes(GOOD_BYTES, 11, 256);
    Buffer b = make_idx(0x00000803, k_good_dims, 3, pixels, GOOD_BYTES);
    write_raw(tmp_path("good-images"), b.bytes, b.len);
    check_good_images(tmp_path("good-images"), pixels);
    write_gz(tmp_path("good-images.gz"), b.bytes, b.len);
    check_good_images(tmp_path("good-images.gz"), pixels);
    /* gzip detected from the content, not the name. */
    write_gz(tmp_path("gzip-without-suffix"), b.bytes, b.len);
    check_good_images(tmp_path("gzip-without-suffix"), pixels);
    /* Concatenated gzip members are one valid gzip file. */
    write_gz_mode(tmp_path("two-members.gz"), b.bytes, 10, "wb");
    write_gz_mode(tmp_path("two-members.gz"), b.bytes + 10, b.len - 10, "ab");
    check_good_images(tmp_path("two-members.gz"), pixels);
    free(b.bytes);
    free(pixels);
}

static void test_good_labels_raw_and_gzip(void **state) {
    (void)state;
    const uint32_t n = 1000;
    uint8_t *labels = random_bytes(n, 12, 10);
    Buffer b = make_idx(0x00000801, &n, 1, labels, n);
    const char *names[2] = {"good-labels", "good-labels.gz"};
    write_raw(tmp_path(names[0]), b.bytes, b.len);
    write_gz(tmp_path(names[1]), b.bytes, b.len);
    for (int i = 0; i < 2; i++) {
        PtLabels lb;
        PtError err = {{0}};
        int rc = pt_idx_read_labels(tmp_path(names[i]), 10, &lb, &err);
        if (rc != 0) fail_msg("good file rejected: %s", err.msg);
        assert_int_equal(lb.n, n);
        assert_memory_equal(lb.labels, labels, n);
        pt_labels_free(&lb);
    }
    free(b.bytes);
    free(labels);
}

/* A large gzip file: exercises the growing buffer and several inflate rounds. */
static void test_large_gzip_round_trip(void **state) {
    (void)state;
    const uint32_t dims[3] = {3000, 28, 28};
    const size_t len = 3000u * 784u;
    uint8_t *pixels = random_bytes(len, 13, 256);
    Buffer b = make_idx(0x00000803, dims, 3, pixels, len);
    write_gz(tmp_path("large.gz"), b.bytes, b.len);
    PtImages im;
    PtError err = {{0}};
    int rc = pt_idx_read_images(tmp_path("large.gz"), &im, &err);
    if (rc != 0) fail_msg("good file rejected: %s", err.msg);
    assert_int_equal(im.n, 3000);
    assert_memory_equal(im.pixels, pixels, len);
    pt_images_free(&im);
    free(b.bytes);
    free(pixels);
}

/* ------------------------------------------------------------------------------------------ */
/* Malformed files, one case each. */

static void test_missing_directory_empty(void **state) {
    (void)state;
    expect_images_error(tmp_path("does-not-exist"), "No such file", NULL);
    expect_labels_error(tmp_path("does-not-exist"), 10, "No such file", NULL);
    const char *dir = tmp_path("a-directory");
    assert_int_equal(mkdir(dir, 0700), 0);
    expect_images_error(dir, "directory", NULL);
    write_raw(tmp_path("empty"), "", 0);
    expect_images_error(tmp_path("empty"), "empty", NULL);
    write_gz(tmp_path("empty.gz"), "", 0); /* valid gzip of nothing */
    expect_images_error(tmp_path("empty.gz"), "empty", NULL);
}

static void test_header_truncated(void **state) {
    (void)state;
    const uint8_t two[2] = {0, 0};
    write_raw(tmp_path("header-2-bytes"), two, 2);
    expect_images_error(tmp_path("header-2-bytes"), "header truncated", NULL);
    /* Magic and one and a half sizes: 10 of 16 header bytes. */
    Buffer b = make_idx(0x00000803, k_good_dims, 3, NULL, 0);
    write_raw(tmp_path("header-10-bytes"), b.bytes, 10);
    expect_images_error(tmp_path("header-10-bytes"), "header truncated", "10 bytes", NULL);
    write_gz(tmp_path("header-10-bytes.gz"), b.bytes, 10);
    expect_images_error(tmp_path("header-10-bytes.gz"), "header truncated", NULL);
    const uint8_t label_magic_only[4] = {0, 0, 8, 1};
    write_raw(tmp_path("labels-header-4-bytes"), label_magic_only, 4);
    expect_labels_error(tmp_path("labels-header-4-bytes"), 10, "header truncated", NULL);
    free(b.bytes);
}

static void test_wrong_magic(void **state) {
    (void)state;
    uint8_t labels[3] = {1, 2, 3};
    uint32_t n = 3;
    Buffer lab = make_idx(0x00000801, &n, 1, labels, 3);
    write_raw(tmp_path("labels-as-images"), lab.bytes, lab.len);
    expect_images_error(tmp_path("labels-as-images"), "magic", "label file", "2051", NULL);

    uint8_t *pixels = random_bytes(GOOD_BYTES, 14, 256);
    Buffer img = make_idx(0x00000803, k_good_dims, 3, pixels, GOOD_BYTES);
    write_raw(tmp_path("images-as-labels"), img.bytes, img.len);
    expect_labels_error(tmp_path("images-as-labels"), 10, "magic", "image file", "2049", NULL);

    Buffer junk = make_idx(0xdeadbeef, k_good_dims, 3, pixels, GOOD_BYTES);
    write_raw(tmp_path("junk-magic"), junk.bytes, junk.len);
    expect_images_error(tmp_path("junk-magic"), "magic", "0xdeadbeef", NULL);

    /* Float data (type 0x0D) is not unsigned bytes. */
    Buffer floats = make_idx(0x00000D03, k_good_dims, 3, pixels, GOOD_BYTES);
    write_raw(tmp_path("float-type"), floats.bytes, floats.len);
    expect_images_error(tmp_path("float-type"), "magic", "unsigned byte", NULL);
    free(lab.bytes);
    free(img.bytes);
    free(junk.bytes);
    free(floats.bytes);
    free(pixels);
}

static void test_dimension_count(void **state) {
    (void)state;
    const uint32_t dims[4] = {3, 4, 5, 1};
    uint8_t *pixels = random_bytes(GOOD_BYTES, 15, 256);
    Buffer two = make_idx(0x00000802, dims, 2, pixels, 12);
    write_raw(tmp_path("two-dims"), two.bytes, two.len);
    expect_images_error(tmp_path("two-dims"), "dimension count", NULL);
    Buffer four = make_idx(0x00000804, dims, 4, pixels, GOOD_BYTES);
    write_raw(tmp_path("four-dims"), four.bytes, four.len);
    expect_images_error(tmp_path("four-dims"), "dimension count", NULL);
    expect_labels_error(tmp_path("four-dims"), 10, "dimension count", NULL);
    free(two.bytes);
    free(four.bytes);
    free(pixels);
}

static void test_zero_and_huge_dimensions(void **state) {
    (void)state;
    const uint32_t zero[3] = {3, 0, 5};
    Buffer z = make_idx(0x00000803, zero, 3, NULL, 0);
    write_raw(tmp_path("zero-dim"), z.bytes, z.len);
    expect_images_error(tmp_path("zero-dim"), "zero", NULL);
    const uint32_t zero_labels = 0;
    Buffer zl = make_idx(0x00000801, &zero_labels, 1, NULL, 0);
    write_raw(tmp_path("zero-labels"), zl.bytes, zl.len);
    expect_labels_error(tmp_path("zero-labels"), 10, "zero", NULL);

    /* 2^32-1 cubed overflows 64 bits; 65536 x 65536 x 1 = 2^32 bytes exceeds the 2^31 bound. */
    const uint32_t overflow[3] = {0xffffffffu, 0xffffffffu, 0xffffffffu};
    Buffer o = make_idx(0x00000803, overflow, 3, NULL, 0);
    write_raw(tmp_path("overflow-dims"), o.bytes, o.len);
    expect_images_error(tmp_path("overflow-dims"), "too large", NULL);
    write_gz(tmp_path("overflow-dims.gz"), o.bytes, o.len);
    expect_images_error(tmp_path("overflow-dims.gz"), "too large", NULL);
    const uint32_t huge[3] = {65536, 65536, 1};
    Buffer h = make_idx(0x00000803, huge, 3, NULL, 0);
    write_raw(tmp_path("huge-dims"), h.bytes, h.len);
    expect_images_error(tmp_path("huge-dims"), "too large", NULL);
    /* Just within the bound but the file is tiny: a truncation, found before allocating. */
    const uint32_t big[3] = {32768, 256, 256};
    Buffer g = make_idx(0x00000803, big, 3, NULL, 0);
    write_raw(tmp_path("big-dims-tiny-file"), g.bytes, g.len);
    expect_images_error(tmp_path("big-dims-tiny-file"), "truncated", "expected 2147483648", NULL);
    /* The same as gzip must not try to allocate 2 GiB up front and still report truncation. */
    write_gz(tmp_path("big-dims-tiny-file.gz"), g.bytes, g.len);
    expect_images_error(tmp_path("big-dims-tiny-file.gz"), "truncated", "found 0", NULL);
    free(z.bytes);
    free(zl.bytes);
    free(o.bytes);
    free(h.bytes);
    free(g.bytes);
}

static void test_data_truncated_and_trailing(void **state) {
    (void)state;
    uint8_t *pixels = random_bytes(GOOD_BYTES + 5, 16, 256);
    Buffer shortb = make_idx(0x00000803, k_good_dims, 3, pixels, GOOD_BYTES - 8);
    write_raw(tmp_path("data-truncated"), shortb.bytes, shortb.len);
    expect_images_error(tmp_path("data-truncated"), "truncated", "expected 60", "found 52", NULL);
    write_gz(tmp_path("data-truncated.gz"), shortb.bytes, shortb.len);
    expect_images_error(tmp_path("data-truncated.gz"), "truncated", "expected 60", "found 52",
                        NULL);

    Buffer longb = make_idx(0x00000803, k_good_dims, 3, pixels, GOOD_BYTES + 5);
    write_raw(tmp_path("trailing"), longb.bytes, longb.len);
    expect_images_error(tmp_path("trailing"), "trailing", "5 extra", NULL);
    write_gz(tmp_path("trailing.gz"), longb.bytes, longb.len);
    expect_images_error(tmp_path("trailing.gz"), "trailing", "5 extra", NULL);

    uint32_t n = 4;
    uint8_t labels[6] = {1, 2, 3, 4, 5, 6};
    Buffer lshort = make_idx(0x00000801, &n, 1, labels, 3);
    write_raw(tmp_path("labels-truncated"), lshort.bytes, lshort.len);
    expect_labels_error(tmp_path("labels-truncated"), 10, "truncated", "expected 4", "found 3",
                        NULL);
    Buffer llong = make_idx(0x00000801, &n, 1, labels, 6);
    write_raw(tmp_path("labels-trailing"), llong.bytes, llong.len);
    expect_labels_error(tmp_path("labels-trailing"), 10, "trailing", "2 extra", NULL);
    free(shortb.bytes);
    free(longb.bytes);
    free(lshort.bytes);
    free(llong.bytes);
    free(pixels);
}

static void test_gzip_truncated_corrupt_garbage(void **state) {
    (void)state;
    const uint32_t dims[3] = {50, 28, 28};
    const size_t len = 50u * 784u;
    uint8_t *pixels = random_bytes(len, 17, 256);
    Buffer b = make_idx(0x00000803, dims, 3, pixels, len);
    write_gz(tmp_path("source.gz"), b.bytes, b.len);
    Buffer gz = read_whole(tmp_path("source.gz"));
    assert_true(gz.len > 1000);

    /* Cut in the middle of the compressed data, and just before the 8-byte trailer. */
    write_raw(tmp_path("gz-cut-half.gz"), gz.bytes, gz.len / 2);
    expect_images_error(tmp_path("gz-cut-half.gz"), "truncated gzip", NULL);
    write_raw(tmp_path("gz-cut-trailer.gz"), gz.bytes, gz.len - 4);
    expect_images_error(tmp_path("gz-cut-trailer.gz"), "truncated gzip", NULL);
    write_raw(tmp_path("gz-only-magic.gz"), gz.bytes, 2);
    expect_images_error(tmp_path("gz-only-magic.gz"), "truncated gzip", NULL);

    /* A flipped CRC-32 in the trailer: the data inflate fine but fail the check. */
    uint8_t *bad = malloc(gz.len);
    assert_non_null(bad);
    memcpy(bad, gz.bytes, gz.len);
    bad[gz.len - 8] ^= 0x55;
    write_raw(tmp_path("gz-bad-crc.gz"), bad, gz.len);
    expect_images_error(tmp_path("gz-bad-crc.gz"), "corrupt gzip", NULL);

    /* Overwritten bytes in the middle of the deflate stream. */
    memcpy(bad, gz.bytes, gz.len);
    for (size_t i = gz.len / 2; i < gz.len / 2 + 32; i++) bad[i] = (uint8_t)(bad[i] ^ 0xA5);
    write_raw(tmp_path("gz-corrupt-middle.gz"), bad, gz.len);
    expect_images_error(tmp_path("gz-corrupt-middle.gz"), "corrupt gzip", NULL);

    /* A damaged gzip header (bad compression method byte). */
    memcpy(bad, gz.bytes, gz.len);
    bad[2] = 0x07;
    write_raw(tmp_path("gz-bad-header.gz"), bad, gz.len);
    expect_images_error(tmp_path("gz-bad-header.gz"), "corrupt gzip", NULL);

    /* Garbage after a complete gzip stream. */
    uint8_t *extra = malloc(gz.len + 3);
    assert_non_null(extra);
    memcpy(extra, gz.bytes, gz.len);
    memcpy(extra + gz.len, "xyz", 3);
    write_raw(tmp_path("gz-trailing-garbage.gz"), extra, gz.len + 3);
    expect_images_error(tmp_path("gz-trailing-garbage.gz"), "trailing garbage", NULL);
    free(extra);
    free(bad);
    free(gz.bytes);
    free(b.bytes);
    free(pixels);
}

static void test_label_out_of_range(void **state) {
    (void)state;
    uint32_t n = 5;
    uint8_t labels[5] = {0, 9, 12, 3, 200};
    Buffer b = make_idx(0x00000801, &n, 1, labels, 5);
    write_raw(tmp_path("bad-label"), b.bytes, b.len);
    expect_labels_error(tmp_path("bad-label"), 10, "index 2", "value 12", NULL);
    /* The same file is fine with 256 classes, and rotation labels must be < 4. */
    PtLabels lb;
    PtError err = {{0}};
    assert_int_equal(pt_idx_read_labels(tmp_path("bad-label"), 256, &lb, &err), 0);
    assert_memory_equal(lb.labels, labels, 5);
    pt_labels_free(&lb);
    expect_labels_error(tmp_path("bad-label"), 4, "index 1", "value 9", NULL);
    free(b.bytes);
}

/* ------------------------------------------------------------------------------------------ */
/* Data folders. */

static const char *const k_names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

/* Writes a small data folder: n_train / n_test images of rows x cols, train labels n_train_labels;
 * the files listed in gzipped (bit f) as .gz. Returns the folder path (static buffer). */
static const char *make_folder(const char *name, uint32_t n_train, uint32_t n_train_labels,
                               uint32_t n_test, uint32_t rows, uint32_t cols, unsigned gzipped) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", g_tmpdir, name);
    assert_int_equal(mkdir(dir, 0700), 0);
    uint32_t counts[4] = {n_train, n_train_labels, n_test, n_test};
    for (int f = 0; f < 4; f++) {
        int is_images = (f % 2 == 0);
        uint32_t dims[3] = {counts[f], rows, cols};
        size_t len = is_images ? (size_t)counts[f] * rows * cols : counts[f];
        uint8_t *data = random_bytes(len, 100 + (uint64_t)f, is_images ? 256 : 10);
        Buffer b = make_idx(is_images ? 0x00000803 : 0x00000801, dims, is_images ? 3 : 1, data,
                            len);
        char path[600];
        snprintf(path, sizeof path, "%s/%s%s", dir, k_names[f], (gzipped >> f) & 1 ? ".gz" : "");
        if ((gzipped >> f) & 1)
            write_gz(path, b.bytes, b.len);
        else
            write_raw(path, b.bytes, b.len);
        free(b.bytes);
        free(data);
    }
    return dir;
}

static void expect_dataset_error(const char *dir, ...) {
    PtDataset ds;
    memset(&ds, 0xAB, sizeof ds);
    PtError err = {{0}};
    assert_int_equal(pt_dataset_load(dir, &ds, &err), -1);
    print_message("  rejected as expected: %s\n", err.msg);
    va_list ap;
    va_start(ap, dir);
    for (const char *kw = va_arg(ap, const char *); kw; kw = va_arg(ap, const char *))
        assert_contains(err.msg, kw);
    va_end(ap);
    assert_null(ds.train_x.pixels);
    assert_null(ds.train_y.labels);
    assert_null(ds.test_x.pixels);
    assert_null(ds.test_y.labels);
}

static void test_dataset_folder(void **state) {
    (void)state;
    /* Train images and test labels gzipped, the others raw. */
    const char *dir = make_folder("mixed", 7, 7, 3, 28, 28, (1u << 0) | (1u << 3));
    PtDataset ds;
    PtError err = {{0}};
    int rc = pt_dataset_load(dir, &ds, &err);
    if (rc != 0) fail_msg("good folder rejected: %s", err.msg);
    assert_int_equal(ds.train_x.n, 7);
    assert_int_equal(ds.train_y.n, 7);
    assert_int_equal(ds.test_x.n, 3);
    assert_int_equal(ds.test_y.n, 3);
    char want[700];
    for (int f = 0; f < 4; f++) {
        snprintf(want, sizeof want, "%s/%s%s", dir, k_names[f], (f == 0 || f == 3) ? ".gz" : "");
        assert_string_equal(ds.paths[f], want);
    }
    uint8_t *expected = random_bytes(7u * 784u, 100, 256);
    assert_memory_equal(ds.train_x.pixels, expected, 7u * 784u);
    free(expected);
    pt_dataset_free(&ds);
    assert_null(ds.train_x.pixels);

    /* The raw name wins when both exist. */
    char path[700];
    snprintf(path, sizeof path, "%s/%s.gz", dir, k_names[1]);
    write_raw(path, "garbage", 7);
    rc = pt_dataset_load(dir, &ds, &err);
    if (rc != 0) fail_msg("good folder rejected: %s", err.msg);
    snprintf(want, sizeof want, "%s/%s", dir, k_names[1]);
    assert_string_equal(ds.paths[1], want);
    pt_dataset_free(&ds);
}

static void test_dataset_errors(void **state) {
    (void)state;
    expect_dataset_error(tmp_path("no-such-folder"), "no-such-folder", "fetch-data.sh", NULL);

    const char *dir = make_folder("missing-one", 4, 4, 2, 28, 28, 0);
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, k_names[3]);
    assert_int_equal(unlink(path), 0);
    expect_dataset_error(dir, dir, "t10k-labels-idx1-ubyte", "fetch-data.sh", NULL);

    dir = make_folder("not-28x28", 4, 4, 2, 27, 28, 0);
    snprintf(path, sizeof path, "%s/%s", dir, k_names[0]);
    expect_dataset_error(dir, path, "27x28", "28x28", NULL);

    dir = make_folder("count-mismatch", 5, 4, 2, 28, 28, 1u << 1);
    char images[700], labels[700];
    snprintf(images, sizeof images, "%s/%s", dir, k_names[0]);
    snprintf(labels, sizeof labels, "%s/%s.gz", dir, k_names[1]);
    expect_dataset_error(dir, images, labels, "5 images", "4 labels", NULL);

    /* A bad file inside a folder: the reader's message, naming that file. */
    dir = make_folder("bad-test-labels", 4, 4, 2, 28, 28, 0);
    snprintf(path, sizeof path, "%s/%s", dir, k_names[3]);
    write_raw(path, "\0\0\x08", 3);
    expect_dataset_error(dir, path, "header truncated", NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* The real data. */

static void test_real_mnist(void **state) {
    (void)state;
    const char *source = getenv("PRETEXT_SOURCE_DIR");
    if (!source) fail_msg("PRETEXT_SOURCE_DIR is not set (ctest sets it); cannot find data/mnist");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/data/mnist", source);
    PtDataset ds;
    PtError err = {{0}};
    double t0 = pt_now();
    int rc = pt_dataset_load(dir, &ds, &err);
    double seconds = pt_now() - t0;
    if (rc != 0) fail_msg("MNIST missing or unreadable (run scripts/fetch-data.sh): %s", err.msg);
    print_message("  MNIST loaded from %s in %.3f s\n", dir, seconds);
    assert_int_equal(ds.train_x.n, 60000);
    assert_int_equal(ds.train_y.n, 60000);
    assert_int_equal(ds.test_x.n, 10000);
    assert_int_equal(ds.test_y.n, 10000);
    assert_int_equal(ds.train_x.rows, 28);
    assert_int_equal(ds.train_x.cols, 28);
    /* Known values (also read with numpy): labels 5 0 4 1 9 / 7 2 1 0 4, first image sum 27525. */
    const uint8_t train_first[5] = {5, 0, 4, 1, 9}, test_first[5] = {7, 2, 1, 0, 4};
    assert_memory_equal(ds.train_y.labels, train_first, 5);
    assert_memory_equal(ds.test_y.labels, test_first, 5);
    uint64_t sum = 0;
    for (int i = 0; i < PT_IMG_PIXELS; i++) sum += ds.train_x.pixels[i];
    assert_int_equal(sum, 27525);
    pt_dataset_free(&ds);
}

static void test_real_fashion_mnist(void **state) {
    (void)state;
    const char *dir = "/usr/share/datasets/fashion-mnist";
    PtDataset ds;
    PtError err = {{0}};
    double t0 = pt_now();
    int rc = pt_dataset_load(dir, &ds, &err);
    double seconds = pt_now() - t0;
    if (rc != 0)
        fail_msg("Fashion-MNIST missing (apt-get install dataset-fashion-mnist): %s", err.msg);
    print_message("  Fashion-MNIST (gzip) loaded in %.3f s\n", seconds);
    assert_int_equal(ds.train_x.n, 60000);
    assert_int_equal(ds.test_x.n, 10000);
    assert_int_equal(ds.test_y.n, 10000);
    assert_non_null(strstr(ds.paths[0], ".gz"));
    const uint8_t train_first[5] = {9, 0, 0, 3, 0}, test_first[5] = {9, 2, 1, 1, 6};
    assert_memory_equal(ds.train_y.labels, train_first, 5);
    assert_memory_equal(ds.test_y.labels, test_first, 5);
    uint64_t sum = 0;
    for (int i = 0; i < PT_IMG_PIXELS; i++) sum += ds.train_x.pixels[i];
    assert_int_equal(sum, 76247);
    pt_dataset_free(&ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_images_raw_and_gzip),
        cmocka_unit_test(test_good_labels_raw_and_gzip),
        cmocka_unit_test(test_large_gzip_round_trip),
        cmocka_unit_test(test_missing_directory_empty),
        cmocka_unit_test(test_header_truncated),
        cmocka_unit_test(test_wrong_magic),
        cmocka_unit_test(test_dimension_count),
        cmocka_unit_test(test_zero_and_huge_dimensions),
        cmocka_unit_test(test_data_truncated_and_trailing),
        cmocka_unit_test(test_gzip_truncated_corrupt_garbage),
        cmocka_unit_test(test_label_out_of_range),
        cmocka_unit_test(test_dataset_folder),
        cmocka_unit_test(test_dataset_errors),
        cmocka_unit_test(test_real_mnist),
        cmocka_unit_test(test_real_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
