// Two Chromium pages call each other through callroom-server's embedded SFU: each joins an
// `sfu` room, opens one peer connection to the SFU through the room-scoped Calls proxy (its
// peer token, never the app secret), pushes camera and microphone, pulls the other's tracks
// when the room announces them, and decodes the other's video.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser } from "./support.mjs";

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

/** Runs in the page: a minimal Calls client over the proxy, as a third-party app would write. */
async function callThroughSfu(room) {
  const post = async (path, token, body, method = "POST") => {
    const response = await fetch(path, {
      method,
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    const json = await response.json();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
    return json;
  };
  const joined = await post("/signaling", null, { type: "join", room, role: "peer", topology: "sfu" });
  const { token, peerId } = joined;
  const { sessionId } = await post("/sfu/sessions/new", token, {});
  const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
  const media = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  const sent = media.getTracks().map((track) => ({
    track,
    transceiver: pc.addTransceiver(track, { direction: "sendonly" }),
  }));
  await pc.setLocalDescription(await pc.createOffer());
  const pushed = await post(`/sfu/sessions/${sessionId}/tracks/new`, token, {
    sessionDescription: { type: "offer", sdp: pc.localDescription.sdp },
    tracks: sent.map(({ track, transceiver }) => ({
      location: "local",
      mid: transceiver.mid,
      trackName: track.kind === "video" ? "cam" : "mic",
    })),
  });
  await pc.setRemoteDescription(pushed.sessionDescription);

  const received = [];
  pc.ontrack = (e) => received.push(e.track.kind);
  window.sfuCall = { pc, peerId, sessionId, received, pulled: [], pushedNames: pushed.tracks.map((t) => t.trackName) };

  // Long-poll the room until the other peer's tracks are announced, then pull them.
  let cursor = joined.cursor;
  for (;;) {
    const response = await fetch(`/messages?since=${cursor}&wait=10000`, { headers: { authorization: `Bearer ${token}` } });
    const { messages, cursor: next } = await response.json();
    cursor = next;
    const announced = messages.find((m) => m.type === "sfu-tracks" && m.payload.tracks.length >= 2);
    if (!announced) continue;
    const pull = await post(`/sfu/sessions/${sessionId}/tracks/new`, token, {
      tracks: announced.payload.tracks.map((t) => ({
        location: "remote",
        sessionId: announced.payload.sessionId,
        trackName: t.trackName,
      })),
    });
    window.sfuCall.pulled = announced.payload.tracks.map((t) => t.trackName);
    if (pull.requiresImmediateRenegotiation) {
      await pc.setRemoteDescription(pull.sessionDescription);
      await pc.setLocalDescription(await pc.createAnswer());
      await post(`/sfu/sessions/${sessionId}/renegotiate`, token, {
        sessionDescription: { type: "answer", sdp: pc.localDescription.sdp },
      }, "PUT");
    }
    return { peerId, sessionId };
  }
}

async function framesDecoded(page) {
  return page.evaluate(async () => {
    const stats = await window.sfuCall.pc.getStats();
    let frames = 0;
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded ?? 0;
    });
    return frames;
  });
}

test("two pages push and pull through the room's SFU and decode each other's video", async () => {
  const room = `sfu-${Date.now()}`;
  const pages = [];
  for (let i = 0; i < 2; i++) {
    const context = await browser.newContext({ permissions: ["camera", "microphone"] });
    const page = await context.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${server.url}/`);
    pages.push({ page, errors });
  }
  const [a, b] = await Promise.all(pages.map(({ page }) => page.evaluate(callThroughSfu, room)));
  assert.notEqual(a.sessionId, b.sessionId);

  // getStats is async, so the wait polls from here (waitForFunction would take the pending
  // promise for a truthy answer).
  for (const { page } of pages) {
    const deadline = Date.now() + 30_000;
    while ((await framesDecoded(page)) === 0) {
      assert.ok(Date.now() < deadline, "video decoded within 30 s");
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const [pa, pb] = pages.map(({ page }) => page);
  const seen = await Promise.all(
    [pa, pb].map((page) =>
      page.evaluate(() => ({
        pushed: window.sfuCall.pushedNames,
        pulled: window.sfuCall.pulled,
        received: [...window.sfuCall.received].sort(),
      })),
    ),
  );
  // Each page pulled exactly what the other pushed, under the names the server gave them.
  assert.deepEqual(seen[0].pulled, seen[1].pushed);
  assert.deepEqual(seen[1].pulled, seen[0].pushed);
  assert.deepEqual([...seen[0].pushed].sort(), [`${a.peerId}-cam`, `${a.peerId}-mic`]);
  assert.deepEqual([...seen[1].pushed].sort(), [`${b.peerId}-cam`, `${b.peerId}-mic`]);
  assert.deepEqual(seen[0].received, ["audio", "video"]);
  assert.deepEqual(seen[1].received, ["audio", "video"]);
  assert.ok((await framesDecoded(pa)) > 0 && (await framesDecoded(pb)) > 0);
  assert.deepEqual([...pages[0].errors, ...pages[1].errors], []);
});
