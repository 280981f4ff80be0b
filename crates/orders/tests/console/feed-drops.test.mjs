// The console's live feed in Chromium behind a proxy that breaks its connection again and again:
// the page's EventSource reconnects by itself with Last-Event-ID. Started by
// crates/orders/tests/api/streams.rs, which writes the events and breaks the connections. Prints
// "ready" once the page is live, then (once it shows EXPECT rows) the positions it shows.
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (this script is run by tests/api/streams.rs)`);
  return value;
};
const BASE = env("FEED_BASE_URL");
const LINK = env("FEED_LINK");
const EXPECT = Number(env("FEED_EXPECT"));

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
try {
  const page = await (await browser.newContext()).newPage();
  await page.goto(LINK);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${BASE}/console/orders`);
  await page.goto(`${BASE}/console/feed`);
  await page.getByText("Live", { exact: true }).waitFor();
  console.log("ready");
  await page.waitForFunction(
    (n) => document.querySelectorAll("[data-feed-rows] tr").length >= n, EXPECT,
    { timeout: 300_000, polling: 200 });
  await page.waitForTimeout(1_000); // a repeated event would show by now
  const positions = await page.$$eval("[data-feed-rows] tr td:first-child",
    (cells) => cells.map((cell) => Number(cell.textContent)));
  console.log(JSON.stringify({ positions }));
} finally {
  await browser.close();
}
