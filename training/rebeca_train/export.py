"""Export a trained prior checkpoint to a model version directory (ONNX + table + manifest + parity)."""
import json
import os
import shutil

import numpy as np
import torch

from . import onnx_io
from .common import CLIP_X0, InputError, log
from .manifest import load_manifest, write_manifest
from .priors import build_prior
from .rng import normal
from .sampler import sample
from .schedule import alphas_cumprod
from .world import check_decoder_parity


def model_fn(model):
    def f(x_t, t, user, like):
        with torch.no_grad():
            return model(torch.from_numpy(np.ascontiguousarray(x_t, np.float32)), torch.from_numpy(t),
                         torch.from_numpy(np.ascontiguousarray(user, np.float32)), torch.from_numpy(like)).numpy()
    return f


def f32list(a):
    return np.asarray(a, np.float32).astype(np.float64).tolist()


# (sampler, steps, spacing, seeds): every sampler and spacing, at step counts where each differs from DDIM
PARITY_RUNS = (("ddim", 50, "linspace", [1, 2]), ("ddpm", 1000, "linspace", [3, 4]), ("ddim", 4, "leading", [5, 6]),
               ("ddim", 3, "trailing", [7, 8]), ("dpmpp_2m", 5, "trailing", [9, 10]),
               ("dpmpp_2m_sde", 5, "trailing", [11, 12]))


def make_parity(model, table, null_row, D, seed=0):
    rng = np.random.default_rng(seed)
    n = null_row  # number of real users
    rows = [0, min(7, n - 1), min(1, n - 1), min(2, n - 1)]
    x_t = rng.normal(size=(4, D)).astype(np.float32)
    t = np.array([0, 1, 500, 999], dtype=np.int64)
    like = np.array([1, 0, 2, 1], dtype=np.int64)
    fn = model_fn(model)
    x0 = fn(x_t, t, table[rows], like)
    par = {"model": {"x_t": f32list(x_t), "t": t.tolist(), "user_rows": rows, "like": like.tolist(), "x0": f32list(x0)},
           "samplers": []}
    alphas = alphas_cumprod()
    for sampler, steps, spacing, seeds in PARITY_RUNS:
        urows = [0, min(7, n - 1)]
        emb = sample(fn, table[urows], table[null_row], seeds, sampler, steps, 3.0, CLIP_X0, D, alphas, spacing)
        par["samplers"].append({"sampler": sampler, "steps": steps, "spacing": spacing, "guidance": 3.0,
                                "user_rows": urows, "seeds": seeds,
                                "noise_check": [normal(s, 0, D)[:8].tolist() for s in seeds],
                                "embedding": f32list(emb)})
    return par


def export_checkpoint(ckpt, out_dir, version, decoder_dir=None):
    os.makedirs(out_dir, exist_ok=True)
    D, U = ckpt["D"], ckpt["user_dim"]
    model = build_prior(ckpt["arch"], D, U, **ckpt["config"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    table = np.asarray(ckpt["user_table"], np.float32)
    rows = table.shape[0]
    if rows != len(ckpt["user_ids"]) + 1:
        raise InputError("checkpoint user table rows != user ids + null row")
    dec_target = os.path.join(out_dir, "decoder")
    if decoder_dir and os.path.abspath(decoder_dir) != os.path.abspath(dec_target):
        shutil.copytree(decoder_dir, dec_target, dirs_exist_ok=True)
    if not os.path.exists(os.path.join(dec_target, "manifest.json")):
        raise InputError(f"{dec_target}/manifest.json missing: pass --decoder-dir (run `world` first)")
    with open(os.path.join(dec_target, "manifest.json")) as f:
        if json.load(f)["embedding_dim"] != D:
            raise InputError(f"{dec_target}: decoder embedding_dim does not match prior D={D}")
    B = 2
    args = (torch.zeros(B, D), torch.zeros(B, dtype=torch.long), torch.zeros(B, U), torch.ones(B, dtype=torch.long))
    onnx_io.export(model, args, os.path.join(out_dir, "prior.onnx"), ["x_t", "t", "user", "like"], ["x0"])
    table.astype("<f4").tofile(os.path.join(out_dir, "user_table.f32"))
    with open(os.path.join(out_dir, "user_ids.txt"), "w") as f:
        f.write("\n".join(ckpt["user_ids"]) + "\n")
    par = make_parity(model, table, rows - 1, D)
    with open(os.path.join(out_dir, "parity.json"), "w") as f:
        json.dump(par, f)
    # self-check: weights read back from the graph reproduce the torch outputs
    check = onnx_io.load_weights(build_prior(ckpt["arch"], D, U, **ckpt["config"]), os.path.join(out_dir, "prior.onnx"))
    m = par["model"]
    got = model_fn(check)(np.array(m["x_t"], np.float32), np.array(m["t"]), table[m["user_rows"]], np.array(m["like"]))
    if not np.allclose(got, np.array(m["x0"]), atol=1e-6):
        raise RuntimeError("exported graph weights do not reproduce the torch model")
    training = dict(ckpt["training"])
    training["model_config"] = ckpt["config"]
    man = write_manifest(out_dir, version, ckpt["arch"], D, U, rows, alphas_cumprod(), training)
    log(f"exported {version} to {out_dir}: rows={rows}")
    return man


def load_prior(model_dir):
    """Torch prior + user table + ids from an exported model dir (weights read from prior.onnx)."""
    man, d = load_manifest(model_dir)
    cfg = man["training"]["model_config"]
    model = onnx_io.load_weights(build_prior(man["architecture"], man["embedding_dim"], man["user_dim"], **cfg),
                                 os.path.join(d, man["files"]["prior"]["path"]))
    table = np.fromfile(os.path.join(d, man["files"]["user_table"]["path"]), dtype="<f4").reshape(man["users"]["rows"], man["user_dim"])
    with open(os.path.join(d, man["files"]["user_ids"]["path"])) as f:
        ids = f.read().splitlines()
    return man, d, model, table, ids


def recompute_parity(path, atol=1e-6):
    """Recompute parity.json from prior.onnx's weights + user_table with the reference sampler."""
    man, d, model, table, ids = load_prior(path)
    with open(os.path.join(d, man["files"]["parity"]["path"])) as f:
        par = json.load(f)
    m = par["model"]
    fn = model_fn(model)
    got = fn(np.array(m["x_t"], np.float32), np.array(m["t"]), table[m["user_rows"]], np.array(m["like"]))
    worst = {"model": float(np.abs(got - np.array(m["x0"])).max())}
    alphas = np.array(man["schedule"]["alphas_cumprod"], dtype=np.float64)
    null = table[man["users"]["null_row"]]
    for s in par["samplers"]:
        nc = np.array([normal(x, 0, man["embedding_dim"])[:8] for x in s["seeds"]])
        if not np.array_equal(nc, np.array(s["noise_check"])):
            raise InputError(f"{path}: parity noise_check for {s['sampler']} does not match the RNG")
        spacing = s.get("spacing", "linspace")  # parity files older than the spacing option
        emb = sample(fn, table[s["user_rows"]], null, s["seeds"], s["sampler"], s["steps"], s["guidance"],
                     man["clip_x0"], man["embedding_dim"], alphas, spacing)
        worst[f"{s['sampler']}-{s['steps']}-{spacing}"] = float(np.abs(emb - np.array(s["embedding"])).max())
    bad = {k: v for k, v in worst.items() if not v <= atol}
    if bad:
        raise InputError(f"{path}: parity.json not reproduced from prior.onnx weights: max abs diff {bad}")
    dec_dir = os.path.dirname(os.path.join(d, man["files"]["decoder"]["path"]))
    with open(os.path.join(dec_dir, "manifest.json")) as f:
        kind = json.load(f).get("kind")
    if kind == "latent-diffusion":
        from .latent_export import check_latent_parity
        dec = check_latent_parity(dec_dir)
    else:
        dec = check_decoder_parity(dec_dir, man["embedding_dim"], atol)
    worst.update({f"decoder_{k}": v for k, v in dec.items()})
    return worst
