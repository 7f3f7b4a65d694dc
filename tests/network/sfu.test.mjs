// A two-person SFU room (callroom-server's embedded SFU) across the test network; A's link to
// the server, which carries both signaling and the SFU's media, is cut and restored.
import { test } from "node:test";
import assert from "node:assert/strict";

import { frameAfter, threeHostLab, timeline } from "./support.mjs";

const fixture = threeHostLab();
const { skip } = fixture;

for (const seconds of [5, 30]) {
  test(`an sfu call comes back after a ${seconds} s cut`, { skip }, async () => {
    const { a, b, aId, bId } = await fixture.call(`sfu-cut${seconds}`, { topology: "sfu" });
    try {
      const { cutAt, restoredAt } = await fixture.outage("a", seconds);
      const [atA, atB] = await Promise.all([frameAfter(a, bId, restoredAt, 20_000), frameAfter(b, aId, restoredAt, 20_000)]);
      const [ra, rb] = [await a.record(), await b.record()];
      const after = (record, what) => record.fetches.filter(([t, w, , outcome]) => t >= cutAt && w.startsWith(what) && outcome >= 200 && outcome < 300).length;
      const mechanism = {
        newSession: after(ra, "POST /sfu/sessions/new"),
        aTracksNew: after(ra, "POST /sfu/sessions/") - after(ra, "POST /sfu/sessions/new"),
        bTracksNew: after(rb, "POST /sfu/sessions/"),
        aConnections: ra.pcs.filter((p) => p.created >= cutAt).length,
        bConnections: rb.pcs.filter((p) => p.created >= cutAt).length,
        reconnecting: ra.roomStates.some(([t, s]) => t >= cutAt && s === "reconnecting"),
      };
      if (process.env.NET_DEBUG) {
        timeline("A", ra, cutAt);
        timeline("B", rb, cutAt);
      }
      console.log(`sfu cut ${seconds} s: frames again at A +${atA - restoredAt} ms, at B +${atB - restoredAt} ms after the restore; ${JSON.stringify(mechanism)}`);
      // A 5 s cut heals in place; after a 30 s one the new session's first requests wait for
      // Chromium's connections to the server to come back (seen: 2.9 to 8.2 s).
      const bound = seconds === 5 ? 4_000 : 12_000;
      assert.ok(atA - restoredAt < bound && atB - restoredAt < bound, `media back within ${bound} ms`);
      assert.equal(mechanism.bConnections, 0, "B's own connection to the SFU was never in trouble");
      if (seconds === 30) {
        // A new session: a new connection, published again, and B pulls the new tracks.
        assert.equal(mechanism.newSession, 1, "one new SFU session");
        assert.ok(mechanism.aConnections >= 1, "on a new peer connection");
        assert.ok(mechanism.aTracksNew >= 1, "A published and pulled again");
        assert.ok(mechanism.bTracksNew >= 1, "B pulled A's new tracks");
        assert.ok(mechanism.reconnecting, "A's room showed the outage");
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
}
