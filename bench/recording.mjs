// Recording: what recording a mesh call costs in CPU. BENCH_PEOPLE pages (4) in one browser
// join one room; the first alternates 10 s windows of recording (grid, 1280×720 at
// BENCH_FPS (30), the default type or BENCH_MIME) and of not recording, three of each.
// Reported: the whole browser's CPU (every renderer, the GPU and utility processes: the
// encoder and canvas work land there) and the recording page's main thread (CDP
// TaskDuration), each in % of one core. On 2 cores a 4-person call already saturates the
// machine, so the recording's share is clearest with BENCH_PEOPLE=2.
import { browserCpuSeconds, callroomPage, launch, median, save, startServer, unique } from "./common.mjs";

const WINDOW_MS = Number(process.env.BENCH_WINDOW_MS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const FPS = Number(process.env.BENCH_FPS ?? 30);
const MIME = process.env.BENCH_MIME;

const server = await startServer();
const browser = await launch();
const room = unique("rec");
const pages = [];
const PEOPLE = Number(process.env.BENCH_PEOPLE ?? 4);
for (let i = 0; i < PEOPLE; i++) pages.push(await callroomPage(browser, server));
for (const [i, page] of pages.entries()) {
  await page.evaluate(async ({ room, name }) => {
    window.room = await window.callroom.Room.join({ room, name });
    // Shown as an app shows a call: every remote stream playing in a <video>.
    window.room.subscribe(() => {
      for (const r of window.room.snapshot().remoteStreams) {
        if (document.getElementById(r.peerId)) continue;
        const v = Object.assign(document.createElement("video"), { id: r.peerId, autoplay: true, muted: true, playsInline: true });
        v.srcObject = r.stream;
        document.body.append(v);
      }
    });
  }, { room, name: `P${i}` });
}
await pages[0].waitForFunction((n) => window.room.snapshot().remoteStreams.filter((r) => r.framesDecoded > 0).length === n - 1, PEOPLE, {
  timeout: 60_000,
});
await new Promise((r) => setTimeout(r, 3_000));

const cdp = await pages[0].context().newCDPSession(pages[0]);
await cdp.send("Performance.enable");
const mainThread = async () => (await cdp.send("Performance.getMetrics")).metrics.find((m) => m.name === "TaskDuration").value;

async function window_(recording) {
  let blob = 0;
  if (recording) {
    await pages[0].evaluate(
      async (options) => (window.recording = await window.room.startRecording(options)),
      { frameRate: FPS, ...(MIME ? { mimeType: MIME } : {}) },
    );
  }
  const [b0, m0, t0] = [await browserCpuSeconds(browser), await mainThread(), Date.now()];
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  const [b1, m1, t1] = [await browserCpuSeconds(browser), await mainThread(), Date.now()];
  if (recording) blob = await pages[0].evaluate(async () => (await window.recording.stop()).size);
  const seconds = (t1 - t0) / 1000;
  return { browser: ((b1 - b0) / seconds) * 100, page: ((m1 - m0) / seconds) * 100, kbps: (blob * 8) / 1000 / seconds };
}

const off = [];
const on = [];
for (let i = 0; i < ROUNDS; i++) {
  off.push(await window_(false));
  on.push(await window_(true));
}
await browser.close();
await server.stop();

const pick = (rows, key) => median(rows.map((r) => r[key]));
const result = {
  windowMs: WINDOW_MS,
  rounds: ROUNDS,
  notRecording: { browserPercentOfCore: pick(off, "browser"), pageMainThreadPercent: pick(off, "page") },
  recording: { browserPercentOfCore: pick(on, "browser"), pageMainThreadPercent: pick(on, "page"), kbitPerSecond: pick(on, "kbps") },
  people: PEOPLE,
  frameRate: FPS,
  mimeType: MIME ?? "default",
};
const pct = (v) => `${v.toFixed(0)}%`;
console.log(`recording a ${PEOPLE}-person mesh call at ${FPS} fps, ${MIME ?? "the default type"} (median of ${ROUNDS} × ${WINDOW_MS / 1000} s windows, % of one core)`);
console.log(`  whole browser, ${PEOPLE} pages:   not recording ${pct(result.notRecording.browserPercentOfCore)}, recording ${pct(result.recording.browserPercentOfCore)} (+${pct(result.recording.browserPercentOfCore - result.notRecording.browserPercentOfCore)})`);
console.log(`  recording page's main thread: ${pct(result.notRecording.pageMainThreadPercent)} → ${pct(result.recording.pageMainThreadPercent)}`);
console.log(`  file written at ${result.recording.kbitPerSecond.toFixed(0)} kbit/s`);
save("recording", result);
