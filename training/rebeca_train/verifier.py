"""Learned verifier: NCF (GMF + MLP branches) on features from an encoder different from the generator's
(7x7 average-pooled pixels of the image), trained on ratings disjoint from the prior's."""
import numpy as np
import torch
import torch.nn as nn

from .common import setup


def pixel_features(images):
    """images float [N,28,28] in [0,1] -> [N,49] 4x4 average pools."""
    x = np.asarray(images, np.float32).reshape(-1, 7, 4, 7, 4).mean(axis=(2, 4))
    return x.reshape(len(x), 49)


class NCF(nn.Module):
    def __init__(self, n_users, F=49, k=16, hidden=64):
        super().__init__()
        self.ug, self.um = nn.Embedding(n_users, k), nn.Embedding(n_users, k)
        self.ig = nn.Linear(F, k)
        self.mlp = nn.Sequential(nn.Linear(k + F, hidden), nn.ReLU(), nn.Linear(hidden, k), nn.ReLU())
        self.out = nn.Linear(2 * k, 1)
        for e in (self.ug, self.um):
            nn.init.normal_(e.weight, std=0.1)

    def forward(self, u, f):
        g = self.ug(u) * self.ig(f)
        m = self.mlp(torch.cat([self.um(u), f], 1))
        return self.out(torch.cat([g, m], 1)).squeeze(1)


def auc(scores, labels):
    scores, labels = np.asarray(scores), np.asarray(labels).astype(bool)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    # average ranks for ties
    s_sorted = scores[order]
    i = 0
    while i < len(s_sorted):
        j = i
        while j + 1 < len(s_sorted) and s_sorted[j + 1] == s_sorted[i]:
            j += 1
        if j > i:
            ranks[order[i:j + 1]] = (i + j + 2) / 2
        i = j + 1
    npos, nneg = labels.sum(), (~labels).sum()
    return float((ranks[labels].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def train_verifier(rows, feats, n_users, steps=3000, batch=256, seed=0, test_frac=0.2):
    """rows [n,3] (user, item, like). Returns (model, held-out AUC)."""
    setup(seed)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(rows))
    n_te = int(len(rows) * test_frac)
    te, tr = rows[perm[:n_te]], rows[perm[n_te:]]
    mu, sd = feats.mean(0), feats.std(0) + 1e-6
    Fz = torch.from_numpy(((feats - mu) / sd).astype(np.float32))
    model = NCF(n_users)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-5)
    R = torch.from_numpy(tr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        b = R[torch.randint(0, len(R), (batch,), generator=gen)]
        loss = nn.functional.binary_cross_entropy_with_logits(model(b[:, 0], Fz[b[:, 1]]), b[:, 2].float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        s = model(torch.from_numpy(te[:, 0]), Fz[torch.from_numpy(te[:, 1])]).numpy()
    model.norm = (mu, sd)
    return model, auc(s, te[:, 2])


def verifier_prob(model, users, feats):
    """P(like) matrix [len(users), N] for the given user indices and raw features."""
    mu, sd = model.norm
    Fz = torch.from_numpy(((feats - mu) / sd).astype(np.float32))
    out = []
    with torch.no_grad():
        for u in users:
            out.append(torch.sigmoid(model(torch.full((len(Fz),), int(u), dtype=torch.long), Fz)).numpy())
    return np.stack(out)
