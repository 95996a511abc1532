"""Shared helpers: threads, seeds, errors, hashing, logging."""
import hashlib
import os
import random
import sys
import time

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402

T_STEPS = 1000
USER_DIM = 128
CLIP_X0 = 6.0
LIKE, DISLIKE, NULL_LIKE = 1, 0, 2


class InputError(Exception):
    """Bad input: the message names the problem. The CLI prints it and exits 2."""


def setup(seed=0):
    torch.set_num_threads(1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
