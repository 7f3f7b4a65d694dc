// Eight people in one SFU room through the library (`topology: "sfu"`): each page encodes its
// camera once, and every page decodes all seven others.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, pageWithCallroom } from "./support.mjs";

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

const PEOPLE = 8;

test("eight pages in an sfu room each decode all seven others with one connection each", async () => {
  const room = `sfu8-${Date.now()}`;
  const pages = [];
  for (let i = 0; i < PEOPLE; i++) pages.push(await pageWithCallroom(browser, server));
  const ids = [];
  for (const [i, { page }] of pages.entries()) {
    ids.push(
      await page.evaluate(
        async ({ room, name }) => {
          // Count the page's peer connections to prove there is one.
          const Real = window.RTCPeerConnection;
          window.pcCount = 0;
          window.RTCPeerConnection = class extends Real {
            constructor(...args) { super(...args); window.pcCount++; }
          };
          const r = await window.callroom.Room.join({ room, name, topology: "sfu", statsIntervalMs: 1000 });
          window.room = r;
          // Small tiles, as in a gallery of eight: the small layer is pulled.
          r.subscribe(() => {
            for (const s of r.snapshot().remoteStreams) r.setTileSize(s.peerId, 213, 120);
          });
          return r.snapshot().sessionId;
        },
        { room, name: `P${i}` },
      ),
    );
  }
  const everyoneDecoded = async () => {
    const counts = [];
    for (const { page } of pages) {
      counts.push(
        await page.evaluate(() => window.room.snapshot().remoteStreams.filter((r) => r.framesDecoded > 0).length),
      );
    }
    return counts;
  };
  const deadline = Date.now() + 120_000;
  let counts = await everyoneDecoded();
  while (!counts.every((n) => n === PEOPLE - 1)) {
    assert.ok(Date.now() < deadline, `everyone decodes everyone within 2 minutes: ${counts}`);
    await new Promise((r) => setTimeout(r, 1000));
    counts = await everyoneDecoded();
  }
  const pcs = await Promise.all(pages.map(({ page }) => page.evaluate(() => window.pcCount)));
  assert.deepEqual(pcs, Array(PEOPLE).fill(1), "one peer connection per page");
  const topology = await pages[0].page.evaluate(() => window.room.snapshot().topology);
  assert.equal(topology, "sfu");
  await Promise.all(pages.map(({ page }) => page.evaluate(() => window.room.leave())));
  assert.deepEqual(pages.flatMap((p) => p.errors), []);
  assert.equal(new Set(ids).size, PEOPLE);
});
