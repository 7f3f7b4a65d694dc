// Shared helpers for the end-to-end suite: a real callroom-server per test on a free port,
// and Debian's Chromium driven by playwright-core with fake camera and microphone.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { setPriority } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Headless Chromium with fake devices, quiet on this machine's closed network. */
export const CHROMIUM_ARGS = [
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-quic",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  // Remote videos play with sound; a real user clicked "Join", a test cannot.
  "--autoplay-policy=no-user-gesture-required",
];

/**
 * Starts callroom-server (default: a free loopback port, a throwaway in-memory database);
 * resolves to { url, port, stop(), kill() }. `launch(program, args, options)` starts the
 * process (default `child_process.spawn`; the network tests start it inside a namespace).
 */
export async function startServer(
  extraArgs = [],
  { listen = "127.0.0.1:0", db = ":memory:", demoDir, launch = spawn } = {},
) {
  // Another server speaking the same protocol (the Worker under workerd), already running:
  // tests that need no server flags run against it unchanged.
  const external = process.env.CALLROOM_E2E_BASE_URL;
  if (external && extraArgs.length === 0 && !demoDir && db === ":memory:") {
    return { url: external, port: Number(new URL(external).port), async stop() {}, async kill() {} };
  }
  const bin = process.env.CALLROOM_SERVER_BIN ?? join(ROOT, "target", "debug", "callroom-server");
  if (!existsSync(bin)) {
    throw new Error(`callroom-server not found at ${bin}; run \`cargo xtask test\``);
  }
  const child = launch(
    bin,
    ["--listen", listen, "--db", db, "--demo-dir", demoDir ?? join(ROOT, "demo"), "--pkg-dir", join(ROOT, "pkg"), ...extraArgs],
    { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" } },
  );
  // The browsers beside it are the load here, and Chromium raises some of its own processes'
  // priority: the server under test keeps a fair share of a small machine, as it would on a
  // machine of its own. Only root may raise it.
  try {
    setPriority(child.pid, -10);
  } catch {
    // Not root: the default priority.
  }
  const url = await new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`server did not start: ${seen}`)), 15_000);
    child.stdout.on("data", (chunk) => {
      seen += chunk;
      const match = /listening on (http:\/\/\S+?)\/?\s/.exec(seen);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening: ${seen}`));
    });
  });
  const exited = once(child, "exit");
  return {
    url,
    port: Number(new URL(url).port),
    pid: child.pid,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

/**
 * Launches headless Chromium with fake media devices. With `promptsAccepted: false`, camera
 * prompts are not auto-accepted, so a context without the permission is really denied.
 * `wrap(chromiumPath)` gives the program to run instead (the network tests' namespace
 * wrapper); `extraArgs` are added to the command line.
 */
export async function launchBrowser({ promptsAccepted = true, wrap = (bin) => bin, extraArgs = [] } = {}) {
  const args = promptsAccepted ? CHROMIUM_ARGS : CHROMIUM_ARGS.filter((a) => a !== "--use-fake-ui-for-media-stream");
  return chromium.launch({
    executablePath: wrap(process.env.CHROMIUM_BIN ?? "/usr/bin/chromium"),
    headless: true,
    args: [...args, ...extraArgs],
  });
}

/** A browser in its own process, which `kill()` ends abruptly (no unload, no `leave()`). */
export async function launchKillableBrowser() {
  const server = await chromium.launchServer({
    executablePath: process.env.CHROMIUM_BIN ?? "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const browser = await chromium.connect(server.wsEndpoint());
  return { browser, kill: () => server.kill() };
}

/**
 * Waits until at least `count` remote tiles in `page` show video frames, proven by
 * `requestVideoFrameCallback` on their <video> elements.
 */
export async function waitForRemoteFrames(page, count, timeout = 30_000) {
  await page.waitForFunction(
    (count) => {
      const videos = [...document.querySelectorAll('.tile:not([data-peer="local"]) video')];
      for (const v of videos) {
        if (!v.__callroomFrame) v.requestVideoFrameCallback(() => (v.__callroomFrame = true));
      }
      return videos.filter((v) => v.__callroomFrame && v.videoWidth > 0).length >= count;
    },
    count,
    { timeout, polling: 250 },
  );
}

/** A room (or other) name no other test uses. */
export const unique = (prefix) => `${prefix}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;

/** The number of tiles (local included) in `page`. */
export function tileCount(page) {
  return page.locator(".tile").count();
}

/**
 * A page of `browser` at `server` with callroom loaded and initialised, exposed as
 * `window.callroom`; `initScript` runs in it before any page script. `entry` is the module
 * loaded: the wasm-bindgen bindings, or the package's `/pkg/index.js` (which adds the
 * recorder and `watchTile`).
 */
export async function pageWithCallroom(browser, server, { initScript, entry = "/pkg/callroom.js" } = {}) {
  const context = await browser.newContext({ permissions: ["camera", "microphone"] });
  if (initScript) await context.addInitScript(initScript);
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${server.url}/`);
  await page.evaluate(async (entry) => {
    const mod = await import(entry);
    await mod.default();
    window.callroom = mod;
  }, entry);
  return { page, errors, close: () => context.close() };
}
