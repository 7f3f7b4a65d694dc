// An SFU room's session that the SFU and the page disagree about: a pull the SFU served (and
// made an offer for) whose answer never reached the page. The SFU then waits for that offer's
// answer and refuses every other call on the session (406 `invalid_params`); the page must
// start a new session rather than retry into the refusal forever.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launchBrowser, startServer } from "./support.mjs";

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

async function open(room, name, prepare = async () => {}) {
  const context = await browser.newContext({ permissions: ["camera", "microphone"] });
  await prepare(context);
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(e.message));
  page.sessions = 0;
  page.refusals = [];
  page.on("request", (r) => {
    if (r.method() === "POST" && r.url().endsWith("/sfu/sessions/new")) page.sessions++;
  });
  page.on("response", async (r) => {
    if (r.status() === 406) page.refusals.push((await r.json().catch(() => ({}))).errorCode);
  });
  await page.goto(`${server.url}/room.html?room=${room}&name=${name}&topology=sfu`);
  await page.waitForFunction(() => document.querySelector("#state")?.dataset.state === "connected", null, {
    timeout: 20_000,
  });
  return page;
}

const decodedFrom = (page, name) =>
  page.evaluate((n) => window.room.snapshot().remoteStreams.find((r) => r.name === n)?.framesDecoded ?? 0, name);

test("a pull whose answer is lost after the SFU made its offer: the page starts a new session (not retrying into 406 forever) and decodes the other", async () => {
  const room = `sfu-lost-${Date.now()}`;
  const first = await open(room, "Ann");
  let lost = null;
  const second = await open(room, "Bob", (context) =>
    context.route("**/sfu/sessions/*/tracks/new", async (route) => {
      const pulls = route.request().postDataJSON()?.tracks?.some((t) => t.location === "remote");
      if (lost || !pulls) return route.fallback();
      // The request reaches the server, which serves it; its answer is dropped on the way back.
      const response = await route.fetch();
      const body = await response.json();
      if (!body.requiresImmediateRenegotiation) return route.fulfill({ response, json: body });
      lost = body;
      return route.abort("connectionreset");
    }),
  );
  const deadline = Date.now() + 45_000;
  while ((await decodedFrom(second, "Ann")) === 0) {
    assert.ok(Date.now() < deadline, `Bob decodes Ann within 45 s (sessions ${second.sessions}, 406s ${second.refusals})`);
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.ok(lost, "a pull's answer carrying the SFU's offer was dropped");
  // The mechanism: the SFU refused the session's next call while it waited, and the page
  // recovered through a second session, not through the first.
  assert.ok(second.refusals.includes("invalid_params"), `the SFU refused the wedged session: ${second.refusals}`);
  assert.ok(second.sessions >= 2, `a new session was made: ${second.sessions}`);
  await first.waitForFunction(
    () => window.room.snapshot().remoteStreams.some((r) => r.name === "Bob" && r.framesDecoded > 0),
    null,
    { timeout: 30_000 },
  );
  await Promise.all([first, second].map((page) => page.evaluate(() => window.room.leave())));
  assert.deepEqual([...first.errors, ...second.errors], []);
});
