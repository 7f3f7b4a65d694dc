// The demo pages in real headless Chromium against a real callroom-server: hub, mesh, React
// under StrictMode, leaving, a server restart, a denied camera, and a screenshot.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ROOT,
  launchBrowser,
  launchKillableBrowser,
  startServer,
  tileCount,
  unique,
  waitForRemoteFrames,
} from "./support.mjs";

async function open(browser, url, { permissions = ["camera", "microphone"] } = {}) {
  const context = await browser.newContext({ permissions, viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(e.message));
  await page.goto(url);
  return page;
}

const state = (page) => page.locator("#state").getAttribute("data-state");

async function waitForState(page, wanted, timeout = 20_000) {
  await page.waitForFunction((w) => document.querySelector("#state")?.dataset.state === w, wanted, { timeout });
}

async function meshPage(browser, server, room, name, options) {
  const page = await open(browser, `${server.url}/room.html?room=${room}&name=${name}`, options);
  await waitForState(page, "connected");
  return page;
}

test("hub: the host decodes frames from both guests", async () => {
  const server = await startServer();
  const browser = await launchBrowser();
  try {
    const room = unique("hub");
    const host = await open(browser, `${server.url}/host.html?room=${room}&name=Host`);
    await host.click("#listen");
    await waitForState(host, "connected");
    const guests = [];
    for (const name of ["Gia", "Gus"]) {
      const guest = await open(browser, `${server.url}/guest.html?room=${room}&name=${name}`);
      assert.ok((await guest.locator("#camera option").count()) >= 1, "a camera to choose");
      await guest.click("#join");
      await waitForState(guest, "connected");
      guests.push(guest);
    }
    await waitForRemoteFrames(host, 2);
    assert.equal(await tileCount(host), 2, "one tile per guest, none for the host itself");
    const names = await host.locator(".tile .name").allTextContents();
    assert.deepEqual(names.sort(), ["Gia", "Gus"]);
    for (const guest of guests) {
      assert.equal(await guest.locator('.tile:not([data-peer="local"])').count(), 1, "a guest links only to the host");
    }
    assert.deepEqual([host, ...guests].flatMap((p) => p.errors), []);
  } finally {
    await browser.close();
    await server.stop();
  }
});

test("mesh: three participants on room.html each decode the other two", async () => {
  const server = await startServer();
  const browser = await launchBrowser();
  try {
    const room = unique("mesh");
    const pages = [];
    for (const name of ["Ann", "Bob", "Cy"]) pages.push(await meshPage(browser, server, room, name));
    for (const page of pages) await waitForRemoteFrames(page, 2);
    for (const page of pages) {
      assert.equal(await tileCount(page), 3);
      assert.equal(await page.locator(".tile.no-video").count(), 0, "every tile shows its video");
    }
    await pages[0].waitForFunction(() => document.querySelectorAll(".quality").length === 2, null, { timeout: 15_000 });
    assert.deepEqual(pages.flatMap((p) => p.errors), []);
  } finally {
    await browser.close();
    await server.stop();
  }
});

test("room.html: speaking tiles are highlighted; Record shows a running timer, then a download link to a playable file", async () => {
  const server = await startServer();
  const browser = await launchBrowser();
  try {
    const room = unique("record");
    const pages = [];
    for (const name of ["Ann", "Bob"]) pages.push(await meshPage(browser, server, room, name));
    for (const page of pages) await waitForRemoteFrames(page, 1);
    const [ann] = pages;
    // The fake microphones beep: both tiles light up.
    await ann.waitForFunction(() => document.querySelectorAll(".tile.speaking").length === 2, null, { timeout: 15_000 });
    await ann.click("#record");
    await ann.waitForFunction(() => /Stop recording · 0:0[2-9]/.test(document.querySelector("#record").textContent), null, { timeout: 15_000 });
    await ann.click("#record");
    const link = ann.locator("#download");
    await link.waitFor({ state: "visible", timeout: 15_000 });
    assert.match(await link.getAttribute("href"), /^blob:/);
    assert.match(await link.getAttribute("download"), /\.webm$/);
    assert.equal(await ann.locator("#record").textContent(), "Record");
    const duration = await ann.evaluate(async (href) => {
      const video = Object.assign(document.createElement("video"), { muted: true, src: href });
      await new Promise((r) => (video.onloadedmetadata = r));
      return video.duration;
    }, await link.getAttribute("href"));
    assert.ok(Number.isFinite(duration) && duration >= 2, `duration ${duration}`);
    assert.deepEqual(pages.flatMap((p) => p.errors), []);
  } finally {
    await browser.close();
    await server.stop();
  }
});

test("react: two pages of the built demo/react app connect under StrictMode, each joining once, light speaking tiles and record", async () => {
  const server = await startServer();
  const browser = await launchBrowser();
  try {
    const room = unique("react");
    const pages = [];
    for (const name of ["Rae", "Rex"]) {
      const context = await browser.newContext({ permissions: ["camera", "microphone"] });
      const page = await context.newPage();
      page.joins = 0;
      page.on("request", (r) => {
        if (r.method() === "POST" && r.url().endsWith("/signaling") && (r.postData() ?? "").includes('"type":"join"')) {
          page.joins++;
        }
      });
      page.errors = [];
      page.on("pageerror", (e) => page.errors.push(e.message));
      await page.goto(`${server.url}/react/dist/index.html?room=${room}&name=${name}`);
      await waitForState(page, "connected");
      pages.push(page);
    }
    for (const page of pages) await waitForRemoteFrames(page, 1);
    assert.deepEqual(pages.map((p) => p.joins), [1, 1], "StrictMode's double mount joined once");
    assert.deepEqual(await pages[0].locator(".tile .name").allTextContents(), ["Rae (you)", "Rex"]);
    // useRecording: the button shows the snapshot's running duration, then a link to the file;
    // useWebRTC's speaking flags light the tiles.
    const [rae] = pages;
    await rae.waitForFunction(() => document.querySelectorAll(".tile.speaking").length === 2, null, { timeout: 15_000 });
    await rae.click("#record");
    await rae.waitForFunction(() => /Stop recording · 0:0[2-9]/.test(document.querySelector("#record").textContent), null, { timeout: 15_000 });
    await rae.click("#record");
    await rae.locator("#download").waitFor({ state: "visible", timeout: 15_000 });
    assert.match(await rae.locator("#download").getAttribute("href"), /^blob:/);
    assert.equal(await rae.locator("#record").textContent(), "Record");
    assert.deepEqual(pages.flatMap((p) => p.errors), []);
  } finally {
    await browser.close();
    await server.stop();
  }
});

test("leave: a page that vanishes goes after the peer timeout; leave() removes it at once", async () => {
  const server = await startServer(["--peer-timeout", "2s"]);
  const browser = await launchBrowser();
  const doomed = await launchKillableBrowser();
  try {
    const room = unique("leave");
    const ann = await meshPage(browser, server, room, "Ann");
    const bob = await meshPage(browser, server, room, "Bob");
    await meshPage(doomed.browser, server, room, "Cat");
    await waitForRemoteFrames(ann, 2);

    await doomed.kill(); // no unload, no leave(): only the server's timeout can tell
    await ann.waitForFunction(() => document.querySelectorAll(".tile").length === 2, null, { timeout: 15_000 });
    assert.deepEqual((await ann.locator(".tile .name").allTextContents()).sort(), ["Ann (you)", "Bob"]);

    const clicked = Date.now();
    await bob.click("#leave");
    await ann.waitForFunction(() => document.querySelectorAll(".tile").length === 1, null, { timeout: 5_000 });
    assert.ok(Date.now() - clicked < 2_000, "leave() is seen before the 2 s peer timeout could act");
  } finally {
    await browser.close();
    await server.stop();
  }
});

test("server restart mid-call: pages show reconnecting, then connected, and a newcomer reaches everyone", async () => {
  const dir = mkdtempSync(join(tmpdir(), "callroom-e2e-"));
  const db = join(dir, "restart.db");
  let server = await startServer([], { db });
  const browser = await launchBrowser();
  try {
    const room = unique("restart");
    const ann = await meshPage(browser, server, room, "Ann");
    const bob = await meshPage(browser, server, room, "Bob");
    await waitForRemoteFrames(ann, 1);

    await server.kill();
    await waitForState(ann, "reconnecting");
    await waitForState(bob, "reconnecting");

    server = await startServer([], { db, listen: `127.0.0.1:${server.port}` });
    await waitForState(ann, "connected");
    await waitForState(bob, "connected");

    const cy = await meshPage(browser, server, room, "Cy");
    await waitForRemoteFrames(cy, 2);
    await ann.waitForFunction(() => document.querySelectorAll(".tile").length === 3, null, { timeout: 20_000 });
    await waitForRemoteFrames(ann, 2);
    await waitForRemoteFrames(bob, 2);
  } finally {
    await browser.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("camera denied: the page explains permission_denied and can still watch", async () => {
  const server = await startServer();
  const strict = await launchBrowser({ promptsAccepted: false });
  const browser = await launchBrowser();
  try {
    const room = unique("denied");
    const watcher = await meshPage(strict, server, room, "Wes", { permissions: [] });
    const banner = watcher.locator("#error");
    await banner.waitFor({ state: "visible" });
    assert.equal(await banner.getAttribute("data-code"), "permission_denied");
    assert.match(await banner.textContent(), /denied/i);
    assert.doesNotMatch(await banner.textContent(), /[{}]/, "a readable message, not JSON");
    await meshPage(browser, server, room, "Vic");
    await waitForRemoteFrames(watcher, 1);
  } finally {
    await strict.close();
    await browser.close();
    await server.stop();
  }
});

test("a screenshot of room.html with three participants is saved and is not blank", async () => {
  const server = await startServer();
  const browser = await launchBrowser();
  try {
    const room = unique("shot");
    const pages = [];
    for (const name of ["Ann", "Bob", "Cy"]) pages.push(await meshPage(browser, server, room, name));
    for (const page of pages) await waitForRemoteFrames(page, 2);
    await pages[0].waitForFunction(() => document.querySelectorAll(".quality").length >= 2, null, { timeout: 15_000 });
    const dir = join(ROOT, "tests", "e2e", "artifacts");
    mkdirSync(dir, { recursive: true });
    const path = join(dir, "room-three-participants.png");
    await pages[0].screenshot({ path });
    // Decode the PNG in the browser and count distinct colours on a grid of samples.
    const png = readFileSync(path).toString("base64");
    const colours = await pages[0].evaluate(async (png) => {
      const img = new Image();
      img.src = `data:image/png;base64,${png}`;
      await img.decode();
      const canvas = new OffscreenCanvas(img.width, img.height);
      const ctx = canvas.getContext("2d");
      ctx.drawImage(img, 0, 0);
      const seen = new Set();
      for (let y = 0; y < img.height; y += 8) {
        for (let x = 0; x < img.width; x += 8) {
          const [r, g, b] = ctx.getImageData(x, y, 1, 1).data;
          seen.add(`${r >> 3},${g >> 3},${b >> 3}`);
        }
      }
      return seen.size;
    }, png);
    assert.ok(colours > 50, `the screenshot shows something (${colours} colours): ${path}`);
    console.log(`screenshot: ${path} (${colours} distinct colours)`);
  } finally {
    await browser.close();
    await server.stop();
  }
});
