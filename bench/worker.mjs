// `cargo xtask bench worker`: the signaling relay on the Worker under local workerd next to
// callroom-server (release) in the same run. Latency: a relay's POST to the moment the
// recipient's held long-poll answers with it (the wake-up path), one at a time. Throughput:
// relays delivered per second with several senders at once, each to its own recipient who
// polls without pause. Relay rate limits are lifted on both: the bench measures the servers.

import { startCallroomServer, startWorker } from "../tests/conformance/targets.mjs";
import { median, percentile, save, unique } from "./common.mjs";

const LATENCY_RUNS = Number(process.env.BENCH_LATENCY_RUNS ?? 300);
const SENDERS = Number(process.env.BENCH_SENDERS ?? 8);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const PAYLOAD = { type: "candidate", candidate: "candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host generation 0", sdpMid: "0" };

async function post(url, path, token, body) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url + path, { method: "POST", headers, body: JSON.stringify(body) });
  const json = await response.json();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

async function poll(url, token, since, wait) {
  const response = await fetch(`${url}/messages?since=${since}&wait=${wait}`, { headers: { authorization: `Bearer ${token}` } });
  const json = await response.json();
  if (!response.ok) throw new Error(`poll: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

async function pair(url) {
  const room = unique("bench");
  const a = await post(url, "/signaling", null, { type: "join", room, role: "peer", name: "A" });
  const b = await post(url, "/signaling", null, { type: "join", room, role: "peer", name: "B" });
  const { cursor } = await poll(url, a.token, 0, 0);
  return { a, b, cursor: { a: cursor, b: 0 } };
}

async function latency(url) {
  const { a, b } = await pair(url);
  let since = 0;
  const samples = [];
  for (let i = 0; i < LATENCY_RUNS + 10; i++) {
    const held = poll(url, b.token, since, 25_000);
    // Let the poll reach the server and wait there.
    await new Promise((r) => setTimeout(r, 5));
    const started = performance.now();
    await post(url, "/signaling", a.token, { type: "candidate", to: b.peerId, payload: { ...PAYLOAD, i } });
    const got = await held;
    const elapsed = performance.now() - started;
    since = got.cursor;
    if (i >= 10) samples.push(elapsed); // the first ones warm up
  }
  return { p50: median(samples), p99: percentile(samples, 99) };
}

async function throughput(url) {
  const pairs = await Promise.all(Array.from({ length: SENDERS }, () => pair(url)));
  const until = performance.now() + SECONDS * 1000;
  let delivered = 0;
  const senders = pairs.map(async ({ a, b }) => {
    let i = 0;
    while (performance.now() < until) {
      await post(url, "/signaling", a.token, { type: "candidate", to: b.peerId, payload: { ...PAYLOAD, i: i++ } });
    }
  });
  const receivers = pairs.map(async ({ b }) => {
    let since = 0;
    while (performance.now() < until) {
      const got = await poll(url, b.token, since, 1_000);
      delivered += got.messages.filter((m) => m.type === "candidate").length;
      since = got.cursor;
    }
  });
  const started = performance.now();
  await Promise.all([...senders, ...receivers]);
  return delivered / ((performance.now() - started) / 1000);
}

/** The floor under every request: `GET /livez` (no storage, no room) with as many clients. */
async function floor(url) {
  const until = performance.now() + SECONDS * 1000;
  let answered = 0;
  const clients = Array.from({ length: SENDERS * 2 }, async () => {
    while (performance.now() < until) {
      const response = await fetch(`${url}/livez`);
      await response.arrayBuffer();
      answered++;
    }
  });
  const started = performance.now();
  await Promise.all(clients);
  return answered / ((performance.now() - started) / 1000);
}

const lifted = { relayRate: "1000000", relayBurst: "1000000", backlog: "100000" };
const servers = [
  [
    "callroom-server (release, SQLite)",
    () => startCallroomServer([
      "--relay-rate", lifted.relayRate, "--relay-burst", lifted.relayBurst, "--max-backlog", lifted.backlog,
      "--join-burst", "1000000", "--room-join-burst", "1000000",
    ]),
  ],
  [
    "Worker (workerd, Durable Object)",
    () => startWorker({
      vars: {
        CALLROOM_RELAY_RATE: lifted.relayRate,
        CALLROOM_RELAY_BURST: lifted.relayBurst,
        CALLROOM_MAX_BACKLOG: lifted.backlog,
        CALLROOM_ROOM_JOIN_BURST: "1000000",
      },
    }),
  ],
];

const results = [];
for (const [name, start] of servers) {
  const server = await start();
  try {
    const { p50, p99 } = await latency(server.url);
    const rate = await throughput(server.url);
    const livez = await floor(server.url);
    results.push({ name, p50, p99, rate, livez });
  } finally {
    await server.stop();
  }
}

console.log(`\nrelay through the server: POST → the recipient's held poll answers (${LATENCY_RUNS} one at a time), and delivered relays/s with ${SENDERS} senders for ${SECONDS} s`);
console.log("and the floor of the same server: `GET /livez` answered per second with twice as many clients");
console.log("| server | latency p50 | latency p99 | throughput | floor: /livez |");
console.log("|---|---|---|---|---|");
for (const r of results) {
  console.log(`| ${r.name} | ${r.p50.toFixed(1)} ms | ${r.p99.toFixed(1)} ms | ${Math.round(r.rate)} relays/s | ${Math.round(r.livez)} req/s |`);
}
save("worker", { results, latencyRuns: LATENCY_RUNS, senders: SENDERS, seconds: SECONDS });
