import type { ReactElement, VideoHTMLAttributes } from "react";
import type {
  ConnectionState,
  Device,
  JoinOptions,
  CallroomErrorInfo,
  Participant,
  Quality,
  Recording,
  RecordingOptions,
  RecordingStatus,
  RemoteStream,
  Room,
} from "./index.js";

export interface UseWebRTCOptions extends Omit<JoinOptions, "room"> {
  /** Join when the component mounts (default false: call `initialize()`). */
  join?: boolean;
}

export interface UseWebRTC {
  connectionState: ConnectionState;
  remoteStreams: readonly RemoteStream[];
  error: CallroomErrorInfo | null;
  /** Our peer id while joined. */
  sessionId: string | null;
  /** Joins the room (once; later calls return the same room). */
  initialize(create?: boolean): Promise<Room | null>;
  publishStream(stream?: MediaStream): Promise<void>;
  unpublishStream(): Promise<void>;
  reconnect(): Promise<unknown>;
  localStream: MediaStream | null;
  participants: readonly Participant[];
  /** The worst quality among our links, or null before the first measurement. */
  quality: Quality | null;
  devices: readonly Device[];
  micEnabled: boolean;
  cameraEnabled: boolean;
  screenSharing: boolean;
  /** How loud we are, 0–1 (0 while muted). */
  localAudioLevel: number;
  /** We are speaking. */
  localSpeaking: boolean;
  /** Who speaks, or spoke last (a peerId; our sessionId when it is us). */
  activeSpeaker: string | null;
  setMicEnabled(enabled: boolean): Promise<void>;
  setCameraEnabled(enabled: boolean): Promise<void>;
  switchCamera(deviceId?: string): Promise<void>;
  startScreenShare(): Promise<void>;
  stopScreenShare(): Promise<void>;
  leave(): Promise<void>;
  /** The underlying room, for anything the hook does not wrap. */
  room: Room | null;
}

/** A video call in a React component. Unmounting leaves and frees the room. */
export function useWebRTC(roomId: string, options?: UseWebRTCOptions): UseWebRTC;

export interface UseRecording {
  /** The snapshot's `recording` (`{ durationMs, bytes }`) while one runs, else null. */
  recording: RecordingStatus | null;
  /** Starts recording the room (`room.startRecording`). */
  start(options?: RecordingOptions): Promise<Recording>;
  /** Stops the recording started here; resolves to the file, or null when none runs. */
  stop(): Promise<Blob | null>;
}

/**
 * Recording in a React component. A recording started here stops when the component
 * unmounts or `room` changes.
 */
export function useRecording(room: Room | null): UseRecording;

/** A ref callback that keeps a `<video>` showing `stream`. */
export function useVideoRef(stream: MediaStream | null | undefined): (video: HTMLVideoElement | null) => void;

export interface VideoProps extends Omit<VideoHTMLAttributes<HTMLVideoElement>, "ref"> {
  stream: MediaStream | null | undefined;
  muted?: boolean;
  /** With `peerId`: the element reports its size to this room (`watchTile`). */
  room?: Room | null;
  /** Whose camera this shows (a `RemoteStream.peerId`). */
  peerId?: string | null;
}

/**
 * A playing `<video>` for a stream. Given `room` and `peerId`, it reports its own size, so an
 * SFU room receives the layer it needs and pauses a camera out of view or unmounted.
 */
export function Video(props: VideoProps): ReactElement;
