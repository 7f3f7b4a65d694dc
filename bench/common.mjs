// Shared by the benchmark scripts: servers, browsers, page helpers, statistics, output.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS, ROOT, startServer as startTestServer } from "../tests/e2e/support.mjs";

export { ROOT };

/**
 * The server, with its join limits lifted: a benchmark plays every participant from one
 * address, which the defaults would (rightly) slow down.
 */
export function startServer(extraArgs = [], options) {
  const lifted = ["--join-burst", "1000000", "--room-join-burst", "1000000"];
  return startTestServer([...lifted, ...extraArgs], options);
}

export const RUNS = Number(process.env.BENCH_RUNS ?? 9);

/** Chromium with fake devices, a GC hook and precise heap numbers. */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN ?? "/usr/bin/chromium",
    headless: true,
    args: [
      ...CHROMIUM_ARGS,
      "--enable-precise-memory-info",
      "--js-flags=--expose-gc",
    ],
  });
}

/** Page-side helpers, installed before any page script runs. */
const HELPERS = `
  window.benchNow = () => performance.timeOrigin + performance.now();
  // Resolves with the times at which the first frame of \`count\` remote streams was shown;
  // with \`keep\`, the videos stay on the page (to measure a call's steady state).
  window.benchFirstFrames = (room, count, keep = false) => new Promise((resolve) => {
    if (count === 0) return resolve([]);
    const videos = new Map();
    const times = new Map();
    const check = () => {
      for (const r of room.snapshot().remoteStreams) {
        if (!r.stream || videos.has(r.peerId)) continue;
        const v = Object.assign(document.createElement("video"), { muted: true, autoplay: true, playsInline: true, width: 160, height: 90 });
        // The tile's size, as an app reports it (in an SFU room the pulled layer follows).
        room.setTileSize(r.peerId, 160, 90);
        v.srcObject = r.stream;
        document.body.append(v);
        videos.set(r.peerId, v);
        v.requestVideoFrameCallback(() => {
          times.set(r.peerId, window.benchNow());
          if (times.size >= count) {
            off();
            if (!keep) for (const video of videos.values()) { video.srcObject = null; video.remove(); }
            resolve([...times.values()]);
          }
        });
      }
    };
    const off = room.subscribe(check);
    check();
  });
`;

/** A fresh page on the server's origin with callroom loaded as `window.callroom`. */
export async function callroomPage(browser, server) {
  const context = await browser.newContext({ permissions: ["camera", "microphone"] });
  const page = await context.newPage();
  await page.addInitScript(HELPERS);
  await page.goto(`${server.url}/`);
  await page.evaluate(async () => {
    window.callroom = await import("/pkg/index.js");
    await window.callroom.init();
  });
  return page;
}

export function median(values) {
  return percentile(values, 50);
}

export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  if (!sorted.length) return NaN;
  const rank = Math.min(sorted.length - 1, Math.round((p / 100) * (sorted.length - 1)));
  return sorted[rank];
}

export const ms = (v) => (Number.isFinite(v) ? `${v.toFixed(0)} ms` : "n/a");
export const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;

/** Writes `target/bench/<part>.json`. */
export function save(part, result) {
  const dir = join(ROOT, "target", "bench");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${part}.json`), JSON.stringify(result, null, 2));
}

/**
 * CPU seconds used so far by every process of `browser` (renderers, GPU, utility, browser), or
 * only by those of process `type` (such as "renderer").
 */
export async function browserCpuSeconds(browser, type) {
  const session = await browser.newBrowserCDPSession();
  const { processInfo } = await session.send("SystemInfo.getProcessInfo");
  await session.detach();
  return processInfo.filter((p) => !type || p.type === type).reduce((sum, p) => sum + p.cpuTime, 0);
}

/** CPU seconds used so far by process `pid` (Linux `/proc`, user + system). */
export function processCpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export const unique = (prefix) => `${prefix}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;

/**
 * The physical limit of a join, in `page`: two RTCPeerConnections exchanging the fake camera
 * with no server; ms from before `getUserMedia` to the first frame shown.
 */
export async function inPageLimit(page) {
  return page.evaluate(async () => {
    const t0 = performance.now();
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    const a = new RTCPeerConnection();
    const b = new RTCPeerConnection();
    a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
    b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
    const frame = new Promise((resolve) => {
      b.ontrack = (e) => {
        if (e.track.kind !== "video") return;
        const v = Object.assign(document.createElement("video"), { muted: true, autoplay: true, playsInline: true });
        v.srcObject = e.streams[0];
        document.body.append(v);
        v.requestVideoFrameCallback(() => {
          v.remove();
          resolve(performance.now());
        });
      };
    });
    for (const track of stream.getTracks()) a.addTrack(track, stream);
    await a.setLocalDescription();
    await b.setRemoteDescription(a.localDescription);
    await b.setLocalDescription();
    await a.setRemoteDescription(b.localDescription);
    const t1 = await frame;
    stream.getTracks().forEach((t) => t.stop());
    a.close();
    b.close();
    return t1 - t0;
  });
}
