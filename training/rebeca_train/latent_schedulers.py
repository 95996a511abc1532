"""Latent-diffusion schedulers (DDIM, Euler, PNDM/PLMS) in float64, the reference for the TypeScript
runtime in packages/inference/src/latent-schedulers.ts.

The math follows the published algorithms with Stable Diffusion 1.5's scheduler configuration
(epsilon prediction, scaled-linear betas, `steps_offset` 1, `set_alpha_to_one` false, PNDM with
`skip_prk_steps`), written here from the formulas rather than imported: diffusers is not installed on
the training machines and the runtime must not depend on it either.

Each scheduler is a small state machine: `timesteps` (what the UNet is called with, in order),
`scale(x, i)` (what the UNet sees at call i) and `step(eps, i, x)` (the next sample).
"""
import math

import numpy as np

SD15 = {"timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "steps_offset": 1}


def scaled_linear_alphas_cumprod(T=1000, beta_start=0.00085, beta_end=0.012):
    """ᾱ of the "scaled_linear" schedule: β linear in √β space, as SD 1.5 was trained with."""
    betas = np.linspace(math.sqrt(beta_start), math.sqrt(beta_end), T, dtype=np.float64) ** 2
    return np.cumprod(1.0 - betas)


class Ddim:
    """DDIM, η = 0, "leading" spacing: t_i = (S-1-i)·⌊T/S⌋ + offset; the step after the last
    timestep uses ᾱ[0] (set_alpha_to_one false)."""

    def __init__(self, alphas, steps, offset=1):
        T = len(alphas)
        self.a = alphas
        self.ratio = T // steps
        self.timesteps = [(steps - 1 - i) * self.ratio + offset for i in range(steps)]
        self.init_sigma = 1.0

    def scale(self, x, i):
        return x

    def step(self, eps, i, x):
        t = self.timesteps[i]
        prev = t - self.ratio
        a_t = self.a[t]
        a_p = self.a[prev] if prev >= 0 else self.a[0]
        x0 = (x - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
        return math.sqrt(a_p) * x0 + math.sqrt(1 - a_p) * eps


class Euler:
    """Euler (Karras et al. Algorithm 2 without churn), "linspace" spacing: t_i = (T-1)·(S-1-i)/(S-1)
    as floats, σ(t) linearly interpolated in σ = √((1-ᾱ)/ᾱ) over integer t, σ after the last = 0.
    The UNet sees x/√(σ²+1) and the fractional t."""

    def __init__(self, alphas, steps):
        T = len(alphas)
        sig = np.sqrt((1 - alphas) / alphas)
        self.timesteps = [(T - 1) * (steps - 1 - i) / (steps - 1) if steps > 1 else float(T - 1) for i in range(steps)]
        self.sigmas = [float(np.interp(t, np.arange(T, dtype=np.float64), sig)) for t in self.timesteps] + [0.0]
        self.init_sigma = self.sigmas[0]

    def scale(self, x, i):
        return x / math.sqrt(self.sigmas[i] ** 2 + 1)

    def step(self, eps, i, x):
        # derivative (x - x0)/σ is eps itself for epsilon prediction
        return x + eps * (self.sigmas[i + 1] - self.sigmas[i])


class Pndm:
    """PNDM with skip_prk_steps (= PLMS, what SD 1.5 ships with): leading timesteps as DDIM, with the
    second-to-last repeated at the front, so S steps make S+1 UNet calls. A linear multistep over the
    last ≤4 eps; the first step is a two-call Heun-like warm-up (calls 0 and 1 share timestep t_0)."""

    def __init__(self, alphas, steps, offset=1):
        T = len(alphas)
        self.a = alphas
        self.ratio = T // steps
        lead = [i * self.ratio + offset for i in range(steps)]
        plms = lead[:-1] + lead[-2:-1] + lead[-1:]
        self.timesteps = plms[::-1]
        self.init_sigma = 1.0
        self.ets = []
        self.cur = None

    def scale(self, x, i):
        return x

    def _prev(self, x, t, prev, eps):
        a_t = self.a[t]
        a_p = self.a[prev] if prev >= 0 else self.a[0]
        denom = a_t * math.sqrt(1 - a_p) + math.sqrt(a_t * (1 - a_t) * a_p)
        return math.sqrt(a_p / a_t) * x - (a_p - a_t) * eps / denom

    def step(self, eps, i, x):
        t = self.timesteps[i]
        prev = t - self.ratio
        if i != 1:
            self.ets = self.ets[-3:] + [eps]
        else:
            prev, t = t, t + self.ratio
        e = self.ets
        if len(e) == 1 and i == 0:
            out, self.cur = eps, x
        elif len(e) == 1 and i == 1:
            out = (eps + e[-1]) / 2
            x, self.cur = self.cur, None
        elif len(e) == 2:
            out = (3 * e[-1] - e[-2]) / 2
        elif len(e) == 3:
            out = (23 * e[-1] - 16 * e[-2] + 5 * e[-3]) / 12
        else:
            out = (55 * e[-1] - 59 * e[-2] + 37 * e[-3] - 9 * e[-4]) / 24
        return self._prev(x, t, prev, out)


def make(name, alphas, steps):
    if name == "ddim":
        return Ddim(alphas, steps)
    if name == "euler":
        return Euler(alphas, steps)
    if name == "pndm":
        return Pndm(alphas, steps)
    raise ValueError(f"unknown scheduler {name!r}")


def toy_eps(x, t):
    """A deterministic stand-in for a UNet, used by the reference trajectories (elementwise, so the
    TypeScript test can evaluate it exactly the same way)."""
    return np.tanh(x) * (0.5 + t / 2000.0) + 0.01 * np.cos(x * 3.0)


def toy_trajectory(name, alphas, steps, x_init):
    """Runs a scheduler with `toy_eps` from x_T = init_sigma·x_init; returns the final sample."""
    s = make(name, alphas, steps)
    x = np.asarray(x_init, np.float64) * s.init_sigma
    for i, t in enumerate(s.timesteps):
        x = s.step(toy_eps(s.scale(x, i), t), i, x)
    return s, x
