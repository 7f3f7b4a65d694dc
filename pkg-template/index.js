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

/**
 * Tells `room` how large `element` shows `peerId`'s camera, as it changes: in an SFU room the
 * layer received follows the size, and a camera whose element is scrolled out of view, hidden
 * or gone is paused. Returns a function that stops watching (the tile then counts as gone).
 * Does nothing useful in mesh and hub rooms, and is harmless there.
 */
export function watchTile(room, peerId, element) {
  let width = 0;
  let height = 0;
  let visible = true;
  const report = () => {
    const scale = globalThis.devicePixelRatio || 1;
    try {
      room.setTileSize(peerId, Math.round(width * scale), visible ? Math.round(height * scale) : 0);
    } catch {
      // The room was freed: nothing to tell.
    }
  };
  const resize = new ResizeObserver((entries) => {
    const box = entries[entries.length - 1].contentRect;
    width = box.width;
    height = box.height;
    report();
  });
  const view = new IntersectionObserver((entries) => {
    visible = entries[entries.length - 1].isIntersecting;
    report();
  });
  resize.observe(element);
  view.observe(element);
  return () => {
    resize.disconnect();
    view.disconnect();
    visible = false;
    report();
  };
}
export default init;
