// panels.js: the provider groups (lifetime totals and rates, the last hour when this tallyd
// has time windows, key counts; sortable) and the failing keys (the top endpoint over the last
// 5 minutes and the last hour, or lifetime totals where the top endpoint is missing).

import * as api from "./api.js";
import { el, maskKey, num, renderTable } from "./format.js";

const $ = (id) => document.getElementById(id);

// ---- groups -----------------------------------------------------------------------------

// The most telling columns first: on a narrow screen the table scrolls sideways.
const GROUP_COLUMNS = [
  { key: "name", label: "Group", text: true },
  { key: "failure_rate", label: "Failure rate", rate: true },
  { key: "hour_failure_rate", label: "Failure rate (1 h)", rate: true, window: true },
  { key: "failure_requests", label: "Failures" },
  { key: "total_requests", label: "Requests" },
  { key: "hour_total", label: "Last hour", window: true },
  { key: "success_rate", label: "Success", rate: true },
  { key: "keys", label: "Keys" },
  { key: "status", label: "Status", text: true },
];

const groupSort = { key: "failure_rate", descending: true };

// Up to this many groups, their last hour is read at every refresh; past it, every 10 s.
const HOUR_EVERY_TICK_MAX_GROUPS = 20;

export async function refreshGroups(state, readKeys) {
  const groups = await api.listAll("/admin/provider-groups");
  state.groups = groups;
  state.groupsById = new Map(groups.map((g) => [g.ID, g]));
  if (readKeys) {
    state.keys = await api.listAll("/admin/api-keys");
    state.keysById = new Map(state.keys.map((k) => [k.ID, k]));
    state.keysReadAt = Date.now();
  }
  const keyCount = new Map();
  for (const k of state.keys ?? []) {
    keyCount.set(k.group_id, (keyCount.get(k.group_id) ?? 0) + 1);
  }

  const rows = groups.map((g) => ({ ...g, id: g.ID, keys: keyCount.get(g.ID) ?? 0 }));
  if (keyCount.get(0)) {
    const s = await api.getJson("/admin/apikey-stats/summary?group_id=0");
    rows.push({ ...s, id: 0, name: "(no group)", status: "", keys: keyCount.get(0) });
  }
  // One request a group: every refresh for a few groups, with the key list for many.
  if (readKeys || rows.length <= HOUR_EVERY_TICK_MAX_GROUPS || state.hourByGroup === undefined) {
    state.hourByGroup = await lastHour(state, rows);
  }
  for (const r of rows) {
    const h = state.hourByGroup?.get(r.id);
    r.hour_total = h ? h.total_requests : null;
    r.hour_failure_rate = h ? h.failure_rate : null;
  }

  $("groups-note").textContent =
    (state.windows ? "" : "Last hour: not available on this tallyd (no time windows). ") +
    `${groups.length} groups, ${(state.keys ?? []).length} keys.`;
  renderGroups(rows, state.windows);
}

// Each group's last hour (group id -> summary), from GET /admin/apikey-stats/summary?since=
// &group_id= when this tallyd has windows (an answer naming "since": older builds ignore the
// parameter); null without windows.
async function lastHour(state, rows) {
  const since = api.nowSeconds() - 3600;
  if (state.windows === null) {
    const probe = await api.getJson(`/admin/apikey-stats/summary?${api.query({ since })}`);
    state.windows = "since" in probe;
  }
  if (!state.windows) {
    return null;
  }
  const answers = await Promise.all(
    rows.map((r) =>
      api
        .getJson(`/admin/apikey-stats/summary?${api.query({ since, group_id: r.id })}`)
        .catch(() => null),
    ),
  );
  return new Map(rows.map((r, i) => [r.id, answers[i]]).filter(([, a]) => a !== null));
}

function renderGroups(rows, windows) {
  const signature = JSON.stringify([rows, groupSort, windows]);
  renderTable($("groups-table"), signature, () => groupRows(rows, windows));
}

function groupRows(rows, windows) {
  const columns = GROUP_COLUMNS.filter((c) => windows || !c.window);
  const sorted = [...rows].sort((a, b) => compare(a[groupSort.key], b[groupSort.key]));
  if (groupSort.descending) {
    sorted.reverse();
  }
  const head = el(
    "tr",
    {},
    columns.map((c) => {
      const sort = c.key === groupSort.key ? (groupSort.descending ? "descending" : "ascending") : null;
      const button = el("button", { type: "button", "data-sort": c.key, "data-focus-key": `sort-${c.key}` }, c.label);
      button.addEventListener("click", () => {
        if (groupSort.key === c.key) {
          groupSort.descending = !groupSort.descending;
        } else {
          groupSort.key = c.key;
          groupSort.descending = !c.text;
        }
        renderGroups(rows, windows);
      });
      return el("th", { scope: "col", class: c.text ? "" : "n", "aria-sort": sort }, button);
    }),
  );
  const body = sorted.map((r) =>
    el(
      "tr",
      { "data-group-id": r.id },
      columns.map((c) => {
        if (c.text) {
          return el("td", { class: c.key === "name" ? "wrap name" : "" }, r[c.key] ?? "");
        }
        return el("td", { class: "n", "data-col": c.key }, num(r[c.key], c.rate ? "rate" : "count"));
      }),
    ),
  );
  return [
    el("thead", {}, head),
    el("tbody", {}, body.length ? body : el("tr", {}, el("td", { colspan: columns.length }, "No groups yet."))),
  ];
}

function compare(a, b) {
  if (typeof a === "string" || typeof b === "string") {
    return String(a ?? "").localeCompare(String(b ?? ""));
  }
  return (a ?? -1) - (b ?? -1);
}

// ---- failing keys ------------------------------------------------------------------------

let failingBy = "failures";

export function setupFailing(state) {
  for (const button of document.querySelectorAll("#failing .toggle button")) {
    button.addEventListener("click", () => {
      failingBy = button.dataset.by;
      for (const b of document.querySelectorAll("#failing .toggle button")) {
        b.setAttribute("aria-pressed", String(b === button));
      }
      refreshFailing(state).catch(() => {});
    });
  }
}

// The rows of a top answer, whatever its envelope: an array, or the first array in an object.
function topRows(body) {
  if (Array.isArray(body)) {
    return body;
  }
  for (const key of ["keys", "items", "top"]) {
    if (Array.isArray(body?.[key])) {
      return body[key];
    }
  }
  return Object.values(body ?? {}).find(Array.isArray) ?? [];
}

function keyIdOf(row) {
  return row.api_key_id ?? row.key_id ?? row.id ?? row.ID;
}

export async function refreshFailing(state) {
  if (state.top !== false) {
    try {
      const now = api.nowSeconds();
      const ask = (seconds) =>
        api.getJson(
          `/admin/apikey-stats/top?${api.query({ since: now - seconds, by: failingBy, limit: 10, min_requests: 1 })}`,
        );
      const [five, hour] = await Promise.all([ask(300), ask(3600)]);
      state.top = true;
      $("failing-note").textContent = "The 10 keys with the most failures (or the highest failure rate) in each window.";
      $("failing-a-title").textContent = "Last 5 minutes";
      $("failing-b-box").hidden = false;
      $("failing-b-box").parentElement.classList.remove("single");
      // The top lists keys with requests in the window; only those that failed are shown.
      const failed = (body) => topRows(body).filter((r) => r.failure_requests > 0);
      renderFailing($("failing-a"), failed(five), state);
      renderFailing($("failing-b"), failed(hour), state);
      return;
    } catch (err) {
      if (!err.missing) {
        throw err;
      }
      state.top = false;
    }
  }
  // No top endpoint on this tallyd: the keys with failures, by their lifetime totals.
  $("failing-note").textContent =
    "Windows (last 5 minutes, last hour): not available on this tallyd. Lifetime totals instead.";
  $("failing-a-title").textContent = "Lifetime";
  $("failing-b-box").hidden = true;
  $("failing-b-box").parentElement.classList.add("single");
  const measure = failingBy === "failure_rate" ? "failure_rate" : "failure_requests";
  const rows = (state.keys ?? [])
    .filter((k) => k.failure_requests > 0)
    .sort((a, b) => b[measure] - a[measure] || b.failure_requests - a.failure_requests || a.ID - b.ID)
    .slice(0, 10);
  renderFailing($("failing-a"), rows, state);
}

function renderFailing(table, rows, state) {
  const shown = rows.map((r) => {
    const id = keyIdOf(r);
    const record = state.keysById?.get(id);
    const groupId = r.group_id ?? record?.group_id;
    const masked = record === undefined ? "" : ` ${maskKey(record.api_key)}`;
    return { id, groupId, group: state.groupsById.get(groupId)?.name, masked, r };
  });
  renderTable(table, JSON.stringify(shown), () => failingRows(shown));
}

function failingRows(shown) {
  const head = el(
    "tr",
    {},
    el("th", { scope: "col" }, "Key"),
    el("th", { scope: "col" }, "Group"),
    el("th", { scope: "col", class: "n" }, "Requests"),
    el("th", { scope: "col", class: "n" }, "Failures"),
    el("th", { scope: "col", class: "n" }, "Failure rate"),
  );
  const body = shown.map(({ id, groupId, group, masked, r }) => {
    return el(
      "tr",
      { "data-key-id": id },
      el("td", {}, el("a", { href: `#key/${id}`, "data-focus-key": `key-${id}` }, `#${id}`), el("span", { class: "muted" }, masked)),
      el("td", { class: "wrap", "data-label": "Group" }, group ?? (groupId === 0 ? "(no group)" : "")),
      el("td", { class: "n", "data-col": "total_requests", "data-label": "Requests" }, num(r.total_requests)),
      el("td", { class: "n", "data-col": "failure_requests", "data-label": "Failures" }, num(r.failure_requests)),
      el("td", { class: "n", "data-col": "failure_rate", "data-label": "Failure rate" }, num(r.failure_rate, "rate")),
    );
  });
  return [
    el("thead", {}, head),
    el("tbody", {}, body.length ? body : el("tr", {}, el("td", { colspan: 5 }, "No failing keys."))),
  ];
}
