// Size: gzip -9 and brotli of each file, and what a bundler ships for each entry point.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { build } from "esbuild";
import { ROOT, kb, save } from "./common.mjs";

const gzip = (buf) => gzipSync(buf, { level: 9 }).length;
const brotli = (buf) =>
  brotliCompressSync(buf, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;
const measure = (buf) => ({ raw: buf.length, gzip: gzip(buf), brotli: brotli(buf) });

const pkg = join(ROOT, "pkg");
const files = {};
for (const name of ["callroom_bg.wasm", "callroom.js", "index.js", "react.js", "recording.js", "webm.js"]) {
  files[name] = measure(readFileSync(join(pkg, name)));
}

// Bundle tiny entries the way an app's bundler would, resolving `callroom` as installed from
// the packed tarball (demo/react/node_modules). React itself is the app's, so it is external.
// Code is split as app bundlers do: the recorder, imported on first use, is a chunk of its own
// that the entry does not load.
async function bundle(contents, resolveDir = join(ROOT, "demo", "react")) {
  const result = await build({
    stdin: { contents, resolveDir, loader: "js" },
    bundle: true,
    splitting: true,
    outdir: "out",
    minify: true,
    format: "esm",
    write: false,
    external: ["react", "react-dom"],
    logLevel: "silent",
  });
  const [entry] = result.outputFiles.filter((f) => f.path.endsWith("stdin.js"));
  const lazy = result.outputFiles.filter((f) => f !== entry && f.path.endsWith(".js"));
  const js = measure(Buffer.from(entry.contents));
  const wasm = files["callroom_bg.wasm"];
  const onFirstRecording = measure(Buffer.concat(lazy.map((f) => Buffer.from(f.contents))));
  return { js, wasm, total: { raw: js.raw + wasm.raw, gzip: js.gzip + wasm.gzip, brotli: js.brotli + wasm.brotli }, onFirstRecording };
}

const entries = {
  core: await bundle(`import { Room } from "callroom"; globalThis.Room = Room;`),
  react: await bundle(`import { useWebRTC } from "callroom/react"; globalThis.useWebRTC = useWebRTC;`),
};
// The script-tag build is the package's own files, loaded as they are.
const scriptTag = ["callroom_bg.wasm", "callroom.js", "index.js"].reduce(
  (t, f) => ({ raw: t.raw + files[f].raw, gzip: t.gzip + files[f].gzip, brotli: t.brotli + files[f].brotli }),
  { raw: 0, gzip: 0, brotli: 0 },
);

console.log("size (bytes: raw / gzip -9 / brotli 11)");
for (const [name, m] of Object.entries(files)) {
  console.log(`  ${name.padEnd(26)} ${String(m.raw).padStart(8)} ${String(m.gzip).padStart(8)} ${String(m.brotli).padStart(8)}`);
}
for (const [name, b] of Object.entries(entries)) {
  const label = name === "core" ? "bundle: import { Room }" : "bundle: callroom/react";
  console.log(`  ${label.padEnd(26)} ${String(b.total.raw).padStart(8)} ${String(b.total.gzip).padStart(8)} ${String(b.total.brotli).padStart(8)}   (js ${kb(b.js.gzip)} gzip + wasm)`);
}
console.log(`  ${"script tag (index.js)".padEnd(26)} ${String(scriptTag.raw).padStart(8)} ${String(scriptTag.gzip).padStart(8)} ${String(scriptTag.brotli).padStart(8)}`);
console.log(`  ${"loaded by startRecording()".padEnd(26)} ${String(entries.core.onFirstRecording.raw).padStart(8)} ${String(entries.core.onFirstRecording.gzip).padStart(8)} ${String(entries.core.onFirstRecording.brotli).padStart(8)}   (a chunk of its own)`);
// The peers' main entries, bundled the same way from this repository's dev dependencies.
// (simple-peer needs Node's buffer and stream shims in a browser bundle, so it is not here.)
const peers = {
  "peerjs 1.5.5: import { Peer }": await bundle(`import { Peer } from "peerjs"; globalThis.Peer = Peer;`, ROOT),
  "partytracks 0.0.54: ./client": await bundle(`import * as p from "partytracks/client"; globalThis.p = p;`, ROOT),
};
for (const [label, b] of Object.entries(peers)) {
  console.log(`  ${label.padEnd(26)} ${String(b.js.raw).padStart(8)} ${String(b.js.gzip).padStart(8)} ${String(b.js.brotli).padStart(8)}   (peer, JS only)`);
}
const BUDGET = 48 * 1024;
const reactExtra = entries.react.total.gzip - entries.core.total.gzip;
console.log(`  core entry: ${kb(entries.core.total.gzip)} gzip against the 48 KB budget; callroom/react adds ${kb(reactExtra)} (budget 2 KB)`);
save("size", { files, entries, scriptTag, peers: Object.fromEntries(Object.entries(peers).map(([k, b]) => [k, b.js])), budgetGzipBytes: BUDGET });
