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
  /** How loud they are: RMS of the last ~0.2 s, 0–1, linear (like getStats' `audioLevel`). */
  readonly audioLevel: number;
  /** Speaking now: on from about −34 dBFS, off after 0.8 s below −40 dBFS. */
  readonly speaking: boolean;
}

/** A recording in progress (`room.startRecording()`). */
export interface RecordingStatus {
  readonly durationMs: number;
  readonly bytes: number;
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
  /** The screen we share, as a stream of its own (to show it, or record it); `null` when not sharing. */
  readonly localScreenStream: MediaStream | null;
  readonly devices: readonly Device[];
  readonly error: CallroomErrorInfo | null;
  /** How loud we are (0 while muted). */
  readonly localAudioLevel: number;
  /** We are speaking (never while muted). */
  readonly localSpeaking: boolean;
  /**
   * Who speaks, or spoke last: a `peerId` (our `sessionId` when it is us); the loudest of
   * several, changing to someone louder only after 1.5 s; `null` until anyone has spoken.
   */
  readonly activeSpeaker: string | null;
  /** The recording in progress, or `null`. */
  readonly recording: RecordingStatus | null;
}

export interface RoomEvents {
  "participant-joined": Participant;
  "participant-left": { readonly peerId: string; readonly reason: "left" | "timeout" | "reset" };
  "track": { readonly peerId: string; readonly stream: MediaStream };
  "error": CallroomErrorInfo;
  "quality": { readonly peerId: string; readonly quality: Quality; readonly stats: LinkStats };
  "state": ConnectionState;
  "active-speaker": { readonly peerId: string | null };
}
export type RoomEventName = keyof RoomEvents;
"#;
