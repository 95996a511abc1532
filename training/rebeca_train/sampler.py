"""Reference samplers exactly as docs/model-format.md ("Samplers"): DDPM fixed-small (the paper's),
DDIM (eta = 0), DPM-Solver++(2M) and DPM-Solver++(2M) SDE (Lu et al. 2022, data-prediction form, midpoint
second-order term), with classifier-free guidance on x0 and x0 clipped every step.

Every sampler ends with its last evaluation's x0 (the step to ᾱ = 1). DPM-Solver++ takes a first-order
step (= DDIM) when it has no previous x0, so with S ≤ 2 it equals DDIM. Noise of step i comes from rng
stream i + 1 of the item's seed: the result of one item does not depend on its batch.
"""
import math

import numpy as np

from .common import LIKE, NULL_LIKE
from .rng import normal_batch
from .schedule import alphas_cumprod, timesteps

SAMPLERS = ("ddpm", "ddim", "dpmpp_2m", "dpmpp_2m_sde")


def sample(model_fn, user_vecs, null_vec, seeds, sampler="ddim", steps=50, guidance=3.0,
           clip_x0=6.0, D=64, alphas=None, spacing="linspace"):
    """model_fn(x_t f32 [N,D], t i64 [N], user f32 [N,U], like i64 [N]) -> x0 f32 [N,D].

    user_vecs: [B,U] rows for the conditional half; null_vec: [U] null row.
    Returns float32 [B,D]."""
    if alphas is None:
        alphas = alphas_cumprod()
    T = len(alphas)
    if sampler == "ddpm":
        steps, spacing = T, "linspace"
    elif sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}")
    B = len(seeds)
    user_vecs = np.asarray(user_vecs, dtype=np.float32)
    users = np.concatenate([user_vecs, np.repeat(np.asarray(null_vec, np.float32)[None], B, 0)])
    like = np.array([LIKE] * B + [NULL_LIKE] * B, dtype=np.int64)
    ts = timesteps(steps, T, spacing)
    x = normal_batch(seeds, 0, D)
    x0_prev, h_prev = None, None
    for i, t in enumerate(ts):
        x32 = x.astype(np.float32)
        out = model_fn(np.concatenate([x32, x32]), np.full(2 * B, t, dtype=np.int64), users, like)
        out = np.asarray(out, dtype=np.float32).astype(np.float64)
        x0c, x0u = out[:B], out[B:]
        x0 = x0u + guidance * (x0c - x0u)
        x0 = np.clip(x0, -clip_x0, clip_x0)
        a_t = alphas[t]
        if i == len(ts) - 1:
            x = x0 if sampler != "ddpm" else _ddpm_mean(x, x0, a_t, 1.0)
            break
        a_p = alphas[ts[i + 1]]
        if sampler == "ddim":
            eps = (x - np.sqrt(a_t) * x0) / np.sqrt(1 - a_t)
            x = np.sqrt(a_p) * x0 + np.sqrt(1 - a_p) * eps
        elif sampler == "ddpm":
            beta = 1 - a_t / a_p
            x = _ddpm_mean(x, x0, a_t, a_p) + np.sqrt((1 - a_p) / (1 - a_t) * beta) * normal_batch(seeds, i + 1, D)
        else:
            # DPM-Solver++ in λ = log(α/σ), α = √ᾱ, σ = √(1−ᾱ); h = λ_next − λ_now
            al_t, si_t, al_p, si_p = math.sqrt(a_t), math.sqrt(1 - a_t), math.sqrt(a_p), math.sqrt(1 - a_p)
            h = math.log(al_p / si_p) - math.log(al_t / si_t)
            d = x0 if x0_prev is None else x0 + (h / (2 * h_prev)) * (x0 - x0_prev)
            if sampler == "dpmpp_2m":
                x = (si_p / si_t) * x + al_p * (-math.expm1(-h)) * d
            else:
                x = ((si_p / si_t) * math.exp(-h)) * x + (al_p * (-math.expm1(-2 * h))) * d \
                    + (si_p * math.sqrt(-math.expm1(-2 * h))) * normal_batch(seeds, i + 1, D)
            x0_prev, h_prev = x0, h
    return x.astype(np.float32)


def _ddpm_mean(x, x0, a_t, a_p):
    beta = 1 - a_t / a_p
    return (np.sqrt(a_p) * beta / (1 - a_t)) * x0 + (np.sqrt(a_t / a_p) * (1 - a_p) / (1 - a_t)) * x
