// The signaling protocol, over HTTP, against every server that speaks it: callroom-server and
// the Worker under local workerd. The same requests must get the same answers from both.
// Set CALLROOM_TARGETS=server or =worker to run one.

import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";

import { startCallroomServer, startWorker } from "./targets.mjs";

const TARGETS = (process.env.CALLROOM_TARGETS ?? "server,worker").split(",");
const CALLS_SECRET = randomBytes(16).toString("hex");
const TURN_TOKEN = "turn-api-token-" + randomBytes(8).toString("hex");
const TICKET_SECRET = "conformance-ticket-secret";
/** Limits both servers run with here, small enough to reach in a test. */
const LIMITS = { peerTimeout: "4s", backlog: 20, relayBurst: 30, relayRate: 2 };

/** A stand-in for Cloudflare's TURN API (offline): records calls, mints fixed servers. */
async function fakeTurnApi() {
  const calls = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      calls.push({ path: req.url, auth: req.headers.authorization, body });
      res.writeHead(201, { "content-type": "application/json" });
      res.end(JSON.stringify({
        iceServers: { urls: ["turn:turn.example.test:3478?transport=udp"], username: "minted-user", credential: "minted-credential" },
      }));
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { base: `http://127.0.0.1:${server.address().port}/v1`, calls, close: () => server.close() };
}

let turn;
let sfuServer;
const running = [];

async function start(name, { tickets = false } = {}) {
  // The tickets instance also holds a wrong Calls app secret: the Calls API refuses it.
  const turnArgs = tickets
    ? ["--sfu", "cloudflare", "--cf-api-base", `${sfuServer.url}/v1`]
    : ["--cf-turn-key-id", "key1", "--cf-turn-api-token", TURN_TOKEN, "--cf-api-base", turn.base];
  if (name === "server") {
    const args = [
      "--peer-timeout", LIMITS.peerTimeout, "--max-backlog", String(LIMITS.backlog),
      "--relay-burst", String(LIMITS.relayBurst), "--relay-rate", String(LIMITS.relayRate),
      // Every test joins from 127.0.0.1; the per-address budget is not what is tested here.
      "--join-burst", "100000",
      "--calls-app-id", "callroom", "--calls-app-secret", tickets ? "not-the-secret" : CALLS_SECRET,
      ...turnArgs,
      ...(tickets ? ["--ticket-secret", TICKET_SECRET] : []),
    ];
    const server = await startCallroomServer(args);
    running.push(server);
    return server;
  }
  const vars = {
    CALLROOM_PEER_TIMEOUT: LIMITS.peerTimeout,
    CALLROOM_MAX_BACKLOG: String(LIMITS.backlog),
    CALLROOM_RELAY_BURST: String(LIMITS.relayBurst),
    CALLROOM_RELAY_RATE: String(LIMITS.relayRate),
    CALLROOM_CF_TURN_KEY_ID: "key1",
    CALLROOM_CF_TURN_API_TOKEN: TURN_TOKEN,
    CALLROOM_CF_API_BASE: turn.base,
    // The Worker's Calls proxy forwards to callroom-server's embedded SFU, which speaks the
    // same Calls API as Cloudflare.
    CALLROOM_CALLS_API_BASE: `${sfuServer.url}/v1`,
    CALLROOM_CALLS_APP_ID: "callroom",
    CALLROOM_CALLS_APP_SECRET: tickets ? "not-the-secret" : CALLS_SECRET,
    ...(tickets ? { CALLROOM_TICKET_SECRET: TICKET_SECRET } : {}),
  };
  const worker = await startWorker({ vars });
  running.push(worker);
  return worker;
}

before(async () => {
  turn = await fakeTurnApi();
  sfuServer = await start("server");
});

after(async () => {
  for (const s of running) await s.stop();
  turn.close();
});

async function call(base, method, path, { token, body, raw, headers = {} } = {}) {
  const sent = { ...headers };
  if (token) sent.authorization = `Bearer ${token}`;
  let payload;
  if (raw !== undefined) payload = raw;
  else if (body !== undefined) {
    payload = JSON.stringify(body);
    sent["content-type"] ??= "application/json";
  }
  const response = await fetch(base + path, { method, headers: sent, body: payload });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: response.status, json, text, headers: response.headers };
}

const room = (prefix) => `${prefix}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;

function expectError(response, status, code) {
  assert.equal(response.status, status, `${code}: ${response.text}`);
  assert.equal(response.json?.error?.code, code, response.text);
  assert.equal(typeof response.json.error.message, "string");
}

function ticket(claims, secret = TICKET_SECRET) {
  const enc = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const head = `${enc({ alg: "HS256", typ: "JWT" })}.${enc(claims)}`;
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

for (const name of TARGETS) {
  describe(`protocol conformance: ${name}`, () => {
    let target;
    const url = () => target.url;
    const join = (r, role = "peer", extra = {}) =>
      call(url(), "POST", "/signaling", { body: { type: "join", room: r, role, name: "N", ...extra } });
    const relay = (token, to, type = "offer", payload = { type: "offer", sdp: "v=0" }) =>
      call(url(), "POST", "/signaling", { token, body: { type, to, payload } });
    const poll = (token, since = 0, wait = 0) => call(url(), "GET", `/messages?since=${since}&wait=${wait}`, { token });

    before(async () => {
      target = name === "server" ? sfuServer : await start(name);
    });

    test("health: /healthz and /livez answer JSON", async () => {
      for (const path of ["/healthz", "/livez"]) {
        const r = await call(url(), "GET", path);
        assert.equal(r.status, 200);
        assert.equal(r.json.status, "ok");
        assert.equal((await call(url(), "HEAD", path)).status, 200);
      }
    });

    test("static files: the demo at / and the package at /pkg/", async () => {
      const page = await call(url(), "GET", "/");
      assert.equal(page.status, 200);
      assert.match(page.headers.get("content-type"), /text\/html/);
      assert.equal((await call(url(), "GET", "/room.html")).status, 200);
      const pkg = await call(url(), "GET", "/pkg/callroom.js");
      assert.equal(pkg.status, 200);
      assert.match(pkg.headers.get("content-type"), /javascript/);
      assert.equal((await call(url(), "GET", "/no-such-file.html")).status, 404);
    });

    test("join: the answer's shape, and the room hears a newcomer with gapless seq", async () => {
      const r = room("join");
      const a = await join(r);
      assert.equal(a.status, 200, a.text);
      assert.match(a.json.peerId, /^p[0-9a-f]{16}$/);
      assert.equal(typeof a.json.token, "string");
      assert.deepEqual(
        [a.json.room, a.json.topology, a.json.role, a.json.peers, a.json.cursor, a.json.capacity],
        [r, "mesh", "peer", [], 0, 16],
      );
      assert.ok(Array.isArray(a.json.iceServers));
      const b = await join(r, "peer", { name: "  Bo  " });
      assert.deepEqual(b.json.peers, [{ peerId: a.json.peerId, role: "peer", name: "N" }]);
      const heard = await poll(a.json.token);
      assert.equal(heard.status, 200, heard.text);
      assert.deepEqual(heard.json.messages, [
        { seq: 1, type: "peer-joined", from: null, payload: { peerId: b.json.peerId, role: "peer", name: "Bo" } },
      ]);
      assert.equal(heard.json.cursor, 1);
      assert.equal((await relay(b.json.token, a.json.peerId)).status, 200);
      const next = await poll(a.json.token, 1);
      assert.deepEqual(next.json.messages.map((m) => [m.seq, m.type, m.from]), [[2, "offer", b.json.peerId]]);
      assert.deepEqual(next.json.messages[0].payload, { type: "offer", sdp: "v=0" });
    });

    test("a held poll is woken by the relay that fills it", async () => {
      const r = room("wake");
      const a = (await join(r)).json;
      const b = (await join(r)).json;
      const started = Date.now();
      const held = poll(b.token, 0, 25_000);
      await new Promise((res) => setTimeout(res, 500));
      await relay(a.token, b.peerId, "candidate", { candidate: "c" });
      const got = await held;
      const elapsed = Date.now() - started;
      assert.deepEqual(got.json.messages.map((m) => m.type), ["candidate"]);
      // Not the deadline's answer: 25 s is far beyond any wake-up.
      assert.ok(elapsed < 15_000, `answered after ${elapsed} ms`);
      const empty = await poll(b.token, got.json.cursor, 0);
      assert.deepEqual(empty.json, { messages: [], cursor: got.json.cursor });
    });

    test("bad requests get the same codes from both servers", async () => {
      const r = room("bad");
      const a = (await join(r)).json;
      expectError(await call(url(), "POST", "/signaling", { raw: "{nope", headers: { "content-type": "application/json" } }), 400, "invalid_json");
      expectError(await call(url(), "POST", "/signaling", { body: { type: "Shout" } }), 400, "unknown_type");
      expectError(await call(url(), "POST", "/signaling", { body: { type: "peer-left" } }), 400, "unknown_type");
      expectError(await join("../etc"), 400, "invalid_input");
      expectError(await join(r, "peer", { topology: "star" }), 400, "invalid_input");
      expectError(await join(r, "admin"), 400, "invalid_json");
      expectError(await join(r, "peer", { name: "evil\u202eman" }), 400, "invalid_input");
      expectError(await join(r, "peer", { name: "x".repeat(65) }), 400, "invalid_input");
      expectError(await join(r, "peer", { name: "x".repeat(70_000) }), 413, "body_too_large");
      expectError(await call(url(), "POST", "/signaling", { raw: '{"type":"join"}', headers: { "content-type": "text/plain" } }), 415, "unsupported_media_type");
      expectError(await call(url(), "POST", "/signaling", { body: { type: "leave" }, headers: { origin: "https://evil.example" } }), 403, "origin_not_allowed");
      expectError(await call(url(), "GET", "/signaling"), 405, "method_not_allowed");
      expectError(await poll("nope"), 401, "unauthorized");
      expectError(await poll(a.token.slice(0, -1) + (a.token.endsWith("0") ? "1" : "0")), 401, "unauthorized");
      expectError(await relay(a.token, "p0000000000000000"), 404, "peer_not_found");
      expectError(await relay(a.token, "nobody"), 404, "peer_not_found");
      expectError(await relay(a.token, a.peerId), 400, "invalid_input");
      expectError(await poll(a.token, 99), 400, "cursor_ahead");
      expectError(await call(url(), "GET", "/messages?since=abc", { token: a.token }), 400, "invalid_input");
      expectError(await call(url(), "GET", "/messages?since=0&since=1", { token: a.token }), 400, "invalid_input");
      assert.equal((await call(url(), "GET", "/messages?since=%30&wait=%30", { token: a.token })).status, 200);
      // A well-formed token of a room nobody joined.
      expectError(await poll(`never-joined-${Date.now()}.0123456789abcdef0123456789abcdef`), 401, "unauthorized");
    });

    test("CORS: loopback origins are allowed by default, others are not", async () => {
      const ok = await call(url(), "OPTIONS", "/signaling", {
        headers: { origin: "http://localhost:5173", "access-control-request-method": "POST", "access-control-request-headers": "content-type,authorization" },
      });
      assert.ok(ok.status < 300, String(ok.status));
      assert.equal(ok.headers.get("access-control-allow-origin"), "http://localhost:5173");
      assert.match(ok.headers.get("access-control-allow-headers") ?? "", /authorization/i);
      const evil = await call(url(), "OPTIONS", "/signaling", {
        headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
      });
      assert.equal(evil.headers.get("access-control-allow-origin"), null);
      const simple = await call(url(), "GET", "/livez", { headers: { origin: "http://127.0.0.1:3000" } });
      assert.equal(simple.headers.get("access-control-allow-origin"), "http://127.0.0.1:3000");
    });

    test("hub: guests reach only the host; the seat is held, reclaimed with the key, and the old host hears `replaced`", async () => {
      const r = room("hub");
      const host = (await join(r, "host")).json;
      assert.equal(host.topology, "hub");
      assert.equal(typeof host.reclaimKey, "string");
      const g1 = (await join(r, "guest")).json;
      const g2 = (await join(r, "guest")).json;
      assert.equal((await relay(g1.token, host.peerId)).status, 200);
      expectError(await relay(g1.token, g2.peerId), 403, "forbidden");
      expectError(await join(r, "peer"), 409, "role_mismatch");
      expectError(await join(r, "guest", { topology: "mesh" }), 400, "invalid_input");
      expectError(await join(r, "host"), 409, "host_taken");
      const back = await join(r, "host", { reclaim: host.reclaimKey });
      assert.equal(back.status, 200, back.text);
      assert.equal(back.json.reclaimKey, host.reclaimKey, "the key that proved the seat stays valid");
      expectError(await poll(host.token), 401, "replaced");
      const heard = await poll(g1.token);
      const reset = heard.json.messages.find((m) => m.type === "host-reset");
      assert.deepEqual(reset.payload, { host: { peerId: back.json.peerId, role: "host", name: "N" }, previousPeerId: host.peerId });
      const mesh = room("mesh");
      await join(mesh);
      expectError(await join(mesh, "peer", { topology: "sfu" }), 409, "topology_mismatch");
    });

    test("capacity: the 17th peer finds the room full", async () => {
      const r = room("full");
      for (let i = 0; i < 16; i++) assert.equal((await join(r)).status, 200);
      expectError(await join(r), 409, "room_full");
    });

    test("leave: the room hears why, and the token stops working", async () => {
      const r = room("leave");
      const a = (await join(r)).json;
      const b = (await join(r)).json;
      assert.equal((await call(url(), "POST", "/signaling", { token: b.token, body: { type: "leave" } })).status, 200);
      const heard = await poll(a.token);
      assert.deepEqual(heard.json.messages.at(-1).payload, { peerId: b.peerId, reason: "left" });
      expectError(await poll(b.token), 401, "unauthorized");
    });

    test("presence: a peer that stops polling is removed after the timeout and the room hears `timeout`", async () => {
      const r = room("silent");
      const a = (await join(r)).json;
      const b = (await join(r)).json;
      let cursor = 0;
      let left;
      const until = Date.now() + 30_000;
      while (!left && Date.now() < until) {
        const got = await poll(a.token, cursor, 2_000);
        cursor = got.json.cursor;
        left = got.json.messages.find((m) => m.type === "peer-left");
      }
      assert.deepEqual(left?.payload, { peerId: b.peerId, reason: "timeout" });
      expectError(await poll(b.token), 401, "unauthorized");
    });

    test("limits: concurrent polls, the relay budget and the recipient's backlog are capped", async () => {
      const r = room("limits");
      const a = (await join(r)).json;
      const b = (await join(r)).json;
      const c = (await join(r)).json;
      const { cursor } = (await poll(b.token)).json;
      const held = [poll(b.token, cursor, 3_000), poll(b.token, cursor, 3_000)];
      await new Promise((res) => setTimeout(res, 300));
      const third = await poll(b.token, cursor, 3_000);
      expectError(third, 429, "too_many_polls");
      assert.equal(third.headers.get("retry-after"), "1");
      await Promise.all(held);
      let backlog;
      for (let i = 0; i < LIMITS.backlog + 1 && !backlog; i++) {
        const sent = await relay(a.token, b.peerId, "candidate", { i });
        if (sent.status !== 200) backlog = sent;
      }
      expectError(backlog, 429, "recipient_backlog");
      // Spread over three recipients, so no backlog fills before the sender's budget runs out.
      // They joined (or polled) just now: `a`, silent since the start, may have passed the 4 s
      // peer timeout by here on a slow machine, and a relay to it is then `peer_not_found`.
      const d = (await join(r)).json;
      const e = (await join(r)).json;
      const recipients = [e.peerId, b.peerId, d.peerId];
      const queued = await poll(b.token, cursor);
      await poll(b.token, queued.json.cursor);
      let limited;
      for (let i = 0; i < LIMITS.relayBurst + 5 && !limited; i++) {
        const sent = await relay(c.token, recipients[i % 3], "candidate", { i });
        if (sent.status !== 200) limited = sent;
      }
      expectError(limited, 429, "rate_limited");
      assert.ok(Number(limited.headers.get("retry-after")) >= 1);
    });

    test("TURN: credentials come from the provider with the server's secret, which no client sees", async () => {
      const r = room("turn");
      const before = turn.calls.length;
      const a = await join(r);
      assert.deepEqual(a.json.iceServers, [{ urls: ["turn:turn.example.test:3478?transport=udp"], username: "minted-user", credential: "minted-credential" }]);
      const fresh = await call(url(), "POST", "/turn-credentials", { token: a.json.token });
      assert.equal(fresh.status, 200, fresh.text);
      assert.equal(fresh.json.ttl, 86_400);
      assert.deepEqual(fresh.json.iceServers, a.json.iceServers);
      assert.ok(!JSON.stringify([a.json, fresh.json]).includes(TURN_TOKEN));
      const mine = turn.calls.slice(before);
      // Credentials are shared until half their lifetime: at most one call per server.
      assert.ok(mine.length <= 1, JSON.stringify(mine));
      const all = turn.calls.filter((c) => c.path === "/v1/turn/keys/key1/credentials/generate-ice-servers");
      assert.ok(all.length >= 1 && all.every((c) => c.auth === `Bearer ${TURN_TOKEN}` && JSON.parse(c.body).ttl === 86_400));
      expectError(await call(url(), "POST", "/turn-credentials"), 401, "unauthorized");
    });

    test("sfu rooms: sessions through the room proxy, bound to their peer and room", async () => {
      const r = room("sfu");
      const a = (await join(r, "peer", { topology: "sfu" })).json;
      const b = (await join(r, "peer", { topology: "sfu" })).json;
      assert.equal(a.topology, "sfu");
      expectError(await relay(a.token, b.peerId), 403, "forbidden");
      const created = await call(url(), "POST", "/sfu/sessions/new", { token: a.token });
      assert.equal(created.status, 201, created.text);
      const sid = created.json.sessionId;
      assert.equal(typeof sid, "string");
      const state = await call(url(), "GET", `/sfu/sessions/${sid}`, { token: a.token });
      assert.equal(state.status, 200, state.text);
      const foreign = await call(url(), "GET", `/sfu/sessions/${sid}`, { token: b.token });
      assert.equal(foreign.status, 403);
      assert.equal(foreign.json.errorCode, "forbidden");
      const gone = await call(url(), "GET", "/sfu/sessions/nosuchsession", { token: a.token });
      assert.equal(gone.status, 410);
      assert.equal(gone.json.errorCode, "session_error");
      const badLabel = await call(url(), "POST", `/sfu/sessions/${sid}/tracks/new`, {
        token: a.token, body: { tracks: [{ location: "local", trackName: "../cam", mid: "0" }] },
      });
      assert.equal(badLabel.status, 406);
      assert.equal(badLabel.json.errorCode, "invalid_params");
      const stolen = await call(url(), "POST", `/sfu/sessions/${sid}/tracks/new`, {
        token: a.token, body: { tracks: [{ location: "remote", sessionId: "elsewhere", trackName: "x-cam", kind: "video" }] },
      });
      assert.equal(stolen.status, 403);
      const anonymous = await call(url(), "POST", "/sfu/sessions/new");
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.json.errorCode, "unauthorized");
      const mesh = (await join(room("notsfu"))).json;
      const wrongRoom = await call(url(), "POST", "/sfu/sessions/new", { token: mesh.token });
      assert.equal(wrongRoom.status, 403);
    });

    test("durability: queued messages, seq and tokens survive a restart", async () => {
      const r = room("durable");
      const a = (await join(r)).json;
      const b = (await join(r)).json;
      await relay(a.token, b.peerId, "offer", { n: 1 });
      await relay(a.token, b.peerId, "candidate", { n: 2 });
      await target.restart();
      const got = await poll(b.token);
      assert.equal(got.status, 200, got.text);
      assert.deepEqual(got.json.messages.map((m) => [m.seq, m.type, m.payload.n]), [[1, "offer", 1], [2, "candidate", 2]]);
      assert.equal((await relay(a.token, b.peerId, "answer", { n: 3 })).status, 200);
      const next = await poll(b.token, 2);
      assert.deepEqual(next.json.messages.map((m) => m.seq), [3]);
      const c = await join(r);
      assert.deepEqual(c.json.peers.map((p) => p.peerId).sort(), [a.peerId, b.peerId].sort());
    });
  });

  describe(`join tickets, and a Calls API that refuses the app secret: ${name}`, () => {
    let target;
    const join = (body) => call(target.url, "POST", "/signaling", { body: { type: "join", name: "T", ...body } });
    const soon = () => Math.floor(Date.now() / 1000) + 60;

    before(async () => {
      target = await start(name, { tickets: true });
    });

    after(() => target.stop());

    test("a ticket is required, checked, and single-use with a jti", async () => {
      const r = room("ticket");
      expectError(await join({ room: r, role: "peer" }), 401, "ticket_required");
      const forged = ticket({ room: r, role: "peer", exp: soon() }, "not-the-secret");
      expectError(await join({ room: r, role: "peer", ticket: forged }), 403, "invalid_ticket");
      expectError(await join({ room: r, role: "peer", ticket: ticket({ room: "other", role: "peer", exp: soon() }) }), 403, "invalid_ticket");
      expectError(await join({ room: r, role: "peer", ticket: ticket({ room: r, role: "peer", exp: soon() - 120 }) }), 403, "invalid_ticket");
      const once = ticket({ room: r, role: "peer", exp: soon(), jti: "once-" + r });
      assert.equal((await join({ room: r, role: "peer", ticket: once })).status, 200);
      const again = await join({ room: r, role: "peer", ticket: once });
      expectError(again, 403, "invalid_ticket");
      assert.match(again.json.error.message, /used already/);
    });

    test("a single-use ticket is spent even when its join is refused for another reason", async () => {
      const r = room("spent");
      assert.equal((await join({ room: r, role: "host", ticket: ticket({ room: r, role: "host", exp: soon() }) })).status, 200);
      const once = ticket({ room: r, role: "peer", exp: soon(), jti: "spent-" + r });
      expectError(await join({ room: r, role: "peer", ticket: once }), 409, "role_mismatch");
      const again = await join({ room: r, role: "peer", ticket: once });
      expectError(again, 403, "invalid_ticket");
      assert.match(again.json.error.message, /used already/);
    });

    test("the Calls API refusing the app secret is the server's 502, not the caller's 401", async () => {
      const r = room("wrongsecret");
      const a = await join({ room: r, role: "peer", topology: "sfu", ticket: ticket({ room: r, role: "peer", exp: soon() }) });
      assert.equal(a.status, 200, a.text);
      const created = await call(target.url, "POST", "/sfu/sessions/new", { token: a.json.token });
      assert.equal(created.status, 502, created.text);
      assert.equal(created.json.errorCode, "internal_error");
      assert.doesNotMatch(created.text, /not-the-secret/);
    });

    test("a host ticket takes a held hub seat", async () => {
      const r = room("seat");
      const host = await join({ room: r, role: "host", ticket: ticket({ room: r, role: "host", exp: soon() }) });
      assert.equal(host.status, 200, host.text);
      const second = await join({ room: r, role: "host", ticket: ticket({ room: r, role: "host", exp: soon() }) });
      assert.equal(second.status, 200, second.text);
      expectError(await call(target.url, "GET", "/messages", { token: host.json.token }), 401, "replaced");
    });
  });
}
