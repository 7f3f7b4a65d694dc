// Active speaker and recording, in real calls through the real server: pages load the built
// package (`/pkg/index.js`), Chromium's fake microphone beeps, and recordings are played back
// and decoded in the page.
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

/**
 * Notes, from before any page script, what a recording could leave behind: every track made
 * (camera, canvas, audio mix), every AudioContext, every element given a stream, every
 * interval still running.
 */
function leakWatch() {
  const held = { tracks: [], contexts: [], elements: new Set(), intervals: new Set() };
  window.__held = held;
  const keepTracks = (stream) => {
    held.tracks.push(...stream.getTracks());
    return stream;
  };
  const gum = MediaDevices.prototype.getUserMedia;
  MediaDevices.prototype.getUserMedia = async function (...args) {
    return keepTracks(await gum.apply(this, args));
  };
  const capture = HTMLCanvasElement.prototype.captureStream;
  HTMLCanvasElement.prototype.captureStream = function (...args) {
    return keepTracks(capture.apply(this, args));
  };
  const destination = AudioContext.prototype.createMediaStreamDestination;
  AudioContext.prototype.createMediaStreamDestination = function () {
    const node = destination.call(this);
    keepTracks(node.stream);
    return node;
  };
  const Native = window.AudioContext;
  window.AudioContext = class extends Native {
    constructor(...args) {
      super(...args);
      held.contexts.push(this);
    }
  };
  const src = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, "srcObject");
  Object.defineProperty(HTMLMediaElement.prototype, "srcObject", {
    ...src,
    set(value) {
      if (value) held.elements.add(this);
      src.set.call(this, value);
    },
  });
  const setInterval_ = window.setInterval;
  const clearInterval_ = window.clearInterval;
  window.setInterval = (...args) => {
    const id = setInterval_(...args);
    held.intervals.add(id);
    return id;
  };
  window.clearInterval = (id) => {
    held.intervals.delete(id);
    clearInterval_(id);
  };
}

const pageWithPackage = ({ initScript } = {}) => pageWithCallroom(browser, server, { initScript, entry: "/pkg/index.js" });

async function join(p, room, name) {
  return p.page.evaluate(
    async ({ room, name }) => {
      window.room = await window.callroom.Room.join({ room, name });
      window.speakerEvents = [];
      window.room.on("active-speaker", (e) => window.speakerEvents.push(e.peerId));
      return window.room.snapshot().sessionId;
    },
    { room, name },
  );
}

const decodes = (p, peer) =>
  p.page.waitForFunction((peer) => window.room.snapshot().remoteStreams.some((r) => r.peerId === peer && r.framesDecoded > 0), peer, {
    timeout: 30_000,
  });

test("the fake microphone's beeps read as speaking, here and at the other end; muted never speaks", async () => {
  const room = unique("speak");
  const [a, b] = [await pageWithPackage(), await pageWithPackage()];
  const aId = await join(a, room, "Ann");
  const bId = await join(b, room, "Bob");
  // A hears B: a level measured from B's audio, and speaking on.
  const heard = await a.page.waitForFunction(
    (bId) => {
      const r = window.room.snapshot().remoteStreams.find((r) => r.peerId === bId);
      return r?.speaking && r.audioLevel >= 0.02 ? r.audioLevel : null;
    },
    bId,
    { timeout: 20_000 },
  );
  const level = await heard.jsonValue();
  await b.page.waitForFunction(() => window.room.snapshot().localSpeaking, null, { timeout: 10_000 });
  const active = await a.page.evaluate(() => ({ now: window.room.snapshot().activeSpeaker, events: window.speakerEvents }));
  assert.ok([aId, bId].includes(active.now), `active speaker ${active.now}`);
  assert.ok(active.events.length >= 1 && active.events.every((p) => [aId, bId].includes(p)), JSON.stringify(active.events));
  assert.equal(active.events.at(-1), active.now, "the event and the snapshot agree");

  await b.page.evaluate(() => window.room.setMicEnabled(false));
  await b.page.waitForFunction(() => !window.room.snapshot().localSpeaking, null, { timeout: 2_000 });
  // A stops hearing B within the hold time plus a round or two; then B stays silent.
  await a.page.waitForFunction(
    (bId) => window.room.snapshot().remoteStreams.some((r) => r.peerId === bId && !r.speaking),
    bId,
    { timeout: 5_000 },
  );
  const watch = (p, read) =>
    p.page.evaluate(async (read) => {
      const seen = [];
      for (let i = 0; i < 25; i++) {
        seen.push(new Function("s", `return ${read}`)(window.room.snapshot()));
        await new Promise((r) => setTimeout(r, 100));
      }
      return seen;
    }, read);
  const [atA, atB] = await Promise.all([
    watch(a, `s.remoteStreams.find((r) => r.peerId === ${JSON.stringify(bId)}).speaking`),
    watch(b, "[s.localSpeaking, s.localAudioLevel]"),
  ]);
  assert.ok(atA.every((s) => s === false), `A saw muted B speak: ${atA}`);
  assert.ok(atB.every(([speaking, level]) => !speaking && level === 0), JSON.stringify(atB));
  console.log(`speaking: A heard B at level ${level.toFixed(3)}; after B muted, 2.5 s without speaking on either side`);
  for (const p of [a, b]) {
    assert.deepEqual(p.errors, []);
    await p.close();
  }
});

/**
 * Installed in a page: `__inspect(blob, probes)` loads a recording into a <video> and returns
 * its duration, how far it seeks, what the frames at `probes` (seconds; negative: from the
 * end) show, and the loudest sample of its decoded audio.
 */
function installInspector() {
  window.__inspect = async (blob, probes) => {
    const video = document.createElement("video");
    video.muted = true;
    video.src = URL.createObjectURL(blob);
    await new Promise((resolve, reject) => {
      video.onloadedmetadata = resolve;
      video.onerror = () => reject(new Error(`cannot load the recording: ${video.error?.message}`));
    });
    const duration = video.duration;
    const seekableEnd = video.seekable.length ? video.seekable.end(0) : 0;
    const canvas = document.createElement("canvas");
    const shown = [];
    for (const at of probes) {
      video.currentTime = at < 0 ? duration + at : at;
      await new Promise((r) => (video.onseeked = r));
      // A paused element in no document presents nothing, so no frame callback: wait for data.
      for (let i = 0; i < 50 && video.readyState < 2; i++) await new Promise((r) => setTimeout(r, 20));
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      const c = canvas.getContext("2d", { willReadFrequently: true });
      c.drawImage(video, 0, 0);
      // Mean distance from the background colour (#111) of a region.
      const region = (x, y, w, h) => {
        const d = c.getImageData(x, y, w, h).data;
        let sum = 0;
        for (let i = 0; i < d.length; i += 4) sum += Math.abs(d[i] - 17) + Math.abs(d[i + 1] - 17) + Math.abs(d[i + 2] - 17);
        return Math.round(sum / (d.length / 4));
      };
      shown.push({
        at: video.currentTime,
        size: [video.videoWidth, video.videoHeight],
        // A 2×2 grid's cells (a 2-tile grid shows its two tiles across the middle row).
        topLeft: region(240, 200, 160, 100),
        topRight: region(880, 200, 160, 100),
        bottomLeft: region(300, 620, 240, 80),
        bottomRight: region(940, 620, 240, 80),
      });
    }
    const audio = new AudioContext();
    let peak = 0;
    try {
      const decoded = await audio.decodeAudioData(await blob.arrayBuffer());
      for (let ch = 0; ch < decoded.numberOfChannels; ch++) {
        for (const s of decoded.getChannelData(ch)) peak = Math.max(peak, Math.abs(s));
      }
    } finally {
      await audio.close();
    }
    URL.revokeObjectURL(video.src);
    return { duration, seekableEnd, shown, peak, type: blob.type, bytes: blob.size };
  };
}

test("a recording of a call: finite duration, seekable, frames and sound decode, and a mid-recording joiner is in the last frames", async () => {
  const room = unique("rec");
  const [a, b, c] = [await pageWithPackage({ initScript: installInspector }), await pageWithPackage(), await pageWithPackage()];
  const aId = await join(a, room, "Ann");
  const bId = await join(b, room, "Bob");
  await Promise.all([decodes(a, bId), decodes(b, aId)]);

  const chunks = await a.page.evaluate(async () => {
    window.chunks = [];
    window.recording = await window.room.startRecording({ onData: (chunk) => window.chunks.push(chunk.size) });
    window.recordingStarted = performance.now();
    const again = await window.room.startRecording().catch((e) => e.code);
    return { again, type: window.recording.mimeType };
  });
  assert.equal(chunks.again, "recording_active");
  assert.match(chunks.type, /^video\/webm;codecs=vp[89]/i);
  await new Promise((r) => setTimeout(r, 1_500));
  const cId = await join(c, room, "Cy");
  await decodes(a, cId);
  const status = await a.page.evaluate(async () => {
    // At least 4 s in all, and 1.5 s with C shown.
    const wait = Math.max(4_000 - (performance.now() - window.recordingStarted), 1_500);
    await new Promise((r) => setTimeout(r, wait));
    const during = window.room.snapshot().recording;
    // A second stop() while the first is finishing (a Stop click, then Leave) gets the same,
    // whole file.
    const [blob, again] = await Promise.all([window.recording.stop(), window.recording.stop()]);
    window.blob = blob;
    return { during, after: window.room.snapshot().recording, measured: window.recording.durationMs, chunks: window.chunks, same: blob === again };
  });
  assert.equal(status.same, true);
  assert.ok(status.during.durationMs > 2_000 && status.during.bytes > 0, JSON.stringify(status.during));
  assert.equal(status.after, null);
  assert.ok(status.chunks.length >= 3, `onData got ${status.chunks.length} chunks`);

  const file = await a.page.evaluate(() => window.__inspect(window.blob, [0.5, -0.3]));
  console.log(`recording: ${JSON.stringify({ ...file, measured: status.measured })}`);
  assert.ok(Number.isFinite(file.duration), `duration ${file.duration}`);
  assert.ok(Math.abs(file.duration * 1000 - status.measured) < 1_000, `file says ${file.duration} s, recorded ${status.measured} ms`);
  assert.ok(file.duration >= 3.5 && file.duration < 10, `about 4 s: ${file.duration}`);
  assert.ok(Math.abs(file.seekableEnd - file.duration) < 0.5, `seekable to the end: ${file.seekableEnd}`);
  // The chunks onData saw, and the Duration written into the header (11 bytes, and 7 more
  // for Info's size, rewritten on 8 bytes).
  assert.equal(file.bytes, status.chunks.reduce((n, s) => n + s, 0) + 18, "the file is the chunks onData saw, with a duration");
  const [early, last] = file.shown;
  assert.deepEqual(early.size, [1280, 720]);
  const VIDEO = 30; // mean distance from the background: a camera picture, not an empty cell
  // Two tiles side by side early on (the bottom-left is letterbox), three in a 2×2 grid at the end.
  assert.ok(early.topLeft > VIDEO && early.topRight > VIDEO && early.bottomLeft < VIDEO, JSON.stringify(early));
  assert.ok(last.topLeft > VIDEO && last.topRight > VIDEO && last.bottomLeft > VIDEO && last.bottomRight < VIDEO, JSON.stringify(last));
  assert.ok(file.peak > 0.05, `the mixed beeps are in the file: peak ${file.peak}`);
  for (const p of [a, b, c]) {
    assert.deepEqual(p.errors, []);
    await p.close();
  }
});

/** In a page watched by `leakWatch`: what is still held, once AudioContext.close() settled. */
async function stillHeld() {
  for (let i = 0; i < 20 && window.__held.contexts.some((c) => c.state !== "closed"); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    liveTracks: window.__held.tracks.filter((t) => t.readyState === "live").map((t) => `${t.kind}:${t.label}`),
    contexts: window.__held.contexts.map((c) => c.state).filter((s) => s !== "closed"),
    elements: [...window.__held.elements].filter((e) => e.srcObject).map((e) => e.tagName),
    intervals: window.__held.intervals.size,
  };
}

test("sharing our screen during a recording adds its tile as it happens", async () => {
  const room = unique("rec-screen");
  const [a, b] = [await pageWithPackage({ initScript: installInspector }), await pageWithPackage()];
  const aId = await join(a, room, "Ann");
  const bId = await join(b, room, "Bob");
  await Promise.all([decodes(a, bId), decodes(b, aId)]);
  const result = await a.page.evaluate(async () => {
    const recording = await window.room.startRecording();
    await new Promise((r) => setTimeout(r, 1_500));
    await window.room.startScreenShare();
    const screen = window.room.snapshot().localScreenStream;
    const shared = { tracks: screen?.getVideoTracks().map((t) => t.readyState), same: screen === window.room.snapshot().localScreenStream };
    await new Promise((r) => setTimeout(r, 2_000));
    const file = await window.__inspect(await recording.stop(), [0.5, -0.3]);
    await window.room.stopScreenShare();
    return { shared, file, after: window.room.snapshot().localScreenStream };
  });
  assert.deepEqual(result.shared, { tracks: ["live"], same: true });
  assert.equal(result.after, null);
  const [early, last] = result.file.shown;
  const VIDEO = 30;
  // Before: our camera and Bob's side by side. After: ours, our screen, then Bob bottom-left.
  assert.ok(early.bottomLeft < VIDEO, JSON.stringify(early));
  assert.ok(last.topLeft > VIDEO && last.bottomLeft > VIDEO && last.bottomRight < VIDEO, JSON.stringify(last));
  for (const p of [a, b]) {
    assert.deepEqual(p.errors, []);
    await p.close();
  }
});

test("leaving during a recording stops it and releases every track, audio context, element and timer", async () => {
  const room = unique("rec-leave");
  const [a, b] = [await pageWithPackage({ initScript: leakWatch }), await pageWithPackage({ initScript: leakWatch })];
  for (const p of [a, b]) await p.page.evaluate(`window.stillHeld = ${stillHeld}`);
  const aId = await join(a, room, "Ann");
  const bId = await join(b, room, "Bob");
  await Promise.all([decodes(a, bId), decodes(b, aId)]);
  const held = await a.page.evaluate(async () => {
    const recording = await window.room.startRecording({ layout: "speaker" });
    await new Promise((r) => setTimeout(r, 1_500));
    const during = {
      liveTracks: window.__held.tracks.filter((t) => t.readyState === "live").length,
      contexts: window.__held.contexts.filter((c) => c.state !== "closed").length,
      elements: [...window.__held.elements].filter((e) => e.srcObject).length,
      intervals: window.__held.intervals.size,
    };
    await window.room.leave();
    // Read before stop(): leave() alone must have ended the recording.
    const after = await window.stillHeld();
    const blob = await recording.stop();
    return { during, after, bytes: blob.size, recording: window.room.snapshot().recording };
  });
  // During: camera and mic, the canvas and the mix; the room's meter and the recorder's mix;
  // the recorder's elements and the meter's; the room's two timers and the recorder's.
  assert.ok(held.during.liveTracks >= 4 && held.during.contexts >= 2 && held.during.elements >= 3 && held.during.intervals >= 3, JSON.stringify(held.during));
  assert.deepEqual(held.after, { liveTracks: [], contexts: [], elements: [], intervals: 0 });
  assert.ok(held.bytes > 0, "what was recorded before leave() is kept");
  assert.equal(held.recording, null);
  // leave() racing a recording still starting: the leave happens, and the recording ends.
  const raced = await b.page.evaluate(async () => {
    const starting = window.room.startRecording();
    const [started, left] = await Promise.allSettled([starting, window.room.leave()]);
    const file = started.status === "fulfilled" ? await started.value.stop() : null;
    return {
      started: started.status === "fulfilled" ? "started" : started.reason.code,
      left: left.status,
      state: window.room.snapshot().connectionState,
      recording: window.room.snapshot().recording,
      file: file?.size ?? null,
      after: await window.stillHeld(),
    };
  });
  assert.equal(raced.left, "fulfilled");
  assert.equal(raced.state, "disconnected");
  assert.ok(["closed", "started"].includes(raced.started), JSON.stringify(raced));
  assert.equal(raced.recording, null);
  assert.deepEqual(raced.after, { liveTracks: [], contexts: [], elements: [], intervals: 0 }, JSON.stringify(raced));
  for (const p of [a, b]) {
    assert.deepEqual(p.errors, []);
    await p.close();
  }
});

test("options.stream records one stream as it is; bad options are refused with a code", async () => {
  const room = unique("rec-one");
  const [a, b] = [await pageWithPackage({ initScript: installInspector }), await pageWithPackage()];
  const aId = await join(a, room, "Ann");
  const bId = await join(b, room, "Bob");
  await Promise.all([decodes(a, bId), decodes(b, aId)]);
  const result = await a.page.evaluate(async (bId) => {
    const codes = [];
    for (const bad of [{ layout: "mosaic" }, { width: 10 }, { frameRate: 0.5 }, { mimeType: "video/x-nothing" }, { onData: 3 }, { stream: {} }, null]) {
      codes.push(await window.room.startRecording(bad).then(() => "started", (e) => `${e.name}:${e.code}`));
    }
    const stream = window.room.snapshot().remoteStreams.find((r) => r.peerId === bId).stream;
    const recording = await window.room.startRecording({ stream });
    await new Promise((r) => setTimeout(r, 2_500));
    const file = await window.__inspect(await recording.stop(), [1]);
    return { codes, file };
  }, bId);
  assert.deepEqual(result.codes, [
    "CallroomError:invalid_argument",
    "CallroomError:invalid_argument",
    "CallroomError:invalid_argument",
    "CallroomError:unsupported",
    "CallroomError:invalid_argument",
    "CallroomError:invalid_argument",
    "CallroomError:invalid_argument",
  ]);
  const [frame] = result.file.shown;
  // B's camera as it arrives (640×480, or smaller when a busy machine makes the sender scale
  // down), not a composed 1280×720 frame.
  const [width, height] = frame.size;
  assert.ok(width <= 640 && Math.abs(width / height - 4 / 3) < 0.01, `B's 4:3 camera as it is: ${frame.size}`);
  assert.ok(Number.isFinite(result.file.duration) && result.file.duration > 1.5, JSON.stringify(result.file));
  for (const p of [a, b]) {
    assert.deepEqual(p.errors, []);
    await p.close();
  }
});
