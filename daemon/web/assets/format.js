// format.js: numbers for humans, the api_key mask, and the only ways the page puts data into
// the document: as text (textContent), never as HTML. Nothing here touches the network.

const UNITS = ["", "k", "M", "G", "T", "P", "E"];

// 950 -> "950", 12345 -> "12.3k", 1234567 -> "1.23M" (three significant digits past 1000).
export function human(n) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) {
    return "–";
  }
  let v = Number(n);
  const sign = v < 0 ? "-" : "";
  v = Math.abs(v);
  if (v < 1000) {
    if (Number.isInteger(v)) {
      return sign + String(v);
    }
    return sign + v.toFixed(v < 10 ? 2 : 1).replace(/0+$/, "").replace(/\.$/, "");
  }
  let u = 0;
  while (v >= 999.95 && u < UNITS.length - 1) {
    v /= 1000;
    u += 1;
  }
  const digits = v < 10 ? 2 : v < 100 ? 1 : 0;
  let text = v.toFixed(digits);
  if (digits > 0) {
    text = text.replace(/0+$/, "").replace(/\.$/, "");
  }
  return sign + text + UNITS[u];
}

// A rate from 0 to 1 as a percentage: 0.99234 -> "99.2%", 1 -> "100%", 0 -> "0%".
export function percent(rate) {
  if (rate === null || rate === undefined || Number.isNaN(Number(rate))) {
    return "–";
  }
  const p = Number(rate) * 100;
  if (p === 0 || p === 100) {
    return `${p}%`;
  }
  // Never round a non-zero failure rate to "0%" or a partial success to "100%".
  const s = p.toFixed(1);
  if (s === "0.0") {
    return "<0.1%";
  }
  if (s === "100.0") {
    return ">99.9%";
  }
  return `${s}%`;
}

// Bytes: 1536 -> "1.5 KiB".
export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) {
    return "–";
  }
  let v = Number(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

// Seconds as "4s", "3m 20s", "2h 5m", "3d 4h".
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) {
    return "–";
  }
  let s = Math.max(0, Math.round(seconds));
  if (s < 60) {
    return `${s}s`;
  }
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) {
    return `${d}d ${h}h`;
  }
  if (h > 0) {
    return `${h}h ${m}m`;
  }
  return `${m}m ${s}s`;
}

// A local date and time ("2026-11-30 04:12:05"), or "–".
export function localTime(value) {
  if (!value) {
    return "–";
  }
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) {
    return String(value);
  }
  const p = (x) => String(x).padStart(2, "0");
  return (
    `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
  );
}

// An API key as the page may show it: its prefix up to the first "-" (at most 4 characters,
// like "sk-") and its last 4 characters, "sk-…4f2a". A short key shows less: never more than a
// third of it.
export function maskKey(key) {
  if (typeof key !== "string" || key.length === 0) {
    return "–";
  }
  const dash = key.indexOf("-");
  const prefix = dash > 0 && dash < 4 ? key.slice(0, dash + 1) : "";
  const tail = key.length >= 12 ? key.slice(-4) : "";
  return `${prefix}…${tail}`;
}

// Creates an element with attributes and children; strings become text nodes. Attribute
// values are set with setAttribute (never parsed as HTML); "on..." attributes are refused.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) {
      continue;
    }
    if (/^on/i.test(name)) {
      throw new Error(`el: event attribute ${name}`);
    }
    node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Replaces a node's children (same rules as el).
export function fill(node, ...children) {
  node.replaceChildren(
    ...children
      .flat()
      .filter((c) => c !== null && c !== undefined && c !== false)
      .map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))),
  );
}

// A number cell's content: the human text, the exact value in data-value and the title.
export function num(value, kind = "count") {
  const text = kind === "rate" ? percent(value) : kind === "bytes" ? bytes(value) : human(value);
  const exact = value === null || value === undefined ? "" : String(value);
  return el("span", { class: "num", "data-value": exact, title: exact }, text);
}

// Replaces a table's content with build()'s rows, unless `signature` (what the rows show) is
// the one it already shows: a refresh that changes nothing leaves the table alone, so a click
// or the keyboard focus on it is not lost. When it does change, the element that had the
// focus (marked data-focus-key) gets it back in the new rows.
// The signature stays in script memory, never in the document (it may hold any field).
const signatures = new WeakMap();
export function renderTable(table, signature, build) {
  if (signatures.get(table) === signature) {
    return;
  }
  const active = document.activeElement;
  const focusKey = active && table.contains(active) ? active.dataset.focusKey : undefined;
  fill(table, build());
  signatures.set(table, signature);
  if (focusKey) {
    table.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`)?.focus();
  }
}
