"""The trained decoder's parts: module shapes, Fashion-FID's formula, bootstrap intervals, version pairing."""
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
from rebeca_train.decoder_eval import interval  # noqa: E402
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
