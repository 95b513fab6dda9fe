/* keras_weights.c: the Keras-compatible weights file, the layout tf.keras 2.x save_weights()
 * writes for the seed's Sequential model, so R's load_model_weights_hdf5() or Python's
 * model.load_weights() read pretext's trained weights (docs/results-format.md). */
#include "pt_keras_weights.h"

#include <stdio.h>

#include "h5.h"
#include "pt_model.h"

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

static int write_keras_layer(PtH5Ctx *c, hid_t file, int l, const PtTensorInfo *info, const float *params) {
    hid_t g = -1, inner = -1;
    int rc = -1;
    const char *name = keras_layers[l].name;
    PT_H5_TRY(c, g = H5Gcreate2(file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (keras_layers[l].first_tensor < 0) {
        if (pt_h5_attr_write_string_array(c, g, "weight_names", NULL, 0) < 0) goto fail;
    } else {
        char kernel_name[64], bias_name[64];
        snprintf(kernel_name, sizeof kernel_name, "%s/kernel:0", name);
        snprintf(bias_name, sizeof bias_name, "%s/bias:0", name);
        const char *names[2] = {kernel_name, bias_name};
        if (pt_h5_attr_write_string_array(c, g, "weight_names", names, 2) < 0) goto fail;
        PT_H5_TRY(c, inner = H5Gcreate2(g, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        static const char *const dataset_names[2] = {"kernel:0", "bias:0"};
        for (int w = 0; w < 2; w++) {
            const PtTensorInfo *t = &info[keras_layers[l].first_tensor + w];
            hsize_t dims[4];
            for (int d = 0; d < t->ndim; d++) dims[d] = (hsize_t)t->shape[d];
            if (pt_h5_dset_write(c, inner, dataset_names[w], H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, t->ndim, dims,
                           params + t->offset) < 0)
                goto fail;
        }
    }
    rc = 0;
fail:
    PT_H5_CLOSE(H5Gclose, inner);
    PT_H5_CLOSE(H5Gclose, g);
    return rc;
}

static int write_keras_weights(PtH5Ctx *c, hid_t file, const void *arg) {
    const KerasWeightsArg *a = arg;
    PtTensorInfo info[PT_NUM_TENSORS];
    pt_tensor_layout(a->n_classes, info);
    const char *names[N_KERAS_LAYERS];
    for (int l = 0; l < N_KERAS_LAYERS; l++) names[l] = keras_layers[l].name;
    if (pt_h5_attr_write_string_array(c, file, "layer_names", names, N_KERAS_LAYERS) < 0) return -1;
    if (pt_h5_attr_write_string(c, file, "backend", "tensorflow") < 0) return -1;
    if (pt_h5_attr_write_string(c, file, "keras_version", "2.3.0") < 0) return -1;
    for (int l = 0; l < N_KERAS_LAYERS; l++)
        if (write_keras_layer(c, file, l, info, a->params) < 0) return -1;
    return 0;
}

int pt_keras_weights_save(const char *path, const float *params, int n_classes, PtError *err) {
    if (n_classes < 2 || n_classes > PT_MAX_CLASSES)
        return pt_error_set(err, "cannot write Keras weights file '%s': %d classes", path, n_classes);
    KerasWeightsArg arg = {params, n_classes};
    return pt_h5_atomic_write(path, "Keras weights file", write_keras_weights, &arg, err);
}
