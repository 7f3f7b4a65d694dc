// The JavaScript API from a plain page: two Chromium pages load the built package, join one
// room through the real server, and each decodes the other's video.
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
