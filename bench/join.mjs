// Join -> first remote frame, against the physical limit measured in the same run: two
// RTCPeerConnections in one page exchanging the fake camera with no server at all. Also the
// same call with the client short-polling once a second, as the original system did.
import { RUNS, callroomPage, inPageLimit, launch, median, ms, percentile, save, startServer, unique } from "./common.mjs";

const server = await startServer();
const browser = await launch();

/** Page A is in the room; B joins; time from B's join call to A's first frame from B. */
async function callroomRun(a, b, options) {
  const room = unique("join");
  await a.evaluate(async ({ room, options }) => {
    window.room = await window.callroom.Room.join({ room, ...options });
    window.marks = {};
    window.room.on("participant-joined", () => (window.marks.seen ??= window.benchNow()));
    window.room.subscribe(() => {
      const r = window.room.snapshot().remoteStreams[0];
      if (r && r.connectionState === "connected") window.marks.connected ??= window.benchNow();
    });
    window.frame = window.benchFirstFrames(window.room, 1);
  }, { room, options });
  const t0 = await b.evaluate(async ({ room, options }) => {
    const t0 = window.benchNow();
    window.room = await window.callroom.Room.join({ room, ...options });
    window.joined = window.benchNow();
    return t0;
  }, { room, options });
  const marks = await a.evaluate(async () => ({ frame: (await window.frame)[0], ...window.marks }));
  const joined = await b.evaluate(() => window.joined);
  await Promise.all([a.evaluate(() => window.room.leave()), b.evaluate(() => window.room.leave())]);
  return {
    total: marks.frame - t0,
    joinCall: joined - t0,
    seen: marks.seen - t0,
    connected: marks.connected - t0,
    frame: marks.frame - t0,
  };
}

const limitPage = await callroomPage(browser, server);
const a = await callroomPage(browser, server);
const b = await callroomPage(browser, server);
const longPoll = {};
const shortPoll = { pollWaitMs: 0, pollIntervalMs: 1000 };
const sfuRoom = { topology: "sfu" };

// One warm-up of each, not counted: the first getUserMedia and first wasm calls are slower.
await inPageLimit(limitPage);
await callroomRun(a, b, longPoll);
await callroomRun(a, b, sfuRoom);

const limit = [];
const callroom = [];
const short = [];
const sfu = [];
for (let i = 0; i < RUNS; i++) {
  // Interleaved, so machine noise lands on all three alike.
  limit.push(await inPageLimit(limitPage));
  callroom.push(await callroomRun(a, b, longPoll));
  short.push(await callroomRun(a, b, shortPoll));
  sfu.push(await callroomRun(a, b, sfuRoom));
}
await browser.close();
await server.stop();

const stats = (xs) => ({ median: median(xs), p90: percentile(xs, 90), runs: xs });
const totals = (runs) => runs.map((r) => r.total);
const result = {
  runs: RUNS,
  limit: stats(limit),
  callroom: stats(totals(callroom)),
  shortPolling1s: stats(totals(short)),
  sfu: stats(totals(sfu)),
  ratio: median(totals(callroom)) / median(limit),
  breakdown: {
    joinCall: median(callroom.map((r) => r.joinCall)),
    peerSeen: median(callroom.map((r) => r.seen)),
    connected: median(callroom.map((r) => r.connected)),
    firstFrame: median(callroom.map((r) => r.frame)),
  },
  // In an SFU room A's one connection was up before B came, so there is no "connected" mark.
  sfuBreakdown: {
    joinCall: median(sfu.map((r) => r.joinCall)),
    peerSeen: median(sfu.map((r) => r.seen)),
    firstFrame: median(sfu.map((r) => r.frame)),
  },
};
const breakdown = (b) =>
  `join answered ${ms(b.joinCall)}, A sees B ${ms(b.peerSeen)}, ICE+DTLS connected ${ms(b.connected)}, first frame ${ms(b.firstFrame)}`;
console.log(`join -> first remote frame (${RUNS} runs each, interleaved)`);
console.log(`  in-page limit (2 PCs, no server)   median ${ms(result.limit.median)}  p90 ${ms(result.limit.p90)}`);
console.log(`  callroom (long-poll)               median ${ms(result.callroom.median)}  p90 ${ms(result.callroom.p90)}  ratio ${result.ratio.toFixed(2)} x limit`);
console.log(`  callroom short-polling every 1 s   median ${ms(result.shortPolling1s.median)}  p90 ${ms(result.shortPolling1s.p90)}`);
console.log(`  callroom, sfu room (via the SFU)   median ${ms(result.sfu.median)}  p90 ${ms(result.sfu.p90)}  ratio ${(result.sfu.median / result.limit.median).toFixed(2)} x limit`);
console.log(`  breakdown (median, from B's join call): ${breakdown(result.breakdown)}`);
console.log(
  `  sfu breakdown: join answered ${ms(result.sfuBreakdown.joinCall)}, A sees B ${ms(result.sfuBreakdown.peerSeen)}, first frame ${ms(result.sfuBreakdown.firstFrame)} (A's connection to the SFU was up before)`,
);
save("join", result);
