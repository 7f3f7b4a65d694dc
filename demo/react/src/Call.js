// A call with the useWebRTC hook (no JSX, so no build plugin is needed). `?topology=sfu`
// makes it a meeting through the server's SFU, where each remote tile reports its size.
import { createElement as h, useState } from "react";
import { useRecording, useWebRTC, Video } from "callroom/react";

const LAYER_TEXT = { high: "high", medium: "medium", low: "low", off: "paused" };

const clock = (ms) => `${Math.floor(ms / 60_000)}:${String(Math.floor(ms / 1000) % 60).padStart(2, "0")}`;

/** Record, with a running timer while recording and a download link afterwards. */
function RecordButton({ room, name }) {
  const { recording, start, stop } = useRecording(room);
  const [file, setFile] = useState(null);
  const toggle = async () => {
    if (recording) {
      const blob = await stop();
      if (blob) setFile((old) => (old && URL.revokeObjectURL(old.url), { url: URL.createObjectURL(blob), size: blob.size }));
    } else {
      await start({ layout: "speaker", localName: name || "You" });
    }
  };
  return h(
    "span",
    null,
    h("button", { id: "record", disabled: !room, onClick: () => toggle().catch(console.error) }, recording ? `Stop recording · ${clock(recording.durationMs)}` : "Record"),
    file && h("a", { id: "download", href: file.url, download: "call.webm" }, `Download (${(file.size / 1e6).toFixed(1)} MB)`),
  );
}

function Tile({ id, name, children, className = "tile" }) {
  return h("figure", { className, "data-peer": id }, ...children, h("figcaption", null, h("span", { className: "name" }, name)));
}

export function Call({ roomId, name, topology }) {
  const call = useWebRTC(roomId, { join: true, name, ...(topology ? { topology } : {}) });
  const { connectionState, localStream, remoteStreams, error, micEnabled, cameraEnabled, room } = call;
  const screens = remoteStreams.filter((r) => r.screenStream);
  const cameras = remoteStreams.length + (localStream ? 1 : 0);
  const columns = Math.max(1, Math.ceil(Math.sqrt(cameras)));
  return h(
    "div",
    { className: "app" },
    h(
      "header",
      { className: "bar" },
      h("strong", { className: "brand" }, "callroom · React"),
      h("span", { className: "room-name" }, roomId),
      h("span", { className: "state", "data-state": connectionState, id: "state" }, connectionState),
    ),
    error && h("p", { className: "error", role: "alert", "data-code": error.code }, error.message),
    h(
      "main",
      {
        className: screens.length > 0 ? "grid sharing" : "grid",
        id: "grid",
        "data-count": String(cameras + screens.length),
        style: { "--columns": String(columns), "--rows": String(Math.max(1, Math.ceil(cameras / columns))) },
      },
      screens.map((r) =>
        h(Tile, { key: `${r.peerId}:screen`, id: `${r.peerId}:screen`, className: "tile screen", name: `${r.name || "Guest"}'s screen` }, [
          h(Video, { key: "v", stream: r.screenStream }),
        ]),
      ),
      localStream &&
        h(Tile, { id: "local", name: `${name || "You"} (you)`, className: call.localSpeaking ? "tile speaking" : "tile" }, [
          h(Video, { key: "v", stream: localStream, muted: true }),
        ]),
      remoteStreams.map((r) =>
        h("figure", { className: r.speaking ? "tile speaking" : "tile", key: r.peerId, "data-peer": r.peerId },
          h(Video, { stream: r.stream, room, peerId: r.peerId }),
          h("figcaption", null, h("span", { className: "name" }, r.name || "Guest"),
            h("span", { className: "badges" },
              r.videoLayer && h("span", { className: "layer", "data-layer": r.videoLayer }, LAYER_TEXT[r.videoLayer]),
              r.quality && h("span", { className: `quality ${r.quality}` }, r.quality)))),
      ),
    ),
    h(
      "nav",
      { className: "controls" },
      h("button", { onClick: () => call.setMicEnabled(!micEnabled) }, micEnabled ? "Mute" : "Unmute"),
      h("button", { onClick: () => call.setCameraEnabled(!cameraEnabled) }, cameraEnabled ? "Camera off" : "Camera on"),
      h(RecordButton, { room, name }),
      h("button", { className: "danger", onClick: call.leave }, "Leave"),
    ),
  );
}
