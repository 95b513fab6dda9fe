/* data.c: batch assembly from the uint8 data set: exact quarter-turn rotation (numpy.rot90
 * semantics, the pretext task), gathering a batch of images as float /255 with the rotation
 * applied on the fly, gathering labels, and Keras's validation split. */
#include "pt_data.h"

#include <assert.h>
#include <math.h>
#include <string.h>

void pt_rotate_u8(uint8_t *out, const uint8_t *in, int k, int n) {
    assert(n > 0 && out != in);
    k = ((k % 4) + 4) % 4;
    switch (k) {
    case 0:
        memcpy(out, in, (size_t)n * (size_t)n);
        break;
    case 1: /* out[r][c] = in[c][n-1-r] */
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++) out[r * n + c] = in[c * n + (n - 1 - r)];
        break;
    case 2: /* out[r][c] = in[n-1-r][n-1-c]: the image reversed as a flat array */
        for (int i = 0, last = n * n - 1; i <= last; i++) out[i] = in[last - i];
        break;
    default: /* k == 3: out[r][c] = in[n-1-c][r] */
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++) out[r * n + c] = in[(n - 1 - c) * n + r];
        break;
    }
}

/* 784 uint8 -> float, x / 255.0f exactly (a division, not a multiply by 1/255, which rounds
 * differently for some x); the loop vectorises. */
static inline void scale_image(float *restrict out, const uint8_t *restrict in, int pixels) {
    for (int i = 0; i < pixels; i++) out[i] = (float)in[i] / 255.0f;
}

void pt_gather_images(float *out, const PtImages *images, const uint32_t *indices,
                      const uint8_t *rotations, int B) {
    const int n = (int)images->rows;
    const int pixels = (int)(images->rows * images->cols);
    uint8_t rotated[PT_IMG_PIXELS]; /* (28, 28) scratch for one rotated image */
    assert(rotations == NULL || (images->rows == images->cols && pixels <= PT_IMG_PIXELS));
    for (int i = 0; i < B; i++) {
        uint32_t index = indices[i];
        assert(index < images->n);
        const uint8_t *src = images->pixels + (size_t)index * (size_t)pixels; /* (rows, cols) */
        if (rotations != NULL && (rotations[index] & 3) != 0) {
            pt_rotate_u8(rotated, src, rotations[index], n);
            src = rotated;
        }
        scale_image(out + (size_t)i * (size_t)pixels, src, pixels);
    }
}

void pt_gather_labels(uint8_t *out, const uint8_t *labels, const uint32_t *indices, int B) {
    for (int i = 0; i < B; i++) out[i] = labels[indices[i]];
}

uint32_t pt_split_train_count(uint32_t n, double validation_split) {
    /* Keras: split_at = int(floor(n * (1. - validation_split))), in double. */
    if (!(validation_split > 0.0)) return n; /* 0, negative or NaN: no validation part */
    if (validation_split >= 1.0) return 0;
    return (uint32_t)floor((double)n * (1.0 - validation_split));
}
