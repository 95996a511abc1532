"""Cosine (squaredcos_cap_v2) diffusion schedule, float64."""
import math

import numpy as np

from .common import T_STEPS


def alphas_cumprod(T=T_STEPS):
    def f(s):
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = np.array([min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)], dtype=np.float64)
    return np.cumprod(1.0 - betas)


def timesteps(S, T=T_STEPS):
    """t_i = floor((T-1)(S-1-i)/(S-1)), [T-1] when S == 1."""
    if S < 1:
        raise ValueError("steps must be >= 1")
    if S == 1:
        return [T - 1]
    return [((T - 1) * (S - 1 - i)) // (S - 1) for i in range(S)]
