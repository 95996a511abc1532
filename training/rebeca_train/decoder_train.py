"""Training the Fashion-MNIST latent-diffusion decoder: a small KL-VAE, then a UNet in its latent space
conditioned on the committed encoder's 64-d embedding through the IP-Adapter route (image projection →
tokens → decoupled cross-attention), with condition dropout so classifier-free guidance works.

The result is a `rebeca.latent-weights/v1` checkpoint (`arch: "small"`) that `export-latent` turns
into the `latent-diffusion` decoder contract (docs/model-format.md), exactly as it would SD 1.5.
Budgets are fixed step counts (seeded, reproducible); CPU seconds are logged beside them.
"""
import copy
import math
import os
import time

import numpy as np
import torch
from torch.nn import functional as F

from . import latent_modules, latent_schedulers, onnx_io
from .common import InputError, log, setup, sha256_file
from .latent_export import WEIGHTS_FORMAT, load_exported
from .world import Encoder, load_fmnist

SMALL_CONFIG = {"arch": "small", "embedding_dim": 64, "ip_tokens": 4, "cross_dim": 64, "text_tokens": 4,
                "latent_channels": 4, "latent_size": 8, "unet_channels": 32, "heads": 4, "vae_channels": 16,
                "ip_scale": 1.0, "latent_scale": 1.0}
VAE_FORMAT = "rebeca.small-vae/v1"


def images_pm1(pixels):
    """uint8 [N, 28, 28] → float32 [N, 1, 28, 28] in [−1, 1] (the VAE's range, as SD's)."""
    return torch.from_numpy(np.asarray(pixels)).float().div(127.5).sub(1.0).unsqueeze(1)


def cosine_lr(step, steps, lr, warmup=100):
    if step < warmup:
        return lr * (step + 1) / warmup
    return lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


class EncoderFeatures(torch.nn.Module):
    """An LPIPS-like perceptual distance from the frozen embedding encoder (decoder/encoder.onnx): its two
    conv activations, unit-normalised over channels, and its embedding, compared by mean squared difference.
    Deliberately not the realism classifier: the network that scores Fashion-FID must not be trained against."""

    def __init__(self, encoder_path):
        super().__init__()
        self.net = load_embedding_encoder(encoder_path).requires_grad_(False)

    def _feats(self, x_pm1):
        x = (x_pm1 + 1) / 2
        h1 = F.relu(self.net.c1(x))
        h2 = F.relu(self.net.c2(h1))
        unit = [h / (h.pow(2).sum(1, keepdim=True).sqrt() + 1e-6) for h in (h1, h2)]
        return unit + [self.net(x) / 8.0]  # embedding at unit-ish scale (standardised 64-d: norm ≈ 8)

    def forward(self, a, b):
        return sum((fa - fb).pow(2).sum(1).mean() for fa, fb in zip(self._feats(a), self._feats(b)))


def train_vae(out, steps=500, batch=128, lr=2e-3, kl_weight=1e-4, seed=0, config=None, train_images=None,
              perceptual_weight=0.0, perceptual_encoder=None):
    """KL autoencoder (SD's recipe without the GAN): L1 + MSE reconstruction + a small KL to N(0, 1), plus
    `perceptual_weight` × EncoderFeatures(`perceptual_encoder`) (sharper than pixel losses alone).
    Writes {format, config, encoder, decoder, stats} to `out`."""
    setup(seed)
    if perceptual_weight > 0 and not perceptual_encoder:
        raise InputError("a perceptual weight needs --perceptual-encoder (decoder/encoder.onnx)")
    perceptual = EncoderFeatures(perceptual_encoder) if perceptual_weight > 0 else None
    cfg = dict(config or SMALL_CONFIG)
    X = images_pm1(load_fmnist("train")[0] if train_images is None else train_images)
    enc = latent_modules.SmallVaeEncoder(cfg["latent_channels"], cfg["vae_channels"])
    dec = latent_modules.SmallVaeDecoder(cfg["latent_channels"], cfg["vae_channels"])
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    g = torch.Generator().manual_seed(seed)
    t0, c0 = time.time(), time.process_time()
    for step in range(steps):
        for grp in opt.param_groups:
            grp["lr"] = cosine_lr(step, steps, lr, warmup=min(100, steps // 10 + 1))
        x = X[torch.randint(len(X), (batch,), generator=g)]
        mean, logvar = enc(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=g)
        rec = dec(z)
        l1, mse = (rec - x).abs().mean(), (rec - x).pow(2).mean()
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
        loss = l1 + mse + kl_weight * kl
        perc = perceptual(rec, x) if perceptual is not None else torch.zeros(())
        loss = loss + perceptual_weight * perc
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 100 == 0 or step == steps - 1:
            log(f"VAE step {step + 1}/{steps} l1 {l1.item():.4f} mse {mse.item():.4f} kl {kl.item():.2f} perc {perc.item():.4f} "
                f"cpu {time.process_time() - c0:.0f}s")
    enc.eval(), dec.eval()
    stats = {"steps": steps, "batch": batch, "lr": lr, "kl_weight": kl_weight, "perceptual_weight": perceptual_weight,
             "l1": float(l1.item()), "mse": float(mse.item()), "kl": float(kl.item()), "perceptual": float(perc.item()),
             "seconds": round(time.time() - t0, 1), "cpu_seconds": round(time.process_time() - c0, 1)}
    torch.save({"format": VAE_FORMAT, "config": cfg, "encoder": enc.state_dict(), "decoder": dec.state_dict(),
                "stats": stats}, out)
    log(f"VAE written to {out}: {stats}")
    return stats


def load_vae(path):
    if not os.path.exists(path):
        raise InputError(f"VAE checkpoint not found: {path}")
    ck = torch.load(path)
    if not isinstance(ck, dict) or ck.get("format") != VAE_FORMAT:
        raise InputError(f"{path}: not a {VAE_FORMAT} checkpoint (made by train-vae)")
    cfg = ck["config"]
    enc = latent_modules.SmallVaeEncoder(cfg["latent_channels"], cfg["vae_channels"])
    dec = latent_modules.SmallVaeDecoder(cfg["latent_channels"], cfg["vae_channels"])
    enc.load_state_dict(ck["encoder"])
    dec.load_state_dict(ck["decoder"])
    return cfg, enc.eval(), dec.eval(), ck["stats"]


def load_embedding_encoder(path):
    """The committed image encoder (decoder/encoder.onnx): images [N,1,28,28] in [0, 1] → standardised 64-d."""
    if not os.path.exists(path):
        raise InputError(f"encoder not found: {path}")
    return onnx_io.load_weights(Encoder(64), path)


def encode_pairs(vae_enc, emb_enc, pixels, chunk=1000):
    """(VAE posterior means [N,C,h,w], embeddings [N,64]) of uint8 images: the UNet's training pairs."""
    lat, emb = [], []
    with torch.no_grad():
        for s in range(0, len(pixels), chunk):
            p = pixels[s:s + chunk]
            lat.append(vae_enc(images_pm1(p))[0])
            emb.append(emb_enc(torch.from_numpy(np.asarray(p)).float().div(255).unsqueeze(1)))
    return torch.cat(lat), torch.cat(emb)


class Trainable(torch.nn.Module):
    """image projection + UNet + the learned constant 'empty prompt' tokens (baked into unet.onnx on export)."""

    def __init__(self, cfg):
        super().__init__()
        self.proj, self.unet, _ = latent_modules.build_small(cfg)
        self.text_embeds = torch.nn.Parameter(torch.randn(cfg["text_tokens"], cfg["cross_dim"]) * 0.1)

    def forward(self, x, t, emb):
        ip = self.proj(emb)
        return self.unet(x, t, self.text_embeds[None].expand(len(x), -1, -1), ip)


def init_from_decoder(decoder_dir, vae_cfg):
    """(config, Trainable, training record) of an exported decoder, to continue training it: the modules
    rebuilt from its graphs (sha256s checked), its latent scale kept (its UNet learned that space)."""
    man, proj, unet, _ = load_exported(decoder_dir)
    cfg = dict(man["source"]["config"])
    if any(cfg[k] != vae_cfg[k] for k in ("latent_channels", "vae_channels")):
        raise InputError(f"{decoder_dir}: its latent space ({cfg['latent_channels']} channels) is not this VAE's")
    model = Trainable(cfg)
    with torch.no_grad():
        model.proj.load_state_dict(proj.state_dict())
        model.unet.load_state_dict(unet.unet.state_dict())
        model.text_embeds.copy_(unet.text_embeds)
    return cfg, model, man["source"].get("training")


def train_unet(vae_path, encoder_path, out, steps=2000, batch=128, lr=1e-3, cond_drop=0.1, ema_decay=0.999,
               min_snr=5.0, seed=0, train_pixels=None, config=None, init_decoder=None):
    """ε-prediction on SD 1.5's scaled-linear schedule (the contract's), min-SNR-γ loss weighting,
    condition dropout to the zero embedding (the manifest's negative), EMA weights exported.
    `init_decoder`: continue an exported decoder (trained on this VAE) instead of starting afresh."""
    setup(seed)
    vcfg, venc, vdec, vstats = load_vae(vae_path)
    cfg = dict(config or SMALL_CONFIG)
    cfg.update({k: vcfg[k] for k in ("latent_channels", "vae_channels")})
    model, continued = None, None
    if init_decoder:
        cfg, model, continued = init_from_decoder(init_decoder, vcfg)
    pixels = load_fmnist("train")[0] if train_pixels is None else train_pixels
    t0, c0 = time.time(), time.process_time()
    Z, Em = encode_pairs(venc, load_embedding_encoder(encoder_path), pixels)
    scale = cfg["latent_scale"] if init_decoder else float(1.0 / Z.std())  # SD's scaling factor: unit-variance latents
    cfg["latent_scale"] = scale
    Z = Z * scale
    log(f"encoded {len(Z)} pairs in {time.process_time() - c0:.0f} cpu s; latent scale {scale:.5f}")
    alphas = torch.from_numpy(latent_schedulers.scaled_linear_alphas_cumprod()).float()
    snr = alphas / (1 - alphas)
    weight = torch.clamp(snr, max=min_snr) / snr
    model = model or Trainable(cfg)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed + 1)
    run = 0.0
    for step in range(steps):
        for grp in opt.param_groups:
            grp["lr"] = cosine_lr(step, steps, lr, warmup=min(200, steps // 10 + 1))
        idx = torch.randint(len(Z), (batch,), generator=g)
        z0, e = Z[idx], Em[idx]
        keep = (torch.rand(batch, generator=g) >= cond_drop).float()[:, None]
        e = e * keep  # dropped rows see the zero embedding: image_proj(0) is the negative at decode time
        t = torch.randint(len(alphas), (batch,), generator=g)
        a = alphas[t][:, None, None, None]
        eps = torch.randn(z0.shape, generator=g)
        pred = model(a.sqrt() * z0 + (1 - a).sqrt() * eps, t.float(), e)
        loss = (weight[t] * (pred - eps).pow(2).mean((1, 2, 3))).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        d = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(d).add_(pm, alpha=1 - d)
        run = loss.item() if step == 0 else 0.98 * run + 0.02 * loss.item()
        if (step + 1) % 100 == 0 or step == steps - 1:
            log(f"UNet step {step + 1}/{steps} loss {run:.4f} cpu {time.process_time() - c0:.0f}s")
    stats = {"steps": steps, "batch": batch, "lr": lr, "cond_drop": cond_drop, "ema_decay": ema_decay,
             "min_snr": min_snr, "loss": round(run, 5), "pairs": len(Z), "seed": seed,
             "seconds": round(time.time() - t0, 1), "cpu_seconds": round(time.process_time() - c0, 1), "vae": vstats,
             "encoder_sha256": sha256_file(encoder_path), **({"continued_from": continued} if continued else {})}
    torch.save({"format": WEIGHTS_FORMAT, "config": cfg, "image_proj": ema.proj.state_dict(),
                "unet": ema.unet.state_dict(), "vae_decoder": vdec.state_dict(),
                "text_embeds": ema.text_embeds.detach().clone(), "training": stats}, out)
    log(f"latent decoder weights written to {out}: {stats}")
    return stats
