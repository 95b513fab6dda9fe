#!/usr/bin/env python3
"""check-keras-weights.py: checks a Keras weights file written by pretext (pt_keras_weights_save)
against the layout tf.keras 2.x save_weights() writes for the seed's Sequential CNN: root attributes
layer_names / backend / keras_version, a group per layer with attribute weight_names, datasets
"<layer>/<layer>/kernel:0" and "bias:0" (float32, Keras shapes). With --results, also checks that
every value equals the weights stored in the results file (/pretext/weights/* for 4 classes,
/benchmark/weights/* for 10). If TensorFlow is importable, also loads the file with
model.load_weights() for real. Exits 1 on any mismatch, 0 when everything matches.

Usage: /usr/bin/python3 scripts/check-keras-weights.py WEIGHTS.h5 [--results RESULTS.h5]
           [--expect-classes N] [--phase pretext|benchmark]
"""
import argparse
import sys

import h5py
import numpy as np

LAYERS = ["conv2d", "max_pooling2d", "dropout", "conv2d_1", "max_pooling2d_1", "dropout_1",
          "flatten", "dense", "dropout_2", "dense_1"]


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


def try_tensorflow(path, n_classes, tensors, errors):
    """Loads the file into the real model when TensorFlow is installed."""
    try:
        import tensorflow as tf  # noqa: F401
    except ImportError:
        print("note: TensorFlow is not installed; skipped loading the file with model.load_weights()")
        return
    from tensorflow import keras
    model = keras.Sequential([
        keras.layers.Conv2D(64, 2, padding="same", activation="relu", input_shape=(28, 28, 1)),
        keras.layers.MaxPooling2D(2), keras.layers.Dropout(0.3),
        keras.layers.Conv2D(32, 2, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(2), keras.layers.Dropout(0.3),
        keras.layers.Flatten(), keras.layers.Dense(256, activation="relu"), keras.layers.Dropout(0.5),
        keras.layers.Dense(n_classes, activation="softmax")])
    model.load_weights(path)
    order = ["conv2d_kernel", "conv2d_bias", "conv2d_1_kernel", "conv2d_1_bias",
             "dense_kernel", "dense_bias", "dense_1_kernel", "dense_1_bias"]
    for name, w in zip(order, model.get_weights()):
        if not np.array_equal(w, tensors[name]):
            errors.append(f"TensorFlow load_weights: {name} differs")
    print("TensorFlow load_weights: ok")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", help="Keras weights file written by pretext")
    parser.add_argument("--results", help="results file whose weights the file must equal")
    parser.add_argument("--expect-classes", type=int, help="number of outputs of the last layer")
    parser.add_argument("--phase", choices=["pretext", "benchmark"],
                        help="phase of the results file to compare with (default: by class count)")
    args = parser.parse_args()

    errors = []
    try:
        tensors, n_classes = check_file(args.weights, args.expect_classes, errors)
        if args.results and n_classes is not None and not errors:
            phase = args.phase or ("pretext" if n_classes == 4 else "benchmark")
            compare_with_results(tensors, args.results, phase, errors)
        if n_classes is not None and not errors:
            try_tensorflow(args.weights, n_classes, tensors, errors)
    except (OSError, KeyError, ValueError) as e:
        errors.append(f"cannot read: {e}")
    if errors:
        for e in errors:
            print(f"check-keras-weights: {args.weights}: {e}", file=sys.stderr)
        return 1
    print(f"check-keras-weights: {args.weights}: ok ({n_classes} classes"
          f"{', equal to ' + args.results if args.results else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
