import { defineConfig } from "vite";

// callroom-server serves demo/ at /, so the built app lives at /react/dist/ and talks to the
// server on its own origin.
export default defineConfig({
  base: "/react/dist/",
  build: { outDir: "dist", emptyOutDir: true },
});
