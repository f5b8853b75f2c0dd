#!/usr/bin/env python3
"""Checks of tools/wedlm_reference.py's decoding loops with a fake model (no torch needed)."""
import hashlib
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wedlm_reference as ref  # noqa: E402


class FakeModel:
    """Row stats as a hash of what a causal model may see: the row's prefix and position."""

    def __init__(self):
        self.calls = []

    def __call__(self, ids, positions, wanted):
        self.calls.append((list(ids), list(positions), list(wanted)))
        out = []
        for r in wanted:
            h = hashlib.sha256(repr((list(ids[:r + 1]), positions[r])).encode()).digest()
            out.append(ref.RowStats(h[0] / 255 * 1.2, h[1] % 50, h[2] / 255))
        return out


def decode(window, tau, **kw):
    model = FakeModel()
    args = dict(window=window, entropy_threshold=tau, position_penalty=0.02, mask_id=99,
                max_tokens=30, record_steps=True)
    args.update(kw)
    return model, ref.wedlm_decode(model, [1, 2, 3], **args)


class WedlmReferenceTest(unittest.TestCase):
    def test_stop_output_is_prefix_of_stopless_output(self):
        for window in (1, 4, 16):
            for tau in (0.0, 0.4, 1.5):
                _, r = decode(window, tau)
                self.assertEqual((len(r.output), r.finish_reason), (30, "length"))
                stop = r.output[15]
                _, rs = decode(window, tau, stop_ids=[stop])
                cut = r.output.index(stop) + 1
                self.assertEqual(rs.output, r.output[:cut])
                self.assertEqual(rs.finish_reason, "stop")

    def test_rows_positions_and_counts(self):
        model, r = decode(4, 0.4)
        for (ids, positions, wanted), step in zip(model.calls, r.steps):
            n_rows = len(step["rows"])
            c = len(ids) - n_rows
            self.assertLessEqual(n_rows, 8)  # W + p <= 2W
            self.assertEqual(positions[:c], list(range(c)))
            self.assertEqual(positions[c:], [c + o for _, o in step["rows"]])
            masks = [k for k, (t, _) in enumerate(step["rows"]) if t == 99]
            self.assertEqual(wanted, [c + k for k in masks])
            self.assertEqual(masks, list(range(n_rows - len(masks), n_rows)))  # masks last
        self.assertEqual(r.forwards, len(r.steps))

    def test_window_one_is_one_token_per_forward(self):
        _, r = decode(1, 0.4)
        self.assertEqual(r.forwards, 31)
        self.assertTrue(all(s["commit_count"] == (0 if i == 0 else 1) for i, s in enumerate(r.steps)))

    def test_kv_space_bounds_rows_and_ends_with_length(self):
        for kv in (1, 3, 5, 12):
            model, r = decode(8, 0.8, kv_space=kv)
            self.assertEqual((len(r.output), r.finish_reason), (kv, "length"))
            for ids, _, _ in model.calls:
                self.assertLessEqual(len(ids), 3 + kv)

    def test_ar_counts_forwards_after_prefill(self):
        model = FakeModel()
        r = ref.ar_decode(model, [1, 2, 3], max_tokens=10)
        self.assertEqual((len(r.output), r.forwards, len(model.calls)), (10, 9, 10))


if __name__ == "__main__":
    unittest.main()
