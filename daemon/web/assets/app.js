// app.js: the status page's entry. Login, the refresh loop (every 2 s), the overview, and
// the navigation between the status page and a key's view (#key/<id>).

import * as api from "./api.js";
import { drawLines } from "./chart.js";
import { duration, fill, num } from "./format.js";
import { refreshGroups, refreshFailing, setupFailing } from "./panels.js";
import { refreshBans, setupBans, startEvents, stopEvents } from "./bans.js";
import { refreshKeyView } from "./key_view.js";

const $ = (id) => document.getElementById(id);

const REFRESH_MS = 2000;
const RECORDS_EVERY_MS = 10000;  // between two reads of the whole key list
const HISTORY_S = 600;    // the lines chart's span: 10 minutes

// What the panels share: the groups and keys last read, and which optional endpoints this
// tallyd has (null: not asked yet).
export const state = {
  groups: [],
  groupsById: new Map(),
  keys: null,
  keysById: new Map(),
  keysReadAt: 0,
  windows: null,  // GET /admin/apikey-stats/summary?since= (issue #15)
  top: null,      // GET /admin/apikey-stats/top
  tick: 0,
};

let timer = null;
let running = false;
let busy = false;
const samples = [];  // [{t, values: {series: value}}] from /metrics, the last 10 minutes

// ---- login ----------------------------------------------------------------------------

function showLogin(message) {
  stop();
  $("dashboard").hidden = true;
  $("key-view").hidden = true;
  $("nav").hidden = true;
  $("session").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("token").value = "";
  $("token").focus();
}

async function onLogin(event) {
  event.preventDefault();
  const candidate = $("token").value.trim();
  const button = $("login-submit");
  button.disabled = true;
  $("login-error").textContent = "";
  try {
    if (!(await api.tokenAccepted(candidate))) {
      $("login-error").textContent = "Wrong token: tallyd refused it (401).";
      $("token").select();
      return;
    }
    api.setToken(candidate);
    $("token").value = "";
    start();
  } catch (err) {
    $("login-error").textContent = `tallyd did not answer: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

function logout() {
  api.clearToken();
  showLogin("");
}

// ---- the loop -------------------------------------------------------------------------

function start() {
  $("login").hidden = true;
  $("nav").hidden = false;
  $("session").hidden = false;
  running = true;
  samples.length = 0;
  state.keys = null;
  state.tick = 0;
  route();
  startEvents(state);
  tick();
}

function stop() {
  running = false;
  clearTimeout(timer);
  stopEvents();
}

async function tick() {
  if (!running) {
    return;
  }
  if (!busy) {
    busy = true;
    try {
      await refresh();
    } catch (err) {
      if (!err.unauthorized) {
        $("ready").textContent = "unreachable";
        $("ready").className = "badge bad";
        $("updated").textContent = `Last attempt failed: ${err.message}`;
      }
    } finally {
      busy = false;
    }
    state.tick += 1;
  }
  if (running) {
    timer = setTimeout(tick, REFRESH_MS);
  }
}

async function refresh() {
  const keyId = keyRoute();
  if (keyId !== null) {
    // The overview keeps sampling /metrics, so the lines chart has no gap on return.
    await Promise.all([refreshKeyView(keyId, state, false), refreshOverview()]);
    return;
  }
  await Promise.all([refreshOverview(), refreshRecords()]);
}

// Groups, failing keys and bans: the key list is read every 10 s (it can be long); the rest
// at every refresh.
async function refreshRecords() {
  const readKeys = state.keys === null || Date.now() - state.keysReadAt >= RECORDS_EVERY_MS;
  await refreshGroups(state, readKeys);
  await Promise.all([refreshFailing(state), refreshBans(state)]);
}

// ---- overview -------------------------------------------------------------------------

async function refreshOverview() {
  const [summary, metricsText, ready] = await Promise.all([
    api.getJson("/admin/apikey-stats/summary"),
    api.request("/metrics", { auth: false }).then((r) => r.text()),
    readiness(),
  ]);
  const now = Date.now() / 1000;
  fill($("total"), num(summary.total_requests));
  fill($("success"), num(summary.success_requests));
  fill($("failure"), num(summary.failure_requests));
  fill($("success-rate"), num(summary.success_rate, "rate"));
  fill($("failure-rate"), num(summary.failure_rate, "rate"));
  $("failure-rate").className = summary.failure_rate > 0.05 ? "bad" : "";

  const m = api.parseMetrics(metricsText);
  fill($("epoch"), num(m.tallyd_flush_epoch));
  const last = m.tallyd_last_flush_timestamp_seconds;
  $("flush-age").textContent = last > 0 ? `${duration(now - last)} ago` : "not yet";
  $("flush-age").title = last > 0 ? new Date(last * 1000).toISOString() : "";
  fill($("disk"), num(m.tallyd_db_size_bytes, "bytes"));
  $("readiness").textContent = ready.ok ? "ready" : `not ready: ${ready.reason}`;
  $("readiness").className = ready.ok ? "good" : "bad";
  $("ready").textContent = ready.ok ? "ready" : "not ready";
  $("ready").className = ready.ok ? "badge" : "badge bad";
  $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;

  samples.push({ t: now, values: m });
  while (samples.length > 0 && samples[0].t < now - HISTORY_S - 5) {
    samples.shift();
  }
  drawLinesChart(now);
}

async function readiness() {
  const res = await fetch("/readyz", { cache: "no-store", credentials: "omit" });
  if (res.ok) {
    return { ok: true };
  }
  let reason = `${res.status}`;
  try {
    reason = (await res.json()).error || reason;
  } catch {
    // keep the status
  }
  return { ok: false, reason };
}

// Lines per second by transport and result, from the deltas of tallyd_lines_total between
// consecutive scrapes. A series is drawn once its counter is above 0.
function drawLinesChart(now) {
  const names = new Set();
  for (const s of samples) {
    for (const [name, v] of Object.entries(s.values)) {
      if (name.startsWith("tallyd_lines_total{") && v > 0) {
        names.add(name);
      }
    }
  }
  const series = [...names].sort().map((name) => {
    const labels = api.labelsOf(name);
    const points = [];
    for (let i = 1; i < samples.length; i += 1) {
      const a = samples[i - 1];
      const b = samples[i];
      const dv = (b.values[name] ?? 0) - (a.values[name] ?? 0);
      if (b.t > a.t && dv >= 0) {
        points.push([b.t, dv / (b.t - a.t)]);
      }
    }
    return { label: `${labels.transport} ${labels.result}`, points, color: colorFor(labels) };
  });
  // The page's own history: from its first sample (at least 30 s), up to 10 minutes.
  const first = samples.length > 0 ? samples[0].t : now;
  drawLines($("lines-chart"), series, {
    from: Math.max(now - HISTORY_S, Math.min(first, now - 30)),
    to: now,
    legend: $("lines-legend"),
    empty: samples.length < 2 ? "collecting…" : "no lines yet",
    unit: "/s",
  });
}

// Stable colours: accepted lines in the transport's colour, the rest by result.
function colorFor({ transport, result }) {
  if (result === "accepted") {
    return { udp: 0, unix: 5, http: 3 }[transport] ?? 0;
  }
  return { malformed: 1, refused: 4, ignored: 2 }[result] ?? 1;
}

// ---- navigation ------------------------------------------------------------------------

// The key id of "#key/<id>", or null.
function keyRoute() {
  const m = /^#key\/([1-9][0-9]{0,18})$/.exec(location.hash);
  return m ? m[1] : null;
}

function route() {
  if (!running) {
    return;
  }
  const keyId = keyRoute();
  $("dashboard").hidden = keyId !== null;
  $("key-view").hidden = keyId === null;
  if (keyId !== null) {
    $("key-title").textContent = `Key ${keyId}`;
    fill($("key-record"));
    $("key-error").textContent = "";
    refreshKeyView(keyId, state, true).catch(() => {});
    $("key-title").focus();
    window.scrollTo(0, 0);
  } else if (location.hash.length > 1) {
    const target = document.getElementById(location.hash.slice(1));
    if (target) {
      target.scrollIntoView();
    }
  }
}

// ---- start ------------------------------------------------------------------------------

api.onUnauthorized(() => {
  api.clearToken();
  showLogin("tallyd refused the token (401): log in again.");
});

$("login-form").addEventListener("submit", onLogin);
$("logout").addEventListener("click", logout);
window.addEventListener("hashchange", () => {
  route();
  if (running && keyRoute() === null && !busy) {
    refresh().catch(() => {});
  }
});
setupFailing(state);
setupBans(state);
if (api.token() !== null) {
  start();
} else {
  showLogin("");
}
