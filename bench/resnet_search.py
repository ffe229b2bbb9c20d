"""The search for the paper's ResNet size (Supplementary Table 5: 43,604 parameters, "6-12
channels"): parameter counts of every plausible reading of a LayerNorm ResNet-10 on 32 x 32 CIFAR
images, counted analytically; prints the readings that give exactly 43,604 (python -m bench.resnet_search)."""

from __future__ import annotations

import itertools

TARGET = 43_604


def count(blocks, strides, norm, conv_bias, shortcut, classes, stem_norm, head_in, size=32, c0=6, stem_stride=1):
    """blocks: out channels of the 4 residual blocks; norm: 'chw' (LayerNorm([C, H, W]), affine),
    'chw-noaffine', 'c' (a gain and bias per channel), 'none'; shortcut: 'conv' (1x1, with the
    norm), 'conv-nonorm', 'pad' (no parameters); head_in: 'pool' (global average) or 'flat'."""
    def conv(ci, co, k):
        return ci * co * k * k + (co if conv_bias else 0)

    def nrm(c, s):
        return {"chw": 2 * c * s * s, "chw-noaffine": 0, "c": 2 * c, "none": 0}[norm]

    size //= stem_stride
    n = conv(3, c0, 3) + (nrm(c0, size) if stem_norm else 0)
    ci, s = c0, size
    for co, st in zip(blocks, strides):
        s //= st
        n += conv(ci, co, 3) + nrm(co, s) + conv(co, co, 3) + nrm(co, s)
        if st != 1 or ci != co:
            if shortcut == "conv":
                n += conv(ci, co, 1) + nrm(co, s)
            elif shortcut == "conv-nonorm":
                n += conv(ci, co, 1)
        ci = co
    feats = ci if head_in == "pool" else ci * s * s
    return n + feats * classes + classes


def main():
    hits, tried, near = [], 0, []
    for c0, stem_stride, blocks, strides, norm, bias, short, classes, stem_norm, head_in in itertools.product(
            (6, 12), (1, 2), itertools.product((6, 12), repeat=4), itertools.product((1, 2), repeat=4),
            ("chw", "chw-noaffine", "c", "none"), (True, False), ("conv", "conv-nonorm", "pad"), (2, 10),
            (True, False), ("pool", "flat")):
        tried += 1
        n = count(blocks, strides, norm, bias, short, classes, stem_norm, head_in, c0=c0, stem_stride=stem_stride)
        reading = (c0, stem_stride, blocks, strides, norm, bias, short, classes, stem_norm, head_in)
        if n == TARGET:
            hits.append(reading)
        near.append((abs(n - TARGET), n, reading))
    print(f"{tried:,} readings tried; {len(hits)} give {TARGET:,} parameters")
    fmt = "stem {} stride {} blocks {} strides {} norm {} conv bias {} shortcut {} classes {} stem norm {} head {}"
    for h in hits:
        print("  " + fmt.format(*h))
    print("nearest:")
    for d, n, r in sorted(near)[:5]:
        print(f"  {n:,} ({n - TARGET:+,}): " + fmt.format(*r))
    ours = count((6, 12, 12, 12), (1, 2, 2, 2), "chw", True, "conv", 2, True, "pool")
    print(f"this library's reading (blocks 6, 12, 12, 12; strides 1, 2, 2, 2; LayerNorm(C, H, W) affine; biases; "
          f"1x1-conv shortcut with norm; 2 classes): {ours:,}")
    return hits


if __name__ == "__main__":
    main()
