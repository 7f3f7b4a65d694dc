// callroom/react: the `useWebRTC` hook and a `<Video>` helper.
import { createElement, useCallback, useEffect, useRef, useState, useSyncExternalStore } from "react";
import { Room, init, watchTile } from "./index.js";

const QUALITY_ORDER = ["lost", "poor", "fair", "good"];

const IDLE = Object.freeze({
  version: 0,
  connectionState: "disconnected",
  sessionId: null,
  room: "",
  role: "peer",
  topology: null,
  localStream: null,
  remoteStreams: Object.freeze([]),
  participants: Object.freeze([]),
  micEnabled: false,
  cameraEnabled: false,
  screenSharing: false,
  localScreenStream: null,
  devices: Object.freeze([]),
  error: null,
  localAudioLevel: 0,
  localSpeaking: false,
  activeSpeaker: null,
  recording: null,
});

const noop = () => {};
const getIdle = () => IDLE;
const getNull = () => null;

function errorInfo(e) {
  return { code: (e && e.code) || "unknown", message: (e && e.message) || String(e) };
}

/**
 * A video call in a React component. `useWebRTC(roomId, { join: true, ...joinOptions })`
 * joins on mount; without `join: true`, call `initialize()`. Unmounting leaves and frees the
 * room; StrictMode's double mount never joins twice.
 */
export function useWebRTC(roomId, options = {}) {
  const [room, setRoom] = useState(null);
  const [joinError, setJoinError] = useState(null);
  const roomRef = useRef(null);
  const joiningRef = useRef(null);
  const aliveRef = useRef(false);
  const optionsRef = useRef(options);
  optionsRef.current = options;

  // Stable per room, so React subscribes once per room rather than on every render.
  const subscribe = useCallback((listener) => (room ? room.subscribe(listener) : noop), [room]);
  const getSnapshot = useCallback(() => (room ? room.snapshot() : IDLE), [room]);
  const snapshot = useSyncExternalStore(subscribe, getSnapshot, getIdle);

  const initialize = useCallback(
    async (_create = true) => {
      if (roomRef.current) return roomRef.current;
      if (joiningRef.current) return joiningRef.current;
      const { join: _autoJoin, ...joinOptions } = optionsRef.current;
      const joining = (async () => {
        try {
          await init();
          const joined = await Room.join({ ...joinOptions, room: roomId });
          if (!aliveRef.current) {
            // Unmounted while joining: leave at once, nothing leaks.
            await joined.leave();
            joined.free();
            return null;
          }
          roomRef.current = joined;
          setJoinError(null);
          setRoom(joined);
          return joined;
        } catch (e) {
          if (aliveRef.current) setJoinError(errorInfo(e));
          throw e;
        } finally {
          joiningRef.current = null;
        }
      })();
      joiningRef.current = joining;
      return joining;
    },
    [roomId],
  );

  const leave = useCallback(async () => {
    const current = roomRef.current;
    roomRef.current = null;
    setRoom(null);
    if (current) {
      await current.leave();
      current.free();
    }
  }, []);

  useEffect(() => {
    aliveRef.current = true;
    // Deferred a tick: StrictMode mounts, unmounts and mounts again synchronously, so the
    // first mount's join is cancelled before it starts and only one join happens.
    const timer = optionsRef.current.join ? setTimeout(() => initialize().catch(noop), 0) : null;
    return () => {
      aliveRef.current = false;
      if (timer !== null) clearTimeout(timer);
      const current = roomRef.current;
      roomRef.current = null;
      setRoom(null);
      if (current) {
        current.leave().finally(() => current.free());
      }
    };
  }, [initialize]);

  const call = (method) => (...args) => {
    const current = roomRef.current;
    if (!current) return Promise.reject(Object.assign(new Error("not joined yet: call initialize() first"), { code: "closed" }));
    return Promise.resolve(current[method](...args));
  };

  const qualities = snapshot.remoteStreams.map((r) => r.quality).filter(Boolean);
  const quality = qualities.length
    ? qualities.reduce((worst, q) => (QUALITY_ORDER.indexOf(q) < QUALITY_ORDER.indexOf(worst) ? q : worst))
    : null;

  return {
    connectionState: snapshot.connectionState,
    remoteStreams: snapshot.remoteStreams,
    error: snapshot.error ?? joinError,
    sessionId: snapshot.sessionId,
    initialize,
    publishStream: useCallback((stream) => call("publish")(stream), []),
    unpublishStream: useCallback(() => call("unpublish")(), []),
    reconnect: useCallback(() => (roomRef.current ? call("reconnect")() : initialize()), [initialize]),
    localStream: snapshot.localStream,
    participants: snapshot.participants,
    quality,
    devices: snapshot.devices,
    micEnabled: snapshot.micEnabled,
    cameraEnabled: snapshot.cameraEnabled,
    screenSharing: snapshot.screenSharing,
    localAudioLevel: snapshot.localAudioLevel,
    localSpeaking: snapshot.localSpeaking,
    activeSpeaker: snapshot.activeSpeaker,
    setMicEnabled: useCallback((on) => call("setMicEnabled")(on), []),
    setCameraEnabled: useCallback((on) => call("setCameraEnabled")(on), []),
    switchCamera: useCallback((deviceId) => call("switchCamera")(deviceId), []),
    startScreenShare: useCallback(() => call("startScreenShare")(), []),
    stopScreenShare: useCallback(() => call("stopScreenShare")(), []),
    leave,
    room,
  };
}

/** A ref callback that keeps a `<video>` showing `stream`. */
export function useVideoRef(stream) {
  return useCallback(
    (video) => {
      if (video && video.srcObject !== stream) video.srcObject = stream ?? null;
    },
    [stream],
  );
}

/**
 * `<Video stream={stream} muted />`: a playing video element for a stream. Given the hook's
 * `room` and the entry's `peerId`, it reports its own size to the room, so an SFU room
 * receives the layer it needs and pauses a camera scrolled out of view or unmounted.
 */
export function Video({ stream, muted = false, room = null, peerId = null, ...props }) {
  const attach = useVideoRef(stream);
  const [element, setElement] = useState(null);
  const ref = useCallback(
    (video) => {
      attach(video);
      setElement(video);
    },
    [attach],
  );
  useEffect(() => (room && peerId && element ? watchTile(room, peerId, element) : undefined), [room, peerId, element]);
  return createElement("video", { ref, autoPlay: true, playsInline: true, muted, ...props });
}

/**
 * Recording in a React component: `{ recording, start, stop }`. `recording` is the snapshot's
 * `{ durationMs, bytes }` while a recording runs, else null; `start(options)` begins one
 * (`room.startRecording`); `stop()` resolves to the file (null when none runs). A recording
 * started here stops when the component unmounts or the room changes.
 */
export function useRecording(room) {
  const subscribe = useCallback((listener) => (room ? room.subscribe(listener) : noop), [room]);
  // The same object while nothing in it changes: the snapshot is new whenever anything in the
  // room changes (a level, five times a second while someone speaks).
  const lastRef = useRef(null);
  const getRecording = useCallback(() => {
    const now = room ? room.snapshot().recording : null;
    const last = lastRef.current;
    if (now && last && now.durationMs === last.durationMs && now.bytes === last.bytes) return last;
    lastRef.current = now;
    return now;
  }, [room]);
  const recording = useSyncExternalStore(subscribe, getRecording, getNull);
  const runningRef = useRef(null);
  // Bumped when the component unmounts or the room changes: a start still pending then is
  // stopped as soon as it resolves, so no recording outlives its component.
  const generationRef = useRef(0);
  const start = useCallback(
    async (options) => {
      if (!room) throw Object.assign(new Error("no room to record yet"), { name: "CallroomError", code: "closed" });
      const generation = generationRef.current;
      const started = await room.startRecording(options);
      if (generation !== generationRef.current) {
        started.stop().catch(noop);
      } else {
        runningRef.current = started;
      }
      return started;
    },
    [room],
  );
  const stop = useCallback(async () => {
    const running = runningRef.current;
    runningRef.current = null;
    return running ? running.stop() : null;
  }, []);
  useEffect(
    () => () => {
      generationRef.current += 1;
      runningRef.current?.stop().catch(noop);
      runningRef.current = null;
    },
    [room],
  );
  return { recording, start, stop };
}
