#!/usr/bin/env python3
"""Scaling out (issue #13): one API-only node (`sluice serve --workers 0`)
and 1, 2, 3 `sluice worker` processes sharing one database and one store on
this machine, each worker limited to its share of the cores.

    scale.py SLUICE_BINARY WORKDIR [--quick]

The database is SQLite in WORKDIR, or the PostgreSQL URL in
SCALE_DATABASE (bench/scale.sh --postgres starts one).

For each worker count: a backlog of mixed jobs (4 KiB to 32 MiB) is queued
with no worker running, then the workers start and drain it: jobs/s and
MB/s (original bytes). Then, with the workers idle, single jobs arrive one
at a time: claim latency from queued to running (P50/P99). Last, with two
workers, one is killed (SIGKILL) in the middle of a large job: the time
until another worker has taken the job over. Prints a report.
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../scripts"))
from sluice_local import free_port, request, wait_healthy  # noqa: E402
import sluice_local  # noqa: E402

BIN, WORK = sys.argv[1], sys.argv[2]
QUICK = "--quick" in sys.argv
CORES = os.cpu_count() or 1
MIB = 1 << 20
# (count, size): 4 KiB logs, 1 MiB files, 32 MiB archives.
MIX = [(1000, 4096), (100, MIB), (10, 32 * MIB)] if not QUICK else [(40, 4096), (10, MIB), (2, 8 * MIB)]
LEASE = 5
DATA = os.path.join(WORK, "data")
DATABASE = os.environ.get("SCALE_DATABASE") or f"sqlite://{DATA}/sluice.db"


def admin(*args):
    return sluice_local.admin(BIN, "--data-dir", DATA, "--database", DATABASE, *args)


def api(method, path, body=None):
    status, raw = request(BASE + path, TOKEN, method, body)
    return status, json.loads(raw or b"null")


def body_of(size, seed):
    line = f"2026-11-28T09:00:{seed % 60:02d}Z INFO order {seed} shipped to eu-west-1 in 12 ms\n".encode()
    text = (line * (size // len(line) + 1))[:size]
    # A quarter incompressible, like real archives.
    if size >= MIB:
        rnd = os.urandom(size // 4)
        return text[: size - len(rnd)] + rnd
    return text


def worker(i, n):
    share = max(1, CORES // n)
    log = open(os.path.join(WORK, f"worker-{n}-{i}.log"), "w")
    return subprocess.Popen([BIN, "worker", "--data-dir", os.path.join(WORK, f"w{i}"),
                             "--database", DATABASE, "--store", f"file://{DATA}/store",
                             "--master-key", f"{DATA}/master.key", "--workers", str(2 * share),
                             "--cpu-threads", str(share), "--runtime-threads", "1",
                             "--job-lease-secs", str(LEASE)], stderr=log)


def jobs(state):
    out, cursor = [], ""
    while True:
        _, page = api("GET", f"/v1/jobs?state={state}&limit=1000" + (f"&cursor={cursor}" if cursor else ""))
        out += page["jobs"]
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def wait_drained(limit_s=900):
    deadline = time.time() + limit_s
    while time.time() < deadline:
        if not jobs("queued") and not jobs("running"):
            return True
        time.sleep(0.05)
    return False


def stop(procs):
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()


os.makedirs(WORK, exist_ok=True)
admin("tenant", "create", "scale")
TOKEN = admin("token", "create", "--tenant", "scale", "--scope", "write")
PORT = free_port()
BASE = f"http://127.0.0.1:{PORT}"
api_log = open(os.path.join(WORK, "api.log"), "w")
API = subprocess.Popen([BIN, "serve", "--data-dir", DATA, "--database", DATABASE, "--listen", f"127.0.0.1:{PORT}", "--workers", "0",
                        "--default-rate", "0", "--default-max-queued", "1000000"], stderr=api_log)
results = []
try:
    wait_healthy(BASE, API)
    bodies = {size: body_of(size, size) for _, size in MIX}
    total_jobs = sum(n for n, _ in MIX)
    total_bytes = sum(n * s for n, s in MIX)
    print(f"database: {DATABASE.split(':')[0]}; cores: {CORES}; backlog: {total_jobs} jobs, {total_bytes / 1e6:.0f} MB "
          f"({', '.join(f'{n} x {s // 1024} KiB' for n, s in MIX)}); on disk under {WORK}", flush=True)
    for n in (1, 2, 3):
        seq = 0
        for count, size in MIX:
            for _ in range(count):
                status, _ = api("PUT", f"/v1/objects/n{n}/{seq}", bodies[size])
                assert status == 202, status
                seq += 1
        procs = [worker(i, n) for i in range(n)]
        t0 = time.time()
        assert wait_drained(), "the backlog did not drain"
        drain = time.time() - t0
        failed = [j for j in jobs("failed") if j["object"].startswith(f"n{n}/")]
        # Claim latency: jobs arriving one at a time at idle workers.
        lat = []
        for k in range(10 if QUICK else 30):
            status, j = api("PUT", f"/v1/objects/lat{n}/{k}", bodies[4096])
            jid = j["id"]
            while True:
                _, j = api("GET", f"/v1/jobs/{jid}")
                if j["started_at"]:
                    lat.append(j["started_at"] - j["created_at"])
                    break
                time.sleep(0.01)
            while j["state"] not in ("succeeded", "failed"):
                time.sleep(0.01)
                _, j = api("GET", f"/v1/jobs/{jid}")
            time.sleep(0.05)
        stop(procs)
        lat.sort()
        r = {"workers": n, "drain_s": drain, "jobs_per_s": total_jobs / drain, "mb_per_s": total_bytes / 1e6 / drain,
             "claim_p50_ms": statistics.median(lat), "claim_p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))],
             "failed": len(failed)}
        results.append(r)
        print(f"  {n} worker(s): backlog drained in {drain:.1f} s = {r['jobs_per_s']:.1f} jobs/s, "
              f"{r['mb_per_s']:.0f} MB/s; claim latency P50 {r['claim_p50_ms']:.0f} ms, "
              f"P99 {r['claim_p99_ms']:.0f} ms; failed {len(failed)}", flush=True)

    # Takeover: a worker killed in the middle of a large job (tried again
    # if the job finished before the kill landed).
    procs = [worker(i, 2) for i in range(2)]
    big = body_of(512 * MIB if not QUICK else 64 * MIB, 7)
    takeover = None
    for attempt in range(3):
        status, j = api("PUT", f"/v1/objects/takeover/big{attempt}", big)
        jid = j["id"]
        while api("GET", f"/v1/jobs/{jid}")[1]["state"] != "running":
            time.sleep(0.005)
        victim = None
        while victim is None:
            for i, p in enumerate(procs):
                if p.poll() is None and jid in open(os.path.join(WORK, f"worker-2-{i}.log")).read():
                    victim = p
            time.sleep(0.005)
        victim.kill()
        killed = time.time()
        while True:
            _, j = api("GET", f"/v1/jobs/{jid}")
            if j["attempts"] >= 2 and j["state"] in ("running", "succeeded"):
                takeover = time.time() - killed
                break
            if j["state"] == "succeeded":
                break  # done before the kill: try again
            time.sleep(0.02)
        while j["state"] not in ("succeeded", "failed"):
            time.sleep(0.05)
            _, j = api("GET", f"/v1/jobs/{jid}")
        if takeover is not None:
            break
        procs = [p for p in procs if p is not victim] + [worker(len(procs) + attempt, 2)]
    stop([p for p in procs if p.poll() is None])
    if takeover is None:
        print("  takeover: the job always finished before the kill landed", flush=True)
    else:
        print(f"  takeover: a worker SIGKILLed mid-job; another ran the job after {takeover:.1f} s "
              f"(lease {LEASE} s); job {j['state']} after {j['attempts']} attempts", flush=True)
    base = results[0]
    for r in results[1:]:
        print(f"  {r['workers']} workers vs 1: {r['jobs_per_s'] / base['jobs_per_s']:.2f}x jobs/s, "
              f"{r['mb_per_s'] / base['mb_per_s']:.2f}x MB/s", flush=True)
finally:
    API.terminate()
    API.wait(timeout=60)
