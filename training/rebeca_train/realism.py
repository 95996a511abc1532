"""The project's own realism measure for Fashion-MNIST images: a small CNN classifier (≥ 90% test
accuracy) whose penultimate features give a Fréchet distance ("Fashion-FID", FID's formula on this
classifier instead of Inception), and whose predictions say whether a decoded image keeps its class.
"""
import os
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .common import InputError, log, setup
from .world import load_fmnist

CLASSIFIER_FORMAT = "rebeca.fmnist-classifier/v1"
FEATURES = 128


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, padding=1)
        self.c2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc = nn.Linear(64 * 7 * 7, FEATURES)
        self.head = nn.Linear(FEATURES, 10)

    def features(self, x):
        """Penultimate activations [N, 128] of images [N,1,28,28] in [0, 1]."""
        h = F.max_pool2d(F.relu(self.c1(x)), 2)
        h = F.max_pool2d(F.relu(self.c2(h)), 2)
        return F.relu(self.fc(h.flatten(1)))

    def forward(self, x):
        return self.head(self.features(x))


def as_unit(pixels):
    a = np.asarray(pixels)
    x = torch.from_numpy(a).float()
    if a.dtype == np.uint8:
        x = x / 255
    return x.reshape(-1, 1, 28, 28)


def train_classifier(out, epochs=3, batch=128, lr=1e-3, seed=0, init=None, augment=True, min_accuracy=0.9):
    """`init`: continue from a checkpoint (the recipe: 3 epochs with augmentation, then 1 without at a
    lower rate); `min_accuracy`: refuse (exit 2) a classifier below it on the 10,000 test images."""
    setup(seed)
    Xtr, Ytr = load_fmnist("train")
    Xte, Yte = load_fmnist("test")
    X, Y = as_unit(Xtr), torch.from_numpy(Ytr.astype(np.int64))
    model = Classifier() if init is None else load_classifier(init)[0].train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    t0, c0 = time.time(), time.process_time()
    steps = epochs * (len(X) // batch)
    step = 0
    for ep in range(epochs):
        perm = torch.randperm(len(X), generator=g)
        for s in range(0, len(X) - batch + 1, batch):
            for grp in opt.param_groups:
                grp["lr"] = lr * (1 - step / steps)
            idx = perm[s:s + batch]
            x = X[idx]
            if augment:
                # random horizontal flips and ±2 px shifts: features that hold for the whole class, not pixels
                flip = torch.rand(len(x), generator=g) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(3), x)
                dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=g))
                x = torch.roll(x, (dy, dx), (2, 3))
            loss = F.cross_entropy(model(x), Y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % 200 == 0:
                log(f"classifier step {step}/{steps} loss {loss.item():.3f} cpu {time.process_time() - c0:.0f}s")
    model.eval()
    acc = accuracy(model, Xte, Yte)
    stats = {"epochs": epochs, "augment": augment, "lr": lr, "steps": step, "test_accuracy": acc, "seconds": round(time.time() - t0, 1),
             "cpu_seconds": round(time.process_time() - c0, 1)}
    if init is not None:
        stats["continued_from"] = load_classifier(init)[1]
    torch.save({"format": CLASSIFIER_FORMAT, "state_dict": model.state_dict(), "stats": stats}, out)
    log(f"classifier written to {out}: {stats}")
    if acc < min_accuracy:
        raise InputError(f"classifier test accuracy {acc:.4f} < {min_accuracy}: not fit to measure realism")
    return stats


def load_classifier(path):
    if not os.path.exists(path):
        raise InputError(f"classifier not found: {path} (train-classifier makes it)")
    ck = torch.load(path)
    if not isinstance(ck, dict) or ck.get("format") != CLASSIFIER_FORMAT:
        raise InputError(f"{path}: not a {CLASSIFIER_FORMAT} checkpoint")
    m = Classifier()
    m.load_state_dict(ck["state_dict"])
    return m.eval(), ck["stats"]


def predict(model, pixels, chunk=2000):
    """(features [N,128] float64, predicted class [N]) of images (uint8 or [0, 1] floats)."""
    x = as_unit(pixels)
    feats, cls = [], []
    with torch.no_grad():
        for s in range(0, len(x), chunk):
            f = model.features(x[s:s + chunk])
            feats.append(f.double().numpy())
            cls.append(model.head(f).argmax(1).numpy())
    return np.concatenate(feats), np.concatenate(cls)


def accuracy(model, pixels, labels):
    return float(np.mean(predict(model, pixels)[1] == np.asarray(labels)))


def gaussian(feats):
    return feats.mean(0), np.cov(feats, rowvar=False)


def _sqrt_psd(m):
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet(a, b):
    """‖μa − μb‖² + tr(Σa + Σb − 2(Σa^½ Σb Σa^½)^½): FID's formula (a, b: (mean, cov) or feature arrays)."""
    (ma, ca), (mb, cb) = (x if isinstance(x, tuple) else gaussian(x) for x in (a, b))
    ra = _sqrt_psd(ca)
    cross = _sqrt_psd(ra @ cb @ ra)
    return float(np.sum((ma - mb) ** 2) + np.trace(ca) + np.trace(cb) - 2 * np.trace(cross))
