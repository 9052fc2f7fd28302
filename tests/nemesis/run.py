"""The nemesis run: concurrent clients on a small key space of a real
`sluice serve` (SQLite + local store, or several nodes on PostgreSQL + S3),
random faults injected meanwhile, every operation recorded, then a quiet
period, final reads, listing, verify and the reaper's cleanup, and the
history checked (checker.py). Called by scripts/nemesis.sh, which starts
PostgreSQL and moto when asked; standard library only.

Exit status: 0 with no anomaly, 1 with anomalies, 2 when the run itself
could not be made (a node that never came up, a bad argument)."""

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))

import checker  # noqa: E402
from proxy import Proxy  # noqa: E402
from sluice_local import free_port  # noqa: E402

FAULTS = ("kill", "pause", "pg-restart", "s3-outage", "s3-latency", "disk-full", "clock-skew")
LOCAL_FAULTS = ("kill", "pause", "disk-full")
SHARED_FAULTS = ("kill", "pause", "pg-restart", "s3-outage", "s3-latency", "clock-skew")
TENANT = "nem"
# The store's top-level prefixes that hold data: containers, staged uploads,
# resumable uploads' parts, markers of multipart uploads in progress.
DATA_PREFIXES = ("objects", "staging", "uploads", "pending-multipart")
LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


class Clock:
    """Seconds since the run began, from the monotonic clock."""

    def __init__(self):
        self.t0 = time.monotonic()

    def now(self):
        return round(time.monotonic() - self.t0, 6)


class History:
    """The history file: one JSON record per line, written as operations
    complete (under a lock: many clients write)."""

    def __init__(self, path):
        self.f = open(path, "w")
        self.lock = threading.Lock()
        self.records = []
        self.next_id = 0

    def add(self, rec):
        with self.lock:
            rec["id"] = self.next_id
            self.next_id += 1
            self.records.append(rec)
            self.f.write(json.dumps(rec) + "\n")
            self.f.flush()
        return rec

    def close(self):
        self.f.close()


class Node:
    """One sluice process (serve or worker) that faults can kill, pause,
    restart and skew."""

    def __init__(self, name, argv, env, log_path, port=None):
        self.name, self.argv, self.env, self.port = name, argv, env, port
        self.log = open(log_path, "ab")
        self.proc = None
        self.skew = None
        self.lock = threading.Lock()

    def start(self):
        env = dict(self.env)
        if self.skew is not None:
            env.update(LD_PRELOAD=LIBFAKETIME, FAKETIME=self.skew, FAKETIME_DONT_FAKE_MONOTONIC="1",
                       FAKETIME_NO_CACHE="1")
        self.log.write(f"\n=== start {self.name} (clock {self.skew or 'true'})\n".encode())
        self.log.flush()
        self.proc = subprocess.Popen(self.argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout=60):
        if self.port is None:
            time.sleep(0.5)
            return self.proc.poll() is None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/healthz")
                ok = c.getresponse().status == 200
                c.close()
                if ok:
                    return True
            except OSError:
                pass
            time.sleep(0.1)
        return False

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self):
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait()

    def stop(self):
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if not self.proc or self.proc.poll() is not None:
            return
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


class Cluster:
    """The system under test: its nodes, its database and store, and the
    means to hurt them."""

    def __init__(self, args, out):
        self.args, self.out = args, out
        self.binary = os.path.abspath(args.binary)
        self.data = args.data_dir or os.path.join(out, "data")
        os.makedirs(self.data, exist_ok=True)
        self.env = dict(os.environ)
        self.env.pop("SLUICE_CONFIG", None)
        self.env["RUST_LOG"] = os.environ.get("RUST_LOG", "info")
        self.proxy = None
        common = ["--data-dir", self.data, "--master-key", os.path.join(self.data, "master.key"), "--quiet",
                  "--job-lease-secs", str(args.lease_secs),
                  "--reaper-interval-secs", "2", "--reaper-min-age-secs", "20",
                  "--reaper-multipart-age-secs", "20", "--retired-grace-secs", "15",
                  "--shutdown-grace-secs", "2", "--default-rate", "0",
                  "--request-timeout-secs", "10", "--idle-body-timeout-secs", "10",
                  "--breaker-open-secs", "1", "--store-timeout-secs", "5",
                  "--db-acquire-timeout-secs", "3", "-j", "2",
                  "--small-object-max", str(SMALL_OBJECT_MAX)]
        if args.backend == "postgres":
            self.proxy = Proxy(args.s3_endpoint)
            self.env.update(SLUICE_DATABASE=args.database,
                            SLUICE_STORE=f"s3://{args.bucket}/{args.prefix}",
                            AWS_ENDPOINT_URL=f"http://127.0.0.1:{self.proxy.port}",
                            AWS_ALLOW_HTTP="true", AWS_REGION="us-east-1",
                            AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
            self.env.pop("AWS_CA_BUNDLE", None)
        self.common = common
        self.nodes = []
        serves = 1 if args.backend == "sqlite" else args.nodes
        for i in range(serves):
            port = free_port()
            argv = [self.binary, "serve", *common, "--listen", f"127.0.0.1:{port}",
                    "--max-running-jobs", "4"]
            self.nodes.append(Node(f"serve{i}", argv, self.env, os.path.join(out, f"serve{i}.log"), port))
        for i in range(args.workers if args.backend == "postgres" else 0):
            argv = [self.binary, "worker", *common, "--max-running-jobs", "4"]
            self.nodes.append(Node(f"worker{i}", argv, self.env, os.path.join(out, f"worker{i}.log")))
        self.ports = [n.port for n in self.nodes if n.port]
        self.filler = os.path.join(self.data, "nemesis-filler")

    def admin(self, *a):
        """`sluice admin ARGS` on this cluster's database; its output."""
        key = ["--master-key", os.path.join(self.data, "master.key")]
        r = subprocess.run([self.binary, "admin", "--data-dir", self.data, *key, *a],
                           env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"nemesis: sluice admin {' '.join(a)}: {r.stderr.strip()}")
        return r.stdout.strip()

    def start(self):
        self.admin("tenant", "create", TENANT)
        self.token = self.admin("token", "create", "--tenant", TENANT, "--scope", "write")
        for n in self.nodes:
            n.start()
        for n in self.nodes:
            if not n.wait_ready():
                raise SystemExit(f"nemesis: {n.name} did not come up (see {self.out}/{n.name}.log)")

    def stop(self):
        for n in self.nodes:
            n.stop()
        if self.proxy:
            self.proxy.close()
        try:
            os.remove(self.filler)
        except OSError:
            pass

    def stored_files(self):
        """Files in the store under each top-level prefix that holds data
        (not `health/`, the readiness probe's scratch object)."""
        counts = {}
        if self.args.backend == "sqlite":
            root = os.path.join(self.data, "store")
            for top in sorted(os.listdir(root)) if os.path.isdir(root) else []:
                n = 0
                for _, _, files in os.walk(os.path.join(root, top)):
                    n += sum(1 for f in files if not f.startswith("."))
                counts[top] = n
        else:
            for key in _s3_keys(self.args.s3_endpoint, self.args.bucket, self.args.prefix + "/"):
                top = key[len(self.args.prefix) + 1:].split("/", 1)[0]
                counts[top] = counts.get(top, 0) + 1
        return {k: v for k, v in counts.items() if k in DATA_PREFIXES}


def _s3_keys(endpoint, bucket, prefix):
    """Every key under `prefix` in the bucket (moto takes unsigned requests)."""
    keys, token = [], None
    u = urllib.parse.urlparse(endpoint)
    while True:
        q = {"list-type": "2", "prefix": prefix}
        if token:
            q["continuation-token"] = token
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        c.request("GET", f"/{bucket}?{urllib.parse.urlencode(q)}")
        text = c.getresponse().read().decode()
        c.close()
        import xml.etree.ElementTree as ET
        root = ET.fromstring(text)
        ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
        keys += [e.text for e in root.iter(ns + "Key")]
        t = root.find(ns + "NextContinuationToken")
        if t is None or not t.text:
            return keys
        token = t.text


class Api:
    """The native API, one connection per request so that a fault cuts
    only what was in flight."""

    def __init__(self, ports, token, timeout):
        self.ports, self.token, self.timeout = ports, token, timeout

    def call(self, method, path, body=None, headers=None, port=None):
        """(status, headers, body bytes); raises OSError/HTTPException on a
        connection problem."""
        h = {"Authorization": "Bearer " + self.token}
        if headers:
            h.update(headers)
        port = port or random.choice(self.ports)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=self.timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, dict(r.getheaders()), data
        finally:
            c.close()


    def call_settled(self, method, path, body=None, headers=None, port=None, within=30):
        """`call` for the checks after the workload, when every fault is
        healed: a connection error or a 503 (a breaker still open, a node
        still starting) is tried again for up to `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            try:
                status, hdrs, data = self.call(method, path, body, headers, port)
                if status != 503 or time.monotonic() > deadline:
                    return status, hdrs, data
            except (OSError, http.client.HTTPException):
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)


def obj_path(key):
    return "/v1/objects/" + urllib.parse.quote(key, safe="/")


class Client(threading.Thread):
    """One client of the workload: random operations on the key space
    until told to stop."""

    def __init__(self, n, run):
        super().__init__(daemon=True, name=f"client{n}")
        self.n, self.run_ = n, run
        self.rng = random.Random(run.args.seed * 1000 + n)
        self.seq = 0

    def run(self):
        r = self.run_
        ops = [("put", 25), ("put_async", 20), ("get", 25), ("get_range", 10), ("delete", 10), ("upload", 5)]
        names = [o for o, _ in ops]
        weights = [w for _, w in ops]
        while not r.stopping.is_set():
            op = self.rng.choices(names, weights)[0]
            key = f"nem/k{self.rng.randrange(r.args.keys):02d}"
            try:
                rec = getattr(self, "op_" + op)(key)
            except Exception as e:  # a bug of the harness, not of sluice
                r.harness_errors.append(f"{self.name}: {op}: {e!r}")
                raise
            if rec and rec.get("outcome") == "info":
                time.sleep(self.rng.uniform(0.05, 0.3))  # the node is down: no busy loop

    def new_write(self):
        self.seq += 1
        wid = f"c{self.n:02d}.{self.seq:06d}"
        roll = self.rng.random()
        if roll < 0.45:
            size = self.rng.randint(0, 4096)
        elif roll < 0.85:
            size = self.rng.randint(4096, 256 << 10)
        else:
            size = self.rng.randint(256 << 10, 3 << 20)
        kind = "z" if self.rng.random() < 0.6 else "r"
        data = checker.body(wid, size, kind)
        return {"wid": wid, "size": size, "kind": kind, "digest": checker.digest(data)}, data

    def record(self, rec):
        return self.run_.history.add(rec)

    def _write(self, op, key, path, w, data):
        r = self.run_
        inv = r.clock.now()
        rec = {"op": op, "client": self.n, "key": key, "inv": inv, "write": w}
        try:
            status, _, resp = r.api.call("PUT", path, body=data, headers={"Content-Length": str(len(data))})
        except (OSError, http.client.HTTPException) as e:
            rec.update(ret=r.clock.now(), outcome="info", error=repr(e))
            return self.record(rec)
        rec.update(ret=r.clock.now(), status=status)
        self._classify(rec, status, resp)
        self.record(rec)
        if rec["outcome"] == "ok" and status == 202:
            r.watch_job(rec["job"])
        return rec

    def _classify(self, rec, status, resp):
        if status in (201, 202):
            rec["outcome"] = "ok"
            try:
                rec["job"] = json.loads(resp)["id"]
            except (ValueError, KeyError):
                rec["outcome"] = "info"
                rec["error"] = "no job in the answer"
        elif status >= 500 or status == 408:
            rec["outcome"] = "info"
        else:
            rec["outcome"] = "fail"
        if rec["outcome"] != "ok":
            rec["error"] = _code(resp)

    def op_put(self, key):
        w, data = self.new_write()
        return self._write("put", key, obj_path(key) + "?wait=true", w, data)

    def op_put_async(self, key):
        w, data = self.new_write()
        return self._write("put_async", key, obj_path(key), w, data)

    def op_delete(self, key):
        r = self.run_
        rec = {"op": "delete", "client": self.n, "key": key, "inv": r.clock.now()}
        try:
            status, _, resp = r.api.call("DELETE", obj_path(key))
        except (OSError, http.client.HTTPException) as e:
            rec.update(ret=r.clock.now(), outcome="info", error=repr(e))
            return self.record(rec)
        rec.update(ret=r.clock.now(), status=status)
        if status in (204, 404):
            rec["outcome"] = "ok"
        else:
            rec["outcome"] = "info" if status >= 500 or status == 408 else "fail"
            rec["error"] = _code(resp)
        return self.record(rec)

    def op_get(self, key, final=False, port=None):
        return self.run_.read(key, self.n, final=final, port=port)

    def op_get_range(self, key):
        r = self.run_
        start = self.rng.choice([0, self.rng.randint(0, 4096), self.rng.randint(0, 3 << 20)])
        length = self.rng.randint(1, 1 << 20)
        return r.read(key, self.n, rng=(start, start + length - 1))

    def op_upload(self, key):
        """A resumable upload: open, parts in random order (one sent twice
        now and then), complete. The write is the completion."""
        r = self.run_
        w, data = self.new_write()
        size = max(1, w["size"])
        if size != w["size"]:
            w, data = dict(w, size=size), checker.body(w["wid"], size, w["kind"])
            w["digest"] = checker.digest(data)
        part = 1 << 20
        port = random.choice(r.api.ports)  # one node for the whole session
        try:
            status, _, resp = r.api.call("POST", "/v1/uploads", port=port,
                                         body=json.dumps({"key": key, "size": size, "part_size": part}),
                                         headers={"Content-Type": "application/json"})
            if status != 201:
                return
            upload = json.loads(resp)["id"]
            r.open_uploads.add(upload)
            numbers = list(range((size + part - 1) // part))
            self.rng.shuffle(numbers)
            if numbers and self.rng.random() < 0.2:
                numbers.append(numbers[0])
            for i in numbers:
                chunk = data[i * part:(i + 1) * part]
                for _ in range(5):
                    status, _, _ = r.api.call("PUT", f"/v1/uploads/{upload}/parts/{i}", body=chunk, port=port,
                                              headers={"Content-Length": str(len(chunk))})
                    if status in (200, 201, 204):
                        break
                    time.sleep(0.2)
                else:
                    return
        except (OSError, http.client.HTTPException):
            # Nothing was accepted yet: the session stays open, aborted at the end.
            return {"outcome": "info"}
        rec = {"op": "upload", "client": self.n, "key": key, "inv": r.clock.now(), "write": w,
               "upload": upload}
        try:
            status, _, resp = r.api.call("POST", f"/v1/uploads/{upload}/complete", port=port)
        except (OSError, http.client.HTTPException) as e:
            rec.update(ret=r.clock.now(), outcome="info", error=repr(e))
            self.record(rec)
            r.complete_later(upload, rec)
            return
        rec.update(ret=r.clock.now(), status=status)
        self._classify(rec, status, resp)
        if status == 202:
            r.open_uploads.discard(upload)
        self.record(rec)
        if rec["outcome"] == "ok":
            r.watch_job(rec["job"])
        elif rec["outcome"] == "info":
            r.complete_later(upload, rec)


def _code(resp):
    try:
        return json.loads(resp).get("code")
    except (ValueError, AttributeError):
        return None


class Run:
    """One nemesis run: the cluster, the clients, the faults, the checks."""

    def __init__(self, args):
        self.args = args
        self.out = os.path.abspath(args.out)
        os.makedirs(self.out, exist_ok=True)
        self.clock = Clock()
        self.history = History(os.path.join(self.out, "history.jsonl"))
        self.cluster = Cluster(args, self.out)
        self.stopping = threading.Event()
        self.jobs = {}  # job id -> last state seen
        self.jobs_lock = threading.Lock()
        self.open_uploads = set()
        self.retry_complete = []
        self.harness_errors = []
        self.rng = random.Random(args.seed)

    def watch_job(self, job):
        with self.jobs_lock:
            self.jobs.setdefault(job, None)

    def complete_later(self, upload, rec):
        """A completion whose answer was lost: sent again at the end (it
        answers the same job if it had gone through)."""
        self.retry_complete.append((upload, rec))

    def read(self, key, client, final=False, rng=None, port=None):
        op = "get_range" if rng else "get"
        rec = {"op": op, "client": client, "key": key, "inv": self.clock.now(), "final": final}
        headers = {"Range": f"bytes={rng[0]}-{rng[1]}"} if rng else None
        try:
            status, hdrs, data = self.api.call("GET", obj_path(key) + "/content", headers=headers, port=port)
        except (OSError, http.client.HTTPException) as e:
            rec.update(ret=self.clock.now(), outcome="info", error=repr(e))
            return self.history.add(rec)
        rec.update(ret=self.clock.now(), status=status)
        if status == 404:
            rec.update(outcome="ok", read={"absent": True, "code": _code(data)})
        elif status == 200:
            rec.update(op="get", outcome="ok", read={"absent": False, "len": len(data),
                                                     "digest": checker.digest(data)})
        elif status == 206:
            cr = {k.lower(): v for k, v in hdrs.items()}.get("content-range", "")
            try:
                span, total = cr.split(" ", 1)[1].split("/")
                start = int(span.split("-")[0])
                rec.update(outcome="ok", read={"absent": False, "start": start, "len": len(data),
                                               "total": int(total), "digest": checker.digest(data)})
            except (IndexError, ValueError):
                rec.update(outcome="ok", read={"absent": False, "start": -1, "len": len(data), "total": -1,
                                               "digest": checker.digest(data), "content_range": cr})
        else:
            rec.update(outcome="info" if status >= 500 or status in (408, 416) else "fail", error=_code(data))
        return self.history.add(rec)

    # -- the run --------------------------------------------------------

    def main(self):
        a = self.args
        try:
            self.cluster.start()
            self.api = Api(self.cluster.ports, self.cluster.token, timeout=15)
            print(f"nemesis: {a.backend}, {len(self.cluster.nodes)} node(s), {a.clients} clients on {a.keys} keys, "
                  f"faults {','.join(a.faults) or 'none'}, {a.seconds} s, seed {a.seed}; out {self.out}", flush=True)
            clients = [Client(i, self) for i in range(a.clients)]
            poller = threading.Thread(target=self.poll_jobs, daemon=True)
            nemesis = threading.Thread(target=self.nemesis, daemon=True)
            for t in clients + [poller, nemesis]:
                t.start()
            time.sleep(a.seconds)
            self.stopping.set()
            nemesis.join()
            for c in clients:
                c.join(timeout=60)
            self.heal()
            self.quiet()
            poller.join(timeout=5)
            self.final_checks()
        finally:
            self.cluster.stop()
            self.history.close()
        found = checker.check(self.history.records)
        summary = checker.summarize(self.history.records, found)
        summary.update(backend=a.backend, seconds=a.seconds, seed=a.seed, clients=a.clients, keys=a.keys,
                       harness_errors=self.harness_errors)
        with open(os.path.join(self.out, "summary.json"), "w") as f:
            json.dump(summary, f, indent=2)
        self.report(summary, found)
        if self.harness_errors:
            return 2
        return 1 if any(found.values()) else 0

    def report(self, summary, found):
        ops = ", ".join(f"{op} {' '.join(f'{k}={v}' for k, v in sorted(o.items()))}"
                        for op, o in summary["operations"].items())
        print(f"nemesis: operations: {ops}")
        print("nemesis: faults: " + (", ".join(f"{k} {v}" for k, v in summary["faults"].items()) or "none"))
        print("nemesis: anomalies: " + ", ".join(f"{k} {v}" for k, v in summary["anomalies"].items()))
        for kind, msgs in found.items():
            for m in msgs[:10]:
                print(f"nemesis: {kind}: {m}")
        for e in self.harness_errors:
            print(f"nemesis: harness error: {e}")
        print(f"nemesis: history in {self.out}/history.jsonl (seed {self.args.seed})")

    # -- faults ---------------------------------------------------------

    def nemesis(self):
        a = self.args
        if not a.faults:
            return
        while not self.stopping.wait(self.rng.uniform(a.fault_gap / 2, a.fault_gap * 1.5)):
            kind = self.rng.choice(a.faults)
            inv = self.clock.now()
            detail = getattr(self, "fault_" + kind.replace("-", "_"))()
            self.history.add({"op": "fault", "kind": kind, "inv": inv, "ret": self.clock.now(), "detail": detail})
            print(f"nemesis: [{inv:6.1f} s] {kind}: {detail}", flush=True)

    def _pick(self):
        return self.rng.choice(self.cluster.nodes)

    def _restart(self, node):
        node.start()
        if not node.wait_ready():
            self.harness_errors.append(f"{node.name} did not come back after a restart")

    def fault_kill(self):
        node = self._pick()
        node.kill()
        down = self.rng.uniform(0.2, 2.0)
        time.sleep(down)
        self._restart(node)
        return f"kill -9 {node.name}, down {down:.1f} s"

    def fault_pause(self):
        node = self._pick()
        # Past the lease now and then, so that another node takes over.
        secs = self.rng.uniform(0.5, self.args.lease_secs * 1.6)
        node.signal(signal.SIGSTOP)
        time.sleep(secs)
        node.signal(signal.SIGCONT)
        return f"SIGSTOP {node.name} for {secs:.1f} s"

    def fault_pg_restart(self):
        r = subprocess.run([self.args.pg_ctl, "restart", self.args.pg_dir], capture_output=True, text=True)
        if r.returncode != 0:
            self.harness_errors.append(f"PostgreSQL restart failed: {r.stderr.strip()}")
        return "PostgreSQL restarted"

    def fault_s3_outage(self):
        secs = self.rng.uniform(1, 6)
        self.cluster.proxy.cut()
        time.sleep(secs)
        self.cluster.proxy.restore()
        return f"S3 unreachable for {secs:.1f} s"

    def fault_s3_latency(self):
        secs, delay = self.rng.uniform(2, 8), self.rng.uniform(0.05, 0.5)
        self.cluster.proxy.delay = delay
        time.sleep(secs)
        self.cluster.proxy.delay = 0
        return f"S3 {delay * 1000:.0f} ms slower for {secs:.1f} s"

    def fault_disk_full(self):
        secs = self.rng.uniform(1, 5)
        filled = _fill(self.cluster.filler)
        time.sleep(secs)
        os.remove(self.cluster.filler)
        return f"data directory full ({filled >> 20} MiB filler) for {secs:.1f} s"

    def fault_clock_skew(self):
        node = self._pick()
        skew = self.rng.choice([-1, 1]) * self.rng.randint(5, 60)
        node.stop()
        node.skew = f"{skew:+d}s"
        self._restart(node)
        time.sleep(self.rng.uniform(3, 10))
        node.stop()
        node.skew = None
        self._restart(node)
        return f"{node.name} ran {skew:+d} s off for a while"

    def heal(self):
        """Every fault undone: all nodes running, nothing paused."""
        for n in self.cluster.nodes:
            n.signal(signal.SIGCONT)
            if n.proc.poll() is not None:
                self._restart(n)
        if self.cluster.proxy:
            self.cluster.proxy.restore()
            self.cluster.proxy.delay = 0
        try:
            os.remove(self.cluster.filler)
        except OSError:
            pass

    # -- after the workload ---------------------------------------------

    def poll_jobs(self):
        """Follows every accepted job to its end; records each state change."""
        while True:
            with self.jobs_lock:
                pending = [j for j, s in self.jobs.items() if s not in ("succeeded", "failed", "cancelled")]
            if not pending and self.quiet_done.is_set():
                return
            for job in pending:
                try:
                    status, _, data = self.api.call("GET", f"/v1/jobs/{job}")
                except (OSError, http.client.HTTPException):
                    continue
                if status != 200:
                    continue
                j = json.loads(data)
                with self.jobs_lock:
                    changed = self.jobs.get(job) != j["state"]
                    self.jobs[job] = j["state"]
                if changed:
                    self.history.add({"op": "job", "job": job, "state": j["state"], "observed": self.clock.now(),
                                      "superseded": j.get("superseded", False), "error": j.get("error"),
                                      "error_code": j.get("error_code"), "attempts": j.get("attempts")})
            if self.quiet_done.is_set():
                return
            time.sleep(0.2)

    quiet_done = threading.Event()

    def quiet(self):
        """The quiet period: lost completions sent again, open sessions
        aborted, then every job given time to end."""
        for upload, rec in self.retry_complete:
            for _ in range(20):
                try:
                    status, _, resp = self.api.call("POST", f"/v1/uploads/{upload}/complete")
                except (OSError, http.client.HTTPException):
                    time.sleep(0.5)
                    continue
                if status == 202:
                    self.watch_job(json.loads(resp)["id"])
                    self.history.add({"op": "job_of", "upload": upload, "of": rec["id"],
                                      "job": json.loads(resp)["id"]})
                break
        for upload in list(self.open_uploads):
            for _ in range(20):
                try:
                    status, _, _ = self.api.call("DELETE", f"/v1/uploads/{upload}")
                    if status < 500:
                        break
                except (OSError, http.client.HTTPException):
                    pass
                time.sleep(0.5)
        deadline = time.monotonic() + self.args.quiet_secs
        while time.monotonic() < deadline:
            with self.jobs_lock:
                if all(s in ("succeeded", "failed", "cancelled") for s in self.jobs.values()):
                    break
            time.sleep(0.3)
        # Jobs no client knows of end too: an upload whose node was killed
        # while it streamed in is failed once its lease expires.
        while time.monotonic() < deadline and self.unfinished_jobs():
            time.sleep(0.5)
        time.sleep(0.5)
        self.quiet_done.set()

    def unfinished_jobs(self):
        """Whether any job is still queued or running (or the node cannot say)."""
        for state in ("queued", "running"):
            try:
                status, _, data = self.api.call("GET", f"/v1/jobs?state={state}&limit=1")
            except (OSError, http.client.HTTPException):
                return True
            if status != 200 or json.loads(data).get("jobs"):
                return True
        return False

    def final_checks(self):
        a = self.args
        keys = [f"nem/k{i:02d}" for i in range(a.keys)]
        # Final reads, through every node.
        present = set()
        for key in keys:
            for port in self.cluster.ports:
                for _ in range(60):  # answered at last, once every fault is healed
                    rec = self.read(key, -1, final=True, port=port)
                    if rec["outcome"] != "info":
                        break
                    time.sleep(0.5)
                if rec["outcome"] == "ok" and not rec["read"]["absent"]:
                    present.add(key)
        # Jobs still queued or running.
        for state in ("queued", "running"):
            status, _, data = self.api.call_settled("GET", f"/v1/jobs?state={state}&limit=100")
            for j in json.loads(data).get("jobs", []) if status == 200 else []:
                self.history.add({"op": "job", "job": j["id"], "state": state, "observed": self.clock.now(),
                                  "superseded": False, "error": None, "error_code": None, "stuck": True})
        # The listing: every key once, the same keys the reads found.
        listed, cursor, in_store = [], None, 0
        while True:
            q = "?prefix=nem/&limit=1000" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
            status, _, data = self.api.call_settled("GET", "/v1/objects" + q)
            page = json.loads(data)
            listed += [o["key"] for o in page["objects"]]
            # A small object's container lives in its database row.
            in_store += sum(1 for o in page["objects"] if o["size"] > SMALL_OBJECT_MAX)
            cursor = page.get("next_cursor")
            if not cursor:
                break
        self.history.add({"op": "listing", "keys": listed})
        for key in sorted(present - set(listed)):
            self.history.add({"op": "integrity", "message": f"{key!r} reads back but is not listed"})
        for key in sorted(set(listed) - present):
            self.history.add({"op": "integrity", "message": f"{key!r} is listed but does not read back"})
        # Verify every stored object.
        verify = {}
        for key in sorted(set(listed)):
            status, _, data = self.api.call_settled("POST", obj_path(key) + "/verify")
            if status == 202:
                verify[json.loads(data)["id"]] = key
            else:
                self.history.add({"op": "integrity", "message": f"verify of {key!r} refused: {status} {_code(data)}"})
        deadline = time.monotonic() + 60
        while verify and time.monotonic() < deadline:
            for job, key in list(verify.items()):
                status, _, data = self.api.call_settled("GET", f"/v1/jobs/{job}")
                j = json.loads(data) if status == 200 else {}
                if j.get("state") == "succeeded":
                    del verify[job]
                elif j.get("state") in ("failed", "cancelled"):
                    self.history.add({"op": "integrity", "message": f"verify of {key!r} {j['state']}: "
                                      f"{j.get('error_code')}: {j.get('error')}"})
                    del verify[job]
            time.sleep(0.3)
        for job, key in verify.items():
            self.history.add({"op": "integrity", "message": f"verify of {key!r} (job {job}) did not finish"})
        self.check_space(in_store)

    def check_space(self, live):
        """After the reaper has run with nothing in progress: one container
        per live object kept in the store (`live` of them: small ones live
        in their rows), no staged upload, no part left."""
        # Restart the serving nodes with no minimum age and no grace: nothing
        # is in flight any more, so everything unreferenced may go now.
        for n in self.cluster.nodes:
            n.stop()
        n = self.cluster.nodes[0]
        argv = list(n.argv)
        for flag, value in (("--reaper-min-age-secs", "0"), ("--retired-grace-secs", "0"),
                            ("--reaper-multipart-age-secs", "0"), ("--reaper-interval-secs", "1")):
            argv[argv.index(flag) + 1] = value
        sweeper = Node("sweeper", argv, self.cluster.env, os.path.join(self.out, "sweeper.log"), n.port)
        sweeper.start()
        if not sweeper.wait_ready():
            self.harness_errors.append("the sweeping node did not come up")
            return
        deadline = time.monotonic() + 20
        want = {"objects": live}
        counts = {}
        while time.monotonic() < deadline:
            time.sleep(1.5)
            counts = {k: v for k, v in self.cluster.stored_files().items() if v}
            if counts == {k: v for k, v in want.items() if v}:
                break
        sweeper.stop()
        self.history.add({"op": "space", "files": counts, "live": live})
        if counts != {k: v for k, v in want.items() if v}:
            self.history.add({"op": "integrity", "message": f"space not reclaimed: store holds {counts}, "
                              f"{live} live object(s)"})


# The servers' --small-object-max: objects up to this size are stored on
# arrival with their containers in their database rows, not in the store.
SMALL_OBJECT_MAX = 64 << 10


def _fill(path):
    """Writes `path` until the file system is full; returns its size."""
    n = 0
    block = b"\0" * (1 << 20)
    try:
        with open(path, "wb") as f:
            while True:
                f.write(block)
                n += len(block)
                if n > (64 << 30):
                    break
    except OSError:
        pass
    return n


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", required=True)
    p.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--faults", default="kill,pause", help="comma-separated: " + ",".join(FAULTS) + ", or all")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--keys", type=int, default=12)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", required=True)
    p.add_argument("--data-dir", help="the nodes' data directory (a small mount for disk-full)")
    p.add_argument("--nodes", type=int, default=2, help="serving nodes on PostgreSQL")
    p.add_argument("--workers", type=int, default=1, help="worker nodes on PostgreSQL")
    p.add_argument("--lease-secs", type=int, default=5)
    p.add_argument("--fault-gap", type=float, default=6, help="mean seconds between faults")
    p.add_argument("--quiet-secs", type=float, default=60)
    p.add_argument("--database")
    p.add_argument("--s3-endpoint")
    p.add_argument("--bucket", default="sluice-nemesis")
    p.add_argument("--prefix", default="nemesis")
    p.add_argument("--pg-ctl")
    p.add_argument("--pg-dir")
    a = p.parse_args(argv)
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1 << 31)
    allowed = SHARED_FAULTS if a.backend == "postgres" else LOCAL_FAULTS
    a.faults = [f for f in a.faults.split(",") if f] if a.faults != "all" else list(allowed)
    for f in a.faults:
        if f not in allowed:
            p.error(f"fault {f!r} does not apply to the {a.backend} backend (choose from {', '.join(allowed)})")
    if "disk-full" in a.faults and not a.data_dir:
        p.error("disk-full needs --data-dir on a small file system of its own")
    if "clock-skew" in a.faults and not os.path.exists(LIBFAKETIME):
        p.error(f"clock-skew needs libfaketime ({LIBFAKETIME}; Debian's faketime)")
    if a.backend == "postgres" and not (a.database and a.s3_endpoint and a.pg_ctl and a.pg_dir):
        p.error("postgres needs --database, --s3-endpoint, --pg-ctl and --pg-dir")
    return a


if __name__ == "__main__":
    socket.setdefaulttimeout(30)
    sys.exit(Run(parse(sys.argv[1:])).main())
