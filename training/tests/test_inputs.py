"""Bad input stops with a message naming the problem; RNG/schedule/sampler basics."""
import json
import os
import shutil
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from rebeca_train.common import InputError, sha256_file  # noqa: E402
from rebeca_train.data import drop_users_without_likes, load_interactions, load_items  # noqa: E402
from rebeca_train.rng import fmix32, normal  # noqa: E402
from rebeca_train.schedule import alphas_cumprod, timesteps  # noqa: E402


class Tmp(unittest.TestCase):
    def setUp(self):
        self.d = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.d)

    def write(self, name, text):
        p = os.path.join(self.d, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def items(self, E, ids=None):
        p = os.path.join(self.d, "items.npy")
        np.save(p, E)
        ids = ids or [f"i{k}" for k in range(len(E))]
        return p, self.write("ids.txt", "\n".join(ids) + "\n")


class TestItems(Tmp):
    def test_ok(self):
        E, ids = load_items(*self.items(np.zeros((3, 4), np.float32)))
        self.assertEqual(E.shape, (3, 4))

    def test_nan(self):
        E = np.zeros((3, 4), np.float32)
        E[1, 2] = np.nan
        with self.assertRaisesRegex(InputError, "NaN"):
            load_items(*self.items(E))

    def test_wrong_dim(self):
        with self.assertRaisesRegex(InputError, "2-D"):
            load_items(*self.items(np.zeros(5, np.float32)))
        with self.assertRaisesRegex(InputError, "dimension 4 does not match expected 64"):
            load_items(*self.items(np.zeros((3, 4), np.float32)), expect_dim=64)

    def test_id_count(self):
        with self.assertRaisesRegex(InputError, "2 item ids but"):
            load_items(*self.items(np.zeros((3, 4), np.float32), ["a", "b"]))


class TestInteractions(Tmp):
    def test_missing_column(self):
        p = self.write("r.csv", "user_id,like\nu1,1\n")
        with self.assertRaisesRegex(InputError, "missing column 'item_id'"):
            load_interactions(p, ["i0"])
        p = self.write("r.csv", "user_id,item_id\nu1,i0\n")
        with self.assertRaisesRegex(InputError, "'like' or 'rating'"):
            load_interactions(p, ["i0"])

    def test_unknown_item(self):
        p = self.write("r.csv", "user_id,item_id,like\nu1,i0,1\nu1,zz,0\n")
        with self.assertRaisesRegex(InputError, "unknown item ids.*zz"):
            load_interactions(p, ["i0"])

    def test_rating_threshold(self):
        p = self.write("r.csv", "user_id,item_id,rating\nu1,i0,5\nu1,i1,3\nu2,i0,4\n")
        users, rows = load_interactions(p, ["i0", "i1"], like_threshold=4)
        self.assertEqual(users, ["u1", "u2"])
        self.assertEqual(rows[:, 2].tolist(), [1, 0, 1])

    def test_bad_like(self):
        p = self.write("r.csv", "user_id,item_id,like\nu1,i0,yes\n")
        with self.assertRaisesRegex(InputError, "not a number"):
            load_interactions(p, ["i0"])

    def test_users_without_likes(self):
        p = self.write("r.csv", "user_id,item_id,like\nu1,i0,1\nu2,i0,0\nu2,i1,0\n")
        users, rows = load_interactions(p, ["i0", "i1"])
        users, rows, n = drop_users_without_likes(users, rows, p)
        self.assertEqual((users, n, rows.tolist()), (["u1"], 1, [[0, 0, 1]]))
        p = self.write("r.csv", "user_id,item_id,like\nu2,i0,0\n")
        with self.assertRaisesRegex(InputError, "no user has any like"):
            drop_users_without_likes(*load_interactions(p, ["i0"]), p)


class TestMath(unittest.TestCase):
    def test_schedule(self):
        a = alphas_cumprod()
        self.assertEqual(len(a), 1000)
        self.assertGreater(a[-1], 0)
        self.assertAlmostEqual(a[-1], 2.4e-9, delta=0.2e-9)
        self.assertEqual(timesteps(50)[:2], [999, 978])
        self.assertEqual(timesteps(50)[-1], 0)
        self.assertEqual(timesteps(1), [999])

    def test_rng(self):
        self.assertEqual(int(fmix32(0)), 0)
        z = normal(1, 0, 64)
        self.assertEqual(z.shape, (64,))
        self.assertTrue(np.array_equal(z, normal(1, 0, 64)))
        self.assertFalse(np.array_equal(z, normal(1, 1, 64)))
        self.assertTrue(np.array_equal(normal(5, 2, 7), normal(5, 2, 8)[:7]))
        big = np.concatenate([normal(s, 0, 64) for s in range(200)])
        self.assertLess(abs(big.mean()), 0.05)
        self.assertLess(abs(big.std() - 1), 0.05)


class TestManifest(Tmp):
    """validate() on a tiny exported model; corrupting files must name the problem."""

    @classmethod
    def setUpClass(cls):
        import torch
        from rebeca_train.export import export_checkpoint
        from rebeca_train.priors import MLPPrior
        from rebeca_train.world import Decoder, Encoder, export_decoder
        torch.manual_seed(0)
        cls.src = tempfile.mkdtemp()
        export_decoder(Encoder(8), Decoder(8), os.path.join(cls.src, "decoder"), D=8)
        cfg = {"hidden": 16, "blocks": 1}
        m = MLPPrior(D=8, **cfg)
        ck = {"arch": "mlp", "config": cfg, "D": 8, "user_dim": 128, "state_dict": m.state_dict(),
              "user_table": np.random.default_rng(0).normal(size=(4, 128)).astype(np.float32),
              "user_ids": ["a", "b", "c"], "training": {}}
        export_checkpoint(ck, cls.src, "test")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.src)

    def copy(self):
        d = os.path.join(self.d, "m")
        shutil.copytree(self.src, d)
        return d

    def test_valid(self):
        from rebeca_train.manifest import validate
        man = validate(self.copy())
        self.assertEqual(man["users"], {"rows": 4, "null_row": 3})
        with open(os.path.join(self.src, "parity.json")) as f:
            par = json.load(f)
        runs = [(s["sampler"], s["steps"], s["spacing"]) for s in par["samplers"]]
        self.assertEqual(runs, [("ddim", 50, "linspace"), ("ddpm", 1000, "linspace"), ("ddim", 4, "leading"),
                                ("ddim", 3, "trailing"), ("dpmpp_2m", 5, "trailing"), ("dpmpp_2m_sde", 5, "trailing")])

    def test_decoder_parity(self):
        from rebeca_train.manifest import validate
        from rebeca_train.world import check_decoder_parity
        d = self.copy()
        with open(os.path.join(d, "decoder", "manifest.json")) as f:
            self.assertEqual(json.load(f)["files"]["parity"]["path"], "parity.json")
        with open(os.path.join(d, "decoder", "parity.json")) as f:
            par = json.load(f)
        self.assertEqual(np.array(par["decoder"]["image"]).shape, (4, 28 * 28))
        self.assertEqual(np.array(par["encoder"]["embedding"]).shape, (4, 8))
        worst = check_decoder_parity(os.path.join(d, "decoder"), 8)
        self.assertLessEqual(max(worst.values()), 1e-6)
        par["encoder"]["embedding"][0][0] += 1e-3
        with open(os.path.join(d, "decoder", "parity.json"), "w") as f:
            json.dump(par, f)
        with self.assertRaisesRegex(InputError, "sha256 mismatch for 'parity'"):
            validate(d)
        with self.assertRaisesRegex(InputError, "not reproduced from decoder/encoder weights"):
            check_decoder_parity(os.path.join(d, "decoder"), 8)

    def test_sha_mismatch(self):
        from rebeca_train.manifest import validate
        d = self.copy()
        with open(os.path.join(d, "user_ids.txt"), "a") as f:
            f.write("x\n")
        with self.assertRaisesRegex(InputError, "sha256 mismatch for 'user_ids'"):
            validate(d)

    def test_missing_file(self):
        from rebeca_train.manifest import validate
        d = self.copy()
        os.remove(os.path.join(d, "decoder", "encoder.onnx"))
        with self.assertRaisesRegex(InputError, "'encoder'.*missing"):
            validate(d)

    def test_table_shape(self):
        from rebeca_train.manifest import refresh_hashes, validate
        d = self.copy()
        np.zeros((5, 128), "<f4").tofile(os.path.join(d, "user_table.f32"))
        with open(os.path.join(d, "manifest.json")) as f:
            man = json.load(f)
        refresh_hashes(d, man)
        with self.assertRaisesRegex(InputError, "user_table.f32 has .* bytes"):
            validate(d)

    def _items(self):
        p = os.path.join(self.d, "items.npy")
        np.save(p, np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32))
        return p, self.write("ids.txt", "i0\ni1\ni2\ni3\n")

    def test_add_users(self):
        from rebeca_train.add_users import add_users
        d = self.copy()
        sha = sha256_file(os.path.join(d, "prior.onnx"))
        r = self.write("new.csv", "user_id,item_id,like\nz1,i0,1\nz1,i1,0\nz2,i2,0\n")
        added = add_users(d, *self._items(), r, steps=3, batch=4)
        self.assertEqual(added, ["z1"])  # z2 has no likes: skipped with a logged count
        with open(os.path.join(d, "manifest.json")) as f:
            man = json.load(f)
        self.assertEqual(man["users"], {"rows": 5, "null_row": 4})
        self.assertEqual(man["training"]["added_users"][0]["skipped_without_likes"], 1)
        self.assertEqual(sha, sha256_file(os.path.join(d, "prior.onnx")))
        with open(os.path.join(d, "user_ids.txt")) as f:
            self.assertEqual(f.read().split(), ["a", "b", "c", "z1"])
        tab = np.fromfile(os.path.join(d, "user_table.f32"), "<f4").reshape(5, 128)
        orig = np.fromfile(os.path.join(self.src, "user_table.f32"), "<f4").reshape(4, 128)
        self.assertTrue(np.array_equal(tab[:3], orig[:3]) and np.array_equal(tab[4], orig[3]))

    def test_add_users_errors(self):
        from rebeca_train.add_users import add_users
        d = self.copy()
        r = self.write("dup.csv", "user_id,item_id,like\na,i0,1\n")
        with self.assertRaisesRegex(InputError, "already in the model"):
            add_users(d, *self._items(), r, steps=1)
        p = os.path.join(self.d, "e16.npy")
        np.save(p, np.zeros((4, 16), np.float32))
        with self.assertRaisesRegex(InputError, "dimension 16 does not match expected 8"):
            add_users(d, p, self._items()[1], r, steps=1)

    def test_sha_helper(self):
        self.assertEqual(len(sha256_file(os.path.join(self.src, "prior.onnx"))), 64)


if __name__ == "__main__":
    unittest.main()


class TestRngScalar(unittest.TestCase):
    """The vectorised RNG against a plain-int transcription of docs/model-format.md."""

    def test_matches_scalar(self):
        import math
        M = 0xFFFFFFFF

        def fm(h):
            h ^= h >> 16
            h = (h * 0x85EBCA6B) & M
            h ^= h >> 13
            h = (h * 0xC2B2AE35) & M
            h ^= h >> 16
            return h

        def ref(seed, stream, D):
            k1 = fm(seed ^ 0x9E3779B9)
            k2 = fm((k1 + stream * 0x85EBCA6B) & M)
            b = lambda i: fm((k2 + ((i * 0xC2B2AE35) & M) + 0x27D4EB2F) & M)  # noqa: E731
            z = []
            for j in range(0, D, 2):
                u1, u2 = (b(j) + 1) / 2 ** 32, b(j + 1) / 2 ** 32
                r = math.sqrt(-2 * math.log(u1))
                z += [r * math.cos(2 * math.pi * u2), r * math.sin(2 * math.pi * u2)]
            return z[:D]

        for seed, stream, D in ((0, 0, 8), (1, 0, 64), (4294967295, 7, 5), (123456, 1000, 64)):
            self.assertTrue(np.array_equal(normal(seed, stream, D), np.array(ref(seed, stream, D))), (seed, stream))


class TestSamplerBatchInvariance(unittest.TestCase):
    def test_item_alone_equals_in_batch(self):
        from rebeca_train.sampler import sample

        def fn(x, t, u, l):  # row-wise toy model
            return (0.5 * x + 0.01 * u[:, :x.shape[1]] + 0.1 * l[:, None]).astype(np.float32)

        U = np.random.default_rng(0).normal(size=(3, 128)).astype(np.float32)
        for sampler, steps in (("ddim", 10), ("ddpm", 1000)):
            both = sample(fn, U[:2], U[2], [11, 12], sampler, steps, 3.0, 6.0, 8)
            one = sample(fn, U[1:2], U[2], [12], sampler, steps, 3.0, 6.0, 8)
            self.assertTrue(np.array_equal(both[1], one[0]), sampler)
