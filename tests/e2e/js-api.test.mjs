// The JavaScript API from a plain page: two Chromium pages load the built package, join one
// room through the real server, and each decodes the other's video.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, launchBrowser, pageWithCallroom, unique } from "./support.mjs";

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


test("two pages join through the JS API and decode each other's video", async () => {
  const room = `js-${Date.now()}`;
  const [a, b] = [await pageWithCallroom(browser, server), await pageWithCallroom(browser, server)];
  const join = (p, name) =>
    p.page.evaluate(async ({ room, name }) => {
      const r = await window.callroom.Room.join({ room, name, statsIntervalMs: 1000 });
      window.room = r;
      window.changes = 0;
      window.joinedEvents = [];
      r.subscribe(() => window.changes++);
      r.on("participant-joined", (p) => window.joinedEvents.push(p.name));
      return r.snapshot().sessionId;
    }, { room, name });
  const aId = await join(a, "Ann");
  const bId = await join(b, "Bob");
  assert.match(aId, /^p[0-9a-f]{16}$/);

  const decodes = (p, peer) =>
    p.page.waitForFunction(
      (peer) => window.room.snapshot().remoteStreams.some((r) => r.peerId === peer && r.framesDecoded > 0),
      bId === peer ? bId : aId,
      { timeout: 30_000 },
    );
  await Promise.all([decodes(a, bId), decodes(b, aId)]);

  const checks = await a.page.evaluate(() => {
    const s1 = window.room.snapshot();
    const s2 = window.room.snapshot();
    return {
      sameObjectWhileUnchanged: s1 === s2,
      frozen: Object.isFrozen(s1) && Object.isFrozen(s1.remoteStreams),
      state: s1.connectionState,
      names: s1.participants.map((p) => p.name),
      streamIsMedia: s1.remoteStreams[0].stream instanceof MediaStream,
      localTracks: s1.localStream.getTracks().map((t) => t.kind).sort(),
      changes: window.changes,
      joinedEvents: window.joinedEvents,
    };
  });
  assert.deepEqual(
    { ...checks, changes: checks.changes > 0 },
    {
      sameObjectWhileUnchanged: true,
      frozen: true,
      state: "connected",
      names: ["Bob"],
      streamIsMedia: true,
      localTracks: ["audio", "video"],
      changes: true,
      joinedEvents: ["Bob"],
    },
  );

  // Unsubscribing stops notifications.
  const stopped = await a.page.evaluate(async () => {
    let calls = 0;
    const off = window.room.subscribe(() => calls++);
    off();
    window.room.setMicEnabled(false);
    return { calls, mic: window.room.snapshot().micEnabled };
  });
  assert.deepEqual(stopped, { calls: 0, mic: false });

  await b.page.evaluate(() => window.room.leave());
  await a.page.waitForFunction(() => window.room.snapshot().remoteStreams.length === 0, null, { timeout: 10_000 });
  await a.page.evaluate(() => window.room.leave());
  assert.deepEqual([...a.errors, ...b.errors], []);
});

test("bad options and refusals reject with a CallroomError carrying a stable code", async () => {
  const { page, errors } = await pageWithCallroom(browser, server);
  const codes = await page.evaluate(async () => {
    const code = async (options) => {
      try {
        await window.callroom.Room.join(options);
        return "resolved";
      } catch (e) {
        return `${e.name}:${e.code}`;
      }
    };
    return [
      await code({ room: "no spaces", media: false }),
      await code({ media: false }),
      await code({ room: "ok", role: "admin", media: false }),
      await code({ room: "ok", topology: "star", media: false }),
      await code({ room: "ok", role: "guest", topology: "mesh", media: false }),
      await code({ room: "ok", media: false, server: "http://127.0.0.1:9" }),
    ];
  });
  assert.deepEqual(codes, [
    "CallroomError:invalid_argument",
    "CallroomError:invalid_argument",
    "CallroomError:invalid_argument",
    "CallroomError:invalid_argument",
    "CallroomError:invalid_argument",
    "CallroomError:network_error",
  ]);
  assert.deepEqual(errors, []);
});

test("a page without camera permission joins to watch and shows permission_denied", async () => {
  const strict = await launchBrowser({ promptsAccepted: false });
  try {
    const context = await strict.newContext({ permissions: [] });
    const page = await context.newPage();
    await page.goto(`${server.url}/`);
    const result = await page.evaluate(async () => {
      const { default: init, Room } = await import("/pkg/callroom.js");
      await init();
      const room = await Room.join({ room: `denied-${Date.now()}` });
      const s = room.snapshot();
      await room.leave();
      return { state: s.connectionState, error: s.error && s.error.code, publishing: s.localStream !== null };
    });
    assert.deepEqual(result, { state: "connected", error: "permission_denied", publishing: false });
  } finally {
    await strict.close();
  }
});

test("with the camera already granted the join request goes out while it opens; otherwise the camera settles first", async () => {
  const order = async (context) => {
    await context.addInitScript(() => {
      window.order = [];
      const gum = MediaDevices.prototype.getUserMedia;
      MediaDevices.prototype.getUserMedia = async function (...args) {
        window.order.push("camera asked");
        try {
          const stream = await gum.apply(this, args);
          // A real camera takes hundreds of ms to open; the fake one, a few. This one stays
          // opening until the join has gone out (or 5 s have passed), so the order is about
          // the mechanism (does the join wait for the camera?), not about which of two quick
          // steps wins.
          const until = Date.now() + 5_000;
          while (!window.order.includes("join sent") && Date.now() < until) {
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
          window.order.push("camera open");
          return stream;
        } catch (e) {
          window.order.push("camera refused");
          throw e;
        }
      };
      const fetch = window.fetch;
      window.fetch = function (input, init) {
        if (String(init?.body ?? "").includes('"type":"join"')) window.order.push("join sent");
        return fetch.apply(this, [input, init]);
      };
    });
    const page = await context.newPage();
    await page.goto(`${server.url}/`);
    const seen = await page.evaluate(async () => {
      const { default: init, Room } = await import("/pkg/callroom.js");
      await init();
      const room = await Room.join({ room: `order-${Date.now()}` });
      const publishing = room.snapshot().localStream !== null;
      await room.leave();
      return { order: window.order, publishing };
    });
    await context.close();
    return seen;
  };
  const granted = await order(await browser.newContext({ permissions: ["camera", "microphone"] }));
  assert.deepEqual(granted, { order: ["camera asked", "join sent", "camera open"], publishing: true });
  // Not granted (here: prompts are refused): the camera settles before the peer is admitted, so
  // a user thinking over a prompt never sits in the room without polling.
  const strict = await launchBrowser({ promptsAccepted: false });
  try {
    const refused = await order(await strict.newContext({ permissions: [] }));
    assert.deepEqual(refused, { order: ["camera asked", "camera refused", "join sent"], publishing: false });
  } finally {
    await strict.close();
  }
});

test("a cold join into an occupied room: the connection is made and the offer sent while the camera opens (sending sections the camera's tracks then fill through replaceTrack, with no second offer), at once (before negotiationneeded) with one bundle of candidates, and the answerer polls again before it has applied the offer", async () => {
  const room = unique("cold");
  // The answerer records when its polls go out and when it applies the offer.
  const a = await pageWithCallroom(browser, server, {
    initScript: () => {
      window.steps = [];
      const fetch = window.fetch;
      window.fetch = async function (input, init) {
        const url = String(input?.url ?? input);
        if (url.includes("/messages?")) window.steps.push("poll sent");
        const response = await fetch.apply(this, [input, init]);
        if (url.includes("/messages?") && (await response.clone().text()).includes('"type":"offer"')) {
          window.steps.push("offer received");
        }
        return response;
      };
      const srd = RTCPeerConnection.prototype.setRemoteDescription;
      RTCPeerConnection.prototype.setRemoteDescription = async function (...args) {
        const result = await srd.apply(this, args);
        if (args[0]?.type === "offer") window.steps.push("offer applied");
        return result;
      };
    },
  });
  // The newcomer: a camera that stays opening until the offer has been sent (or 5 s have
  // passed), as a real one takes hundreds of ms, and a log of what it sends and makes.
  const b = await pageWithCallroom(browser, server, {
    initScript: () => {
      window.steps = [];
      window.relayed = [];
      const gum = MediaDevices.prototype.getUserMedia;
      MediaDevices.prototype.getUserMedia = async function (...args) {
        window.steps.push("camera asked");
        const stream = await gum.apply(this, args);
        const until = Date.now() + 5_000;
        while (!window.steps.includes("offer sent") && Date.now() < until) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        window.steps.push("camera open");
        return stream;
      };
      const addTrack = RTCPeerConnection.prototype.addTrack;
      RTCPeerConnection.prototype.addTrack = function (track, ...streams) {
        window.steps.push(`${track.kind} track added`);
        return addTrack.apply(this, [track, ...streams]);
      };
      const replaceTrack = RTCRtpSender.prototype.replaceTrack;
      RTCRtpSender.prototype.replaceTrack = function (track) {
        window.steps.push(`${track?.kind} track replaced`);
        return replaceTrack.apply(this, [track]);
      };
      const Original = window.RTCPeerConnection;
      window.RTCPeerConnection = function (...args) {
        window.steps.push("connection made");
        const pc = new Original(...args);
        pc.addEventListener("negotiationneeded", () => window.steps.push("negotiationneeded"));
        return pc;
      };
      window.RTCPeerConnection.prototype = Original.prototype;
      const sld = Original.prototype.setLocalDescription;
      Original.prototype.setLocalDescription = function (...args) {
        if (this.signalingState === "stable") window.steps.push("offer made");
        return sld.apply(this, args);
      };
      const fetch = window.fetch;
      window.fetch = function (input, init) {
        const body = String(init?.body ?? "");
        if (body.includes('"type":"join"')) window.steps.push("join sent");
        if (body.includes('"type":"offer"')) window.steps.push("offer sent");
        if (body.startsWith("{")) window.relayed.push(JSON.parse(body));
        return fetch.apply(this, [input, init]);
      };
    },
  });
  try {
    await a.page.evaluate(async (room) => {
      window.room = await window.callroom.Room.join({ room });
    }, room);
    const bId = await b.page.evaluate(async (room) => {
      window.room = await window.callroom.Room.join({ room });
      return window.room.snapshot().sessionId;
    }, room);
    await a.page.waitForFunction(
      (peer) => window.room.snapshot().remoteStreams.some((r) => r.peerId === peer && r.framesDecoded > 0),
      bId,
      { timeout: 30_000 },
    );
    const newcomer = await b.page.evaluate(() => ({ steps: window.steps, relayed: window.relayed }));
    const at = (step) => newcomer.steps.indexOf(step);
    assert.ok(at("join sent") >= 0 && at("connection made") >= 0, newcomer.steps.join(", "));
    assert.ok(at("camera asked") < at("join sent"), newcomer.steps.join(", "));
    // The peer connection was made and the offer sent while the camera was still opening.
    assert.ok(at("join sent") < at("connection made"), newcomer.steps.join(", "));
    assert.ok(at("connection made") < at("offer sent"), newcomer.steps.join(", "));
    assert.ok(at("offer sent") < at("camera open"), newcomer.steps.join(", "));
    // The camera's tracks went onto the senders the offer had made: replaced, never added.
    assert.ok(at("audio track replaced") > at("camera open"), newcomer.steps.join(", "));
    assert.ok(at("video track replaced") > at("camera open"), newcomer.steps.join(", "));
    assert.ok(!newcomer.steps.some((step) => step.endsWith("track added")), newcomer.steps.join(", "));
    // The offer was made at once: before the browser's `negotiationneeded` task (which then
    // finds nothing left to negotiate), and only once.
    const made = at("offer made");
    const needed = at("negotiationneeded");
    assert.ok(made >= 0 && (needed === -1 || made < needed), newcomer.steps.join(", "));
    const offers = newcomer.relayed.filter((m) => m.type === "offer");
    assert.equal(offers.length, 1, "exactly one offer: no second one on `negotiationneeded`");
    // max-bundle: audio and video share one transport, so every candidate belongs to the first
    // section (with `balanced`, each section gathers its own).
    assert.match(offers[0].payload.sdp, /a=group:BUNDLE 0 1/);
    // Both sections send, though no track was there yet: the camera needs no second offer.
    const sections = offers[0].payload.sdp.split("\r\nm=").slice(1);
    assert.deepEqual(sections.map((m) => [m.split(" ")[0], /a=sendrecv/.test(m)]), [["audio", true], ["video", true]]);
    const candidates = newcomer.relayed.filter((m) => m.type === "candidate").map((m) => m.payload);
    assert.ok(candidates.length > 0);
    for (const c of candidates) {
      assert.equal(c.sdpMLineIndex, 0, JSON.stringify(c));
    }
    // The answerer's next poll went out before the offer was even applied.
    const answerer = await a.page.evaluate(() => window.steps);
    const received = answerer.indexOf("offer received");
    assert.ok(received >= 0, answerer.join(", "));
    const next = answerer.indexOf("poll sent", received);
    assert.ok(next > received && next < answerer.indexOf("offer applied"), answerer.join(", "));
  } finally {
    await a.close();
    await b.close();
  }
});

test("a newcomer whose camera fails after its early offer went out stops offering to send: a second offer makes both sections receive-only, and the other page drops its tracks", async () => {
  const room = unique("cold-fail");
  const a = await pageWithCallroom(browser, server);
  // The newcomer's camera fails (in use elsewhere) once its first offer has gone out.
  const b = await pageWithCallroom(browser, server, {
    initScript: () => {
      window.offers = [];
      MediaDevices.prototype.getUserMedia = async function () {
        const until = Date.now() + 5_000;
        while (window.offers.length === 0 && Date.now() < until) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        throw new DOMException("the camera is in use", "NotReadableError");
      };
      const fetch = window.fetch;
      window.fetch = function (input, init) {
        const body = String(init?.body ?? "");
        if (body.includes('"type":"offer"')) window.offers.push(JSON.parse(body).payload.sdp);
        return fetch.apply(this, [input, init]);
      };
    },
  });
  try {
    const aId = await a.page.evaluate(async (room) => {
      window.room = await window.callroom.Room.join({ room });
      return window.room.snapshot().sessionId;
    }, room);
    const bId = await b.page.evaluate(async (room) => {
      window.room = await window.callroom.Room.join({ room });
      return window.room.snapshot().sessionId;
    }, room);
    const error = await b.page.evaluate(() => window.room.snapshot().error?.code);
    assert.equal(error, "device_in_use");
    // The first offer was made to send; the second stops it.
    await b.page.waitForFunction(() => window.offers.length >= 2, null, { timeout: 10_000 });
    const offers = await b.page.evaluate(() => window.offers);
    const directions = (sdp) => sdp.split("\r\nm=").slice(1).map((m) => /a=(sendrecv|sendonly|recvonly|inactive)/.exec(m)[1]);
    assert.deepEqual(directions(offers[0]), ["sendrecv", "sendrecv"]);
    assert.deepEqual(directions(offers.at(-1)), ["recvonly", "recvonly"]);
    // The other page keeps the newcomer, with no tracks from it, and still sends its own.
    await a.page.waitForFunction(
      (peer) => window.room.snapshot().remoteStreams.some((r) => r.peerId === peer && r.stream.getTracks().length === 0),
      bId,
      { timeout: 10_000 },
    );
    await b.page.waitForFunction(
      (peer) => window.room.snapshot().remoteStreams.some((r) => r.peerId === peer && r.framesDecoded > 0),
      aId,
      { timeout: 30_000 },
    );
  } finally {
    await a.close();
    await b.close();
  }
});
