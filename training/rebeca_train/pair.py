"""Pair a trained prior version with a latent-diffusion decoder into a new model version (e.g. demo-v2 =
demo-v1's prior + the Fashion-MNIST diffusion decoder), without copying the prior's files.

The prior's files (prior.onnx, user_table.f32, user_ids.txt, parity.json) and its world/ become
relative symlinks into the prior's version directory, as demo-v1-control's world/ already is; the
decoder's own files are copied in (unless they are already there), and the embedding encoder the
decoder was trained against is linked into decoder/ and listed with its sha256 (evaluation re-encodes
served images with it). Every sha256 is recomputed from the files, so re-running this after the prior
is retrained is all it takes to serve the new prior with the same decoder.
"""
import json
import os
import shutil

from .common import InputError, log, sha256_file
from .manifest import file_entry, load_manifest

PRIOR_FILES = ("prior", "user_table", "user_ids", "parity")
ENCODER_IO = {"input": "image", "output": "embedding"}


def _link(target, link):
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.path.relpath(target, os.path.dirname(os.path.abspath(link))), link)


def pair_version(prior_dir, decoder_dir, out_dir, version, link_decoder=False):
    """`link_decoder`: decoder/ becomes a link to `decoder_dir` (an already paired version's decoder/,
    which lists its encoder), e.g. demo-v2-control = demo-v1-control's prior + demo-v2's decoder."""
    pman, pdir = load_manifest(prior_dir)
    with open(os.path.join(decoder_dir, "manifest.json")) as f:
        dman = json.load(f)
    if dman.get("kind") != "latent-diffusion":
        raise InputError(f"{decoder_dir}: kind {dman.get('kind')!r}, expected 'latent-diffusion'")
    if dman["embedding_dim"] != pman["embedding_dim"]:
        raise InputError(f"{decoder_dir}: embedding_dim {dman['embedding_dim']} ≠ the prior's {pman['embedding_dim']}")
    prior_dec = os.path.join(pdir, os.path.dirname(pman["files"]["decoder"]["path"]))
    with open(os.path.join(prior_dec, "manifest.json")) as f:
        enc_ref = json.load(f)["files"].get("encoder")
    if not enc_ref:
        raise InputError(f"{prior_dec}: the prior's decoder ships no encoder (the embedding space to check against)")
    encoder = os.path.join(prior_dec, enc_ref["path"])
    trained_for = dman.get("source", {}).get("training", {}).get("encoder_sha256")
    if trained_for and trained_for != sha256_file(encoder):
        raise InputError(f"{decoder_dir} was trained for encoder sha256 {trained_for}, but {encoder} is "
                         f"{sha256_file(encoder)}: retrain the decoder (training/regenerate-decoder.sh)")
    out_dec = os.path.join(out_dir, "decoder")
    os.makedirs(out_dir, exist_ok=True)
    if link_decoder:
        listed = dman["files"].get("encoder")
        if not listed or listed["sha256"] != sha256_file(encoder):
            raise InputError(f"{decoder_dir}: --link-decoder needs a decoder that lists the prior's encoder ({encoder})")
        if os.path.isdir(out_dec) and not os.path.islink(out_dec):
            shutil.rmtree(out_dec)
        _link(decoder_dir, out_dec)
    else:
        write_paired_decoder(dman, decoder_dir, out_dec, encoder)
    for key in PRIOR_FILES:
        rel = pman["files"][key]["path"]
        _link(os.path.join(pdir, rel), os.path.join(out_dir, rel))
    if os.path.isdir(os.path.join(pdir, "world")):
        _link(os.path.join(pdir, "world"), os.path.join(out_dir, "world"))
    man = dict(pman, version=version)
    man["files"] = {k: dict(v) for k, v in pman["files"].items()}
    man["files"]["decoder"] = file_entry(out_dir, "decoder/manifest.json")
    for key in PRIOR_FILES:
        man["files"][key]["sha256"] = sha256_file(os.path.join(out_dir, man["files"][key]["path"]))
    man["paired"] = {"prior_version": pman["version"], "prior_manifest_sha256": sha256_file(os.path.join(pdir, "manifest.json")),
                     "decoder": dman["family"], "decoder_unet_sha256": dman["files"]["unet"]["sha256"]}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)
    log(f"{out_dir}: version {version} = prior {pman['version']} + {dman['family']} decoder")
    return man


def write_paired_decoder(dman, decoder_dir, out_dec, encoder):
    """The decoder's files copied into `out_dec` (unless already there), the encoder linked and listed."""
    os.makedirs(out_dec, exist_ok=True)
    if os.path.abspath(decoder_dir) != os.path.abspath(out_dec):
        for ent in dman["files"].values():
            if ent["path"] != "encoder.onnx":
                shutil.copyfile(os.path.join(decoder_dir, ent["path"]), os.path.join(out_dec, ent["path"]))
    _link(encoder, os.path.join(out_dec, "encoder.onnx"))
    # the encoder's parity vectors travel with it (the TypeScript parity suite checks every version's encoder)
    with open(os.path.join(os.path.dirname(encoder), "parity.json")) as f:
        enc_parity = json.load(f)["encoder"]
    par_path = os.path.join(out_dec, dman["files"]["parity"]["path"])
    with open(par_path) as f:
        par = json.load(f)
    par["encoder"] = enc_parity
    with open(par_path, "w") as f:
        json.dump(par, f)
    dman["files"]["encoder"] = {"path": "encoder.onnx"}
    dman["io"]["encoder"] = ENCODER_IO
    for key, ent in dman["files"].items():
        dman["files"][key] = file_entry(out_dec, ent["path"], **{k: v for k, v in ent.items() if k not in ("path", "sha256")})
    with open(os.path.join(out_dec, "manifest.json"), "w") as f:
        json.dump(dman, f, indent=1)
