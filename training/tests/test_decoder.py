"""The trained decoder's parts: module shapes, Fashion-FID's formula, bootstrap intervals, the class-accuracy
rule and the settings choice, re-export with new defaults, version pairing."""
import json
import os
import shutil
import sys
import tempfile
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from rebeca_train import decoder_train, latent_export, latent_modules  # noqa: E402
from rebeca_train.common import InputError, sha256_file  # noqa: E402
from rebeca_train.decoder_eval import (choose_default, class_accuracy_rule, interval, merge_sweeps,  # noqa: E402
                                       parse_settings)
from rebeca_train.pair import pair_version  # noqa: E402
from rebeca_train.realism import frechet  # noqa: E402

MODELS = os.path.join(os.path.dirname(__file__), "..", "..", "models")


class Modules(unittest.TestCase):
    def test_shapes(self):
        torch.manual_seed(0)
        cfg = dict(decoder_train.SMALL_CONFIG)
        proj, unet, vae = latent_modules.build(cfg)
        enc = latent_modules.SmallVaeEncoder(cfg["latent_channels"], cfg["vae_channels"])
        mean, logvar = enc(torch.zeros(3, 1, 28, 28))
        self.assertEqual(tuple(mean.shape), (3, 4, 8, 8))
        self.assertEqual(tuple(logvar.shape), (3, 4, 8, 8))
        self.assertEqual(tuple(vae(mean).shape), (3, 1, 28, 28))
        tokens = proj(torch.zeros(3, 64))
        self.assertEqual(tuple(tokens.shape), (3, 4, 64))
        text = torch.zeros(3, cfg["text_tokens"], cfg["cross_dim"])
        self.assertEqual(tuple(unet(mean, torch.tensor([1.0, 500.0, 999.0]), text, tokens).shape), (3, 4, 8, 8))

    def test_the_image_condition_reaches_the_output(self):
        torch.manual_seed(0)
        proj, unet, _ = latent_modules.build(dict(decoder_train.SMALL_CONFIG))
        x, t = torch.randn(1, 4, 8, 8), torch.tensor([500.0])
        text = torch.zeros(1, 4, 64)
        a = unet(x, t, text, proj(torch.randn(1, 64)))
        b = unet(x, t, text, proj(torch.randn(1, 64)))
        self.assertGreater(float((a - b).abs().max()), 1e-4)


class Perceptual(unittest.TestCase):
    """The VAE's perceptual term: the committed encoder's features, frozen."""

    def setUp(self):
        self.dist = decoder_train.EncoderFeatures(os.path.join(MODELS, "demo-v1", "decoder", "encoder.onnx"))
        self.x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def test_zero_on_identical_images_and_larger_the_further_apart(self):
        self.assertAlmostEqual(float(self.dist(self.x, self.x)), 0.0, places=6)
        near, far = self.x + 0.05, self.x.flip(3)
        self.assertGreater(float(self.dist(far, self.x)), float(self.dist(near, self.x)))

    def test_its_gradient_reaches_the_image_and_never_the_encoder(self):
        y = self.x.clone().requires_grad_(True)
        self.dist(y, self.x.flip(2)).backward()
        self.assertGreater(float(y.grad.abs().sum()), 0.0)
        self.assertTrue(all(p.grad is None for p in self.dist.parameters()))

    def test_a_weight_without_an_encoder_is_refused(self):
        with self.assertRaises(InputError):
            decoder_train.train_vae(os.devnull, steps=1, perceptual_weight=1.0)


class Fid(unittest.TestCase):
    def test_identical_sets_are_zero_and_a_shift_costs_its_square(self):
        rng = np.random.default_rng(0)
        x = rng.normal(size=(4000, 8))
        self.assertAlmostEqual(frechet(x, x), 0.0, places=6)
        self.assertAlmostEqual(frechet(x, x + 2.0), 8 * 4.0, places=6)

    def test_scaled_covariance(self):
        rng = np.random.default_rng(1)
        x = rng.normal(size=(20000, 4))
        # means μ and 2μ, covariances C and 4C: ‖μ‖² + tr(C + 4C − 2·(C^½ 4C C^½)^½) = ‖μ‖² + tr(C)
        mu = x.mean(0)
        self.assertAlmostEqual(frechet(x, 2 * x), float(np.trace(np.cov(x, rowvar=False)) + mu @ mu), places=6)

    def test_basic_bootstrap(self):
        # Fréchet distance: duplicated rows raise it, and the basic interval moves down by that bias
        rng = np.random.default_rng(2)
        x = rng.normal(size=(500, 8))
        ref = rng.normal(size=(5000, 8))
        point, lo, hi = interval(x, lambda v: frechet(v, ref), np.random.default_rng(3), n=100)
        self.assertLess(lo, hi)
        self.assertLess((lo + hi) / 2, point)
        # an unbiased statistic: the interval brackets the point
        p, l, h = interval(np.arange(100.0), np.mean, np.random.default_rng(4), n=200)
        self.assertAlmostEqual(p, 49.5)
        self.assertTrue(l < 49.5 < h and h - l < 25)


class ClassAccuracyRule(unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(5)
        self.ae = rng.random(1000) < 0.83

    def test_equal_accuracy_passes_and_the_noise_is_the_seed_sets_gap(self):
        r = class_accuracy_rule([self.ae, self.ae], self.ae, np.random.default_rng(0))
        self.assertEqual((r["difference"], r["lower_95"], r["noise"], r["passes"]), (0.0, 0.0, 0.0, True))
        flipped = self.ae.copy()
        flipped[:20] = ~flipped[:20]
        r = class_accuracy_rule([self.ae, flipped], self.ae, np.random.default_rng(0))
        self.assertAlmostEqual(r["noise"], abs(flipped.mean() - self.ae.mean()), places=4)

    def test_one_sided_far_above_passes_clearly_below_fails(self):
        better = self.ae | (np.arange(1000) % 5 == 0)
        r = class_accuracy_rule([better, better], self.ae, np.random.default_rng(0))
        self.assertTrue(r["passes"])
        self.assertAlmostEqual(r["difference"], better.mean() - self.ae.mean(), places=4)
        self.assertGreater(r["lower_95"], 0)
        worse = self.ae & (np.arange(1000) % 10 != 0)
        r = class_accuracy_rule([worse, worse], self.ae, np.random.default_rng(0))
        self.assertFalse(r["passes"])
        self.assertLess(r["difference"], -0.05)

    def test_a_mean_below_the_autoencoder_fails_even_within_noise(self):
        a, b = self.ae.copy(), self.ae.copy()
        b[np.flatnonzero(b)[:10]] = False  # one seed set 10 items worse: mean −0.005, noise 0.01
        r = class_accuracy_rule([a, b], self.ae, np.random.default_rng(0))
        self.assertLess(r["difference"], 0)
        self.assertFalse(r["passes"])


class SettingsChoice(unittest.TestCase):
    def row(self, scheduler, steps, calls, guidance, diff, passes, ratio_hi):
        return {"scheduler": scheduler, "steps": steps, "unet_calls": calls, "guidance": guidance,
                "fid_ratio": [ratio_hi - 0.1, ratio_hi - 0.2, ratio_hi],
                "class_accuracy_vs_autoencoder": {"difference": diff, "passes": passes}}

    def test_fewest_calls_then_the_smallest_guidance(self):
        rows = [self.row("ddim", 25, 25, 3, 0.03, True, 0.4), self.row("ddim", 10, 10, 5, 0.02, True, 0.4),
                self.row("ddim", 10, 10, 3, 0.01, True, 0.4), self.row("ddim", 10, 10, 2, 0.02, False, 0.4)]
        self.assertEqual(choose_default(rows), {"scheduler": "ddim", "steps": 10, "guidance": 3, "unet_calls": 10})

    def test_merged_sweeps_choose_over_all_rows(self):
        ae = {"class_accuracy": [0.8, 0.78, 0.82]}
        a = {"n": 1000, "autoencoder": ae, "rows": [self.row("ddim", 25, 25, 3, 0.03, True, 0.4)]}
        b = {"n": 1000, "autoencoder": ae, "rows": [self.row("ddim", 10, 10, 5, 0.02, True, 0.4)]}
        merged = merge_sweeps([a, b])
        self.assertEqual(len(merged["rows"]), 2)
        self.assertEqual(merged["chosen"]["steps"], 10)
        with self.assertRaises(InputError):
            merge_sweeps([a, dict(b, n=200)])

    def test_the_fid_ratio_and_the_call_budget_bind(self):
        rows = [self.row("ddim", 10, 10, 12, 0.05, True, 0.55), self.row("pndm", 25, 26, 5, 0.05, True, 0.3)]
        self.assertIsNone(choose_default(rows))

    def test_settings_parse(self):
        self.assertEqual(parse_settings(["ddim:10", "pndm:24"]), [("ddim", 10), ("pndm", 24)])
        with self.assertRaises(InputError):
            parse_settings(["ddim"])


class Reexport(unittest.TestCase):
    """export-latent --from-decoder: the committed decoder written again with new serving defaults."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.src = os.path.join(MODELS, "demo-v2", "decoder")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_same_graphs_new_defaults_and_parity_decodes_at_the_new_guidance(self):
        with open(os.path.join(self.src, "manifest.json")) as f:
            old = json.load(f)
        man = latent_export.reexport(self.src, self.tmp, "euler", 15, 7.5)
        self.assertEqual(man["defaults"], {"scheduler": "euler", "steps": 15, "guidance": 7.5})
        for key in ("unet", "image_proj", "vae_decoder"):
            self.assertEqual(man["files"][key]["sha256"], old["files"][key]["sha256"])
        self.assertEqual(man["source"], old["source"])
        with open(os.path.join(self.tmp, "parity.json")) as f:
            self.assertEqual({d["guidance"] for d in json.load(f)["decode"]}, {7.5})
        self.assertLessEqual(max(latent_export.check_latent_parity(self.tmp).values()), 1e-5)

    def test_training_continues_from_the_exported_modules(self):
        man, proj, unet, _ = latent_export.load_exported(self.src)
        cfg, model, continued = decoder_train.init_from_decoder(self.src, man["source"]["config"])
        self.assertEqual(continued, man["source"]["training"])
        self.assertEqual(cfg["latent_scale"], man["latent"]["scale"])
        g = torch.Generator().manual_seed(0)
        x, e = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 64, generator=g)
        t = torch.tensor([10.0, 700.0])
        with torch.no_grad():
            self.assertLess(float((model.eval()(x, t, e) - unet(x, t, proj(e))).abs().max()), 1e-6)
        with self.assertRaisesRegex(InputError, "latent space"):
            decoder_train.init_from_decoder(self.src, dict(man["source"]["config"], latent_channels=8))

    def test_a_tampered_graph_is_refused(self):
        bad = os.path.join(self.tmp, "bad")
        shutil.copytree(self.src, bad)
        with open(os.path.join(bad, "vae_decoder.onnx"), "ab") as f:
            f.write(b"\0")
        with self.assertRaisesRegex(InputError, "vae_decoder.onnx: sha256"):
            latent_export.reexport(bad, os.path.join(self.tmp, "out"), "ddim", 10, 5.0)


class Pairing(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        for v in ("demo-v1", "demo-v1-control"):
            shutil.copytree(os.path.join(MODELS, v), os.path.join(self.tmp, v), symlinks=True)
        w = os.path.join(self.tmp, "w.pt")
        latent_export.make_fixture_weights(w)
        ck = torch.load(w)
        ck["training"] = {"encoder_sha256": sha256_file(os.path.join(self.tmp, "demo-v1", "decoder", "encoder.onnx"))}
        torch.save(ck, w)
        self.dec = os.path.join(self.tmp, "latent")
        latent_export.export_weights(w, self.dec, "ddim", 4, decode_parity=False)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_links_the_prior_and_encoder_and_hashes_every_file(self):
        out = os.path.join(self.tmp, "demo-v2")
        man = pair_version(os.path.join(self.tmp, "demo-v1"), self.dec, out, "demo-v2")
        self.assertEqual(man["version"], "demo-v2")
        self.assertEqual(os.readlink(os.path.join(out, "prior.onnx")), os.path.join("..", "demo-v1", "prior.onnx"))
        self.assertTrue(os.path.islink(os.path.join(out, "decoder", "encoder.onnx")))
        with open(os.path.join(out, "decoder", "manifest.json")) as f:
            dm = json.load(f)
        self.assertEqual(dm["io"]["encoder"], {"input": "image", "output": "embedding"})
        for ent in dm["files"].values():
            self.assertEqual(ent["sha256"], sha256_file(os.path.join(out, "decoder", ent["path"])))
        for ent in man["files"].values():
            self.assertEqual(ent["sha256"], sha256_file(os.path.join(out, ent["path"])))
        ctl = pair_version(os.path.join(self.tmp, "demo-v1-control"), os.path.join(out, "decoder"),
                           os.path.join(self.tmp, "demo-v2-control"), "demo-v2-control", link_decoder=True)
        self.assertEqual(ctl["files"]["decoder"]["sha256"], man["files"]["decoder"]["sha256"])

    def test_refuses_a_decoder_trained_for_another_encoder(self):
        path = os.path.join(self.dec, "manifest.json")
        with open(path) as f:
            dm = json.load(f)
        dm["source"]["training"]["encoder_sha256"] = "0" * 64
        with open(path, "w") as f:
            json.dump(dm, f)
        with self.assertRaisesRegex(InputError, "trained for encoder sha256 0000"):
            pair_version(os.path.join(self.tmp, "demo-v1"), self.dec, os.path.join(self.tmp, "x"), "x")


if __name__ == "__main__":
    unittest.main()
