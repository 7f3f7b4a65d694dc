// A two-person call with the useWebRTC hook (no JSX, so no build plugin is needed).
import { createElement as h } from "react";
import { useWebRTC, Video } from "callroom/react";

export function Call({ roomId, name }) {
  const call = useWebRTC(roomId, { join: true, name });
  const { connectionState, localStream, remoteStreams, error, micEnabled, cameraEnabled } = call;
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
      { className: "grid", id: "grid", "data-count": String(remoteStreams.length + (localStream ? 1 : 0)) },
      localStream &&
        h("figure", { className: "tile", "data-peer": "local" }, h(Video, { stream: localStream, muted: true }),
          h("figcaption", null, h("span", { className: "name" }, `${name || "You"} (you)`))),
      remoteStreams.map((r) =>
        h("figure", { className: "tile", key: r.peerId, "data-peer": r.peerId },
          h(Video, { stream: r.stream }),
          h("figcaption", null, h("span", { className: "name" }, r.name || "Guest"),
            r.quality && h("span", { className: `quality ${r.quality}` }, r.quality))),
      ),
    ),
    h(
      "nav",
      { className: "controls" },
      h("button", { onClick: () => call.setMicEnabled(!micEnabled) }, micEnabled ? "Mute" : "Unmute"),
      h("button", { onClick: () => call.setCameraEnabled(!cameraEnabled) }, cameraEnabled ? "Camera off" : "Camera on"),
      h("button", { className: "danger", onClick: call.leave }, "Leave"),
    ),
  );
}
