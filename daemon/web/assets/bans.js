// bans.js: the banned keys (status auto_disabled) with their reason and deadline, the unban
// button (POST /admin/api-keys/{id}/unban, after a confirmation), and the live event feed
// (GET /admin/events, Server-Sent Events read with fetch so the token goes in a header).

import * as api from "./api.js";
import { duration, el, fill, localTime, maskKey, renderTable } from "./format.js";

const $ = (id) => document.getElementById(id);

const FEED_MAX = 100;

let unbanMissing = false;  // this tallyd answered "no such endpoint" to an unban

export function setupBans() {
  // Nothing to wire ahead: the buttons are made with each render.
}

export async function refreshBans(state) {
  const banned = await api.listAll("/admin/api-keys", { status: "auto_disabled" });
  const now = Date.now();
  // What the rows show (the time left to the minute, so a refresh mostly changes nothing).
  const shown = banned.map((k) => {
    const until = k.ban_until ? new Date(k.ban_until) : null;
    const left = until ? (until.getTime() - now) / 1000 : null;
    return {
      id: k.ID,
      masked: maskKey(k.api_key),
      group: state.groupsById.get(k.group_id)?.name ?? (k.group_id === 0 ? "(no group)" : `#${k.group_id}`),
      reason: k.ban_reason || "–",
      banUntil: k.ban_until ?? "",
      until: until ? localTime(until) : "–",
      left: left === null ? "" : left > 0 ? ` (in ${duration(left > 60 ? Math.ceil(left / 60) * 60 : left)})` : " (passed)",
    };
  });
  renderTable($("bans-table"), JSON.stringify([shown, unbanMissing]), () => banRows(shown, banned, state));
  $("bans-note").textContent =
    `${banned.length} banned` + (unbanMissing ? "; unban is not available on this tallyd." : ".");
}

function banRows(shown, banned, state) {
  const head = el(
    "tr",
    {},
    el("th", { scope: "col" }, "Key"),
    el("th", { scope: "col" }, "Group"),
    el("th", { scope: "col" }, "Reason"),
    el("th", { scope: "col" }, "Until"),
    el("th", { scope: "col" }, el("span", { class: "visually-hidden" }, "Action")),
  );
  const rows = shown.map((b, i) => {
    const button = el(
      "button",
      { type: "button", class: "danger", "data-unban": b.id, "data-focus-key": `unban-${b.id}`, disabled: unbanMissing },
      "Unban",
    );
    button.addEventListener("click", () => confirmUnban(banned[i], state));
    return el(
      "tr",
      { "data-key-id": b.id },
      el("td", {}, el("a", { href: `#key/${b.id}`, "data-focus-key": `key-${b.id}` }, `#${b.id}`), el("span", { class: "muted" }, ` ${b.masked}`)),
      el("td", { class: "wrap", "data-label": "Group" }, b.group),
      el("td", { class: "wrap reason", "data-label": "Reason" }, b.reason),
      el("td", { title: b.banUntil, "data-label": "Until" }, el("span", {}, b.until, el("span", { class: "muted" }, b.left))),
      el("td", {}, button),
    );
  });
  return [
    el("thead", {}, head),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 5 }, "No banned keys."))),
  ];
}

// Asks in a modal dialog (keyboard: Tab between the buttons, Escape cancels), then unbans.
function confirmUnban(key, state) {
  const dialog = $("confirm");
  $("confirm-text").textContent = `Unban key #${key.ID} (${maskKey(key.api_key)})? It returns to active at once.`;
  dialog.returnValue = "";
  dialog.addEventListener(
    "close",
    async () => {
      if (dialog.returnValue !== "ok") {
        return;
      }
      try {
        await api.request(`/admin/api-keys/${key.ID}/unban`, { method: "POST" });
        $("bans-note").textContent = `Key #${key.ID} unbanned.`;
      } catch (err) {
        if (err.missing) {
          unbanMissing = true;
        }
        $("bans-note").textContent = err.missing
          ? "Unban is not available on this tallyd."
          : `Unban of #${key.ID} failed: ${err.message}`;
        if (err.missing) {
          return refreshBans(state).catch(() => {});
        }
        return;
      }
      await refreshBans(state).catch(() => {});
    },
    { once: true },
  );
  dialog.showModal();
  $("confirm-ok").focus();
}

// ---- live events ------------------------------------------------------------------------

let controller = null;
let lastEventId = "";

export function startEvents(state) {
  stopEvents();
  controller = new AbortController();
  fill($("events"));
  follow(state, controller.signal, 1000);
}

export function stopEvents() {
  if (controller) {
    controller.abort();
    controller = null;
  }
}

// Reads the stream; after an end or an error, reconnects with Last-Event-ID (so nothing is
// missed), waiting 1 s, doubling up to 30 s. Stops for good on a missing endpoint or 401.
async function follow(state, signal, wait) {
  const status = $("events-status");
  try {
    status.textContent = "Connecting…";
    await api.readEvents("/admin/events", {
      lastEventId,
      signal,
      onOpen: () => {
        status.textContent = "Connected: new events appear here.";
        wait = 1000;
      },
      onEvent: (e) => {
        if (e.id) {
          lastEventId = e.id;
        }
        addEvent(e);
        if (e.type === "ban" || e.type === "unban") {
          refreshBans(state).catch(() => {});
        }
      },
    });
    status.textContent = "The stream ended; reconnecting…";
  } catch (err) {
    if (signal.aborted) {
      return;
    }
    if (err.missing) {
      status.textContent = "Live events: not available on this tallyd.";
      return;
    }
    if (err.unauthorized) {
      return;
    }
    status.textContent = `Disconnected (${err.message}); reconnecting…`;
  }
  if (signal.aborted) {
    return;
  }
  setTimeout(() => {
    if (!signal.aborted) {
      follow(state, signal, Math.min(wait * 2, 30000));
    }
  }, wait);
}

// What an event says, as text: for a ban or an unban, the key, its group, the rule and
// reason, the deadline; otherwise its fields (never one named like a secret).
function describe(e) {
  let d;
  try {
    d = JSON.parse(e.data);
  } catch {
    return e.data;  // not JSON: as sent
  }
  if (!d || typeof d !== "object") {
    return e.data;
  }
  if (d.api_key_id !== undefined) {
    const parts = [`key #${d.api_key_id}`];
    if (d.group_id !== undefined) {
      parts.push(`group #${d.group_id}`);
    }
    if (d.rule) {
      parts.push(`rule ${d.rule}`);
    }
    if (d.reason) {
      parts.push(d.reason);
    }
    if (d.ban_until) {
      parts.push(`until ${localTime(d.ban_until)}`);
    }
    return parts.join(" · ");
  }
  return Object.entries(d)
    .filter(([k]) => !/api_key$|token|secret|password/i.test(k))
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(" ");
}

// One feed line: the time it arrived (or the event's own "at"), its type, what it says.
function addEvent(e) {
  const text = describe(e);
  let at = new Date();
  try {
    const d = JSON.parse(e.data);
    if (d && d.at) {
      at = new Date(d.at);
    }
  } catch {
    // keep the arrival time
  }
  const feed = $("events");
  feed.prepend(
    el(
      "li",
      { "data-event": e.type },
      el("span", { class: "muted" }, `${localTime(at)} `),
      el("strong", { class: e.type === "ban" ? "bad" : e.type === "unban" ? "good" : "" }, e.type),
      ` ${text}`,
    ),
  );
  while (feed.children.length > FEED_MAX) {
    feed.lastElementChild.remove();
  }
}
