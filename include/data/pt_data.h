/* pt_data.h: the data pipeline. IDX files (raw or gzip) are read into uint8 arrays with every
 * malformed case reported by file name; batches are converted to float /255 only when used,
 * optionally rotated by quarter turns (the pretext task) on the fly. */
#ifndef PT_DATA_H
#define PT_DATA_H

#include <stdint.h>

#include "pt_util.h"

#define PT_IMG_ROWS 28
#define PT_IMG_COLS 28
#define PT_IMG_PIXELS (PT_IMG_ROWS * PT_IMG_COLS)

typedef struct {
    uint32_t n;        /* number of images */
    uint32_t rows;     /* 28 */
    uint32_t cols;     /* 28 */
    uint8_t *pixels;   /* (n, rows, cols) row-major, 0..255 */
} PtImages;

typedef struct {
    uint32_t n;        /* number of labels */
    uint8_t *labels;   /* (n) each in [0, n_classes) */
} PtLabels;

/* Reads an IDX image file (magic 2051), raw or gzip-compressed (detected from the content).
 * Rejects, with a message naming the file: missing or unreadable file, a directory, empty file,
 * wrong magic, sizes whose product overflows, truncated data, trailing bytes, corrupt gzip.
 * Returns 0, or -1 with err filled and *out left empty. */
int pt_idx_read_images(const char *path, PtImages *out, PtError *err);
/* Reads an IDX label file (magic 2049); additionally rejects a label >= n_classes. */
int pt_idx_read_labels(const char *path, int n_classes, PtLabels *out, PtError *err);
void pt_images_free(PtImages *images);
void pt_labels_free(PtLabels *labels);

/* A data folder: train and test images and labels (MNIST or Fashion-MNIST). */
typedef struct {
    PtImages train_x, test_x;
    PtLabels train_y, test_y;
    char paths[4][4096];      /* resolved file paths: train images, train labels, test images, test labels */
    int n_classes;            /* classes: the largest label of both sets + 1 (2 .. PT_DATA_MAX_CLASSES) */
} PtDataset;

/* Any 28x28 IDX data set with up to this many classes loads (MNIST and Fashion-MNIST 10, EMNIST
 * balanced 47, EMNIST byclass 62); labels are 0 .. n_classes-1. */
#define PT_DATA_MAX_CLASSES 62

/* Loads the four files from dir: train-images-idx3-ubyte, train-labels-idx1-ubyte,
 * t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally with ".gz" (the raw name is
 * tried first). Checks image and label counts match, images are 28x28, labels are below
 * PT_DATA_MAX_CLASSES and at least two classes occur; the class count is taken from the labels. */
int pt_dataset_load(const char *dir, PtDataset *out, PtError *err);
void pt_dataset_free(PtDataset *ds);

/* Rotates a square n x n uint8 image by k quarter turns counter-clockwise (as numpy.rot90(img, k)):
 * k=1: out[r][c] = in[c][n-1-r]; k=2: out[r][c] = in[n-1-r][n-1-c]; k=3: out[r][c] = in[n-1-c][r].
 * k is taken modulo 4; out and in must not overlap. */
void pt_rotate_u8(uint8_t *out, const uint8_t *in, int k, int n);

/* Gathers B images into a float batch, scaled by 1/255:
 * out (B, 28, 28, 1); image i of the batch is images->pixels[indices[i]], rotated by
 * rotations[indices[i]] quarter turns when rotations is not NULL. */
void pt_gather_images(float *out, const PtImages *images, const uint32_t *indices,
                      const uint8_t *rotations, int B);
/* out[i] = labels[indices[i]]. */
void pt_gather_labels(uint8_t *out, const uint8_t *labels, const uint32_t *indices, int B);

/* Keras validation_split: the first floor(n * (1 - split)) examples train, the rest validate. */
uint32_t pt_split_train_count(uint32_t n, double validation_split);

#endif
