// An SFU call across a server restart: the server (and the embedded SFU inside it) is killed
// and started again on the same port and database, and each page's media comes back by itself
// once the rooms notice (a poll answers, the session check finds the SFU session gone, and the
// plane rebuilds: new session, push, pull). Measured from the moment the new server listens
// to each page's first decoded frame of the other, against a fresh join into an SFU room on
// the same server in the same run: a rebuild cannot beat a first join.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RUNS, callroomPage, launch, median, ms, percentile, save, startServer, unique } from "./common.mjs";

const dir = mkdtempSync(join(tmpdir(), "callroom-restart-"));
const db = join(dir, "rooms.db");
let server = await startServer([], { db });
const listen = `127.0.0.1:${server.port}`;
const browser = await launch();

/** Joins an SFU room and records the time of every frame shown of each remote camera. */
async function joinWatching(page, room) {
  page.sessions = 0;
  page.on("request", (r) => {
    if (r.url().endsWith("/sfu/sessions/new")) page.sessions++;
  });
  await page.evaluate(async (room) => {
    window.room = await window.callroom.Room.join({ room, topology: "sfu" });
    window.frames = [];
    const videos = new Map();
    const check = () => {
      for (const r of window.room.snapshot().remoteStreams) {
        if (!r.stream || videos.has(r.peerId)) continue;
        const v = Object.assign(document.createElement("video"), { muted: true, autoplay: true, playsInline: true });
        v.srcObject = r.stream;
        document.body.append(v);
        videos.set(r.peerId, v);
        const frame = () => {
          // Bounded: a few minutes of frames at most.
          if (window.frames.length > 10_000) window.frames.splice(0, 5_000);
          window.frames.push(window.benchNow());
          v.requestVideoFrameCallback(frame);
        };
        v.requestVideoFrameCallback(frame);
      }
    };
    window.room.subscribe(check);
    check();
  }, room);
}

/** Waits until `page` shows a frame later than `after` (epoch ms); that frame's time. */
async function frameAfter(page, after, timeout = 60_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const t = await page.evaluate((after) => window.frames.find((f) => f > after), after);
    if (t !== undefined) return t;
    if (Date.now() > deadline) throw new Error(`no frame within ${timeout} ms of the restart`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function restartRun(a, b) {
  await Promise.all([frameAfter(a, Date.now()), frameAfter(b, Date.now())]);
  const sessions = a.sessions + b.sessions;
  const killed = Date.now();
  await server.kill();
  server = await startServer([], { listen, db });
  const up = Date.now();
  const back = await Promise.all([frameAfter(a, up), frameAfter(b, up)]);
  const lastBefore = await Promise.all(
    [a, b].map((p) => p.evaluate((killed) => Math.max(...window.frames.filter((f) => f <= killed + 50)), killed)),
  );
  return {
    serverDown: up - killed,
    back: Math.max(...back) - up,
    gap: Math.max(...back.map((t, i) => t - lastBefore[i])),
    newSessions: a.sessions + b.sessions - sessions,
  };
}

/** Page C is in a fresh SFU room; D joins; time from D's join call to C's first frame of D. */
async function freshJoin(c, d) {
  const room = unique("restart-fresh");
  await c.evaluate(async (room) => {
    window.room = await window.callroom.Room.join({ room, topology: "sfu" });
    window.frame = window.benchFirstFrames(window.room, 1);
  }, room);
  const t0 = await d.evaluate(async (room) => {
    const t0 = window.benchNow();
    window.room = await window.callroom.Room.join({ room, topology: "sfu" });
    return t0;
  }, room);
  const frame = await c.evaluate(async () => (await window.frame)[0]);
  await Promise.all([c.evaluate(() => window.room.leave()), d.evaluate(() => window.room.leave())]);
  return frame - t0;
}

const room = unique("restart");
const a = await callroomPage(browser, server);
const b = await callroomPage(browser, server);
await joinWatching(a, room);
await joinWatching(b, room);
const c = await callroomPage(browser, server);
const d = await callroomPage(browser, server);

// One warm-up of each, not counted.
await restartRun(a, b);
await freshJoin(c, d);

const runs = [];
const fresh = [];
const count = Math.min(RUNS, 7);
for (let i = 0; i < count; i++) {
  runs.push(await restartRun(a, b));
  fresh.push(await freshJoin(c, d));
}
await browser.close();
await server.stop();
rmSync(dir, { recursive: true, force: true });

const stats = (xs) => ({ median: median(xs), p90: percentile(xs, 90), runs: xs });
const result = {
  runs: count,
  serverDown: stats(runs.map((r) => r.serverDown)),
  backAfterListening: stats(runs.map((r) => r.back)),
  mediaGap: stats(runs.map((r) => r.gap)),
  freshSfuJoin: stats(fresh),
  newSessionsPerRestart: runs.map((r) => r.newSessions),
};
console.log(`an SFU call across a server restart (${count} runs, two pages; kill -9, then the same port and database)`);
console.log(`  server down (kill to listening again)        median ${ms(result.serverDown.median)}  p90 ${ms(result.serverDown.p90)}`);
console.log(`  media back, from listening to both pages' first frame  median ${ms(result.backAfterListening.median)}  p90 ${ms(result.backAfterListening.p90)}`);
console.log(`  whole media gap (last frame before to first after)      median ${ms(result.mediaGap.median)}  p90 ${ms(result.mediaGap.p90)}`);
console.log(`  a fresh join into an SFU room, same server (the floor)  median ${ms(result.freshSfuJoin.median)}  p90 ${ms(result.freshSfuJoin.p90)}  ratio ${(result.backAfterListening.median / result.freshSfuJoin.median).toFixed(2)} x`);
console.log(`  new SFU sessions per restart (both pages): ${result.newSessionsPerRestart.join(", ")}`);
save("restart", result);
