// Compiled with `tsc --noEmit` by `cargo xtask test`: the published types must describe the
// API as apps use it, with no `any` leaking into their code.
import { Room, init, version, watchTile, type Snapshot, type JoinOptions, type CallroomError, type Recording } from "callroom";
import { useWebRTC, useRecording, Video, useVideoRef, type UseWebRTC } from "callroom/react";

async function plain(): Promise<void> {
  await init();
  const options: JoinOptions = { room: "standup", name: "Ann", media: { audio: true, video: { deviceId: "cam" } } };
  const room: Room = await Room.join(options);
  const snapshot: Snapshot = room.snapshot();
  const state: "disconnected" | "connecting" | "connected" | "reconnecting" | "failed" = snapshot.connectionState;
  // Every entry carries a stream, so it can go straight into `srcObject`.
  for (const r of snapshot.remoteStreams) {
    const stream: MediaStream = r.stream;
    new HTMLVideoElement().srcObject = stream;
  }
  const firstStream: MediaStream | null = snapshot.remoteStreams[0]?.stream ?? null;
  const sharedScreen: MediaStream | null = snapshot.remoteStreams[0]?.screenStream ?? null;
  room.setTileSize("p1", 320, 180);
  room.setVideoQuality("p1", "low");
  // @ts-expect-error: qualities are a closed set
  room.setVideoQuality("p1", "ultra");
  const layer: "high" | "medium" | "low" | "off" | null = snapshot.remoteStreams[0]?.videoLayer ?? null;
  const stopWatching: () => void = watchTile(room, "p1", document.createElement("video"));
  stopWatching();
  // @ts-expect-error: a tile is an element
  watchTile(room, "p1", "video");
  const quality: "good" | "fair" | "poor" | "lost" | null = snapshot.remoteStreams[0]?.quality ?? null;
  const off: () => void = room.subscribe(() => undefined);
  off();
  const offJoined = room.on("participant-joined", (p) => {
    const name: string = p.name;
    void name;
  });
  offJoined();
  room.on("state", (s) => {
    const connection: Snapshot["connectionState"] = s;
    void connection;
  });
  // @ts-expect-error: a state event carries a string, not a participant
  room.on("state", (s) => s.name);
  const speaking: boolean = snapshot.localSpeaking || snapshot.remoteStreams.some((r) => r.speaking && r.audioLevel > 0);
  const activeSpeaker: string | null = snapshot.activeSpeaker;
  room.on("active-speaker", ({ peerId }) => {
    const who: string | null = peerId;
    void who;
  });
  const recording: Recording = await room.startRecording({ layout: "speaker", onData: (chunk: Blob) => void chunk });
  const seconds: number = (snapshot.recording?.durationMs ?? 0) / 1000;
  const file: Blob = await recording.stop();
  // @ts-expect-error: layouts are a closed set
  await room.startRecording({ layout: "mosaic" });
  void [speaking, activeSpeaker, seconds, file];
  room.setMicEnabled(false);
  await room.setCameraEnabled(true);
  await room.switchCamera();
  await room.leave();
  const v: string = version();
  // @ts-expect-error: a room id is required
  await Room.join({ name: "no room" });
  // @ts-expect-error: roles are a closed set
  await Room.join({ room: "r", role: "admin" });
  await Room.join({ room: "r", role: "host", topology: "hub" });
  await Room.join({ room: "r", topology: "sfu" });
  // @ts-expect-error: topologies are a closed set
  await Room.join({ room: "r", topology: "star" });
  try {
    await Room.join({ room: "r" });
  } catch (e) {
    const error = e as CallroomError;
    const code: string = error.code;
    void code;
  }
  void [state, firstStream, sharedScreen, quality, layer, v];
}

function Component(): ReturnType<typeof Video> {
  const call: UseWebRTC = useWebRTC("standup", { join: true, name: "Ann" });
  const { connectionState, remoteStreams, error, sessionId, initialize, publishStream, unpublishStream, reconnect } = call;
  const ref = useVideoRef(call.localStream);
  void [connectionState, remoteStreams, error, sessionId, initialize, publishStream, unpublishStream, reconnect, ref];
  const { recording, start, stop } = useRecording(call.room);
  const bytes: number | undefined = recording?.bytes;
  void [bytes, () => start({ layout: "grid" }), async (): Promise<Blob | null> => stop()];
  // @ts-expect-error: the stream prop is required
  Video({});
  Video({ stream: call.remoteStreams[0]?.stream, room: call.room, peerId: call.remoteStreams[0]?.peerId });
  // @ts-expect-error: the room is a Room
  Video({ stream: null, room: "standup" });
  return Video({ stream: call.localStream, muted: true });
}

void plain;
void Component;
