// Calls across the test network: callroom-server in one namespace, each Chromium in its own,
// and a recorder in every page that notes, with wall-clock times, what the tests assert on:
// each RTCPeerConnection made (a rebuild makes a new one), each ICE ufrag it used (an ICE
// restart changes it), its state changes, the room's states, and every decoded video frame of
// every remote participant (requestVideoFrameCallback).
import { after, before } from "node:test";

import { launchBrowser, pageWithCallroom, startServer, unique } from "../e2e/support.mjs";
import { createNetwork, unavailable } from "./net.mjs";

/**
 * The network (`hosts`: the server's host first), callroom-server on the first host, and a
 * `browser(host)` factory. `serverArgs` is a list, or a function of the hosts' addresses
 * giving one. Returns { net, server, restartServer(serverArgs), browser(host), close() }.
 */
export async function startLab(hosts, serverArgs = []) {
  const net = createNetwork(hosts);
  const [serverHost] = hosts;
  // A fixed port (the namespace has no other tenant), so a restarted server is the same
  // origin to pages and browsers.
  const start = (args) =>
    startServer(typeof args === "function" ? args(net.addresses) : args, {
      listen: `${net.addresses[serverHost]}:8080`,
      launch: (bin, args, options) => net.spawn(serverHost, bin, args, options),
    });
  const lab = { net, server: await start(serverArgs) };
  const browsers = [];
  return Object.assign(lab, {
    /** Stops callroom-server and starts it again at the same address with `serverArgs`. */
    async restartServer(serverArgs) {
      await lab.server.stop();
      lab.server = await start(serverArgs);
    },
    /** Headless Chromium running inside `host`'s namespace. */
    async browser(host) {
      const browser = await launchBrowser({
        wrap: (bin) => net.wrapper(host, bin),
        // Pages come over plain http from a 198.18 address; treat it as secure for getUserMedia.
        extraArgs: [`--unsafely-treat-insecure-origin-as-secure=${lab.server.url}`],
      });
      browsers.push(browser);
      return browser;
    },
    async close() {
      await Promise.all(browsers.map((b) => b.close().catch(() => {})));
      await lab.server.stop().catch(() => {});
      net.destroy();
    },
  });
}

/**
 * For a test file: the lab on hosts `srv`, `a` and `b` with a browser in `a` and one in `b`,
 * started before the file's tests and closed after them. `skip` says why this machine cannot
 * run them (false when it can); `lab` and `browsers` are set by the time the tests run.
 */
export function threeHostLab() {
  const fixture = {
    skip: unavailable() ?? false,
    lab: null,
    browsers: null,
    /** A and B in a fresh room (`options` for both joins), each decoding the other. */
    async call(label, options = {}) {
      const a = await callPage(fixture.browsers.a, fixture.lab.server);
      const b = await callPage(fixture.browsers.b, fixture.lab.server);
      const room = unique(label);
      const aId = await a.join({ room, name: "A", ...options });
      const bId = await b.join({ room, name: "B", ...options });
      const start = Date.now() - 60_000;
      await Promise.all([frameAfter(a, bId, start), frameAfter(b, aId, start)]);
      await sleep(2_000);
      return { a, b, aId, bId };
    },
    /** Cuts `host` for `seconds`; returns when it was cut and restored. */
    async outage(host, seconds) {
      const cutAt = Date.now();
      fixture.lab.net.cut(host);
      await sleep(seconds * 1000);
      fixture.lab.net.restore(host);
      return { cutAt, restoredAt: Date.now() };
    },
  };
  before(async () => {
    if (fixture.skip) return;
    fixture.lab = await startLab(["srv", "a", "b"]);
    fixture.browsers = { a: await fixture.lab.browser("a"), b: await fixture.lab.browser("b") };
  });
  after(async () => {
    await fixture.lab?.close();
  });
  return fixture;
}

/** Installed before any page script: wraps RTCPeerConnection to note what happens to it. */
function recorder() {
  const rec = (window.__net = { pcs: [], roomStates: [], peerStates: {}, frames: {}, errors: [] });
  rec.fetches = [];
  const nativeFetch = window.fetch;
  window.fetch = async (url, init) => {
    const entry = [Date.now(), `${init?.method ?? "GET"} ${String(url).replace(/^https?:\/\/[^/]+/, "")} ${/"type":"(\w+)/.exec(init?.body ?? "")?.[1] ?? ""}`];
    rec.fetches.push(entry);
    try {
      const r = await nativeFetch(url, init);
      entry.push(Date.now(), r.status);
      return r;
    } catch (e) {
      entry.push(Date.now(), e.name);
      throw e;
    }
  };
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      const pc = { created: Date.now(), ufrags: [], states: [], selected: null };
      rec.pcs.push(pc);
      this.addEventListener("connectionstatechange", () => pc.states.push([Date.now(), this.connectionState]));
      const setLocal = this.setLocalDescription.bind(this);
      this.setLocalDescription = async (...args) => {
        const result = await setLocal(...args);
        const ufrag = /a=ice-ufrag:(\S+)/.exec(this.localDescription?.sdp ?? "")?.[1];
        if (ufrag && pc.ufrags.at(-1)?.[1] !== ufrag) pc.ufrags.push([Date.now(), ufrag]);
        return result;
      };
      pc.selectedCandidateTypes = async () => {
        const stats = await this.getStats();
        for (const s of stats.values()) {
          if (s.type !== "transport" || !s.selectedCandidatePairId) continue;
          const pair = stats.get(s.selectedCandidatePairId);
          return [stats.get(pair.localCandidateId)?.candidateType, stats.get(pair.remoteCandidateId)?.candidateType];
        }
        return null;
      };
      Object.defineProperty(pc, "pc", { value: this, enumerable: false });
      // Once a second: video packets and frames in, frames out (for the timelines).
      pc.samples = [];
      const timer = setInterval(async () => {
        if (this.connectionState === "closed") return clearInterval(timer);
        const sample = [Date.now(), 0, 0, 0];
        for (const s of (await this.getStats()).values()) {
          if (s.type === "inbound-rtp" && s.kind === "video") (sample[1] += s.packetsReceived), (sample[2] += s.framesDecoded ?? 0);
          if (s.type === "outbound-rtp" && s.kind === "video") sample[3] += s.framesSent ?? 0;
        }
        pc.samples.push(sample);
      }, 1000);
    }
  };
}

/** Follows a joined room in the page: its states, its peers' states, their frames. */
function watchRoom() {
  const rec = window.__net;
  const videos = new Map();
  rec.roomStates.push([Date.now(), window.room.snapshot().connectionState]);
  window.room.on("state", (state) => rec.roomStates.push([Date.now(), state]));
  window.room.on("error", (e) => rec.errors.push(e.code));
  const follow = () => {
    for (const r of window.room.snapshot().remoteStreams) {
      const states = (rec.peerStates[r.peerId] ??= []);
      if (states.at(-1)?.[1] !== r.connectionState) states.push([Date.now(), r.connectionState]);
      let video = videos.get(r.peerId);
      if (!video) {
        video = document.createElement("video");
        video.muted = true;
        video.autoplay = true;
        video.playsInline = true;
        // In view: Chromium pauses muted autoplay videos scrolled out of sight.
        video.style.cssText = `position:fixed;top:0;left:${videos.size * 40}px;width:40px;height:30px;z-index:9`;
        document.body.append(video);
        videos.set(r.peerId, video);
        const frames = (rec.frames[r.peerId] ??= []);
        const onFrame = () => {
          frames.push(Date.now());
          video.requestVideoFrameCallback(onFrame);
        };
        video.requestVideoFrameCallback(onFrame);
      }
      if (video.srcObject !== r.stream) video.srcObject = r.stream;
    }
  };
  window.room.subscribe(follow);
  follow();
}

/**
 * A page of `browser` on the lab's server with callroom loaded, the recorder installed, and
 * `join(options)` to join a room (then watched).
 */
export async function callPage(browser, server) {
  const { page, errors } = await pageWithCallroom(browser, server, { initScript: recorder });
  return {
    page,
    errors,
    async join(options) {
      const id = await page.evaluate(async (options) => {
        window.room = await window.callroom.Room.join({ statsIntervalMs: 1000, ...options });
        return window.room.snapshot().sessionId;
      }, options);
      await page.evaluate(watchRoom);
      return id;
    },
    /** What the recorder noted (peer connections without their objects). */
    record: () =>
      page.evaluate(async () => ({
        ...window.__net,
        videos: [...document.querySelectorAll("video")].map((v) => `paused=${v.paused} rs=${v.readyState} t=${v.currentTime.toFixed(1)} frames=${v.getVideoPlaybackQuality().totalVideoFrames} ${v.videoWidth}x${v.videoHeight}`),
        tracks: Object.fromEntries(
          (window.room?.snapshot().remoteStreams ?? []).map((r) => [
            r.peerId,
            r.stream.getTracks().map((t) => `${t.kind}:${t.id.slice(0, 4)}:${t.readyState}${t.muted ? ":muted" : ""}`),
          ]),
        ),
        pcs: await Promise.all(
          window.__net.pcs.map(async ({ created, ufrags, states, pc }) => {
            const rtp = {};
            for (const s of (await pc.getStats()).values()) {
              if (s.type === "inbound-rtp" && s.kind === "video") Object.assign(rtp, { framesDecoded: s.framesDecoded, packetsIn: s.packetsReceived, pliSent: s.pliCount });
              if (s.type === "outbound-rtp" && s.kind === "video") Object.assign(rtp, { framesSent: s.framesSent, pliIn: s.pliCount, limit: s.qualityLimitationReason });
            }
            return { created, ufrags, states, signaling: pc.signalingState, rtp, samples: window.__net.pcs.find((p) => p.pc === pc).samples };
          }),
        ),
      })),
    /** The candidate types [local, remote] of the newest connected peer connection's pair. */
    selectedCandidateTypes: () =>
      page.evaluate(async () => {
        const pcs = window.__net.pcs.filter((p) => p.pc.connectionState === "connected");
        return pcs.length ? pcs.at(-1).selectedCandidateTypes() : null;
      }),
    close: () => page.context().close(),
  };
}

/** Resolves once `page` has decoded a video frame of `peerId` after `since` (ms epoch). */
export async function frameAfter(call, peerId, since, timeout = 30_000) {
  const first = await call.page.waitForFunction(
    ({ peerId, since }) => (window.__net.frames[peerId] ?? []).find((t) => t > since),
    { peerId, since },
    { timeout, polling: 100 },
  );
  return first.jsonValue();
}

/** The longest gap between consecutive frame times within [from, to]. */
export function longestGap(times, from, to) {
  const inside = [from, ...times.filter((t) => t > from && t < to), to];
  let gap = 0;
  for (let i = 1; i < inside.length; i++) gap = Math.max(gap, inside[i] - inside[i - 1]);
  return gap;
}

/** Prints what `record` noted from `since` on (ufrags, states, requests…), for a failure. */
export function timeline(label, record, since) {
  const rel = (t) => ((t - since) / 1000).toFixed(1);
  console.log(
    label,
    JSON.stringify({
      pcs: record.pcs.map((p) => ({
        created: rel(p.created),
        ufrags: p.ufrags.map(([t, u]) => `${rel(t)}:${u}`),
        states: p.states.map(([t, s]) => `${rel(t)}:${s}`),
        signaling: p.signaling,
        rtp: p.rtp,
        samples: process.env.NET_DEBUG ? p.samples.filter(([t]) => t > since).map(([t, ...v]) => `${rel(t)}:${v.join("/")}`) : undefined,
      })),
      room: record.roomStates.map(([t, s]) => `${rel(t)}:${s}`),
      peers: Object.fromEntries(Object.entries(record.peerStates).map(([k, v]) => [k, v.map(([t, s]) => `${rel(t)}:${s}`)])),
      errors: record.errors,
      tracks: record.tracks,
      videos: record.videos,
      fetches: process.env.NET_DEBUG ? record.fetches.filter(([t]) => t > since - 1000).map(([t, what, end, outcome]) => `${rel(t)}-${end ? rel(end) : "…"} ${what} ${outcome ?? ""}`) : undefined,
    }),
  );
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
