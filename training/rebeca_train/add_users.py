"""Fit table rows for new users with the prior frozen; append them; prior.onnx untouched."""
import json
import os
import time

import numpy as np
import torch

from .common import InputError, log, setup, sha256_file
from .data import drop_users_without_likes, load_interactions, load_items
from .export import load_prior, model_fn
from .manifest import refresh_hashes, validate
from .schedule import alphas_cumprod
from .train import x0_loss


def fit_rows(model, init, E, batch_rows, steps, lr, seed, label, batch=512):
    """Fits user rows (starting at `init` [n, U]) to interactions [m, 3] (row index into `init`, item,
    like) with the prior frozen; returns the rows (float32) and the last batch's loss."""
    for p in model.parameters():
        p.requires_grad_(False)
    rows = torch.nn.Parameter(torch.from_numpy(np.asarray(init, dtype=np.float32)).clone())

    class Rows(torch.nn.Module):
        def forward(self, u):
            return rows[u]

    ac = alphas_cumprod()
    sa, s1a = torch.from_numpy(np.sqrt(ac)).float(), torch.from_numpy(np.sqrt(1 - ac)).float()
    Et, R = torch.from_numpy(E), torch.from_numpy(np.asarray(batch_rows, dtype=np.int64))
    opt = torch.optim.Adam([rows], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    loss = torch.tensor(float("nan"))
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(R), (batch,), generator=gen)
        loss = x0_loss(model, Rows(), Et, R[idx], sa, s1a, 0.0, -1, gen, drop=False)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            log(f"{label} step {step} loss {loss.item():.4f}")
    return rows.detach().numpy().astype(np.float32), float(loss.item())


def add_users(model_dir, items, item_ids_path, interactions, steps=600, lr=0.05, batch=512, seed=0,
              like_threshold=4.0):
    setup(seed)
    t0 = time.time()
    validate(model_dir)
    man, d, model, table, ids = load_prior(model_dir)
    # the graph's weights must reproduce the parity vectors before we trust them
    with open(os.path.join(d, man["files"]["parity"]["path"])) as f:
        m = json.load(f)["model"]
    got = model_fn(model)(np.array(m["x_t"], np.float32), np.array(m["t"]), table[m["user_rows"]], np.array(m["like"]))
    if not np.allclose(got, np.array(m["x0"]), atol=1e-5):
        raise InputError(f"{model_dir}: prior.onnx weights do not reproduce parity.json; refusing to fit users")
    prior_sha = sha256_file(os.path.join(d, man["files"]["prior"]["path"]))
    E, item_ids = load_items(items, item_ids_path, expect_dim=man["embedding_dim"])
    users, rows = load_interactions(interactions, item_ids, like_threshold)
    users, rows, n_skipped = drop_users_without_likes(users, rows, interactions)
    dup = sorted(set(users) & set(ids))
    if dup:
        raise InputError(f"{interactions}: {len(dup)} users already in the model, e.g. {dup[:3]}")
    null_vec = table[-1]
    n_old = len(ids)
    # new rows start at the population (null) row
    init = torch.from_numpy(np.repeat(null_vec[None], len(users), 0)) + 0.01 * torch.randn(len(users), table.shape[1])
    fitted, final_loss = fit_rows(model, init.numpy(), E, rows, steps, lr, seed, "add-users", batch)
    new_tab = np.concatenate([table[:-1], fitted, table[-1:]])
    new_tab.astype("<f4").tofile(os.path.join(d, man["files"]["user_table"]["path"]))
    with open(os.path.join(d, man["files"]["user_ids"]["path"]), "w") as f:
        f.write("\n".join(ids + users) + "\n")
    rows_n = new_tab.shape[0]
    man["users"] = {"rows": rows_n, "null_row": rows_n - 1}
    man["files"]["user_table"]["shape"] = [rows_n, man["user_dim"]]
    man["training"].setdefault("added_users", []).append(
        {"source": os.path.basename(interactions), "users": len(users), "first_row": n_old,
         "prior_sha256_before": prior_sha,
         "skipped_without_likes": n_skipped, "steps": steps, "lr": lr, "final_loss": round(final_loss, 5),
         "seconds": round(time.time() - t0, 1)})
    refresh_hashes(d, man)
    if sha256_file(os.path.join(d, man["files"]["prior"]["path"])) != prior_sha:
        raise RuntimeError("prior.onnx changed during add-users")
    validate(model_dir)
    log(f"added {len(users)} users (skipped {n_skipped} without likes); prior.onnx sha256 unchanged {prior_sha[:12]}")
    return users
