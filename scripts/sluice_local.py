"""Helpers for the Python scripts that drive a local sluice (bench/load.py,
bench/scale.py, tests/browser/dashboard_test.py): a free port on
127.0.0.1, `sluice admin`, and the HTTP API with a bearer token.
Standard library only, so any python3 (or venv) can import it."""

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def admin(binary, *args):
    """Runs `sluice admin ARGS` and returns its output; exits the script
    with the command's error if it fails."""
    r = subprocess.run([binary, "admin", *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"sluice admin {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout.strip()


def request(url, token, method="GET", body=None, timeout=600):
    """One HTTP request with `Authorization: Bearer TOKEN`: (status, body
    bytes), for error statuses too."""
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_healthy(base, process, timeout=30):
    """Waits until the server at `base` answers /healthz; exits the script
    if `process` ends first or it does not answer within `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited ({process.returncode}) before it answered {base}/healthz")
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"the server did not answer {base}/healthz within {timeout} s")
