// The status page in a real browser (Debian's chromium, driven over the DevTools protocol by
// puppeteer-core; no browser is downloaded). Starts the real tallyd with known traffic (a
// failing key, a hostile group name, a banned key), logs in, and checks that the page shows
// what the API says, renders database values as text, keeps its token out of URLs and
// cookies, and works at 1280 and 390 px. Panels whose endpoint this tallyd lacks (time
// windows, unban, events: issues #15 and #16) are probed first; where one is missing the test
// checks that the page says "not available" instead.
//
// usage: node status_page_test.mjs --tallyd PATH [--images DIR] [--chromium PATH]
// CTest runs it as `browser_status_page` (label `browser`); scripts/deps.sh installs chromium,
// node and puppeteer-core (tests/browser/node_modules).

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import puppeteer from "puppeteer-core";

import { ADMIN_TOKEN, Tallyd, waitFor } from "./tallyd.mjs";

const { values: args } = parseArgs({
  options: {
    tallyd: { type: "string" },
    images: { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
  },
});
if (!args.tallyd) {
  console.error("usage: status_page_test.mjs --tallyd PATH [--images DIR] [--chromium PATH]");
  process.exit(2);
}
if (!fs.existsSync(args.chromium)) {
  console.error(`not ok - no browser at ${args.chromium}: scripts/deps.sh installs Debian's chromium`);
  process.exit(1);
}

const HOSTILE_GROUP = "<img src=x onerror=alert(1)>";
const HOSTILE_REASON = "<script>alert(2)</script> failure_rate 0.63 (38/60) over 60s";
const FAILING_API_KEY = "sk-live-bbbbbbbbbbbbbbbb4f2a";
const BANNED_API_KEY = "sk-live-dddddddddddddddd9c1e";

let passed = 0;
async function step(name, fn) {
  const started = Date.now();
  await fn();
  passed += 1;
  console.log(`ok ${passed} - ${name} (${Date.now() - started} ms)`);
}

// ---- tallyd with known traffic -----------------------------------------------------------

async function seed(t) {
  const main = await t.must(201, "POST", "/admin/provider-groups", {
    name: "openai-main",
    type: "openai",
    base_url: "https://api.openai.com",
  });
  const hostile = await t.must(201, "POST", "/admin/provider-groups", {
    name: HOSTILE_GROUP,
    type: "openai",
    base_url: "https://example.invalid",
  });
  const key = (id, group, apiKey, extra = {}) =>
    t.must(201, "PUT", `/admin/api-keys/${id}`, { group_id: group, api_key: apiKey, ...extra });
  await key(1, main.ID, "sk-live-aaaaaaaaaaaaaaaa1111");
  await key(2, hostile.ID, FAILING_API_KEY);
  await key(3, main.ID, "sk-live-cccccccccccccccc2222");
  // Banned as tallyd's ban rule writes a ban (#16): the status, a reason, a deadline.
  await key(4, main.ID, BANNED_API_KEY, {
    status: "auto_disabled",
    ban_reason: HOSTILE_REASON,
    ban_until: new Date(Date.now() + 3600 * 1000).toISOString(),
  });
  await t.ingest([
    "apikey.1.success:1200|c",
    "apikey.1.failure:3|c",
    "apikey.2.success:5|c",
    "apikey.2.failure:40|c",
    "apikey.3.success:20|c",
    "apikey.4.failure:7|c",
  ]);
  return { main, hostile };
}

// ---- the browser -------------------------------------------------------------------------

async function openBrowser() {
  const launchArgs = ["--headless=new", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"];
  if (process.getuid && process.getuid() === 0) {
    launchArgs.push("--no-sandbox");  // chromium refuses to run as root with its sandbox
  }
  return puppeteer.launch({ executablePath: args.chromium, headless: true, args: launchArgs });
}

// Watches a page for what must never happen: a dialog (alert from injected markup), a
// script error, a Content-Security-Policy violation, the token in a URL.
function watch(page, seen) {
  page.on("dialog", async (d) => {
    seen.dialogs.push(`${d.type()}: ${d.message()}`);
    await d.dismiss();
  });
  page.on("pageerror", (err) => seen.errors.push(String(err)));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/Failed to load resource/.test(msg.text())) {
      seen.errors.push(msg.text());
    }
  });
  page.on("request", (req) => {
    if (req.url().includes(ADMIN_TOKEN)) {
      seen.tokenInUrl.push(req.url());
    }
  });
}

const text = (page, selector) => page.$eval(selector, (e) => e.textContent.trim());
const dataValue = (page, selector) => page.$eval(selector, (e) => e.querySelector("[data-value]")?.dataset.value);

// The page's own formatting of a value (format.js), for comparing what it shows.
function formatted(page, value, kind) {
  return page.evaluate(
    async (v, k) => {
      const f = await import("/ui/format.js");
      return k === "rate" ? f.percent(v) : f.human(v);
    },
    value,
    kind,
  );
}

async function main() {
  const t = await Tallyd.start(args.tallyd);
  let browser;
  let sender;
  try {
    const { hostile } = await seed(t);
    const minuteAgo = Math.floor(Date.now() / 1000) - 60;
    const has = {
      windows: "since" in (await t.must(200, "GET", `/admin/apikey-stats/summary?since=${minuteAgo}`)),
      top: await t.has("GET", `/admin/apikey-stats/top?since=${minuteAgo}`),
      unban: await t.has("POST", "/admin/api-keys/0/unban"),
      events: await t.has("GET", "/admin/events"),
    };
    console.log(`# endpoints on this tallyd: ${JSON.stringify(has)}`);

    browser = await openBrowser();
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    const seen = { dialogs: [], errors: [], tokenInUrl: [] };
    watch(page, seen);

    await step("/ redirects to the page, which asks for the token", async () => {
      const res = await page.goto(`${t.base}/`, { waitUntil: "load" });
      assert.equal(new URL(page.url()).pathname, "/ui");
      assert.equal(res.headers()["content-security-policy"], "default-src 'self'; frame-ancestors 'none'");
      await page.waitForSelector("#login:not([hidden]) #token");
    });

    await step("a wrong token is refused and not kept", async () => {
      await page.type("#token", "not-the-token");
      await page.click("#login-submit");
      await page.waitForFunction(() => document.getElementById("login-error").textContent.includes("Wrong token"));
      assert.equal(await page.$eval("#dashboard", (e) => e.hidden), true);
      assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    });

    await step("the right token logs in; it lives in sessionStorage only", async () => {
      await page.$eval("#token", (e) => {
        e.value = "";
      });
      await page.type("#token", ADMIN_TOKEN);
      await page.keyboard.press("Enter");
      await page.waitForSelector("#dashboard:not([hidden])");
      assert.equal(await page.evaluate(() => sessionStorage.getItem("tallyd.admin_token")), ADMIN_TOKEN);
      assert.equal(await page.evaluate(() => document.cookie), "");
      assert.ok(!page.url().includes(ADMIN_TOKEN));
    });

    // Lines of another metric (ignored) move the lines chart without changing any total,
    // until the screenshots are taken.
    sender = setInterval(() => t.sendUdp("other.metric:1|c\nother.metric:1|c").catch(() => {}), 100);
    const summary = await t.must(200, "GET", "/admin/apikey-stats/summary");
    await step("the overview shows the summary's numbers", async () => {
      await page.waitForFunction(
        (total) => document.querySelector("#total [data-value]")?.dataset.value === String(total),
        { timeout: 10000 },
        summary.total_requests,
      );
      for (const [id, field, kind] of [
        ["#total", "total_requests"],
        ["#success", "success_requests"],
        ["#failure", "failure_requests"],
        ["#success-rate", "success_rate", "rate"],
        ["#failure-rate", "failure_rate", "rate"],
      ]) {
        assert.equal(await dataValue(page, id), String(summary[field]), id);
        assert.equal(await text(page, id), await formatted(page, summary[field], kind), id);
      }
      assert.equal(await text(page, "#total"), "1.27k");  // 1275 requests, for humans
      assert.equal(await text(page, "#readiness"), "ready");
      const epoch = (await (await fetch(`${t.base}/metrics`)).text()).match(/^tallyd_flush_epoch (\d+)$/m)[1];
      assert.equal(await dataValue(page, "#epoch"), epoch);
      assert.match(await text(page, "#disk"), /\d (B|KiB|MiB|GiB)$/);
      assert.match(await text(page, "#flush-age"), /ago$/);
    });

    await step("numbers for humans and the api_key mask (format.js, in the page)", async () => {
      const got = await page.evaluate(async () => {
        const f = await import("/ui/format.js");
        return {
          human: [0, 999, 1000, 1049, 12345, 999999, 1234567, 2.5].map(f.human),
          percent: [0, 1, 0.99234, 0.0004, 0.99999, 0.5].map(f.percent),
          mask: ["sk-live-bbbbbbbbbbbbbbbb4f2a", "abcdefghijklmnop", "sk-short", ""].map(f.maskKey),
          bytes: [100, 1536, 5 * 1024 * 1024].map(f.bytes),
        };
      });
      assert.deepEqual(got.human, ["0", "999", "1k", "1.05k", "12.3k", "1M", "1.23M", "2.5"]);
      assert.deepEqual(got.percent, ["0%", "100%", "99.2%", "<0.1%", ">99.9%", "50.0%"]);
      assert.deepEqual(got.mask, ["sk-…4f2a", "…mnop", "sk-…", "–"]);
      assert.deepEqual(got.bytes, ["100 B", "1.5 KiB", "5.0 MiB"]);
    });

    await step("groups: lifetime totals, rates and key counts equal the API's; sortable", async () => {
      const groups = await t.must(200, "GET", "/admin/provider-groups");
      const keys = await t.must(200, "GET", "/admin/api-keys");
      for (const g of groups) {
        const row = `#groups-table tr[data-group-id="${g.ID}"]`;
        await page.waitForSelector(row);
        const cell = (col) => page.$eval(`${row} td[data-col="${col}"] [data-value]`, (e) => e.dataset.value);
        assert.equal(await cell("total_requests"), String(g.total_requests), g.name);
        assert.equal(await cell("failure_requests"), String(g.failure_requests), g.name);
        assert.equal(await cell("failure_rate"), String(g.failure_rate), g.name);
        assert.equal(await cell("keys"), String(keys.filter((k) => k.group_id === g.ID).length), g.name);
        if (has.windows) {
          const hour = await t.must(200, "GET", `/admin/apikey-stats/summary?since=${Math.floor(Date.now() / 1000) - 3600}&group_id=${g.ID}`);
          assert.equal(await cell("hour_total"), String(hour.total_requests), g.name);
        }
      }
      if (!has.windows) {
        assert.match(await text(page, "#groups-note"), /not available/);
      }
      // Sorted by failure rate, highest first; a click on "Requests" sorts by requests.
      const order = () => page.$$eval("#groups-table tbody tr", (rows) => rows.map((r) => r.dataset.groupId));
      assert.equal((await order())[0], String(hostile.ID));
      await page.click('#groups-table button[data-sort="total_requests"]');
      assert.notEqual((await order())[0], String(hostile.ID));
    });

    await step("the hostile group name is rendered as text, never as markup", async () => {
      const name = await page.$eval(`#groups-table tr[data-group-id="${hostile.ID}"] td.name`, (e) => e.textContent);
      assert.equal(name, HOSTILE_GROUP);
      assert.equal(await page.$$eval("img", (imgs) => imgs.filter((i) => i.getAttribute("src") === "x").length), 0);
      assert.equal(await page.$$eval("#main script, #main img", (n) => n.length), 0);
    });

    await step("the failing key is listed first, linked to its view", async () => {
      await page.waitForFunction(() => document.querySelector("#failing-a tbody tr")?.dataset.keyId === "2", { timeout: 10000 });
      if (has.top) {
        await page.waitForFunction(() => document.querySelector("#failing-b tbody tr")?.dataset.keyId === "2");
      } else {
        assert.match(await text(page, "#failing-note"), /not available/);
      }
      assert.equal(await dataValue(page, '#failing-a tbody tr td[data-col="failure_requests"]'), "40");
      await page.click('#failing .toggle button[data-by="failure_rate"]');
      await page.waitForFunction(() => document.querySelector('#failing button[data-by="failure_rate"]').getAttribute("aria-pressed") === "true");
      // By rate, the banned key's 7 failures in 7 requests come before 40 in 45.
      await page.waitForFunction(() => document.querySelector("#failing-a tbody tr")?.dataset.keyId === "4");
      await page.click('#failing .toggle button[data-by="failures"]');
      await page.waitForFunction(() => document.querySelector("#failing-a tbody tr")?.dataset.keyId === "2");
    });

    await step("the bans panel lists the banned key with its reason as text", async () => {
      await page.waitForSelector('#bans-table tr[data-key-id="4"]');
      assert.equal(await text(page, '#bans-table tr[data-key-id="4"] td.reason'), HOSTILE_REASON);
      const events = await text(page, "#events-status");
      if (!has.events) {
        await page.waitForFunction(() => document.getElementById("events-status").textContent.includes("not available"));
      } else {
        assert.doesNotMatch(events, /not available/);
      }
    });

    await step("the lines chart drew points from /metrics deltas", async () => {
      await page.waitForFunction(
        () => Number(document.getElementById("lines-chart").dataset.points) > 0 &&
          /udp ignored/.test(document.getElementById("lines-legend").textContent),
        { timeout: 15000 },
      );
      // Pixels of a series' colour were painted (not only the grid).
      const painted = await page.$eval("#lines-chart", (c) => {
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) n += d[i] > 0 ? 1 : 0;
        return n;
      });
      assert.ok(painted > 500, `painted ${painted}`);
    });

    await step("screenshots at 1280 px and 390 px; no horizontal scroll at 390 px", async () => {
      const dir = args.images;
      if (dir) {
        fs.mkdirSync(dir, { recursive: true });
        await page.screenshot({ path: path.join(dir, "status-page-1280.png"), fullPage: true });
      }
      await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 2 });
      await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "dark" }]);
      await new Promise((r) => setTimeout(r, 2500));  // one refresh at the new width
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `the page is ${overflow} px wider than the 390 px screen`);
      if (dir) {
        await page.screenshot({ path: path.join(dir, "status-page-390-dark.png"), fullPage: true });
      }
      await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "light" }]);
      await page.setViewport({ width: 1280, height: 900 });
      clearInterval(sender);
    });

    await step("the key view: its record with api_key masked, and its minute series", async () => {
      await page.click('#failing-a tbody tr[data-key-id="2"] a');
      await page.waitForSelector("#key-view:not([hidden])");
      assert.equal(new URL(page.url()).hash, "#key/2");
      await page.waitForFunction(() => document.querySelector('#key-record dd[data-field="api_key"]'));
      assert.equal(await text(page, '#key-record dd[data-field="api_key"]'), "sk-…4f2a");
      const html = await page.content();
      for (const secret of [FAILING_API_KEY, BANNED_API_KEY, "sk-live-aaaaaaaaaaaaaaaa1111"]) {
        assert.ok(!html.includes(secret), "an api_key is in the page");
      }
      if (has.windows) {
        await page.waitForFunction(() => Number(document.getElementById("key-chart").dataset.points) > 0, { timeout: 10000 });
      } else {
        await page.waitForFunction(() => document.getElementById("key-series-note").textContent.includes("not available"));
      }
      await page.click("#key-back");
      await page.waitForSelector("#dashboard:not([hidden])");
    });

    await step("unban asks for confirmation, then the key leaves the list", async () => {
      const button = '#bans-table tr[data-key-id="4"] button[data-unban]';
      // Cancel first: nothing changes.
      await page.click(button);
      await page.waitForSelector("#confirm[open]");
      await page.keyboard.press("Escape");
      await page.waitForSelector("#confirm:not([open])");
      assert.equal((await t.must(200, "GET", "/admin/api-keys/4")).status, "auto_disabled");
      await page.click(button);
      await page.waitForSelector("#confirm[open]");
      await page.click("#confirm-ok");
      if (has.unban) {
        await page.waitForFunction(() => !document.querySelector('#bans-table tr[data-key-id="4"]'), { timeout: 10000 });
        assert.equal((await t.must(200, "GET", "/admin/api-keys/4")).status, "active");
        if (has.events) {
          await page.waitForSelector('#events li[data-event="unban"]', { timeout: 10000 });
        }
      } else {
        await page.waitForFunction(() => document.getElementById("bans-note").textContent.includes("not available"));
        assert.equal((await t.must(200, "GET", "/admin/api-keys/4")).status, "auto_disabled");
      }
    });

    await step("keyboard: every control can take the focus, and keeps it across refreshes", async () => {
      const unreachable = await page.$$eval("a[href], button, input", (els) =>
        els.filter((e) => e.offsetParent !== null && (e.tabIndex < 0 || e.disabled && e.dataset.unban === undefined)).map((e) => e.outerHTML),
      );
      assert.deepEqual(unreachable, []);
      await page.focus('#groups-table button[data-sort="name"]');
      await page.keyboard.press("Enter");
      assert.equal(await page.$eval('#groups-table th[aria-sort]', (th) => th.querySelector("button").dataset.sort), "name");
      // The refresh every 2 s keeps the focus where the keyboard left it.
      assert.equal(await page.evaluate(() => document.activeElement.dataset.focusKey), "sort-name");
      await page.focus('#failing-a tbody tr[data-key-id="2"] a');
      const refreshed = await page.$eval("#updated", (e) => e.textContent);
      await page.waitForFunction((before) => document.getElementById("updated").textContent !== before, { timeout: 10000 }, refreshed);
      await page.waitForFunction((before) => document.getElementById("updated").textContent !== before, { timeout: 10000 },
        await page.$eval("#updated", (e) => e.textContent));
      assert.equal(await page.evaluate(() => document.activeElement.dataset.focusKey), "key-2");
    });

    await step("log out forgets the token; nothing was injected or refused meanwhile", async () => {
      await page.click("#logout");
      await page.waitForSelector("#login:not([hidden])");
      assert.equal(await page.evaluate(() => sessionStorage.length), 0);
      assert.deepEqual(seen.dialogs, [], "a dialog opened");
      assert.deepEqual(seen.errors, [], "script errors or CSP violations");
      assert.deepEqual(seen.tokenInUrl, [], "the token went into a URL");
    });
  } catch (err) {
    console.error(`not ok - ${err.stack || err}`);
    console.error(`--- tallyd's log:\n${t.log()}`);
    process.exitCode = 1;
  } finally {
    clearInterval(sender);
    if (browser) {
      await browser.close();
    }
    await t.stop();
    t.removeDir();
  }
  console.log(process.exitCode ? "FAILED" : `${passed} passed, 0 failed`);
}

await main();
