// Eight people in one SFU room on the demo's room.html (`?topology=sfu`): each page encodes
// its camera once, decodes all seven others over one connection, and lays the eight tiles out
// three by three in the window; each tile reports its size, so the small layer is pulled.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser } from "./support.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  // Eight pages encode and decode in one browser: the fake camera runs at 10 frames a second
  // (its default is 30) so that a 2-core machine keeps up with all of them.
  browser = await launchBrowser({ extraArgs: ["--use-fake-device-for-media-stream=fps=10"] });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const PEOPLE = 8;

test("eight pages in an sfu room each decode all seven others with one connection each, in a 3 × 3 grid", async () => {
  const room = `sfu8-${Date.now()}`;
  const pages = [];
  for (let i = 0; i < PEOPLE; i++) {
    const context = await browser.newContext({ permissions: ["camera", "microphone"], viewport: { width: 1280, height: 720 } });
    await context.addInitScript(() => {
      // Cameras without microphones. Eight pages in one browser would otherwise carry 64
      // audio streams (each 50 packets a second), and every packet of every page passes through
      // Chromium's one network service: on 2 cores it fell so far behind that a page's
      // `fetch("/livez")` took 30 to 180 s while the server answered others in milliseconds
      // (without audio: under 1 s). Audio through the SFU is tested in sfu.test.mjs.
      const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
      navigator.mediaDevices.getUserMedia = (constraints) => gum({ ...constraints, audio: false });
      // Count the page's peer connections to prove there is one.
      const Real = window.RTCPeerConnection;
      window.pcCount = 0;
      window.pcs = [];
      window.RTCPeerConnection = class extends Real {
        constructor(...args) {
          super(...args);
          window.pcCount++;
          window.pcs.push(this);
        }
      };
    });
    const page = await context.newPage();
    page.errors = [];
    page.on("pageerror", (e) => page.errors.push(e.message));
    // Seven pages already playing seven videos each keep two cores busy: the eighth may take
    // a while to load and join.
    await page.goto(`${server.url}/room.html?room=${room}&name=P${i}&topology=sfu`, { timeout: 90_000 });
    await page.waitForFunction(() => document.querySelector("#state")?.dataset.state === "connected", null, { timeout: 90_000 });
    pages.push(page);
  }
  const everyoneDecoded = () =>
    Promise.all(pages.map((page) => page.evaluate(() => window.room.snapshot().remoteStreams.filter((r) => r.framesDecoded > 0).length)));
  const deadline = Date.now() + 120_000;
  let counts = await everyoneDecoded();
  while (!counts.every((n) => n === PEOPLE - 1)) {
    if (Date.now() >= deadline) {
      // Say what the pages that lag behind see, so a failure here can be told apart.
      const states = await Promise.all(
        pages.map((page) =>
          page.evaluate(() => {
            const s = window.room.snapshot();
            const pc = window.pcs?.at(-1);
            return `${s.connectionState}/${pc?.connectionState}/${s.error?.code ?? "-"}`;
          }),
        ),
      );
      assert.fail(`everyone decodes everyone within 2 minutes: ${counts} (room/connection/error: ${states})`);
    }
    await new Promise((r) => setTimeout(r, 1000));
    counts = await everyoneDecoded();
  }
  const pcs = await Promise.all(pages.map((page) => page.evaluate(() => window.pcCount)));
  assert.deepEqual(pcs, Array(PEOPLE).fill(1), "one peer connection per page");
  assert.equal(await pages[0].evaluate(() => window.room.snapshot().topology), "sfu");

  // Eight tiles, three columns, all inside the window.
  const layout = await pages[0].evaluate(() => {
    const tiles = [...document.querySelectorAll(".tile")].map((t) => t.getBoundingClientRect());
    return {
      count: tiles.length,
      columns: new Set(tiles.map((r) => Math.round(r.left))).size,
      inside: tiles.every((r) => r.top >= 0 && r.bottom <= innerHeight && r.right <= innerWidth),
      height: Math.round(tiles[0].height),
    };
  });
  assert.deepEqual({ ...layout, height: undefined }, { count: PEOPLE, columns: 3, inside: true, height: undefined }, JSON.stringify(layout));
  // Tiles about 170 px tall: each page pulls the half layer (240 of 480 lines) of everyone.
  const mediumEverywhere = async () =>
    (await Promise.all(pages.map((page) => page.evaluate(() => window.room.snapshot().remoteStreams.map((r) => r.videoLayer))))).flat();
  const layerDeadline = Date.now() + 30_000;
  let layers = await mediumEverywhere();
  while (!layers.every((l) => l === "medium")) {
    assert.ok(Date.now() < layerDeadline, `every tile pulls the half layer: ${layers}`);
    await new Promise((r) => setTimeout(r, 1000));
    layers = await mediumEverywhere();
  }
  // And what arrives is the half layer: frames at most 240 lines tall, in every remote tile.
  const tallestIn = (page) =>
    page.evaluate(() => {
      const videos = [...document.querySelectorAll('.tile:not([data-peer="local"]) video')];
      return Math.max(...videos.map((v) => v.videoHeight));
    });
  const tallest = async () => Math.max(...(await Promise.all(pages.map(tallestIn))));
  const heightDeadline = Date.now() + 15_000;
  while ((await tallest()) > 240) {
    assert.ok(Date.now() < heightDeadline, `frames of the half layer everywhere (tallest ${await tallest()} lines)`);
    await new Promise((r) => setTimeout(r, 500));
  }
  await Promise.all(pages.map((page) => page.evaluate(() => window.room.leave())));
  assert.deepEqual(pages.flatMap((p) => p.errors), []);
});
