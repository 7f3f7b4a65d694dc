// A real TURN server (coturn, `use-auth-secret`) in its own namespace, with callroom-server
// minting credentials from the same secret (`--turn-secret`). A and B can reach the TURN server
// and callroom-server but not each other, so the call can only go through relayed candidates.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

import { unique } from "../e2e/support.mjs";
import { unavailable } from "./net.mjs";
import { callPage, frameAfter, startLab } from "./support.mjs";

const SECRET = "callroom-turn-test-secret";
const TURNSERVER = process.env.TURNSERVER_BIN ?? "turnserver";
const skip =
  unavailable() ?? (spawnSync(TURNSERVER, ["--version"], { stdio: "ignore" }).status === 0 ? false : "needs coturn (turnserver)");
let lab;
let browsers;

/** callroom-server's arguments: TURN credentials from `secret`, for the lab's TURN server. */
const turnArgs = (secret) => (addresses) => ["--turn-secret", secret, "--turn-url", `turn:${addresses.turn}:3478?transport=udp`];

before(async () => {
  if (skip) return;
  lab = await startLab(["srv", "a", "b", "turn"], turnArgs(SECRET));
  const turn = lab.net.spawn(
    "turn",
    TURNSERVER,
    [
      "-n",
      "--no-cli",
      "--no-tls",
      "--no-dtls",
      `--listening-ip=${lab.net.addresses.turn}`,
      `--relay-ip=${lab.net.addresses.turn}`,
      "--listening-port=3478",
      "--use-auth-secret",
      `--static-auth-secret=${SECRET}`,
      "--realm=callroom.test",
      "--fingerprint",
      "--log-file=stdout",
      "--simple-log",
      `--pidfile=${lab.net.dir}/turnserver.pid`,
      `--db=${lab.net.dir}/turndb`,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let log = "";
  turn.stdout.on("data", (chunk) => (log += chunk));
  const deadline = Date.now() + 10_000;
  while (!/Total General servers/.test(log)) {
    if (Date.now() > deadline || turn.exitCode !== null) throw new Error(`turnserver did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // Direct paths between the two pages are gone; the TURN server and callroom-server remain.
  lab.net.block("a", "b");
  browsers = { a: await lab.browser("a"), b: await lab.browser("b") };
});

after(async () => {
  await lab?.close();
});

async function joinBoth(label) {
  const a = await callPage(browsers.a, lab.server);
  const b = await callPage(browsers.b, lab.server);
  const room = unique(label);
  const aId = await a.join({ room, name: "A" });
  const bId = await b.join({ room, name: "B" });
  return { a, b, aId, bId };
}

test("two pages that cannot reach each other connect through relayed candidates", { skip }, async () => {
  const { a, b, aId, bId } = await joinBoth("turn");
  try {
    const started = Date.now();
    await Promise.all([frameAfter(a, bId, 0, 30_000), frameAfter(b, aId, 0, 30_000)]);
    const pairs = [await a.selectedCandidateTypes(), await b.selectedCandidateTypes()];
    console.log(`turn: decoded each other ${Date.now() - started} ms after joining; selected pairs [local, remote]: ${JSON.stringify(pairs)}`);
    for (const pair of pairs) assert.ok(pair?.includes("relay"), `a relayed candidate in the selected pair: ${JSON.stringify(pair)}`);
    assert.deepEqual([...a.errors, ...b.errors], []);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test("a wrong TURN secret on the server fails with turn_refused in the snapshot", { skip }, async () => {
  await lab.restartServer(turnArgs("not-the-secret"));
  const started = Date.now();
  const { a, b, bId } = await joinBoth("turn-wrong");
  try {
    const error = await a.page.waitForFunction(() => window.room.snapshot().error, null, { timeout: 20_000, polling: 100 });
    const after = Date.now() - started;
    const { code, message } = await error.jsonValue();
    const link = await a.page.evaluate((peer) => window.room.snapshot().remoteStreams.find((r) => r.peerId === peer), bId);
    console.log(`turn, wrong secret: ${code} ${after} ms after joining: ${message}; link ${link.connectionState}, ${link.framesDecoded} frames`);
    assert.equal(code, "turn_refused");
    assert.match(message, /turn:198\.18\.0\.\d+:3478/);
    assert.equal(link.framesDecoded, 0, "no media without a path");
  } finally {
    await Promise.all([a.close(), b.close()]);
    await lab.restartServer(turnArgs(SECRET));
  }
});
