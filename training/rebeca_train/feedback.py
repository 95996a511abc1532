"""The nightly model from feedback (docs/operations.md#model-rollout): new interactions (CSV or
JSON Lines, local or s3://) → rows for new users (add-users) and re-fitted rows for existing users
with new likes (refit-users), the prior frozen → a candidate version → the gate on held-out likes
→ a report saying whether to publish and why. Publishing itself is the registry's (`rebeca models
publish`), run by training/nightly.sh only when the report passes.

Memory: interactions stream in; what stays is 9 bytes per row (int32 user, int32 item, int8 like)
plus one dict entry per distinct user, so 1M rows stay far below the job's bound (measured:
bench/README.md, "feedback-1m")."""
import csv
import json
import os
import resource
import shutil
import time
import zlib

import numpy as np

from .add_users import fit_rows
from .common import CLIP_X0, InputError, log, setup, sha256_file
from .data import load_items
from .evaluate import own_other, permutation_test
from .export import load_prior, make_parity, model_fn
from .manifest import refresh_hashes, validate
from .s3read import open_text
from .sampler import sample


def _records(stream, uri):
    """(line number, dict) per record of a CSV (header row) or JSON Lines stream."""
    if uri.endswith(".jsonl") or uri.endswith(".ndjson"):
        for n, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{uri}: line {n}: not JSON ({e.msg})")
            if not isinstance(rec, dict):
                raise InputError(f"{uri}: line {n}: expected an object")
            yield n, {k: ("" if v is None else str(v)) for k, v in rec.items()}
        return
    reader = csv.DictReader(stream)
    for n, rec in enumerate(reader, start=2):
        yield n, rec


def stream_interactions(uri, item_index, like_threshold=4.0):
    """Reads interactions as they arrive, validated as load_interactions does (user_id, item_id and
    like 0/1 or rating ≥ threshold). Returns (user ids, int32 user index, int32 item index, int8 like)."""
    users, uindex = [], {}
    u_arr, i_arr, l_arr = (np.empty(1 << 16, t) for t in (np.int32, np.int32, np.int8))
    size = 0
    mode = None
    with open_text(uri) as stream:
        for n, r in _records(stream, uri):
            if mode is None:
                for c in ("user_id", "item_id"):
                    if c not in r:
                        raise InputError(f"{uri}: missing column '{c}' (have {sorted(r)})")
                mode = "like" if "like" in r else "rating" if "rating" in r else None
                if mode is None:
                    raise InputError(f"{uri}: missing column 'like' or 'rating' (have {sorted(r)})")
            u = (r.get("user_id") or "").strip()
            if not u:
                raise InputError(f"{uri}: line {n}: empty user_id")
            item = item_index.get(r.get("item_id", ""))
            if item is None:
                raise InputError(f"{uri}: line {n}: unknown item id {r.get('item_id')!r}")
            raw = (r.get(mode) or "").strip()
            try:
                v = float(raw)
            except ValueError:
                raise InputError(f"{uri}: line {n}: {mode} {raw!r} is not a number")
            if not np.isfinite(v):
                raise InputError(f"{uri}: line {n}: {mode} {raw!r} is not finite")
            if mode == "like" and v not in (0.0, 1.0):
                raise InputError(f"{uri}: line {n}: like must be 0 or 1, got {raw!r}")
            if u not in uindex:
                uindex[u] = len(users)
                users.append(u)
            if size == len(u_arr):
                u_arr, i_arr, l_arr = (np.resize(a, 2 * len(a)) for a in (u_arr, i_arr, l_arr))
            u_arr[size], i_arr[size] = uindex[u], item
            l_arr[size] = int(v) if mode == "like" else int(v >= like_threshold)
            size += 1
    if size == 0:
        raise InputError(f"{uri}: no interactions")
    return users, u_arr[:size], i_arr[:size], l_arr[:size]


def held_out(user, item):
    """Whether an interaction is held out for the gate: a fixed hash of (user, item), ~20 %."""
    return zlib.crc32(f"{user}\x00{item}".encode()) % 5 == 0


def personalization(model, table, rows, liked, E, per_user, perms, seed, steps, guidance):
    """The gate's statistic on held-out likes: for each generated embedding, the cosine to each evaluated
    user's held-out liked items' mean direction (P[v, j]); the permutation test of T = median_u m_u, and
    the effect own − others. `seed` picks the sampling noise (runs with different seeds give the noise)."""
    seeds = [seed * 1_000_003 + int(r) * 1000 + k + 1 for r in rows for k in range(per_user)]
    urows = np.repeat(np.asarray(rows), per_user)
    emb = sample(model_fn(model), table[urows], table[-1], seeds, "ddim", steps, guidance, CLIP_X0, E.shape[1])
    owner = np.repeat(np.arange(len(rows)), per_user)
    unit = lambda x: x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)  # noqa: E731
    centres = unit(np.stack([unit(E[items]).mean(0) for items in liked]))
    P = (unit(emb) @ centres.T).T.astype(np.float64)  # [n_users, n_items]
    t_obs, p = permutation_test(P, owner, perms, seed) if perms else (float("nan"), float("nan"))
    own, other = own_other(P, owner)
    return {"T": t_obs, "p": p, "effect": own - other, "own": own, "others": other}


def build_candidate(model_dir, items, item_ids_path, interactions, out_dir, version, steps=300, lr=0.05, seed=0,
                    like_threshold=4.0, per_user=8, perms=1000, eval_users=64, eval_steps=20, guidance=3.0,
                    alpha=0.01, noise_seeds=3):
    """Builds the candidate version in out_dir and gates it; returns the report (also out_dir/gate.json)."""
    setup(seed)
    t0 = time.time()
    validate(model_dir)
    man, d, model, table, ids = load_prior(model_dir)
    E, item_ids = load_items(items, item_ids_path, expect_dim=man["embedding_dim"])
    users, U, I, L = stream_interactions(interactions, {iid: i for i, iid in enumerate(item_ids)}, like_threshold)
    rss_after_read = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    known = {u: r for r, u in enumerate(ids)}
    hold = np.fromiter((held_out(users[u], item_ids[i]) for u, i in zip(U, I)), bool, len(U))
    train_mask = ~hold
    likes_train = np.bincount(U[train_mask], weights=L[train_mask], minlength=len(users))
    fit_users = [k for k in range(len(users)) if likes_train[k] > 0]
    new_users = [k for k in fit_users if users[k] not in known]
    refit_users = [k for k in fit_users if users[k] in known]
    skipped = len(users) - len(fit_users)
    if not fit_users:
        raise InputError(f"{interactions}: no user has a like outside the held-out share")
    log(f"{len(U)} interactions: {len(new_users)} new users, {len(refit_users)} existing users to re-fit, {skipped} skipped without likes")

    # one row per fitted user: existing users start at their current row, new users at the population row
    null_row = len(ids)
    slot = {k: n for n, k in enumerate(fit_users)}
    init = np.stack([table[known[users[k]]] if users[k] in known else table[null_row] for k in fit_users])
    m = train_mask & np.isin(U, fit_users)
    batch_rows = np.stack([np.vectorize(slot.get)(U[m]), I[m], L[m]], 1)
    fitted, final_loss = fit_rows(model, init, E, batch_rows, steps, lr, seed, "feedback", min(512, len(batch_rows)))

    new_table = np.concatenate([table[:null_row], np.zeros((len(new_users), table.shape[1]), np.float32), table[null_row:]])
    for k in refit_users:
        new_table[known[users[k]]] = fitted[slot[k]]
    for n, k in enumerate(new_users):
        new_table[null_row + n] = fitted[slot[k]]
    cand_ids = ids + [users[k] for k in new_users]

    # the gate: users with held-out likes, the candidate against the current version on the same users
    liked_out = {}
    for u, i, like in zip(U[hold], I[hold], L[hold]):
        if like and u in slot:
            liked_out.setdefault(int(u), []).append(int(i))
    rng = np.random.default_rng(seed)
    evaluated = sorted(liked_out)
    if len(evaluated) > eval_users:
        evaluated = sorted(rng.choice(evaluated, eval_users, replace=False).tolist())
    if len(evaluated) < 4:
        raise InputError(f"{interactions}: only {len(evaluated)} users have held-out likes; the gate needs at least 4")
    liked = [liked_out[k] for k in evaluated]
    cand_rows = [known[users[k]] if users[k] in known else null_row + new_users.index(k) for k in evaluated]
    # the current version serves new users with its population row (the null row)
    cur_rows = [known.get(users[k], null_row) for k in evaluated]
    cand = personalization(model, new_table, cand_rows, liked, E, per_user, perms, seed, eval_steps, guidance)
    cur_runs = [personalization(model, table, cur_rows, liked, E, per_user, 0, seed + 1 + s, eval_steps, guidance)["effect"]
                for s in range(noise_seeds)]
    cur_effect = float(np.mean(cur_runs))
    cur_noise = float(np.std(cur_runs, ddof=1)) if len(cur_runs) > 1 else 0.0
    reasons = []
    if not cand["p"] <= alpha:
        reasons.append(f"permutation test p = {cand['p']:.4f} > {alpha}: the candidate's outputs are not specific to their users on held-out likes")
    if cand["effect"] < cur_effect - max(cur_noise, 1e-6):
        reasons.append(f"effect {cand['effect']:.4f} is worse than the current version's {cur_effect:.4f} by more than its seed-to-seed noise {cur_noise:.4f}")
    passed = not reasons
    report = {
        "passed": passed,
        "reasons": reasons,
        "version": version,
        "base": man["version"],
        "interactions": {"source": interactions, "rows": int(len(U)), "held_out": int(hold.sum()), "users": len(users),
                         "new_users": len(new_users), "refit_users": len(refit_users), "skipped_without_likes": skipped},
        "candidate": cand,
        "current": {"effect": cur_effect, "noise": cur_noise, "runs": cur_runs},
        "gate": {"alpha": alpha, "evaluated_users": len(evaluated), "per_user": per_user, "perms": perms, "steps": eval_steps,
                 "guidance": guidance},
        "fit": {"steps": steps, "lr": lr, "final_loss": round(final_loss, 5)},
        "peak_rss_mb": {"after_reading": round(rss_after_read, 1), "total": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)},
        "seconds": round(time.time() - t0, 1),
    }
    os.makedirs(out_dir, exist_ok=True)
    if passed:
        _write_version(d, man, model, new_table, cand_ids, len(cand_ids), out_dir, version, report)
    with open(os.path.join(out_dir, "gate.json"), "w") as f:
        json.dump(report, f, indent=1)
    log(f"gate {'passed' if passed else 'failed'}: " + ("; ".join(reasons) if reasons else
        f"p = {cand['p']:.4f}, effect {cand['effect']:.4f} vs current {cur_effect:.4f} ± {cur_noise:.4f}"))
    return report


def _write_version(src, man, model, table, ids, null_row, out_dir, version, report):
    """The candidate as a model directory: the current one's prior and decoder, the new table, ids, parity, manifest."""
    prior = man["files"]["prior"]["path"]
    shutil.copyfile(os.path.join(src, prior), os.path.join(out_dir, prior))
    dec = os.path.dirname(man["files"]["decoder"]["path"])
    shutil.copytree(os.path.join(src, dec), os.path.join(out_dir, dec), dirs_exist_ok=True)
    table.astype("<f4").tofile(os.path.join(out_dir, man["files"]["user_table"]["path"]))
    with open(os.path.join(out_dir, man["files"]["user_ids"]["path"]), "w") as f:
        f.write("\n".join(ids) + "\n")
    with open(os.path.join(out_dir, man["files"]["parity"]["path"]), "w") as f:
        json.dump(make_parity(model, table, null_row, man["embedding_dim"]), f)
    out = dict(man)
    out["version"] = version
    out["users"] = {"rows": int(table.shape[0]), "null_row": int(null_row)}
    out["files"] = json.loads(json.dumps(man["files"]))
    out["files"]["user_table"]["shape"] = [int(table.shape[0]), man["user_dim"]]
    out["training"] = dict(man.get("training", {}))
    out["training"].setdefault("feedback", []).append({k: report[k] for k in ("base", "interactions", "candidate", "current", "gate", "fit")})
    refresh_hashes(out_dir, out)
    validate(out_dir)


def refit_users(model_dir, items, item_ids_path, interactions, steps=300, lr=0.05, seed=0, like_threshold=4.0):
    """Re-fits the rows of existing users from their interactions (CSV/JSONL, path or s3://), in place:
    each row starts at its current value, the prior and every other row (the population row included)
    stay as they are. Users the model does not know are refused (use add-users). Returns the user ids."""
    setup(seed)
    t0 = time.time()
    validate(model_dir)
    man, d, model, table, ids = load_prior(model_dir)
    prior_sha = sha256_file(os.path.join(d, man["files"]["prior"]["path"]))
    E, item_ids = load_items(items, item_ids_path, expect_dim=man["embedding_dim"])
    users, U, I, L = stream_interactions(interactions, {iid: i for i, iid in enumerate(item_ids)}, like_threshold)
    known = {u: r for r, u in enumerate(ids)}
    unknown = [u for u in users if u not in known]
    if unknown:
        raise InputError(f"{interactions}: {len(unknown)} users are not in the model (add them with add-users), e.g. {unknown[:3]}")
    likes = np.bincount(U, weights=L, minlength=len(users))
    fit = [k for k in range(len(users)) if likes[k] > 0]
    if not fit:
        raise InputError(f"{interactions}: no user has any like")
    slot = {k: n for n, k in enumerate(fit)}
    m = np.isin(U, fit)
    batch_rows = np.stack([np.vectorize(slot.get)(U[m]), I[m], L[m]], 1)
    rows, final_loss = fit_rows(model, np.stack([table[known[users[k]]] for k in fit]), E, batch_rows, steps, lr, seed, "refit-users",
                                min(512, len(batch_rows)))
    for k in fit:
        table[known[users[k]]] = rows[slot[k]]
    table.astype("<f4").tofile(os.path.join(d, man["files"]["user_table"]["path"]))
    # parity.json pins some rows' outputs; a re-fitted row changes them, so it is made again
    with open(os.path.join(d, man["files"]["parity"]["path"]), "w") as f:
        json.dump(make_parity(model, table, man["users"]["null_row"], man["embedding_dim"]), f)
    man["training"].setdefault("refit_users", []).append(
        {"source": os.path.basename(interactions), "users": len(fit), "skipped_without_likes": len(users) - len(fit),
         "prior_sha256": prior_sha, "steps": steps, "lr": lr, "final_loss": round(final_loss, 5), "seconds": round(time.time() - t0, 1)})
    refresh_hashes(d, man)
    if sha256_file(os.path.join(d, man["files"]["prior"]["path"])) != prior_sha:
        raise RuntimeError("prior.onnx changed during refit-users")
    validate(model_dir)
    log(f"re-fitted {len(fit)} users; prior.onnx sha256 unchanged {prior_sha[:12]}")
    return [users[k] for k in fit]
