/**
 * `cairn dev`: a local N-member cluster on loopback in one command. Each
 * member is a `cairn start` child process with its data in <data-dir>/<name>
 * and its log in <data-dir>/<name>.log; ports are the etcd defaults shifted
 * per member, or free ones when those are taken. Ctrl-C stops them all.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export interface DevOptions {
  readonly nodes: number;
  readonly dataDir: string;
  readonly basePort: number;
  readonly heartbeatIntervalMs: number;
  readonly electionTimeoutMs: number;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const server = createServer();
    server.once("error", () => resolvePort(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolvePort(true)));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

async function pickPort(preferred: number, taken: Set<number>): Promise<number> {
  if (!taken.has(preferred) && await portFree(preferred)) return preferred;
  for (;;) {
    const port = await freePort();
    if (!taken.has(port)) return port;
  }
}

export async function runDev(options: DevOptions): Promise<number> {
  if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 9) {
    process.stderr.write(`cairn dev: --nodes must be between 1 and 9, got ${options.nodes}\n`);
    return 2;
  }
  const dataDir = resolve(options.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const taken = new Set<number>();
  const members: { name: string; clientPort: number; peerPort: number; metricsPort: number }[] = [];
  for (let i = 1; i <= options.nodes; i++) {
    const offset = (i - 1) * 10000;
    const clientPort = await pickPort(options.basePort + offset, taken);
    taken.add(clientPort);
    const peerPort = await pickPort(options.basePort + 1 + offset, taken);
    taken.add(peerPort);
    const metricsPort = await pickPort(options.basePort + 2 + offset, taken);
    taken.add(metricsPort);
    members.push({ name: `node${i}`, clientPort, peerPort, metricsPort });
  }
  const initialCluster = members.map((member) => `${member.name}=http://127.0.0.1:${member.peerPort}`).join(",");
  const main = fileURLToPath(new URL("./main.js", import.meta.url));
  const children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write("\nstopping the cluster...\n");
    for (const child of children) if (child.exitCode === null) child.kill(signal);
  };
  for (const member of members) {
    const log = openSync(join(dataDir, `${member.name}.log`), "a");
    const child = spawn(process.execPath, [
      main, "start",
      "--name", member.name,
      "--data-dir", join(dataDir, member.name),
      "--listen-client-urls", `http://127.0.0.1:${member.clientPort}`,
      "--advertise-client-urls", `http://127.0.0.1:${member.clientPort}`,
      "--listen-peer-urls", `http://127.0.0.1:${member.peerPort}`,
      "--initial-advertise-peer-urls", `http://127.0.0.1:${member.peerPort}`,
      "--listen-metrics-urls", `http://127.0.0.1:${member.metricsPort}`,
      "--initial-cluster", initialCluster,
      "--initial-cluster-state", "new",
      "--initial-cluster-token", "cairn-dev",
      "--heartbeat-interval", String(options.heartbeatIntervalMs),
      "--election-timeout", String(options.electionTimeoutMs),
    ], { stdio: ["ignore", log, log] });
    children.push(child);
  }
  const endpoints = members.map((member) => `127.0.0.1:${member.clientPort}`).join(",");
  process.stdout.write([
    `Cairn: ${members.length}-member cluster on loopback, data in ${dataDir}`,
    ...members.map((member) => `  ${member.name}  client http://127.0.0.1:${member.clientPort}  peer http://127.0.0.1:${member.peerPort}  metrics http://127.0.0.1:${member.metricsPort}/metrics  log ${join(dataDir, `${member.name}.log`)}`),
    "",
    "Talk to it:",
    `  etcdctl --endpoints=${endpoints} put greeting hello`,
    `  etcdctl --endpoints=${endpoints} get greeting`,
    `  etcdctl --endpoints=${endpoints} endpoint status -w table`,
    `  npx cairn --endpoints=${endpoints} kv get greeting`,
    "Ctrl-C stops the cluster (data stays for the next start).",
    "",
  ].join("\n"));
  process.on("SIGINT", () => stopAll("SIGTERM"));
  process.on("SIGTERM", () => stopAll("SIGTERM"));
  const exits = children.map((child, position) => new Promise<number>((resolveExit) => {
    child.on("exit", (code, signal) => {
      if (!stopping) {
        process.stderr.write(`member ${members[position].name} exited (${signal ?? code}); see ${join(dataDir, `${members[position].name}.log`)}; stopping the others\n`);
        stopAll("SIGTERM");
      }
      resolveExit(code ?? 0);
    });
  }));
  const codes = await Promise.all(exits);
  return stopping && codes.every((code) => code === 0) ? 0 : 1;
}
