// Cold join -> first remote frame, the way a user lives it: every run uses fresh browser
// contexts, each page has loaded (and, for callroom, called `init()`); t0 is the click (the
// join call, camera capture included), and the clock stops at the other page's first decoded
// frame of the newcomer (requestVideoFrameCallback). Three contenders, interleaved:
//   - the in-page limit: two RTCPeerConnections in one page, t0 before getUserMedia;
//   - PeerJS 1.5.5 with a local PeerServer: t0 before its getUserMedia, `new Peer`, open, call;
//   - callroom: `Room.join` into a room where the other page already is, in a mesh room and
//     in an sfu room (through the server's embedded SFU).
import { createServer } from "node:net";
import { join } from "node:path";
import { PeerServer } from "peer";

import { ROOT, RUNS, inPageLimit, launch, median, ms, percentile, save, startServer, unique } from "./common.mjs";

const server = await startServer();
const browser = await launch();
const peerPort = await new Promise((resolve) => {
  const probe = createServer().listen(0, "127.0.0.1", () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});
const peerServer = PeerServer({ port: peerPort, host: "127.0.0.1", path: "/peerjs" });
const PEERJS = join(ROOT, "node_modules", "peerjs", "dist", "peerjs.min.js");

/**
 * With BENCH_TRACE=1, callroom's pages log every step on the way to the first frame (fetches,
 * offer/answer calls, candidates, ICE and DTLS states), and the slowest run's merged timeline is
 * printed: the critical path, step by step. The wrappers cost a little time, so traced runs
 * are for reading, not for the figures.
 */
const TRACE = process.env.BENCH_TRACE === "1";
/** Which room's runs are traced: `mesh` (the default) or `sfu`. */
const TRACED = process.env.BENCH_TRACE_TOPOLOGY ?? "mesh";
/** With BENCH_ONLY=sfu (or mesh, peerjs, limit), only that contender runs: for diagnosis. */
const ONLY = process.env.BENCH_ONLY;
/** How long every camera takes to open (0: Chromium's fake camera, at once). */
const CAMERA_MS = Number(process.env.BENCH_CAMERA_MS ?? 0);

function traceSteps(tag) {
  window.trace = [];
  const log = (what) => window.trace.push([window.now(), tag, what]);
  window.traceLog = log;
  const address = (c) => (c ?? "").split(" ").slice(4, 8).join(" ") || "end";
  const P = RTCPeerConnection.prototype;
  const watched = new WeakSet();
  const watch = (pc) => {
    if (watched.has(pc)) return;
    watched.add(pc);
    pc.addEventListener("icecandidate", (e) => log(`gathered ${address(e.candidate?.candidate)}`));
    pc.addEventListener("iceconnectionstatechange", () => log(`ice ${pc.iceConnectionState}`));
    pc.addEventListener("connectionstatechange", () => log(`connection ${pc.connectionState}`));
    pc.addEventListener("track", (e) => log(`track ${e.track.kind}`));
  };
  for (const m of ["createOffer", "createAnswer", "setLocalDescription", "setRemoteDescription", "addIceCandidate"]) {
    const original = P[m];
    P[m] = async function (...args) {
      watch(this);
      const what = m === "addIceCandidate" ? address(args[0]?.candidate) : (args[0]?.type ?? "");
      log(`${m} ${what} >`);
      const result = await original.apply(this, args);
      log(`${m} <`);
      return result;
    };
  }
  const addTrack = P.addTrack;
  P.addTrack = function (track, ...streams) {
    log(`addTrack ${track.kind}`);
    return addTrack.apply(this, [track, ...streams]);
  };
  const Original = window.RTCPeerConnection;
  window.RTCPeerConnection = function (...args) {
    log("new RTCPeerConnection >");
    const pc = new Original(...args);
    log("new RTCPeerConnection <");
    watch(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = P;
  const gum = MediaDevices.prototype.getUserMedia;
  MediaDevices.prototype.getUserMedia = async function (...args) {
    log("getUserMedia >");
    const stream = await gum.apply(this, args);
    log("getUserMedia <");
    return stream;
  };
  const fetch = window.fetch;
  window.fetch = async function (input, init) {
    const url = String(input?.url ?? input).replace(/^https?:\/\/[^/]+/, "");
    const type = /"type":"([a-z-]+)"/.exec(String(init?.body ?? ""))?.[1] ?? "";
    log(`fetch ${url} ${type} >`);
    const response = await fetch.apply(this, [input, init]);
    log(`fetch ${url} ${type} < ${response.status}`);
    return response;
  };
  const text = Response.prototype.text;
  Response.prototype.text = async function () {
    const url = this.url.replace(/^https?:\/\/[^/]+/, "");
    const body = await text.apply(this);
    log(`body ${url} ${/"type":"([a-z-]+)"/.exec(body)?.[1] ?? ""}`);
    return body;
  };
  // PeerJS signals over a WebSocket: its frames, by type.
  const frameType = (data) => /"type":"([A-Za-z-]+)"/.exec(String(data))?.[1] ?? "";
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    log(`ws send ${frameType(data)}`);
    return send.apply(this, [data]);
  };
  const OriginalSocket = window.WebSocket;
  window.WebSocket = function (...args) {
    const socket = new OriginalSocket(...args);
    log("ws open >");
    socket.addEventListener("open", () => log("ws open <"));
    socket.addEventListener("message", (e) => log(`ws message ${frameType(e.data)}`));
    return socket;
  };
  window.WebSocket.prototype = OriginalSocket.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
}

/** A page in a fresh context on the server's origin, with `window.now()` on the shared clock. */
async function freshPage(tag) {
  const context = await browser.newContext({ permissions: ["camera", "microphone"] });
  const page = await context.newPage();
  if (TRACE && tag) await page.addInitScript(traceSteps, tag);
  await page.addInitScript((cameraMs) => {
    window.now = () => performance.timeOrigin + performance.now();
    // When the camera was captured, for the breakdown. With BENCH_CAMERA_MS, every
    // contender's camera takes that long to open, as a real webcam's first open does
    // (Chromium's fake one opens at once).
    const gum = MediaDevices.prototype.getUserMedia;
    MediaDevices.prototype.getUserMedia = async function (...args) {
      const opening = new Promise((resolve) => setTimeout(resolve, cameraMs));
      const stream = await gum.apply(this, args);
      await opening;
      window.captured ??= window.now();
      return stream;
    };
    // Resolves with the time the first frame of `stream`'s video is shown.
    window.firstFrame = (stream) =>
      new Promise((resolve) => {
        const v = Object.assign(document.createElement("video"), { muted: true, autoplay: true, playsInline: true });
        v.srcObject = stream;
        document.body.append(v);
        v.requestVideoFrameCallback(() => resolve(window.now()));
      });
  }, CAMERA_MS);
  await page.goto(`${server.url}/`);
  return { page, close: () => context.close() };
}

async function limitRun() {
  const { page, close } = await freshPage();
  const took = await inPageLimit(page);
  await close();
  return took;
}

async function peerjsRun() {
  const [a, b] = [await freshPage("A"), await freshPage("B")];
  for (const p of [a, b]) await p.page.addScriptTag({ path: PEERJS });
  const options = { host: "127.0.0.1", port: peerPort, path: "/peerjs", secure: false, config: { iceServers: [] } };
  const id = unique("pj").replace(/[^a-z0-9]/gi, "");
  await a.page.evaluate(
    async ({ id, options }) => {
      const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
      const peer = new window.peerjs.Peer(id, options);
      await new Promise((resolve, reject) => {
        peer.on("open", resolve);
        peer.on("error", reject);
      });
      window.frame = new Promise((resolve) => {
        peer.on("call", (call) => {
          call.answer(stream);
          call.on("stream", (remote) => resolve(window.firstFrame(remote)));
        });
      });
    },
    { id, options },
  );
  const t0 = await b.page.evaluate(
    async ({ id, options }) => {
      const t0 = window.now();
      const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
      const peer = new window.peerjs.Peer(`${id}b`, options);
      await new Promise((resolve, reject) => {
        peer.on("open", resolve);
        peer.on("error", reject);
      });
      peer.call(id, stream);
      return t0;
    },
    { id, options },
  );
  const frame = await a.page.evaluate(() => window.frame);
  if (TRACE && frame - t0 > slowestPeerjs) {
    slowestPeerjs = frame - t0;
    peerjsTrace = await mergedTrace(a, b, t0, frame);
  }
  await Promise.all([a.close(), b.close()]);
  return frame - t0;
}

/** Both pages' traces of one run, in order, in ms from t0, up to the first frame. */
async function mergedTrace(a, b, t0, frame) {
  const steps = [...(await a.page.evaluate(() => window.trace)), ...(await b.page.evaluate(() => window.trace))];
  const trace = steps.filter(([t]) => t >= t0 - 1 && t <= frame + 1).sort((x, y) => x[0] - y[0]).map(([t, tag, what]) => [t - t0, tag, what]);
  trace.unshift([0, "", `t0 ${new Date(t0).toISOString()}`]);
  trace.push([frame - t0, "A", "first frame of B shown"]);
  return trace;
}

async function callroomRun(topology = "mesh") {
  const [a, b] = [await freshPage("A"), await freshPage("B")];
  for (const p of [a, b]) {
    await p.page.evaluate(async () => {
      window.callroom = await import("/pkg/index.js");
      await window.callroom.init();
    });
  }
  const room = unique("cold");
  await a.page.evaluate(async ({ room, topology }) => {
    const joined = await window.callroom.Room.join({ room, topology });
    window.marks = {};
    joined.on("participant-joined", () => (window.marks.seen ??= window.now()));
    window.frame = new Promise((resolve) => {
      const check = () => {
        const r = joined.snapshot().remoteStreams[0];
        if (r?.connectionState === "connected") window.marks.connected ??= window.now();
        if (r && r.stream.getVideoTracks().length > 0 && !window.marks.track) {
          window.marks.track = window.now();
          window.firstFrame(r.stream).then((t) => {
            off();
            resolve(t);
          });
        }
      };
      const off = joined.subscribe(check);
      check();
    });
  }, { room, topology });
  for (const p of [a, b]) await p.page.evaluate(() => window.trace?.splice(0));
  const { t0, captured, joined } = await b.page.evaluate(async ({ room, topology }) => {
    const t0 = window.now();
    window.room = await window.callroom.Room.join({ room, topology });
    return { t0, captured: window.captured, joined: window.now() };
  }, { room, topology });
  const frame = await a.page.evaluate(() => window.frame);
  const marks = await a.page.evaluate(() => window.marks);
  if (TRACE && topology === TRACED && frame - t0 > slowestTraced) {
    slowestTraced = frame - t0;
    lastTrace = await mergedTrace(a, b, t0, frame);
  }
  await Promise.all([a.close(), b.close()]);
  if (topology !== "mesh") return frame - t0;
  breakdown.push({ captured: captured - t0, joined: joined - t0, seen: marks.seen - t0, track: marks.track - t0, connected: marks.connected - t0 });
  return frame - t0;
}

/** callroom's runs, step by step (ms from the join call). */
const breakdown = [];
/** With BENCH_TRACE=1: the slowest traced run's merged timeline. */
let lastTrace = [];
let slowestTraced = 0;
/** The same for PeerJS (its WebSocket frames traced in place of fetches). */
let peerjsTrace = [];
let slowestPeerjs = 0;

// One warm-up of each, not counted (the browser's first camera and first wasm compile).
await limitRun();
await peerjsRun();
await callroomRun();
await callroomRun("sfu");
const runs = { limit: [], peerjs: [], callroom: [], sfu: [] };
const included = (name) => !ONLY || ONLY === name;
for (let i = 0; i < RUNS; i++) {
  if (included("limit")) runs.limit.push(await limitRun());
  if (included("peerjs")) runs.peerjs.push(await peerjsRun());
  if (included("mesh")) runs.callroom.push(await callroomRun());
  if (included("sfu")) runs.sfu.push(await callroomRun("sfu"));
}
await browser.close();
await server.stop();
peerServer.close?.();

const stats = (xs) => ({ median: median(xs), p90: percentile(xs, 90), runs: xs });
const steps = Object.fromEntries(
  ["captured", "joined", "seen", "track", "connected"].map((k) => [k, median(breakdown.slice(1).map((b) => b[k]))]),
);
const result = {
  runs: RUNS,
  limit: stats(runs.limit),
  peerjs: stats(runs.peerjs),
  callroom: stats(runs.callroom),
  sfu: stats(runs.sfu),
  callroomSteps: steps,
};
const ratio = (x) => `${(x.median / result.limit.median).toFixed(2)} x limit`;
console.log(
  `cold join -> first remote frame (${RUNS} runs each, interleaved, fresh contexts, t0 = the join click` +
    `${CAMERA_MS ? `, cameras that take ${CAMERA_MS} ms to open` : ""})`,
);
console.log(`  in-page limit (2 PCs, no server)   median ${ms(result.limit.median)}  p90 ${ms(result.limit.p90)}`);
console.log(`  PeerJS 1.5.5 + local PeerServer    median ${ms(result.peerjs.median)}  p90 ${ms(result.peerjs.p90)}  ${ratio(result.peerjs)}`);
console.log(`  callroom (mesh, long-poll)         median ${ms(result.callroom.median)}  p90 ${ms(result.callroom.p90)}  ${ratio(result.callroom)}`);
console.log(
  `  callroom (sfu, embedded SFU)       median ${ms(result.sfu.median)}  p90 ${ms(result.sfu.p90)}  ${ratio(result.sfu)}, ` +
    `${(result.sfu.median / result.callroom.median).toFixed(2)} x mesh`,
);
console.log(
  `  callroom, step by step (median): camera captured ${ms(steps.captured)}, join resolved ${ms(steps.joined)}, ` +
    `the other page sees the newcomer ${ms(steps.seen)}, gets its video track ${ms(steps.track)}, connected ${ms(steps.connected)}`,
);
if (TRACE) {
  console.log(`\nthe slowest ${TRACED} run, step by step (ms from the join call; A was in the room, B joins):`);
  for (const [t, tag, what] of lastTrace) console.log(`  ${t.toFixed(1).padStart(7)}  ${tag}  ${what}`);
  console.log(`\nthe slowest PeerJS run, step by step (A waits for the call, B calls):`);
  for (const [t, tag, what] of peerjsTrace) console.log(`  ${t.toFixed(1).padStart(7)}  ${tag}  ${what}`);
}
save(CAMERA_MS ? `join-cold-camera-${CAMERA_MS}ms` : "join-cold", { ...result, cameraMs: CAMERA_MS });
process.exit(0);
