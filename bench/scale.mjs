// Scaling: time until everyone decodes everyone, for mesh rooms of 2, 3, 4 and 6 participants,
// hubs with 1, 3 and 6 guests, and SFU rooms of 2, 4, 6 and 8 (all pages in one headless
// browser, the SFU embedded in the server).
import { RUNS, callroomPage, launch, median, ms, save, startServer, unique } from "./common.mjs";

const server = await startServer(["--room-capacity", "16"]);
const browser = await launch();
const runs = Math.max(1, Math.min(RUNS, Number(process.env.BENCH_SCALE_RUNS ?? 3)));

/** Joins everyone at once; resolves with ms from the first join call to the last first frame. */
async function round(pages, roles, expected, topology) {
  const room = unique("scale");
  const t0 = Date.now();
  const done = await Promise.all(
    pages.map((page, i) =>
      page.evaluate(
        async ({ room, role, expected, topology }) => {
          window.room = await window.callroom.Room.join({ room, role, topology, media: role !== "host" });
          const times = await window.benchFirstFrames(window.room, expected);
          return Math.max(...times, window.benchNow());
        },
        { room, role: roles[i], expected: expected[i], topology },
      ),
    ),
  );
  const total = Math.max(...done) - t0;
  await Promise.all(pages.map((p) => p.evaluate(() => window.room.leave())));
  return total;
}

const pool = [];
async function pages(n) {
  while (pool.length < n) pool.push(await callroomPage(browser, server));
  return pool.slice(0, n);
}

const mesh = {};
for (const n of [2, 3, 4, 6]) {
  const ps = await pages(n);
  const times = [];
  for (let r = 0; r < runs; r++) times.push(await round(ps, Array(n).fill("peer"), Array(n).fill(n - 1)));
  mesh[n] = { median: median(times), runs: times };
}
const hub = {};
for (const guests of [1, 3, 6]) {
  const ps = await pages(guests + 1);
  const roles = ["host", ...Array(guests).fill("guest")];
  // The host receives every guest; guests receive nothing (the host does not publish).
  const expected = [guests, ...Array(guests).fill(0)];
  const times = [];
  for (let r = 0; r < runs; r++) times.push(await round(ps, roles, expected));
  hub[guests] = { median: median(times), runs: times };
}
const sfu = {};
for (const n of [2, 4, 6, 8]) {
  const ps = await pages(n);
  const times = [];
  for (let r = 0; r < runs; r++) times.push(await round(ps, Array(n).fill("peer"), Array(n).fill(n - 1), "sfu"));
  sfu[n] = { median: median(times), runs: times };
}
await browser.close();
await server.stop();

console.log(`scaling: join (all at once) -> everyone decodes everyone (${runs} runs each, median)`);
console.log(`  mesh  ${Object.entries(mesh).map(([n, r]) => `${n} people ${ms(r.median)}`).join(", ")}`);
console.log(`        links: ${Object.keys(mesh).map((n) => `${n}: ${(n * (n - 1)) / 2}`).join(", ")}`);
console.log(`  hub   ${Object.entries(hub).map(([g, r]) => `${g} guest${g === "1" ? "" : "s"} ${ms(r.median)}`).join(", ")}`);
console.log(`  sfu   ${Object.entries(sfu).map(([n, r]) => `${n} people ${ms(r.median)}`).join(", ")}`);
console.log(`        encoders: one per page; connections: one per page`);
save("scale", { runs, mesh, hub, sfu });
