"""Demo world: conv autoencoder on Fashion-MNIST, catalogue, synthetic users and ratings."""
import csv
import gzip
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import onnx_io
from .common import InputError, log, setup, sha256_file

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def read_idx(path):
    if not os.path.exists(path):
        raise InputError(f"{path} missing: install Debian package dataset-fashion-mnist")
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    nd = magic & 0xFF
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def load_fmnist(split):
    pre = "train" if split == "train" else "t10k"
    return (read_idx(f"{FMNIST_DIR}/{pre}-images-idx3-ubyte.gz"), read_idx(f"{FMNIST_DIR}/{pre}-labels-idx1-ubyte.gz"))


class Encoder(nn.Module):
    def __init__(self, D=64):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, stride=2, padding=1)   # 14x14
        self.c2 = nn.Conv2d(32, 64, 3, stride=2, padding=1)  # 7x7
        self.fc = nn.Linear(64 * 7 * 7, D)
        self.register_buffer("mean", torch.zeros(D))
        self.register_buffer("std", torch.ones(D))

    def raw(self, image):
        h = F.relu(self.c2(F.relu(self.c1(image))))
        return self.fc(h.flatten(1))

    def forward(self, image):  # standardised embedding
        return (self.raw(image) - self.mean) / self.std


class Decoder(nn.Module):
    def __init__(self, D=64):
        super().__init__()
        self.fc = nn.Linear(D, 64 * 7 * 7)
        self.d1 = nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1)  # 14
        self.d2 = nn.ConvTranspose2d(32, 1, 4, stride=2, padding=1)   # 28
        self.register_buffer("mean", torch.zeros(D))
        self.register_buffer("std", torch.ones(D))

    def raw(self, z):
        h = F.relu(self.fc(z)).reshape(-1, 64, 7, 7)
        return torch.sigmoid(self.d2(F.relu(self.d1(h))))

    def forward(self, embedding):  # standardised embedding -> image in [0,1]
        return self.raw(embedding * self.std + self.mean)


def train_autoencoder(images, labels, D=64, epochs=2, batch=128, seed=0, max_seconds=150):
    setup(seed)
    enc, dec, head = Encoder(D), Decoder(D), nn.Linear(D, 10)
    params = list(enc.parameters()) + list(dec.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=2e-3)
    X = torch.from_numpy(np.array(images)).float().div(255).unsqueeze(1)
    Y = torch.from_numpy(labels.astype(np.int64))
    g = torch.Generator().manual_seed(seed)
    t0, step = time.time(), 0
    for ep in range(epochs):
        perm = torch.randperm(len(X), generator=g)
        for s in range(0, len(X) - batch + 1, batch):
            idx = perm[s:s + batch]
            z = enc.raw(X[idx])
            rec = dec.raw(z)
            loss_r = F.binary_cross_entropy(rec, X[idx])
            loss_c = F.cross_entropy(head(z), Y[idx])
            loss = loss_r + 0.1 * loss_c + 1e-4 * (z ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % 200 == 0:
                log(f"AE step {step} ep {ep} rec {loss_r.item():.4f} cls {loss_c.item():.3f}")
            if time.time() - t0 > max_seconds:
                break
        if time.time() - t0 > max_seconds:
            log("AE time budget reached")
            break
    with torch.no_grad():
        Z = torch.cat([enc.raw(X[i:i + 1000]) for i in range(0, len(X), 1000)])
        acc = (head(Z).argmax(1) == Y).float().mean().item()
        mean, std = Z.mean(0), Z.std(0).clamp_min(1e-6)
    for m in (enc, dec):
        m.mean.copy_(mean)
        m.std.copy_(std)
    enc.eval(), dec.eval()
    return enc, dec, {"steps": step, "recon_bce": float(loss_r.item()), "train_class_acc": acc,
                      "seconds": round(time.time() - t0, 1)}


def f32short(a):
    """Nested lists of the float32 values, each written with the fewest digits that round-trip to float32."""
    a = np.asarray(a, np.float32)
    return [[float(str(v)) for v in row] for row in a.reshape(a.shape[0], -1)]


def decoder_parity(enc, dec, D, items=None, pixels=None, seed=0):
    """Parity vectors for decoder.onnx and encoder.onnx (docs/model-format.md, "Decoder parity file").
    decoder: 3 catalogue embeddings + 1 standard normal vector -> images; encoder: 4 item images / 255 -> embeddings.
    Without a catalogue (tests) random embeddings and random uint8 images are used. Uses its own RNG."""
    rng = np.random.default_rng(seed + 12345)
    emb = rng.normal(size=(4, D)).astype(np.float32)
    if items is not None:
        emb[:3] = np.asarray(items[:3], np.float32)
    pix = rng.integers(0, 256, size=(4, 28, 28)).astype(np.uint8) if pixels is None else np.asarray(pixels[:4], np.uint8)
    image_in = torch.from_numpy(pix).float().div(255).unsqueeze(1)
    with torch.no_grad():
        img = dec(torch.from_numpy(emb)).numpy()
        e = enc(image_in).numpy()
    return {"decoder": {"embedding": f32short(emb), "image": f32short(img)},
            "encoder": {"image": f32short(image_in.numpy()), "embedding": f32short(e)}}


def check_decoder_parity(decoder_dir, D, atol=1e-6):
    """Recompute decoder/parity.json from the weights inside decoder.onnx / encoder.onnx; returns max abs diffs."""
    with open(f"{decoder_dir}/manifest.json") as f:
        man = json.load(f)
    ent = man.get("files", {}).get("parity")
    if not ent:
        raise InputError(f"{decoder_dir}/manifest.json: files lacks 'parity'")
    with open(os.path.join(decoder_dir, ent["path"])) as f:
        par = json.load(f)
    dec = load_decoder(decoder_dir, D)
    enc = onnx_io.load_weights(Encoder(D), os.path.join(decoder_dir, man["files"]["encoder"]["path"]))
    with torch.no_grad():
        img = dec(torch.tensor(par["decoder"]["embedding"], dtype=torch.float32)).numpy()
        x = torch.tensor(par["encoder"]["image"], dtype=torch.float32).reshape(-1, 1, 28, 28)
        e = enc(x).numpy()
    worst = {"decoder": float(np.abs(img.reshape(len(img), -1) - np.array(par["decoder"]["image"])).max()),
             "encoder": float(np.abs(e - np.array(par["encoder"]["embedding"])).max())}
    bad = {k: v for k, v in worst.items() if not v <= atol}
    if bad:
        raise InputError(f"{decoder_dir}: parity.json not reproduced from decoder/encoder weights: max abs diff {bad}")
    return worst


def export_decoder(enc, dec, out_dir, D=64, items=None, pixels=None):
    """decoder.onnx, encoder.onnx, parity.json (torch outputs the TypeScript side must reproduce), manifest.json."""
    os.makedirs(out_dir, exist_ok=True)
    onnx_io.export(dec, (torch.zeros(2, D),), f"{out_dir}/decoder.onnx", ["embedding"], ["image"])
    onnx_io.export(enc, (torch.zeros(2, 1, 28, 28),), f"{out_dir}/encoder.onnx", ["image"], ["embedding"])
    with open(f"{out_dir}/parity.json", "w") as f:
        json.dump(decoder_parity(enc, dec, D, items, pixels), f)
    man = {"format": "rebeca.decoder/v1", "kind": "single-shot", "embedding_dim": D, "channels": 1,
           "height": 28, "width": 28, "range": [0, 1],
           "files": {"decoder": {"path": "decoder.onnx", "sha256": sha256_file(f"{out_dir}/decoder.onnx")},
                     "encoder": {"path": "encoder.onnx", "sha256": sha256_file(f"{out_dir}/encoder.onnx")},
                     "parity": {"path": "parity.json", "sha256": sha256_file(f"{out_dir}/parity.json")}},
           "io": {"decoder": {"input": "embedding", "output": "image"},
                  "encoder": {"input": "image", "output": "embedding"}}}
    with open(f"{out_dir}/manifest.json", "w") as f:
        json.dump(man, f, indent=2)
    # self-check: the weights read back from the graphs reproduce the torch outputs
    check_decoder_parity(out_dir, D)


def load_decoder(decoder_dir, D=64):
    return onnx_io.load_weights(Decoder(D), f"{decoder_dir}/decoder.onnx")


def oracle_prob(W, q, beta, E):
    """P(like|u,e) = sigmoid(beta_u (cos(w_u, e) - q_u)); W [U,D], E [N,D] -> [U,N]."""
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    En = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    return 1.0 / (1.0 + np.exp(-beta[:, None] * (Wn @ En.T - q[:, None])))


def make_users(E, labels, n_users, rng, like_rate=0.3):
    """Each user: a taste direction mixing one or two class centroids plus noise."""
    D = E.shape[1]
    cents = np.stack([E[labels == c].mean(0) for c in range(10)])
    cents /= np.linalg.norm(cents, axis=1, keepdims=True)
    W, q, beta, cls = [], [], [], []
    for _ in range(n_users):
        c = int(rng.integers(10))
        w = cents[c].copy()
        if rng.random() < 0.5:
            w = w + rng.uniform(0.2, 0.6) * cents[int(rng.integers(10))]
        w = w / np.linalg.norm(w) + rng.normal(0, 0.35 / np.sqrt(D), D)
        w /= np.linalg.norm(w)
        En = E / np.linalg.norm(E, axis=1, keepdims=True)
        cos = En @ w
        qq = float(np.quantile(cos, 1 - like_rate * rng.uniform(0.7, 1.3)))
        W.append(w), q.append(qq), beta.append(float(rng.uniform(12, 20))), cls.append(c)
    return np.array(W), np.array(q), np.array(beta), cls


def write_ratings(path, user_ids, shown, likes, item_ids):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "like"])
        for u, items, ls in zip(user_ids, shown, likes):
            for i, l in zip(items, ls):
                w.writerow([u, item_ids[i], int(l)])


def build_world(out_dir, n_items=5000, n_users=200, n_new=20, ae_epochs=2, ae_train=60000,
                shown=(100, 150), seed=0, ae_seconds=150):
    t0 = time.time()
    setup(seed)
    rng = np.random.default_rng(seed)
    Xtr, Ytr = load_fmnist("train")
    Xte, Yte = load_fmnist("test")
    if ae_train < len(Xtr):
        sel = rng.permutation(len(Xtr))[:ae_train]
        Xtr, Ytr = Xtr[sel], Ytr[sel]
    enc, dec, ae_info = train_autoencoder(Xtr, Ytr, epochs=ae_epochs, seed=seed, max_seconds=ae_seconds)
    dec_dir, world_dir = f"{out_dir}/decoder", f"{out_dir}/world"
    os.makedirs(world_dir, exist_ok=True)
    # catalogue from the test split (images the AE never trained on)
    sel = np.sort(rng.permutation(len(Xte))[:n_items])
    pix, lab = Xte[sel], Yte[sel]
    with torch.no_grad():
        E = enc(torch.from_numpy(pix).float().div(255).unsqueeze(1)).numpy().astype(np.float32)
    export_decoder(enc, dec, dec_dir, items=E, pixels=pix)  # parity: real catalogue embeddings and pixels
    item_ids = [f"i{k:05d}" for k in range(n_items)]
    np.save(f"{world_dir}/items.npy", E)
    np.save(f"{world_dir}/item_pixels.npy", pix.astype(np.uint8))
    np.save(f"{world_dir}/item_labels.npy", lab.astype(np.uint8))
    with open(f"{world_dir}/item_ids.txt", "w") as f:
        f.write("\n".join(item_ids) + "\n")
    # users
    total = n_users + n_new
    W, q, beta, cls = make_users(E, lab, total, rng)
    uids = [f"u{k + 1:04d}" for k in range(total)]
    P = oracle_prob(W, q, beta, E)
    shown_a, likes_a, shown_b, likes_b = [], [], [], []
    for u in range(total):
        k = int(rng.integers(shown[0], shown[1] + 1))
        perm = rng.permutation(n_items)
        a, b = perm[:k], perm[k:2 * k]  # disjoint: prior ratings vs verifier ratings
        shown_a.append(a), likes_a.append(rng.random(k) < P[u, a])
        shown_b.append(b), likes_b.append(rng.random(k) < P[u, b])
    tr, nw = slice(0, n_users), slice(n_users, total)
    write_ratings(f"{world_dir}/ratings.csv", uids[tr], shown_a[tr], likes_a[tr], item_ids)
    write_ratings(f"{world_dir}/ratings_new_users.csv", uids[nw], shown_a[nw], likes_a[nw], item_ids)
    write_ratings(f"{world_dir}/ratings_verifier.csv", uids, shown_b, likes_b, item_ids)
    users = {"oracle": "P(like|u,e) = 1/(1+exp(-beta*(cos(w,e)-q)))", "embedding_dim": int(E.shape[1]),
             "users": [{"id": uids[u], "split": "train" if u < n_users else "new", "w": [round(float(x), 7) for x in W[u]],
                        "q": float(q[u]), "beta": float(beta[u]), "class": CLASSES[cls[u]]} for u in range(total)]}
    with open(f"{world_dir}/users.json", "w") as f:
        json.dump(users, f)
    like_rate = float(np.mean(np.concatenate(likes_a)))
    info = {"autoencoder": ae_info, "items": n_items, "users": n_users, "new_users": n_new,
            "like_rate": like_rate, "seconds": round(time.time() - t0, 1), "seed": seed}
    with open(f"{world_dir}/world.json", "w") as f:
        json.dump(info, f, indent=2)
    log(f"world written to {out_dir}: {info}")
    return info


def load_users(path):
    with open(path) as f:
        d = json.load(f)
    us = d["users"]
    return ([u["id"] for u in us], np.array([u["w"] for u in us]), np.array([u["q"] for u in us]),
            np.array([u["beta"] for u in us]), [u["split"] for u in us])
