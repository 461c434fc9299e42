// key_view.js: one key (#key/<id>): its record, without its secrets (api_key masked,
// access_token and refresh_token never shown), and a chart of its minute series over the last
// 24 hours (GET /admin/api-keys/{id}/stats?step=60, where this tallyd has time windows).

import * as api from "./api.js";
import { drawLines } from "./chart.js";
import { el, fill, localTime, maskKey, num } from "./format.js";

const $ = (id) => document.getElementById(id);

// The fields shown, in order: [name, label, kind]. Anything else of the record is not shown.
const FIELDS = [
  ["ID", "ID", "text"],
  ["group_id", "Group", "group"],
  ["api_key", "API key", "masked"],
  ["status", "Status", "text"],
  ["auto_ban", "Auto ban", "bool"],
  ["ban_reason", "Ban reason", "text"],
  ["ban_until", "Banned until", "time"],
  ["weight", "Weight", "text"],
  ["total_requests", "Requests", "count"],
  ["success_requests", "Successes", "count"],
  ["failure_requests", "Failures", "count"],
  ["success_rate", "Success rate", "rate"],
  ["failure_rate", "Failure rate", "rate"],
  ["account_id", "Account", "text"],
  ["project_id", "Project", "text"],
  ["expires_at", "Expires", "time"],
  ["CreatedAt", "Created", "time"],
  ["UpdatedAt", "Updated", "time"],
];

let seriesMissing = false;
let lastSeriesAt = 0;

// Reads the record every call and the series when `full` (or when not yet drawn).
export async function refreshKeyView(id, state, full) {
  let key;
  try {
    key = await api.getJson(`/admin/api-keys/${id}`);
  } catch (err) {
    $("key-error").textContent = err.status === 404 ? `No key ${id}.` : `Could not read key ${id}: ${err.message}`;
    fill($("key-record"));
    return;
  }
  $("key-error").textContent = "";
  renderRecord(key, state);
  if (full || Date.now() - lastSeriesAt > 10000) {
    await refreshSeries(id);
  }
}

function renderRecord(key, state) {
  const items = [];
  for (const [name, label, kind] of FIELDS) {
    if (!(name in key)) {
      continue;
    }
    const v = key[name];
    let value;
    if (kind === "masked") {
      value = maskKey(v);
    } else if (kind === "group") {
      const g = state.groupsById.get(v);
      value = v === 0 ? "(no group)" : g ? `${g.name} (#${v})` : `#${v}`;
    } else if (kind === "time") {
      value = v ? localTime(v) : "–";
    } else if (kind === "bool") {
      value = v ? "yes" : "no";
    } else if (kind === "count" || kind === "rate") {
      value = num(v, kind);
    } else {
      value = v === "" || v === null || v === undefined ? "–" : String(v);
    }
    items.push(el("dt", {}, label), el("dd", { "data-field": name }, value));
  }
  fill($("key-record"), items);
}

async function refreshSeries(id) {
  const canvas = $("key-chart");
  const now = api.nowSeconds();
  const from = now - 86400;
  if (seriesMissing) {
    return;
  }
  let body;
  try {
    body = await api.getJson(`/admin/api-keys/${id}/stats?${api.query({ since: from, step: 60 })}`);
  } catch (err) {
    if (err.missing) {
      seriesMissing = true;
      $("key-series-note").textContent = "Per-minute series: not available on this tallyd (no time windows).";
      drawLines(canvas, [], { from, to: now, empty: "not available" });
      return;
    }
    $("key-series-note").textContent = `Could not read the series: ${err.message}`;
    return;
  }
  lastSeriesAt = Date.now();
  const points = body.points ?? [];
  const success = points.map((p) => [seconds(p.t), p.success_requests]);
  const failure = points.map((p) => [seconds(p.t), p.failure_requests]);
  const total = points.reduce((a, p) => a + p.total_requests, 0);
  const failed = points.reduce((a, p) => a + p.failure_requests, 0);
  $("key-series-note").textContent = `${points.length} minutes; ${total} requests, ${failed} failures in the last 24 hours.`;
  drawLines(
    canvas,
    [
      { label: "successes / min", points: success, color: 2 },
      { label: "failures / min", points: failure, color: 1 },
    ],
    { from: seconds(body.since) ?? from, to: seconds(body.until) ?? now, legend: $("key-legend"), empty: "no requests in the last 24 hours" },
  );
}

// A time of the windows API (Unix seconds, or RFC 3339) as Unix seconds; null when absent.
function seconds(t) {
  if (t === undefined || t === null) {
    return null;
  }
  return typeof t === "number" ? t : Date.parse(t) / 1000;
}
