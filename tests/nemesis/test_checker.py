"""Self-tests of the history checker: clean histories (including every
ambiguity the model allows) must pass, and each planted anomaly must be
caught as its kind. Run: python3 -m unittest tests/nemesis/test_checker.py"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checker  # noqa: E402


class History:
    """Builds records the way run.py writes them."""

    def __init__(self):
        self.records = []

    def _add(self, rec):
        rec["id"] = len(self.records)
        self.records.append(rec)
        return rec

    def put(self, key, wid, inv, ret, outcome="ok", status=201, size=100, kind="z", job=None, op="put"):
        data = checker.body(wid, size, kind)
        w = {"wid": wid, "size": size, "kind": kind, "digest": checker.digest(data)}
        return self._add({"op": op, "key": key, "inv": inv, "ret": ret, "outcome": outcome,
                          "status": status, "write": w, "job": job})

    def put_async(self, key, wid, inv, ret, job, **kw):
        return self.put(key, wid, inv, ret, status=202, job=job, op="put_async", **kw)

    def job(self, job, state, observed, superseded=False, error_code=None):
        return self._add({"op": "job", "job": job, "state": state, "observed": observed,
                          "superseded": superseded, "error_code": error_code, "error": None})

    def delete(self, key, inv, ret, outcome="ok", status=204):
        return self._add({"op": "delete", "key": key, "inv": inv, "ret": ret,
                          "outcome": outcome, "status": status})

    def get(self, key, inv, ret, wid=None, size=100, kind="z", data=None, final=False, outcome="ok"):
        if wid is None and data is None:
            rd = {"absent": True}
        else:
            if data is None:
                data = checker.body(wid, size, kind)
            rd = {"absent": False, "len": len(data), "digest": checker.digest(data)}
        return self._add({"op": "get", "key": key, "inv": inv, "ret": ret, "outcome": outcome,
                          "read": rd, "final": final})

    def get_range(self, key, inv, ret, wid, size, start, length, kind="z"):
        data = checker.body(wid, size, kind)[start:start + length]
        rd = {"absent": False, "start": start, "len": len(data), "total": size,
              "digest": checker.digest(data)}
        return self._add({"op": "get_range", "key": key, "inv": inv, "ret": ret,
                          "outcome": "ok", "read": rd})

    def check(self):
        return checker.check(self.records)


def found(anomalies):
    return {k: v for k, v in anomalies.items() if v}


class CleanHistories(unittest.TestCase):
    def assertClean(self, h):
        self.assertEqual(found(h.check()), {})

    def test_sequential_writes_and_reads(self):
        h = History()
        h.get("k", 0, 1)
        h.put("k", "a", 1, 2)
        h.get("k", 3, 4, "a")
        h.put("k", "b", 5, 6, size=5000, kind="r")
        h.get_range("k", 7, 8, "b", 5000, 100, 200, kind="r")
        h.delete("k", 9, 10)
        h.get("k", 11, 12, final=True)
        self.assertClean(h)

    def test_concurrent_read_may_see_either(self):
        h = History()
        h.put("k", "a", 0, 1)
        h.put("k", "b", 2, 5)
        h.get("k", 3, 4, "a")   # b not answered yet
        h.get("k", 3, 4.5, "b")
        h.get("k", 6, 7, "b", final=True)
        self.assertClean(h)

    def test_indeterminate_write_may_appear_any_time_later(self):
        h = History()
        h.put("k", "a", 0, 1)
        h.put("k", "x", 2, 3, outcome="info", status=None)  # timed out
        h.put("k", "b", 4, 5)
        h.get("k", 6, 7, "x")  # the server took x after b: allowed
        h.get("k", 8, 9, "x", final=True)
        self.assertClean(h)

    def test_queued_write_takes_effect_when_its_job_succeeds(self):
        h = History()
        h.put("k", "a", 0, 1)
        h.put_async("k", "q", 2, 3, job="j1")
        h.get("k", 3.5, 4, "a")  # job not done yet
        h.job("j1", "succeeded", observed=5)
        h.get("k", 6, 7, "q", final=True)
        self.assertClean(h)

    def test_superseded_job_changes_nothing(self):
        h = History()
        h.put_async("k", "q", 0, 1, job="j1")
        h.put("k", "b", 2, 3)
        h.job("j1", "succeeded", observed=4, superseded=True)
        h.get("k", 5, 6, "b", final=True)
        self.assertClean(h)

    def test_refused_write_changes_nothing(self):
        h = History()
        h.put("k", "a", 0, 1)
        h.put("k", "z", 2, 3, outcome="fail", status=429)
        h.get("k", 4, 5, "a", final=True)
        self.assertClean(h)

    def test_empty_bodies_are_ambiguous_not_alarming(self):
        h = History()
        h.put("k", "e1", 0, 1, size=0)
        h.put("k", "e2", 2, 3, size=0)
        h.get("k", 4, 5, "e2", size=0, final=True)
        self.assertClean(h)

    def test_delete_404_is_a_write_of_nothing(self):
        h = History()
        h.delete("k", 0, 1, status=404)
        h.get("k", 2, 3, final=True)
        self.assertClean(h)

    def test_listing_without_duplicates(self):
        h = History()
        h._add({"op": "listing", "keys": ["a", "b"]})
        self.assertClean(h)


class PlantedAnomalies(unittest.TestCase):
    def assertFinds(self, h, kind):
        got = found(h.check())
        self.assertIn(kind, got, f"expected {kind}, got {got}")
        self.assertEqual(set(got), {kind}, got)

    def test_lost_acknowledged_write(self):
        h = History()
        h.put("k", "a", 0, 1)
        h.put("k", "b", 2, 3)
        h.get("k", 4, 5, "a", final=True)  # b was acknowledged and never seen
        self.assertFinds(h, "lost")

    def test_lost_write_reads_as_404(self):
        h = History()
        h.put("k", "a", 0, 1)
        h.get("k", 4, 5, final=True)
        self.assertFinds(h, "lost")

    def test_failed_queued_job_is_lost(self):
        h = History()
        h.put_async("k", "q", 0, 1, job="j1")
        h.job("j1", "failed", observed=2, error_code="storage")
        h.get("k", 3, 4, final=True)
        self.assertFinds(h, "lost")

    def test_superseded_by_nothing_is_lost(self):
        h = History()
        h.put("k", "a", 0, 1)
        h.put_async("k", "q", 2, 3, job="j1")
        h.job("j1", "succeeded", observed=4, superseded=True)
        h.get("k", 5, 6, "a", final=True)
        self.assertFinds(h, "lost")

    def test_phantom_bytes(self):
        h = History()
        h.put("k", "a", 0, 1)
        h.get("k", 2, 3, data=b"never written")
        self.assertFinds(h, "phantom")

    def test_phantom_mix_of_two_writes(self):
        h = History()
        h.put("k", "a", 0, 1, size=64)
        h.put("k", "b", 2, 3, size=64)
        mixed = checker.body("a", 64, "z")[:32] + checker.body("b", 64, "z")[32:]
        h.get("k", 4, 5, data=mixed)
        self.assertFinds(h, "phantom")

    def test_phantom_read_of_a_refused_write(self):
        h = History()
        h.put("k", "z", 0, 1, outcome="fail", status=413)
        h.get("k", 2, 3, "z")
        self.assertFinds(h, "phantom")

    def test_phantom_read_before_the_write_was_sent(self):
        h = History()
        h.get("k", 0, 1, "a")
        h.put("k", "a", 2, 3)
        self.assertFinds(h, "phantom")

    def test_phantom_range(self):
        h = History()
        h.put("k", "a", 0, 1, size=5000, kind="r")
        r = h.get_range("k", 2, 3, "a", 5000, 100, 50, kind="r")
        r["read"]["start"] = 101  # the right bytes at the wrong offset
        self.assertFinds(h, "phantom")

    def test_stale_read_after_acknowledged_overwrite(self):
        h = History()
        h.put("k", "a", 0, 1)
        h.put("k", "b", 2, 3)
        h.get("k", 4, 5, "b")
        h.get("k", 6, 7, "a")  # went back in time
        self.assertFinds(h, "stale")

    def test_stale_404_after_acknowledged_write(self):
        h = History()
        h.delete("k", 0, 1)
        h.put("k", "a", 2, 3)
        h.get("k", 4, 5)
        h.get("k", 6, 7, "a", final=True)
        self.assertFinds(h, "stale")

    def test_stale_after_a_read_saw_newer(self):
        h = History()
        h.put("k", "a", 0, 1)
        h.put("k", "b", 2, 10, outcome="info", status=None)
        h.get("k", 3, 4, "b")  # b visible from here on
        h.get("k", 5, 6, "a")  # a was accepted before b was sent
        self.assertFinds(h, "stale")

    def test_older_job_wins_over_newer_write(self):
        h = History()
        h.put_async("k", "q", 0, 1, job="j1")
        h.put("k", "b", 2, 3)
        h.job("j1", "succeeded", observed=4)  # not superseded: it replaced b
        h.get("k", 5, 6, "q", final=True)
        self.assertFinds(h, "lost")

    def test_stuck_job(self):
        h = History()
        h.put_async("k", "q", 0, 1, job="j1")
        h.job("j1", "running", observed=2)
        h.get("k", 3, 4)
        self.assertFinds(h, "stuck")

    def test_duplicate_listing(self):
        h = History()
        h._add({"op": "listing", "keys": ["a", "b", "b"]})
        self.assertFinds(h, "duplicate")

    def test_integrity(self):
        h = History()
        h._add({"op": "integrity", "message": "verify of 'k' failed"})
        self.assertFinds(h, "integrity")


if __name__ == "__main__":
    unittest.main()
