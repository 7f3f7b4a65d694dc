// The snapshot contract from a plain page: what a control method did is in the snapshot the
// moment its promise resolves (no subscriber ever sees it undone), and every remote stream
// entry carries a MediaStream an app can put into `srcObject` as it is.
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


test("each control method's effect is in the snapshot when it resolves, and no subscriber sees it undone", async () => {
  const room = `fresh-${Date.now()}`;
  const [a, b] = [await pageWithCallroom(browser, server), await pageWithCallroom(browser, server)];
  await a.page.evaluate((room) => window.callroom.Room.join({ room, name: "A" }).then((r) => (window.room = r)), room);
  const bId = await b.page.evaluate(
    (room) => window.callroom.Room.join({ room, name: "B" }).then((r) => (window.room = r).snapshot().sessionId),
    room,
  );
  await a.page.waitForFunction(
    (bId) => window.room.snapshot().remoteStreams.some((r) => r.peerId === bId && r.framesDecoded > 0),
    bId,
    { timeout: 30_000 },
  );

  const result = await a.page.evaluate(async () => {
    const room = window.room;
    const view = (s) => ({
      micEnabled: s.micEnabled,
      cameraEnabled: s.cameraEnabled,
      screenSharing: s.screenSharing,
      publishing: s.localStream !== null,
      cameraTracks: s.localStream ? s.localStream.getVideoTracks().length : 0,
    });
    // What resolved calls promise; a subscriber checks every state it is told against it.
    let promised = {};
    const contradictions = [];
    room.subscribe(() => {
      const seen = view(room.snapshot());
      for (const [key, value] of Object.entries(promised)) {
        if (seen[key] !== value) contradictions.push({ key, promised: value, seen: seen[key] });
      }
    });
    const steps = [];
    const step = async (name, call, expected) => {
      promised = {}; // the call about to run may change anything
      const before = room.snapshot();
      await call();
      const after = room.snapshot();
      steps.push({ name, changedObject: after !== before, ...Object.fromEntries(Object.keys(expected).map((k) => [k, view(after)[k]])) });
      promised = expected;
      await new Promise((r) => setTimeout(r, 300)); // let late notifications arrive
    };
    await step("setMicEnabled(false)", () => room.setMicEnabled(false), { micEnabled: false });
    await step("setMicEnabled(true)", () => room.setMicEnabled(true), { micEnabled: true });
    await step("setCameraEnabled(false)", () => room.setCameraEnabled(false), { cameraEnabled: false, cameraTracks: 0 });
    await step("setCameraEnabled(true)", () => room.setCameraEnabled(true), { cameraEnabled: true, cameraTracks: 1 });
    await step("switchCamera()", () => room.switchCamera(), { cameraEnabled: true, cameraTracks: 1 });
    await step("startScreenShare()", () => room.startScreenShare(), { screenSharing: true });
    await step("stopScreenShare()", () => room.stopScreenShare(), { screenSharing: false });
    await step("unpublish()", () => room.unpublish(), { publishing: false, micEnabled: false, cameraEnabled: false });
    await step("publish()", () => room.publish(), { publishing: true, micEnabled: true, cameraEnabled: true });
    return { steps, contradictions };
  });
  const expectedSteps = [
    ["setMicEnabled(false)", { micEnabled: false }],
    ["setMicEnabled(true)", { micEnabled: true }],
    ["setCameraEnabled(false)", { cameraEnabled: false, cameraTracks: 0 }],
    ["setCameraEnabled(true)", { cameraEnabled: true, cameraTracks: 1 }],
    ["switchCamera()", { cameraEnabled: true, cameraTracks: 1 }],
    ["startScreenShare()", { screenSharing: true }],
    ["stopScreenShare()", { screenSharing: false }],
    ["unpublish()", { publishing: false, micEnabled: false, cameraEnabled: false }],
    ["publish()", { publishing: true, micEnabled: true, cameraEnabled: true }],
  ].map(([name, state]) => ({ name, changedObject: true, ...state }));
  assert.deepEqual(result.steps, expectedSteps);
  assert.deepEqual(result.contradictions, []);
  await Promise.all([a, b].map((p) => p.page.evaluate(() => window.room.leave())));
  assert.deepEqual([...a.errors, ...b.errors], []);
});

test("a remote stream entry is a MediaStream from the start and stays the same object as tracks arrive", async () => {
  const room = `streams-${Date.now()}`;
  const [watcher, sender] = [await pageWithCallroom(browser, server), await pageWithCallroom(browser, server)];
  // The watcher publishes nothing, so the sender's entry for it never gets a track.
  const watcherId = await watcher.page.evaluate(async (room) => {
    window.room = await window.callroom.Room.join({ room, name: "Watcher", media: false });
    window.firstSeen = new Map();
    window.srcObjectErrors = [];
    window.room.subscribe(() => {
      for (const r of window.room.snapshot().remoteStreams) {
        if (!window.firstSeen.has(r.peerId)) window.firstSeen.set(r.peerId, { stream: r.stream, tracks: r.stream.getTracks().length });
        try {
          // What an app written for `srcObject = entry.stream` does on every render.
          document.createElement("video").srcObject = r.stream;
        } catch (e) {
          window.srcObjectErrors.push(String(e));
        }
      }
    });
    return window.room.snapshot().sessionId;
  }, room);
  const senderId = await sender.page.evaluate(
    (room) => window.callroom.Room.join({ room, name: "Sender" }).then((r) => (window.room = r).snapshot().sessionId),
    room,
  );
  await watcher.page.waitForFunction(
    (id) => window.room.snapshot().remoteStreams.some((r) => r.peerId === id && r.framesDecoded > 0),
    senderId,
    { timeout: 30_000 },
  );
  const seenByWatcher = await watcher.page.evaluate((id) => {
    const entry = window.room.snapshot().remoteStreams.find((r) => r.peerId === id);
    return {
      sameStreamAsFirstSeen: window.firstSeen.get(id).stream === entry.stream,
      tracksWhenFirstSeen: window.firstSeen.get(id).tracks,
      kinds: entry.stream.getTracks().map((t) => t.kind).sort(),
      srcObjectErrors: window.srcObjectErrors,
    };
  }, senderId);
  assert.equal(seenByWatcher.sameStreamAsFirstSeen, true);
  assert.ok(seenByWatcher.tracksWhenFirstSeen < 2, `the entry existed before all media arrived (${seenByWatcher.tracksWhenFirstSeen} tracks)`);
  assert.deepEqual(seenByWatcher.kinds, ["audio", "video"]);
  assert.deepEqual(seenByWatcher.srcObjectErrors, []);

  const seenBySender = await sender.page.evaluate((id) => {
    const entry = window.room.snapshot().remoteStreams.find((r) => r.peerId === id);
    const video = document.createElement("video");
    video.srcObject = entry.stream;
    return { isStream: entry.stream instanceof MediaStream, tracks: entry.stream.getTracks().length, attached: video.srcObject === entry.stream };
  }, watcherId);
  assert.deepEqual(seenBySender, { isStream: true, tracks: 0, attached: true });
  await Promise.all([watcher, sender].map((p) => p.page.evaluate(() => window.room.leave())));
  assert.deepEqual([...watcher.errors, ...sender.errors], []);
});
