//! Hand-written TypeScript for the option, snapshot and event objects (no `any` in public
//! types except event payloads, which `on()` narrows by name).

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Where the room's connection to the service stands. */
export type ConnectionState = "disconnected" | "connecting" | "connected" | "reconnecting" | "failed";
/** `peer` in a mesh room; `host` or `guest` in a hub. */
export type Role = "peer" | "host" | "guest";
/**
 * How a room's members connect: `mesh` everyone to everyone, `hub` guests to one host, `sfu`
 * everyone once to the server's SFU.
 */
export type Topology = "mesh" | "hub" | "sfu";
export type Quality = "good" | "fair" | "poor" | "lost";
/** Which layer of a remote camera to receive in an SFU room. */
export type VideoQuality = "auto" | "high" | "medium" | "low" | "off";

/** One kind of track to capture: `true` any device, `false` none, or a `deviceId`. */
export type TrackChoice = boolean | string | { deviceId: string };

export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

export interface JoinOptions {
  /** Room id, `[A-Za-z0-9_-]{1,64}`. */
  room: string;
  /** Signaling server base URL; default: this page's origin. */
  server?: string;
  role?: Role;
  /**
   * The room's topology. The first joiner fixes it; a later join must ask for the same
   * (`topology_mismatch` otherwise). Default: `mesh` for `peer`, `hub` for `host` and
   * `guest`; `sfu` takes role `peer`.
   */
  topology?: Topology;
  name?: string;
  /** Join ticket signed by your backend, when the server requires one. */
  ticket?: string;
  /** What to publish on join; `false` joins to watch only. Default: camera and microphone. */
  media?: boolean | { audio?: TrackChoice; video?: TrackChoice };
  /** ICE servers to use instead of the server's. */
  iceServers?: IceServer[];
  /** Long-poll wait, ms (default 25000, at most 30000). */
  pollWaitMs?: number;
  /** Pause between polls, ms (default 0: poll again at once). */
  pollIntervalMs?: number;
  /** First and longest retry delay after a failed signaling call, ms (250, 2000: a path that comes back is found within 2 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How often network quality is measured, ms (2000). */
  statsIntervalMs?: number;
  /** ICE `disconnected` lasting this long triggers an ICE restart, ms (3000). */
  disconnectedGraceMs?: number;
  /** An ICE restart that has not reconnected after this long rebuilds the connection, ms (10000). */
  iceRestartTimeoutMs?: number;
  /** A new connection that has not connected after this long is rebuilt, ms (20000). */
  connectTimeoutMs?: number;
}

export interface Participant {
  readonly peerId: string;
  readonly role: Role;
  readonly name: string;
}

export interface LinkStats {
  readonly quality: Quality;
  readonly lossPercent: number;
  readonly rttMs: number | null;
  readonly jitterMs: number | null;
  readonly receiveKbps: number;
  readonly sendKbps: number;
  readonly availableSendKbps: number | null;
}

export interface RemoteStream {
  readonly peerId: string;
  readonly name: string;
  readonly role: Role;
  /**
   * Their media: the same stream for the whole call, empty until their first track arrives
   * and gaining tracks as they do, so `video.srcObject = entry.stream` is always valid.
   */
  readonly stream: MediaStream;
  /** The screen they share as a stream of its own (SFU rooms); `null` otherwise. */
  readonly screenStream: MediaStream | null;
  /** `RTCPeerConnection.connectionState` of the link to them. */
  readonly connectionState: RTCPeerConnectionState;
  readonly quality: Quality | null;
  readonly stats: LinkStats | null;
  /** Video frames decoded from them so far: above 0 means their video plays. */
  readonly framesDecoded: number;
  /**
   * SFU rooms: the layer of their camera we receive, or `"off"` while it is paused (nobody
   * shows it, or `setVideoQuality(peerId, "off")`); `null` in mesh and hub rooms, when they
   * send no camera, or for a moment after a layer change failed (until it is asked again).
   */
  readonly videoLayer: "high" | "medium" | "low" | "off" | null;
}

export interface Device {
  readonly deviceId: string;
  readonly kind: "videoinput" | "audioinput" | "audiooutput";
  readonly label: string;
}

export interface CallroomErrorInfo {
  /** Stable code: `permission_denied`, `device_not_found`, `device_in_use`, `overconstrained`,
   *  `insecure_context`, `protocol_error`, `network_error`, `device_lost`, `turn_refused`, or
   *  the server's. */
  readonly code: string;
  readonly message: string;
}

/** A rejected call: a real `Error` with a stable `code`. */
export interface CallroomError extends Error {
  readonly name: "CallroomError";
  readonly code: string;
}

/** The whole room state; the same object until something changes. */
export interface Snapshot {
  readonly version: number;
  readonly connectionState: ConnectionState;
  /** Our peer id while joined. */
  readonly sessionId: string | null;
  readonly room: string;
  readonly role: Role;
  readonly topology: Topology | null;
  readonly localStream: MediaStream | null;
  readonly remoteStreams: readonly RemoteStream[];
  readonly participants: readonly Participant[];
  readonly micEnabled: boolean;
  readonly cameraEnabled: boolean;
  readonly screenSharing: boolean;
  readonly devices: readonly Device[];
  readonly error: CallroomErrorInfo | null;
}

export interface RoomEvents {
  "participant-joined": Participant;
  "participant-left": { readonly peerId: string; readonly reason: "left" | "timeout" | "reset" };
  "track": { readonly peerId: string; readonly stream: MediaStream };
  "error": CallroomErrorInfo;
  "quality": { readonly peerId: string; readonly quality: Quality; readonly stats: LinkStats };
  "state": ConnectionState;
}
export type RoomEventName = keyof RoomEvents;
"#;
