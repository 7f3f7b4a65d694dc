// Records a call in the browser, into one file: every video tile composed on a canvas (a grid,
// or the active speaker large), everyone's audio mixed with Web Audio, encoded by
// MediaRecorder. `room.startRecording()` loads this module on first use, so pages that never
// record never download it.
import { setWebmDuration } from "./webm.js";

/** Best first: what MediaRecorder is asked for unless `options.mimeType` says otherwise. */
export const MIME_TYPES = [
  "video/webm;codecs=vp9,opus",
  "video/webm;codecs=vp8,opus",
  "video/webm",
  "video/mp4;codecs=avc1,mp4a.40.2",
  "video/mp4",
];

const LAYOUTS = ["grid", "speaker"];
const BACKGROUND = "#111";
const TILE = "#2a2a2a";
const SPEAKING = "#3ddc84";

function callroomError(code, message) {
  const error = new Error(message);
  error.name = "CallroomError";
  error.code = code;
  return error;
}

/** The first of `MIME_TYPES` this browser records, or "" (its own default). */
export function bestMimeType(isSupported = (type) => MediaRecorder.isTypeSupported(type)) {
  return MIME_TYPES.find((type) => isSupported(type)) ?? "";
}

function checkOptions(options) {
  if (options === null || typeof options !== "object") {
    throw callroomError("invalid_argument", "recording options must be an object");
  }
  const { layout = "grid", width = 1280, height = 720, frameRate = 30, mimeType, onData, stream, localName = "You" } = options;
  if (!LAYOUTS.includes(layout)) throw callroomError("invalid_argument", '`layout` must be "grid" or "speaker"');
  for (const [key, value, min, max] of [
    ["width", width, 160, 3840],
    ["height", height, 120, 2160],
    ["frameRate", frameRate, 1, 60],
  ]) {
    if (!Number.isInteger(value) || value < min || value > max) {
      throw callroomError("invalid_argument", `\`${key}\` must be a whole number from ${min} to ${max}`);
    }
  }
  if (mimeType !== undefined && (typeof mimeType !== "string" || !MediaRecorder.isTypeSupported(mimeType))) {
    throw callroomError("unsupported", `this browser cannot record ${JSON.stringify(mimeType)}`);
  }
  if (onData !== undefined && typeof onData !== "function") throw callroomError("invalid_argument", "`onData` must be a function");
  if (stream !== undefined && !(stream instanceof MediaStream)) throw callroomError("invalid_argument", "`stream` must be a MediaStream");
  return { ...options, layout, width, height, frameRate, localName };
}

/** `room`'s tiles now: ours first, then each remote camera and shared screen. */
function tilesOf(snapshot, localName) {
  const tiles = [];
  if (snapshot.localStream) {
    tiles.push({ key: "local", peerId: snapshot.sessionId, name: localName, stream: snapshot.localStream, speaking: snapshot.localSpeaking });
  }
  if (snapshot.localScreenStream) {
    tiles.push({ key: "local:screen", peerId: snapshot.sessionId, name: `${localName} (screen)`, stream: snapshot.localScreenStream, screen: true });
  }
  for (const r of snapshot.remoteStreams) {
    tiles.push({ key: r.peerId, peerId: r.peerId, name: r.name || "Guest", stream: r.stream, speaking: r.speaking });
    if (r.screenStream) {
      tiles.push({ key: `${r.peerId}:screen`, peerId: r.peerId, name: `${r.name || "Guest"} (screen)`, stream: r.screenStream, screen: true });
    }
  }
  return tiles;
}

/** Cells for `count` tiles in a `width`×`height` frame: a grid, or one large and a strip. */
export function layoutCells(layout, count, width, height) {
  if (count === 0) return [];
  if (layout === "speaker" && count > 1) {
    const strip = Math.round(height / 5);
    const others = Math.min(count - 1, 6);
    const w = width / others;
    return [
      { x: 0, y: 0, w: width, h: height - strip },
      ...Array.from({ length: others }, (_, i) => ({ x: i * w, y: height - strip, w, h: strip })),
    ];
  }
  const cols = Math.ceil(Math.sqrt(count));
  const rows = Math.ceil(count / cols);
  const w = width / cols;
  const h = height / rows;
  return Array.from({ length: count }, (_, i) => ({ x: (i % cols) * w, y: Math.floor(i / cols) * h, w, h }));
}

function liveVideo(stream) {
  return stream.getVideoTracks().some((t) => t.readyState === "live" && t.enabled);
}

/** A recording in progress; `stop()` ends it and gives the file. */
export class Recording {
  #room;
  #options;
  #recorder;
  #chunks = [];
  #bytes = 0;
  #startedAt = null;
  #stoppedAt = null;
  #done = null;
  #resolve = null;
  #ended = false;
  #cancelled = false;
  #release = [];
  /** Per tile key: `{ video, stream }`, the element its frames are drawn from. */
  #videos = new Map();
  /** Per audio track id: its source node in the mix. */
  #voices = new Map();
  #audio = null;
  #mix = null;
  #timer = null;
  #onEnd;

  constructor(room, options, onEnd) {
    this.#room = room;
    this.#options = options;
    this.#onEnd = onEnd;
  }

  /** The container and codecs being recorded. */
  get mimeType() {
    return this.#recorder.mimeType;
  }

  /** Recorded so far, ms. */
  get durationMs() {
    if (this.#startedAt === null) return 0;
    return (this.#stoppedAt ?? performance.now()) - this.#startedAt;
  }

  /** Bytes recorded so far. */
  get bytes() {
    return this.#bytes;
  }

  async start() {
    try {
      return await this.#start();
    } catch (e) {
      // Whatever was made before the failure goes too.
      this.#finish();
      throw e;
    }
  }

  async #start() {
    const o = this.#options;
    // Follows the room: who to show and hear, and a leave() however it came (also one that
    // raced this start) ends the recording.
    this.#release.push(this.#room.subscribe(() => this.#onRoomChange()));
    const stream = o.stream ?? (await this.#compose());
    if (this.#left()) this.#cancelled = true;
    if (this.#cancelled) throw callroomError("closed", "the room was left while the recording started");
    const mimeType = o.mimeType ?? bestMimeType();
    try {
      this.#recorder = new MediaRecorder(stream, {
        mimeType,
        videoBitsPerSecond: o.videoBitsPerSecond,
        audioBitsPerSecond: o.audioBitsPerSecond,
      });
    } catch (e) {
      throw callroomError("unsupported", `MediaRecorder refused ${mimeType || "the default type"}: ${e.message}`);
    }
    const recorder = this.#recorder;
    let fail;
    const started = new Promise((resolve, reject) => {
      recorder.onstart = resolve;
      recorder.onerror = (e) => reject(callroomError("recording_failed", `MediaRecorder did not start: ${(e.error ?? e).message}`));
      fail = reject;
    });
    const giveUp = setTimeout(() => fail(callroomError("recording_failed", "MediaRecorder did not start within 10 s")), 10_000);
    recorder.ondataavailable = (event) => {
      if (!event.data.size) return;
      this.#chunks.push(event.data);
      this.#bytes += event.data.size;
      this.#report();
      try {
        o.onData?.(event.data);
      } catch (e) {
        // The app's uploader failing must not stop the recording.
        console.error("callroom: recording onData threw", e);
      }
    };
    // However it ends (stop(), an encoder error, the tracks of options.stream changing), the
    // last chunk comes first, then this.
    recorder.onstop = () => {
      fail(callroomError("closed", "the recording was stopped before it started"));
      this.#finish();
    };
    try {
      recorder.start(1_000);
      await started;
    } catch (e) {
      throw e.name === "CallroomError" ? e : callroomError("recording_failed", `MediaRecorder did not start: ${e.message}`);
    } finally {
      clearTimeout(giveUp);
    }
    recorder.onerror = (e) => console.error("callroom: recording failed", e.error ?? e);
    // Stopped (say, by leave()) before it had started: it lasted no time.
    this.#startedAt = this.#stoppedAt ?? performance.now();
    if (this.#stoppedAt === null) this.#report();
    return this;
  }

  /** Stops recording; resolves to the file (the same Blob however often it is called). */
  stop() {
    this.#done ??= new Promise((resolve) => (this.#resolve = resolve));
    if (!this.#recorder) {
      // Still starting: start() sees this and gives up.
      this.#cancelled = true;
    } else if (this.#recorder.state !== "inactive") {
      this.#stoppedAt ??= performance.now();
      this.#recorder.stop();
    }
    // Otherwise it is stopping already, or over: its stop event (or start()'s failure)
    // settles this with the whole file.
    return this.#done;
  }

  /** Once: releases everything and settles `stop()`'s promise with the file. */
  #finish() {
    if (this.#ended) return;
    this.#stoppedAt ??= performance.now();
    this.#free();
    this.#done ??= new Promise((resolve) => (this.#resolve = resolve));
    const resolve = this.#resolve;
    const type = this.#recorder?.mimeType || "video/webm";
    const blob = new Blob(this.#chunks, { type });
    this.#chunks = [];
    if (!/^(video|audio)\/webm/.test(type)) return resolve(blob);
    // The duration goes in the header, near the start: only that part is read and rewritten.
    const HEAD = 64 * 1024;
    blob
      .slice(0, HEAD)
      .arrayBuffer()
      .then((buffer) => {
        const head = new Uint8Array(buffer);
        const fixed = setWebmDuration(head, this.durationMs);
        resolve(fixed === head ? blob : new Blob([fixed, blob.slice(HEAD)], { type }));
      })
      .catch(() => resolve(blob));
  }

  #report() {
    try {
      if (this.#ended) this.#room._setRecording();
      else this.#room._setRecording(this.durationMs, this.#bytes);
    } catch {
      // The room was freed: nothing to show it in.
    }
  }

  /** Everything the recording holds goes: canvas track, elements, audio graph, timer. */
  #free() {
    if (this.#ended) return;
    if (this.#recorder && this.#recorder.state !== "inactive") {
      // Given up on (start() timed out): its stop event finds everything gone already.
      this.#recorder.stop();
    }
    clearInterval(this.#timer);
    this.#timer = null;
    for (const release of this.#release.splice(0)) release();
    for (const { video } of this.#videos.values()) video.srcObject = null;
    this.#videos.clear();
    for (const source of this.#voices.values()) source.disconnect();
    this.#voices.clear();
    this.#audio?.close().catch(() => {});
    this.#audio = null;
    this.#ended = true;
    this.#report();
    this.#onEnd();
  }

  #snapshot() {
    try {
      return this.#room.snapshot();
    } catch {
      return null;
    }
  }

  /** The composed stream: the canvas's video track and the mix's audio track. */
  async #compose() {
    const o = this.#options;
    const canvas = document.createElement("canvas");
    canvas.width = o.width;
    canvas.height = o.height;
    const context = canvas.getContext("2d", { alpha: false });
    this.#audio = new AudioContext();
    this.#mix = this.#audio.createMediaStreamDestination();
    // A source that is always there, so the audio track runs even while nobody has a mic.
    const silence = this.#audio.createConstantSource();
    silence.offset.value = 0;
    silence.connect(this.#mix);
    silence.start();
    // Started from a click this resumes at once; without one it may never: do not wait long.
    await Promise.race([this.#audio.resume().catch(() => {}), new Promise((r) => setTimeout(r, 500))]);
    const [video] = canvas.captureStream(o.frameRate).getVideoTracks();
    this.#release.push(() => video.stop());
    const [audio] = this.#mix.stream.getAudioTracks();
    this.#release.push(() => audio.stop());
    this.#sync();
    this.#draw(context);
    this.#timer = setInterval(() => this.#draw(context), 1_000 / o.frameRate);
    return new MediaStream([video, audio]);
  }

  /** The room was left (only leave() makes it "disconnected") or freed. */
  #left() {
    const snapshot = this.#snapshot();
    return !snapshot || snapshot.connectionState === "disconnected";
  }

  #onRoomChange() {
    if (this.#left()) this.stop();
    else this.#sync();
  }

  /** Follows who is here: an element per tile, a mix input per live audio track. */
  #sync() {
    const snapshot = this.#snapshot();
    if (!snapshot || !this.#audio) return;
    const tiles = tilesOf(snapshot, this.#options.localName);
    for (const [key, entry] of this.#videos) {
      if (!tiles.some((t) => t.key === key && t.stream === entry.stream)) {
        entry.video.srcObject = null;
        this.#videos.delete(key);
      }
    }
    for (const tile of tiles) {
      if (this.#videos.has(tile.key)) continue;
      const video = document.createElement("video");
      // Muted: it only feeds the canvas (and, for a remote stream, keeps Chromium decoding
      // its audio for the mix, which it does only while an element plays it).
      video.muted = true;
      video.playsInline = true;
      video.srcObject = tile.stream;
      video.play().catch(() => {});
      this.#videos.set(tile.key, { video, stream: tile.stream });
    }
    const tracks = tiles.flatMap((t) => t.stream.getAudioTracks().filter((track) => track.readyState === "live"));
    for (const [id, source] of this.#voices) {
      if (!tracks.some((t) => t.id === id)) {
        source.disconnect();
        this.#voices.delete(id);
      }
    }
    for (const track of tracks) {
      if (this.#voices.has(track.id)) continue;
      const source = this.#audio.createMediaStreamSource(new MediaStream([track]));
      source.connect(this.#mix);
      this.#voices.set(track.id, source);
    }
  }

  #draw(context) {
    const snapshot = this.#snapshot();
    if (!snapshot) {
      // The room was freed without leave().
      this.stop();
      return;
    }
    const { width, height, layout } = this.#options;
    const tiles = tilesOf(snapshot, this.#options.localName);
    if (layout === "speaker") {
      // The active speaker large; a shared screen beats a camera.
      const main =
        tiles.findIndex((t) => t.screen) >= 0
          ? tiles.findIndex((t) => t.screen)
          : tiles.findIndex((t) => t.peerId === snapshot.activeSpeaker && !t.screen);
      if (main > 0) tiles.unshift(...tiles.splice(main, 1));
    }
    context.fillStyle = BACKGROUND;
    context.fillRect(0, 0, width, height);
    const cells = layoutCells(layout, tiles.length, width, height);
    cells.forEach((cell, i) => this.#drawTile(context, tiles[i], cell));
  }

  #drawTile(context, tile, { x, y, w, h }) {
    const gap = 4;
    const [cx, cy, cw, ch] = [x + gap, y + gap, w - 2 * gap, h - 2 * gap];
    const video = this.#videos.get(tile.key)?.video;
    if (video && video.readyState >= 2 && video.videoWidth > 0 && liveVideo(tile.stream)) {
      const scale = Math.min(cw / video.videoWidth, ch / video.videoHeight);
      const [vw, vh] = [video.videoWidth * scale, video.videoHeight * scale];
      context.drawImage(video, cx + (cw - vw) / 2, cy + (ch - vh) / 2, vw, vh);
    } else {
      context.fillStyle = TILE;
      context.fillRect(cx, cy, cw, ch);
      context.fillStyle = "#ddd";
      context.font = `${Math.round(ch / 3)}px sans-serif`;
      context.textAlign = "center";
      context.textBaseline = "middle";
      context.fillText((tile.name.trim()[0] ?? "?").toUpperCase(), cx + cw / 2, cy + ch / 2);
    }
    if (tile.speaking) {
      context.strokeStyle = SPEAKING;
      context.lineWidth = 4;
      context.strokeRect(cx + 2, cy + 2, cw - 4, ch - 4);
    }
    const size = Math.max(12, Math.round(Math.min(ch, cw) / 14));
    context.font = `${size}px sans-serif`;
    context.textAlign = "left";
    context.textBaseline = "bottom";
    const label = tile.name;
    const labelWidth = context.measureText(label).width + size;
    context.fillStyle = "rgba(0,0,0,0.6)";
    context.fillRect(cx, cy + ch - size * 1.6, labelWidth, size * 1.6);
    context.fillStyle = "#fff";
    context.fillText(label, cx + size / 2, cy + ch - size * 0.3);
  }
}

/** Per room: the recording in progress. */
const active = new WeakMap();

/** Starts recording `room`; see `Room.startRecording` in index.d.ts. */
export async function startRecording(room, options = {}) {
  if (typeof MediaRecorder === "undefined") {
    throw callroomError("unsupported", "this browser has no MediaRecorder");
  }
  const o = checkOptions(options);
  if (active.has(room)) throw callroomError("recording_active", "this room is being recorded already");
  const snapshot = room.snapshot();
  if (snapshot.connectionState === "disconnected") throw callroomError("closed", "the room was left");
  const recording = new Recording(room, o, () => {
    if (active.get(room) === recording) active.delete(room);
  });
  active.set(room, recording);
  try {
    return await recording.start();
  } catch (e) {
    if (active.get(room) === recording) active.delete(room);
    throw e;
  }
}

/** Stops `room`'s recording, if any (on leave); resolves when it is finished. */
export function stopRecording(room) {
  return active.get(room)?.stop();
}
