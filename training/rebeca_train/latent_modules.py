"""Tiny latent-diffusion modules whose structure (and state-dict key names) mirror the real ones:

- `ImageProj`: IP-Adapter's image projection (`proj` Linear E → tokens·cross, `norm` LayerNorm);
- `TinyUNet`: an SD-style UNet reduced to one resnet + one transformer block, whose cross-attention is
  IP-Adapter's *decoupled* attention: text tokens through `to_k`/`to_v`, image tokens through
  `to_k_ip`/`to_v_ip`, the two results added with `ip_scale`;
- `TinyVaeDecoder`: the VAE decoder (`post_quant_conv`, `conv_in`, upsampling blocks, `conv_out`).

They exist so that fixtures with the real models' I/O signatures are small enough to commit (< 1 MB)
and so that the export path (`latent_export.py`) is exercised here. Real SD 1.5 weights go through the
diffusers classes instead (see docs/latent-export.md).
"""
import math

import torch
from torch import nn
from torch.nn import functional as F


def timestep_embedding(t, dim):
    """Sinusoidal embedding of (possibly fractional) timesteps, as SD's `Timesteps(flip_sin_to_cos)`."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ImageProj(nn.Module):
    def __init__(self, embed_dim, tokens, cross_dim):
        super().__init__()
        self.tokens, self.cross_dim = tokens, cross_dim
        self.proj = nn.Linear(embed_dim, tokens * cross_dim)
        self.norm = nn.LayerNorm(cross_dim)

    def forward(self, image_embeds):
        x = self.proj(image_embeds).reshape(-1, self.tokens, self.cross_dim)
        return self.norm(x)


class ResBlock(nn.Module):
    def __init__(self, ch, temb_dim, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, ch)
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_dim, ch)
        self.norm2 = nn.GroupNorm(groups, ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return x + h


class IpAttention(nn.Module):
    """Cross-attention with IP-Adapter's decoupled image branch (single head at this size)."""

    def __init__(self, ch, cross_dim, ip_scale):
        super().__init__()
        self.ip_scale = ip_scale
        self.to_q = nn.Linear(ch, ch, bias=False)
        self.to_k = nn.Linear(cross_dim, ch, bias=False)
        self.to_v = nn.Linear(cross_dim, ch, bias=False)
        self.to_k_ip = nn.Linear(cross_dim, ch, bias=False)
        self.to_v_ip = nn.Linear(cross_dim, ch, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(ch, ch)])

    def forward(self, x, text, ip):
        q = self.to_q(x)
        scale = 1.0 / math.sqrt(q.shape[-1])
        a = torch.softmax(q @ self.to_k(text).transpose(1, 2) * scale, dim=-1) @ self.to_v(text)
        b = torch.softmax(q @ self.to_k_ip(ip).transpose(1, 2) * scale, dim=-1) @ self.to_v_ip(ip)
        return self.to_out[0](a + self.ip_scale * b)


class TinyUNet(nn.Module):
    def __init__(self, latent_channels, ch, cross_dim, groups=8, ip_scale=1.0):
        super().__init__()
        self.ch = ch
        self.conv_in = nn.Conv2d(latent_channels, ch, 3, padding=1)
        self.time_embedding = nn.ModuleDict({"linear_1": nn.Linear(ch, 4 * ch), "linear_2": nn.Linear(4 * ch, 4 * ch)})
        self.resnet = ResBlock(ch, 4 * ch, groups)
        self.norm = nn.GroupNorm(groups, ch)
        self.attn2 = IpAttention(ch, cross_dim, ip_scale)
        self.conv_norm_out = nn.GroupNorm(groups, ch)
        self.conv_out = nn.Conv2d(ch, latent_channels, 3, padding=1)

    def forward(self, sample, timestep, text_embeds, ip_tokens):
        temb = timestep_embedding(timestep, self.ch)
        temb = self.time_embedding["linear_2"](F.silu(self.time_embedding["linear_1"](temb)))
        h = self.resnet(self.conv_in(sample), temb)
        B, C, H, W = h.shape
        seq = self.norm(h).reshape(B, C, H * W).transpose(1, 2)
        h = h + self.attn2(seq, text_embeds, ip_tokens).transpose(1, 2).reshape(B, C, H, W)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class TinyVaeDecoder(nn.Module):
    def __init__(self, latent_channels, ch, ups, groups=8):
        super().__init__()
        self.post_quant_conv = nn.Conv2d(latent_channels, latent_channels, 1)
        self.conv_in = nn.Conv2d(latent_channels, ch, 3, padding=1)
        self.up_blocks = nn.ModuleList([nn.Conv2d(ch, ch, 3, padding=1) for _ in range(ups)])
        self.conv_norm_out = nn.GroupNorm(groups, ch)
        self.conv_out = nn.Conv2d(ch, 3, 3, padding=1)

    def forward(self, latent_sample):
        h = self.conv_in(self.post_quant_conv(latent_sample))
        for conv in self.up_blocks:
            h = conv(F.silu(F.interpolate(h, scale_factor=2.0, mode="nearest")))
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class UNetWithText(nn.Module):
    """The graph the worker runs: the empty prompt's text embeddings are a constant (REBECA generates
    from the image embedding alone), so they are baked in and the UNet's inputs are the contract's
    `sample`, `timestep`, `image_prompt_embeds`."""

    def __init__(self, unet, text_embeds):
        super().__init__()
        self.unet = unet
        self.register_buffer("text_embeds", text_embeds.detach().clone())

    def forward(self, sample, timestep, image_prompt_embeds):
        text = self.text_embeds[None].expand(sample.shape[0], -1, -1)
        return self.unet(sample, timestep, text, image_prompt_embeds)


def build(config):
    c = config
    return (ImageProj(c["embedding_dim"], c["ip_tokens"], c["cross_dim"]),
            TinyUNet(c["latent_channels"], c["unet_channels"], c["cross_dim"], ip_scale=c["ip_scale"]),
            TinyVaeDecoder(c["latent_channels"], c["vae_channels"], c["vae_upsamples"]))
