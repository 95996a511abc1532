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
    """(image_proj, unet, vae_decoder) for a weights config; `arch` "small" is the trained decoder."""
    c = config
    if c.get("arch", "tiny") == "small":
        return build_small(c)
    return (ImageProj(c["embedding_dim"], c["ip_tokens"], c["cross_dim"]),
            TinyUNet(c["latent_channels"], c["unet_channels"], c["cross_dim"], ip_scale=c["ip_scale"]),
            TinyVaeDecoder(c["latent_channels"], c["vae_channels"], c["vae_upsamples"]))


# --- Trained Fashion-MNIST decoder ("small"): the same family at a size one CPU core can train ----------
# SD 1.5's UNet, shrunk: two resolutions (8×8, 4×4) instead of four, one resnet + one transformer block
# per level, a mid block, skip connections; every transformer block has self-attention (attn1),
# IP-Adapter's decoupled cross-attention (attn2) and a feed-forward (ff), as SD's BasicTransformerBlock.
# The VAE is SD's KL autoencoder shrunk to 32×32 grey images: 28×28 Fashion-MNIST padded by 2 pixels,
# 4×8×8 latent, the decoder crops back to 28×28 so its images are what the embedding encoder reads.


class TimeResBlock(nn.Module):
    """SD's ResnetBlock2D: GroupNorm-SiLU-conv twice, timestep added in between, 1×1 shortcut on a width change."""

    def __init__(self, cin, cout, temb_dim, groups=8):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_dim, cout) if temb_dim else None
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_emb_proj is not None:
            h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class SelfAttention(nn.Module):
    def __init__(self, ch, heads):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(ch, ch, bias=False)
        self.to_k = nn.Linear(ch, ch, bias=False)
        self.to_v = nn.Linear(ch, ch, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(ch, ch)])

    def forward(self, x):
        B, N, C = x.shape
        h, d = self.heads, C // self.heads
        q, k, v = (m(x).reshape(B, N, h, d).transpose(1, 2) for m in (self.to_q, self.to_k, self.to_v))
        a = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(d), dim=-1) @ v
        return self.to_out[0](a.transpose(1, 2).reshape(B, N, C))


class TransformerBlock(nn.Module):
    """SD's Transformer2DModel with one BasicTransformerBlock: proj_in, self-attn, decoupled cross-attn, ff, proj_out."""

    def __init__(self, ch, cross_dim, ip_scale, heads, groups=8):
        super().__init__()
        self.norm = nn.GroupNorm(groups, ch)
        self.proj_in = nn.Linear(ch, ch)
        self.norm1, self.attn1 = nn.LayerNorm(ch), SelfAttention(ch, heads)
        self.norm2, self.attn2 = nn.LayerNorm(ch), IpAttention(ch, cross_dim, ip_scale)
        self.norm3 = nn.LayerNorm(ch)
        self.ff = nn.Sequential(nn.Linear(ch, 2 * ch), nn.GELU(), nn.Linear(2 * ch, ch))
        self.proj_out = nn.Linear(ch, ch)

    def forward(self, x, text, ip):
        B, C, H, W = x.shape
        h = self.proj_in(self.norm(x).reshape(B, C, H * W).transpose(1, 2))
        h = h + self.attn1(self.norm1(h))
        h = h + self.attn2(self.norm2(h), text, ip)
        h = h + self.ff(self.norm3(h))
        return x + self.proj_out(h).transpose(1, 2).reshape(B, C, H, W)


class SmallUNet(nn.Module):
    """conv_in → [res+attn @8×8] → down → [res+attn @4×4] → mid (res, attn, res) → up blocks with skips → conv_out."""

    def __init__(self, latent_channels, ch, cross_dim, ip_scale=1.0, heads=4, groups=8):
        super().__init__()
        c0, c1 = ch, 2 * ch
        t = 4 * ch
        self.ch = ch
        self.conv_in = nn.Conv2d(latent_channels, c0, 3, padding=1)
        self.time_embedding = nn.ModuleDict({"linear_1": nn.Linear(ch, t), "linear_2": nn.Linear(t, t)})
        blk = lambda c: TransformerBlock(c, cross_dim, ip_scale, heads, groups)  # noqa: E731
        self.down_res = nn.ModuleList([TimeResBlock(c0, c0, t, groups), TimeResBlock(c0, c1, t, groups)])
        self.down_attn = nn.ModuleList([blk(c0), blk(c1)])
        self.downsample = nn.Conv2d(c0, c0, 3, stride=2, padding=1)
        self.mid_res = nn.ModuleList([TimeResBlock(c1, c1, t, groups), TimeResBlock(c1, c1, t, groups)])
        self.mid_attn = blk(c1)
        self.up_res = nn.ModuleList([TimeResBlock(c1 + c1, c1, t, groups), TimeResBlock(c1 + c0, c0, t, groups)])
        self.up_attn = nn.ModuleList([blk(c1), blk(c0)])
        self.upsample = nn.Conv2d(c1, c1, 3, padding=1)
        self.conv_norm_out = nn.GroupNorm(groups, c0)
        self.conv_out = nn.Conv2d(c0, latent_channels, 3, padding=1)

    def forward(self, sample, timestep, text_embeds, ip_tokens):
        temb = timestep_embedding(timestep, self.ch)
        temb = self.time_embedding["linear_2"](F.silu(self.time_embedding["linear_1"](temb)))
        h = self.conv_in(sample)
        s0 = self.down_attn[0](self.down_res[0](h, temb), text_embeds, ip_tokens)          # 8×8
        s1 = self.down_attn[1](self.down_res[1](self.downsample(s0), temb), text_embeds, ip_tokens)  # 4×4
        m = self.mid_res[1](self.mid_attn(self.mid_res[0](s1, temb), text_embeds, ip_tokens), temb)
        u = self.up_attn[0](self.up_res[0](torch.cat([m, s1], 1), temb), text_embeds, ip_tokens)
        u = self.upsample(F.interpolate(u, scale_factor=2.0, mode="nearest"))
        u = self.up_attn[1](self.up_res[1](torch.cat([u, s0], 1), temb), text_embeds, ip_tokens)
        return self.conv_out(F.silu(self.conv_norm_out(u)))


PAD = 2  # 28 → 32


class SmallVaeEncoder(nn.Module):
    """Grey 28×28 in [−1, 1] → (mean, logvar) of a C×8×8 latent (SD's Encoder + quant_conv, shrunk)."""

    def __init__(self, latent_channels, ch, groups=8):
        super().__init__()
        self.conv_in = nn.Conv2d(1, ch, 3, padding=1)
        self.blocks = nn.ModuleList([TimeResBlock(ch, ch, 0, groups), TimeResBlock(ch, 2 * ch, 0, groups),
                                     TimeResBlock(2 * ch, 2 * ch, 0, groups)])
        self.downs = nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1),
                                    nn.Conv2d(2 * ch, 2 * ch, 3, stride=2, padding=1)])
        self.conv_norm_out = nn.GroupNorm(groups, 2 * ch)
        self.conv_out = nn.Conv2d(2 * ch, 2 * latent_channels, 3, padding=1)
        self.quant_conv = nn.Conv2d(2 * latent_channels, 2 * latent_channels, 1)

    def forward(self, image):
        h = self.conv_in(F.pad(image, (PAD,) * 4, value=-1.0))
        h = self.downs[0](self.blocks[0](h))          # 16×16
        h = self.downs[1](self.blocks[1](h))          # 8×8
        h = self.conv_out(F.silu(self.conv_norm_out(self.blocks[2](h))))
        mean, logvar = self.quant_conv(h).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)


class SmallVaeDecoder(nn.Module):
    """C×8×8 latent → grey 28×28 in [−1, 1] (SD's post_quant_conv + Decoder, shrunk; crops the padding)."""

    def __init__(self, latent_channels, ch, groups=8):
        super().__init__()
        self.post_quant_conv = nn.Conv2d(latent_channels, latent_channels, 1)
        self.conv_in = nn.Conv2d(latent_channels, 2 * ch, 3, padding=1)
        self.blocks = nn.ModuleList([TimeResBlock(2 * ch, 2 * ch, 0, groups), TimeResBlock(2 * ch, 2 * ch, 0, groups),
                                     TimeResBlock(2 * ch, ch, 0, groups)])
        self.ups = nn.ModuleList([nn.Conv2d(2 * ch, 2 * ch, 3, padding=1), nn.Conv2d(ch, ch, 3, padding=1)])
        self.conv_norm_out = nn.GroupNorm(groups, ch)
        self.conv_out = nn.Conv2d(ch, 1, 3, padding=1)

    def forward(self, latent_sample):
        h = self.blocks[0](self.conv_in(self.post_quant_conv(latent_sample)))               # 8×8
        h = self.blocks[1](self.ups[0](F.interpolate(h, scale_factor=2.0, mode="nearest")))  # 16×16
        h = self.blocks[2](h)
        h = self.ups[1](F.interpolate(h, scale_factor=2.0, mode="nearest"))                  # 32×32
        out = self.conv_out(F.silu(self.conv_norm_out(h)))
        return out[:, :, PAD:-PAD, PAD:-PAD]


def build_small(config):
    c = config
    return (ImageProj(c["embedding_dim"], c["ip_tokens"], c["cross_dim"]),
            SmallUNet(c["latent_channels"], c["unet_channels"], c["cross_dim"], c["ip_scale"], c.get("heads", 4)),
            SmallVaeDecoder(c["latent_channels"], c["vae_channels"]))
