export * from "./callroom.js";
import type { InitInput, RoomEventName, RoomEvents } from "./callroom.js";

declare module "./callroom.js" {
  interface Room {
    /** Calls `handler` for each event of `name`; returns a function that unsubscribes. */
    on<K extends RoomEventName>(name: K, handler: (event: RoomEvents[K]) => void): () => void;
    /**
     * Records the call into one file, in this browser, with no server: every video tile
     * (ours included) composed with names, everyone's audio mixed. Participants joining,
     * leaving, muting or sharing a screen show as it happens. One recording per room at a
     * time (`recording_active`); `leave()` stops it. The snapshot's `recording` follows it.
     */
    startRecording(options?: RecordingOptions): Promise<Recording>;
  }
}

export interface RecordingOptions {
  /** `"grid"` (default): every tile alike; `"speaker"`: the active speaker (or a shared screen) large. */
  layout?: "grid" | "speaker";
  /** Frame size, default 1280×720. */
  width?: number;
  height?: number;
  /** Default 30. */
  frameRate?: number;
  /** Default: the first this browser records of VP9, VP8 (with Opus, in WebM), then MP4. */
  mimeType?: string;
  videoBitsPerSecond?: number;
  audioBitsPerSecond?: number;
  /** Our tile's name (default "You"). */
  localName?: string;
  /** Called with each chunk (about one a second), to upload while recording. */
  onData?: (chunk: Blob) => void;
  /** Record this stream as it is (one participant, say) instead of composing the call. */
  stream?: MediaStream;
}

export interface Recording {
  /** The container and codecs recorded. */
  readonly mimeType: string;
  readonly durationMs: number;
  readonly bytes: number;
  /**
   * Stops and resolves to the file. A WebM states its duration and seeks (MediaRecorder's
   * own has neither); every canvas, element, audio node and timer is released.
   */
  stop(): Promise<Blob>;
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
