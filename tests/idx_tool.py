#!/usr/bin/env python3
"""idx_tool.py: makes small and deliberately broken MNIST data folders for the reliability tests
(standard library only, so any python3 works).

  idx_tool.py small SRC DST N_TRAIN N_TEST   the first N images/labels of each set of SRC (raw IDX
                                             or .gz), written raw
  idx_tool.py break CASE DIR                 damages DIR/train-images-idx3-ubyte (or its labels)
                                             in the way CASE names (see CASES below)
"""
import gzip
import os
import shutil
import struct
import sys

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def first_n(data, n):
    """The first n items of a raw IDX file, with its count field rewritten."""
    magic = struct.unpack(">I", data[:4])[0]
    ndims = magic & 0xff
    dims = list(struct.unpack(">" + "I" * ndims, data[4:4 + 4 * ndims]))
    item = 1
    for d in dims[1:]:
        item *= d
    dims[0] = n
    head = struct.pack(">I", magic) + struct.pack(">" + "I" * ndims, *dims)
    start = 4 + 4 * ndims
    return head + data[start:start + n * item]


def read_idx(src, name):
    """SRC/NAME raw, else SRC/NAME.gz unpacked (fetch-data.sh keeps either)."""
    path = os.path.join(src, name)
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz", "rb") as f:
            return f.read()
    return read(path)


def small(src, dst, n_train, n_test):
    os.makedirs(dst, exist_ok=True)
    for name in FILES:
        n = n_train if name.startswith("train") else n_test
        write(os.path.join(dst, name), first_n(read_idx(src, name), n))


def break_case(case, d):
    img = os.path.join(d, FILES[0])
    lab = os.path.join(d, FILES[1])
    data = read(img)
    if case == "header-truncated":          # 10 of the 16 header bytes
        write(img, data[:10])
    elif case == "data-truncated":          # the last image is missing 100 bytes
        write(img, data[:-100])
    elif case == "trailing-garbage":
        write(img, data + b"garbage")
    elif case == "wrong-magic":             # not IDX at all
        write(img, b"\x89PNG" + data[4:])
    elif case == "labels-as-images":        # a label file where the images belong
        write(img, read(lab))
    elif case == "size-overflow":           # 4294967295 x 4294967295 x 28 images
        write(img, data[:4] + struct.pack(">II", 0xFFFFFFFF, 0xFFFFFFFF) + data[12:])
    elif case == "count-mismatch":          # one label fewer than images (file itself consistent)
        labels = read(lab)
        n = struct.unpack(">I", labels[4:8])[0]
        write(lab, first_n(labels, n - 1))
    elif case == "label-out-of-range":      # label 12 in a 10-class file
        labels = bytearray(read(lab))
        labels[8 + 5] = 12
        write(lab, bytes(labels))
    elif case in ("gzip-corrupt", "gzip-truncated"):
        packed = bytearray(gzip.compress(data))
        os.remove(img)
        if case == "gzip-corrupt":          # flip bytes in the middle of the deflate stream
            mid = len(packed) // 2
            for i in range(mid, mid + 16):
                packed[i] ^= 0x5A
        else:
            packed = packed[:len(packed) // 2]
        write(img + ".gz", bytes(packed))
    elif case == "empty":
        write(img, b"")
    elif case == "directory":
        os.remove(img)
        os.mkdir(img)
    elif case == "missing":
        os.remove(img)
    else:
        sys.exit("idx_tool: unknown case " + case)


if __name__ == "__main__":
    if sys.argv[1] == "small":
        small(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == "break":
        break_case(sys.argv[2], sys.argv[3])
    else:
        sys.exit("idx_tool: unknown command " + sys.argv[1])
