"""Latent-diffusion decoder: weights on disk → unet.onnx, image_proj.onnx, vae_decoder.onnx, parity.json
and manifest.json (docs/model-format.md, "Latent-diffusion decoder"; docs/latent-export.md).

Two weight sources:
- `rebeca.latent-weights/v1` checkpoints (torch.save of a dict, see `make_fixture_weights`): the tiny
  modules of latent_modules.py. The committed fixture is made and exported this way, here, in CI.
- SD 1.5 + IP-Adapter from a diffusers folder (`export_sd15_ip_adapter`): needs diffusers and
  transformers, which the training machines do not have; the same graph contract and manifest.
"""
import json
import os

import numpy as np
import torch

from . import latent_modules, latent_schedulers, onnx_io
from .common import InputError, log, setup, sha256_file
from .manifest import file_entry
from .rng import normal

WEIGHTS_FORMAT = "rebeca.latent-weights/v1"
# Decoder noise uses its own stream so it never correlates with the prior's streams 0..S of a seed.
NOISE_STREAM = 0x80000000
UNET_IO = (["sample", "timestep", "image_prompt_embeds"], ["out_sample"])
PROJ_IO = (["image_embeds"], ["image_prompt_embeds"])
VAE_IO = (["latent_sample"], ["sample"])

FIXTURE_CONFIG = {"embedding_dim": 64, "ip_tokens": 4, "cross_dim": 32, "text_tokens": 8, "latent_channels": 4,
                  "latent_size": 8, "unet_channels": 32, "vae_channels": 16, "vae_upsamples": 2, "ip_scale": 1.0,
                  "latent_scale": 0.18215}


def make_fixture_weights(path, seed=0, config=None):
    """Random weights with the real modules' structure at tiny size (the fixture's 'pretrained' model)."""
    setup(seed)
    cfg = dict(config or FIXTURE_CONFIG)
    proj, unet, vae = latent_modules.build(cfg)
    with torch.no_grad():
        # default init leaves conv_out tiny; widen it so that the conditioning visibly moves the image
        for m in (unet.conv_out, vae.conv_out):
            m.weight.mul_(4.0)
    text = torch.randn(cfg["text_tokens"], cfg["cross_dim"])
    torch.save({"format": WEIGHTS_FORMAT, "config": cfg, "image_proj": proj.state_dict(), "unet": unet.state_dict(),
                "vae_decoder": vae.state_dict(), "text_embeds": text}, path)
    return path


def load_weights(path):
    if not os.path.exists(path):
        raise InputError(f"weights not found: {path}")
    ck = torch.load(path)
    if not isinstance(ck, dict) or ck.get("format") != WEIGHTS_FORMAT:
        raise InputError(f"{path}: not a {WEIGHTS_FORMAT} checkpoint (for SD 1.5 + IP-Adapter use --sd15-dir)")
    cfg = ck["config"]
    proj, unet, vae = latent_modules.build(cfg)
    for name, module in (("image_proj", proj), ("unet", unet), ("vae_decoder", vae)):
        try:
            module.load_state_dict(ck[name], strict=True)
        except (KeyError, RuntimeError) as e:
            raise InputError(f"{path}: {name} weights do not fit the module: {str(e).splitlines()[0]}") from e
        module.eval()
    return cfg, proj, latent_modules.UNetWithText(unet, ck["text_embeds"]).eval(), vae


def f32list(a):
    return np.asarray(a, np.float32).astype(np.float64).tolist()


def reference_decode(proj, unet, vae, embeds, seeds, scheduler, steps, guidance, alphas, latent_shape, latent_scale):
    """The decode the TypeScript runtime must reproduce: float64 scheduler state, float32 model calls,
    CFG as one batched UNet call of 2B rows (conditional first, then the projected zero embedding)."""
    B = len(seeds)
    C, h, w = latent_shape
    with torch.no_grad():
        cond = proj(torch.from_numpy(np.asarray(embeds, np.float32)))
        neg = proj(torch.zeros(1, np.asarray(embeds).shape[1]))
        ctx = torch.cat([cond, neg.expand(B, -1, -1)])
        s = latent_schedulers.make(scheduler, alphas, steps)
        x = np.stack([normal(int(sd), NOISE_STREAM, C * h * w) for sd in seeds]) * s.init_sigma
        calls = 0
        for i, t in enumerate(s.timesteps):
            xin = np.ascontiguousarray(s.scale(x, i), np.float32).reshape(B, C, h, w)
            eps = unet(torch.from_numpy(np.concatenate([xin, xin])), torch.full((2 * B,), float(t), dtype=torch.float32), ctx)
            calls += 1
            eps = eps.numpy().astype(np.float64).reshape(2 * B, -1)
            eps = eps[B:] + guidance * (eps[:B] - eps[B:])
            x = s.step(eps, i, x)
        lat = np.ascontiguousarray(x / latent_scale, np.float32).reshape(B, C, h, w)
        img = vae(torch.from_numpy(lat)).numpy()
    return np.clip(img.astype(np.float64) / 2 + 0.5, 0, 1).astype(np.float32), calls


def model_reference(proj, unet, E, latent_shape, rng, rows=3):
    """One projection call and one UNet call (CFG-sized: conditional rows, then the projected zero
    embedding) on seeded inputs: the per-graph parity the TypeScript tests check before whole decodes."""
    emb = rng.normal(size=(rows, E)).astype(np.float32)
    with torch.no_grad():
        cond = proj(torch.from_numpy(emb))
        ctx = torch.cat([cond, proj(torch.zeros(1, E)).expand(rows, -1, -1)])
        sample = rng.normal(size=(2 * rows, *latent_shape)).astype(np.float32)
        timestep = np.array([999, 500, 1, 999, 500, 1][:2 * rows], np.float32)
        eps = unet(torch.from_numpy(sample), torch.from_numpy(timestep), ctx).numpy()
    return {"image_embeds": f32list(emb), "image_prompt_embeds": f32list(cond.numpy().reshape(rows, -1)),
            "sample": f32list(sample.reshape(2 * rows, -1)), "timestep": timestep.astype(np.float64).tolist(),
            "out_sample": f32list(eps.reshape(2 * rows, -1))}


def scheduler_reference(alphas):
    """Toy-model trajectories for every scheduler (the TypeScript scheduler tests compare against these)."""
    x_init = normal(7, 0, 16)
    out = {"x_init": x_init.tolist(), "cases": []}
    for name in ("ddim", "euler", "pndm"):
        for steps in (1, 4, 10, 50):
            if name == "pndm" and steps < 2:
                continue
            s, x = latent_schedulers.toy_trajectory(name, alphas, steps, x_init)
            case = {"scheduler": name, "steps": steps, "timesteps": [float(t) for t in s.timesteps],
                    "init_sigma": s.init_sigma, "final": x.tolist()}
            if name == "euler":
                case["sigmas"] = list(s.sigmas)
            out["cases"].append(case)
    return out


def _export_plain(module, args, path, input_names, output_names):
    """torch.onnx.export without onnx_io's initializer bookkeeping (which loads the whole model into
    memory twice): for real-size weights."""
    module.eval()
    dyn = {n: {0: "batch"} for n in list(input_names) + list(output_names)}
    torch.onnx.export(module, args, path, input_names=list(input_names), output_names=list(output_names),
                      dynamic_axes=dyn, opset_version=onnx_io.OPSET)


def write_decoder(out_dir, cfg, proj, unet, vae, scheduler="pndm", steps=50, guidance=5.0, family="sd15-ip-adapter",
                  alphas=None, extra=None, decode_parity=True, device="cpu"):
    os.makedirs(out_dir, exist_ok=True)
    export = onnx_io.export if device == "cpu" else _export_plain
    E, N, X = cfg["embedding_dim"], cfg["ip_tokens"], cfg["cross_dim"]
    C, L = cfg["latent_channels"], cfg["latent_size"]
    if alphas is None:
        alphas = latent_schedulers.scaled_linear_alphas_cumprod(**{k: v for k, v in latent_schedulers.SD15.items()
                                                                   if k != "steps_offset" and k != "timesteps"})
    e1 = torch.zeros(1, E, device=device)
    z = torch.zeros(1, C, L, L, device=device)
    with torch.no_grad():
        export(proj, (e1,), os.path.join(out_dir, "image_proj.onnx"), *PROJ_IO)
        export(unet, (z, torch.zeros(1, device=device), proj(e1)), os.path.join(out_dir, "unet.onnx"), *UNET_IO)
        export(vae, (z,), os.path.join(out_dir, "vae_decoder.onnx"), *VAE_IO)
        _, Cimg, H, W = vae(z).shape
    rng = np.random.default_rng(0)
    par = {"schedulers": scheduler_reference(alphas), "decode": []}
    if decode_parity:
        par["models"] = model_reference(proj, unet, E, (C, L, L), np.random.default_rng(1))
    for k, (name, n) in enumerate((("ddim", 4), ("euler", 4), ("pndm", 4)) if decode_parity else ()):
        emb = rng.normal(size=(1, E)).astype(np.float32)
        img, calls = reference_decode(proj, unet, vae, emb, [11 + k], name, n, guidance, alphas, (C, L, L),
                                      cfg["latent_scale"])
        par["decode"].append({"scheduler": name, "steps": n, "guidance": guidance, "seeds": [11 + k],
                              "embeddings": f32list(emb), "unet_calls": calls, "images": f32list(img.reshape(1, -1))})
    with open(os.path.join(out_dir, "parity.json"), "w") as f:
        json.dump(par, f)
    man = {"format": "rebeca.decoder/v1", "kind": "latent-diffusion", "family": family,
           "embedding_dim": E, "channels": int(Cimg), "height": int(H), "width": int(W), "range": [0, 1],
           "latent": {"channels": C, "height": L, "width": L, "scale": cfg["latent_scale"]},
           "condition": {"tokens": N, "dim": X},
           "scheduler": {"prediction": "epsilon", "beta_schedule": "scaled_linear",
                         "beta_start": latent_schedulers.SD15["beta_start"],
                         "beta_end": latent_schedulers.SD15["beta_end"],
                         "steps_offset": latent_schedulers.SD15["steps_offset"],
                         "timesteps": len(alphas), "alphas_cumprod": [float(a) for a in alphas]},
           "defaults": {"scheduler": scheduler, "steps": steps, "guidance": guidance},
           "negative": "zero-embedding-projected",
           "vae_range": [-1, 1],
           "noise_stream": NOISE_STREAM,
           "files": {"unet": file_entry(out_dir, "unet.onnx"), "image_proj": file_entry(out_dir, "image_proj.onnx"),
                     "vae_decoder": file_entry(out_dir, "vae_decoder.onnx"), "parity": file_entry(out_dir, "parity.json")},
           "io": {"unet": {"sample": UNET_IO[0][0], "timestep": UNET_IO[0][1], "condition": UNET_IO[0][2],
                           "output": UNET_IO[1][0]},
                  "image_proj": {"input": PROJ_IO[0][0], "output": PROJ_IO[1][0]},
                  "vae_decoder": {"input": VAE_IO[0][0], "output": VAE_IO[1][0]}},
           **({"source": extra} if extra else {})}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)
    log(f"latent decoder written to {out_dir} ({', '.join(sorted(man['files']))})")
    return man


def export_weights(weights, out_dir, scheduler="pndm", steps=50, guidance=5.0, decode_parity=True, family=None):
    cfg, proj, unet, vae = load_weights(weights)
    training = torch.load(weights).get("training")
    extra = {"weights": os.path.basename(weights), "format": WEIGHTS_FORMAT, "config": cfg,
             **({"training": training} if training else {})}
    fam = family or ("rebeca-small-ip-adapter" if cfg.get("arch") == "small" else "sd15-ip-adapter")
    return write_decoder(out_dir, cfg, proj, unet, vae, scheduler, steps, guidance, family=fam, extra=extra,
                         decode_parity=decode_parity)


def load_exported(decoder_dir):
    """(manifest, proj, unet, vae): the modules rebuilt from an exported decoder's graphs (structure from
    the manifest's `source.config`, weights from the graphs' initializers), every file's sha256 checked
    against the manifest first."""
    with open(os.path.join(decoder_dir, "manifest.json")) as f:
        man = json.load(f)
    cfg = man.get("source", {}).get("config")
    if not cfg:
        raise InputError(f"{decoder_dir}/manifest.json: source.config missing (not exported from rebeca weights); "
                         "cannot rebuild the modules from its graphs")
    f = man["files"]
    for key in ("image_proj", "unet", "vae_decoder", "parity"):
        path = os.path.join(decoder_dir, f[key]["path"])
        if sha256_file(path) != f[key]["sha256"]:
            raise InputError(f"{path}: sha256 {sha256_file(path)} ≠ the manifest's {f[key]['sha256']}")
    proj, unet, vae = latent_modules.build(cfg)
    text = torch.zeros(cfg["text_tokens"], cfg["cross_dim"])
    proj = onnx_io.load_weights(proj, os.path.join(decoder_dir, f["image_proj"]["path"]))
    unet = onnx_io.load_weights(latent_modules.UNetWithText(unet, text), os.path.join(decoder_dir, f["unet"]["path"]))
    vae = onnx_io.load_weights(vae, os.path.join(decoder_dir, f["vae_decoder"]["path"]))
    return man, proj, unet, vae


def reexport(decoder_dir, out_dir, scheduler, steps, guidance):
    """An exported decoder written again with new serving defaults (scheduler, steps, guidance): the
    same weights (rebuilt from its graphs), its parity decodes recomputed at the new guidance, every
    sha256 recomputed; `source` (config, training record) carried over."""
    man, proj, unet, vae = load_exported(decoder_dir)
    return write_decoder(out_dir, man["source"]["config"], proj, unet, vae, scheduler, steps, guidance,
                         family=man["family"], alphas=np.array(man["scheduler"]["alphas_cumprod"], np.float64),
                         extra=man["source"])


def check_latent_parity(decoder_dir, atol=1e-5):
    """Recompute parity.json's reference decodes from the weights inside the exported graphs (module
    structure from the manifest's `source.config`); returns the max abs image difference per decode."""
    man, proj, unet, vae = load_exported(decoder_dir)
    f = man["files"]
    with open(os.path.join(decoder_dir, f["parity"]["path"])) as fh:
        par = json.load(fh)
    alphas = np.array(man["scheduler"]["alphas_cumprod"], np.float64)
    L = man["latent"]
    worst = {}
    for k, p in enumerate(par["decode"]):
        img, calls = reference_decode(proj, unet, vae, np.array(p["embeddings"], np.float32), p["seeds"], p["scheduler"],
                                      p["steps"], p["guidance"], alphas, (L["channels"], L["height"], L["width"]), L["scale"])
        worst[f"latent_{p['scheduler']}_{p['steps']}"] = float(np.abs(img.reshape(len(img), -1) - np.array(p["images"])).max())
        if calls != p["unet_calls"]:
            raise InputError(f"{decoder_dir}: parity decode {k} made {calls} UNet calls, parity.json says {p['unet_calls']}")
    bad = {k: v for k, v in worst.items() if not v <= atol}
    if bad:
        raise InputError(f"{decoder_dir}: parity.json not reproduced from the graphs' weights: max abs diff {bad}")
    return worst


def export_sd15_ip_adapter(sd_dir, ip_adapter, out_dir, scheduler="pndm", steps=50, guidance=5.0):
    """SD 1.5 (a diffusers folder: unet/, vae/, text_encoder/, tokenizer/) + IP-Adapter
    (`ip-adapter_sd15.bin`) → the same three graphs. Not runnable on the training machines (no diffusers,
    no weights, no GPU); written to the graph contract so the worker loads its output unchanged.

    The fp32 UNet (3.4 GB) is over ONNX's 2 GB single-file limit and the worker loads single files, so
    the graphs are exported in fp16 on a CUDA device, with casts inside so their inputs and outputs stay
    float32 (the contract). No reference decodes are written (512×512 images would make parity.json huge)."""
    try:
        from diffusers import StableDiffusionPipeline
    except ImportError as e:
        raise InputError("exporting real SD 1.5 + IP-Adapter weights needs `pip install diffusers transformers` "
                         "(see docs/latent-export.md)") from e
    if not torch.cuda.is_available():
        raise InputError("exporting SD 1.5 needs a CUDA device (fp16 export; see docs/latent-export.md)")
    dev, half = "cuda", torch.float16
    pipe = StableDiffusionPipeline.from_pretrained(sd_dir, torch_dtype=half, safety_checker=None).to(dev)
    pipe.load_ip_adapter(os.path.dirname(ip_adapter) or ".", subfolder="", weight_name=os.path.basename(ip_adapter))
    unet, vae = pipe.unet.eval(), pipe.vae.eval()
    proj = unet.encoder_hid_proj.image_projection_layers[0].eval()  # diffusers' ImageProjection
    with torch.no_grad():
        text = pipe.encode_prompt("", dev, 1, False)[0][0]
    unet.encoder_hid_proj = None  # the projection runs in image_proj.onnx; the UNet gets the tokens

    class Proj(torch.nn.Module):
        def forward(self, image_embeds):
            return proj(image_embeds.to(half)).float()

    class Unet(torch.nn.Module):
        # a (text, [image tokens]) tuple is what diffusers' IP-Adapter attention processors take
        def forward(self, sample, timestep, image_prompt_embeds):
            hid = text[None].expand(sample.shape[0], -1, -1)
            out = unet(sample.to(half), timestep, encoder_hidden_states=(hid, [image_prompt_embeds.to(half)])).sample
            return out.float()

    class Vae(torch.nn.Module):
        def forward(self, latent_sample):
            return vae.decode(latent_sample.to(half)).sample.float()

    tokens = proj.num_image_text_embeds
    cfg = {"embedding_dim": proj.image_embeds.in_features, "ip_tokens": tokens,
           "cross_dim": proj.image_embeds.out_features // tokens, "latent_channels": unet.config.in_channels,
           "latent_size": unet.config.sample_size, "latent_scale": vae.config.scaling_factor}
    log("exporting SD 1.5 + IP-Adapter in fp16 (minutes; ~8 GB of GPU memory)")
    return write_decoder(out_dir, cfg, Proj(), Unet(), Vae(), scheduler, steps, guidance, decode_parity=False,
                         device=dev,
                         extra={"sd_dir": os.path.basename(os.path.abspath(sd_dir)), "ip_adapter": os.path.basename(ip_adapter),
                                "dtype": "float16 inside, float32 I/O"})
