// Scaling: time until everyone decodes everyone, for mesh rooms of 2, 3, 4 and 6 participants,
// hubs with 1, 3 and 6 guests, and SFU rooms of 2, 4, 6 and 8 (all pages in one headless
// browser, the SFU embedded in the server).
import { availableParallelism } from "node:os";
import {
  RUNS,
  browserCpuSeconds,
  callroomPage,
  launch,
  median,
  ms,
  processCpuSeconds,
  save,
  startServer,
  unique,
} from "./common.mjs";

const server = await startServer(["--room-capacity", "16"]);
const browser = await launch();
const runs = Math.max(1, Math.min(RUNS, Number(process.env.BENCH_SCALE_RUNS ?? 3)));

/** How long the call's steady state is measured for CPU, after everyone decodes everyone. */
const CPU_WINDOW_MS = 3000;

/**
 * Joins everyone at once. Resolves with ms from the first join call to the last first frame,
 * then the CPU the call takes once everyone decodes everyone (every video still shown at
 * 160 × 90): the whole browser's, per page, and the server's (signaling and SFU), as % of
 * one core.
 */
async function round(pages, roles, expected, topology) {
  const room = unique("scale");
  const t0 = Date.now();
  const done = await Promise.all(
    pages.map((page, i) =>
      page.evaluate(
        async ({ room, role, expected, topology }) => {
          window.room = await window.callroom.Room.join({ room, role, topology, media: role !== "host" });
          const times = await window.benchFirstFrames(window.room, expected, true);
          return Math.max(...times, window.benchNow());
        },
        { room, role: roles[i], expected: expected[i], topology },
      ),
    ),
  );
  const total = Math.max(...done) - t0;
  const [browser0, server0, at0] = [await browserCpuSeconds(browser), processCpuSeconds(server.pid), Date.now()];
  await new Promise((r) => setTimeout(r, CPU_WINDOW_MS));
  const [browser1, server1, at1] = [await browserCpuSeconds(browser), processCpuSeconds(server.pid), Date.now()];
  const seconds = (at1 - at0) / 1000;
  await Promise.all(
    pages.map((p) =>
      p.evaluate(async () => {
        await window.room.leave();
        for (const v of document.querySelectorAll("video")) {
          v.srcObject = null;
          v.remove();
        }
      }),
    ),
  );
  // The browser also holds the pool's pages that sit this round out: take their idle share off.
  const idle = idlePerPage * (pool.length - pages.length);
  return {
    total,
    cpuPerPage: (((browser1 - browser0) / seconds - idle) / pages.length) * 100,
    serverCpu: ((server1 - server0) / seconds) * 100,
  };
}

/** Median time, and median CPU figures, of `rounds`. */
const summary = (rounds) => ({
  median: median(rounds.map((r) => r.total)),
  runs: rounds.map((r) => r.total),
  cpuPerPage: median(rounds.map((r) => r.cpuPerPage)),
  serverCpu: median(rounds.map((r) => r.serverCpu)),
});
const cpu = (r) => `${r.cpuPerPage.toFixed(0)}% core/page, server ${r.serverCpu.toFixed(0)}%`;

// Every page up front, and what an idle one's renderer costs (CPU seconds per second).
const pool = [];
while (pool.length < 8) pool.push(await callroomPage(browser, server));
await new Promise((r) => setTimeout(r, 1000));
const idleStart = [await browserCpuSeconds(browser, "renderer"), Date.now()];
await new Promise((r) => setTimeout(r, CPU_WINDOW_MS));
const idlePerPage =
  (await browserCpuSeconds(browser, "renderer") - idleStart[0]) / ((Date.now() - idleStart[1]) / 1000) / pool.length;
const pages = async (n) => pool.slice(0, n);
console.log(`an idle page's renderer: ${(idlePerPage * 100).toFixed(1)}% of a core (taken off for pages that sit a round out)`);

const mesh = {};
for (const n of [2, 3, 4, 6]) {
  const ps = await pages(n);
  const times = [];
  for (let r = 0; r < runs; r++) times.push(await round(ps, Array(n).fill("peer"), Array(n).fill(n - 1)));
  mesh[n] = summary(times);
}
const hub = {};
for (const guests of [1, 3, 6]) {
  const ps = await pages(guests + 1);
  const roles = ["host", ...Array(guests).fill("guest")];
  // The host receives every guest; guests receive nothing (the host does not publish).
  const expected = [guests, ...Array(guests).fill(0)];
  const times = [];
  for (let r = 0; r < runs; r++) times.push(await round(ps, roles, expected));
  hub[guests] = summary(times);
}
const sfu = {};
for (const n of [2, 4, 6, 8]) {
  const ps = await pages(n);
  const times = [];
  for (let r = 0; r < runs; r++) times.push(await round(ps, Array(n).fill("peer"), Array(n).fill(n - 1), "sfu"));
  sfu[n] = summary(times);
}
await browser.close();
await server.stop();

console.log(`scaling: join (all at once) -> everyone decodes everyone (${runs} runs each, median)`);
const cores = availableParallelism();
console.log(`scaling: CPU while everyone decodes everyone, ${CPU_WINDOW_MS / 1000} s window, % of one core (this machine has ${cores})`);
for (const [n, r] of Object.entries(mesh)) console.log(`  mesh ${n} people: ${ms(r.median)}, ${cpu(r)}, ${(n * (n - 1)) / 2} links`);
for (const [g, r] of Object.entries(hub)) console.log(`  hub ${g} guest${g === "1" ? "" : "s"}: ${ms(r.median)}, ${cpu(r)}`);
for (const [n, r] of Object.entries(sfu)) console.log(`  sfu ${n} people: ${ms(r.median)}, ${cpu(r)}, one connection and one encoder per page`);
if (mesh[6] && sfu[6]) console.log(`  6 people: sfu reaches everyone decoding everyone ${(mesh[6].median / sfu[6].median).toFixed(1)}x faster than mesh`);
save("scale", { runs, mesh, hub, sfu });
