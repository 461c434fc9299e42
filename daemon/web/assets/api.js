// api.js: how the page talks to tallyd. The admin token lives in sessionStorage (gone when
// the tab closes) and travels only in the Authorization header: never in a URL, a cookie or
// a log line. Every request goes to the page's own origin.

const TOKEN_KEY = "tallyd.admin_token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

// Thrown for an answer that is not 2xx. `missing` is true when this tallyd has no such
// endpoint (404 "no such endpoint": a build without that feature), as opposed to a record
// that does not exist.
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
    this.missing = status === 404 && message === "no such endpoint";
    this.unauthorized = status === 401;
  }
}

function authHeaders() {
  const t = token();
  return t === null ? {} : { Authorization: `Bearer ${t}` };
}

async function errorOf(res) {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body && typeof body.error === "string") {
      message = body.error;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(res.status, message);
}

// Listeners told when the token is refused (401): the app goes back to the login form.
const unauthorizedListeners = [];
export function onUnauthorized(fn) {
  unauthorizedListeners.push(fn);
}

// fetch() with the token; throws ApiError unless 2xx. `path` is a path on this origin.
export async function request(path, { method = "GET", body, signal, auth = true } = {}) {
  const headers = auth ? authHeaders() : {};
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: "no-store",
    credentials: "omit",
  });
  if (!res.ok) {
    const err = await errorOf(res);
    if (err.unauthorized && auth) {
      for (const fn of unauthorizedListeners) {
        fn(err);
      }
    }
    throw err;
  }
  return res;
}

export async function getJson(path, options) {
  const res = await request(path, options);
  return res.json();
}

// Checks a token without keeping it: true when tallyd accepts it, false on 401.
export async function tokenAccepted(candidate) {
  const res = await fetch("/admin/apikey-stats/summary", {
    headers: { Authorization: `Bearer ${candidate}` },
    cache: "no-store",
    credentials: "omit",
  });
  if (res.status === 401) {
    return false;
  }
  if (!res.ok) {
    throw await errorOf(res);
  }
  return true;
}

// Unix seconds, now.
export function nowSeconds() {
  return Math.floor(Date.now() / 1000);
}

// A query string from an object (values encoded).
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null) {
      q.set(k, String(v));
    }
  }
  return q.toString();
}

// Every record of a list endpoint, page by page (limit 1000, following after_id).
export async function listAll(path, params = {}, signal) {
  const out = [];
  let after = 0;
  for (;;) {
    const page = await getJson(`${path}?${query({ ...params, limit: 1000, after_id: after })}`, {
      signal,
    });
    out.push(...page);
    if (page.length < 1000) {
      return out;
    }
    after = page[page.length - 1].ID;
  }
}

// The Prometheus text of /metrics as { "name{labels}": value } (labels as written by tallyd).
export function parseMetrics(text) {
  const samples = {};
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) {
      continue;
    }
    const space = line.lastIndexOf(" ");
    if (space <= 0) {
      continue;
    }
    const value = Number(line.slice(space + 1));
    if (!Number.isNaN(value)) {
      samples[line.slice(0, space)] = value;
    }
  }
  return samples;
}

// The labels of a sample name: 'a{x="1",y="2"}' -> { x: "1", y: "2" }.
export function labelsOf(series) {
  const open = series.indexOf("{");
  const labels = {};
  if (open < 0) {
    return labels;
  }
  const re = /(\w+)="((?:[^"\\]|\\.)*)"/g;
  let m;
  while ((m = re.exec(series.slice(open))) !== null) {
    labels[m[1]] = m[2];
  }
  return labels;
}

// Reads a Server-Sent Events stream with fetch() (EventSource cannot send the Authorization
// header) and calls onEvent({type, id, data}) for each event; returns when the stream ends.
// Throws ApiError for a refused request (missing: this tallyd has no event stream).
export async function readEvents(path, { lastEventId, signal, onEvent, onOpen }) {
  const headers = { ...authHeaders(), Accept: "text/event-stream" };
  if (lastEventId) {
    headers["Last-Event-ID"] = lastEventId;
  }
  const res = await fetch(path, { headers, signal, cache: "no-store", credentials: "omit" });
  if (!res.ok) {
    throw await errorOf(res);
  }
  if (onOpen) {
    onOpen();
  }
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { type: "message", id: "", data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      return;
    }
    buffer += value;
    let nl;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
      if (line === "") {
        if (event.data.length > 0 || event.id) {
          onEvent({ type: event.type, id: event.id, data: event.data.join("\n") });
        }
        event = { type: "message", id: "", data: [] };
        continue;
      }
      if (line.startsWith(":")) {
        continue;  // a comment (keep-alive)
      }
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let v = colon < 0 ? "" : line.slice(colon + 1);
      if (v.startsWith(" ")) {
        v = v.slice(1);
      }
      if (field === "event") {
        event.type = v;
      } else if (field === "data") {
        event.data.push(v);
      } else if (field === "id") {
        event.id = v;
      }
    }
  }
}
