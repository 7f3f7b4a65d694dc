// Shared code of the demo pages: joining, tiles, controls, readable errors.
import { Room, watchTile } from "/pkg/index.js";

export { Room };

export const params = new URLSearchParams(location.search);

const MESSAGES = {
  permission_denied: "Camera or microphone access was denied. You joined to watch; allow access in the browser and reload to be seen.",
  device_not_found: "No camera or microphone was found. You joined to watch.",
  device_in_use: "Your camera or microphone is in use by another program.",
  overconstrained: "The chosen camera cannot be used with these settings.",
  insecure_context: "Camera and microphone need https (or localhost).",
  network_error: "The call server cannot be reached. Check that it is running.",
  room_full: "This room is full.",
  role_mismatch: "This room was started as another kind of room.",
  topology_mismatch: "This room was started as another kind of meeting.",
  protocol_error: "Something unexpected came over the network; the call carries on.",
  device_lost: "A device stopped.",
};

export function readable(error) {
  if (!error) return "";
  const known = MESSAGES[error.code];
  return known && error.code !== "device_lost" ? known : error.message;
}

const STATE_TEXT = {
  disconnected: "Not connected",
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  failed: "Connection failed",
};

export function showState(el, state) {
  el.textContent = STATE_TEXT[state] ?? state;
  el.dataset.state = state;
}

export function showError(el, error) {
  el.textContent = readable(error);
  el.hidden = !error;
  el.dataset.code = error ? error.code : "";
}

function icon(on, label) {
  return `<span class="icon ${on ? "on" : "off"}" title="${label} ${on ? "on" : "off"}">${label}</span>`;
}

/** What a tile says of the camera layer it receives (SFU rooms). */
const LAYER_TEXT = { high: "high", medium: "medium", low: "low", off: "paused" };

/**
 * Keeps one tile per stream in `grid`: a video, the name, mic/camera state, quality and, in
 * an SFU room, the layer received. A shared screen gets a large tile. With `room`, each
 * remote camera's tile reports its size (`watchTile`), so the SFU sends the layer it needs.
 */
export function renderTiles(grid, tiles, room = null) {
  const seen = new Set();
  for (const t of tiles) {
    seen.add(t.id);
    let tile = grid.querySelector(`[data-peer="${CSS.escape(t.id)}"]`);
    if (!tile) {
      tile = document.createElement("figure");
      tile.className = "tile";
      tile.dataset.peer = t.id;
      tile.innerHTML = `<video autoplay playsinline></video><figcaption><span class="name"></span><span class="badges"></span></figcaption>`;
      if (t.screen) {
        tile.classList.add("screen");
        grid.prepend(tile);
      } else {
        grid.append(tile);
      }
      if (room && !t.local && !t.screen) tile.stopWatching = watchTile(room, t.id, tile.querySelector("video"));
    }
    const video = tile.querySelector("video");
    video.muted = t.local;
    if (video.srcObject !== t.stream) video.srcObject = t.stream ?? null;
    // `toggle` with a non-boolean second argument flips the class: always pass a boolean.
    const hasVideo = Boolean(t.stream && t.stream.getVideoTracks().length > 0);
    tile.classList.toggle("no-video", !hasVideo || Boolean(t.cameraOff));
    tile.classList.toggle("speaking", Boolean(t.speaking));
    tile.querySelector(".name").textContent = t.local ? `${t.name || "You"} (you)` : t.name || "Guest";
    const quality = t.quality ? `<span class="quality ${t.quality}" data-quality="${t.quality}">${t.quality}</span>` : "";
    const lines = video.videoHeight && t.layer !== "off" ? ` · ${video.videoHeight}p` : "";
    const layer = t.layer ? `<span class="layer" data-layer="${t.layer}">${LAYER_TEXT[t.layer]}${lines}</span>` : "";
    const media = t.local ? icon(t.mic, "mic") + icon(!t.cameraOff, "cam") : "";
    tile.querySelector(".badges").innerHTML = media + layer + quality;
  }
  for (const tile of grid.querySelectorAll(".tile")) {
    if (!seen.has(tile.dataset.peer)) {
      tile.stopWatching?.();
      tile.remove();
    }
  }
  // Columns and rows for up to 9 tiles (3 × 3) that fit the window.
  const cameras = tiles.filter((t) => !t.screen).length;
  const columns = Math.max(1, Math.ceil(Math.sqrt(cameras)));
  grid.style.setProperty("--columns", String(columns));
  grid.style.setProperty("--rows", String(Math.max(1, Math.ceil(cameras / columns))));
  grid.classList.toggle("sharing", tiles.some((t) => t.screen));
  grid.dataset.count = String(seen.size);
}

/** Tiles for a snapshot: ours first, then everyone we are linked to. */
export function tilesOf(s, name, { includeLocal = true } = {}) {
  const tiles = [];
  if (includeLocal && s.localStream) {
    tiles.push({ id: "local", local: true, name, stream: s.localStream, mic: s.micEnabled, cameraOff: !s.cameraEnabled, speaking: s.localSpeaking });
  }
  for (const r of s.remoteStreams) {
    tiles.push({ id: r.peerId, local: false, name: r.name, stream: r.stream, quality: r.quality, layer: r.videoLayer, speaking: r.speaking });
    if (r.screenStream) {
      tiles.push({ id: `${r.peerId}:screen`, local: false, screen: true, name: `${r.name || "Guest"}'s screen`, stream: r.screenStream });
    }
  }
  return tiles;
}

const clock = (ms) => {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
};

/**
 * A Record button for `room`: records the call (the speaker layout), shows a running timer
 * while it does, and a download link for the file when it stops.
 */
export function recordButton(button, link, room, name, errorElement) {
  let recording = null;
  const label = () => {
    const status = room.snapshot().recording;
    button.textContent = status ? `Stop recording · ${clock(status.durationMs)}` : "Record";
    button.setAttribute("aria-pressed", String(Boolean(status)));
  };
  room.subscribe(label);
  label();
  button.onclick = () => toggle().catch((e) => showError(errorElement, e));
  const toggle = async () => {
    if (recording) {
      const running = recording;
      recording = null;
      const file = await running.stop();
      if (link.href) URL.revokeObjectURL(link.href);
      link.href = URL.createObjectURL(file);
      link.download = `${room.snapshot().room}-${new Date().toISOString().slice(0, 19).replaceAll(":", "-")}.${file.type.includes("mp4") ? "mp4" : "webm"}`;
      link.textContent = `Download the recording (${clock(running.durationMs)}, ${(file.size / 1e6).toFixed(1)} MB)`;
      link.hidden = false;
    } else {
      recording = await room.startRecording({ layout: "speaker", localName: name || "You" });
    }
  };
}

/** Joins and keeps `render(snapshot)` called on every change; the room is `window.room`. */
export async function joinAndRender(options, render) {
  const room = await Room.join(options);
  window.room = room;
  const update = () => render(room.snapshot());
  room.subscribe(update);
  update();
  addEventListener("pagehide", () => room.leave());
  return room;
}
