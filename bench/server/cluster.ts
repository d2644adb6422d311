/**
 * A 3-member cluster of Cairn or of etcd on loopback for the server
 * benchmark: fresh data directories under one temporary root, free ports,
 * member logs beside the data, leader discovery through Maintenance.Status,
 * and a stop that always kills the processes and removes the directories.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import type http2 from "node:http2";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { callUnary, connect, decodeStatusResponse, EMPTY_FRAMED_REQUEST, STATUS_PATH, type MemberStatus } from "./grpc-wire.js";

export type SystemName = "cairn" | "etcd";

export class ClusterError extends Error {
  override name = "ClusterError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

export const MEMBER_COUNT = 3;
const STATUS_TIMEOUT_MS = 2000;
const LEADER_POLL_INTERVAL_MS = 250;
const STOP_GRACE_MS = 5000;
const LOG_TAIL_LINES = 15;
const LOG_TAIL_BYTES = 64 * 1024;

export interface Member {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly logFile: string;
  readonly process: ChildProcess;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new ClusterError("the OS gave no free port"))));
    });
  });
}

async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  // Bounded: the OS hands out distinct ports almost always; a few retries cover reuse.
  for (let attempt = 0; attempt < count * 10 && ports.size < count; attempt++) ports.add(await freePort());
  if (ports.size < count) throw new ClusterError(`could not find ${count} distinct free loopback ports`);
  return [...ports];
}

function memberCommand(system: SystemName, member: { name: string; clientPort: number; peerPort: number; dataDir: string }, initialCluster: string, token: string): [string, string[]] {
  const client = `http://127.0.0.1:${member.clientPort}`;
  const peer = `http://127.0.0.1:${member.peerPort}`;
  // The same flags (etcd's names) for both; heartbeat and election timeout stay at both systems' defaults (100 ms / 1000 ms).
  const flags = [
    "--name", member.name,
    "--data-dir", member.dataDir,
    "--listen-client-urls", client,
    "--advertise-client-urls", client,
    "--listen-peer-urls", peer,
    "--initial-advertise-peer-urls", peer,
    "--initial-cluster", initialCluster,
    "--initial-cluster-state", "new",
    "--initial-cluster-token", token,
  ];
  if (system === "cairn") {
    const main = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
    return [process.execPath, [main, "start", ...flags]];
  }
  return ["etcd", flags];
}

export class Cluster {
  private stopped = false;

  private constructor(
    readonly system: SystemName,
    readonly root: string,
    readonly members: readonly Member[],
  ) {}

  /** Starts the members; their logs go to <root>/<name>.log. */
  static async start(system: SystemName, root: string): Promise<Cluster> {
    mkdirSync(root, { recursive: true });
    const ports = await freePorts(MEMBER_COUNT * 2);
    const layout = Array.from({ length: MEMBER_COUNT }, (_, index) => ({
      name: `${system}${index + 1}`,
      clientPort: ports[index * 2],
      peerPort: ports[index * 2 + 1],
      dataDir: join(root, `${system}${index + 1}`),
    }));
    const initialCluster = layout.map((member) => `${member.name}=http://127.0.0.1:${member.peerPort}`).join(",");
    const token = `bench-${system}-${process.pid}`;
    const members: Member[] = [];
    for (const member of layout) {
      const logFile = join(root, `${member.name}.log`);
      const log = openSync(logFile, "a");
      const [command, args] = memberCommand(system, member, initialCluster, token);
      const child = spawn(command, args, { stdio: ["ignore", log, log] });
      closeSync(log);
      child.on("error", () => undefined);
      members.push({ ...member, logFile, process: child });
    }
    return new Cluster(system, root, members);
  }

  pids(): number[] {
    return this.members.map((member) => {
      if (member.process.pid === undefined || member.process.exitCode !== null || member.process.signalCode !== null) {
        throw new ClusterError(`member ${member.name} is not running (exit ${member.process.exitCode ?? member.process.signalCode}); see ${member.logFile}`);
      }
      return member.process.pid;
    });
  }

  async status(member: Member): Promise<MemberStatus> {
    let session: http2.ClientHttp2Session | undefined;
    try {
      session = await connect(member.clientPort, STATUS_TIMEOUT_MS);
      const answer = await callUnary(session, STATUS_PATH, EMPTY_FRAMED_REQUEST, STATUS_TIMEOUT_MS);
      if (answer.grpcStatus !== "0" || answer.messages.length !== 1) {
        throw new ClusterError(`Status on ${member.name}: grpc status ${answer.grpcStatus} ${answer.grpcMessage}`);
      }
      return decodeStatusResponse(answer.messages[0]);
    } finally {
      session?.destroy();
    }
  }

  /**
   * Polls Status on every member until one names a leader that is itself a
   * member answering Status, within `timeoutMs`.
   */
  async waitForLeader(timeoutMs: number): Promise<{ leader: Member; status: MemberStatus }> {
    const deadline = performance.now() + timeoutMs;
    let lastProblem = "no member answered yet";
    while (performance.now() < deadline) {
      this.pids();
      const statuses = await Promise.all(this.members.map((member) => this.status(member).catch((error: Error) => {
        lastProblem = error.message;
        return undefined;
      })));
      for (const [index, status] of statuses.entries()) {
        if (status !== undefined && status.leaderId !== 0n && status.memberId === status.leaderId) {
          return { leader: this.members[index], status };
        }
      }
      if (statuses.some((status) => status !== undefined)) lastProblem = "members answer Status but none is the leader yet";
      await new Promise((resolve) => setTimeout(resolve, LEADER_POLL_INTERVAL_MS));
    }
    throw new ClusterError(`${this.system}: no leader within ${timeoutMs} ms (${lastProblem})`);
  }

  /** The last lines of each member's log, for a failure report. */
  logTails(): string {
    return this.members.map((member) => {
      let text = "";
      try {
        const bytes = readFileSync(member.logFile);
        text = bytes.subarray(Math.max(0, bytes.length - LOG_TAIL_BYTES)).toString("utf8");
      } catch (error) {
        text = `(cannot read the log: ${(error as Error).message})`;
      }
      const lines = text.trimEnd().split("\n").slice(-LOG_TAIL_LINES);
      const state = member.process.exitCode === null && member.process.signalCode === null ? "running" : `exited ${member.process.exitCode ?? member.process.signalCode}`;
      return [`--- ${member.name} (${state}), last ${lines.length} lines of ${member.logFile}:`, ...lines].join("\n");
    }).join("\n");
  }

  /** SIGTERM, then SIGKILL after a grace period; removes the data. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const exits = this.members.map((member) => new Promise<void>((resolve) => {
      if (member.process.exitCode !== null || member.process.signalCode !== null) return resolve();
      member.process.once("exit", () => resolve());
      member.process.kill("SIGTERM");
    }));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(exits), new Promise((resolve) => (timer = setTimeout(resolve, STOP_GRACE_MS)))]);
    clearTimeout(timer);
    this.killNow();
    await Promise.all(exits);
    rmSync(this.root, { recursive: true, force: true });
  }

  /** Synchronous last resort (process exit, signals): SIGKILL whatever still runs. */
  killNow(): void {
    for (const member of this.members) {
      if (member.process.exitCode === null && member.process.signalCode === null) member.process.kill("SIGKILL");
    }
  }
}
