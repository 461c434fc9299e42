// tallyd.mjs: the browser test's side of tallyd: the real binary on free loopback ports with
// a temporary data directory, and small clients for its API (admin and internal tokens).

import { spawn } from "node:child_process";
import dgram from "node:dgram";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export const ADMIN_TOKEN = "browser-test-admin-token";
export const INTERNAL_TOKEN = "browser-test-internal-token";

// A loopback port free for TCP and UDP at the time of the call.
async function freePort() {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = await new Promise((resolve, reject) => {
      const server = net.createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const { port: p } = server.address();
        server.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise((resolve) => {
      const socket = dgram.createSocket("udp4");
      socket.once("error", () => resolve(false));
      socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)));
    });
    if (udpFree) {
      return port;
    }
  }
  throw new Error("no free port");
}

// Polls `fn` (async, truthy when done) every 50 ms until it is or `ms` passes; returns its
// last value, throws naming `what` on the deadline.
export async function waitFor(what, fn, ms = 10000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) {
        return last;
      }
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class Tallyd {
  // Starts tallyd; resolves once /healthz answers. Retries with new ports on a port race.
  static async start(binary) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tallyd-browser-"));
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const t = new Tallyd(binary, dir, await freePort(), await freePort());
      try {
        await waitFor("tallyd's /healthz", async () => (await fetch(`${t.base}/healthz`)).ok, 10000);
        return t;
      } catch (err) {
        await t.stop();
        if (attempt === 2) {
          throw new Error(`tallyd did not start: ${err.message}\n${t.log()}`);
        }
      }
    }
    throw new Error("unreachable");
  }

  constructor(binary, dir, httpPort, udpPort) {
    this.dir = dir;
    this.httpPort = httpPort;
    this.udpPort = udpPort;
    this.base = `http://127.0.0.1:${httpPort}`;
    this.logPath = path.join(dir, `tallyd-${httpPort}.log`);
    const log = fs.openSync(this.logPath, "w");
    this.exited = false;
    this.child = spawn(
      binary,
      [
        "--data-dir", path.join(dir, "data"),
        "--udp-listen", `127.0.0.1:${udpPort}`,
        "--http-listen", `127.0.0.1:${httpPort}`,
        "--flush-interval-ms", "200",
      ],
      {
        stdio: ["ignore", log, log],
        env: { ...process.env, TALLYD_ADMIN_TOKEN: ADMIN_TOKEN, TALLYD_INTERNAL_TOKEN: INTERNAL_TOKEN },
      },
    );
    this.child.on("exit", () => {
      this.exited = true;
    });
    fs.closeSync(log);
  }

  log() {
    try {
      return fs.readFileSync(this.logPath, "utf8");
    } catch {
      return "";
    }
  }

  async stop() {
    if (!this.exited) {
      const gone = new Promise((r) => this.child.once("exit", r));
      this.child.kill("SIGTERM");
      await gone;
    }
  }

  removeDir() {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  // An admin request; resolves to { status, body } (body parsed when JSON).
  async admin(method, target, body) {
    const res = await fetch(`${this.base}${target}`, {
      method,
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // keep the text
    }
    return { status: res.status, body: parsed };
  }

  // Like admin(), but throws unless the status is `expect`.
  async must(expect, method, target, body) {
    const r = await this.admin(method, target, body);
    if (r.status !== expect) {
      throw new Error(`${method} ${target}: ${r.status} ${JSON.stringify(r.body)} (expected ${expect})`);
    }
    return r.body;
  }

  // Statsd lines over HTTP, durable before it resolves (wait=flush).
  async ingest(lines) {
    const res = await fetch(`${this.base}/v1/ingest?wait=flush`, {
      method: "POST",
      headers: { "X-Internal-Token": INTERNAL_TOKEN },
      body: lines.join("\n"),
    });
    if (res.status !== 200) {
      throw new Error(`ingest: ${res.status} ${await res.text()}`);
    }
    return res.json();
  }

  // One UDP datagram.
  sendUdp(payload) {
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket("udp4");
      socket.send(payload, this.udpPort, "127.0.0.1", (err) => {
        socket.close();
        if (err) {
          reject(err);
        } else {
          resolve();
        }
      });
    });
  }

  // Whether this tallyd serves `method target` (a 404 "no such endpoint" says it does not).
  // Reads the body only of a 404, so a stream (/admin/events) does not hold the probe.
  async has(method, target) {
    const controller = new AbortController();
    const res = await fetch(`${this.base}${target}`, {
      method,
      headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
      signal: controller.signal,
    });
    let missing = false;
    if (res.status === 404) {
      const body = await res.json().catch(() => ({}));
      missing = body.error === "no such endpoint";
    }
    controller.abort();
    return !missing;
  }
}
