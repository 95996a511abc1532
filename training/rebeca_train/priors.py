"""Prior networks. All take (x_t [B,D], t [B] int64, user [B,U], like [B] int64) -> x0 [B,D].

The per-user table is NOT part of these modules: the graph takes the user's row as input.
The timestep embedding is a precomputed sinusoid table gathered by t (no sin/cos of raw t).
`Preconditioned` wraps either network with the EDM output parameterization (REBECA.md section 2), its
coefficients likewise precomputed per t, so the exported graph keeps the "x0 out" contract.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import T_STEPS, USER_DIM
from .schedule import alphas_cumprod


def timestep_table(dim, T=T_STEPS):
    t = torch.arange(T, dtype=torch.float64)[:, None]
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)[None]
    ang = t * freqs
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=1).float()


class MLPPrior(nn.Module):
    """Residual MLP: h = in(x_t) + c; blocks h += W(SiLU(LN(h) + c))."""

    def __init__(self, D=64, U=USER_DIM, hidden=512, blocks=3, temb=128):
        super().__init__()
        self.register_buffer("t_table", timestep_table(temb))
        self.t_proj = nn.Sequential(nn.Linear(temb, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.u_proj = nn.Linear(U, hidden)
        self.like_emb = nn.Embedding(3, hidden)
        self.inp = nn.Linear(D, hidden)
        self.norms = nn.ModuleList([nn.LayerNorm(hidden) for _ in range(blocks)])
        self.lins = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(blocks)])
        self.out_norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, D)

    def forward(self, x_t, t, user, like):
        c = F.silu(self.t_proj(self.t_table[t]) + self.u_proj(user) + self.like_emb(like))
        h = self.inp(x_t) + c
        for norm, lin in zip(self.norms, self.lins):
            h = h + lin(F.silu(norm(h) + c))
        return self.out(self.out_norm(h))


def _ln(x, eps=1e-6):
    """LayerNorm without affine, written in primitive ops (portable across opsets)."""
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps)


class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))

    def forward(self, x, ctx):
        B, N, d = x.shape
        M = ctx.shape[1]
        q = self.q(x).reshape(B, N, self.h, self.dh).transpose(1, 2)
        k = self.k(ctx).reshape(B, M, self.h, self.dh).transpose(1, 2)
        v = self.v(ctx).reshape(B, M, self.h, self.dh).transpose(1, 2)
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.dh), dim=-1)
        return self.o((a @ v).transpose(1, 2).reshape(B, N, d))


class Block(nn.Module):
    """AdaLN-zero + self-attention + gated cross-attention to cond tokens + MLP."""

    def __init__(self, d, heads, mlp):
        super().__init__()
        self.ada = nn.Linear(d, 6 * d)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)
        self.self_attn = Attention(d, heads)
        self.cross_attn = Attention(d, heads)
        self.gate = nn.Parameter(torch.zeros(d))
        self.mlp = nn.Sequential(nn.Linear(d, mlp), nn.GELU(), nn.Linear(mlp, d))

    def forward(self, x, cond_tokens, cond_vec):
        s1, b1, g1, s2, b2, g2 = self.ada(F.silu(cond_vec)).unsqueeze(1).chunk(6, dim=-1)
        h = _ln(x) * (1 + s1) + b1
        x = x + g1 * self.self_attn(h, h)
        x = x + torch.tanh(self.gate) * self.cross_attn(_ln(x), cond_tokens)
        h = _ln(x) * (1 + s2) + b2
        return x + g2 * self.mlp(h)


class RebecaPrior(nn.Module):
    """The paper's token transformer scaled down for D=64: linear tokenizer into n_tokens tokens,
    user/like/timestep conditioning tokens, AdaLN-zero blocks."""

    def __init__(self, D=64, U=USER_DIM, n_tokens=8, d_model=64, blocks=4, heads=4, mlp=256, temb=128):
        super().__init__()
        assert D % n_tokens == 0
        self.D, self.n, self.tok = D, n_tokens, D // n_tokens
        self.register_buffer("t_table", timestep_table(temb))
        self.tokenizer = nn.Linear(D, D)
        self.tok_proj = nn.Linear(self.tok, d_model)
        self.pos = nn.Parameter(torch.randn(n_tokens, d_model) * 0.02)
        self.t_proj = nn.Sequential(nn.Linear(temb, d_model), nn.SiLU(), nn.Linear(d_model, d_model))
        self.u_proj = nn.Linear(U, d_model)
        self.like_emb = nn.Embedding(3, d_model)
        self.blocks = nn.ModuleList([Block(d_model, heads, mlp) for _ in range(blocks)])
        self.out_proj = nn.Linear(d_model, self.tok)
        self.out = nn.Linear(D, D)

    def forward(self, x_t, t, user, like):
        B = x_t.shape[0]
        ct, cu, cl = self.t_proj(self.t_table[t]), self.u_proj(user), self.like_emb(like)
        cond_tokens = torch.stack([cu, cl, ct], dim=1)
        cond_vec = ct + cu + cl
        x = self.tok_proj(self.tokenizer(x_t).reshape(B, self.n, self.tok)) + self.pos
        for blk in self.blocks:
            x = blk(x, cond_tokens, cond_vec)
        return self.out(self.out_proj(_ln(x)).reshape(B, self.D))


def precondition_tables(alphas, sigma_data):
    """EDM coefficients (Karras et al. 2022) in VP terms, folded with x̃ = x_t/√ᾱ_t, float64 [T] each:
    x0 = skip[t]·x_t + out[t]·F(inp[t]·x_t, …). With σ² = (1−ᾱ)/ᾱ:
    skip = c_skip/√ᾱ = σ_d²√ᾱ/(1−ᾱ+ᾱσ_d²), inp = c_in/√ᾱ = 1/√(1−ᾱ+ᾱσ_d²), out = c_out = σ_d√(1−ᾱ)/√(1−ᾱ+ᾱσ_d²).
    All three stay bounded at both ends of the schedule (ᾱ_999 ≈ 2.4e-9), unlike σ itself."""
    a = np.asarray(alphas, np.float64)
    sd2 = float(sigma_data) ** 2
    den = 1 - a + a * sd2
    return sd2 * np.sqrt(a) / den, 1 / np.sqrt(den), np.sqrt(sd2) * np.sqrt(1 - a) / np.sqrt(den)


class Preconditioned(nn.Module):
    """x0 = c_skip·x̃ + c_out·F(c_in·x̃, t, user, like): the output tends to x̃ = x_t/√ᾱ as the noise
    vanishes, so at low noise the network only corrects x_t instead of re-synthesising it (a plain x0
    network has no path from x_t to its output and denoises worse than the identity there)."""

    def __init__(self, net, sigma_data):
        super().__init__()
        self.net = net
        self.sigma_data = float(sigma_data)
        skip, inp, out = precondition_tables(alphas_cumprod(), sigma_data)
        self.register_buffer("c_skip", torch.from_numpy(skip).float())
        self.register_buffer("c_in", torch.from_numpy(inp).float())
        self.register_buffer("c_out", torch.from_numpy(out).float())

    def forward(self, x_t, t, user, like):
        return self.c_skip[t][:, None] * x_t + self.c_out[t][:, None] * self.net(self.c_in[t][:, None] * x_t, t, user, like)


def build_prior(arch, D, U=USER_DIM, sigma_data=None, **kw):
    """`sigma_data` (the data's std) switches on the EDM parameterization; None builds the plain x0
    network of the first demo priors, so their checkpoints and manifests still load."""
    if arch == "mlp":
        net = MLPPrior(D=D, U=U, **kw)
    elif arch == "rebeca":
        net = RebecaPrior(D=D, U=U, **kw)
    else:
        raise ValueError(f"unknown --arch {arch!r} (expected 'mlp' or 'rebeca')")
    return net if sigma_data is None else Preconditioned(net, sigma_data)
