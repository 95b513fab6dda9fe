#!/usr/bin/env python3
"""torch_bench.py: the PyTorch side of the speed comparison. Times the same three workloads as
`pretext bench` on the same network, with the same options and the same JSON output, so that
scripts/dev/bench-train.sh can set them side by side. Run with Debian's interpreter (torch 1.13):

    /usr/bin/python3 scripts/dev/torch_bench.py [--workload train64|train1|infer|all]
        [--seconds 2] [--repeats 5] [--threads 1] [--json] [--layout nchw|nhwc] [--data DIR]

Workloads (synthetic data: uniform images in [0,1), uniform labels, fixed seed; or with --data DIR
the first 1024 training images and labels of an MNIST folder, as `pretext bench --data`):
  train64  zero_grad + forward (train mode, dropout 0.3/0.3/0.5) + CrossEntropyLoss + backward
           + torch.optim.Adam(lr=1e-3, eps=1e-7) step, batch 64
  train1   the same at batch 1 (steps/s = images/s)
  infer    eval-mode forward under inference_mode + summed cross-entropy + argmax hits, batch 1000
The network is the seed's CNN; Keras's 2x2 "same" padding is F.pad(x, (0, 1, 0, 1)) (one zero
column right, one zero row bottom) before each 2x2 conv. --layout picks torch's memory format:
nchw (torch's default, contiguous) or nhwc (torch.channels_last for the model and the images).
Neither is fastest everywhere on this CPU (measured: nhwc is faster at batch 64 and 1000,
nchw at batch 1), so scripts/dev/bench-train.sh runs both and compares against the faster.
Adam here adds eps to sqrt(v_hat) instead of TensorFlow's sqrt(v): the same cost, which is all
that matters for speed. Denormals are flushed to zero (torch.set_flush_denormal), as TensorFlow
and pretext compute (--denormals keep: torch's default, gradual underflow, many times slower
wherever Adam's moments of idle weights decay into denormals, as on this synthetic data). Speeds are medians over the repetitions; nothing is asserted.
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

WORKLOADS = {  # name: (batch, training)
    "train64": (64, True),
    "train1": (1, True),
    "infer": (1000, False),
}
FLOP_FORWARD = 28 * 28 * 64 * 4 * 2 + 14 * 14 * 32 * 256 * 2 + 1568 * 256 * 2 + 256 * 10 * 2
FLOP_TRAIN = FLOP_FORWARD + 2 * (14 * 14 * 32 * 256 * 2 + 1568 * 256 * 2 + 256 * 10 * 2) \
    + 28 * 28 * 64 * 4 * 2
POOL_IMAGES = 1024
SEED = 20200429


class SeedCnn(nn.Module):
    """conv(64,2x2,same,relu) - pool - drop .3 - conv(32,2x2,same,relu) - pool - drop .3 -
    flatten - dense 256 relu - drop .5 - dense 10."""

    def __init__(self, n_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, 2)
        self.conv2 = nn.Conv2d(64, 32, 2)
        self.dense1 = nn.Linear(7 * 7 * 32, 256)
        self.dense2 = nn.Linear(256, n_classes)

    def forward(self, x):                                  # x (B,1,28,28)
        x = F.relu(self.conv1(F.pad(x, (0, 1, 0, 1))))     # (B,64,28,28)
        x = F.dropout(F.max_pool2d(x, 2), 0.3, self.training)  # (B,64,14,14)
        x = F.relu(self.conv2(F.pad(x, (0, 1, 0, 1))))     # (B,32,14,14)
        x = F.dropout(F.max_pool2d(x, 2), 0.3, self.training)  # (B,32,7,7)
        x = torch.flatten(x, 1)                            # (B,1568)
        x = F.dropout(F.relu(self.dense1(x)), 0.5, self.training)  # (B,256)
        return self.dense2(x)                              # (B,10) logits


def read_idx(folder, name, count):
    """The first count items of an IDX file (raw or .gz) as a uint8 tensor: (count, 28, 28) for
    images, (count,) for labels."""
    import gzip
    import os
    path = os.path.join(folder, name)
    opener = open
    if not os.path.exists(path):
        path, opener = path + ".gz", gzip.open
    with opener(path, "rb") as f:
        magic = int.from_bytes(f.read(4), "big")
        dims = [int.from_bytes(f.read(4), "big") for _ in range(magic & 0xFF)]
        if magic >> 8 != 0x08 or dims[0] < count:
            sys.exit(f"torch_bench.py: {path}: not a uint8 IDX file of at least {count} items")
        size = 1
        for d in dims[1:]:
            size *= d
        data = f.read(count * size)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape([count] + dims[1:])


def parse_args(argv):
    p = argparse.ArgumentParser(description="PyTorch throughput of the seed's CNN (see module doc).")
    p.add_argument("--workload", default="all", choices=list(WORKLOADS) + ["all"])
    p.add_argument("--seconds", type=float, default=2.0, help="length of one timed repetition")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions per workload")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--json", action="store_true", help="one JSON object per workload and line")
    p.add_argument("--denormals", default="flush", choices=["flush", "keep"],
                   help="flush: torch.set_flush_denormal(True), as TensorFlow and pretext (default)")
    p.add_argument("--layout", default="nchw", choices=["nchw", "nhwc"],
                   help="torch memory format: nchw (contiguous) or nhwc (channels_last)")
    p.add_argument("--data", help="an MNIST folder: its first 1024 training images and labels")
    args = p.parse_args(argv)
    if not args.seconds > 0 or args.repeats < 1 or args.threads < 1:
        p.error("--seconds must be positive, --repeats and --threads at least 1")
    return args


def main(argv):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(args.denormals == "flush")
    torch.manual_seed(SEED)
    names = list(WORKLOADS) if args.workload == "all" else [args.workload]

    model = SeedCnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    if args.data:
        images = read_idx(args.data, "train-images-idx3-ubyte", POOL_IMAGES).float().div(255.0)
        images = images.reshape(POOL_IMAGES, 1, 28, 28)
        labels = read_idx(args.data, "train-labels-idx1-ubyte", POOL_IMAGES).long()
    else:
        images = torch.rand(POOL_IMAGES, 1, 28, 28)
        labels = torch.randint(0, 10, (POOL_IMAGES,))
    if args.layout == "nhwc":
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    step_count = [0]
    loss_sink = [0.0]

    def step(batch, training):
        first = (step_count[0] * batch) % (POOL_IMAGES - batch + 1)
        x = images[first:first + batch]
        y = labels[first:first + batch]
        if training:
            model.train()
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        else:
            model.eval()
            with torch.inference_mode():
                logits = model(x)
                loss = F.cross_entropy(logits, y, reduction="sum")
                correct = (logits.argmax(1) == y).sum()
                loss_sink[0] += int(correct)
        loss_sink[0] += float(loss)  # forces the computation to finish, like the C engine
        step_count[0] += 1

    if not args.json:
        print(f"torch {torch.__version__} bench ({args.layout}): {args.threads} thread(s), {args.repeats} x "
              f"{args.seconds:g} s per workload, medians")
        print(f"{'workload':<8} {'batch':>6} {'images/s':>12} {'min':>12} {'max':>12} {'GFLOP/s':>9}")
    for name in names:
        batch, training = WORKLOADS[name]
        warm = min(args.seconds / 4, 1.0)
        start, i = time.perf_counter(), 0
        while i < 3 or time.perf_counter() - start < warm:
            step(batch, training)
            i += 1
        rates = []
        for _ in range(args.repeats):
            steps, t0 = 0, time.perf_counter()
            while True:
                step(batch, training)
                steps += 1
                elapsed = time.perf_counter() - t0
                if elapsed >= args.seconds:
                    break
            rates.append(steps * batch / elapsed)
        rates.sort()
        n = len(rates)
        median = rates[n // 2] if n % 2 else 0.5 * (rates[n // 2 - 1] + rates[n // 2])
        gflops = median * (FLOP_TRAIN if training else FLOP_FORWARD) * 1e-9
        if args.json:
            print(json.dumps({"engine": "torch", "layout": args.layout, "workload": name, "batch": batch,
                              "threads": args.threads, "images_per_s": round(median, 2),
                              "min": round(rates[0], 2), "max": round(rates[-1], 2),
                              "repeats": n, "gflop_per_s": round(gflops, 3)}))
        else:
            print(f"{name:<8} {batch:>6} {median:>12.1f} {rates[0]:>12.1f} {rates[-1]:>12.1f} "
                  f"{gflops:>9.2f}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
