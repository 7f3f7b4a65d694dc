// Cloudflare's own client library, partytracks, against callroom-server's embedded SFU with
// nothing changed but the Calls API base URL and the app's credentials. Two Chromium pages run
// partytracks' client (`PartyTracks`): each pushes its fake camera and pulls the other's track,
// and each decodes the other's video. partytracks' server half (`routePartyTracksRequest`, the
// proxy that adds the app secret) runs in this process behind a small node:http server, which
// also serves the pages and partytracks' client bundled by esbuild at test time.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import { build } from "esbuild";
import { routePartyTracksRequest } from "partytracks/server";
import { startServer, launchBrowser, ROOT } from "./support.mjs";

const APP_ID = "partytracks-test";
const APP_SECRET = randomBytes(24).toString("hex");

let server;
let browser;
let proxy;
let origin;
/** Every Calls request partytracks made through the proxy, and what came back. */
const exchanges = [];

// partytracks/server is written for Workers: it forwards the browser's body as a stream with
// `fetch(url, { body: request.body })`, which Node's fetch refuses without `duplex: "half"`
// (Workers need no such option). This adds that option and nothing else; the URL, headers and
// body partytracks sends go out as they are. Installed for this file's tests only.
const nodeFetch = globalThis.fetch;
function fetchForPartyTracks(input, init) {
  return nodeFetch(input, init?.body instanceof ReadableStream ? { ...init, duplex: "half" } : init);
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>partytracks</title>
<video id="remote" autoplay playsinline muted></video>
<script type="module" src="/client.js"></script>`;

// What the pages run: partytracks' client as an app would use it (default `/partytracks` prefix,
// ICE servers from the proxy).
const CLIENT = `
import { PartyTracks } from "partytracks/client";
import { from, of, map } from "rxjs";

const partyTracks = new PartyTracks();
const errors = [];
window.call = { partyTracks, pc: null, pushed: null, pulledKind: null, errors };
partyTracks.peerConnection$.subscribe((pc) => (window.call.pc = pc));
partyTracks.sessionError$.subscribe((e) => errors.push("session: " + e));

/** Pushes the fake camera; resolves to the metadata another client pulls it with. */
window.call.push = () =>
  new Promise((resolve, reject) => {
    const camera$ = from(navigator.mediaDevices.getUserMedia({ video: true })).pipe(
      map((stream) => stream.getVideoTracks()[0]),
    );
    // partytracks keeps a track pushed while someone subscribes; unsubscribing closes it.
    const subscription = partyTracks.push(camera$).subscribe({
      next: (metadata) => {
        window.call.pushed = metadata;
        resolve(metadata);
      },
      error: (e) => {
        errors.push("push: " + e);
        reject(e);
      },
    });
    window.call.stopPush = () => subscription.unsubscribe();
  });

/** Pulls another client's track and plays it. */
window.call.pull = (metadata) => {
  const subscription = partyTracks.pull(of(metadata)).subscribe({
    next: (track) => {
      window.call.pulledKind = track.kind;
      document.getElementById("remote").srcObject = new MediaStream([track]);
    },
    error: (e) => errors.push("pull: " + e),
  });
  window.call.stopPull = () => subscription.unsubscribe();
};
window.call.ready = true;
`;

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Node's request as the Fetch `Request` partytracks/server expects, and its `Response` back. */
async function servePartyTracks(req, res, url) {
  const body = await readBody(req);
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    for (const v of [value].flat()) headers.append(name, v);
  }
  const request = new Request(url, {
    method: req.method,
    headers,
    body: body.length > 0 ? body : undefined,
  });
  const exchange = { method: req.method, path: url.pathname, request: body.toString() };
  exchanges.push(exchange);
  const response = await routePartyTracksRequest({
    appId: APP_ID,
    token: APP_SECRET,
    // The one setting that points partytracks at this server instead of Cloudflare's.
    realtimeApiBaseUrl: `${server.url}/v1`,
    request,
    // As in production (partytracks' default there): each session is bound to the browser that
    // created it by a signed cookie.
    lockSessionToInitiator: true,
  });
  const out = Buffer.from(await response.arrayBuffer());
  exchange.status = response.status;
  exchange.response = out.toString();
  // Node's fetch already decoded the body: drop what described the upstream's encoding.
  const outHeaders = {};
  response.headers.forEach((value, name) => {
    if (!["content-encoding", "content-length", "transfer-encoding", "connection"].includes(name)) {
      outHeaders[name] = value;
    }
  });
  res.writeHead(response.status, outHeaders);
  res.end(out);
}

before(async () => {
  globalThis.fetch = fetchForPartyTracks;
  server = await startServer(["--calls-app-id", APP_ID, "--calls-app-secret", APP_SECRET]);
  const bundle = await build({
    stdin: { contents: CLIENT, resolveDir: ROOT, loader: "js" },
    bundle: true,
    format: "esm",
    platform: "browser",
    write: false,
    logLevel: "silent",
  });
  const clientJs = bundle.outputFiles[0].contents;
  proxy = createServer((req, res) => {
    const url = new URL(req.url, origin);
    if (url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
    } else if (url.pathname === "/client.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(clientJs);
    } else if (url.pathname.startsWith("/partytracks/")) {
      servePartyTracks(req, res, url).catch((e) => {
        exchanges.push({ path: url.pathname, proxyError: String(e?.cause ?? e) });
        res.writeHead(502, { "content-type": "text/plain" }).end(String(e));
      });
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${proxy.address().port}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (proxy ? proxy.close(resolve) : resolve()));
  await server?.stop();
  globalThis.fetch = nodeFetch;
});

async function framesDecoded(page) {
  return page.evaluate(async () => {
    if (!window.call?.pc) return 0;
    const stats = await window.call.pc.getStats();
    let frames = 0;
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded ?? 0;
    });
    return frames;
  });
}

/** The proxy's log, for failure messages: which Calls request got which answer. */
function log() {
  return exchanges
    .map((e) => `${e.method ?? ""} ${e.path} -> ${e.status ?? e.proxyError}\n  sent: ${(e.request ?? "").slice(0, 300)}\n  got: ${(e.response ?? "").slice(0, 300)}`)
    .join("\n");
}

test("partytracks (Cloudflare's client and proxy) pushes and pulls video through the embedded SFU", async () => {
  const pages = [];
  for (let i = 0; i < 2; i++) {
    const context = await browser.newContext({ permissions: ["camera"] });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => window.call?.ready === true);
    pages.push({ page, errors });
  }
  const [pa, pb] = pages.map(({ page }) => page);

  // partytracks hands out a pushed track's metadata once the track sends data; an app would
  // pass it to the other client over its own channel, as the test does here.
  let timer;
  const pushed = await Promise.race([
    Promise.all([pa, pb].map((page) => page.evaluate(() => window.call.push()))),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no push within 30 s:\n${log()}`)), 30_000);
    }),
  ]).finally(() => clearTimeout(timer));
  for (const metadata of pushed) {
    assert.equal(metadata.location, "remote");
    assert.equal(typeof metadata.sessionId, "string");
    assert.equal(typeof metadata.trackName, "string");
  }
  assert.notEqual(pushed[0].sessionId, pushed[1].sessionId);
  await pa.evaluate((m) => window.call.pull(m), pushed[1]);
  await pb.evaluate((m) => window.call.pull(m), pushed[0]);

  // getStats is async, so the wait polls from here (waitForFunction would take the pending
  // promise for a truthy answer).
  for (const page of [pa, pb]) {
    const deadline = Date.now() + 30_000;
    while ((await framesDecoded(page)) === 0) {
      const errors = await page.evaluate(() => window.call.errors);
      assert.ok(Date.now() < deadline, `video decoded within 30 s; page errors ${JSON.stringify(errors)}\n${log()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  for (const page of [pa, pb]) {
    assert.equal(await page.evaluate(() => window.call.pulledKind), "video");
    assert.deepEqual(await page.evaluate(() => window.call.errors), []);
  }
  // partytracks went through the Calls API as Cloudflare serves it: sessions, a push with the
  // client's offer, a pull answered with the SFU's offer and renegotiate. (The proxy answers
  // sessions/new with 200: partytracks rebuilds that response to add its cookie.)
  const calls = exchanges.map((e) => `${e.method} ${e.path.replace(/sessions\/[^/]+\//, "sessions/:id/")}`);
  for (const expected of [
    "POST /partytracks/sessions/new",
    "POST /partytracks/sessions/:id/tracks/new",
    "PUT /partytracks/sessions/:id/renegotiate",
  ]) {
    assert.ok(calls.includes(expected), `${expected} in\n${log()}`);
  }
  const pulls = exchanges.filter((e) => e.path.endsWith("/tracks/new") && e.request.includes('"location":"remote"'));
  assert.equal(pulls.length, 2, log());
  for (const pull of pulls) assert.equal(JSON.parse(pull.response).requiresImmediateRenegotiation, true);
  // One session per page: no ICE failure made partytracks rebuild one.
  assert.equal(calls.filter((c) => c === "POST /partytracks/sessions/new").length, 2, log());

  // Unsubscribing closes tracks the way partytracks does it: tracks/close with a new offer
  // (not forced), whose answer it applies.
  await pb.evaluate(() => window.call.stopPull());
  await pa.evaluate(() => window.call.stopPush());
  const closes = () => exchanges.filter((e) => e.path.endsWith("/tracks/close") && e.status !== undefined);
  const deadline = Date.now() + 10_000;
  while (closes().length < 2) {
    assert.ok(Date.now() < deadline, `two tracks/close within 10 s\n${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const close of closes()) {
    const sent = JSON.parse(close.request);
    assert.equal(sent.force, false);
    assert.equal(close.status, 200, log());
    assert.equal(JSON.parse(close.response).sessionDescription?.type, "answer", log());
  }
  // Each page is left with the one other transceiver once the answer is applied (a stopped
  // transceiver leaves the list when negotiation completes).
  for (const page of [pa, pb]) {
    await page.waitForFunction(
      () => window.call.pc.signalingState === "stable" && window.call.pc.getTransceivers().length === 1,
      null,
      { timeout: 10_000 },
    );
    assert.deepEqual(await page.evaluate(() => window.call.errors), []);
  }
  assert.ok(exchanges.every((e) => e.status !== undefined && e.status < 400), log());
  assert.deepEqual([...pages[0].errors, ...pages[1].errors], []);
});
