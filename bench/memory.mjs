// Memory: 50 join/leave cycles of a two-person call in one page. Wasm linear memory and JS
// heap after cycle 1 and cycle 50, and live peer connections and media tracks at the end
// (which must be 0: a leak, if any, is also a failing test in tests/room.rs).
import { callroomPage, launch, save, startServer, unique } from "./common.mjs";

const CYCLES = Number(process.env.BENCH_CYCLES ?? 50);
const server = await startServer();
const browser = await launch();
const page = await callroomPage(browser, server);
await page.evaluate(() => {
  const pcs = [];
  const tracks = [];
  window.recorded = { pcs, tracks };
  const Real = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Real {
    constructor(...args) {
      super(...args);
      pcs.push(new WeakRef(this));
    }
  };
  const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (c) => {
    const s = await gum(c);
    for (const t of s.getTracks()) tracks.push(new WeakRef(t));
    return s;
  };
});

const measure = () =>
  page.evaluate(async () => {
    const exports = await (await import("/pkg/callroom.js")).default();
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 50));
    const live = (refs, alive) => refs.map((r) => r.deref()).filter((x) => x && alive(x)).length;
    return {
      wasmBytes: exports.memory.buffer.byteLength,
      jsHeapBytes: performance.memory?.usedJSHeapSize ?? NaN,
      livePeerConnections: live(window.recorded.pcs, (pc) => pc.signalingState !== "closed"),
      liveTracks: live(window.recorded.tracks, (t) => t.readyState === "live"),
    };
  });

async function cycle() {
  await page.evaluate(async (room) => {
    const { Room } = window.callroom;
    const a = await Room.join({ room, name: "A" });
    const b = await Room.join({ room, name: "B" });
    await window.benchFirstFrames(a, 1);
    await a.leave();
    await b.leave();
    a.free();
    b.free();
  }, unique("mem"));
}

await cycle();
const afterFirst = await measure();
for (let i = 1; i < CYCLES; i++) await cycle();
const afterLast = await measure();
await browser.close();
await server.stop();

const mib = (b) => `${(b / 1048576).toFixed(2)} MiB`;
console.log(`memory: ${CYCLES} join/leave cycles of a two-person call in one page`);
console.log(`  wasm linear memory   after 1: ${mib(afterFirst.wasmBytes)}   after ${CYCLES}: ${mib(afterLast.wasmBytes)}`);
console.log(`  JS heap (after GC)   after 1: ${mib(afterFirst.jsHeapBytes)}   after ${CYCLES}: ${mib(afterLast.jsHeapBytes)}`);
console.log(`  live at the end      peer connections ${afterLast.livePeerConnections}, media tracks ${afterLast.liveTracks}`);
save("memory", { cycles: CYCLES, afterFirst, afterLast });
