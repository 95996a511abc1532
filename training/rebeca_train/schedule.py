"""Cosine (squaredcos_cap_v2) diffusion schedule, float64, and the timestep grids of the samplers."""
import math

import numpy as np

from .common import T_STEPS

SPACINGS = ("linspace", "leading", "trailing")


def alphas_cumprod(T=T_STEPS):
    def f(s):
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = np.array([min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)], dtype=np.float64)
    return np.cumprod(1.0 - betas)


def timesteps(S, T=T_STEPS, spacing="linspace"):
    """The S timesteps an S-step sampler visits, highest first (integer arithmetic, as TypeScript):
    linspace t_i = floor((T-1)(S-1-i)/(S-1)) ([T-1] when S == 1; ends at t = 0);
    leading  t_i = floor((S-1-i)·T/S) (ends at t = 0, starts below T-1);
    trailing t_i = T-1 - floor(i·T/S) (starts at T-1, ends near T/S: no evaluation is spent at t = 0)."""
    if S < 1 or S > T:
        raise ValueError(f"steps must be in 1..{T}")
    if spacing == "linspace":
        if S == 1:
            return [T - 1]
        return [((T - 1) * (S - 1 - i)) // (S - 1) for i in range(S)]
    if spacing == "leading":
        return [((S - 1 - i) * T) // S for i in range(S)]
    if spacing == "trailing":
        return [T - 1 - (i * T) // S for i in range(S)]
    raise ValueError(f"unknown spacing {spacing!r} (expected one of {', '.join(SPACINGS)})")
