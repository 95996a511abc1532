"""Reference samplers (DDIM eta=0, DDPM fixed-small) exactly as docs/model-format.md."""
import numpy as np

from .common import LIKE, NULL_LIKE
from .rng import normal_batch
from .schedule import alphas_cumprod, timesteps


def sample(model_fn, user_vecs, null_vec, seeds, sampler="ddim", steps=50, guidance=3.0,
           clip_x0=6.0, D=64, alphas=None):
    """model_fn(x_t f32 [N,D], t i64 [N], user f32 [N,U], like i64 [N]) -> x0 f32 [N,D].

    user_vecs: [B,U] rows for the conditional half; null_vec: [U] null row.
    Returns float32 [B,D]."""
    if alphas is None:
        alphas = alphas_cumprod()
    T = len(alphas)
    if sampler == "ddpm":
        steps = T
    elif sampler != "ddim":
        raise ValueError(f"unknown sampler {sampler!r}")
    B = len(seeds)
    user_vecs = np.asarray(user_vecs, dtype=np.float32)
    users = np.concatenate([user_vecs, np.repeat(np.asarray(null_vec, np.float32)[None], B, 0)])
    like = np.array([LIKE] * B + [NULL_LIKE] * B, dtype=np.int64)
    ts = timesteps(steps, T)
    x = normal_batch(seeds, 0, D)
    for i, t in enumerate(ts):
        x32 = x.astype(np.float32)
        out = model_fn(np.concatenate([x32, x32]), np.full(2 * B, t, dtype=np.int64), users, like)
        out = np.asarray(out, dtype=np.float32).astype(np.float64)
        x0c, x0u = out[:B], out[B:]
        x0 = x0u + guidance * (x0c - x0u)
        x0 = np.clip(x0, -clip_x0, clip_x0)
        a_t = alphas[t]
        last = i == len(ts) - 1
        a_p = 1.0 if last else alphas[ts[i + 1]]
        if sampler == "ddim":
            eps = (x - np.sqrt(a_t) * x0) / np.sqrt(1 - a_t)
            x = np.sqrt(a_p) * x0 + np.sqrt(1 - a_p) * eps
        else:
            beta = 1 - a_t / a_p
            mean = (np.sqrt(a_p) * beta / (1 - a_t)) * x0 + (np.sqrt(a_t / a_p) * (1 - a_p) / (1 - a_t)) * x
            if not last:
                z = normal_batch(seeds, i + 1, D)
                x = mean + np.sqrt((1 - a_p) / (1 - a_t) * beta) * z
            else:
                x = mean
    return x.astype(np.float32)
