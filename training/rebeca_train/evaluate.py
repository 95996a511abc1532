"""Evaluation (REBECA.md section 5): per-user verifier scores, permutation test, own vs other users."""
import json
import os
import time

import numpy as np
import torch

from .common import InputError, log, setup
from .data import load_interactions, load_items
from .export import load_prior, model_fn
from .sampler import sample
from .verifier import pixel_features, train_verifier, verifier_prob
from .world import load_decoder, load_users, oracle_prob


def permutation_test(P, owner, B=1000, seed=0):
    """P [n_group_users, n_items] P(like|v, item); owner [n_items] group index of each item's user.
    T = median_u m_u; shuffle owners across items (group sizes kept)."""
    rng = np.random.default_rng(seed)
    n = P.shape[0]
    counts = np.bincount(owner, minlength=n)
    cols = np.arange(P.shape[1])

    def stat(lab):
        return float(np.median(np.bincount(lab, weights=P[lab, cols], minlength=n) / counts))

    t_obs = stat(owner)
    ge = sum(stat(rng.permutation(owner)) >= t_obs for _ in range(B))
    return t_obs, (1 + ge) / (1 + B)


def own_other(P, owner):
    own = P[owner, np.arange(P.shape[1])]
    other = (P.sum(0) - own) / (P.shape[0] - 1)
    return float(own.mean()), float(other.mean())


def generate(model, table, rows, per_user, sampler="ddim", steps=50, guidance=3.0, clip=6.0, chunk=1000, D=64):
    seeds = [int(r) * 1000 + k + 1 for r in rows for k in range(per_user)]
    urows = np.repeat(np.asarray(rows), per_user)
    fn = model_fn(model)
    out = []
    for s in range(0, len(seeds), chunk):
        out.append(sample(fn, table[urows[s:s + chunk]], table[-1], seeds[s:s + chunk], sampler, steps, guidance, clip, D))
    return np.concatenate(out)


def evaluate(model_dir, control_dir, world, per_user=10, perms=1000, max_users=None, verifier_steps=3000,
             out=None, seed=0, ddpm_users=40, ddpm_per_user=2):
    setup(seed)
    t0 = time.time()
    uids, W, q, beta, split = load_users(os.path.join(world, "users.json"))
    uix = {u: i for i, u in enumerate(uids)}
    E, item_ids = load_items(os.path.join(world, "items.npy"), os.path.join(world, "item_ids.txt"))
    pix = np.load(os.path.join(world, "item_pixels.npy")).astype(np.float32) / 255
    # learned verifier on disjoint ratings, different encoder (pooled pixels)
    vusers, vrows = load_interactions(os.path.join(world, "ratings_verifier.csv"), item_ids)
    ver, ver_auc = train_verifier(vrows, pixel_features(pix), len(vusers), steps=verifier_steps, seed=seed)
    vix = {u: i for i, u in enumerate(vusers)}
    log(f"learned verifier held-out AUC {ver_auc:.3f}")
    decoder = None
    results = []

    def run(label, mdir, group_split, sampler="ddim", steps=50, n_users=max_users, per=per_user):
        nonlocal decoder
        man, d, model, table, ids = load_prior(mdir)
        if decoder is None:
            decoder = load_decoder(os.path.join(d, "decoder"), man["embedding_dim"])
        rows = [r for r, u in enumerate(ids) if u in uix and split[uix[u]] == group_split]
        if n_users:
            rows = rows[:n_users]
        if len(rows) < 2:
            raise InputError(f"{mdir}: fewer than 2 '{group_split}' users to evaluate")
        ts = time.time()
        G = generate(model, table, rows, per, sampler, steps, man["defaults"]["guidance"], man["clip_x0"])
        owner = np.repeat(np.arange(len(rows)), per)
        gu = [uix[ids[r]] for r in rows]
        Po = oracle_prob(W[gu], q[gu], beta[gu], G.astype(np.float64))
        with torch.no_grad():
            imgs = decoder(torch.from_numpy(G)).numpy()[:, 0]
        Pv = verifier_prob(ver, [vix[ids[r]] for r in rows], pixel_features(imgs))
        t_o, p_o = permutation_test(Po, owner, perms, seed)
        t_v, p_v = permutation_test(Pv, owner, perms, seed)
        own, other = own_other(Po, owner)
        vown, vother = own_other(Pv, owner)
        r = {"prior": label, "model": man["version"], "users": len(rows), "items_per_user": per,
             "sampler": f"{sampler}-{steps}", "guidance": man["defaults"]["guidance"],
             "oracle_median_m": round(t_o, 4), "oracle_p": round(p_o, 4), "oracle_own": round(own, 4),
             "oracle_other": round(other, 4), "oracle_effect": round(own - other, 4),
             "verifier_median_m": round(t_v, 4), "verifier_p": round(p_v, 4),
             "verifier_effect": round(vown - vother, 4), "seconds": round(time.time() - ts, 1)}
        log(json.dumps(r))
        results.append(r)

    run("trained", model_dir, "train")
    if control_dir:
        run("control (shuffled users)", control_dir, "train")
    _, _, _, _, ids = load_prior(model_dir)
    if any(u in uix and split[uix[u]] == "new" for u in ids):
        run("add-users (held-out)", model_dir, "new")
    else:
        log("no add-users users in the model; skipping that row")
    if ddpm_users:
        run("trained, paper sampler", model_dir, "train", "ddpm", 1000, ddpm_users, ddpm_per_user)
    report = {"learned_verifier_auc": round(ver_auc, 4), "permutations": perms, "rows": results,
              "seconds": round(time.time() - t0, 1)}
    print_table(report)
    if out:
        with open(out, "w") as f:
            json.dump(report, f, indent=2)
    return report


def print_table(rep):
    cols = ["prior", "sampler", "users", "oracle_median_m", "oracle_p", "oracle_own", "oracle_other", "oracle_effect",
            "verifier_median_m", "verifier_p", "verifier_effect"]
    print(f"learned verifier (NCF, pooled pixels) held-out AUC: {rep['learned_verifier_auc']}; permutations B={rep['permutations']}")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rep["rows"]:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
