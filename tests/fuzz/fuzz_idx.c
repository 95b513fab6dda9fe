/* fuzz_idx.c: libFuzzer target for the IDX reader (src/idx.c): any bytes, raw or gzip, read as an
 * image file and as a label file must give either a well-formed result or an error message that
 * names the file, never a crash, a leak or an out-of-bounds access. */
#define _POSIX_C_SOURCE 200809L
#include <assert.h>
#include <string.h>

#include "fuzz_common.h"
#include "pt_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_input(data, size, ".idx");
    PtError err;
    PtImages images;
    if (pt_idx_read_images(path, &images, &err) == 0) {
        assert(images.n >= 1 && images.rows >= 1 && images.cols >= 1 && images.pixels);
        /* Touch the whole buffer: ASan checks its claimed size is really allocated. */
        size_t bytes = (size_t)images.n * images.rows * images.cols;
        volatile uint8_t sum = 0;
        for (size_t i = 0; i < bytes; i++) sum ^= images.pixels[i];
        (void)sum;
        pt_images_free(&images);
    } else {
        assert(strstr(err.msg, path) != NULL);
        assert(images.pixels == NULL && images.n == 0);
    }
    PtLabels labels;
    if (pt_idx_read_labels(path, 10, &labels, &err) == 0) {
        for (uint32_t i = 0; i < labels.n; i++) assert(labels.labels[i] < 10);
        pt_labels_free(&labels);
    } else {
        assert(strstr(err.msg, path) != NULL);
        assert(labels.labels == NULL && labels.n == 0);
    }
    return 0;
}
