// A small network for tests: one namespace per host, all joined to a bridge that lives in a
// namespace of its own, by veth pairs. Addresses come from 198.18.0.0/15 (set aside for network
// tests) and no namespace has a route anywhere else. At the bridge, nftables drops traffic
// (a cut link, a pair of hosts that cannot reach each other, random loss) and tbf limits the
// rate, so what the hosts see is a path failing somewhere upstream, not a local interface
// going down.
//
// Namespaces are named `crn<pid>-<host>`; every one this process made is deleted when it exits,
// however it exits, and ones left by a process that no longer runs are deleted on start.
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const PREFIX = `crn${process.pid}-`;
const SUBNET = "198.18.0";

function ip(...args) {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function inNs(ns, program, args, input) {
  return execFileSync("ip", ["netns", "exec", ns, program, ...args], {
    encoding: "utf8",
    input,
    stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
}

/** Why this machine cannot run the network tests, or null when it can. */
export function unavailable() {
  if (process.getuid?.() !== 0) return "needs root and ip netns";
  const probe = `crnprobe${process.pid}`;
  try {
    ip("netns", "add", probe);
    inNs(probe, "nft", ["list", "tables"]);
    return null;
  } catch {
    return "needs root and ip netns (with nft)";
  } finally {
    try {
      ip("netns", "del", probe);
    } catch {}
  }
}

/** Deletes namespaces left by runs whose process is gone (a `kill -9`, a crash). */
function sweepStale() {
  let list = "";
  try {
    list = ip("netns", "list");
  } catch {
    return;
  }
  for (const line of list.split("\n")) {
    const match = /^(crn(\d+)-\S+)/.exec(line);
    if (!match || Number(match[2]) === process.pid) continue;
    try {
      process.kill(Number(match[2]), 0);
    } catch {
      try {
        ip("netns", "del", match[1]);
      } catch {}
    }
  }
}

const live = new Set();
const children = new Set();
let dir;

function cleanup() {
  for (const child of children) {
    try {
      child.kill("SIGKILL");
    } catch {}
  }
  children.clear();
  for (const ns of live) {
    try {
      ip("netns", "del", ns);
    } catch {}
  }
  live.clear();
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
}

process.on("exit", cleanup);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(signal, () => {
    cleanup();
    process.exit(130);
  });
}

/**
 * Builds the network: `hosts` is a list of names; each gets a namespace, an address
 * `198.18.0.(10 + i)` and a port on the bridge.
 */
export function createNetwork(hosts) {
  sweepStale();
  dir ??= mkdtempSync(join(tmpdir(), "callroom-net-"));
  const bridge = `${PREFIX}br`;
  ip("netns", "add", bridge);
  live.add(bridge);
  inNs(bridge, "ip", ["link", "add", "br0", "type", "bridge"]);
  inNs(bridge, "ip", ["link", "set", "br0", "up"]);
  inNs(bridge, "nft", ["-f", "-"], BRIDGE_RULES);
  const addresses = {};
  hosts.forEach((host, i) => {
    const ns = `${PREFIX}${host}`;
    const port = `v-${host}`;
    ip("netns", "add", ns);
    live.add(ns);
    ip("link", "add", port, "netns", bridge, "type", "veth", "peer", "name", "eth0", "netns", ns);
    inNs(bridge, "ip", ["link", "set", port, "master", "br0", "up"]);
    addresses[host] = `${SUBNET}.${10 + i}`;
    inNs(ns, "ip", ["addr", "add", `${addresses[host]}/24`, "dev", "eth0"]);
    inNs(ns, "ip", ["link", "set", "eth0", "up"]);
    inNs(ns, "ip", ["link", "set", "lo", "up"]);
  });
  const nft = (...args) => inNs(bridge, "nft", args);
  const degraded = new Set();
  const portOf = (host) => {
    if (!(host in addresses)) throw new Error(`no host ${host}`);
    return `"v-${host}"`;
  };
  return {
    /** Host name → its address. */
    addresses,
    /** A folder of this run's for files (removed with the network). */
    dir,
    /** The namespace of `host`. */
    ns: (host) => `${PREFIX}${host}`,
    /** Runs `program args…` inside `host`'s namespace; resolves to its ChildProcess. */
    spawn(host, program, args, options = {}) {
      const child = spawn("ip", ["netns", "exec", `${PREFIX}${host}`, program, ...args], options);
      children.add(child);
      child.once("exit", () => children.delete(child));
      return child;
    },
    /** An executable that runs `program` inside `host`'s namespace (for Playwright). */
    wrapper(host, program) {
      const path = join(dir, `${host}-${program.split("/").pop()}`);
      writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${PREFIX}${host} ${program} "$@"\n`);
      chmodSync(path, 0o755);
      return path;
    },
    /** Drops everything to and from `host` at the bridge. */
    cut(host) {
      nft("add", "element", "bridge", "net", "cut", `{ ${portOf(host)} }`);
    },
    /** Undoes `cut`. */
    restore(host) {
      nft("delete", "element", "bridge", "net", "cut", `{ ${portOf(host)} }`);
    },
    /** Drops everything between `a` and `b` (both directions); the rest still flows. */
    block(a, b) {
      nft("add", "element", "bridge", "net", "blocked", `{ ${portOf(a)} . ${portOf(b)}, ${portOf(b)} . ${portOf(a)} }`);
    },
    /** Undoes `block`. */
    unblock(a, b) {
      nft("delete", "element", "bridge", "net", "blocked", `{ ${portOf(a)} . ${portOf(b)}, ${portOf(b)} . ${portOf(a)} }`);
    },
    /**
     * Degrades `host`'s link in both directions: `lossPercent` of packets dropped at random,
     * and a token bucket of `rateKbit` whose queue holds up to `queueMs` (so a link filled past
     * its rate also gets that much delay each way).
     */
    degrade(host, { lossPercent = 0, rateKbit, queueMs = 100 }) {
      degraded.add(host);
      if (lossPercent > 0) {
        for (const dir of ["iifname", "oifname"]) {
          nft("add", "rule", "bridge", "net", "impair", dir, portOf(host), "numgen", "random", "mod", "100", "<", String(lossPercent), "drop");
        }
      }
      if (rateKbit) {
        const tbf = ["root", "tbf", "rate", `${rateKbit}kbit`, "burst", "4kb", "latency", `${queueMs}ms`];
        inNs(bridge, "tc", ["qdisc", "replace", "dev", `v-${host}`, ...tbf]);
        inNs(`${PREFIX}${host}`, "tc", ["qdisc", "replace", "dev", "eth0", ...tbf]);
      }
    },
    /** Undoes every `degrade`. */
    heal() {
      nft("flush", "chain", "bridge", "net", "impair");
      for (const host of degraded) {
        for (const [ns, dev] of [[bridge, `v-${host}`], [`${PREFIX}${host}`, "eth0"]]) {
          try {
            inNs(ns, "tc", ["qdisc", "del", "dev", dev, "root"]);
          } catch {}
        }
      }
      degraded.clear();
    },
    /** Deletes everything this network made (also done on exit). */
    destroy: cleanup,
  };
}

const BRIDGE_RULES = `
table bridge net {
  set cut { type ifname; }
  set blocked { type ifname . ifname; }
  chain impair {}
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname @cut drop
    oifname @cut drop
    iifname . oifname @blocked drop
    jump impair
  }
}
`;
