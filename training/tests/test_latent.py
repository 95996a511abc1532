"""Latent decoder: scheduler structure, fixture export round trip, bad weights stop with a message."""
import os
import shutil
import sys
import tempfile
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from rebeca_train import latent_export, latent_schedulers as ls  # noqa: E402
from rebeca_train.common import InputError  # noqa: E402
from rebeca_train.onnx_io import io_names  # noqa: E402


class Schedulers(unittest.TestCase):
    a = ls.scaled_linear_alphas_cumprod()

    def test_scaled_linear(self):
        self.assertEqual(len(self.a), 1000)
        self.assertAlmostEqual(self.a[0], 1 - 0.00085, places=15)
        self.assertTrue(np.all(np.diff(self.a) < 0))

    def test_ddim_leading_timesteps(self):
        s = ls.make("ddim", self.a, 50)
        self.assertEqual(s.timesteps[:3], [981, 961, 941])
        self.assertEqual(s.timesteps[-1], 1)

    def test_pndm_repeats_second_timestep(self):
        s = ls.make("pndm", self.a, 50)
        self.assertEqual(len(s.timesteps), 51)
        self.assertEqual(s.timesteps[:4], [981, 961, 961, 941])

    def test_euler_sigmas(self):
        s = ls.make("euler", self.a, 10)
        self.assertEqual(s.timesteps[0], 999.0)
        self.assertEqual(s.sigmas[-1], 0.0)
        self.assertAlmostEqual(s.init_sigma, float(np.sqrt((1 - self.a[-1]) / self.a[-1])), places=12)

    def test_exact_model_recovers_x0(self):
        # if the model knows the true noise, DDIM (eta 0) lands on x0 up to the final alpha ᾱ[0]
        x0 = np.linspace(-1, 1, 8)
        noise = np.cos(np.arange(8.0))
        s = ls.make("ddim", self.a, 10)
        x = np.sqrt(self.a[s.timesteps[0]]) * x0 + np.sqrt(1 - self.a[s.timesteps[0]]) * noise
        for i, _ in enumerate(s.timesteps):
            x = s.step(noise, i, x)
        np.testing.assert_allclose(x, np.sqrt(self.a[0]) * x0 + np.sqrt(1 - self.a[0]) * noise, atol=1e-12)


class Export(unittest.TestCase):
    def setUp(self):
        torch.set_num_threads(1)
        self.d = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.d)

    def test_fixture_round_trip(self):
        w = latent_export.make_fixture_weights(os.path.join(self.d, "w.pt"))
        man = latent_export.export_weights(w, os.path.join(self.d, "dec"), "ddim", 20, 5.0)
        self.assertEqual(man["kind"], "latent-diffusion")
        self.assertEqual(io_names(os.path.join(self.d, "dec", "unet.onnx")), latent_export.UNET_IO)
        total = sum(os.path.getsize(os.path.join(self.d, "dec", f)) for f in os.listdir(os.path.join(self.d, "dec")))
        self.assertLess(total, 1 << 20)

    def test_wrong_weights_are_refused(self):
        p = os.path.join(self.d, "bad.pt")
        torch.save({"format": "something"}, p)
        with self.assertRaisesRegex(InputError, "not a rebeca.latent-weights/v1"):
            latent_export.load_weights(p)
        w = latent_export.make_fixture_weights(os.path.join(self.d, "w.pt"))
        ck = torch.load(w)
        del ck["unet"]["conv_in.weight"]
        torch.save(ck, p)
        with self.assertRaisesRegex(InputError, "unet weights do not fit"):
            latent_export.load_weights(p)


if __name__ == "__main__":
    unittest.main()
