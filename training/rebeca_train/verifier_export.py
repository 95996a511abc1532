"""Exports the learned verifier (REBECA.md section 5) to ONNX so serving-side evaluation (`rebeca eval`,
services/monitor) can score users the demo oracle does not know.

Graph: image float32 [B,1,28,28] in [0,1] and user int64 [B] (row in verifier_users.txt) -> p_like [B].
The pooled-pixel features and their standardisation are inside the graph, so callers pass images."""
import json
import os

import numpy as np
import torch
import torch.nn as nn

from . import onnx_io
from .common import log, setup, sha256_file
from .data import load_interactions, load_items
from .verifier import pixel_features, train_verifier, verifier_prob


class VerifierGraph(nn.Module):
    def __init__(self, ncf, mu, sd):
        super().__init__()
        self.ncf = ncf
        self.register_buffer("mu", torch.from_numpy(np.asarray(mu, np.float32)))
        self.register_buffer("sd", torch.from_numpy(np.asarray(sd, np.float32)))

    def forward(self, image, user):
        # 4x4 average pools of the 28x28 image, as pixel_features does
        f = image.reshape(-1, 7, 4, 7, 4).mean(dim=(2, 4)).reshape(-1, 49)
        return torch.sigmoid(self.ncf(user, (f - self.mu) / self.sd))


def export_verifier(world, steps=3000, seed=0, parity_users=4, parity_items=8):
    setup(seed)
    _, item_ids = load_items(os.path.join(world, "items.npy"), os.path.join(world, "item_ids.txt"))
    pix = np.load(os.path.join(world, "item_pixels.npy")).astype(np.float32) / 255
    vusers, vrows = load_interactions(os.path.join(world, "ratings_verifier.csv"), item_ids)
    model, auc = train_verifier(vrows, pixel_features(pix), len(vusers), steps=steps, seed=seed)
    log(f"learned verifier: {len(vusers)} users, held-out AUC {auc:.4f}")
    graph = VerifierGraph(model, *model.norm)
    path = os.path.join(world, "verifier.onnx")
    onnx_io.export(graph, (torch.zeros(2, 1, 28, 28), torch.zeros(2, dtype=torch.long)), path, ["image", "user"], ["p_like"])
    with open(os.path.join(world, "verifier_users.txt"), "w") as f:
        f.write("\n".join(vusers) + "\n")
    # parity vectors: P(like) of a few catalogue items for a few users, from the torch model
    users = list(range(0, len(vusers), max(1, len(vusers) // parity_users)))[:parity_users]
    items = list(range(0, len(item_ids), max(1, len(item_ids) // parity_items)))[:parity_items]
    p = verifier_prob(model, users, pixel_features(pix[items]))
    with torch.no_grad():
        g = torch.stack([graph(torch.from_numpy(pix[items]).reshape(-1, 1, 28, 28), torch.full((len(items),), u, dtype=torch.long)) for u in users]).numpy()
    assert np.abs(g - p).max() < 1e-5, "graph and torch verifier disagree"
    meta = {"format": "rebeca.verifier/v1", "model": "NCF (GMF + MLP) on 4x4-pooled pixels", "users": len(vusers),
            "held_out_auc": round(auc, 4), "steps": steps, "seed": seed,
            "io": {"inputs": {"image": "float32 [B,1,28,28] in [0,1]", "user": "int64 [B], row of verifier_users.txt"}, "output": "p_like [B]"},
            "files": {"verifier": {"path": "verifier.onnx", "sha256": sha256_file(path)},
                      "users": {"path": "verifier_users.txt", "sha256": sha256_file(os.path.join(world, "verifier_users.txt"))}},
            "parity": {"users": [vusers[u] for u in users], "items": [item_ids[i] for i in items], "p_like": [[float(x) for x in row] for row in p]}}
    with open(os.path.join(world, "verifier.json"), "w") as f:
        json.dump(meta, f, indent=1)
    log(f"wrote {path} ({len(vusers)} users)")
    return meta
