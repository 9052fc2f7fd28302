#!/usr/bin/env python3
"""Small objects at wire speed (issue #21): sluice against nginx's WebDAV PUT
and static GET, side by side in one run, files on disk.

For each body size, nginx first, then sluice on each database backend:
  - PUT of distinct keys, 64 connections (wrk), counting 2xx answers only
    (sluice: `?wait=true`, so that a 2xx means stored at every size);
  - GET of 2,000 existing objects, chosen at random;
  - for sluice, the same through the S3 face: PutObject and GetObject with
    SigV4 query signatures (presigned URLs, made here beforehand: one per
    request, so PUT keys stay distinct).
After each sluice PUT run: every object answered 2xx is listed, with the
uploaded size and BLAKE3 (sluice checks that digest on every whole read),
and a sample reads back byte-exact. The server's peak RSS is reported.

Durability is not the same on both sides: nginx writes into the page cache
and never syncs; sluice answers once the database commit that holds the
object is synced (SQLite synchronous=FULL, PostgreSQL fsync on).

Usage (bench/small.sh installs what this needs and calls it):
  small.py --sluice BIN --work DIR [--seconds 60] [--sizes 1,4,64,256]
           [--backends sqlite,postgres] [--pg URL] [--out results.json]
"""

import argparse
import atexit
import concurrent.futures
import datetime
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse

import blake3

CONNS = 64
GET_KEYS = 2000
# The server's budgets at its defaults: transfers' chunks (1,024 MiB), the
# engine's buffers (128 MiB on 2 cores), and 256 MiB for the rest (runtime,
# caches, database connections). Peak RSS above it fails the run.
RSS_BUDGET_MIB = 1024 + 128 + 256

PUT_LUA = r"""
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  prefix, size, token, suffix = args[1], tonumber(args[2]), args[3], args[5] or ""
  local f = io.open(args[4], "rb")
  body = f:read("*a")
  f:close()
  headers = {}
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
  n = 0
end
function request()
  n = n + 1
  return wrk.format("PUT", prefix .. id .. "-" .. n .. suffix, headers, body)
end
"""

GET_LUA = r"""
function init(args)
  prefix, count, suffix, token = args[1], tonumber(args[2]), args[3], args[4]
  headers = {}
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
end
function request()
  return wrk.format("GET", prefix .. math.random(0, count - 1) .. suffix, headers)
end
"""

# Presigned URLs, a file per wrk thread, read once at start.
URLS_LUA = r"""
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  method, base = args[1], args[2]
  urls = {}
  for line in io.lines(base .. "." .. id) do urls[#urls + 1] = line end
  if args[3] ~= "" then
    local f = io.open(args[3], "rb")
    body = f:read("*a")
    f:close()
  end
  n = 0
end
function request()
  n = n + 1
  if n > #urls then n = 1 end
  return wrk.format(method, urls[n], nil, body)
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def body_of(size):
    """A body of `size` bytes that compresses as text does (log lines)."""
    rng = random.Random(size)
    words = ["GET", "PUT", "user", "session", "ok", "error", "latency", "bytes", "region", "eu-west-1"]
    out = []
    total = 0
    while total < size:
        line = f"{rng.randrange(10**9)} {rng.choice(words)} {rng.choice(words)}={rng.randrange(10**6)}\n"
        out.append(line)
        total += len(line)
    return "".join(out).encode()[:size]


def call(port, method, path, body=None, headers=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def wrk(url, script, args, seconds):
    """Runs wrk; returns 2xx per second, P50 and P99 (ms) and the counts."""
    cmd = ["wrk", "-t", "2", "-c", str(CONNS), "-d", f"{seconds}s", "--latency", "--timeout", "10s",
           "-s", script, url, "--", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    # wrk writes "N requests in 10.02s" or "in 1.00m".
    total, took, unit = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)\b", out).groups()
    took = float(took) * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]
    non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", out) or [0, 0])[1])
    socket_errors = re.search(r"Socket errors: (.*)", out)

    def ms(p):
        v, u = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[u]

    ok = int(total) - non2xx
    return {"rps": ok / took, "p50": ms(50), "p99": ms(99), "total": int(total), "ok": ok,
            "non2xx": non2xx, "socket_errors": socket_errors.group(1) if socket_errors else ""}


def presign(method, port, bucket, key, access, secret, now):
    """A SigV4 query-signed URL (path style, UNSIGNED-PAYLOAD), as S3 SDKs
    presign."""
    region, service = "us-east-1", "s3"
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    scope = f"{day}/{region}/{service}/aws4_request"
    path = "/" + urllib.parse.quote(bucket) + "/" + urllib.parse.quote(key, safe="/~")
    query = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{access}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": "3600",
        "X-Amz-SignedHeaders": "host",
    }
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='~')}={urllib.parse.quote(v, safe='~')}" for k, v in sorted(query.items()))
    canonical = "\n".join([method, path, canonical_query, f"host:127.0.0.1:{port}\n", "host", "UNSIGNED-PAYLOAD"])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key_ = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        key_ = hmac.new(key_, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key_, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{path}?{canonical_query}&X-Amz-Signature={signature}"


def write_urls(base, method, port, bucket, keys_of_thread, access, secret):
    now = datetime.datetime.now(datetime.timezone.utc)
    for t, keys in enumerate(keys_of_thread):
        with open(f"{base}.{t}", "w") as f:
            for k in keys:
                f.write(presign(method, port, bucket, k, access, secret, now) + "\n")


def populate(port, paths, body, headers):
    def put(p):
        status, data = call(port, "PUT", p, body, headers)
        if status not in (200, 201, 202, 204):
            sys.exit(f"small: populating {p}: {status} {data[:200]!r}")
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(put, paths))


# Servers started and not yet stopped: stopped however the run ends (a
# failed check exits), so that the script's clean-up finds them gone.
RUNNING = []


def stop(proc):
    proc.terminate()
    proc.wait()
    if proc in RUNNING:
        RUNNING.remove(proc)


atexit.register(lambda: [stop(p) for p in list(RUNNING)])


class Nginx:
    def __init__(self, work):
        self.dir = os.path.join(work, "nginx")
        self.port = free_port()
        self.proc = None

    def start(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        for d in ("www", "tmp", "logs"):
            os.makedirs(os.path.join(self.dir, d))
        user = "user root root;" if os.getuid() == 0 else ""
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""{user}
worker_processes auto;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {self.dir}/tmp;
  client_max_body_size 64m;
  server {{
    listen 127.0.0.1:{self.port};
    root {self.dir}/www;
    location / {{ dav_methods PUT DELETE; create_full_put_path on; }}
  }}
}}
""")
        subprocess.run(["sync"])
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.dir], stderr=subprocess.DEVNULL)
        RUNNING.append(self.proc)
        wait_up(self.port, "/")

    def stop(self):
        stop(self.proc)


def wait_up(port, path):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            call(port, "GET", path, timeout=2)
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"small: nothing answers on port {port}")


class Sluice:
    def __init__(self, binary, work, backend, pg):
        self.binary, self.backend = binary, backend
        self.data = os.path.join(work, f"sluice-{backend}")
        self.port, self.s3_port = free_port(), free_port()
        self.common = ["--data-dir", self.data]
        if backend == "postgres":
            self.common += ["--database", f"{pg}/small_{int(time.time())}"]
        self.proc = None

    def admin(self, *a):
        r = subprocess.run([self.binary, "admin", *self.common, *a], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"small: sluice admin {' '.join(a)}: {r.stderr.strip()}")
        return r.stdout.strip()

    def start(self):
        shutil.rmtree(self.data, ignore_errors=True)
        self.admin("tenant", "create", "bench")
        self.token = self.admin("token", "create", "--tenant", "bench", "--scope", "write")
        self.access, self.secret = self.admin("s3-key", "create", "--tenant", "bench").split()
        subprocess.run(["sync"])
        log = open(os.path.join(self.data, "serve.log"), "ab")
        env = dict(os.environ, RUST_LOG="warn")
        self.proc = subprocess.Popen(
            [self.binary, "serve", *self.common, "--quiet", "--listen", f"127.0.0.1:{self.port}",
             "--s3-listen", f"127.0.0.1:{self.s3_port}", "--default-rate", "0"],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        RUNNING.append(self.proc)
        wait_up(self.port, "/healthz")
        status, _ = call(self.port, "PUT", "/v1/buckets/bench", b"{}", self.auth())
        if status not in (200, 201):
            sys.exit(f"small: creating the bucket: {status}")

    def auth(self):
        return {"Authorization": f"Bearer {self.token}"}

    def peak_rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM"):
                    return int(line.split()[1]) // 1024
        return 0

    def stop(self):
        stop(self.proc)

    def check(self, prefix, body, ok, sent):
        """Every upload answered 2xx under `prefix` is listed with the body's
        size and BLAKE3; a sample reads back byte-exact."""
        digest = blake3.blake3(body).hexdigest()
        keys, cursor = [], ""
        while True:
            q = urllib.parse.urlencode({"prefix": prefix, "limit": 1000, **({"cursor": cursor} if cursor else {})})
            status, page = call(self.port, "GET", f"/v1/objects?{q}", headers=self.auth())
            page = json.loads(page)
            for o in page["objects"]:
                if o["size"] != len(body) or o["blake3"] != digest:
                    return f"{o['key']}: {o['size']} bytes, BLAKE3 {o['blake3'][:12]}…"
                keys.append(o["key"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        if not ok <= len(keys) <= sent:
            return f"{len(keys)} objects listed, {ok} answered 2xx of {sent} sent"
        for key in random.sample(keys, min(50, len(keys))):
            status, got = call(self.port, "GET", f"/v1/objects/{urllib.parse.quote(key)}/content", headers=self.auth())
            if status != 200 or got != body:
                return f"{key}: read back {status}, {len(got)} bytes"
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sluice", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--sizes", default="1,4,64,256", help="KiB")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--pg", help="a PostgreSQL base URL (postgres://USER@HOST:PORT)")
    ap.add_argument("--out")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    scripts = {}
    for name, text in (("put", PUT_LUA), ("get", GET_LUA), ("urls", URLS_LUA)):
        scripts[name] = os.path.join(args.work, f"{name}.lua")
        with open(scripts[name], "w") as f:
            f.write(text)
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = [b for b in args.backends.split(",") if b]
    results, failures = [], []

    def record(what, size, r, extra=""):
        r.update(what=what, size_kib=size)
        results.append(r)
        bad = f", {r['non2xx']} non-2xx" if r["non2xx"] else ""
        print(f"  {what:<28} {r['rps']:>9.0f} req/s  P50 {r['p50']:7.2f} ms  P99 {r['p99']:7.2f} ms{bad}{extra}",
              flush=True)
        return r

    for size in sizes:
        body = body_of(size << 10)
        body_file = os.path.join(args.work, f"body-{size}")
        with open(body_file, "wb") as f:
            f.write(body)
        print(f"== {size} KiB bodies, {CONNS} connections, {args.seconds} s each", flush=True)
        ng = Nginx(args.work)
        ng.start()
        base = f"http://127.0.0.1:{ng.port}"
        record("nginx PUT", size, wrk(base, scripts["put"], ["/put/", str(size), "", body_file], args.seconds))
        populate(ng.port, [f"/get/{i}" for i in range(GET_KEYS)], body, {})
        record("nginx GET", size, wrk(base, scripts["get"], ["/get/", str(GET_KEYS), "", ""], args.seconds))
        ng.stop()
        shutil.rmtree(ng.dir, ignore_errors=True)
        for backend in backends:
            s = Sluice(args.sluice, args.work, backend, args.pg)
            s.start()
            base = f"http://127.0.0.1:{s.port}"
            prefix = f"p{size}/"
            # `?wait=true`: a 2xx means stored at every size (a body above
            # --small-object-max is otherwise accepted, 202, and queued).
            r = wrk(base, scripts["put"], [f"/v1/objects/{prefix}", str(size), s.token, body_file, "?wait=true"],
                    args.seconds)
            problem = s.check(prefix, body, r["ok"], r["total"] + CONNS)
            record(f"sluice {backend} PUT", size, r, "" if not problem else f"  CHECK FAILED: {problem}")
            if problem:
                failures.append(f"{size} KiB {backend} PUT: {problem}")
            # Objects to read, written natively, read natively and through S3
            # (bucket `bench`, key `gN/i`, is the native `bench/gN/i`).
            populate(s.port, [f"/v1/objects/bench/g{size}/{i}?wait=true" for i in range(GET_KEYS)], body, s.auth())
            record(f"sluice {backend} GET", size,
                   wrk(base, scripts["get"], [f"/v1/objects/bench/g{size}/", str(GET_KEYS), "/content", s.token],
                       args.seconds))
            # S3: a presigned URL per PUT, enough for the native rate and then some.
            s3 = f"http://127.0.0.1:{s.s3_port}"
            per_thread = int(max(r["rps"], 2000) * args.seconds * 0.75) + 1000
            keys = [[f"s{size}/{t}-{i}" for i in range(per_thread)] for t in range(2)]
            write_urls(os.path.join(args.work, "put-urls"), "PUT", s.s3_port, "bench", keys, s.access, s.secret)
            r = wrk(s3, scripts["urls"], ["PUT", os.path.join(args.work, "put-urls"), body_file], args.seconds)
            problem = s.check(f"bench/s{size}/", body, r["ok"], r["total"] + CONNS)
            if r["ok"] >= 2 * per_thread:
                problem = "the presigned URLs ran out (keys were written twice)"
            record(f"sluice {backend} S3 PutObject", size, r, "" if not problem else f"  CHECK FAILED: {problem}")
            if problem:
                failures.append(f"{size} KiB {backend} S3 PUT: {problem}")
            keys = [[f"g{size}/{i}" for i in range(GET_KEYS)] for _ in range(2)]
            write_urls(os.path.join(args.work, "get-urls"), "GET", s.s3_port, "bench", keys, s.access, s.secret)
            record(f"sluice {backend} S3 GetObject", size,
                   wrk(s3, scripts["urls"], ["GET", os.path.join(args.work, "get-urls"), ""], args.seconds))
            rss = s.peak_rss_mib()
            over = f"  CHECK FAILED: above {RSS_BUDGET_MIB} MiB" if rss > RSS_BUDGET_MIB else ""
            print(f"  sluice {backend}: peak RSS {rss} MiB{over}", flush=True)
            if over:
                failures.append(f"{size} KiB {backend}: peak RSS {rss} MiB, above {RSS_BUDGET_MIB} MiB")
            results.append({"what": f"sluice {backend} peak RSS MiB", "size_kib": size, "rss_mib": rss})
            s.stop()
            shutil.rmtree(s.data, ignore_errors=True)

    print("\n== ratios (2xx per second, sluice / nginx)")
    by = {(r["what"], r["size_kib"]): r for r in results if "rps" in r}
    for size in sizes:
        ng_put, ng_get = by[("nginx PUT", size)]["rps"], by[("nginx GET", size)]["rps"]
        for backend in backends:
            for what, ref in (("PUT", ng_put), ("GET", ng_get), ("S3 PutObject", ng_put), ("S3 GetObject", ng_get)):
                r = by[(f"sluice {backend} {what}", size)]
                print(f"  {size:>3} KiB {backend:<8} {what:<13} {r['rps'] / ref:5.2f}x nginx "
                      f"(P99 {r['p99']:.1f} ms, non-2xx {r['non2xx']})")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    if failures:
        print("\nsmall: checks FAILED")
        for f in failures:
            print("  " + f)
        sys.exit(1)


if __name__ == "__main__":
    main()
