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
export default init;
