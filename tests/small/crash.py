#!/usr/bin/env python3
"""Small objects survive kill -9 (issue #21), end to end.

Starts the real `sluice serve` (SQLite, or PostgreSQL with --database) and:

1. 64 clients upload small objects (1 to 8 KiB, each key written once, its
   bytes derived from the key) as fast as they can, with and without
   `?wait=true`; each answer is recorded;
2. the server is killed with SIGKILL at a random moment, --kills times,
   and restarted each time while the clients go on;
3. then, with the server up and the clients stopped: every upload that was
   answered 2xx is present and byte-exact; every upload that was never
   answered is either absent or byte-exact (nothing half-written); the
   listing holds exactly the keys that read back; a verify job succeeds
   on a sample;
4. half of the objects are deleted and the reaper runs: the database keeps
   no container of a deleted object, and (SQLite) gives the pages they
   held back to the file system.

Exits non-zero, saying what failed, if anything did.
"""

import argparse
import concurrent.futures
import hashlib
import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def body_of(key):
    """The bytes uploaded under `key`: 1 to 8 KiB, derived from it."""
    seed = hashlib.sha256(key.encode()).digest()
    n = 1024 + int.from_bytes(seed[:2], "big") % (7 * 1024)
    out = bytearray()
    block = seed
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def call(port, method, path, body=None, token=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = {"Authorization": f"Bearer {token}"} if token else {}
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


class Server:
    def __init__(self, binary, data, port, database):
        self.binary, self.data, self.port = binary, data, port
        self.env = dict(os.environ)
        self.env.pop("SLUICE_CONFIG", None)
        self.env["RUST_LOG"] = "warn"
        self.common = ["--data-dir", data, "--master-key", os.path.join(data, "master.key")]
        if database:
            self.common += ["--database", database]
        self.argv = [binary, "serve", *self.common, "--quiet", "--listen", f"127.0.0.1:{port}",
                     "--default-rate", "0", "--reaper-interval-secs", "1", "--reaper-min-age-secs", "0",
                     "--retired-grace-secs", "0"]
        self.log = open(os.path.join(data, "serve.log"), "ab")
        self.proc = None

    def admin(self, *a):
        r = subprocess.run([self.binary, "admin", *self.common, *a], env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"crash: sluice admin {' '.join(a)}: {r.stderr.strip()}")
        return r.stdout.strip()

    def start(self):
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if call(self.port, "GET", "/healthz", timeout=2)[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        sys.exit("crash: the server did not come up")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Client(threading.Thread):
    """Uploads new keys until told to stop; records each outcome."""

    def __init__(self, n, port, token, stop):
        super().__init__(daemon=True)
        self.n, self.port, self.token, self.stop = n, port, token, stop
        self.answered, self.unanswered, self.refused = [], [], []

    def run(self):
        i = 0
        while not self.stop.is_set():
            key = f"crash/c{self.n}/{i}"
            i += 1
            wait = "true" if i % 2 else "false"
            try:
                status, data = call(self.port, "PUT", f"/v1/objects/{key}?wait={wait}", body_of(key), self.token, 20)
            except OSError:
                # No answer: the server died (or was not up yet).
                self.unanswered.append(key)
                time.sleep(0.05)
                continue
            if status in (201, 202):
                if json.loads(data).get("state") != "succeeded":
                    self.refused.append((key, status, f"a job not yet succeeded: {data[:200]!r}"))
                    continue
                self.answered.append(key)
            elif status >= 500:
                # A 5xx (the database going away under it): no promise either way.
                self.unanswered.append(key)
            else:
                self.refused.append((key, status, data[:200]))


def database_counts(args, data):
    """(containers kept in rows, free pages in the file or None)."""
    if args.database:
        q = "SELECT COUNT(*) FROM objects WHERE inline_container IS NOT NULL"
        r = subprocess.run(["psql", args.database, "-tAc", q], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"crash: psql: {r.stderr.strip()}")
        return int(r.stdout.strip()), None
    db = sqlite3.connect(f"file:{os.path.join(data, 'sluice.db')}?mode=ro", uri=True, timeout=30)
    try:
        rows = db.execute("SELECT COUNT(*) FROM objects WHERE inline_container IS NOT NULL").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        return rows, (free, pages)
    finally:
        db.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.environ.get("SLUICE", "target/debug/sluice"))
    ap.add_argument("--database", help="a PostgreSQL URL (default: SQLite in the data directory)")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--seed", type=int, default=random.SystemRandom().randrange(1 << 30))
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    name = "postgres" if args.database else "sqlite"
    print(f"crash ({name}): seed {args.seed}, {args.clients} clients, {args.kills} kills")
    data = tempfile.mkdtemp(prefix="sluice-crash-")
    port = free_port()
    server = Server(os.path.abspath(args.binary), data, port, args.database)
    server.admin("tenant", "create", "crash")
    token = server.admin("token", "create", "--tenant", "crash", "--scope", "write")
    failures = []
    try:
        server.start()
        stop = threading.Event()
        clients = [Client(n, port, token, stop) for n in range(args.clients)]
        for c in clients:
            c.start()
        for k in range(args.kills):
            time.sleep(rng.uniform(1.0, 4.0))
            done = sum(len(c.answered) for c in clients)
            server.kill9()
            print(f"  kill -9 #{k + 1} after {done} answered uploads")
            time.sleep(rng.uniform(0.0, 0.5))
            server.start()
        time.sleep(rng.uniform(1.0, 2.0))
        stop.set()
        for c in clients:
            c.join(timeout=60)
        answered = [k for c in clients for k in c.answered]
        unanswered = [k for c in clients for k in c.unanswered]
        refused = [r for c in clients for r in c.refused]
        print(f"  {len(answered)} answered 2xx, {len(unanswered)} unanswered, {len(refused)} refused")
        if refused:
            failures.append(f"{len(refused)} uploads were refused, e.g. {refused[:3]}")
        if len(answered) < 100:
            failures.append(f"only {len(answered)} uploads were answered")

        pool = concurrent.futures.ThreadPoolExecutor(16)
        read = lambda key: (key, *call(port, "GET", f"/v1/objects/{key}/content", token=token))  # noqa: E731
        # Every acknowledged upload is there, byte-exact.
        for key, status, got in pool.map(read, answered):
            if status != 200 or got != body_of(key):
                failures.append(f"{key}: answered 2xx, now {status} ({len(got)} bytes)")
        # An unanswered one is absent or whole, never half-written.
        present = set()
        for key, status, got in pool.map(read, unanswered):
            if status == 200:
                present.add(key)
                if got != body_of(key):
                    failures.append(f"{key}: never answered, present with other bytes")
            elif status != 404:
                failures.append(f"{key}: never answered, reading it answers {status}")
        print(f"  every answered upload reads back; {len(present)} of {len(unanswered)} unanswered ones were stored")
        # The listing: exactly what reads back.
        listed, cursor = set(), ""
        while True:
            status, page = call(port, "GET", f"/v1/objects?prefix=crash/&limit=1000{cursor}", token=token)
            page = json.loads(page)
            listed.update(o["key"] for o in page["objects"])
            if not page.get("next_cursor"):
                break
            cursor = "&cursor=" + urllib.parse.quote(page["next_cursor"], safe="")
        expected = set(answered) | present
        if listed != expected:
            failures.append(f"listing: {len(listed - expected)} unexpected keys, {len(expected - listed)} missing")
        # A sample verifies.
        for key in rng.sample(sorted(answered), min(20, len(answered))):
            status, job = call(port, "POST", f"/v1/objects/{key}/verify", token=token)
            if status != 202:
                failures.append(f"{key}: verify answered {status}")
                continue
            job_id = json.loads(job)["id"]
            deadline = time.monotonic() + 60
            while True:
                state = json.loads(call(port, "GET", f"/v1/jobs/{job_id}", token=token)[1])["state"]
                if state in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            if state != "succeeded":
                failures.append(f"{key}: verify {state}")

        # Deletes: nothing of them stays in the database, and the reaper
        # gives the pages back.
        rows_before, sqlite_before = database_counts(args, data)
        deleted = sorted(listed)[::2][:3000]
        remove = lambda key: (key, call(port, "DELETE", f"/v1/objects/{key}", token=token)[0])  # noqa: E731
        for key, status in pool.map(remove, deleted):
            if status != 204:
                failures.append(f"{key}: delete answered {status}")
        time.sleep(3)
        rows_after, sqlite_after = database_counts(args, data)
        if rows_after != rows_before - len(deleted):
            failures.append(f"containers in rows: {rows_before} before, {rows_after} after {len(deleted)} deletes")
        if sqlite_after is not None:
            (free, pages), (_, pages_before) = sqlite_after, sqlite_before
            if free > 64 or pages >= pages_before:
                failures.append(f"the database did not give pages back: {pages_before} -> {pages} pages, {free} free")
            print(f"  deleted {len(deleted)}: database {pages_before} -> {pages} pages ({free} free)")
        else:
            print(f"  deleted {len(deleted)}: {rows_before} -> {rows_after} containers in rows")
    finally:
        server.stop()
        if not args.keep:
            subprocess.run(["rm", "-rf", data])
    if failures:
        print(f"crash ({name}): FAILED, seed {args.seed}")
        for f in failures[:30]:
            print("  " + f)
        sys.exit(1)
    print(f"crash ({name}): passed")


if __name__ == "__main__":
    main()
