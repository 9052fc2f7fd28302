// The sluice dashboard. Plain DOM, no framework, no build step. Every
// request goes to this origin with the session cookie; requests that change
// state carry X-Sluice-CSRF. Text from the server is only ever set with
// textContent (never parsed as HTML).
"use strict";

const CSRF = { "X-Sluice-CSRF": "1" };
const state = { who: null, page: null, timers: [], streams: new Map(), samples: [] };

// ---- small helpers

function $(id) { return document.getElementById(id); }

/** Builds an element: h("td", {class: "num"}, "text", child…). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0; let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)) + " " + units[i];
}

function when(ms) {
  if (!ms) return "–";
  const d = new Date(ms);
  return d.toLocaleString();
}

function shortId(id) { return id.length > 12 ? "…" + id.slice(-10) : id; }

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && problem.detail) || ("HTTP " + status));
    this.status = status; this.code = problem && problem.code;
  }
}

/** fetch with the cookie; JSON in and out; problems become ApiError. */
async function api(method, path, body) {
  const opts = { method, credentials: "same-origin", headers: {} };
  if (method !== "GET" && method !== "HEAD") Object.assign(opts.headers, CSRF);
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const resp = await fetch(path, opts);
  if (resp.status === 204) return null;
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!resp.ok) {
    if (resp.status === 401 && path !== "/ui/session") signedOut();
    throw new ApiError(resp.status, data);
  }
  return data;
}

function say(id, text, isError) {
  const el = $(id);
  el.textContent = text || "";
  el.classList.toggle("error", !!isError);
}

function every(ms, fn) {
  fn();
  state.timers.push(setInterval(fn, ms));
}

function stopPage() {
  state.timers.forEach(clearInterval);
  state.timers = [];
  for (const s of state.streams.values()) s.close();
  state.streams.clear();
}

// ---- session and routing

async function start() {
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("jobs-state").addEventListener("change", () => { location.hash = "#/jobs" + ($("jobs-state").value ? "?state=" + $("jobs-state").value : ""); });
  $("objects-filter").addEventListener("submit", (e) => { e.preventDefault(); loadObjects(true); });
  $("upload-form").addEventListener("submit", upload);
  $("tenant-form").addEventListener("submit", createTenant);
  $("token-form").addEventListener("submit", createToken);
  $("objects-more").addEventListener("click", () => loadObjects(false));
  $("bucket-form").addEventListener("submit", createBucket);
  window.addEventListener("hashchange", route);
  try {
    state.who = await api("GET", "/ui/session");
  } catch (_) {
    state.who = null;
  }
  route();
}

async function signIn(e) {
  e.preventDefault();
  say("signin-error", "");
  const token = $("token").value.trim();
  try {
    state.who = await api("POST", "/ui/session", { token });
    $("token").value = "";
    if (!location.hash || location.hash === "#/signin") location.hash = "#/overview";
    route();
  } catch (err) {
    say("signin-error", err.status === 401 ? "That token is not valid (unknown, revoked or expired)." : err.message, true);
  }
}

async function signOut() {
  try { await api("DELETE", "/ui/session"); } catch (_) { /* signed out anyway */ }
  signedOut();
}

function signedOut() {
  state.who = null;
  stopPage();
  route();
}

function route() {
  stopPage();
  const signedIn = !!state.who;
  $("nav").hidden = !signedIn;
  $("who").hidden = !signedIn;
  let [page, query] = (location.hash.replace(/^#\//, "") || "overview").split("?");
  if (!signedIn) page = "signin";
  else if (!["overview", "jobs", "objects", "buckets", "admin"].includes(page)) page = "overview";
  if (page === "admin" && state.who.scope !== "admin") page = "overview";
  if (signedIn) {
    $("who-name").textContent = state.who.tenant + " (" + state.who.scope + ")";
    $("nav-admin").hidden = state.who.scope !== "admin";
  }
  for (const sec of document.querySelectorAll(".page")) sec.hidden = sec.id !== "page-" + page;
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.page === page) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  if (state.page !== page) { state.page = page; $("main").focus({ preventScroll: true }); }
  const params = new URLSearchParams(query || "");
  if (page === "signin") $("token").focus();
  if (page === "overview") every(2000, loadOverview);
  if (page === "jobs") { $("jobs-state").value = params.get("state") || ""; every(2000, loadJobs); }
  if (page === "objects") { if (params.has("prefix")) $("objects-prefix").value = params.get("prefix"); loadObjects(true); }
  if (page === "buckets") loadBuckets();
  if (page === "admin") loadTenants();
  document.title = "sluice · " + page;
}

// ---- overview

function stat(label, value, bad) {
  return h("div", { class: "card stat" + (bad ? " bad" : "") }, h("div", { class: "label" }, label), h("div", { class: "value" }, value));
}

function drawChart(svg, values) {
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const axis = document.createElementNS(ns, "line");
  axis.setAttribute("class", "axis"); axis.setAttribute("x1", 0); axis.setAttribute("x2", 300);
  axis.setAttribute("y1", 79); axis.setAttribute("y2", 79);
  svg.append(axis);
  if (values.length < 2) return;
  const max = Math.max(...values, 1e-9);
  const step = 300 / (150 - 1);
  const offset = 300 - step * (values.length - 1);
  const points = values.map((v, i) => (offset + i * step).toFixed(1) + "," + (78 - (v / max) * 74).toFixed(1));
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", points.join(" "));
  svg.append(line);
}

/** A job's state for deciding whether its row changed. */
function jobSig(j) {
  return [j.state, j.progress.bytes_in, j.progress.bytes_out, j.attempts, j.error || "", j.size || 0].join("|");
}

/** Keeps `container`'s children in step with `items` (keyed by job id):
 * unchanged rows stay as they are, changed ones are updated in place by
 * `update`, so focus (a keyboard user on a Cancel button) survives the
 * refresh. */
function syncRows(container, items, build, update, empty) {
  const old = new Map([...container.children].filter((c) => c.dataset.job).map((c) => [c.dataset.job, c]));
  const rows = items.map((j) => {
    let row = old.get(j.id);
    if (!row) row = build(j);
    else if (row.dataset.sig !== jobSig(j)) update(row, j);
    row.dataset.sig = jobSig(j);
    return row;
  });
  if (!rows.length) { container.replaceChildren(empty()); return; }
  // Reorder only when needed (moving a focused node would blur it).
  const same = rows.length === container.children.length && rows.every((r, i) => container.children[i] === r);
  if (!same) container.replaceChildren(...rows);
}

function progressParts(j) {
  const total = j.size || null;
  const bar = total ? h("progress", { max: total, value: Math.min(j.progress.bytes_in, total), "aria-label": "progress of " + j.object }) : null;
  return [bar, " " + bytes(j.progress.bytes_in) + (total ? " of " + bytes(total) : "")];
}

function jobRowParts(j) {
  return [
    h("span", { class: "grow" }, h("strong", {}, j.object), " ", h("span", { class: "hint" }, j.kind + " · " + shortId(j.id))),
    h("span", { class: "num progress-cell" }, progressParts(j)),
    h("span", { class: "state state-" + j.state }, j.state),
    j.error ? h("span", { class: "grow error" }, (j.error_code ? j.error_code + ": " : "") + j.error) : null,
  ];
}

function jobRow(j, withActions) {
  const row = h("div", { class: "row", "data-job": j.id, "data-state": j.state }, jobRowParts(j));
  if (withActions) row.append(actionsFor(j));
  row.dataset.actions = withActions ? "1" : "";
  return row;
}

function updateJobRow(row, j) {
  if (row.dataset.state !== j.state) {
    row.replaceChildren(...jobRowParts(j).filter(Boolean));
    if (row.dataset.actions) row.append(actionsFor(j));
    row.dataset.state = j.state;
  } else {
    row.querySelector(".progress-cell").replaceChildren(...progressParts(j).filter(Boolean));
  }
}

async function loadOverview() {
  try {
    const [ov, running, failed] = await Promise.all([
      api("GET", "/v1/overview"),
      api("GET", "/v1/jobs?state=running&limit=20"),
      api("GET", "/v1/jobs?state=failed&limit=5"),
    ]);
    const j = ov.jobs;
    const ratio = ov.objects.original_bytes > 0 ? (100 * ov.objects.stored_bytes / ov.objects.original_bytes).toFixed(1) + " %" : "–";
    $("ov-cards").replaceChildren(
      stat("Queued", j.queued), stat("Running", j.running), stat("Succeeded", j.succeeded),
      stat("Failed", j.failed, j.failed > 0), stat("Objects", ov.objects.count),
      stat("Stored", bytes(ov.objects.stored_bytes)), stat("Stored / original", ratio));
    const now = ov.now_ms;
    const last = state.samples[state.samples.length - 1];
    const rate = last && now > last.t ? Math.max(0, ov.processed.bytes_in - last.bytes) / ((now - last.t) / 1000) / 1e6 : 0;
    state.samples.push({ t: now, bytes: ov.processed.bytes_in, queued: j.queued, rate });
    if (state.samples.length > 150) state.samples.shift();
    drawChart($("chart-throughput"), state.samples.map((s) => s.rate));
    drawChart($("chart-queue"), state.samples.map((s) => s.queued));
    $("now-throughput").textContent = rate.toFixed(2) + " MB/s now";
    $("now-queue").textContent = j.queued + " queued now";
    syncRows($("ov-running"), running.jobs, (x) => jobRow(x, true), updateJobRow, () => h("p", { class: "hint" }, "Nothing running."));
    syncRows($("ov-failures"), failed.jobs, (x) => jobRow(x, false), updateJobRow, () => h("p", { class: "hint" }, "No failures."));
    const n = ov.node;
    $("ov-node").replaceChildren(
      stat("CPU pool busy", n.cpu_pool.busy + " / " + n.cpu_pool.threads),
      stat("CPU pool queued", n.cpu_pool.queued),
      stat("Runtime workers", n.runtime.workers),
      stat("Runtime tasks", n.runtime.alive_tasks),
      stat("Requests in flight", n.requests_in_flight),
      stat("Jobs running here", n.jobs_running + " / " + n.job_slots),
      stat("Storage", n.storage, n.storage !== "closed"));
  } catch (err) {
    if (err.status !== 401) $("now-queue").textContent = "update failed: " + err.message;
  }
}

// ---- jobs

function actionsFor(j) {
  const box = h("span", { class: "actions" });
  if (j.state === "queued" || j.state === "running") {
    box.append(h("button", { type: "button", class: "danger", "aria-label": "cancel job " + j.id, onclick: () => cancelJob(j.id) }, "Cancel"));
  }
  if ((j.state === "failed" || j.state === "cancelled") && j.kind === "verify") {
    box.append(h("button", { type: "button", class: "secondary", "aria-label": "retry job " + j.id, onclick: () => retryJob(j.id) }, "Retry"));
  }
  return box;
}

async function cancelJob(id) {
  try {
    await api("DELETE", "/v1/jobs/" + encodeURIComponent(id));
    say("jobs-msg", "Cancelled " + id + ".");
  } catch (err) { say("jobs-msg", "Cancel failed: " + err.message, true); }
  if (state.page === "jobs") loadJobs(); else loadOverview();
}

async function retryJob(id) {
  try {
    const j = await api("POST", "/v1/jobs/" + encodeURIComponent(id) + "/retry");
    say("jobs-msg", "Retrying as job " + j.id + ".");
  } catch (err) { say("jobs-msg", "Retry failed: " + err.message, true); }
  loadJobs();
}

function jobCells(j) {
  return [
    h("td", { class: "num", title: j.id }, shortId(j.id)),
    h("td", { class: "key" }, j.object),
    h("td", {}, j.kind),
    h("td", { class: "state state-" + j.state }, j.state),
    h("td", { class: "num progress-cell" }, progressParts(j)),
    h("td", { class: "num" }, j.attempts + " / " + j.max_attempts),
    h("td", { class: "err" }, j.error ? (j.error_code ? j.error_code + ": " : "") + j.error : ""),
  ];
}

function jobTableRow(j) {
  return h("tr", { "data-job": j.id, "data-state": j.state }, jobCells(j), h("td", {}, actionsFor(j)));
}

/** Updates a table row in place; its actions cell is rebuilt only when
 * the state changed (the buttons then differ anyway). */
function updateJobTableRow(tr, j) {
  const cells = jobCells(j);
  for (let i = 0; i < cells.length; i++) tr.cells[i].replaceWith(cells[i]);
  if (tr.dataset.state !== j.state) {
    tr.cells[cells.length].replaceChildren(actionsFor(j));
    tr.dataset.state = j.state;
  }
}

/** Follows a running job's server-sent events (a few at once: browsers
 * allow six connections per host, the page needs the rest). */
function follow(job, onUpdate) {
  if (state.streams.has(job.id) || state.streams.size >= 3) return;
  const es = new EventSource("/v1/jobs/" + encodeURIComponent(job.id) + "/events");
  state.streams.set(job.id, es);
  const update = (ev) => { try { onUpdate(JSON.parse(ev.data)); } catch (_) { /* ignore a bad event */ } };
  es.addEventListener("progress", update);
  es.addEventListener("state", (ev) => {
    update(ev);
    const j = JSON.parse(ev.data);
    if (["succeeded", "failed", "cancelled"].includes(j.state)) { es.close(); state.streams.delete(job.id); }
  });
  es.onerror = () => { es.close(); state.streams.delete(job.id); };
}

async function loadJobs() {
  const s = $("jobs-state").value;
  try {
    const data = await api("GET", "/v1/jobs?limit=100" + (s ? "&state=" + encodeURIComponent(s) : ""));
    if ($("jobs-state").value !== s) return; // the filter changed meanwhile
    const tbody = $("jobs-table").tBodies[0];
    syncRows(tbody, data.jobs, jobTableRow, updateJobTableRow,
      () => h("tr", {}, h("td", { colspan: 8, class: "hint" }, "No jobs.")));
    for (const j of data.jobs) {
      if (j.state !== "running") continue;
      follow(j, (now) => {
        const tr = tbody.querySelector('tr[data-job="' + CSS.escape(now.id) + '"]');
        if (tr && tr.dataset.sig !== jobSig(now)) { updateJobTableRow(tr, now); tr.dataset.sig = jobSig(now); }
      });
    }
  } catch (err) { if (err.status !== 401) say("jobs-msg", err.message, true); }
}

// ---- objects

let objectsCursor = null;

async function loadObjects(fresh) {
  const prefix = $("objects-prefix").value;
  if (fresh) objectsCursor = null;
  try {
    let q = "/v1/objects?limit=100&prefix=" + encodeURIComponent(prefix);
    if (objectsCursor) q += "&cursor=" + encodeURIComponent(objectsCursor);
    const data = await api("GET", q);
    const tbody = $("objects-table").tBodies[0];
    const rows = data.objects.map(objectRow);
    if (fresh) tbody.replaceChildren(...rows); else tbody.append(...rows);
    if (fresh && !rows.length) tbody.append(h("tr", {}, h("td", { colspan: 7, class: "hint" }, "No objects" + (prefix ? " under this prefix." : "."))));
    objectsCursor = data.next_cursor || null;
    $("objects-more").hidden = !objectsCursor;
  } catch (err) { if (err.status !== 401) say("objects-msg", err.message, true); }
}

function objectPath(key) { return "/v1/objects/" + key.split("/").map(encodeURIComponent).join("/"); }

function objectRow(o) {
  const ratio = o.size > 0 ? (100 * o.stored_size / o.size).toFixed(1) + " %" : "–";
  const name = o.key.split("/").pop() || "object";
  return h("tr", { "data-key": o.key },
    h("td", { class: "key" }, o.key),
    h("td", { class: "num" }, bytes(o.size)),
    h("td", { class: "num" }, bytes(o.stored_size)),
    h("td", { class: "num" }, ratio),
    h("td", {}, o.pipeline),
    h("td", { class: "num" }, when(o.created_at)),
    h("td", {}, h("span", { class: "actions" },
      h("a", { href: objectPath(o.key) + "/content", download: name, "aria-label": "download content of " + o.key }, "Content"),
      h("a", { href: objectPath(o.key), download: name + ".sluice", "aria-label": "download container of " + o.key }, "Container"),
      h("button", { type: "button", class: "secondary", "aria-label": "verify " + o.key, onclick: () => verifyObject(o.key) }, "Verify"))));
}

// ---- buckets

async function loadBuckets() {
  try {
    const [data, pipes] = await Promise.all([api("GET", "/v1/buckets"), api("GET", "/v1/pipelines")]);
    const names = pipes.pipelines.map((p) => p.name);
    const tbody = $("buckets-table").tBodies[0];
    tbody.replaceChildren(...data.buckets.map((b) => bucketRow(b, names)));
    if (!data.buckets.length) tbody.append(h("tr", {}, h("td", { colspan: 4, class: "hint" }, "No buckets.")));
  } catch (err) { if (err.status !== 401) say("buckets-msg", err.message, true); }
}

function bucketRow(b, pipelines) {
  const current = b.pipeline || "default";
  const select = h("select", { "aria-label": "pipeline of bucket " + b.name },
    ...pipelines.map((p) => h("option", { value: p, selected: p === current }, p)));
  select.addEventListener("change", () => setBucketPipeline(b.name, select.value));
  const path = "/v1/buckets/" + encodeURIComponent(b.name);
  return h("tr", { "data-bucket": b.name },
    h("td", { class: "key" }, b.name),
    h("td", {}, select),
    h("td", { class: "num" }, when(b.created_at)),
    h("td", {}, h("span", { class: "actions" },
      h("a", { href: "#/objects?prefix=" + encodeURIComponent(b.name + "/") }, "Objects"),
      h("button", { type: "button", class: "secondary", "aria-label": "delete bucket " + b.name, onclick: () => deleteBucket(path, b.name) }, "Delete"))));
}

async function setBucketPipeline(name, pipeline) {
  try {
    const b = await api("PUT", "/v1/buckets/" + encodeURIComponent(name), { pipeline: pipeline === "default" ? null : pipeline });
    say("buckets-msg", name + ": new objects go through " + (b.pipeline || "default") + ".");
  } catch (err) { say("buckets-msg", name + ": " + err.message, true); loadBuckets(); }
}

async function createBucket(e) {
  e.preventDefault();
  const name = $("bucket-name").value.trim();
  try {
    await api("PUT", "/v1/buckets/" + encodeURIComponent(name));
    $("bucket-name").value = "";
    say("buckets-msg", "Bucket " + name + " created.");
    loadBuckets();
  } catch (err) { say("buckets-msg", name + ": " + err.message, true); }
}

async function deleteBucket(path, name) {
  try {
    await api("DELETE", path);
    say("buckets-msg", "Bucket " + name + " deleted.");
    loadBuckets();
  } catch (err) { say("buckets-msg", name + ": " + err.message, true); }
}

async function verifyObject(key) {
  try {
    const j = await api("POST", objectPath(key) + "/verify");
    say("objects-msg", "Verifying " + key + " (job " + shortId(j.id) + ")…");
    follow(j, (now) => {
      if (now.state === "succeeded") say("objects-msg", key + ": verified, intact.");
      else if (now.state === "failed") say("objects-msg", key + ": verification failed: " + now.error, true);
    });
  } catch (err) { say("objects-msg", "Verify failed: " + err.message, true); }
}

/** Uploads with XMLHttpRequest (fetch has no upload progress), then
 * follows the job until it is stored. */
function upload(e) {
  e.preventDefault();
  const file = $("upload-file").files[0];
  if (!file) return;
  const key = ($("upload-key").value.trim() || file.name).replace(/^\/+/, "");
  const bar = $("upload-progress");
  const text = $("upload-text");
  const button = $("upload-button");
  bar.hidden = false; bar.max = file.size || 1; bar.value = 0;
  button.disabled = true;
  text.className = ""; text.textContent = "Uploading " + key + "…";
  const xhr = new XMLHttpRequest();
  xhr.open("PUT", objectPath(key));
  xhr.setRequestHeader("X-Sluice-CSRF", "1");
  xhr.upload.onprogress = (ev) => {
    if (ev.lengthComputable) { bar.max = ev.total; bar.value = ev.loaded; text.textContent = "Uploading " + key + ": " + bytes(ev.loaded) + " of " + bytes(ev.total); }
  };
  xhr.onerror = () => { button.disabled = false; text.className = "error"; text.textContent = "Upload failed: the connection broke."; };
  xhr.onload = () => {
    button.disabled = false;
    let body = null;
    try { body = JSON.parse(xhr.responseText); } catch (_) { body = null; }
    if (xhr.status !== 201 && xhr.status !== 202) {
      text.className = "error";
      text.textContent = "Upload refused: " + ((body && body.detail) || ("HTTP " + xhr.status));
      return;
    }
    const job = body;
    text.textContent = key + ": job " + shortId(job.id) + " " + job.state;
    text.dataset.job = job.id;
    const done = (j) => {
      text.textContent = key + ": job " + shortId(j.id) + " " + j.state + (j.error ? " (" + j.error + ")" : "");
      text.className = j.state === "failed" ? "error" : "";
      text.dataset.state = j.state;
      if (j.state === "succeeded") loadObjects(true);
    };
    if (["succeeded", "failed", "cancelled"].includes(job.state)) done(job); else follow(job, done);
  };
  xhr.send(file);
}

// ---- admin

async function loadTenants() {
  try {
    const data = await api("GET", "/v1/admin/tenants");
    const tbody = $("tenants-table").tBodies[0];
    tbody.replaceChildren(...data.tenants.map(tenantRow));
  } catch (err) { if (err.status !== 401) say("admin-msg", err.message, true); }
}

function limitInput(name, value, tenant) {
  return h("input", { type: "number", min: 0, step: "any", name, value: value === null ? "" : value, placeholder: "default", "aria-label": name + " of " + tenant });
}

function tenantRow(t) {
  const l = t.limits;
  const tr = h("tr", { "data-tenant": t.name },
    h("td", { class: "key" }, t.name),
    h("td", {}, limitInput("rate_per_sec", l.rate_per_sec, t.name)),
    h("td", {}, limitInput("burst", l.burst, t.name)),
    h("td", {}, limitInput("quota_bytes", l.quota_bytes, t.name)),
    h("td", {}, limitInput("max_queued", l.max_queued, t.name)),
    h("td", {}, h("span", { class: "actions" },
      h("button", { type: "button", class: "secondary", onclick: () => saveLimits(t.name, tr) }, "Save"),
      h("button", { type: "button", class: "secondary", onclick: () => showTokens(t.name) }, "Tokens"))));
  return tr;
}

async function saveLimits(name, tr) {
  const body = {};
  for (const input of tr.querySelectorAll("input")) {
    body[input.name] = input.value === "" ? null : Number(input.value);
  }
  try {
    await api("PUT", "/v1/admin/tenants/" + encodeURIComponent(name) + "/limits", body);
    say("admin-msg", "Limits of " + name + " saved.");
  } catch (err) { say("admin-msg", "Saving failed: " + err.message, true); }
}

async function createTenant(e) {
  e.preventDefault();
  const name = $("tenant-name").value.trim();
  try {
    await api("POST", "/v1/admin/tenants", { name });
    $("tenant-name").value = "";
    say("admin-msg", "Tenant " + name + " created.");
    loadTenants();
  } catch (err) { say("admin-msg", "Creating failed: " + err.message, true); }
}

let tokensTenant = null;

async function showTokens(name) {
  tokensTenant = name;
  $("tokens").hidden = false;
  $("new-token").hidden = true;
  $("tokens-tenant").textContent = name;
  try {
    const data = await api("GET", "/v1/admin/tenants/" + encodeURIComponent(name) + "/tokens");
    $("tokens-table").tBodies[0].replaceChildren(...data.tokens.map((t) => h("tr", {},
      h("td", { class: "num" }, t.id), h("td", {}, t.scope), h("td", { class: "num" }, when(t.created_at)),
      h("td", { class: "num" }, t.revoked_at ? when(t.revoked_at) : "–"),
      h("td", {}, t.revoked_at ? null : h("button", { type: "button", class: "danger", "aria-label": "revoke token " + t.id, onclick: () => revokeToken(t.id) }, "Revoke")))));
  } catch (err) { say("admin-msg", err.message, true); }
}

async function createToken(e) {
  e.preventDefault();
  if (!tokensTenant) return;
  try {
    const t = await api("POST", "/v1/admin/tenants/" + encodeURIComponent(tokensTenant) + "/tokens", { scope: $("token-scope").value });
    await showTokens(tokensTenant);
    $("new-token").hidden = false;
    $("new-token-value").value = t.token;
    $("new-token-value").select();
  } catch (err) { say("admin-msg", "Creating the token failed: " + err.message, true); }
}

async function revokeToken(id) {
  if (!window.confirm("Revoke token " + id + "? Running servers refuse it within a second.")) return;
  try {
    await api("DELETE", "/v1/admin/tokens/" + encodeURIComponent(id));
    say("admin-msg", "Token " + id + " revoked.");
    showTokens(tokensTenant);
  } catch (err) { say("admin-msg", "Revoking failed: " + err.message, true); }
}

document.addEventListener("DOMContentLoaded", start);
