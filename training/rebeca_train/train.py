"""Train an x0-predicting prior from item embeddings + interactions (CFG dropout, early stopping)."""
import time

import numpy as np
import torch
import torch.nn as nn

from .common import InputError, NULL_LIKE, USER_DIM, log, setup
from .data import drop_users_without_likes, load_interactions, load_items
from .priors import build_prior
from .schedule import alphas_cumprod

ARCH_DEFAULTS = {"mlp": {"hidden": 256, "blocks": 3}, "rebeca": {"n_tokens": 8, "d_model": 64, "blocks": 4, "heads": 4, "mlp": 256}}


def diffuse(x0, t, noise, sqrt_a, sqrt_1ma):
    return sqrt_a[t][:, None] * x0 + sqrt_1ma[t][:, None] * noise


def x0_loss(model, table, E, batch, sa, s1a, p_drop, null_row, gen, drop=True, edm_weight=True):
    """batch: LongTensor [n,3] (user_row, item, like). x0 MSE, shared by training, validation and add-users.
    With a preconditioned model and `edm_weight`, each row is weighted by 1/c_out(t)² (EDM's λ(σ)): the
    MSE of the network's own output F, which is O(1) at every t, so the low-noise steps that the
    preconditioning exists for are trained too (unweighted, their x0 error is ~1e-4 of the loss)."""
    u, i, like = batch[:, 0], batch[:, 1], batch[:, 2]
    x0 = E[i]
    t = torch.randint(0, len(sa), (len(batch),), generator=gen)
    noise = torch.randn(x0.shape, generator=gen)
    if drop:
        u = torch.where(torch.rand(len(u), generator=gen) < p_drop, torch.full_like(u, null_row), u)
        like = torch.where(torch.rand(len(like), generator=gen) < p_drop, torch.full_like(like, NULL_LIKE), like)
    pred = model(diffuse(x0, t, noise, sa, s1a), t, table(u), like)
    err = (pred - x0) ** 2
    if edm_weight and hasattr(model, "c_out"):
        err = err / model.c_out[t][:, None] ** 2
    return err.mean()


def train_prior(items, item_ids_path, interactions, arch="mlp", steps=4000, batch=512, lr=1e-3, p_drop=0.15,
                val_frac=0.1, eval_every=200, patience=6, seed=0, like_threshold=4.0, shuffle_users=False,
                max_seconds=None):
    setup(seed)
    t0 = time.time()
    E, item_ids = load_items(items, item_ids_path)
    users, rows = load_interactions(interactions, item_ids, like_threshold)
    users, rows, n_skipped = drop_users_without_likes(users, rows, interactions)
    rng = np.random.default_rng(seed)
    if shuffle_users:  # control: user labels carry no information about taste
        rows[:, 0] = rows[rng.permutation(len(rows)), 0]
    D, n_users = E.shape[1], len(users)
    perm = rng.permutation(len(rows))
    n_val = max(1, int(len(rows) * val_frac))
    if len(rows) - n_val < 1:
        raise InputError(f"{interactions}: too few interactions ({len(rows)}) to split off validation")
    val, tr = torch.from_numpy(rows[perm[:n_val]]), torch.from_numpy(rows[perm[n_val:]])
    cfg = dict(ARCH_DEFAULTS[arch]) if arch in ARCH_DEFAULTS else None
    if cfg is None:
        raise InputError(f"unknown --arch {arch!r} (expected 'mlp' or 'rebeca')")
    cfg["sigma_data"] = round(float(E.std()), 6)  # EDM preconditioning (priors.Preconditioned)
    model = build_prior(arch, D, USER_DIM, **cfg)
    table = nn.Embedding(n_users + 1, USER_DIM)
    nn.init.normal_(table.weight, std=1.0)
    ac = alphas_cumprod()
    sa = torch.from_numpy(np.sqrt(ac)).float()
    s1a = torch.from_numpy(np.sqrt(1 - ac)).float()
    Et = torch.from_numpy(E)
    opt = torch.optim.AdamW(list(model.parameters()) + list(table.parameters()), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100))
    gen = torch.Generator().manual_seed(seed)
    best, best_state, bad, history = float("inf"), None, 0, []
    log(f"train-prior arch={arch} D={D} users={n_users} interactions={len(rows)} "
        f"params={sum(p.numel() for p in model.parameters())}")
    step = 0
    for step in range(1, steps + 1):
        model.train()
        idx = torch.randint(0, len(tr), (batch,), generator=gen)
        loss = x0_loss(model, table, Et, tr[idx], sa, s1a, p_drop, n_users, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % eval_every == 0 or step == steps:
            model.eval()
            with torch.no_grad():  # fixed-noise validation, 4 passes
                vg = torch.Generator().manual_seed(1234)
                vl = float(np.mean([x0_loss(model, table, Et, val, sa, s1a, 0, n_users, vg, drop=False,
                                            edm_weight=False).item()
                                    for _ in range(4)]))
            history.append({"step": step, "train": round(loss.item(), 5), "val": round(vl, 5)})
            log(f"step {step} train {loss.item():.4f} val {vl:.4f} ({time.time() - t0:.0f}s)")
            if vl < best - 1e-4:
                best, bad = vl, 0
                best_state = ({k: v.clone() for k, v in model.state_dict().items()}, table.weight.detach().clone(), step)
            else:
                bad += 1
                if bad >= patience:
                    log(f"early stopping at step {step}; best val {best:.4f} at step {best_state[2]}")
                    break
            if max_seconds and time.time() - t0 > max_seconds:
                log("time budget reached")
                break
    model.load_state_dict(best_state[0])
    ckpt = {"arch": arch, "config": cfg, "D": D, "user_dim": USER_DIM, "state_dict": best_state[0],
            "user_table": best_state[1].numpy(), "user_ids": users,
            "training": {"arch": arch, "config": cfg, "interactions": len(rows), "users": n_users,
                         "users_skipped_without_likes": n_skipped, "items": len(E), "best_step": best_state[2],
                         "steps_run": step, "best_val_loss": best, "history": history, "seed": seed,
                         "batch": batch, "lr": lr, "p_drop_user": p_drop, "p_drop_like": p_drop,
                         "shuffled_users": shuffle_users, "seconds": round(time.time() - t0, 1),
                         "objective": "x0 = c_skip·x̃ + c_out·F (EDM); MSE of F (x0 MSE / c_out²), t ~ U{0..999}; "
                                      "validation: unweighted x0 MSE"}}
    return ckpt
