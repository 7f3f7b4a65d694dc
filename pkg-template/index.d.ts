export * from "./callroom.js";
import type { InitInput, RoomEventName, RoomEvents } from "./callroom.js";

declare module "./callroom.js" {
  interface Room {
    /** Calls `handler` for each event of `name`; returns a function that unsubscribes. */
    on<K extends RoomEventName>(name: K, handler: (event: RoomEvents[K]) => void): () => void;
  }
}

/**
 * Loads and instantiates the WebAssembly module. Safe to call any number of times; every call
 * returns the same promise. `Room.join` calls it for you.
 */
export function init(moduleOrPath?: InitInput | Promise<InitInput>): Promise<void>;
/**
 * Tells `room` how large `element` shows `peerId`'s camera, as it changes: in an SFU room the
 * layer received follows the size, and a camera whose element is out of view, hidden or gone
 * is paused. With several tiles for one participant, the largest visible one counts. Returns a
 * function that stops watching (the tile then counts as gone).
 */
export function watchTile(room: import("./callroom.js").Room, peerId: string, element: Element): () => void;
/** The library's version. Needs `init()` first. */
export function version(): string;
export default init;
