// The package entry: the wasm-bindgen module plus an idempotent `init()`.
// `Room.join` initialises by itself, so most apps never call `init()` at all.
import initWasm, * as bindings from "./callroom.js";

let ready = null;
let initialized = false;

/**
 * Loads and instantiates the WebAssembly module. Safe to call any number of times, from
 * anywhere: every call returns the same promise.
 */
export function init(moduleOrPath) {
  if (!ready) {
    const options = moduleOrPath === undefined ? undefined : { module_or_path: moduleOrPath };
    ready = initWasm(options).then(() => {
      initialized = true;
    });
    // A failed load may be retried (say, after the network came back).
    ready.catch(() => {
      ready = null;
    });
  }
  return ready;
}

const join = bindings.Room.join;
bindings.Room.join = async function (options) {
  await init();
  return join.call(this, options);
};

/** The library's version. Needs `init()` first. */
export function version() {
  if (!initialized) {
    throw new Error("callroom: call `await init()` (or `Room.join`) before `version()`");
  }
  return bindings.version();
}

export const Room = bindings.Room;

/** The recorder module, once a recording has loaded it. */
let recorder = null;

/**
 * Starts recording the call into one file, in this browser; see index.d.ts. The recorder is
 * a module of its own, loaded here on first use.
 */
Room.prototype.startRecording = async function (options) {
  recorder ??= await import("./recording.js");
  return recorder.startRecording(this, options);
};

// Leaving stops a recording first, so its file is complete and nothing it holds outlives
// the room.
const leave = Room.prototype.leave;
Room.prototype.leave = async function () {
  try {
    await recorder?.stopRecording(this);
  } catch {
    // Leaving must happen whatever the recorder does.
  }
  return leave.call(this);
};

/** Per room, per participant: the tiles watched, each `{ width, height, visible }`. */
const tiles = new WeakMap();

/**
 * Tells `room` how large `element` shows `peerId`'s camera, as it changes: in an SFU room the
 * layer received follows the size, and a camera whose element is scrolled out of view, hidden
 * or gone is paused. With several tiles for one participant, the largest visible one counts.
 * Returns a function that stops watching (the tile then counts as gone).
 * Does nothing useful in mesh and hub rooms, and is harmless there.
 */
export function watchTile(room, peerId, element) {
  let byPeer = tiles.get(room);
  if (!byPeer) {
    byPeer = new Map();
    tiles.set(room, byPeer);
  }
  let mine = byPeer.get(peerId);
  if (!mine) {
    mine = new Set();
    byPeer.set(peerId, mine);
  }
  const tile = { width: 0, height: 0, visible: true };
  mine.add(tile);
  const report = () => {
    let width = 0;
    let height = 0;
    // The peer's tiles now (a stopped watcher's set may have been replaced).
    for (const t of byPeer.get(peerId) ?? []) {
      if (t.visible && t.height > height) {
        width = t.width;
        height = t.height;
      }
    }
    const scale = globalThis.devicePixelRatio || 1;
    try {
      room.setTileSize(peerId, Math.round(width * scale), Math.round(height * scale));
    } catch {
      // The room was freed: nothing to tell.
    }
  };
  const resize = new ResizeObserver((entries) => {
    const box = entries[entries.length - 1].contentRect;
    tile.width = box.width;
    tile.height = box.height;
    report();
  });
  const view = new IntersectionObserver((entries) => {
    tile.visible = entries[entries.length - 1].isIntersecting;
    report();
  });
  resize.observe(element);
  view.observe(element);
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    resize.disconnect();
    view.disconnect();
    mine.delete(tile);
    if (mine.size === 0 && byPeer.get(peerId) === mine) {
      byPeer.delete(peerId);
    }
    report();
  };
}
export default init;
