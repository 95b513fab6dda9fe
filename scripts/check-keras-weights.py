#!/usr/bin/env python3
"""check-keras-weights.py: checks a Keras weights file written by pretext (pt_keras_weights_save)
against the layout tf.keras 2.x save_weights() writes for the seed's Sequential CNN: root attributes
layer_names / backend / keras_version, a group per layer with attribute weight_names, datasets
"<layer>/<layer>/kernel:0" and "bias:0" (float32, Keras shapes); then reads it the way Keras's
load_weights does (layer_names, the layers whose weight_names is not empty, each weight by its
name inside its layer's group, in order) and checks that this yields the model's 8 weights in
get_weights() order with their shapes. With --results, also checks that every value equals the
weights stored in the results file (/pretext/weights/* for 4 classes, /benchmark/weights/* for 10).
All of that needs only h5py and numpy.

With --tensorflow, the file is then also loaded into the real model with model.load_weights()
and the weights read back compared; that needs TensorFlow: when it cannot be imported, the script
says why and exits 77 (skipped: the load was not tried), after the h5py checks above have passed.
Without --tensorflow, TensorFlow is not tried at all (the output says so).

Exit status: 0 every check that ran passed; 1 a mismatch or an unreadable file; 77 (--tensorflow
only) the h5py checks passed but TensorFlow is not importable; 2 usage.

Usage: /usr/bin/python3 scripts/check-keras-weights.py WEIGHTS.h5 [--results RESULTS.h5]
           [--expect-classes N] [--phase pretext|benchmark] [--tensorflow]
"""
import argparse
import os
import sys
import traceback

import h5py
import numpy as np

LAYERS = ["conv2d", "max_pooling2d", "dropout", "conv2d_1", "max_pooling2d_1", "dropout_1",
          "flatten", "dense", "dropout_2", "dense_1"]


EXIT_SKIPPED = 77  # ctest's SKIP_RETURN_CODE for these tests

# The model's weights in get_weights() order: (layer, kind).
WEIGHT_ORDER = [("conv2d", "kernel"), ("conv2d", "bias"), ("conv2d_1", "kernel"), ("conv2d_1", "bias"),
                ("dense", "kernel"), ("dense", "bias"), ("dense_1", "kernel"), ("dense_1", "bias")]


def weight_shapes(n_classes):
    """Keras shapes (kernel, bias) of the layers that own weights."""
    return {
        "conv2d": ((2, 2, 1, 64), (64,)),
        "conv2d_1": ((2, 2, 64, 32), (32,)),
        "dense": ((1568, 256), (256,)),
        "dense_1": ((256, n_classes), (n_classes,)),
    }


def as_text(value):
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf8")
    return str(value)


def check_string_attr(errors, attrs, name, where):
    """A fixed-length (numpy 'S') string attribute, as Keras writes them; returns its text."""
    if name not in attrs:
        errors.append(f"{where}: attribute {name} is missing")
        return None
    value = attrs[name]
    if not isinstance(value, (bytes, np.bytes_)):
        errors.append(f"{where}: attribute {name} is {type(value).__name__}, expected a fixed-length string")
        return as_text(value)
    return as_text(value)


def check_file(path, n_classes_expected, errors):
    """Checks names, attributes and shapes; returns {'conv2d_kernel': array, ...} and n_classes."""
    tensors = {}
    with h5py.File(path, "r") as f:
        names = f.attrs.get("layer_names")
        if names is None:
            errors.append("root attribute layer_names is missing")
            return tensors, None
        if names.dtype.kind != "S":
            errors.append(f"layer_names has dtype {names.dtype}, expected fixed-length strings")
        names = [as_text(n) for n in names]
        if names != LAYERS:
            errors.append(f"layer_names is {names}, expected {LAYERS}")
        backend = check_string_attr(errors, f.attrs, "backend", "/")
        if backend != "tensorflow":
            errors.append(f"backend is {backend!r}, expected 'tensorflow'")
        keras_version = check_string_attr(errors, f.attrs, "keras_version", "/")
        if keras_version is None or not keras_version.startswith("2."):
            errors.append(f"keras_version is {keras_version!r}, expected 2.x")
        extra = sorted(set(f.keys()) - set(LAYERS))
        if extra:
            errors.append(f"unexpected top-level objects: {extra}")

        n_classes = n_classes_expected
        if n_classes is None:
            try:
                n_classes = int(f["dense_1/dense_1/bias:0"].shape[0])
            except KeyError:
                errors.append("dense_1/dense_1/bias:0 is missing (cannot infer the number of classes)")
                return tensors, None
        shapes = weight_shapes(n_classes)

        for layer in LAYERS:
            if layer not in f:
                errors.append(f"group {layer} is missing")
                continue
            g = f[layer]
            if "weight_names" not in g.attrs:
                errors.append(f"{layer}: attribute weight_names is missing")
                continue
            weight_names = [as_text(n) for n in g.attrs["weight_names"]]
            if layer not in shapes:
                if weight_names:
                    errors.append(f"{layer}: weight_names is {weight_names}, expected []")
                if len(g.keys()) != 0:
                    errors.append(f"{layer}: holds {list(g.keys())}, expected nothing")
                continue
            if g.attrs["weight_names"].dtype.kind != "S":
                errors.append(f"{layer}: weight_names has dtype {g.attrs['weight_names'].dtype}")
            expected_names = [f"{layer}/kernel:0", f"{layer}/bias:0"]
            if weight_names != expected_names:
                errors.append(f"{layer}: weight_names is {weight_names}, expected {expected_names}")
            for name, shape, kind in zip(expected_names, shapes[layer], ("kernel", "bias")):
                if name not in g:
                    errors.append(f"dataset {layer}/{name} is missing")
                    continue
                d = g[name]
                if d.dtype != np.float32:
                    errors.append(f"{layer}/{name}: dtype {d.dtype}, expected float32")
                if tuple(d.shape) != shape:
                    errors.append(f"{layer}/{name}: shape {tuple(d.shape)}, expected {shape}")
                    continue
                values = d[()]
                if not np.all(np.isfinite(values)):
                    errors.append(f"{layer}/{name}: holds non-finite values")
                tensors[f"{layer}_{kind}"] = values
            if set(g.keys()) != {layer}:
                errors.append(f"{layer}: holds {sorted(g.keys())}, expected only the subgroup {layer}")
    return tensors, n_classes


def read_like_keras(path, n_classes, tensors, errors):
    """Reads the file as Keras 2.x's load_weights_from_hdf5_group does (hdf5_format.py): the
    root attribute layer_names; of those layers, the ones whose weight_names is not empty, which
    must be as many as the model's layers with weights, in the same order; each weight read as
    group[weight_name] inside its layer's group and matched to the model's weights by position,
    its shape equal to the model's. Checks that this yields the model's weights in get_weights()
    order, the same values check_file read by name."""
    shapes = weight_shapes(n_classes)
    model_layers = [layer for layer in LAYERS if layer in shapes]
    with h5py.File(path, "r") as f:
        layer_names = [as_text(n) for n in f.attrs["layer_names"]]
        with_weights = []
        for name in layer_names:
            if name not in f:
                errors.append(f"Keras reader: layer_names lists {name}, which has no group")
                return
            if len(f[name].attrs.get("weight_names", [])) > 0:
                with_weights.append(name)
        if len(with_weights) != len(model_layers):
            errors.append(f"Keras reader: {len(with_weights)} layers with weights {with_weights}, the model "
                          f"has {len(model_layers)}")
            return
        values = []
        for file_layer, model_layer in zip(with_weights, model_layers):
            g = f[file_layer]
            names = [as_text(n) for n in g.attrs["weight_names"]]
            if len(names) != 2:
                errors.append(f"Keras reader: layer {file_layer} has {len(names)} weights, {model_layer} has 2")
                return
            for weight_name, shape in zip(names, shapes[model_layer]):
                if weight_name not in g:
                    errors.append(f"Keras reader: {file_layer}[{weight_name!r}] does not exist")
                    return
                value = np.asarray(g[weight_name])
                if value.shape != shape:
                    errors.append(f"Keras reader: {file_layer}[{weight_name!r}] has shape {value.shape}, "
                                  f"the model's weight {shape}")
                    return
                values.append(value)
    for (layer, kind), value in zip(WEIGHT_ORDER, values):
        if f"{layer}_{kind}" in tensors and not np.array_equal(value, tensors[f"{layer}_{kind}"]):
            errors.append(f"Keras reader: the weight in position of {layer} {kind} is not {layer}/{kind}:0")


def compare_with_results(tensors, results_path, phase, errors):
    with h5py.File(results_path, "r") as f:
        if f.attrs.get("format") not in (b"pretext-results", "pretext-results"):
            errors.append(f"{results_path} was not written by pretext")
            return
        group = f"/{phase}/weights"
        if group not in f:
            errors.append(f"{results_path}: {group} is missing")
            return
        stored = f[group]
        if sorted(stored.keys()) != sorted(tensors.keys()):
            errors.append(f"{group} holds {sorted(stored.keys())}, the weights file {sorted(tensors.keys())}")
        for name, values in tensors.items():
            if name not in stored:
                continue
            ref = stored[name][()]
            if ref.shape != values.shape or not np.array_equal(ref, values):
                diff = (np.max(np.abs(ref.astype(np.float64) - values)) if ref.shape == values.shape
                        else "shape " + str(ref.shape))
                errors.append(f"{name}: differs from {results_path}:{group}/{name} (max |diff| {diff})")


def load_with_tensorflow(path, n_classes, tensors, errors):
    """Loads the file into the real model. Returns None when done (errors filled), or the reason
    TensorFlow cannot be used."""
    try:
        import tensorflow as tf
        from tensorflow import keras
    except Exception as e:  # ImportError, or a broken installation failing on import
        return (f"TensorFlow is not importable by {sys.executable} "
                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(64, 2, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2), keras.layers.Dropout(0.3),
        keras.layers.Conv2D(32, 2, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2), keras.layers.Dropout(0.3),
        keras.layers.Flatten(), keras.layers.Dense(256, activation="relu"), keras.layers.Dropout(0.5),
        keras.layers.Dense(n_classes, activation="softmax")])
    try:
        model.load_weights(path)
    except Exception as e:
        errors.append(f"TensorFlow {tf.__version__} load_weights failed: {type(e).__name__}: {e}")
        return None
    loaded = model.get_weights()
    if len(loaded) != len(WEIGHT_ORDER):
        errors.append(f"TensorFlow load_weights: the model has {len(loaded)} weights, expected {len(WEIGHT_ORDER)}")
        return None
    for (layer, kind), w in zip(WEIGHT_ORDER, loaded):
        if not np.array_equal(w, tensors[f"{layer}_{kind}"]):
            errors.append(f"TensorFlow load_weights: {layer} {kind} differs from the file's {layer}/{kind}:0")
    if not errors:
        print(f"check-keras-weights: {path}: loaded with TensorFlow {tf.__version__} "
              f"(Keras {keras.__version__}) model.load_weights(): every weight equal")
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", help="Keras weights file written by pretext")
    parser.add_argument("--results", help="results file whose weights the file must equal")
    parser.add_argument("--expect-classes", type=int, help="number of outputs of the last layer")
    parser.add_argument("--phase", choices=["pretext", "benchmark"],
                        help="phase of the results file to compare with (default: by class count)")
    parser.add_argument("--tensorflow", action="store_true",
                        help="also load the file with TensorFlow's model.load_weights(); exit 77 "
                             "(skipped) when TensorFlow is not importable")
    args = parser.parse_args()

    errors = []
    n_classes = None
    skipped = None
    try:
        tensors, n_classes = check_file(args.weights, args.expect_classes, errors)
        if n_classes is not None and not errors:
            read_like_keras(args.weights, n_classes, tensors, errors)
        if args.results and n_classes is not None and not errors:
            phase = args.phase or ("pretext" if n_classes == 4 else "benchmark")
            compare_with_results(tensors, args.results, phase, errors)
        if n_classes is not None and not errors:
            print(f"check-keras-weights: {args.weights}: ok with h5py ({n_classes} classes, Keras layout, "
                  f"read as Keras's load_weights reads it"
                  f"{', equal to ' + args.results if args.results else ''})", flush=True)
            if args.tensorflow:
                skipped = load_with_tensorflow(args.weights, n_classes, tensors, errors)
    except (OSError, KeyError, ValueError, TypeError) as e:
        errors.append(f"cannot read: {type(e).__name__}: {e}")
        if "PRETEXT_DEBUG" in os.environ:
            traceback.print_exc()
    if errors:
        for e in errors:
            print(f"check-keras-weights: {args.weights}: {e}", file=sys.stderr)
        return 1
    if skipped:
        print(f"check-keras-weights: {args.weights}: SKIPPED loading with TensorFlow: {skipped}")
        return EXIT_SKIPPED
    if not args.tensorflow:
        print(f"check-keras-weights: {args.weights}: not loaded with TensorFlow (--tensorflow does that)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
