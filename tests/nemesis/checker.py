"""The nemesis run's history checker: reads a history (one JSON record per
line, written by run.py) as one register per key and reports every
anomaly by kind. Standard library only.

The model is the README's consistency section:
- a write (PUT, DELETE, resumable completion) is *accepted* at some point
  inside its request window; writes to one key take effect in the order
  they were accepted, whatever order their jobs finish in;
- a synchronous write (201, 204, a DELETE's 404) is visible once answered;
  a queued one (202) once its job has succeeded (not superseded);
- an indeterminate write (connection error, timeout, 5xx) may have been
  accepted at any time after it was sent, or never: it never raises an
  alarm, it only widens what a read may see.

For a read we compute its candidates: the writes to that key that could
have produced exactly the bytes it returned (or, for a 404, the deletes
and the key's initial absence). None: *phantom*. Then T(read) is the
latest invocation time of the writes known visible before the read began
(answered synchronous writes, succeeded jobs as of when they were seen,
and writes an earlier read returned unambiguously). If every candidate's
window ended before T, the read returned a value that a newer visible
write had already replaced: *stale* (or *lost* when it is the final read
and the newer write was never seen by any read).
"""

import bisect
import hashlib
import json
import math
from collections import defaultdict

INF = math.inf
KINDS = ("lost", "phantom", "stale", "stuck", "duplicate", "integrity")


def body(wid, size, kind):
    """The bytes of write `wid`: `size` bytes, compressible text (`z`) or
    random-looking bytes (`r`), both determined by the write id alone, so
    any range of a few bytes tells which write it came from."""
    if kind == "r":
        return hashlib.shake_256(b"sluice-nemesis:" + wid.encode()).digest(size)
    head = wid.encode()[:11].ljust(11, b".")
    blocks = (size + 31) // 32
    return b"".join(head + b"#%019d\n" % i for i in range(blocks))[:size]


def digest(data):
    """The digest a history records for bytes read or written."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class Write:
    """One write to a key, as the checker sees it."""

    def __init__(self, rec, value):
        self.op = rec["id"]
        self.key = rec["key"]
        self.inv = rec["inv"]
        self.value = value  # None for a delete, else the write record
        self.end = INF  # when it was accepted at the latest
        self.visible = None  # when it was visible at the latest
        self.job = None
        self.usable = True  # False: it changed nothing (failed, superseded)
        self.seen = False  # some read returned it
        self.superseded = False  # its job said so

    def describe(self):
        what = "delete" if self.value is None else "write " + self.value["wid"]
        return f"op {self.op} ({what}, sent at {self.inv:.3f} s)"


def load(path):
    """The records of a history file."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def check(records):
    """Every anomaly in `records`: {kind: [message, ...]} with every kind
    of KINDS present (empty when none was found)."""
    anomalies = {k: [] for k in KINDS}
    writes = defaultdict(list)  # key -> [Write]
    by_op = {}
    jobs = {}  # job id -> the last record seen for it
    reads = []
    for rec in records:
        op = rec.get("op")
        if op in ("put", "put_async", "upload", "delete"):
            if rec["outcome"] == "fail":
                continue  # definitely refused: it changed nothing
            w = Write(rec, None if op == "delete" else rec["write"])
            if rec["outcome"] == "ok":
                w.end = rec["ret"]
                if rec.get("job") and rec.get("status") == 202:
                    w.job = rec["job"]
                else:
                    w.visible = rec["ret"]
            writes[rec["key"]].append(w)
            by_op[w.op] = w
        elif op in ("get", "get_range") and rec["outcome"] == "ok":
            reads.append(rec)
        elif op == "job":
            jobs[rec["job"]] = rec
        elif op == "listing":
            seen = set()
            for key in rec["keys"]:
                if key in seen:
                    anomalies["duplicate"].append(f"key {key!r} listed twice")
                seen.add(key)
        elif op == "integrity":
            anomalies["integrity"].append(rec["message"])

    _resolve_jobs(writes, jobs, anomalies)
    write_jobs = {w.job for ws in writes.values() for w in ws if w.job}
    for job, rec in jobs.items():
        if rec.get("stuck") and job not in write_jobs:
            anomalies["stuck"].append(f"job {job} is still {rec['state']} after the quiet period")
    _check_supersedes(writes, anomalies)

    # Candidates first, in completion order, so a read's unambiguous result
    # can serve as a visibility fact for the reads after it.
    resolved = []
    for r in sorted(reads, key=lambda r: r["ret"]):
        cands = _candidates(r, writes.get(r["key"], []))
        if not cands:
            anomalies["phantom"].append(
                f"op {r['id']} ({r['op']} {r['key']!r} at {r['inv']:.3f}-{r['ret']:.3f} s) "
                f"returned {_what(r)}, which no write to that key produced")
            continue
        for c in cands:
            if c is not None:
                c.seen = True
        resolved.append((r, cands))

    visible = defaultdict(list)  # key -> [(time, write)]
    for key, ws in writes.items():
        for w in ws:
            if w.visible is not None:
                visible[key].append((w.visible, w))
    for r, cands in resolved:
        if len(cands) == 1 and cands[0] is not None:
            visible[r["key"]].append((r["ret"], cands[0]))
    index = {}
    for key, vs in visible.items():
        vs.sort(key=lambda v: v[0])
        times, best, latest = [], [], None
        for t, w in vs:
            if latest is None or w.inv > latest.inv:
                latest = w
            times.append(t)
            best.append(latest)
        index[key] = (times, best)

    for r, cands in resolved:
        times, best = index.get(r["key"], ([], []))
        i = bisect.bisect_left(times, r["inv"])
        if i == 0:
            continue
        newer = best[i - 1]  # the latest-sent write visible before the read
        if all((c.end if c is not None else -INF) < newer.inv for c in cands):
            final = r.get("final", False)
            kind = "lost" if final and not newer.seen else "stale"
            anomalies[kind].append(
                f"op {r['id']} ({'final ' if final else ''}{r['op']} {r['key']!r} at "
                f"{r['inv']:.3f} s) returned {_what(r)}, older than "
                f"{newer.describe()}, visible since before the read")
    return anomalies


def _what(r):
    if r["read"].get("absent"):
        return "404"
    rd = r["read"]
    if r["op"] == "get_range":
        return f"bytes {rd['start']}+{rd['len']} of {rd['total']} ({rd['digest']})"
    return f"{rd['len']} bytes ({rd['digest']})"


def _resolve_jobs(writes, jobs, anomalies):
    for ws in writes.values():
        for w in ws:
            if w.job is None:
                continue
            j = jobs.get(w.job)
            state = j["state"] if j else "unknown"
            if state == "succeeded":
                if j.get("superseded"):
                    w.usable = False
                    w.superseded = True
                else:
                    w.visible = j["observed"]
            elif state == "failed":
                w.usable = False
                anomalies["lost"].append(
                    f"{w.describe()} was accepted (202, job {w.job}) but its job failed: "
                    f"{j.get('error_code')}: {j.get('error')}")
            else:
                anomalies["stuck"].append(
                    f"{w.describe()}: job {w.job} is still {state} after the quiet period")


def _check_supersedes(writes, anomalies):
    """A superseded job claims that a write accepted after its upload took
    effect first: some other write must have been able to be accepted
    after it."""
    for ws in writes.values():
        for w in ws:
            if w.superseded and not any(x is not w and x.usable and x.end > w.inv for x in ws):
                anomalies["lost"].append(
                    f"{w.describe()}: job {w.job} ended superseded, but no write to "
                    f"{w.key!r} could have been accepted after it")


def _candidates(r, ws):
    """The writes (None: the initial absence) that could have produced
    read `r`."""
    rd = r["read"]
    out = []
    if rd.get("absent"):
        out.append(None)
        out.extend(w for w in ws if w.value is None and w.inv < r["ret"])
        return out
    for w in ws:
        if w.value is None or not w.usable or w.inv >= r["ret"]:
            continue
        v = w.value
        if r["op"] == "get":
            if v["size"] == rd["len"] and v["digest"] == rd["digest"]:
                out.append(w)
        else:
            if v["size"] != rd["total"] or rd["start"] + rd["len"] > v["size"]:
                continue
            data = body(v["wid"], v["size"], v["kind"])
            if digest(data[rd["start"]:rd["start"] + rd["len"]]) == rd["digest"]:
                out.append(w)
    return out


def summarize(records, anomalies):
    """A summary: operations by type and outcome, faults by kind, and
    anomalies by kind."""
    ops = defaultdict(lambda: defaultdict(int))
    faults = defaultdict(int)
    for rec in records:
        op = rec.get("op")
        if op == "fault":
            faults[rec["kind"]] += 1
        elif op in ("put", "put_async", "upload", "delete", "get", "get_range"):
            ops[op + (" (final)" if rec.get("final") else "")][rec["outcome"]] += 1
    return {
        "operations": {k: dict(v) for k, v in sorted(ops.items())},
        "faults": dict(sorted(faults.items())),
        "anomalies": {k: len(v) for k, v in anomalies.items()},
    }


if __name__ == "__main__":
    import sys

    recs = load(sys.argv[1])
    found = check(recs)
    print(json.dumps(summarize(recs, found), indent=2))
    for kind, msgs in found.items():
        for m in msgs[:20]:
            print(f"{kind}: {m}")
    sys.exit(1 if any(found.values()) else 0)
