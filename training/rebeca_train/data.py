"""Loading and validating platform data: item embeddings, item ids, interactions CSV."""
import csv
import os

import numpy as np

from .common import InputError, log


def load_items(items_path, ids_path, expect_dim=None):
    if not os.path.exists(items_path):
        raise InputError(f"items file not found: {items_path}")
    try:
        E = np.load(items_path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{items_path}: not a readable .npy array ({e})")
    if E.ndim != 2:
        raise InputError(f"{items_path}: embeddings must be 2-D [N,D], got shape {E.shape}")
    if not np.issubdtype(E.dtype, np.floating):
        raise InputError(f"{items_path}: embeddings must be float, got {E.dtype}")
    E = E.astype(np.float32)
    if expect_dim is not None and E.shape[1] != expect_dim:
        raise InputError(f"{items_path}: embedding dimension {E.shape[1]} does not match expected {expect_dim}")
    bad = ~np.isfinite(E).all(axis=1)
    if bad.any():
        raise InputError(f"{items_path}: {int(bad.sum())} embeddings contain NaN/Inf (first row {int(np.argmax(bad))})")
    if not os.path.exists(ids_path):
        raise InputError(f"item ids file not found: {ids_path}")
    with open(ids_path) as f:
        ids = [ln.strip() for ln in f if ln.strip()]
    if len(ids) != len(E):
        raise InputError(f"{ids_path}: {len(ids)} item ids but {items_path} has {len(E)} rows")
    if len(set(ids)) != len(ids):
        raise InputError(f"{ids_path}: duplicate item ids")
    return E, ids


def load_interactions(path, item_ids, like_threshold=4.0):
    """Returns (user_ids list, rows: int array [n, 3] of (user_index, item_index, like))."""
    if not os.path.exists(path):
        raise InputError(f"interactions file not found: {path}")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        for c in ("user_id", "item_id"):
            if c not in cols:
                raise InputError(f"{path}: missing column '{c}' (have {cols})")
        if "like" in cols:
            mode = "like"
        elif "rating" in cols:
            mode = "rating"
        else:
            raise InputError(f"{path}: missing column 'like' or 'rating' (have {cols})")
        rows = list(reader)
    if not rows:
        raise InputError(f"{path}: no interactions")
    index = {iid: i for i, iid in enumerate(item_ids)}
    unknown = sorted({r["item_id"] for r in rows if r["item_id"] not in index})
    if unknown:
        raise InputError(f"{path}: {len(unknown)} unknown item ids, e.g. {unknown[:3]}")
    users, uindex, out = [], {}, []
    for n, r in enumerate(rows, start=2):
        u = (r["user_id"] or "").strip()
        if not u:
            raise InputError(f"{path}: line {n}: empty user_id")
        raw = (r[mode] or "").strip()
        try:
            v = float(raw)
        except ValueError:
            raise InputError(f"{path}: line {n}: {mode} {raw!r} is not a number")
        if not np.isfinite(v):
            raise InputError(f"{path}: line {n}: {mode} {raw!r} is not finite")
        if mode == "like":
            if v not in (0.0, 1.0):
                raise InputError(f"{path}: line {n}: like must be 0 or 1, got {raw!r}")
            like = int(v)
        else:
            like = int(v >= like_threshold)
        if u not in uindex:
            uindex[u] = len(users)
            users.append(u)
        out.append((uindex[u], index[r["item_id"]], like))
    return users, np.array(out, dtype=np.int64)


def drop_users_without_likes(users, rows, path=""):
    """Documented behaviour: users with no likes are skipped with a logged count.
    If no user has a like, that is an error."""
    likes = np.bincount(rows[:, 0], weights=rows[:, 2], minlength=len(users))
    keep = likes > 0
    n_drop = int((~keep).sum())
    if n_drop:
        dropped = [users[i] for i in np.nonzero(~keep)[0]]
        log(f"skipping {n_drop} users without likes in {path or 'interactions'}: {dropped[:5]}")
    if not keep.any():
        raise InputError(f"{path}: no user has any like; cannot train a like-conditioned prior")
    remap = -np.ones(len(users), dtype=np.int64)
    remap[keep] = np.arange(int(keep.sum()))
    new_users = [u for u, k in zip(users, keep) if k]
    rows = rows[keep[rows[:, 0]]].copy()
    rows[:, 0] = remap[rows[:, 0]]
    return new_users, rows, n_drop
