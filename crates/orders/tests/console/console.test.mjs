// The operator console in a real browser: Debian's Chromium driven by playwright-core, checked
// with axe-core. Started by crates/orders/tests/api/console.rs, which runs the service, prepares
// its data and passes everything through the environment. Exits non-zero on the first failure.
import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { execFileSync } from "node:child_process";
import assert from "node:assert/strict";

const require = createRequire(import.meta.url);
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (this script is run by tests/api/console.rs)`);
  return value;
};
const BASE = env("CONSOLE_BASE_URL");
const LINK = env("CONSOLE_LINK");
const EXPIRED_LINK = env("CONSOLE_EXPIRED_LINK");
const STAFF = env("CONSOLE_STAFF_TOKEN");
const CUSTOMER = env("CONSOLE_CUSTOMER_TOKEN");
const CUSTOMER_ID = env("CONSOLE_CUSTOMER_ID");
const ORDER = env("CONSOLE_ORDER_ID");
const CORRELATED = env("CONSOLE_CORRELATED_ORDER_ID");
const PARKED = env("CONSOLE_PARKED_POSITION");
const SHOTS = env("CONSOLE_SCREENSHOTS");
mkdirSync(SHOTS, { recursive: true });

const step = (name) => console.log(`- ${name}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});

// axe is injected as a script, which the console's Content-Security-Policy would refuse: the
// checking context bypasses CSP (the pages themselves run with it in every other step).
async function axeCheck(page, name) {
  await page.addScriptTag({ path: require.resolve("axe-core/axe.min.js") });
  const result = await page.evaluate(async () => await window.axe.run(document, {
    runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
  }));
  const problems = result.violations.map((v) =>
    `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("\n    ")}`);
  assert.deepEqual(problems, [], `accessibility violations on ${name}:\n${problems.join("\n")}`);
}

async function shot(page, name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

async function api(method, path, token, body, headers = {}) {
  const answer = await fetch(BASE + path, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await answer.text();
  return { status: answer.status, body: text ? JSON.parse(text) : null };
}

let current = null; // the page a failure is photographed from
try {
  step("customers and anonymous callers get only the login page");
  for (const headers of [{}, { authorization: `Bearer ${CUSTOMER}` },
    { cookie: `orders_console=${CUSTOMER}` }, { cookie: `orders_console=${STAFF}` }]) {
    for (const path of ["/console/orders", `/console/orders/${ORDER}`, "/console/operations", "/console/feed/events"]) {
      const answer = await fetch(BASE + path, { headers, redirect: "manual" });
      const text = await answer.text();
      assert.equal(answer.status, 401, `${path} with ${Object.keys(headers)}`);
      assert.match(text, /orders console-link/);
      assert.ok(!text.includes(ORDER), "the login page shows no order");
    }
  }

  const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  current = page;
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));

  step("an expired link fails");
  await page.goto(EXPIRED_LINK);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText(/invalid or expired/).waitFor();

  step("a link signs in once");
  await page.goto(LINK);
  await shot(page, "login");
  await axeCheck(page, "login");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${BASE}/console/orders`);
  const cookie = (await context.cookies()).find((c) => c.name === "orders_console");
  assert.ok(cookie, "the session cookie is set");
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");
  assert.equal(cookie.path, "/console");
  assert.equal(await page.evaluate(() => document.cookie), "", "scripts cannot read the session");

  step("a used link fails, in another browser too");
  const other = await browser.newContext();
  const otherPage = await other.newPage();
  await otherPage.goto(LINK);
  await otherPage.getByRole("button", { name: "Sign in" }).click();
  await otherPage.getByText(/used already/).waitFor();
  await other.close();

  step("find an order by the start of its id");
  await page.getByLabel("Order id (or its start)").fill(ORDER.slice(0, 13));
  await page.getByRole("button", { name: "Search" }).click();
  const hit = page.getByRole("link", { name: ORDER });
  await hit.waitFor();
  await shot(page, "orders");
  await axeCheck(page, "orders");
  await page.getByLabel("Customer id").fill(CUSTOMER_ID);
  await page.getByLabel("Status").selectOption("shipped");
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByText("No order matches.").waitFor();
  await page.getByLabel("Status").selectOption("created");
  await page.getByRole("button", { name: "Search" }).click();
  await hit.waitFor();

  step("its timeline lists its events in version order, with their payloads");
  await hit.click();
  await page.waitForURL(`${BASE}/console/orders/${ORDER}`);
  const versions = await page.locator("[data-testid=timeline] > li").evaluateAll(
    (items) => items.map((li) => Number(li.dataset.version)));
  assert.deepEqual(versions, [1, 2]);
  const first = page.locator("[data-testid=timeline] > li[data-version='1']");
  assert.match(await first.textContent(), /OrderCreated/);
  assert.match(await first.locator("pre").first().textContent(), /"sku": "CONSOLE-SKU-1"/);
  assert.match(await first.textContent(), /console-tester/, "the user of the event");
  const second = page.locator("[data-testid=timeline] > li[data-version='2']");
  assert.match(await second.textContent(), /ShippingAddressChanged/);
  assert.match(await second.textContent(), /Console Street 1/, "personal fields are revealed to staff");
  assert.equal(await page.getByTestId("current-version").textContent(), "2");
  step("the other events of its correlation are listed");
  await page.getByRole("link", { name: CORRELATED }).waitFor();

  step("a second tab opens the same version");
  const stale = await context.newPage();
  await stale.goto(`${BASE}/console/orders/${ORDER}`);

  step("confirm from the page: the new version shows");
  await page.getByRole("button", { name: "Confirm" }).click();
  await page.getByText(/^Confirmed\./).waitFor();
  assert.equal(await page.getByTestId("current-version").textContent(), "3");
  assert.equal(await page.getByTestId("state-status").textContent(), "confirmed");
  await shot(page, "order");
  await axeCheck(page, "order");

  step("step back to version 1: status created");
  await page.getByRole("link", { name: "← Version 2" }).click();
  await page.getByRole("link", { name: "← Version 1" }).click();
  await page.getByRole("heading", { name: "State at version 1 of 3" }).waitFor();
  assert.equal(await page.getByTestId("state-status").textContent(), "created");
  assert.equal(await page.getByTestId("state-version").textContent(), "1");

  step("confirm again from the stale tab: a conflict, nothing changes");
  await stale.getByRole("button", { name: "Confirm" }).click();
  await stale.getByText(/Conflict: this page showed version 2/).waitFor();
  assert.equal(await stale.getByTestId("current-version").textContent(), "3");
  const events = await api("GET", `/orders/${ORDER}/events`, STAFF);
  assert.equal(events.body.events.length, 3, "the stale confirm wrote nothing");
  await stale.close();

  step("a form without this session's CSRF token is refused");
  for (const csrf of ["", "00", "deadbeef".repeat(8)]) {
    const forged = await page.request.post(`${BASE}/console/orders/${ORDER}/ship`, {
      form: { csrf, version: "3" }, maxRedirects: 0,
    });
    assert.equal(forged.status(), 403);
  }
  const foreign = await page.request.post(`${BASE}/console/orders/${ORDER}/ship`, {
    form: { csrf: "x", version: "3" }, headers: { origin: "https://evil.example" }, maxRedirects: 0,
  });
  assert.equal(foreign.status(), 403);
  assert.equal((await api("GET", `/orders/${ORDER}`, STAFF)).body.version, 3);

  step("the live feed shows a command sent with curl within 2 s");
  await page.getByRole("link", { name: "Live feed" }).click();
  await page.getByText("Live", { exact: true }).waitFor();
  const sent = Date.now();
  const sentWithCurl = execFileSync("curl", ["-sS", "--fail-with-body", "-X", "POST", `${BASE}/orders`,
    "-H", `Authorization: Bearer ${STAFF}`, "-H", "Content-Type: application/json",
    "-d", JSON.stringify({
      customer_id: CUSTOMER_ID, currency: "EUR",
      items: [{ product_id: crypto.randomUUID(), sku: "LIVE-1", quantity: 1, unit_price: 100 }],
    })], { encoding: "utf8" });
  const created = { body: JSON.parse(sentWithCurl) };
  const live = page.locator("[data-feed-rows] tr", { hasText: created.body.id });
  await live.first().waitFor({ timeout: 2000 });
  console.log(`  seen after ${Date.now() - sent} ms`);
  await shot(page, "feed");
  await axeCheck(page, "feed");

  step("the feed filters by type and pauses");
  await page.getByLabel("Event type").selectOption("OrderConfirmed");
  assert.equal(await live.first().isVisible(), false, "an OrderCreated row is hidden");
  await page.getByLabel("Event type").selectOption("");
  await page.getByRole("button", { name: "Pause" }).click();
  const confirmed = await api("POST", `/orders/${created.body.id}/confirm`, STAFF);
  assert.equal(confirmed.status, 200);
  await page.getByText("Paused (1 new)").waitFor();
  const confirmation = page.locator("[data-feed-rows] tr", { hasText: created.body.id })
    .filter({ hasText: "OrderConfirmed" });
  assert.equal(await confirmation.count(), 0, "nothing is added while paused");
  await page.getByRole("button", { name: "Resume" }).click();
  await confirmation.first().waitFor();

  step("a parked event is retried from the page; the webhook endpoints are listed");
  const hook = await api("POST", "/webhooks", STAFF, { url: "https://93.184.216.34/console-hook" });
  assert.equal(hook.status, 201);
  await page.getByRole("link", { name: "Projections and outbox" }).click();
  const hookRow = page.locator(`tr[data-webhook='${hook.body.id}']`);
  await hookRow.waitFor();
  assert.match(await hookRow.textContent(), /https:\/\/93\.184\.216\.34\/console-hook/);
  assert.match(await hookRow.textContent(), /active/);
  const parkedRow = page.locator("[data-projection=orders] tr[data-parked='" + PARKED + "']");
  await parkedRow.waitFor();
  assert.match(await parkedRow.textContent(), /OrderTeleported/);
  await shot(page, "operations");
  await axeCheck(page, "operations");
  await parkedRow.getByRole("button", { name: "Retry" }).click();
  await page.getByText(`The event at position ${PARKED} applied`).waitFor();
  assert.equal(await page.locator("[data-projection=orders] tr[data-parked]").count(), 0);
  const parked = await api("GET", "/projections/orders/parked", STAFF);
  assert.deepEqual(parked.body, []);

  step("health charts");
  await page.getByRole("link", { name: "Health" }).click();
  assert.equal(await page.locator("figure.chart").count(), 5);
  await shot(page, "health");
  await axeCheck(page, "health");

  step("keyboard: the first Tab reaches the skip link, and it leads to the content");
  await page.getByRole("link", { name: "Orders", exact: true }).click();
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
  await page.keyboard.press("Enter");
  // Following the skip link moves the focus to <main> (a moment later, as a navigation).
  await page.waitForFunction(() => document.activeElement && document.activeElement.id === "main");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "id", "the search field is next");

  step("readable on a narrow window");
  await page.setViewportSize({ width: 380, height: 800 });
  await page.goto(`${BASE}/console/orders/${ORDER}`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page scrolls sideways by ${overflow}px`);
  await shot(page, "order-narrow");

  step("sign out");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByText("You are signed out").waitFor();
  const after = await page.request.get(`${BASE}/console/orders`);
  assert.equal(after.status(), 401);

  assert.deepEqual(errors, [], "no script errors");
  console.log("console browser test passed");
} catch (error) {
  if (current) {
    await current.screenshot({ path: `${SHOTS}/failure.png`, fullPage: true }).catch(() => {});
    console.log(`failed on ${current.url()}; screenshot: ${SHOTS}/failure.png`);
  }
  throw error;
} finally {
  await browser.close();
}
