#!/usr/bin/env python3
"""Slow clients must not freeze the service (issue #19), end to end.

Starts the real `sluice serve` (SQLite + local store) and:

1. tenant A opens 200 downloads of a 16 MiB object, each read at 20 KB/s
   through a small receive buffer (so the server really has to wait for
   it), and 4 uploads sending at 20 KB/s;
2. meanwhile tenant B runs, 50 times each: a 4 KiB `PUT ?wait=true`, a
   4 KiB GET of content, a range GET of a large object, a queued upload
   until its job succeeded, and `GET /v1/jobs`. Each must answer, and
   its P99 must be under 1 s;
3. A's clients then stop reading and sending: the server must cut every
   one by its idle timeout (counted in `sluice_transfers_cut_total`), leave
   no transfer in flight and nothing half-stored (no partial file in the
   store, the uploads' keys absent);
4. the server's resident memory, sampled throughout from
   `sluice_process_resident_bytes`, stays within its configured budgets.

Exits non-zero, saying what failed, if anything did.
"""

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

MIB = 1 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, data, port, idle):
        self.binary, self.data, self.port = binary, data, port
        self.env = dict(os.environ)
        self.env.pop("SLUICE_CONFIG", None)
        self.env["RUST_LOG"] = "warn"
        self.key = ["--master-key", os.path.join(data, "master.key")]
        self.argv = [binary, "serve", "--data-dir", data, *self.key, "--quiet",
                     "--listen", f"127.0.0.1:{port}", "--default-rate", "0",
                     "--idle-body-timeout-secs", str(idle), "-j", "2"]
        self.log = open(os.path.join(data, "serve.log"), "ab")
        self.proc = None

    def admin(self, *a):
        r = subprocess.run([self.binary, "admin", "--data-dir", self.data, *self.key, *a],
                           env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"slow clients: sluice admin {' '.join(a)}: {r.stderr.strip()}")
        return r.stdout.strip()

    def start(self):
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if call(self.port, "GET", "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        sys.exit("slow clients: the server did not come up")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def call(port, method, path, body=None, token=None, headers=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def metric(port, name, labels=""):
    """The sum of a metric's series (whose labels contain `labels`)."""
    _, text = call(port, "GET", "/metrics")
    total = 0.0
    for line in text.decode().splitlines():
        if line.startswith(name) and (line[len(name)] in " {") and labels in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


class SlowDownload(threading.Thread):
    """A GET whose client reads 20 KB/s through a 16 KiB receive buffer,
    until told to stall (then it reads nothing and waits to be cut)."""

    def __init__(self, port, token, path, stall):
        super().__init__(daemon=True)
        self.port, self.token, self.path, self.stall = port, token, path, stall
        self.status, self.received, self.cut, self.error = None, 0, False, None

    def run(self):
        try:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 10)
            s.connect(("127.0.0.1", self.port))
            s.sendall(f"GET {self.path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {self.token}\r\n\r\n".encode())
            s.settimeout(120)
            head = b""
            while b"\r\n\r\n" not in head:
                got = s.recv(1024)
                if not got:
                    raise OSError("closed before the head")
                head += got
            self.status = int(head.split(b" ", 2)[1])
            self.received = len(head.split(b"\r\n\r\n", 1)[1])
            while not self.stall.is_set():
                got = s.recv(2000)
                if not got:
                    return
                self.received += len(got)
                time.sleep(0.1)
            # Stalled: read nothing until the server gives up, then see the end.
            time.sleep(STALL_WAIT)
            s.settimeout(30)
            while True:
                got = s.recv(1 << 20)
                if not got:
                    self.cut = True
                    return
                self.received += len(got)
        except OSError as e:
            # A reset after the cut is a cut too.
            self.cut = self.stall.is_set()
            self.error = str(e)


class SlowUpload(threading.Thread):
    """A PUT of a declared 4 MiB that sends 20 KB/s, then stops sending."""

    def __init__(self, port, token, key, stall):
        super().__init__(daemon=True)
        self.port, self.token, self.key, self.stall = port, token, key, stall
        self.status, self.error = None, None

    def run(self):
        try:
            s = socket.socket()
            s.connect(("127.0.0.1", self.port))
            s.sendall((f"PUT /v1/objects/{self.key}?wait=true HTTP/1.1\r\nHost: x\r\n"
                       f"Authorization: Bearer {self.token}\r\nContent-Length: {4 * MIB}\r\n\r\n").encode())
            while not self.stall.is_set():
                s.sendall(b"u" * 2000)
                time.sleep(0.1)
            s.settimeout(60)
            answer = b""
            while b"\r\n" not in answer:
                got = s.recv(4096)
                if not got:
                    break
                answer += got
            if answer:
                self.status = int(answer.split(b" ", 2)[1])
        except OSError as e:
            self.error = str(e)


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary", default=os.environ.get("SLUICE", "target/debug/sluice"))
    ap.add_argument("--downloads", type=int, default=200)
    ap.add_argument("--uploads", type=int, default=4)
    ap.add_argument("--tries", type=int, default=50)
    ap.add_argument("--idle", type=int, default=5, help="the server's idle body timeout, seconds")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    args = ap.parse_args()
    global STALL_WAIT
    STALL_WAIT = args.idle + 3

    data = tempfile.mkdtemp(prefix="sluice-slow-")
    port = free_port()
    server = Server(os.path.abspath(args.binary), data, port, args.idle)
    server.admin("tenant", "create", "alpha")
    server.admin("tenant", "create", "beta")
    ta = server.admin("token", "create", "--tenant", "alpha", "--scope", "write")
    tb = server.admin("token", "create", "--tenant", "beta", "--scope", "write")
    server.start()
    failures = []
    rss = []
    try:
        big = os.urandom(16 * MIB)
        # A's object in 1 MiB chunks: a slow download holds one chunk (its
        # plaintext, while the socket sends it), so 200 of them fit in A's
        # share of the transfer memory. B's in the default 8 MiB chunks.
        st, body = call(port, "PUT", "/v1/pipelines/small", json.dumps({"chunk_size": "1MiB"}), ta,
                        {"Content-Type": "application/json"})
        assert st in (200, 201), (st, body)
        for token, query in ((ta, "&pipeline=small"), (tb, "")):
            st, body = call(port, "PUT", f"/v1/objects/big?wait=true{query}", big, token, timeout=120)
            assert st == 201, (st, body)
        stall = threading.Event()
        downloads = [SlowDownload(port, ta, "/v1/objects/big/content", stall) for _ in range(args.downloads)]
        uploads = [SlowUpload(port, ta, f"slow-up-{i}", stall) for i in range(args.uploads)]
        for t in downloads + uploads:
            t.start()
        # Wait until every download is in flight on the server.
        deadline = time.monotonic() + 60
        while metric(port, "sluice_transfers_in_flight") < args.downloads + args.uploads:
            if time.monotonic() > deadline:
                failures.append(f"only {metric(port, 'sluice_transfers_in_flight'):.0f} transfers in flight")
                break
            time.sleep(0.2)
        sampling = threading.Event()

        def sample():
            while not sampling.is_set():
                try:
                    rss.append(metric(port, "sluice_process_resident_bytes"))
                except OSError:
                    pass
                time.sleep(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        small = b"b" * 4096
        timings = {name: [] for name in ("put_wait", "get", "range_get", "queued_upload", "jobs")}

        def timed(name, f):
            start = time.monotonic()
            try:
                ok = f()
            except OSError as e:
                ok = f"error {e}"
            took = time.monotonic() - start
            timings[name].append(took)
            if ok is not True:
                failures.append(f"{name}: {ok}")

        def put_wait(i):
            st, _ = call(port, "PUT", f"/v1/objects/b-{i}?wait=true", small, tb)
            return st == 201 or f"status {st}"

        def get(i):
            st, body = call(port, "GET", f"/v1/objects/b-{i}/content", None, tb)
            return (st == 200 and body == small) or f"status {st}, {len(body)} bytes"

        def range_get(i):
            at = (i * 977_131) % (len(big) - 65536)
            st, body = call(port, "GET", "/v1/objects/big/content", None, tb,
                            {"Range": f"bytes={at}-{at + 65535}"})
            return (st == 206 and body == big[at:at + 65536]) or f"status {st}"

        def queued_upload(i):
            st, body = call(port, "PUT", f"/v1/objects/q-{i}", small, tb)
            if st != 202:
                return f"status {st}"
            job = json.loads(body)["id"]
            while True:
                st, body = call(port, "GET", f"/v1/jobs/{job}", None, tb)
                state = json.loads(body).get("state")
                if state == "succeeded":
                    return True
                if state in ("failed", "cancelled"):
                    return f"job {state}"
                time.sleep(0.01)

        def jobs(_):
            st, _ = call(port, "GET", "/v1/jobs?limit=20", None, tb)
            return st == 200 or f"status {st}"

        for i in range(args.tries):
            timed("put_wait", lambda: put_wait(i))
            timed("get", lambda: get(i))
            timed("range_get", lambda: range_get(i))
            timed("queued_upload", lambda: queued_upload(i))
            timed("jobs", lambda: jobs(i))
        report = {name: {"p50_ms": round(sorted(t)[len(t) // 2] * 1000, 1), "p99_ms": round(p99(t) * 1000, 1)}
                  for name, t in timings.items()}
        print("tenant B while tenant A runs", args.downloads, "slow downloads and", args.uploads,
              "slow uploads:", json.dumps(report))
        for name, t in timings.items():
            if p99(t) >= 1.0:
                failures.append(f"{name}: P99 {p99(t):.3f} s (must be under 1 s)")
        still = sum(1 for d in downloads if d.is_alive())
        if still < args.downloads:
            failures.append(f"only {still} of {args.downloads} slow downloads were still going")

        # A stops reading and sending: the server must cut every transfer.
        cut_before = metric(port, "sluice_transfers_cut_total")
        stall.set()
        for t in downloads + uploads:
            t.join(timeout=args.idle + 60)
        deadline = time.monotonic() + 30
        while metric(port, "sluice_transfers_in_flight") > 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        sampling.set()
        left = metric(port, "sluice_transfers_in_flight")
        if left:
            failures.append(f"{left:.0f} transfers still in flight after the idle timeout")
        cut = metric(port, "sluice_transfers_cut_total") - cut_before
        not_cut = [d for d in downloads if not d.cut]
        if not_cut:
            failures.append(f"{len(not_cut)} stalled downloads were not cut (e.g. status {not_cut[0].status}, "
                            f"{not_cut[0].received} bytes, {not_cut[0].error})")
        if cut < args.downloads + args.uploads:
            failures.append(f"sluice_transfers_cut_total grew by {cut:.0f}, expected {args.downloads + args.uploads}")
        for u in uploads:
            if u.status is not None and u.status < 400:
                failures.append(f"a stalled upload was answered {u.status}")
            st, _ = call(port, "GET", f"/v1/objects/{u.key}", None, ta)
            if st != 404:
                failures.append(f"the stalled upload {u.key} exists (status {st})")
        partial = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(data, "store")) for f in fs
                   if f.endswith(".partial")]
        if partial:
            failures.append(f"half-written files left: {partial[:3]}")

        # Memory: the transfer memory budget, plus one chunk per transfer
        # (the one its socket is still sending when the next is taken),
        # over a base for the runtime, the database and the allocator.
        chunk = 1 * MIB
        budget = (metric(port, "sluice_transfer_memory_budget_bytes") + (args.downloads + args.uploads) * chunk
                  + 192 * MIB)
        peak = max(rss) if rss else 0
        print(f"server RSS peak {peak / MIB:.0f} MiB, budget {budget / MIB:.0f} MiB ({len(rss)} samples)")
        if not rss:
            failures.append("no RSS samples")
        elif peak > budget:
            failures.append(f"RSS peaked at {peak / MIB:.0f} MiB, over the budget of {budget / MIB:.0f} MiB")
    finally:
        server.stop()
    if failures:
        print("slow clients: FAILED\n  " + "\n  ".join(failures))
        print(f"(server log: {data}/serve.log)")
        sys.exit(1)
    print("slow clients: ok")
    if not args.keep:
        subprocess.run(["rm", "-rf", data])


STALL_WAIT = 8

if __name__ == "__main__":
    main()
