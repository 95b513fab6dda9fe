/* pt_keras_weights.h: writes a model's weights as a Keras weights file (what tf.keras 2.x
 * model.save_weights("file.h5") writes for the seed's Sequential model), so that R's
 * load_model_weights_hdf5() or Python's model.load_weights() can read them. */
#ifndef PT_KERAS_WEIGHTS_H
#define PT_KERAS_WEIGHTS_H

#include "pt_util.h"

/* Root attributes layer_names, backend, keras_version; a group per layer with attribute
 * weight_names; datasets "<layer>/<layer>/kernel:0" and "bias:0". Layer names: conv2d,
 * conv2d_1, dense, dense_1 (+ max_pooling2d, dropout, flatten ... with no weights). params in
 * pt_tensor_layout(n_classes) order. Written atomically like the results file. */
int pt_keras_weights_save(const char *path, const float *params, int n_classes, PtError *err);

#endif
