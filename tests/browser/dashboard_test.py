#!/usr/bin/env python3
"""The web dashboard, end to end, in headless Chromium (scripts/browser_test.sh).

    dashboard_test.py SLUICE_BINARY SCREENSHOT_DIR

Starts `sluice serve` on 127.0.0.1 with a fresh data directory, then, in
the browser: a wrong token is refused; signing in works; a 20 MiB file is
uploaded from the Objects page and its job reaches `succeeded` on the page
without a reload; its content is downloaded from the page and compared; a
running job is cancelled from the Jobs page; the Admin page creates a token
that works. Screenshots of each page (1280x800, and the overview at phone
width) are saved. Exits non-zero on the first failed check.
"""
import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../scripts"))
from sluice_local import free_port, request, wait_healthy  # noqa: E402
import sluice_local  # noqa: E402

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

BIN, SHOTS = sys.argv[1], sys.argv[2]
WORK = tempfile.mkdtemp(prefix="sluice-browser-")
DATA = os.path.join(WORK, "data")
DOWNLOADS = os.path.join(WORK, "downloads")
os.makedirs(DOWNLOADS)


def step(what):
    print(f"-- {what}", flush=True)


def admin(*args):
    return sluice_local.admin(BIN, "--data-dir", DATA, *args)


admin("tenant", "create", "web")
TOKEN = admin("token", "create", "--tenant", "web", "--scope", "admin")
PORT = free_port()
BASE = f"http://127.0.0.1:{PORT}"
log = open(os.path.join(WORK, "server.log"), "w")
server = subprocess.Popen([BIN, "serve", "--data-dir", DATA, "--listen", f"127.0.0.1:{PORT}",
                           "--default-rate", "0", "--idle-body-timeout-secs", "120"], stderr=log)


def api(method, path, body=None, token=TOKEN):
    return request(BASE + path, token, method, body, timeout=60)


wait_healthy(BASE, server)

options = webdriver.ChromeOptions()
options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--window-size=1280,800", f"--user-data-dir={os.path.join(WORK, 'profile')}"]:
    options.add_argument(arg)
options.add_experimental_option("prefs", {"download.default_directory": DOWNLOADS,
                                          "download.prompt_for_download": False})
driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
driver.set_window_size(1280, 800)
# Live pages update rows in place; an element may still be replaced
# between finding and using it, so waits retry on stale references.
wait = WebDriverWait(driver, 60, ignored_exceptions=[StaleElementReferenceException])
failures = 0


def shot(name):
    driver.save_screenshot(os.path.join(SHOTS, name + ".png"))


def visible(element_id):
    return wait.until(EC.visibility_of_element_located((By.ID, element_id)))


def click(css):
    """Clicks the element `css` names once it is clickable (found again if
    a live update replaced it meanwhile)."""
    for _ in range(20):
        try:
            wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, css))).click()
            return
        except StaleElementReferenceException:
            time.sleep(0.1)
    raise AssertionError(f"{css} kept being replaced")


def text_of(element_id):
    return driver.find_element(By.ID, element_id).text


try:
    step("a wrong token is refused")
    driver.get(BASE + "/")
    visible("page-signin")
    shot("0-sign-in")
    driver.find_element(By.ID, "token").send_keys("sluice_" + "0" * 64)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button[type=submit]").click()
    wait.until(lambda d: "not valid" in text_of("signin-error"))
    assert driver.find_element(By.ID, "page-signin").is_displayed()
    assert not driver.find_element(By.ID, "nav").is_displayed()
    shot("0-sign-in-refused")

    step("sign in with the token; it lives in an HttpOnly cookie")
    driver.find_element(By.ID, "token").clear()
    driver.find_element(By.ID, "token").send_keys(TOKEN)
    driver.find_element(By.ID, "token").submit()
    visible("page-overview")
    cookies = {c["name"]: c for c in driver.get_cookies()}
    assert cookies["sluice_session"]["httpOnly"] and cookies["sluice_session"]["sameSite"] == "Strict", cookies
    assert driver.execute_script("return document.cookie") == "", "page scripts cannot read the session"

    step("upload 20 MiB from the page; the job reaches succeeded without a reload")
    src = os.path.join(WORK, "upload.bin")
    rnd = random.Random(7)
    with open(src, "wb") as f:
        for i in range(20):
            if i % 3 == 2:
                f.write(rnd.randbytes(1 << 20))
            else:
                f.write((f"line {i}: the quick brown fox jumps over the lazy dog\n" * 25000).encode()[: 1 << 20])
    want = hashlib.blake2b(open(src, "rb").read()).hexdigest()
    driver.find_element(By.CSS_SELECTOR, 'a[data-page="objects"]').click()
    visible("page-objects")
    driver.execute_script("window.__noReload = 42")
    driver.find_element(By.ID, "upload-file").send_keys(src)
    driver.find_element(By.ID, "upload-key").send_keys("browser/upload.bin")
    driver.find_element(By.ID, "upload-button").click()
    wait.until(lambda d: d.find_element(By.ID, "upload-text").get_attribute("data-state") == "succeeded")
    assert driver.execute_script("return window.__noReload") == 42, "the page was reloaded"
    assert "succeeded" in text_of("upload-text")
    row = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-key="browser/upload.bin"]')))
    assert "20.0 MiB" in row.text, row.text
    shot("2-objects")

    step("download the content from the page and compare")
    row.find_element(By.LINK_TEXT, "Content").click()
    target = os.path.join(DOWNLOADS, "upload.bin")
    deadline = time.time() + 60
    while time.time() < deadline and not (os.path.exists(target) and os.path.getsize(target) == 20 << 20):
        time.sleep(0.2)
    got = hashlib.blake2b(open(target, "rb").read()).hexdigest()
    assert got == want, "downloaded content differs from the upload"

    step("verify from the page")
    row.find_element(By.CSS_SELECTOR, "button").click()
    wait.until(lambda d: "verified, intact" in text_of("objects-msg"))

    step("buckets: create one, choose its pipeline, delete it")
    status, _ = api("PUT", "/v1/pipelines/fast", b'{"compress": "lz4"}')
    assert status == 200, status
    driver.find_element(By.CSS_SELECTOR, 'a[data-page="buckets"]').click()
    visible("page-buckets")
    driver.find_element(By.ID, "bucket-name").send_keys("browser-bucket")
    driver.find_element(By.CSS_SELECTOR, "#bucket-form button").click()
    brow = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-bucket="browser-bucket"]')))
    from selenium.webdriver.support.ui import Select
    Select(brow.find_element(By.TAG_NAME, "select")).select_by_value("fast")
    wait.until(lambda d: "go through fast" in text_of("buckets-msg"))
    status, b = api("GET", "/v1/buckets/browser-bucket")
    assert (status, json.loads(b)["pipeline"]) == (200, "fast"), (status, b)
    shot("2b-buckets")
    brow = driver.find_element(By.CSS_SELECTOR, 'tr[data-bucket="browser-bucket"]')
    brow.find_element(By.CSS_SELECTOR, "button").click()
    wait.until(lambda d: "deleted" in text_of("buckets-msg"))
    status, _ = api("GET", "/v1/buckets/browser-bucket")
    assert status == 404, status

    step("cancel a running job from the Jobs page")
    # An upload processed as it streams is a running job from its first
    # byte; this one sends 1 MiB of 64 and waits.
    sock = socket.create_connection(("127.0.0.1", PORT))
    sock.sendall((f"PUT /v1/objects/browser/slow.bin?wait=true HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Authorization: Bearer {TOKEN}\r\nContent-Length: {64 << 20}\r\n\r\n").encode())
    sock.sendall(b"x" * (1 << 20))
    running = None
    for _ in range(100):
        status, body = api("GET", "/v1/jobs?state=running")
        jobs = json.loads(body)["jobs"]
        if jobs:
            running = jobs[0]["id"]
            break
        time.sleep(0.1)
    assert running, "the slow upload never showed as running"
    driver.find_element(By.CSS_SELECTOR, 'a[data-page="jobs"]').click()
    visible("page-jobs")
    Select(driver.find_element(By.ID, "jobs-state")).select_by_visible_text("running")
    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, f'tr[data-job="{running}"] button.danger')))
    shot("3-jobs-running")
    click(f'tr[data-job="{running}"] button.danger')
    Select(driver.find_element(By.ID, "jobs-state")).select_by_visible_text("cancelled")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-job="{running}"] td.state-cancelled')))
    status, body = api("GET", f"/v1/jobs/{running}")
    assert json.loads(body)["state"] == "cancelled", body
    sock.close()
    Select(driver.find_element(By.ID, "jobs-state")).select_by_visible_text("all")
    time.sleep(2.5)
    shot("3-jobs")

    step("overview shows the jobs, the throughput and the node")
    driver.find_element(By.CSS_SELECTOR, 'a[data-page="overview"]').click()
    visible("page-overview")
    wait.until(lambda d: "Succeeded" in text_of("ov-cards"))
    time.sleep(4.5)  # a few samples for the charts
    assert "CPU pool busy" in text_of("ov-node")
    shot("1-overview")
    driver.set_window_size(390, 844)
    time.sleep(0.5)
    shot("1-overview-narrow")
    driver.set_window_size(1280, 800)

    step("admin: a token created on the page is shown once and works")
    driver.find_element(By.CSS_SELECTOR, 'a[data-page="admin"]').click()
    visible("page-admin")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, 'tr[data-tenant="web"]')))
    driver.find_element(By.CSS_SELECTOR, 'tr[data-tenant="web"]').find_element(By.XPATH, ".//button[text()='Tokens']").click()
    visible("tokens")
    Select(driver.find_element(By.ID, "token-scope")).select_by_visible_text("read")
    driver.find_element(By.CSS_SELECTOR, "#token-form button").click()
    visible("new-token")
    new_token = driver.find_element(By.ID, "new-token-value").get_attribute("value")
    assert new_token.startswith("sluice_"), new_token
    status, _ = api("GET", "/v1/objects", token=new_token)
    assert status == 200, status
    status, _ = api("DELETE", "/v1/objects/browser/upload.bin", token=new_token)
    assert status == 403, f"a read token deleted an object ({status})"
    shot("4-admin")

    step("keyboard: the navigation is reachable and marks the page")
    driver.find_element(By.CSS_SELECTOR, 'a[data-page="jobs"]').send_keys("\n")
    visible("page-jobs")
    current = driver.find_element(By.CSS_SELECTOR, '#nav a[aria-current="page"]')
    assert current.get_attribute("data-page") == "jobs"

    step("sign out: the API refuses the page again")
    driver.find_element(By.ID, "sign-out").click()
    visible("page-signin")
    assert "sluice_session" not in {c["name"] for c in driver.get_cookies()}
except (AssertionError, TimeoutException, StaleElementReferenceException) as e:
    failures += 1
    shot("failure")
    print(f"FAIL: {type(e).__name__}: {e}", flush=True)
    print("browser console:", driver.get_log("browser") if hasattr(driver, "get_log") else "", flush=True)
finally:
    driver.quit()
    server.terminate()
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()
    server_log = open(os.path.join(WORK, "server.log")).read()
    if "panicked" in server_log:
        failures += 1
        print("FAIL: the server panicked", flush=True)
    # The token never reaches the log (the cookie carries it on every request).
    if TOKEN in server_log:
        failures += 1
        print("FAIL: the token appears in the server log", flush=True)
    if failures:
        print(server_log[-4000:])
    shutil.rmtree(WORK, ignore_errors=True)

print("== dashboard: " + ("FAILED" if failures else "all browser checks passed"), flush=True)
sys.exit(1 if failures else 0)
