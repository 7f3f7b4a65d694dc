// Runs end-to-end test files against the Worker under workerd instead of callroom-server:
// starts callroom-server (whose embedded SFU is the Worker's Calls API) and the Worker, then
// `node --test` on the given files with CALLROOM_E2E_BASE_URL pointing at the Worker.
//
//   node tests/conformance/against-worker.mjs tests/e2e/js-api.test.mjs tests/e2e/sfu.test.mjs

import { spawn } from "node:child_process";
import { once } from "node:events";
import { randomBytes } from "node:crypto";

import { startCallroomServer, startWorker } from "./targets.mjs";

const files = process.argv.slice(2);
const secret = randomBytes(16).toString("hex");
const sfu = await startCallroomServer(["--calls-app-id", "callroom", "--calls-app-secret", secret]);
const worker = await startWorker({
  vars: {
    CALLROOM_CALLS_API_BASE: `${sfu.url}/v1`,
    CALLROOM_CALLS_APP_ID: "callroom",
    CALLROOM_CALLS_APP_SECRET: secret,
  },
});
console.log(`# the Worker under workerd: ${worker.url} (Calls API: ${sfu.url}/v1)`);
let code = 1;
try {
  const child = spawn(process.execPath, ["--test", "--test-concurrency=1", ...files], {
    stdio: "inherit",
    env: { ...process.env, CALLROOM_E2E_BASE_URL: worker.url },
  });
  [code] = await once(child, "exit");
} finally {
  await worker.stop();
  await sfu.stop();
}
process.exit(code ?? 1);
