// The demo page served by callroom-server loads the built wasm package.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, startServer, launchBrowser } from "./support.mjs";

const expectedVersion = JSON.parse(readFileSync(join(ROOT, "pkg", "package.json"), "utf8")).version;
let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("the demo index shows the version read from the wasm module", async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (err) => errors.push(err.message));
  await page.goto(`${server.url}/`);
  const status = page.locator("#status");
  await status.and(page.locator("[data-state=ready]")).waitFor({ timeout: 15_000 });
  assert.equal(await status.getAttribute("data-version"), expectedVersion);
  assert.match(await status.textContent(), new RegExp(`callroom ${expectedVersion.replaceAll(".", "\\.")} is loaded`));
  assert.deepEqual(errors, []);
});

test("the package is served with the wasm MIME type browsers need for streaming compile", async () => {
  const response = await fetch(`${server.url}/pkg/callroom_bg.wasm`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/wasm");
  const bytes = new Uint8Array(await response.arrayBuffer());
  assert.deepEqual([...bytes.subarray(0, 4)], [0x00, 0x61, 0x73, 0x6d], "wasm magic number");
});
