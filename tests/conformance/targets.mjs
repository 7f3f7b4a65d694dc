// The servers the protocol conformance suite runs against: callroom-server, and the Worker
// under local workerd (`wrangler dev`, offline). Each can be restarted on the same port with
// the same storage, for the durability cases.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { ROOT, startServer } from "../e2e/support.mjs";

/** A free loopback port. */
export async function freePort() {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

/** Resolves once `url` answers `/livez` with 200, or throws after `timeout` ms. */
export async function waitUntilLive(url, timeout = 60_000) {
  const until = Date.now() + timeout;
  let last;
  while (Date.now() < until) {
    try {
      const response = await fetch(`${url}/livez`);
      if (response.ok) return;
      last = `status ${response.status}`;
    } catch (err) {
      last = err.message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not come up: ${last}`);
}

/** The environment `wrangler` runs offline with: no metrics, no banner, logs under target/. */
export function wranglerEnv() {
  const home = join(ROOT, "target", "wrangler");
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_HIDE_BANNER: "true",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    XDG_CONFIG_HOME: home,
    WRANGLER_LOG_PATH: join(home, "logs"),
  };
}

/**
 * The Worker under `wrangler dev --local`, built by `cargo xtask worker build`. `vars` are
 * its settings (callroom-server's `CALLROOM_*` names). Resolves to
 * { name, url, restart(), stop() }.
 */
export async function startWorker({ vars = {}, port, persistTo } = {}) {
  const shim = join(ROOT, "worker", "build", "worker", "shim.mjs");
  if (!existsSync(shim)) throw new Error("the Worker is not built: run `cargo xtask worker build`");
  port ??= await freePort();
  persistTo ??= mkdtempSync(join(tmpdir(), "callroom-worker-"));
  const url = `http://127.0.0.1:${port}`;
  let child;
  const launch = async () => {
    const args = [
      "dev", "--config", join(ROOT, "worker", "wrangler.toml"), "--local",
      "--ip", "127.0.0.1", "--port", String(port), "--persist-to", persistTo,
      "--show-interactive-dev-session=false", "--log-level", "warn",
      ...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
    ];
    child = spawn(join(ROOT, "node_modules", ".bin", "wrangler"), args, {
      cwd: ROOT,
      env: wranglerEnv(),
      stdio: ["ignore", "inherit", "inherit"],
      // Its own process group: wrangler runs workerd and a proxy, all stopped together.
      detached: true,
    });
    await waitUntilLive(url);
  };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {}
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {}
    }, 5_000);
    await exited;
    clearTimeout(timer);
  };
  await launch();
  return {
    name: "worker",
    url,
    async restart() {
      await stop();
      await launch();
    },
    stop,
  };
}

/** callroom-server with a database file, restartable on the same port. */
export async function startCallroomServer(args = []) {
  const db = join(mkdtempSync(join(tmpdir(), "callroom-server-")), "conformance.db");
  let server = await startServer(args, { db });
  const listen = `127.0.0.1:${server.port}`;
  return {
    name: "server",
    get url() {
      return server.url;
    },
    async restart() {
      await server.stop();
      server = await startServer(args, { db, listen });
    },
    stop: () => server.stop(),
  };
}
