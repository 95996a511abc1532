"""Realism of the two decoders on the same inputs (docs/evaluation.md, "Decoder realism"):

- the same 1,000 catalogue embeddings and the same 1,000 prior samples go through the autoencoder's
  single-shot decoder and the latent-diffusion decoder;
- Fashion-FID of each set against the 10,000 real test images (penultimate features of the project's
  classifier, realism.py), with the floor beside it: 1,000 real *train* images against the same reference;
- the classifier's accuracy on decoded catalogue embeddings (does the image keep its item's class?),
  floor = its accuracy on the real catalogue images;
- cosine between the committed encoder's re-encoding of each image and the target embedding.

Intervals: 95% bootstrap over the 1,000 rows (paired between decoders for the FID ratio), and the
diffusion decoder's seed-to-seed spread over independent noise seeds. Class accuracy is compared by a
one-sided paired rule (`class_accuracy_rule`); the serving settings are swept on 1,000 *other*
catalogue items and the default chosen there (`sweep`, `choose_default`), never on the evaluation set.
"""
import json
import os
import subprocess
import tempfile
import time

import numpy as np
import torch

from . import latent_export, latent_schedulers
from .common import InputError, log, setup
from .decoder_train import images_pm1, load_embedding_encoder, load_vae
from .evaluate import generate
from .export import load_prior
from .realism import frechet, gaussian, load_classifier, predict
from .world import load_decoder, load_fmnist

SWEEP = [("ddim", 10), ("ddim", 15), ("ddim", 25), ("euler", 15), ("euler", 25), ("pndm", 15), ("pndm", 24)]


REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DECODE_CLI = os.path.join(REPO, "packages", "eval", "dist", "decode-cli.js")


def diffusion_decode(models, embeds, seeds, scheduler, steps, guidance, chunk=250):
    """Images [N, 28, 28] in [0, 1]. With `models` a decoder manifest path: through onnxruntime as the
    decoder worker runs it (packages/eval's decode-cli, ~5× faster than this torch build); with
    `models` the loaded weights: the PyTorch reference decode (which the TypeScript side reproduces
    within 1e-3)."""
    if isinstance(models, str):
        return node_decode(models, embeds, seeds, scheduler, steps, guidance)
    cfg, proj, unet, vae = models
    out = []
    for s in range(0, len(embeds), chunk):
        img, _ = latent_export.reference_decode(
            proj, unet, vae, embeds[s:s + chunk], seeds[s:s + chunk], scheduler, steps, guidance,
            latent_schedulers.scaled_linear_alphas_cumprod(), (cfg["latent_channels"], cfg["latent_size"], cfg["latent_size"]),
            cfg["latent_scale"])
        out.append(img[:, 0])
    return np.concatenate(out)


def node_decode(manifest, embeds, seeds, scheduler, steps, guidance):
    if not os.path.exists(DECODE_CLI):
        raise InputError(f"{DECODE_CLI} missing: build the TypeScript packages (pnpm run build) or drop --decoder-manifest")
    with tempfile.TemporaryDirectory() as tmp:
        paths = [os.path.join(tmp, n) for n in ("e.npy", "s.npy", "o.npy")]
        np.save(paths[0], np.asarray(embeds, np.float32))
        np.save(paths[1], np.asarray(seeds, np.float32))
        subprocess.run(["node", DECODE_CLI, manifest, *paths, scheduler, str(steps), str(guidance)], check=True)
        return np.load(paths[2])[:, 0]


def ae_decode(decoder, embeds):
    with torch.no_grad():
        return decoder(torch.from_numpy(np.asarray(embeds, np.float32))).numpy()[:, 0]


def cosines(encoder, images, targets):
    with torch.no_grad():
        e = encoder(torch.from_numpy(np.asarray(images, np.float32)).reshape(-1, 1, 28, 28)).numpy().astype(np.float64)
    t = np.asarray(targets, np.float64)
    return np.sum(e * t, 1) / (np.linalg.norm(e, axis=1) * np.linalg.norm(t, axis=1))


def interval(values, stat, rng, n=200):
    """(point, lo, hi): 95% basic bootstrap over rows of `values` (an array or a tuple of row-aligned
    arrays). Basic (2θ − q) rather than percentile: resampling with replacement duplicates rows, which
    biases a Fréchet distance upward; the basic interval subtracts that bias instead of reporting it."""
    vs = values if isinstance(values, tuple) else (values,)
    point = stat(*vs)
    boots = []
    for _ in range(n):
        ix = rng.integers(0, len(vs[0]), len(vs[0]))
        boots.append(stat(*(v[ix] for v in vs)))
    q_lo, q_hi = np.percentile(boots, [2.5, 97.5])
    return [round(float(point), 4), round(float(2 * point - q_hi), 4), round(float(2 * point - q_lo), 4)]


class Judge:
    """Classifier features of the reference set, and the measures on a set of images."""

    def __init__(self, classifier_path, encoder_path, seed=0):
        self.model, self.stats = load_classifier(classifier_path)
        self.encoder = load_embedding_encoder(encoder_path)
        Xte, _ = load_fmnist("test")
        self.ref = gaussian(predict(self.model, Xte)[0])
        self.rng = np.random.default_rng(seed)

    def fid(self, feats):
        return frechet(feats, self.ref)

    def measure(self, images, targets, labels=None):
        feats, cls = predict(self.model, images)
        r = {"fid": interval(feats, self.fid, self.rng), "cosine": interval(cosines(self.encoder, images, targets), np.mean, self.rng)}
        if labels is not None:
            r["class_accuracy"] = interval((cls == labels).astype(np.float64), np.mean, self.rng)
        return r, feats


def class_accuracy_rule(correct_sets, correct_ae, rng, resamples=1000):
    """Is the diffusion decoder's class accuracy ≥ the autoencoder decoder's on the same items? The
    project's one-sided rule (docs/evaluation.md, as for samplers on the frontier): per item, the
    diffusion decoder's correctness pooled over its noise seed sets minus the autoencoder's; a
    percentile bootstrap over items gives the one-sided 95 % lower bound (5 % quantile) of the mean
    difference. It passes when the mean difference is ≥ 0 and that lower bound is ≥ −noise, noise =
    the largest accuracy gap between the diffusion decoder's own seed sets. One-sided: a decoder above
    the autoencoder passes however far above it is."""
    sets = np.asarray(correct_sets, np.float64)
    d = sets.mean(0) - np.asarray(correct_ae, np.float64)
    boots = d[rng.integers(0, len(d), (resamples, len(d)))].mean(1)
    acc = sets.mean(1)
    noise = float(acc.max() - acc.min())
    mean, lower = float(d.mean()), float(np.percentile(boots, 5))
    return {"difference": round(mean, 4), "lower_95": round(lower, 4), "noise": round(noise, 4),
            "passes": bool(mean >= 0 and lower >= -noise)}


def parse_settings(specs):
    """"ddim:10" → ("ddim", 10)."""
    out = []
    for spec in specs:
        name, _, steps = spec.partition(":")
        if not steps.isdigit():
            raise InputError(f"sweep setting {spec!r}: expected SCHEDULER:STEPS, e.g. ddim:10")
        out.append((name, int(steps)))
    return out


def unet_calls(scheduler, steps):
    """UNet calls per image (a CFG pair is one call of 2B rows)."""
    return len(latent_schedulers.make(scheduler, latent_schedulers.scaled_linear_alphas_cumprod(), steps).timesteps)


def sweep(judge, models, embeds, labels, ae_images, settings=SWEEP, guidances=(3.0,), seed_sets=2):
    """Every scheduler × steps × guidance on the same embeddings, noise seeds and autoencoder decodes:
    per seed set Fashion-FID, class accuracy and cosine (95 % bootstrap intervals over items), the FID
    ratio to the autoencoder (paired bootstrap, seed set 0) and the class-accuracy rule."""
    ae, ae_feats = judge.measure(ae_images, embeds, labels)
    ae_correct = predict(judge.model, ae_images)[1] == labels
    rows = []
    for g in guidances:
        for name, steps in settings:
            t = time.time()
            sets, feats, correct = [], [], []
            for k in range(seed_sets):
                img = diffusion_decode(models, embeds, [1 + k * 100000 + i for i in range(len(embeds))], name, steps, g)
                r, f = judge.measure(img, embeds, labels)
                sets.append(r)
                feats.append(f)
                correct.append(predict(judge.model, img)[1] == labels)
            ratio = interval((feats[0], ae_feats), lambda d, a: judge.fid(d) / judge.fid(a), judge.rng)
            rows.append({"scheduler": name, "steps": steps, "unet_calls": unet_calls(name, steps), "guidance": g,
                         "seed_sets": sets, "fid_ratio": ratio,
                         "class_accuracy_vs_autoencoder": class_accuracy_rule(correct, ae_correct, judge.rng),
                         "seconds": round(time.time() - t, 1)})
            log(f"sweep {name} {steps} g={g}: ratio {ratio} class {rows[-1]['class_accuracy_vs_autoencoder']} "
                f"acc {[r['class_accuracy'][0] for r in sets]} cos {[r['cosine'][0] for r in sets]}")
    return {"autoencoder": ae, "rows": rows, "chosen": choose_default(rows)}


def choose_default(rows, max_ratio=0.5, max_calls=25):
    """The manifest default: among settings whose class accuracy passes the rule and whose FID ratio's
    upper bound is ≤ `max_ratio`, at ≤ `max_calls` UNet calls, the fewest calls (serving cost), then —
    as the prior's sampler default is chosen — the smallest guidance (the most diverse images of an
    embedding), then the larger class-accuracy difference. None when no setting qualifies."""
    ok = [r for r in rows if r["class_accuracy_vs_autoencoder"]["passes"] and r["fid_ratio"][2] <= max_ratio
          and r["unet_calls"] <= max_calls]
    if not ok:
        return None
    best = min(ok, key=lambda r: (r["unet_calls"], r["guidance"], -r["class_accuracy_vs_autoencoder"]["difference"]))
    return {k: best[k] for k in ("scheduler", "steps", "guidance", "unet_calls")}


def merge_sweeps(sweeps):
    """Sweeps run separately on the same items and seeds (e.g. a grid split over several runs) as one:
    their rows together, the setting chosen again over all of them."""
    first = sweeps[0]
    for other in sweeps[1:]:
        if (other["n"], other["autoencoder"]["class_accuracy"][0]) != (first["n"], first["autoencoder"]["class_accuracy"][0]):
            raise InputError("sweeps to merge were not run on the same items")
    rows = [r for sw in sweeps for r in sw["rows"]]
    return dict(first, rows=rows, chosen=choose_default(rows))


def evaluate_decoders(weights, ae_dir, prior_dir, world, classifier, out, n=1000, seed_sets=2, scheduler="ddim",
                      steps=20, guidance=3.0, sweep_n=0, sweep_guidances=(3.0,), seed=0, decoder_manifest=None,
                      sweep_only=False, sweep_settings=SWEEP, sweep_report=None):
    """`sweep_report`: JSON(s) written earlier with `sweep_only` whose sweeps are carried (merged) into this
    report instead of re-running them (the same items and seeds)."""
    setup(seed)
    t0 = time.time()
    if not (decoder_manifest or weights):
        raise InputError("evaluate-decoders needs --decoder-manifest (onnxruntime) or --weights (PyTorch)")
    models = decoder_manifest or latent_export.load_weights(weights)
    judge = Judge(classifier, os.path.join(ae_dir, "encoder.onnx"), seed)
    ae = load_decoder(ae_dir)
    rng = np.random.default_rng(seed)
    E = np.load(os.path.join(world, "items.npy")).astype(np.float32)
    pix = np.load(os.path.join(world, "item_pixels.npy"))
    lab = np.load(os.path.join(world, "item_labels.npy")).astype(np.int64)
    perm = rng.permutation(len(E))
    cat = np.sort(perm[:n])
    report = {"n": n, "decoded_with": "onnxruntime (decode-cli)" if decoder_manifest else "pytorch", "scheduler": scheduler, "steps": steps, "guidance": guidance, "seed_sets": seed_sets,
              "classifier": judge.stats, "reference": "10,000 Fashion-MNIST test images"}
    if sweep_report:
        sweeps = []
        for path in ([sweep_report] if isinstance(sweep_report, str) else sweep_report):
            with open(path) as f:
                sweeps.append(json.load(f)["sweep"])
        report["sweep"] = merge_sweeps(sweeps)
    elif sweep_n:
        sw = perm[n:n + sweep_n]  # other catalogue items: the setting is not chosen on the evaluation set
        report["sweep"] = {"n": sweep_n, "seed_sets": seed_sets,
                           **sweep(judge, models, E[sw], lab[sw], ae_decode(ae, E[sw]), sweep_settings,
                                   sweep_guidances, seed_sets)}
        if sweep_only:
            with open(out, "w") as f:
                json.dump(report, f, indent=1)
            print_sweep(report["sweep"])
            return report
    # prior samples: 100 users × 10, the prior's DDIM-50 at its guidance
    man, _, prior, table, _ = load_prior(prior_dir)
    users = min(100, man["users"]["rows"] - 1, n)
    P = generate(prior, table, list(range(users)), n // users, "ddim", 50, man["defaults"]["guidance"], man["clip_x0"])
    Xtr, _ = load_fmnist("train")
    ftr = predict(judge.model, Xtr[rng.permutation(len(Xtr))[:n]])[0]
    report["floor"] = {"fid_train_vs_test": interval(ftr, judge.fid, judge.rng),
                       "catalogue_class_accuracy": interval((predict(judge.model, pix[cat])[1] == lab[cat]).astype(np.float64), np.mean, judge.rng),
                       "catalogue_real_cosine": interval(cosines(judge.encoder, pix[cat].astype(np.float32) / 255, E[cat]), np.mean, judge.rng)}
    # seed-to-seed noise on the catalogue (seed_sets noise seeds); the prior samples carry their own
    # seed noise already (each is one draw of the prior), so one decoder seed set there
    for name, targets, labels, sets in (("catalogue", E[cat], lab[cat], seed_sets), ("prior_samples", P, None, 1)):
        a_img = ae_decode(ae, targets)
        a, a_feats = judge.measure(a_img, targets, labels)
        runs, d_feats, d_correct = [], [], []
        for k in range(sets):
            seeds = [1 + k * 100000 + i for i in range(len(targets))]
            t = time.time()
            d_img = diffusion_decode(models, targets, seeds, scheduler, steps, guidance)
            r, f = judge.measure(d_img, targets, labels)
            r["seconds"] = round(time.time() - t, 1)
            runs.append(r)
            d_feats.append(f)
            if labels is not None:
                d_correct.append(predict(judge.model, d_img)[1] == labels)
            log(f"{name} diffusion seed set {k}: {r}")
        ratio = interval((d_feats[0], a_feats), lambda d, a: judge.fid(d) / judge.fid(a), judge.rng)
        spread = {key: [min(r[key][0] for r in runs), max(r[key][0] for r in runs)] for key in runs[0] if key != "seconds"}
        report[name] = {"autoencoder": a, "diffusion": runs, "diffusion_seed_spread": spread,
                        "fid_ratio_diffusion_over_autoencoder": ratio}
        if labels is not None:
            report[name]["class_accuracy_vs_autoencoder"] = class_accuracy_rule(
                d_correct, predict(judge.model, a_img)[1] == labels, judge.rng)
        log(f"{name} autoencoder: {a}; ratio {ratio}")
    report["seconds"] = round(time.time() - t0, 1)
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    print_table(report)
    if "sweep" in report:
        print_sweep(report["sweep"])
    return report


def print_sweep(sw):
    """The sweep as a markdown table (docs/evaluation.md): per setting, each seed set's Fashion-FID and class
    accuracy, the paired FID ratio, the class-accuracy difference to the autoencoder decoder and the rule."""
    ae = sw["autoencoder"]
    print(f"autoencoder decoder on the same {sw['n']} items: FID {ae['fid'][0]}, class accuracy {ae['class_accuracy'][0]}, "
          f"cosine {ae['cosine'][0]}; chosen: {sw['chosen']}")
    print("| setting | UNet calls | g | Fashion-FID (A / B) | FID ratio [95 % CI] | class accuracy (A / B) "
          "| diffusion − AE [one-sided 95 % lower], noise | rule | cosine |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in sw["rows"]:
        sets, c, q = r["seed_sets"], r["class_accuracy_vs_autoencoder"], r["fid_ratio"]
        fids = " / ".join(f"{x['fid'][0]:.1f}" for x in sets)
        accs = " / ".join(f"{x['class_accuracy'][0]:.3f}" for x in sets)
        print(f"| {r['scheduler'].upper()} {r['steps']} | {r['unet_calls']} | {r['guidance']:g} | {fids} "
              f"| {q[0]:.2f} [{q[1]:.2f}, {q[2]:.2f}] | {accs} "
              f"| {c['difference']:+.3f} [{c['lower_95']:+.3f}], {c['noise']:.3f} | {'pass' if c['passes'] else 'fail'} "
              f"| {sets[0]['cosine'][0]:.3f} |")


def print_table(r):
    def f(v):
        return f"{v[0]} [{v[1]}, {v[2]}]"
    print(f"| set | decoder | Fashion-FID (95% CI) | class accuracy | re-encoded cosine |")
    print("|---|---|---|---|---|")
    fl = r["floor"]
    for name in ("catalogue", "prior_samples"):
        s = r[name]
        print(f"| {name} | autoencoder | {f(s['autoencoder']['fid'])} | {f(s['autoencoder']['class_accuracy']) if 'class_accuracy' in s['autoencoder'] else '—'} | {f(s['autoencoder']['cosine'])} |")
        for k, d in enumerate(s["diffusion"]):
            print(f"| {name} | diffusion (seeds {k}) | {f(d['fid'])} | {f(d['class_accuracy']) if 'class_accuracy' in d else '—'} | {f(d['cosine'])} |")
        print(f"| {name} | FID ratio diffusion/AE | {f(s['fid_ratio_diffusion_over_autoencoder'])} | | |")
        if "class_accuracy_vs_autoencoder" in s:
            print(f"| {name} | class accuracy diffusion − AE | | {s['class_accuracy_vs_autoencoder']} | |")
    print(f"| floor | real train vs test | {f(fl['fid_train_vs_test'])} | {f(fl['catalogue_class_accuracy'])} | {f(fl['catalogue_real_cosine'])} |")


def vae_realism(vae_paths, classifier, world, n=1000):
    """The ceiling a VAE sets on the diffusion decoder: Fashion-FID and class accuracy of its own
    reconstructions (posterior means) of the first `n` catalogue images, against the 10,000 real
    test images; the real catalogue images alone as the floor. Rows: {path: {fid, class_accuracy}}."""
    model, _ = load_classifier(classifier)
    ref = gaussian(predict(model, load_fmnist("test")[0])[0])
    pix = np.load(os.path.join(world, "item_pixels.npy"))[:n]
    lab = np.load(os.path.join(world, "item_labels.npy"))[:n]
    rows = {}
    for path, images in [("real catalogue images", pix)] + [(p, None) for p in vae_paths]:
        if images is None:
            _, enc, dec, _ = load_vae(path)
            with torch.no_grad():
                images = ((dec(enc(images_pm1(pix))[0]) + 1) / 2).clamp(0, 1).numpy()[:, 0]
        feats, cls = predict(model, images)
        rows[path] = {"fid": round(frechet(feats, ref), 2), "class_accuracy": round(float(np.mean(cls == lab)), 4)}
        log(f"{path}: {rows[path]}")
    return rows
