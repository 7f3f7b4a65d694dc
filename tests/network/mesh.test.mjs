// A two-person mesh call across the test network; A's link is cut at the bridge and restored.
import { test } from "node:test";
import assert from "node:assert/strict";

import { callPage, frameAfter, longestGap, sleep, threeHostLab, timeline } from "./support.mjs";

const fixture = threeHostLab();
const { skip } = fixture;

/** The first time `state` shows in `states` ([time, state] pairs) at or after `since`. */
const when = (states, state, since) => states.find(([t, s]) => t >= since && s === state)?.[0];

/**
 * Cuts A for `seconds` in a fresh call; returns both records, the times, and when each side
 * decoded the other again. Prints a timeline when `NET_DEBUG` is set or anything throws.
 */
async function cutCall(seconds, { settled = () => true } = {}) {
  const { a, b, aId, bId } = await fixture.call(`cut${seconds}`);
  const { cutAt, restoredAt } = await fixture.outage("a", seconds);
  let back;
  let records;
  try {
    const [atA, atB] = await Promise.all([frameAfter(a, bId, restoredAt, 20_000), frameAfter(b, aId, restoredAt, 20_000)]);
    back = { a: atA - restoredAt, b: atB - restoredAt };
    // Media can return over the old pair before the signaling that finishes a recovery does.
    for (const until = Date.now() + 10_000; Date.now() < until; await sleep(200)) {
      records = { a: await a.record(), b: await b.record() };
      if (settled(records, cutAt)) break;
    }
  } finally {
    records ??= { a: await a.record(), b: await b.record() };
    if (!back || process.env.NET_DEBUG) {
      timeline("A", records.a, cutAt);
      timeline("B", records.b, cutAt);
    }
    await a.close();
    await b.close();
    if (back) return { ...records, cutAt, restoredAt, back, aId, bId };
  }
}

/** Peer connections made, and ICE ufrags each used, during [from, ∞). */
const made = (record, from) => record.pcs.filter((p) => p.created >= from).length;
const restarted = (record, from) => record.pcs.some((p) => p.ufrags.some(([t]) => t >= from));

test("a 5 s cut heals by itself: media back within seconds, same connection", { skip }, async () => {
  const r = await cutCall(5);
  console.log(`cut 5 s: frames again at A +${r.back.a} ms, at B +${r.back.b} ms after the restore`);
  assert.equal(made(r.a, r.cutAt) + made(r.b, r.cutAt), 0, "no connection rebuilt");
  assert.ok(r.back.a < 4_000 && r.back.b < 4_000, `media back: ${JSON.stringify(r.back)}`);
});

test("a 12 s cut recovers through an ICE restart, not a rebuild or a rejoin", { skip }, async () => {
  const r = await cutCall(12, { settled: (rs, cutAt) => restarted(rs.a, cutAt) && restarted(rs.b, cutAt) });
  const newUfrags = (rec) => rec.pcs.flatMap((p) => p.ufrags.map(([t]) => t)).filter((t) => t >= r.cutAt);
  const restartAt = Math.min(...newUfrags(r.a), ...newUfrags(r.b));
  const bothAt = Math.max(Math.min(...newUfrags(r.a)), Math.min(...newUfrags(r.b)));
  console.log(
    `cut 12 s: ICE restart at +${((restartAt - r.cutAt) / 1000).toFixed(1)} s into the cut, ` +
      `both sides on new credentials ${bothAt - r.restoredAt} ms after the restore; ` +
      `frames again at A +${r.back.a} ms, at B +${r.back.b} ms after the restore`,
  );
  assert.equal(made(r.a, r.cutAt) + made(r.b, r.cutAt), 0, "the same peer connections");
  assert.ok(restarted(r.a, r.cutAt) && restarted(r.b, r.cutAt), "both sides took new ICE credentials");
  assert.equal(r.a.pcs.length + r.b.pcs.length, 2);
  assert.ok(r.back.a < 5_000 && r.back.b < 5_000, `media back: ${JSON.stringify(r.back)}`);
});

test("a 30 s cut rebuilds the connection, shows the outage while it lasts, and brings media back", { skip }, async () => {
  const r = await cutCall(30);
  const reconnectingAt = when(r.a.roomStates, "reconnecting", r.cutAt);
  const connectedAt = when(r.a.roomStates, "connected", r.cutAt);
  const peerDown = when(r.a.peerStates[r.bId], "disconnected", r.cutAt);
  const rebuiltAt = Math.min(...[r.a, r.b].flatMap((rec) => rec.pcs.map((p) => p.created)).filter((t) => t >= r.cutAt));
  const abortedPoll = r.a.fetches.find(([t, what, , outcome]) => t < r.cutAt && what.startsWith("GET /messages") && outcome === "AbortError");
  console.log(
    `cut 30 s: A's room reconnecting at +${((reconnectingAt - r.cutAt) / 1000).toFixed(1)} s, its link to B disconnected at ` +
      `+${((peerDown - r.cutAt) / 1000).toFixed(1)} s; connection rebuilt at +${((rebuiltAt - r.cutAt) / 1000).toFixed(1)} s; ` +
      `room connected again ${connectedAt - r.restoredAt} ms and frames at A +${r.back.a} ms, at B +${r.back.b} ms after the restore`,
  );
  // Rebuilt: a new peer connection on both sides; no rejoin (the same session).
  assert.ok(made(r.a, r.cutAt) >= 1 && made(r.b, r.cutAt) >= 1, "a new peer connection on each side");
  assert.deepEqual(r.a.errors, [], "no stale answer broke the new connection");
  // The outage shows: the held poll was given up well before its 25 s wait, and the room said so.
  assert.ok(abortedPoll, "the poll held across the cut was given up");
  assert.ok(reconnectingAt - r.cutAt < 10_000, `reconnecting after ${reconnectingAt - r.cutAt} ms`);
  assert.ok(peerDown - r.cutAt < 10_000, "the link's own state shows it");
  assert.ok(connectedAt > r.restoredAt, "reconnecting until the network came back");
  assert.ok(r.back.a < 5_000 && r.back.b < 5_000, `media back: ${JSON.stringify(r.back)}`);
});

test("a server unreachable for 20 s: media keeps flowing, the room shows reconnecting, nothing is lost", { skip }, async () => {
  const { a, b, aId, bId } = await fixture.call("unreachable");
  const blockedAt = Date.now();
  fixture.lab.net.block("a", "srv");
  // Someone joins while A cannot hear of it: the server keeps A's messages.
  await sleep(8_000);
  const c = await callPage(fixture.browsers.b, fixture.lab.server);
  const room = await b.page.evaluate(() => window.room.snapshot().room);
  const cId = await c.join({ room, name: "C" });
  await sleep(20_000 - (Date.now() - blockedAt));
  fixture.lab.net.unblock("a", "srv");
  const unblockedAt = Date.now();
  try {
    const seesC = await frameAfter(a, cId, unblockedAt, 20_000);
    const record = await a.record();
    const reconnectingAt = when(record.roomStates, "reconnecting", blockedAt);
    const connectedAt = when(record.roomStates, "connected", blockedAt);
    const gap = longestGap(record.frames[bId], blockedAt, unblockedAt);
    console.log(
      `server unreachable 20 s: A's room reconnecting at +${((reconnectingAt - blockedAt) / 1000).toFixed(1)} s, ` +
        `connected ${connectedAt - unblockedAt} ms after; longest gap in B's video meanwhile ${gap} ms; ` +
        `C (joined during it) decoded at A ${seesC - unblockedAt} ms after`,
    );
    assert.ok(gap < 1_000, `B's video kept coming (longest gap ${gap} ms)`);
    assert.ok(reconnectingAt - blockedAt < 10_000, "the outage shows within seconds");
    assert.ok(connectedAt > unblockedAt, "and lasts until the server is reachable");
    assert.equal(made(record, blockedAt) >= 1, true, "a connection to C, opened after the outage");
    assert.equal(record.pcs.filter((p) => p.created < blockedAt).length, 1, "the link to B was never replaced");
    assert.equal(made(record, blockedAt), 1);
    assert.equal(
      await a.page.evaluate(() => window.room.snapshot().participants.map((p) => p.name).sort().join()),
      "B,C",
    );
  } finally {
    await Promise.all([a.close(), b.close(), c.close()]);
  }
});

/** A's video sender toward its one peer: its parameters and what it sends (outbound-rtp). */
function videoSender(call) {
  return call.page.evaluate(async () => {
    const pc = window.__net.pcs.filter((p) => p.pc.connectionState === "connected").at(-1).pc;
    const sender = pc.getSenders().find((s) => s.track?.kind === "video");
    const [encoding] = sender.getParameters().encodings;
    let sent = {};
    for (const s of (await sender.getStats()).values()) {
      if (s.type === "outbound-rtp") sent = { frameHeight: s.frameHeight, targetBitrate: s.targetBitrate, limitation: s.qualityLimitationReason };
    }
    return { maxBitrate: encoding.maxBitrate ?? null, scale: encoding.scaleResolutionDownBy ?? 1, ...sent };
  });
}

test("a degraded link (10 % loss, 300 kbit/s, a 100 ms queue each way) reads poor, lowers what A sends, and both recover", { skip }, async () => {
  const { a, b, bId } = await fixture.call("degraded");
  try {
    const before = await videoSender(a);
    const quality = () => a.page.evaluate((peer) => window.room.snapshot().remoteStreams.find((r) => r.peerId === peer)?.quality, bId);
    const degradedAt = Date.now();
    fixture.lab.net.degrade("a", { lossPercent: 10, rateKbit: 300, queueMs: 100 });
    await a.page.waitForFunction((peer) => window.room.snapshot().remoteStreams.find((r) => r.peerId === peer)?.quality === "poor", bId, { timeout: 20_000, polling: 200 });
    const poorAfter = Date.now() - degradedAt;
    await a.page.waitForFunction(
      () => {
        const pc = window.__net.pcs.filter((p) => p.pc.connectionState === "connected").at(-1).pc;
        const [encoding] = pc.getSenders().find((s) => s.track?.kind === "video").getParameters().encodings;
        return encoding.maxBitrate === 150_000 && encoding.scaleResolutionDownBy === 4;
      },
      null,
      { timeout: 20_000, polling: 200 },
    );
    await sleep(3_000);
    const adapted = await videoSender(a);
    const healedAt = Date.now();
    fixture.lab.net.heal();
    await a.page.waitForFunction(
      () => {
        const pc = window.__net.pcs.filter((p) => p.pc.connectionState === "connected").at(-1).pc;
        const [encoding] = pc.getSenders().find((s) => s.track?.kind === "video").getParameters().encodings;
        return encoding.maxBitrate === undefined && (encoding.scaleResolutionDownBy ?? 1) === 1;
      },
      null,
      { timeout: 30_000, polling: 200 },
    );
    const restoredAfter = Date.now() - healedAt;
    const goodAgain = await quality();
    await sleep(3_000);
    const after = await videoSender(a);
    console.log(
      `degraded link: A's view of B poor after ${poorAfter} ms; A's video sender ${JSON.stringify(before)} → ${JSON.stringify(adapted)}; ` +
        `limits lifted ${restoredAfter} ms after the link healed → ${JSON.stringify(after)}`,
    );
    assert.equal(b.errors.length + a.errors.length, 0);
    // Adapted: the limits set through setParameters are what the encoder sends.
    assert.equal(before.maxBitrate, null);
    assert.ok(adapted.frameHeight <= before.frameHeight / 4, `resolution lowered: ${before.frameHeight} → ${adapted.frameHeight}`);
    assert.ok(adapted.targetBitrate <= 150_000, `bitrate lowered: ${adapted.targetBitrate}`);
    // Recovered: the limits lifted only after good reports, and the picture is back.
    assert.equal(goodAgain, "good");
    assert.equal(after.frameHeight, before.frameHeight, "full resolution again");
  } finally {
    fixture.lab.net.heal();
    await Promise.all([a.close(), b.close()]);
  }
});
