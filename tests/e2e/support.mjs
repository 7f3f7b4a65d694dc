// Shared helpers for the end-to-end suite: a real callroom-server per test on a free port,
// and Debian's Chromium driven by playwright-core with fake camera and microphone.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

const CHROMIUM_ARGS = [
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
];

/** Starts callroom-server on a free loopback port; resolves to { url, stop() }. */
export async function startServer(extraArgs = []) {
  const bin = process.env.CALLROOM_SERVER_BIN ?? join(ROOT, "target", "debug", "callroom-server");
  if (!existsSync(bin)) {
    throw new Error(`callroom-server not found at ${bin}; run \`cargo xtask test\``);
  }
  const child = spawn(
    bin,
    ["--listen", "127.0.0.1:0", "--db", ":memory:", "--demo-dir", join(ROOT, "demo"), "--pkg-dir", join(ROOT, "pkg"), ...extraArgs],
    { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "warn" } },
  );
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
  return {
    url,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}

/**
 * Launches headless Chromium with fake media devices. With `promptsAccepted: false`, camera
 * prompts are not auto-accepted, so a context without the permission is really denied.
 */
export async function launchBrowser({ promptsAccepted = true } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN ?? "/usr/bin/chromium",
    headless: true,
    args: promptsAccepted ? CHROMIUM_ARGS : CHROMIUM_ARGS.filter((a) => a !== "--use-fake-ui-for-media-stream"),
  });
}
