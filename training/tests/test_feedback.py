"""Feedback input: CSV and JSON Lines stream in with the same checks as training's interactions."""
import os
import tempfile
import unittest

from rebeca_train.common import InputError
from rebeca_train.feedback import held_out, stream_interactions

ITEMS = {"i1": 0, "i2": 1}


def write(name, text):
    d = tempfile.mkdtemp()
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write(text)
    return p


class StreamInteractions(unittest.TestCase):
    def test_csv_and_jsonl_give_the_same_rows(self):
        a = stream_interactions(write("a.csv", "user_id,item_id,like\nu1,i1,1\nu2,i2,0\nu1,i2,1\n"), ITEMS)
        b = stream_interactions(write("b.jsonl", '{"user_id":"u1","item_id":"i1","like":1}\n\n{"user_id":"u2","item_id":"i2","like":0}\n'
                                      '{"user_id":"u1","item_id":"i2","like":1}\n'), ITEMS)
        for x, y in zip(a[1:], b[1:]):
            self.assertEqual(x.tolist(), y.tolist())
        self.assertEqual(a[0], ["u1", "u2"])
        self.assertEqual(a[1].tolist(), [0, 1, 0])
        self.assertEqual(a[3].tolist(), [1, 0, 1])

    def test_ratings_are_binarised_at_the_threshold(self):
        _, _, _, likes = stream_interactions(write("r.csv", "user_id,item_id,rating\nu1,i1,4\nu1,i2,3.5\n"), ITEMS)
        self.assertEqual(likes.tolist(), [1, 0])

    def test_bad_input_names_the_line(self):
        cases = [
            ("a.csv", "user_id,item_id,like\nu1,i9,1\n", "line 2: unknown item id 'i9'"),
            ("b.csv", "user_id,item_id,like\nu1,i1,2\n", "line 2: like must be 0 or 1"),
            ("c.csv", "user_id,item_id,like\n,i1,1\n", "line 2: empty user_id"),
            ("d.csv", "user,item_id,like\nu1,i1,1\n", "missing column 'user_id'"),
            ("e.jsonl", '{"user_id":"u1","item_id":"i1","like":1}\nnot json\n', "line 2: not JSON"),
            ("f.csv", "user_id,item_id,like\n", "no interactions"),
        ]
        for name, text, msg in cases:
            with self.subTest(name=name):
                with self.assertRaises(InputError) as cm:
                    stream_interactions(write(name, text), ITEMS)
                self.assertIn(msg, str(cm.exception))

    def test_held_out_is_a_fixed_fifth(self):
        picks = [held_out(f"u{u}", f"i{i}") for u in range(50) for i in range(40)]
        self.assertEqual(picks, [held_out(f"u{u}", f"i{i}") for u in range(50) for i in range(40)])
        self.assertAlmostEqual(sum(picks) / len(picks), 0.2, delta=0.03)


if __name__ == "__main__":
    unittest.main()
