/* test_data.c: quarter-turn rotation against hand-written numpy.rot90 results and the index
 * formulas, float batch gathering (exact x/255 scaling, rotation per image), label gathering
 * and Keras's validation split counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pt_data.h"
#include "pt_rng.h"

/* numpy.rot90(np.array([[1,2,3],[4,5,6],[7,8,9]]), k) for k = 0..3, written out by hand. */
static const uint8_t k_rot3[4][9] = {
    {1, 2, 3, 4, 5, 6, 7, 8, 9},
    {3, 6, 9, 2, 5, 8, 1, 4, 7},
    {9, 8, 7, 6, 5, 4, 3, 2, 1},
    {7, 4, 1, 8, 5, 2, 9, 6, 3},
};

/* The same for a 4x4 image holding 0..15 row-major. */
static const uint8_t k_rot4[4][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {3, 7, 11, 15, 2, 6, 10, 14, 1, 5, 9, 13, 0, 4, 8, 12},
    {15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0},
    {12, 8, 4, 0, 13, 9, 5, 1, 14, 10, 6, 2, 15, 11, 7, 3},
};

/* The documented formulas, written independently of the implementation. */
static uint8_t rotated_pixel(const uint8_t *in, int k, int n, int r, int c) {
    switch (((k % 4) + 4) % 4) {
    case 0: return in[r * n + c];
    case 1: return in[c * n + (n - 1 - r)];
    case 2: return in[(n - 1 - r) * n + (n - 1 - c)];
    default: return in[(n - 1 - c) * n + r];
    }
}

static uint8_t *random_image(int n, uint64_t seed) {
    PtRng rng;
    pt_rng_seed(&rng, seed);
    uint8_t *p = malloc((size_t)n * (size_t)n);
    assert_non_null(p);
    for (int i = 0; i < n * n; i++) p[i] = (uint8_t)pt_rng_below(&rng, 256);
    return p;
}

static void test_rotate_by_hand(void **state) {
    (void)state;
    uint8_t out3[9], out4[16];
    for (int k = 0; k < 4; k++) {
        pt_rotate_u8(out3, k_rot3[0], k, 3);
        assert_memory_equal(out3, k_rot3[k], 9);
        pt_rotate_u8(out4, k_rot4[0], k, 4);
        assert_memory_equal(out4, k_rot4[k], 16);
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++)
                assert_int_equal(out4[r * 4 + c], rotated_pixel(k_rot4[0], k, 4, r, c));
    }
    /* k is taken modulo 4, negative included: -1 == 3, 5 == 1, 6 == 2. */
    pt_rotate_u8(out3, k_rot3[0], -1, 3);
    assert_memory_equal(out3, k_rot3[3], 9);
    pt_rotate_u8(out3, k_rot3[0], 5, 3);
    assert_memory_equal(out3, k_rot3[1], 9);
    pt_rotate_u8(out4, k_rot4[0], 6, 4);
    assert_memory_equal(out4, k_rot4[2], 16);
}

static void test_rotate_formulas_28(void **state) {
    (void)state;
    const int n = 28;
    uint8_t *img = random_image(n, 1);
    uint8_t out[28 * 28];
    for (int k = 0; k < 4; k++) {
        pt_rotate_u8(out, img, k, n);
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++)
                assert_int_equal(out[r * n + c], rotated_pixel(img, k, n, r, c));
    }
    /* numpy example, k=1: out[r][c] = in[c][n-1-r]; spot check a corner: out[0][0] = in[0][27]. */
    pt_rotate_u8(out, img, 1, n);
    assert_int_equal(out[0], img[27]);
    assert_int_equal(out[27 * n], img[0]); /* the top-left pixel moves to the bottom-left */
    free(img);
}

static void test_rotate_compositions(void **state) {
    (void)state;
    const int sizes[3] = {1, 5, 28};
    for (int s = 0; s < 3; s++) {
        int n = sizes[s];
        size_t len = (size_t)n * (size_t)n;
        uint8_t *img = random_image(n, 2 + (uint64_t)s);
        uint8_t *a = malloc(len), *b = malloc(len);
        assert_non_null(a);
        assert_non_null(b);
        /* Four quarter turns: identity. */
        memcpy(a, img, len);
        for (int t = 0; t < 4; t++) {
            pt_rotate_u8(b, a, 1, n);
            memcpy(a, b, len);
        }
        assert_memory_equal(a, img, len);
        /* k=1 then k=3: identity; k=1 twice == k=2. */
        pt_rotate_u8(a, img, 1, n);
        pt_rotate_u8(b, a, 3, n);
        assert_memory_equal(b, img, len);
        pt_rotate_u8(b, a, 1, n);
        pt_rotate_u8(a, img, 2, n);
        assert_memory_equal(a, b, len);
        free(img);
        free(a);
        free(b);
    }
}

static void test_gather_images(void **state) {
    (void)state;
    const uint32_t n_images = 4;
    PtImages images = {.n = n_images, .rows = 28, .cols = 28, .pixels = NULL};
    images.pixels = malloc((size_t)n_images * PT_IMG_PIXELS);
    assert_non_null(images.pixels);
    /* Image 0 covers every value 0..255 (and 255 at pixel 255); the others are random. */
    for (int j = 0; j < PT_IMG_PIXELS; j++) images.pixels[j] = (uint8_t)(j % 256);
    uint8_t *rnd = random_image(28, 3);
    for (uint32_t i = 1; i < n_images; i++)
        for (int j = 0; j < PT_IMG_PIXELS; j++)
            images.pixels[i * PT_IMG_PIXELS + j] = (uint8_t)(rnd[j] + 37 * i);
    free(rnd);

    const uint32_t indices[6] = {0, 3, 1, 0, 2, 3};
    const int B = 6;
    float *out = malloc((size_t)B * PT_IMG_PIXELS * sizeof *out); /* (B, 28, 28, 1) */
    assert_non_null(out);

    /* No rotation: exact x / 255.0f. */
    pt_gather_images(out, &images, indices, NULL, B);
    for (int i = 0; i < B; i++) {
        const uint8_t *src = images.pixels + (size_t)indices[i] * PT_IMG_PIXELS;
        for (int j = 0; j < PT_IMG_PIXELS; j++) {
            float want = (float)src[j] / 255.0f;
            if (out[i * PT_IMG_PIXELS + j] != want)
                fail_msg("batch %d pixel %d: %.9g != %.9g", i, j, out[i * PT_IMG_PIXELS + j], want);
        }
    }
    assert_true(out[255] == 1.0f);
    assert_true(out[0] == 0.0f);
    assert_true(out[51] == 0.2f); /* 51/255 = 0.2 exactly rounded */

    /* Rotation by image index (not batch position): image 0 by 1, 1 by 2, 2 by 3, 3 by 0. */
    const uint8_t rotations[4] = {1, 2, 3, 0};
    pt_gather_images(out, &images, indices, rotations, B);
    for (int i = 0; i < B; i++) {
        const uint8_t *src = images.pixels + (size_t)indices[i] * PT_IMG_PIXELS;
        int k = rotations[indices[i]];
        for (int r = 0; r < 28; r++)
            for (int c = 0; c < 28; c++) {
                float want = (float)rotated_pixel(src, k, 28, r, c) / 255.0f;
                assert_true(out[i * PT_IMG_PIXELS + r * 28 + c] == want);
            }
    }
    free(out);
    free(images.pixels);
}

static void test_gather_labels(void **state) {
    (void)state;
    const uint8_t labels[5] = {7, 2, 1, 0, 4};
    const uint32_t indices[7] = {4, 4, 0, 3, 1, 2, 0};
    const uint8_t want[7] = {4, 4, 7, 0, 2, 1, 7};
    uint8_t out[7];
    pt_gather_labels(out, labels, indices, 7);
    assert_memory_equal(out, want, 7);
}

static void test_split_counts(void **state) {
    (void)state;
    assert_int_equal(pt_split_train_count(60000, 0.2), 48000);
    assert_int_equal(pt_split_train_count(150, 0.2), 120);
    assert_int_equal(pt_split_train_count(10, 0.2), 8);
    assert_int_equal(pt_split_train_count(1, 0.2), 0);   /* floor(0.8) */
    assert_int_equal(pt_split_train_count(7, 0.2), 5);   /* floor(5.6) */
    assert_int_equal(pt_split_train_count(100, 0.0), 100);
    assert_int_equal(pt_split_train_count(100, 0.5), 50);
    assert_int_equal(pt_split_train_count(100, 1.0), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotate_by_hand),
        cmocka_unit_test(test_rotate_formulas_28),
        cmocka_unit_test(test_rotate_compositions),
        cmocka_unit_test(test_gather_images),
        cmocka_unit_test(test_gather_labels),
        cmocka_unit_test(test_split_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
