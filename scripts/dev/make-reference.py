#!/usr/bin/env python3
"""make-reference.py: writes the golden files tests/data/golden_n10.bin and golden_n4.bin that
tests/test_golden.c compares the C engine against. The network is the seed's CNN built
independently in PyTorch (float64) with Keras's channels-last semantics; Adam is TensorFlow's,
written out by hand. Deterministic, no network access. Run with Debian's interpreter:

    /usr/bin/python3 scripts/dev/make-reference.py [--out-dir tests/data]

Semantics matched (see docs/keras-semantics.md):
  conv 2x2 "same": pad 0 top/left, 1 bottom/right, cross-correlation; kernel (kh,kw,in,out);
  maxpool 2x2 stride 2; flatten in (h,w,c) order; dense y = x @ W + b with W (in,out);
  loss = mean over the batch of softmax cross-entropy from the logits. Dropout is OFF
  (inference-style forward); the engine's dropout is tested elsewhere.
  Adam (TensorFlow): lr_t = lr*sqrt(1-b2^t)/(1-b1^t); m += (g-m)(1-b1); v += (g*g-v)(1-b2);
  w -= lr_t*m/(sqrt(v)+eps), lr 0.001, b1 0.9, b2 0.999, eps 1e-7 (torch.optim.Adam differs:
  it adds eps to sqrt(v_hat), so it is not used).
All reference arithmetic is float64, starting from the float32 values stored in the file, so the
file holds the "true" result and the C test measures only the engine's float32 error. Each file's
random seed is the first from a fixed base whose gradients are insensitive to float32 rounding at
ReLU/max-pool kinks (see kink_sensitivity); the script also checks its torch forward against a
naive numpy one and its gradients against finite differences, and stops if they disagree.
Each file is about 5 MB (the 1568x256 dense kernel appears three times).

File format (all little-endian):
  magic      8 bytes  b"PTGOLDEN"
  version    uint32   1
  n_classes  uint32   10 or 4
  batch      uint32   B
  adam_steps uint32   S
  n_tensors  uint32
  then n_tensors records:
    name_len uint32, name (name_len bytes of ASCII, no terminator)
    dtype    uint32   1 = float32, 2 = float64, 3 = uint8
    ndim     uint32   (0..4)
    shape    ndim x uint32
    data     prod(shape) elements of dtype, row-major (C order)
Tensors, in this order:
  param/<name>      float32, the 8 initial parameters in Keras layouts and get_weights() order,
                    <name> = conv2d/kernel (2,2,1,64), conv2d/bias (64), conv2d_1/kernel
                    (2,2,64,32), conv2d_1/bias (32), dense/kernel (1568,256), dense/bias (256),
                    dense_1/kernel (256,C), dense_1/bias (C)
  x                 float32 (B,28,28,1), values in [0,1)
  labels            uint8 (B)
  logits            float32 (B,C)
  loss              float64 (1), mean cross-entropy over the batch
  grad/<name>       float32, the 8 gradients of that mean loss, Keras layouts
  adam/losses       float64 (S), loss before each of the S Adam steps on the same batch
  adam/param/<name> float32, the 8 parameters after the S steps
"""
import argparse
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

MAGIC = b"PTGOLDEN"
VERSION = 1
BATCH = 4
ADAM_STEPS = 5
LR, BETA1, BETA2, EPSILON = 0.001, 0.9, 0.999, 1e-7
KINK_NOISE, NOISE_DRAWS, MAX_KINK_SENSITIVITY = 3.0, 4, 1e-5  # see kink_sensitivity

DTYPE_CODES = {np.dtype(np.float32): 1, np.dtype(np.float64): 2, np.dtype(np.uint8): 3}


def tensor_specs(n_classes):
    """(name, Keras shape, glorot fans or None for a bias) in get_weights() order."""
    return [
        ("conv2d/kernel", (2, 2, 1, 64), (2 * 2 * 1, 2 * 2 * 64)),
        ("conv2d/bias", (64,), None),
        ("conv2d_1/kernel", (2, 2, 64, 32), (2 * 2 * 64, 2 * 2 * 32)),
        ("conv2d_1/bias", (32,), None),
        ("dense/kernel", (1568, 256), (1568, 256)),
        ("dense/bias", (256,), None),
        ("dense_1/kernel", (256, n_classes), (256, n_classes)),
        ("dense_1/bias", (n_classes,), None),
    ]


def make_params(n_classes, rng):
    """Glorot-uniform kernels and NON-zero random biases (so bias gradients are tested)."""
    params = []
    for name, shape, fans in tensor_specs(n_classes):
        if fans is not None:
            limit = math.sqrt(6.0 / (fans[0] + fans[1]))
            values = rng.uniform(-limit, limit, size=shape)
        else:
            values = rng.uniform(-0.1, 0.1, size=shape)
        params.append((name, values.astype(np.float32)))
    return params


def conv2x2_same(x_nhwc, kernel_keras, bias):
    """Keras conv2d(2x2, padding same, stride 1) on channels-last input, via torch NCHW."""
    x_nchw = x_nhwc.permute(0, 3, 1, 2)
    x_padded = F.pad(x_nchw, (0, 1, 0, 1))           # (left, right, top, bottom)
    weight = kernel_keras.permute(3, 2, 0, 1)         # (kh,kw,in,out) -> (out,in,kh,kw)
    y = F.conv2d(x_padded, weight, bias)
    return y.permute(0, 2, 3, 1)                      # back to NHWC


def maxpool2(x_nhwc):
    y = F.max_pool2d(x_nhwc.permute(0, 3, 1, 2), 2)
    return y.permute(0, 2, 3, 1)


def forward(p, x):
    """p: list of 8 torch tensors (Keras layouts); x (B,28,28,1). Returns logits (B,C)."""
    h = torch.relu(conv2x2_same(x, p[0], p[1]))       # (B,28,28,64)
    h = maxpool2(h)                                   # (B,14,14,64)
    h = torch.relu(conv2x2_same(h, p[2], p[3]))       # (B,14,14,32)
    h = maxpool2(h)                                   # (B,7,7,32)
    h = h.reshape(h.shape[0], -1)                     # (B,1568), (h,w,c) order since NHWC
    h = torch.relu(h @ p[4] + p[5])                   # (B,256)
    return h @ p[6] + p[7]                            # (B,C)


def forward_parts(p, x, noise=None):
    """The forward of forward(), exposing the three ReLU pre-activations (B,28,28,64),
    (B,14,14,32), (B,256); noise, if given, is added to each of them (a constant offset)."""
    noise = noise or [0.0, 0.0, 0.0]
    z1 = conv2x2_same(x, p[0], p[1]) + noise[0]
    z2 = conv2x2_same(maxpool2(torch.relu(z1)), p[2], p[3]) + noise[1]
    q2 = maxpool2(torch.relu(z2))
    z3 = q2.reshape(q2.shape[0], -1) @ p[4] + p[5] + noise[2]
    return torch.relu(z3) @ p[6] + p[7], [z1, z2, z3]


def kink_sensitivity(p, x, labels, gen):
    """How much the gradients could change if the pre-activations carried a float32 engine's
    rounding errors. ReLU (at 0) and max pooling (at ties) are not differentiable; with 200,000
    conv1 units some always sit within rounding distance of a kink, and a unit falling on the
    other side changes the gradient for real (by up to 1e-2 of a tensor's largest gradient for an
    unlucky unit). This perturbs every pre-activation by Gaussian noise of KINK_NOISE x the RMS
    rounding error of that layer (measured with a float32 torch forward) and returns the largest
    change over tensors and NOISE_DRAWS draws, relative to each tensor's largest gradient. The
    golden data are chosen where this stays far below the C test's tolerance."""
    leaves = [t.detach().clone().requires_grad_(True) for t in p]
    logits, z = forward_parts(leaves, x)
    grads = torch.autograd.grad(F.cross_entropy(logits, labels), leaves)
    _, z_f32 = forward_parts([t.float() for t in p], x.float())
    rounding = [(a.double() - b.detach()).pow(2).mean().sqrt().item() for a, b in zip(z_f32, z)]
    worst = 0.0
    for _ in range(NOISE_DRAWS):
        noise = [torch.randn(t.shape, generator=gen, dtype=torch.float64) * KINK_NOISE * r
                 for t, r in zip(z, rounding)]
        logits_n, _ = forward_parts(leaves, x, noise)
        grads_n = torch.autograd.grad(F.cross_entropy(logits_n, labels), leaves)
        for g, g_n in zip(grads, grads_n):
            worst = max(worst, ((g_n - g).abs().max() / g.abs().max()).item())
    return worst


def loss_and_grads(p, x, labels):
    leaves = [t.detach().clone().requires_grad_(True) for t in p]
    logits = forward(leaves, x)
    loss = F.cross_entropy(logits, labels, reduction="mean")
    grads = torch.autograd.grad(loss, leaves)
    return logits.detach(), loss.item(), [g.detach() for g in grads]


def self_check(p, x, labels, logits, grads):
    """Checks the torch path against a naive numpy forward (conv, pool, flatten order) and
    central finite differences on a few parameters, so the reference does not rest on torch
    layout conventions alone."""
    pn = [t.numpy() for t in p]
    xn = x.numpy()

    def naive_conv(a, k, b):                           # a (B,H,W,Cin), k (2,2,Cin,Cout)
        B_, H, W, _ = a.shape
        padded = np.zeros((B_, H + 1, W + 1, a.shape[3]))
        padded[:, :H, :W, :] = a
        out = np.zeros((B_, H, W, k.shape[3]))
        for da in range(2):
            for db in range(2):
                out += np.einsum("bhwc,co->bhwo", padded[:, da:da + H, db:db + W, :], k[da, db])
        return out + b

    def naive_pool(a):
        B_, H, W, C = a.shape
        return a.reshape(B_, H // 2, 2, W // 2, 2, C).max(axis=(2, 4))

    def naive_forward(q):
        h = naive_pool(np.maximum(naive_conv(xn, q[0], q[1]), 0))
        h = naive_pool(np.maximum(naive_conv(h, q[2], q[3]), 0))
        flat = np.zeros((h.shape[0], 1568))
        for i in range(7):                             # explicit (h*7 + w)*32 + c indexing
            for j in range(7):
                for c in range(32):
                    flat[:, (i * 7 + j) * 32 + c] = h[:, i, j, c]
        h = np.maximum(flat @ q[4] + q[5], 0)
        return h @ q[6] + q[7]

    def naive_loss(q):
        z = naive_forward(q)
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -logp[np.arange(len(labels)), labels.numpy()].mean()

    naive_logits = naive_forward(pn)
    err = np.abs(naive_logits - logits.numpy()).max()
    if err > 1e-10:
        sys.exit(f"self-check failed: naive forward differs from torch by {err:g}")
    rng = np.random.default_rng(7)
    worst = 0.0
    for t in range(8):
        for _ in range(3):
            idx = tuple(rng.integers(0, s) for s in pn[t].shape)
            h = 1e-7                                   # small: few kinks within reach
            q_plus = [a.copy() for a in pn]
            q_minus = [a.copy() for a in pn]
            q_plus[t][idx] += h
            q_minus[t][idx] -= h
            numeric = (naive_loss(q_plus) - naive_loss(q_minus)) / (2 * h)
            analytic = grads[t].numpy()[idx]
            worst = max(worst, abs(numeric - analytic) / max(abs(analytic), 1e-3))
    if worst > 1e-4:
        sys.exit(f"self-check failed: finite differences differ from autograd by {worst:g} relative")
    return err, worst


def adam_by_hand(p, x, labels, steps, check_kinks=True):
    """TensorFlow's Adam on the same batch; returns the losses before each step, the final
    params and the largest kink sensitivity met along the way."""
    params = [t.clone() for t in p]
    m = [torch.zeros_like(t) for t in p]
    v = [torch.zeros_like(t) for t in p]
    losses = []
    sensitivity = 0.0
    gen = torch.Generator().manual_seed(1)
    for step in range(1, steps + 1):
        _, loss, grads = loss_and_grads(params, x, labels)
        losses.append(loss)
        if check_kinks:
            sensitivity = max(sensitivity, kink_sensitivity(params, x, labels, gen))
        lr_t = LR * math.sqrt(1.0 - BETA2 ** step) / (1.0 - BETA1 ** step)
        for i, g in enumerate(grads):
            m[i] += (g - m[i]) * (1.0 - BETA1)
            v[i] += (g * g - v[i]) * (1.0 - BETA2)
            params[i] = params[i] - lr_t * m[i] / (torch.sqrt(v[i]) + EPSILON)
    return losses, params, sensitivity


def write_golden(path, n_classes, records):
    with open(path, "wb") as f:
        f.write(MAGIC)
        f.write(struct.pack("<5I", VERSION, n_classes, BATCH, ADAM_STEPS, len(records)))
        for name, array in records:
            array = np.ascontiguousarray(array)
            encoded = name.encode("ascii")
            f.write(struct.pack("<I", len(encoded)))
            f.write(encoded)
            f.write(struct.pack("<II", DTYPE_CODES[array.dtype], array.ndim))
            f.write(struct.pack(f"<{array.ndim}I", *array.shape))
            f.write(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())


def make_golden(n_classes, base_seed, path):
    # The first seed from base_seed on whose data the gradients are insensitive to float32
    # rounding near kinks (at the start and at every Adam step): deterministic and robust.
    for seed in range(base_seed, base_seed + 100):
        rng = np.random.default_rng(seed)
        params32 = make_params(n_classes, rng)
        x32 = rng.uniform(0.0, 1.0, size=(BATCH, 28, 28, 1)).astype(np.float32)
        labels8 = rng.integers(0, n_classes, size=BATCH).astype(np.uint8)
        p = [torch.from_numpy(a.astype(np.float64)) for _, a in params32]
        x = torch.from_numpy(x32.astype(np.float64))
        labels = torch.from_numpy(labels8.astype(np.int64))
        losses, final, sensitivity = adam_by_hand(p, x, labels, ADAM_STEPS)
        if sensitivity < MAX_KINK_SENSITIVITY:
            break
        print(f"  seed {seed}: kink sensitivity {sensitivity:.1e}, trying the next")
    else:
        sys.exit("no seed with a small enough kink sensitivity")

    logits, loss, grads = loss_and_grads(p, x, labels)
    fwd_err, fd_err = self_check(p, x, labels, logits, grads)

    names = [name for name, _ in params32]
    records = [("param/" + n, a) for n, a in params32]
    records += [("x", x32), ("labels", labels8),
                ("logits", logits.numpy().astype(np.float32)),
                ("loss", np.array([loss], dtype=np.float64))]
    records += [("grad/" + n, g.numpy().astype(np.float32)) for n, g in zip(names, grads)]
    records += [("adam/losses", np.array(losses, dtype=np.float64))]
    records += [("adam/param/" + n, t.numpy().astype(np.float32)) for n, t in zip(names, final)]
    write_golden(path, n_classes, records)

    # How far a float32 computation of the same thing lands from the float64 reference: a guide
    # for the C test's tolerances (printed only).
    p32 = [t.float() for t in p]
    _, loss_f32, grads_f32 = loss_and_grads(p32, x.float(), labels)
    losses_f32, final_f32, _ = adam_by_hand(p32, x.float(), labels, ADAM_STEPS, False)
    grad_rel = max(((a.double() - b).abs().max() / b.abs().max().clamp(min=1e-12)).item()
                   for a, b in zip(grads_f32, grads))
    param_rel = max(((a.double() - b).abs().max() / b.abs().max()).item()
                    for a, b in zip(final_f32, final))
    print(f"{path}: {n_classes} classes, seed {seed}, kink sensitivity {sensitivity:.1e}, B={BATCH}, labels {labels8.tolist()}, loss {loss:.6f}, "
          f"Adam losses {[round(l, 6) for l in losses]}")
    print(f"  self-check: naive forward {fwd_err:.1e}, finite differences {fd_err:.1e} rel; "
          f"torch float32 vs float64: grads {grad_rel:.1e} rel, loss {abs(loss_f32 - loss):.1e}, "
          f"params after Adam {param_rel:.1e} rel, "
          f"Adam losses {max(abs(a - b) for a, b in zip(losses_f32, losses)):.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--out-dir", default=os.path.join(here, "..", "..", "tests", "data"))
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    os.makedirs(args.out_dir, exist_ok=True)
    make_golden(10, 20200510, os.path.join(args.out_dir, "golden_n10.bin"))
    make_golden(4, 20200511, os.path.join(args.out_dir, "golden_n4.bin"))


if __name__ == "__main__":
    main()
