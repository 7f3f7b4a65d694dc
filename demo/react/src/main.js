import "../../style.css";
import { StrictMode, createElement as h } from "react";
import { createRoot } from "react-dom/client";
import { Call } from "./Call.js";

const params = new URLSearchParams(location.search);
createRoot(document.getElementById("root")).render(
  h(StrictMode, null, h(Call, { roomId: params.get("room") || "react-demo", name: params.get("name") || "", topology: params.get("topology") })),
);
