"""Timestep grids and the DPM-Solver++ samplers of the reference sampler (rebeca_train.sampler)."""
import unittest

import numpy as np

from rebeca_train.sampler import sample
from rebeca_train.schedule import timesteps


def toy_model(x_t, t, user, like):
    return (np.tanh(x_t * (1 - t[:, None] / 1000)) + user[:, :1] * (like[:, None] == 1)).astype(np.float32)


class TimestepsTest(unittest.TestCase):
    def test_grids(self):
        self.assertEqual(timesteps(3, 1000, "trailing"), [999, 666, 333])
        self.assertEqual(timesteps(3, 1000, "leading"), [666, 333, 0])
        self.assertEqual(timesteps(3, 1000, "linspace"), [999, 499, 0])
        for spacing in ("trailing", "leading", "linspace"):
            self.assertEqual(timesteps(1000, 1000, spacing), list(range(999, -1, -1)))
        with self.assertRaises(ValueError):
            timesteps(3, 1000, "cosine")


class SamplerTest(unittest.TestCase):
    def run_sampler(self, sampler, steps, seeds=(1, 2)):
        users = np.array([[0.5, 0.1], [-0.3, 0.2]], np.float32)
        return sample(toy_model, users, np.zeros(2, np.float32), list(seeds), sampler, steps, 2.0, 6.0, 4, spacing="trailing")

    def test_dpm_solver_two_steps_is_ddim(self):
        np.testing.assert_array_equal(self.run_sampler("dpmpp_2m", 2), self.run_sampler("ddim", 2))

    def test_second_order_and_sde_differ_and_are_seeded(self):
        ddim, dpm, sde = (self.run_sampler(s, 4) for s in ("ddim", "dpmpp_2m", "dpmpp_2m_sde"))
        self.assertFalse(np.array_equal(ddim, dpm))
        self.assertFalse(np.array_equal(dpm, sde))
        np.testing.assert_array_equal(sde, self.run_sampler("dpmpp_2m_sde", 4))
        # item 0 does not depend on the other items of its batch
        np.testing.assert_array_equal(sde[1], self.run_sampler("dpmpp_2m_sde", 4, (9, 2))[1])


if __name__ == "__main__":
    unittest.main()
