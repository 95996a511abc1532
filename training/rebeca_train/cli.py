"""Command line: /usr/bin/python3 -m rebeca_train <command> (run from training/)."""
import argparse
import json
import os
import sys

from .common import InputError, log


def main(argv=None):
    p = argparse.ArgumentParser(prog="rebeca_train")
    sub = p.add_subparsers(dest="cmd", required=True)

    w = sub.add_parser("world", help="demo world: autoencoder, decoder export, catalogue, users, ratings")
    w.add_argument("--out-dir", required=True, help="model version dir; writes decoder/ and world/")
    w.add_argument("--items", type=int, default=5000)
    w.add_argument("--users", type=int, default=200)
    w.add_argument("--new-users", type=int, default=20)
    w.add_argument("--ae-epochs", type=int, default=1)
    w.add_argument("--ae-train", type=int, default=60000, help="training images for the autoencoder")
    w.add_argument("--ae-seconds", type=float, default=400)
    w.add_argument("--seed", type=int, default=0)

    t = sub.add_parser("train-prior", help="train an x0 prior from item embeddings + interactions")
    t.add_argument("--items", required=True)
    t.add_argument("--item-ids", required=True)
    t.add_argument("--interactions", required=True, help="CSV user_id,item_id,like or user_id,item_id,rating")
    t.add_argument("--like-threshold", type=float, default=4.0)
    t.add_argument("--arch", choices=["mlp", "rebeca"], default="mlp")
    t.add_argument("--steps", type=int, default=1500)
    t.add_argument("--batch", type=int, default=256)
    t.add_argument("--lr", type=float, default=None)
    t.add_argument("--eval-every", type=int, default=100)
    t.add_argument("--patience", type=int, default=6)
    t.add_argument("--max-seconds", type=float, default=None)
    t.add_argument("--shuffle-users", action="store_true", help="control: shuffle user labels across interactions")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True, help="checkpoint path (.pt)")

    e = sub.add_parser("export", help="export a checkpoint to a model dir: prior.onnx, table, parity, manifest")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--out-dir", required=True)
    e.add_argument("--version", required=True)
    e.add_argument("--decoder-dir", default=None, help="copy this decoder/ into the model dir")

    a = sub.add_parser("add-users", help="fit rows for new users with the prior frozen")
    a.add_argument("--model-dir", required=True)
    a.add_argument("--items", required=True)
    a.add_argument("--item-ids", required=True)
    a.add_argument("--interactions", required=True)
    a.add_argument("--like-threshold", type=float, default=4.0)
    a.add_argument("--steps", type=int, default=600)
    a.add_argument("--seed", type=int, default=0)

    v = sub.add_parser("evaluate", help="oracle + learned verifier, permutation test, control")
    v.add_argument("--model-dir", required=True)
    v.add_argument("--control-dir", default=None)
    v.add_argument("--world", required=True, help="world dir (users.json, ratings, items)")
    v.add_argument("--per-user", type=int, default=10)
    v.add_argument("--perms", type=int, default=1000)
    v.add_argument("--max-users", type=int, default=None)
    v.add_argument("--verifier-steps", type=int, default=3000)
    v.add_argument("--ddpm-users", type=int, default=40, help="users for the 1000-step DDPM row (0: skip)")
    v.add_argument("--out", default=None, help="write the table as JSON here")
    v.add_argument("--seed", type=int, default=0)

    xe = sub.add_parser("x0-error", help="x0 RMS error per timestep of exported priors vs the identity x_t/sqrt(abar)")
    xe.add_argument("--model-dir", action="append", required=True, help="repeat to compare several priors")
    xe.add_argument("--world", required=True, help="world dir (items.npy, item_ids.txt, ratings.csv)")
    xe.add_argument("--pairs", type=int, default=2000)
    xe.add_argument("--out-json", default=None)
    xe.add_argument("--out-svg", default=None)
    xe.add_argument("--include-json", action="append", default=[],
                    help="earlier x0-error --out-json results to draw beside these (e.g. the prior before a fix)")

    x = sub.add_parser("export-verifier", help="train the learned verifier on world/ratings_verifier.csv and export world/verifier.onnx")
    x.add_argument("--world", required=True, help="world dir (item_pixels.npy, ratings_verifier.csv)")
    x.add_argument("--steps", type=int, default=3000)
    x.add_argument("--seed", type=int, default=0)

    c = sub.add_parser("validate", help="check a manifest against its files")
    c.add_argument("manifest", help="manifest.json or model dir")
    c.add_argument("--parity", action="store_true", help="also recompute parity.json from prior.onnx weights")

    rf = sub.add_parser("refit-users", help="re-fit existing users' rows from new interactions (prior frozen, in place)")
    rf.add_argument("--model-dir", required=True)
    rf.add_argument("--items", required=True)
    rf.add_argument("--item-ids", required=True)
    rf.add_argument("--interactions", required=True, help="local path or s3://bucket/key (.csv, .jsonl)")
    rf.add_argument("--like-threshold", type=float, default=4.0)
    rf.add_argument("--steps", type=int, default=300)
    rf.add_argument("--seed", type=int, default=0)

    fb = sub.add_parser("feedback", help="new interactions (CSV/JSONL, path or s3://) -> add-users + refit-users "
                        "(prior frozen) -> candidate version, gated on held-out likes; writes OUT/gate.json")
    fb.add_argument("--model-dir", required=True, help="the current version's directory")
    fb.add_argument("--items", required=True)
    fb.add_argument("--item-ids", required=True)
    fb.add_argument("--interactions", required=True, help="local path or s3://bucket/key (.csv, .jsonl)")
    fb.add_argument("--out-dir", required=True)
    fb.add_argument("--version", required=True, help="name of the candidate version")
    fb.add_argument("--steps", type=int, default=300)
    fb.add_argument("--like-threshold", type=float, default=4.0)
    fb.add_argument("--per-user", type=int, default=8)
    fb.add_argument("--perms", type=int, default=1000)
    fb.add_argument("--eval-users", type=int, default=64)
    fb.add_argument("--eval-steps", type=int, default=20)
    fb.add_argument("--alpha", type=float, default=0.01)
    fb.add_argument("--seed", type=int, default=0)

    lf = sub.add_parser("latent-fixture", help="tiny random-weight latent decoder (weights + exported ONNX)")
    lf.add_argument("--out-dir", required=True, help="decoder dir to write (manifest.json, *.onnx, parity.json)")
    lf.add_argument("--weights", default=None, help="also keep the weights checkpoint here")
    lf.add_argument("--seed", type=int, default=0)
    lf.add_argument("--latent-size", type=int, default=8, help="latent height = width (image is 4x)")
    lf.add_argument("--no-decode-parity", action="store_true", help="skip reference decodes (large images)")

    le = sub.add_parser("export-latent", help="latent-diffusion weights on disk -> ONNX decoder dir + manifest")
    le.add_argument("--weights", default=None, help="a rebeca.latent-weights/v1 checkpoint (.pt)")
    le.add_argument("--sd15-dir", default=None, help="Stable Diffusion 1.5 diffusers folder (needs diffusers)")
    le.add_argument("--ip-adapter", default=None, help="ip-adapter_sd15.bin (with --sd15-dir)")
    le.add_argument("--from-decoder", default=None, help="an exported decoder dir (sha256s checked): the same "
                    "weights written again with new serving defaults and parity decodes")
    le.add_argument("--out-dir", required=True)
    le.add_argument("--scheduler", choices=["ddim", "euler", "pndm"], default="pndm")
    le.add_argument("--steps", type=int, default=50)
    le.add_argument("--guidance", type=float, default=5.0)

    tv = sub.add_parser("train-vae", help="small KL-VAE on Fashion-MNIST (28×28 padded to 32, 4×8×8 latent)")
    tv.add_argument("--out", required=True, help="VAE checkpoint (.pt)")
    tv.add_argument("--steps", type=int, default=500)
    tv.add_argument("--batch", type=int, default=128)
    tv.add_argument("--train-images", type=int, default=None, help="use only the first N training images")
    tv.add_argument("--lr", type=float, default=2e-3)
    tv.add_argument("--kl-weight", type=float, default=1e-4)
    tv.add_argument("--perceptual-weight", type=float, default=0.0, help="weight of the encoder-feature distance")
    tv.add_argument("--perceptual-encoder", default=None, help="decoder/encoder.onnx whose features it compares")
    tv.add_argument("--seed", type=int, default=0)

    tu = sub.add_parser("train-latent-unet", help="UNet + IP-Adapter projection in the VAE's latent space, "
                        "conditioned on the committed encoder's embedding; writes rebeca.latent-weights/v1")
    tu.add_argument("--vae", required=True, help="checkpoint from train-vae")
    tu.add_argument("--encoder", required=True, help="the embedding encoder (decoder/encoder.onnx of the prior's version)")
    tu.add_argument("--out", required=True, help="weights checkpoint (.pt) for export-latent")
    tu.add_argument("--steps", type=int, default=2000)
    tu.add_argument("--batch", type=int, default=128)
    tu.add_argument("--lr", type=float, default=1e-3)
    tu.add_argument("--unet-channels", type=int, default=32)
    tu.add_argument("--init-decoder", default=None, help="continue training this exported decoder dir "
                    "(e.g. ../models/demo-v2/decoder; trained on the same --vae)")
    tu.add_argument("--train-images", type=int, default=None, help="use only the first N training images")
    tu.add_argument("--seed", type=int, default=0)

    tc = sub.add_parser("train-classifier", help="Fashion-MNIST classifier for Fashion-FID and class accuracy")
    tc.add_argument("--out", required=True, help="classifier checkpoint (.pt)")
    tc.add_argument("--epochs", type=int, default=3)
    tc.add_argument("--lr", type=float, default=1e-3)
    tc.add_argument("--init", default=None, help="continue training this classifier checkpoint")
    tc.add_argument("--no-augment", action="store_true", help="no flips or shifts")
    tc.add_argument("--min-accuracy", type=float, default=0.9, help="exit 2 below this test accuracy")
    tc.add_argument("--seed", type=int, default=0)

    ev = sub.add_parser("evaluate-vae", help="Fashion-FID and class accuracy of VAE reconstructions of catalogue images")
    ev.add_argument("vaes", nargs="+", help="train-vae checkpoints")
    ev.add_argument("--classifier", required=True, help="checkpoint from train-classifier")
    ev.add_argument("--world", required=True)
    ev.add_argument("--n", type=int, default=1000)

    ed = sub.add_parser("evaluate-decoders", help="Fashion-FID, class accuracy and re-encoded cosine of the "
                        "latent-diffusion decoder vs the autoencoder decoder on the same embeddings")
    ed.add_argument("--weights", default=None, help="rebeca.latent-weights/v1 checkpoint of the diffusion decoder "
                    "(decoded in PyTorch; not needed with --decoder-manifest)")
    ed.add_argument("--ae-decoder-dir", required=True, help="single-shot decoder dir (decoder.onnx, encoder.onnx)")
    ed.add_argument("--prior-dir", required=True, help="prior version whose samples are decoded")
    ed.add_argument("--world", required=True)
    ed.add_argument("--classifier", required=True, help="checkpoint from train-classifier")
    ed.add_argument("--out", required=True, help="JSON report")
    ed.add_argument("--n", type=int, default=1000)
    ed.add_argument("--seed-sets", type=int, default=2)
    ed.add_argument("--scheduler", choices=["ddim", "euler", "pndm"], default="ddim")
    ed.add_argument("--steps", type=int, default=20)
    ed.add_argument("--guidance", type=float, default=3.0)
    ed.add_argument("--sweep", type=int, default=0, help="also sweep schedulers × steps on this many catalogue items")
    ed.add_argument("--sweep-guidance", type=float, nargs="+", default=[3.0])
    ed.add_argument("--sweep-settings", nargs="+", default=None,
                    help="SCHEDULER:STEPS settings to sweep (default: decoder_eval.SWEEP)")
    ed.add_argument("--sweep-report", nargs="+", default=None, help="carry the sweeps of these earlier --sweep-only "
                    "reports (same items and seeds, rows merged) instead of re-running one")
    ed.add_argument("--sweep-only", action="store_true", help="stop after the sweep")
    ed.add_argument("--decoder-manifest", default=None, help="the exported decoder: decode through onnxruntime "
                    "(packages/eval/dist/decode-cli.js, as the worker) instead of PyTorch")

    pv = sub.add_parser("pair-version", help="new version = a prior version's files (linked) + a latent-diffusion decoder")
    pv.add_argument("--prior-dir", required=True, help="prior version dir, e.g. ../models/demo-v1")
    pv.add_argument("--decoder-dir", required=True, help="latent decoder dir (export-latent's output, or OUT/decoder itself)")
    pv.add_argument("--out-dir", required=True, help="the new version dir, e.g. ../models/demo-v2")
    pv.add_argument("--version", required=True)
    pv.add_argument("--link-decoder", action="store_true", help="link decoder/ to --decoder-dir (a paired version's decoder/) instead of copying")

    args = p.parse_args(argv)
    try:
        run(args)
    except InputError as ex:
        print(f"error: {ex}", file=sys.stderr)
        sys.exit(2)


def run(args):
    import torch
    if args.cmd == "world":
        from .world import build_world
        build_world(args.out_dir, args.items, args.users, args.new_users, args.ae_epochs, args.ae_train,
                    seed=args.seed, ae_seconds=args.ae_seconds)
    elif args.cmd == "train-prior":
        from .train import train_prior
        lr = args.lr if args.lr is not None else (1e-3 if args.arch == "mlp" else 2e-3)
        ck = train_prior(args.items, args.item_ids, args.interactions, args.arch, args.steps, args.batch, lr,
                         eval_every=args.eval_every, patience=args.patience, seed=args.seed,
                         like_threshold=args.like_threshold, shuffle_users=args.shuffle_users,
                         max_seconds=args.max_seconds)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        torch.save(ck, args.out)
        log(f"checkpoint written to {args.out}")
    elif args.cmd == "export":
        from .export import export_checkpoint
        if not os.path.exists(args.checkpoint):
            raise InputError(f"checkpoint not found: {args.checkpoint}")
        export_checkpoint(torch.load(args.checkpoint), args.out_dir, args.version, args.decoder_dir)
    elif args.cmd == "refit-users":
        from .feedback import refit_users
        refit_users(args.model_dir, args.items, args.item_ids, args.interactions, args.steps, seed=args.seed,
                    like_threshold=args.like_threshold)
    elif args.cmd == "feedback":
        from .feedback import build_candidate
        rep = build_candidate(args.model_dir, args.items, args.item_ids, args.interactions, args.out_dir, args.version,
                              steps=args.steps, seed=args.seed, like_threshold=args.like_threshold, per_user=args.per_user,
                              perms=args.perms, eval_users=args.eval_users, eval_steps=args.eval_steps, alpha=args.alpha)
        print(json.dumps({"passed": rep["passed"], "reasons": rep["reasons"], "version": args.version}))
    elif args.cmd == "add-users":
        from .add_users import add_users
        add_users(args.model_dir, args.items, args.item_ids, args.interactions, args.steps, seed=args.seed,
                  like_threshold=args.like_threshold)
    elif args.cmd == "evaluate":
        from .evaluate import evaluate
        evaluate(args.model_dir, args.control_dir, args.world, args.per_user, args.perms, args.max_users,
                 args.verifier_steps, args.out, args.seed,
                 ddpm_users=args.ddpm_users)
    elif args.cmd == "x0-error":
        from .denoise_error import write_report, x0_error
        w = args.world
        earlier = [r for p in args.include_json for r in json.load(open(p))]
        write_report(earlier + [x0_error(d, os.path.join(w, "items.npy"), os.path.join(w, "item_ids.txt"),
                                         os.path.join(w, "ratings.csv"), args.pairs) for d in args.model_dir],
                     args.out_json, args.out_svg)
    elif args.cmd == "export-verifier":
        from .verifier_export import export_verifier
        export_verifier(args.world, args.steps, args.seed)
    elif args.cmd in ("latent-fixture", "export-latent"):
        from . import latent_export
        if args.cmd == "latent-fixture":
            import tempfile
            with tempfile.TemporaryDirectory() as tmp:
                w = args.weights or os.path.join(tmp, "weights.pt")
                cfg = dict(latent_export.FIXTURE_CONFIG, latent_size=args.latent_size)
                latent_export.make_fixture_weights(w, seed=args.seed, config=cfg)
                latent_export.export_weights(w, args.out_dir, decode_parity=not args.no_decode_parity)
        elif args.sd15_dir:
            if not args.ip_adapter:
                raise InputError("--sd15-dir needs --ip-adapter")
            latent_export.export_sd15_ip_adapter(args.sd15_dir, args.ip_adapter, args.out_dir, args.scheduler,
                                                 args.steps, args.guidance)
        elif args.weights:
            latent_export.export_weights(args.weights, args.out_dir, args.scheduler, args.steps, args.guidance)
        elif args.from_decoder:
            latent_export.reexport(args.from_decoder, args.out_dir, args.scheduler, args.steps, args.guidance)
        else:
            raise InputError("export-latent needs --weights, --sd15-dir or --from-decoder")
    elif args.cmd in ("train-vae", "train-latent-unet"):
        from . import decoder_train as dt
        from .world import load_fmnist
        pix = None if args.train_images is None else load_fmnist("train")[0][:args.train_images]
        if args.cmd == "train-vae":
            dt.train_vae(args.out, args.steps, args.batch, lr=args.lr, kl_weight=args.kl_weight, seed=args.seed,
                         train_images=pix, perceptual_weight=args.perceptual_weight,
                         perceptual_encoder=args.perceptual_encoder)
        else:
            cfg = dict(dt.SMALL_CONFIG, unet_channels=args.unet_channels)
            dt.train_unet(args.vae, args.encoder, args.out, args.steps, args.batch, args.lr, seed=args.seed,
                          train_pixels=pix, config=cfg, init_decoder=args.init_decoder)
    elif args.cmd == "evaluate-vae":
        from .decoder_eval import vae_realism
        vae_realism(args.vaes, args.classifier, args.world, args.n)
    elif args.cmd == "train-classifier":
        from .realism import train_classifier
        train_classifier(args.out, args.epochs, lr=args.lr, seed=args.seed, init=args.init,
                         augment=not args.no_augment, min_accuracy=args.min_accuracy)
    elif args.cmd == "evaluate-decoders":
        from .decoder_eval import evaluate_decoders, parse_settings
        evaluate_decoders(args.weights, args.ae_decoder_dir, args.prior_dir, args.world, args.classifier, args.out,
                          args.n, args.seed_sets, args.scheduler, args.steps, args.guidance, args.sweep,
                          tuple(args.sweep_guidance), decoder_manifest=args.decoder_manifest,
                          sweep_only=args.sweep_only, sweep_report=args.sweep_report,
                          **({"sweep_settings": parse_settings(args.sweep_settings)} if args.sweep_settings else {}))
    elif args.cmd == "pair-version":
        from .pair import pair_version
        pair_version(args.prior_dir, args.decoder_dir, args.out_dir, args.version, args.link_decoder)
    elif args.cmd == "validate":
        from .manifest import validate
        man = validate(args.manifest)
        res = {"ok": True, "version": man["version"], "rows": man["users"]["rows"]}
        if args.parity:
            from .export import recompute_parity
            res["parity_max_abs_diff"] = recompute_parity(args.manifest)
        print(json.dumps(res))
