// Warren's management UI in a real browser (Debian's Chromium, headless, driven by
// playwright-core): log in, read the overview, page and filter queues, publish, get and purge
// on a queue page, bind, close a connection, declare an exchange, manage users and
// definitions. Screenshots of each page go to $UI_SCREENSHOTS (default: ./screenshots).
"use strict";

const { test, before, after } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const amqp = require("amqplib");
const { chromium } = require("playwright-core");

const MANAGEMENT_URL = process.env.MANAGEMENT_URL;
const AMQP_URL = process.env.AMQP_URL;
const SHOTS = process.env.UI_SCREENSHOTS || path.join(__dirname, "..", "screenshots");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const AUTH = "Basic " + Buffer.from("guest:guest").toString("base64");
// The UI is Warren's own: against RabbitMQ (interop/run --against) there is nothing to test.
const skip = !MANAGEMENT_URL || process.env.INTEROP_AGAINST ? "Warren's own UI: runs only against the Warren interop/run starts" : false;

let browser, page;

async function api(method, p, body) {
  const r = await fetch(MANAGEMENT_URL + "/api" + p, {
    method, headers: { Authorization: AUTH, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${await r.text()}`);
  const text = await r.text();
  return text ? JSON.parse(text) : null;
}

async function shot(name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name + ".png"), fullPage: true });
}

// The text of the big number in a tile.
const tile = (id) => page.locator(`[data-tile="${id}"] .n`);

before(async () => {
  if (skip) return;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // As root in a container, without the network services Chromium would call home to.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("dialog", (d) => d.accept(d.type() === "prompt" ? "closed from the UI test" : undefined));
});

after(async () => {
  if (browser) await browser.close();
});

test("a wrong password is refused and guest logs in to the overview", { skip }, async () => {
  await page.goto(MANAGEMENT_URL + "/");
  await page.fill("input[name=username]", "guest");
  await page.fill("input[name=password]", "wrong");
  await page.click("#login button");
  await page.waitForSelector("#login-error:has-text('Login failed')");
  await page.fill("input[name=password]", "guest");
  await page.click("#login button");
  await page.waitForSelector("#page[data-page=overview]");
  assert.match(await page.textContent("#user"), /guest/);
  assert.match(await page.textContent("#version"), /RabbitMQ 3\.10\.0 compatible/);
  await page.waitForSelector("canvas[data-chart='Message rates']");
  await shot("overview");
});

test("queues page, filter and page through many queues", { skip }, async () => {
  for (let i = 0; i < 120; i++) await api("PUT", `/queues/%2F/ui-many-${String(i).padStart(3, "0")}`, { durable: false });
  await page.goto(MANAGEMENT_URL + "/#/queues");
  await page.waitForSelector("#page[data-page=queues]");
  await page.fill("#add-queue input[name=name]", "ui-orders");
  await page.click("#add-queue button");
  await page.waitForSelector("#toast:has-text('Queue ui-orders declared')");
  await page.fill("#queue-filter", "orders");
  await page.press("#queue-filter", "Enter");
  await page.waitForSelector("td >> text=ui-orders");
  await page.fill("#queue-filter", "ui-many");
  await page.press("#queue-filter", "Enter");
  await page.waitForSelector("#queue-page:has-text('Page 1 of 2 · 120 of')");
  await page.click("text=Next ›");
  await page.waitForSelector("#queue-page:has-text('Page 2 of 2')");
  assert.equal(await page.locator("tbody tr").count(), 20);
  await page.fill("#queue-filter", "ui-");
  await page.press("#queue-filter", "Enter");
  await page.waitForSelector("#queue-page:has-text('Page 1 of 2 · 121 of')");
  await page.click("th:has-text('Name')");
  await page.waitForSelector("th.sorted:has-text('Name')");
  await shot("queues");
  for (let i = 0; i < 120; i++) await api("DELETE", `/queues/%2F/ui-many-${String(i).padStart(3, "0")}`);
});

test("on a queue's page: publish, get, bind, purge and delete", { skip }, async () => {
  await page.goto(MANAGEMENT_URL + "/#/queues/%2F/ui-orders");
  await page.waitForSelector("#page[data-page=queue]");
  await page.fill("#publish textarea[name=payload]", "hello from the UI");
  await page.selectOption("#publish select[name=delivery_mode]", "2");
  await page.click("#publish button");
  await page.waitForFunction(() => document.querySelector('[data-tile="ready"] .n')?.textContent === "1");
  await page.click("#get-messages button");
  await page.waitForSelector("#got pre:has-text('hello from the UI')");
  assert.match(await page.textContent("#got"), /"delivery_mode":2/);
  // Requeued by default: still there.
  assert.equal((await api("GET", "/queues/%2F/ui-orders")).messages, 1);
  await page.fill("#bind input[name=exchange]", "amq.direct");
  await page.fill("#bind input[name=routing_key]", "orders.new");
  await page.click("#bind button");
  await page.waitForSelector("td >> text=orders.new");
  await shot("queue");
  const bindings = await api("GET", "/queues/%2F/ui-orders/bindings");
  assert.ok(bindings.some((b) => b.source === "amq.direct" && b.routing_key === "orders.new"));
  await page.click("#purge");
  await page.waitForFunction(() => document.querySelector('[data-tile="ready"] .n')?.textContent === "0");
  assert.equal((await api("GET", "/queues/%2F/ui-orders")).messages, 0);
  await page.click("#delete-queue");
  await page.waitForSelector("#page[data-page=queues]");
  const r = await fetch(MANAGEMENT_URL + "/api/queues/%2F/ui-orders", { headers: { Authorization: AUTH } });
  assert.equal(r.status, 404);
});

test("a connection is listed and closed from the connections page", { skip }, async () => {
  const conn = await amqp.connect(AMQP_URL, { clientProperties: { connection_name: "ui-test-client" } });
  // amqplib reports the server's connection.close with the close event's error.
  const closed = new Promise((resolve) => conn.on("close", resolve));
  conn.on("error", () => {});
  await conn.createChannel();
  await page.goto(MANAGEMENT_URL + "/#/connections");
  await page.waitForSelector("td >> text=ui-test-client");
  await page.goto(MANAGEMENT_URL + "/#/channels");
  await page.waitForSelector("#page[data-page=channels] tbody td");
  await shot("channels");
  await page.goto(MANAGEMENT_URL + "/#/connections");
  await page.waitForSelector("td >> text=ui-test-client");
  await shot("connections");
  const row = page.locator("tr", { hasText: "ui-test-client" });
  await row.locator("button:has-text('Close')").click();
  const err = await closed;
  assert.match(String(err.message), /320/);
  assert.match(String(err.message), /closed from the UI test/);
});

test("an exchange is declared from the exchanges page", { skip }, async () => {
  await page.goto(MANAGEMENT_URL + "/#/exchanges");
  await page.waitForSelector("#page[data-page=exchanges]");
  await page.fill("#add-exchange input[name=name]", "ui-events");
  await page.selectOption("#add-exchange select[name=type]", "topic");
  await page.click("#add-exchange button");
  await page.waitForSelector("a >> text=ui-events");
  await shot("exchanges");
  assert.equal((await api("GET", "/exchanges/%2F/ui-events")).type, "topic");
  // A message published to it shows on its page (RabbitMQ's publish_in).
  await api("POST", "/exchanges/%2F/ui-events/publish", { properties: {}, routing_key: "none", payload: "x", payload_encoding: "string" });
  await page.click("a >> text=ui-events");
  await page.waitForSelector("#page[data-page=exchange]");
  await page.waitForSelector("dd >> text=/^1( |$)/");
  await shot("exchange");
  await api("DELETE", "/exchanges/%2F/ui-events");
});

test("users, vhosts, permissions, policies and definitions on the admin page", { skip }, async () => {
  await page.goto(MANAGEMENT_URL + "/#/admin");
  await page.waitForSelector("#page[data-page=admin]");
  await page.fill("#add-user input[name=name]", "ui-user");
  await page.fill("#add-user input[name=password]", "ui-pass");
  await page.fill("#add-user input[name=tags]", "management");
  await page.click("#add-user button");
  await page.waitForSelector("td >> text=ui-user");
  await page.fill("#add-vhost input[name=name]", "ui-vhost");
  await page.click("#add-vhost button");
  await page.waitForSelector("td >> text=ui-vhost");
  await page.selectOption("#set-permission select[name=user]", "ui-user");
  await page.selectOption("#set-permission select[name=vhost]", "ui-vhost");
  await page.click("#set-permission button");
  await page.waitForFunction(() => [...document.querySelectorAll("td")].filter((td) => td.textContent === "ui-user").length >= 2);
  await page.selectOption("#add-policy select[name=vhost]", "ui-vhost");
  await page.fill("#add-policy input[name=name]", "ui-limit");
  await page.fill("#add-policy input[name=pattern]", "^ui");
  await page.fill("#add-policy input[name=definition]", '{"max-length": 10}');
  await page.click("#add-policy button");
  await page.waitForSelector("td >> text=ui-limit");
  await shot("admin");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-definitions")]);
  const file = await download.path();
  const defs = JSON.parse(fs.readFileSync(file, "utf8"));
  assert.ok(defs.users.some((u) => u.name === "ui-user"));
  assert.ok(defs.policies.some((p) => p.name === "ui-limit" && p.vhost === "ui-vhost"));
  // The user logs in over AMQP with the password set in the page.
  const conn = await amqp.connect(AMQP_URL.replace("guest:guest@", "ui-user:ui-pass@").replace(/\/[^/]*$/, "/ui-vhost"));
  await conn.close();
  // Upload: a definitions file with a new vhost.
  const upload = path.join(SHOTS, "upload.json");
  fs.writeFileSync(upload, JSON.stringify({ vhosts: [{ name: "ui-uploaded" }] }));
  await page.setInputFiles("#definitions-file", upload);
  await page.click("#upload-definitions");
  await page.waitForSelector("td >> text=ui-uploaded");
  for (const v of ["ui-vhost", "ui-uploaded"]) await api("DELETE", `/vhosts/${v}`);
  await api("DELETE", "/users/ui-user");
});
