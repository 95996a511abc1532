"""Seeded noise identical to the TypeScript side (docs/model-format.md): fmix32 + Box-Muller."""
import math

import numpy as np

M32 = np.uint64(0xFFFFFFFF)


def _u(x):
    return np.asarray(x, dtype=np.uint64) & M32


def imul(a, b):
    return (_u(a) * _u(b)) & M32


def fmix32(h):
    h = _u(h)
    h ^= h >> np.uint64(16)
    h = imul(h, 0x85EBCA6B)
    h ^= h >> np.uint64(13)
    h = imul(h, 0xC2B2AE35)
    h ^= h >> np.uint64(16)
    return h


def bits(seed, stream, n):
    k1 = fmix32(_u(seed) ^ np.uint64(0x9E3779B9))
    k2 = fmix32((k1 + imul(stream, 0x85EBCA6B)) & M32)
    i = np.arange(n, dtype=np.uint64)
    return fmix32((k2 + imul(i, 0xC2B2AE35) + np.uint64(0x27D4EB2F)) & M32)


def normal(seed, stream, D):
    """Standard normal float64 vector of length D for (seed, stream)."""
    n = D + (D % 2)
    b = bits(seed, stream, n).tolist()
    z = []
    # scalar libm (math) rather than numpy's SIMD transcendental kernels, which differ in the last ulp
    for j in range(0, n, 2):
        u1 = (b[j] + 1) / 4294967296.0
        u2 = b[j + 1] / 4294967296.0
        r = math.sqrt(-2.0 * math.log(u1))
        z.append(r * math.cos(2 * math.pi * u2))
        z.append(r * math.sin(2 * math.pi * u2))
    return np.array(z[:D], dtype=np.float64)


def normal_batch(seeds, stream, D):
    return np.stack([normal(int(s), stream, D) for s in seeds])
