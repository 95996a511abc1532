"""Prior manifest: writing and validating against files (docs/model-format.md)."""
import json
import os

import numpy as np

from .common import CLIP_X0, InputError, LIKE, NULL_LIKE, T_STEPS, sha256_file
from .onnx_io import io_names

PRIOR_IO = (["x_t", "t", "user", "like"], ["x0"])


def file_entry(d, rel, **extra):
    return {"path": rel, "sha256": sha256_file(os.path.join(d, rel)), **extra}


def write_manifest(d, version, arch, D, U, rows, alphas, training):
    man = {"format": "rebeca.prior/v1", "version": version, "architecture": arch, "embedding_dim": D,
           "user_dim": U, "prediction": "x0",
           "schedule": {"name": "squaredcos_cap_v2", "timesteps": len(alphas),
                        "alphas_cumprod": [float(a) for a in alphas]},
           "clip_x0": CLIP_X0, "null_like": NULL_LIKE, "like": LIKE,
           "users": {"rows": rows, "null_row": rows - 1},
           # The paper's sampler until the sampler evaluation (packages/eval frontier-cli, run by
           # regenerate.sh) writes the fewest-evaluation sampler that qualifies on the frontier.
           "defaults": {"guidance": 3.0, "steps": 1000, "sampler": "ddpm", "spacing": "linspace"},
           "files": {"prior": file_entry(d, "prior.onnx"),
                     "user_table": file_entry(d, "user_table.f32", dtype="float32", shape=[rows, U]),
                     "user_ids": file_entry(d, "user_ids.txt"),
                     "parity": file_entry(d, "parity.json"),
                     "decoder": file_entry(d, "decoder/manifest.json")},
           "training": training}
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)
    return man


def refresh_hashes(d, man):
    for key, ent in man["files"].items():
        ent["sha256"] = sha256_file(os.path.join(d, ent["path"]))
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)


def load_manifest(path):
    if os.path.isdir(path):
        path = os.path.join(path, "manifest.json")
    if not os.path.exists(path):
        raise InputError(f"manifest not found: {path}")
    try:
        with open(path) as f:
            return json.load(f), os.path.dirname(os.path.abspath(path))
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e})")


def _check_hash(d, name, ent, where):
    p = os.path.join(d, ent.get("path", ""))
    if not ent.get("path") or not os.path.exists(p):
        raise InputError(f"{where}: file '{name}' ({ent.get('path')}) is missing")
    got = sha256_file(p)
    if got != ent.get("sha256"):
        raise InputError(f"{where}: sha256 mismatch for '{name}' ({ent['path']}): manifest {ent.get('sha256')}, file {got}")
    return p


def validate(path):
    """Check a prior manifest against its files. Raises InputError naming the problem."""
    man, d = load_manifest(path)
    where = os.path.join(d, "manifest.json")
    if man.get("format") != "rebeca.prior/v1":
        raise InputError(f"{where}: format {man.get('format')!r} is not 'rebeca.prior/v1'")
    for k in ("version", "architecture", "embedding_dim", "user_dim", "prediction", "schedule", "clip_x0",
              "null_like", "like", "users", "defaults", "files"):
        if k not in man:
            raise InputError(f"{where}: missing field '{k}'")
    files = man["files"]
    for k in ("prior", "user_table", "user_ids", "parity", "decoder"):
        if k not in files:
            raise InputError(f"{where}: files lacks '{k}'")
        _check_hash(d, k, files[k], where)
    D, U = man["embedding_dim"], man["user_dim"]
    rows, null_row = man["users"]["rows"], man["users"]["null_row"]
    if null_row != rows - 1:
        raise InputError(f"{where}: users.null_row {null_row} must be rows-1 ({rows - 1})")
    ut = files["user_table"]
    if list(ut.get("shape", [])) != [rows, U] or ut.get("dtype") != "float32":
        raise InputError(f"{where}: user_table shape/dtype {ut.get('shape')}/{ut.get('dtype')} != [{rows}, {U}]/float32")
    size = os.path.getsize(os.path.join(d, ut["path"]))
    if size != rows * U * 4:
        raise InputError(f"{where}: user_table.f32 has {size} bytes, expected rows*user_dim*4 = {rows * U * 4}")
    tab = np.fromfile(os.path.join(d, ut["path"]), dtype="<f4")
    if not np.isfinite(tab).all():
        raise InputError(f"{where}: user_table.f32 contains NaN/Inf")
    with open(os.path.join(d, files["user_ids"]["path"])) as f:
        ids = f.read().splitlines()
    if len(ids) != rows - 1:
        raise InputError(f"{where}: user_ids.txt has {len(ids)} lines, expected rows-1 = {rows - 1}")
    if len(set(ids)) != len(ids):
        raise InputError(f"{where}: user_ids.txt has duplicate ids")
    sch = man["schedule"]
    ac = sch.get("alphas_cumprod", [])
    if sch.get("timesteps") != T_STEPS or len(ac) != T_STEPS or not all(0 < a <= 1 for a in ac):
        raise InputError(f"{where}: schedule must have {T_STEPS} alphas_cumprod in (0,1]")
    ins, outs = io_names(os.path.join(d, files["prior"]["path"]))
    if (ins, outs) != PRIOR_IO:
        raise InputError(f"{where}: prior.onnx I/O {ins}->{outs}, expected {PRIOR_IO[0]}->{PRIOR_IO[1]}")
    # decoder manifest
    dec_path = os.path.join(d, files["decoder"]["path"])
    with open(dec_path) as f:
        dm = json.load(f)
    if dm.get("format") != "rebeca.decoder/v1":
        raise InputError(f"{dec_path}: format {dm.get('format')!r} is not 'rebeca.decoder/v1'")
    if dm.get("embedding_dim") != D:
        raise InputError(f"{dec_path}: embedding_dim {dm.get('embedding_dim')} != prior's {D}")
    if dm.get("kind") == "latent-diffusion":
        validate_latent_decoder(dec_path, dm)
    else:
        validate_single_shot_decoder(dec_path, dm)
    with open(os.path.join(d, files["parity"]["path"])) as f:
        par = json.load(f)
    if "model" not in par or len(par.get("samplers", [])) < 1:
        raise InputError(f"{where}: parity.json lacks 'model' or 'samplers'")
    if np.asarray(par["model"]["x0"]).shape[1:] != (D,):
        raise InputError(f"{where}: parity.json model.x0 is not [B,{D}]")
    return man


def _check_graphs(dec_path, dm, required, optional=()):
    dd = os.path.dirname(dec_path)
    for k in required + tuple(o for o in optional if o in dm.get("files", {})):
        if k not in dm.get("files", {}):
            raise InputError(f"{dec_path}: files lacks '{k}'")
        p = _check_hash(dd, k, dm["files"][k], dec_path)
        if k == "parity" or k == "unet":
            continue
        io = dm["io"][k]
        if io_names(p) != ([io["input"]], [io["output"]]):
            raise InputError(f"{dec_path}: {k} I/O {io_names(p)} does not match io {io}")
    return dd


def validate_single_shot_decoder(dec_path, dm):
    dd = _check_graphs(dec_path, dm, ("decoder", "encoder", "parity"))
    with open(os.path.join(dd, dm["files"]["parity"]["path"])) as f:
        dpar = json.load(f)
    for k, inp, out in (("decoder", "embedding", "image"), ("encoder", "image", "embedding")):
        blk = dpar.get(k, {})
        if inp not in blk or out not in blk or len(blk[inp]) != len(blk[out]) or not blk[inp]:
            raise InputError(f"{dec_path}: decoder parity.json lacks '{k}.{inp}'/'{k}.{out}' rows")


def validate_latent_decoder(dec_path, dm):
    """A latent-diffusion decoder (docs/model-format.md): every listed file's sha256, the graphs' I/O names."""
    dd = _check_graphs(dec_path, dm, ("unet", "vae_decoder", "parity"), ("image_proj", "encoder"))
    u = dm["io"]["unet"]
    ins, outs = io_names(os.path.join(dd, dm["files"]["unet"]["path"]))
    if ins != [u["sample"], u["timestep"], u["condition"]] or outs != [u["output"]]:
        raise InputError(f"{dec_path}: unet I/O {ins}->{outs} does not match io {u}")
    with open(os.path.join(dd, dm["files"]["parity"]["path"])) as f:
        if "schedulers" not in json.load(f):
            raise InputError(f"{dec_path}: parity.json lacks 'schedulers'")
