/**
 * A harness for process-level tests: a cluster of real `cairn start` child
 * processes running the compiled server from dist/, on free loopback ports
 * and temporary data directories. It finds the leader through each member's
 * own Status RPC, kills members (SIGKILL or SIGTERM), restarts them on the
 * same data directory and ports, and always removes everything on stop().
 *
 * One cluster at a time, also across vitest's parallel workers (a lock
 * directory in the temp dir), so a loaded 2-core CI machine never hosts two
 * clusters competing for the CPU.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { noop } from "cockatiel";
import { Etcd3, type IStatusResponse } from "etcd3";
import { assert } from "../../src/lib/assert.js";

const REPOSITORY = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const SERVER_MAIN = join(REPOSITORY, "dist/src/cli/main.js");
/** Log lines kept per member (older ones are dropped): enough to show what led to a failure. */
const LOG_LINES_KEPT_MAX = 5000;
const POLL_INTERVAL_MS = 50;
const STATUS_DEADLINE_MS = 1000;
/** A member that ignores SIGTERM this long is killed; the caller sees the signal in the exit. */
const GRACEFUL_EXIT_WAIT_MS = 15_000;
const BUILD_TIMEOUT_MS = 240_000;
/** tsc exit code 2: diagnostics were reported, yet the JavaScript was emitted. */
const TSC_EMITTED_WITH_DIAGNOSTICS = 2;

export class ClusterError extends Error {
  override name = "ClusterError";
}

function newestModificationMs(directory: string): number {
  let newest = 0;
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestModificationMs(path));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Compiles the project into dist/ when the server there is missing or older
 * than a source file. `npm test` only type-checks, so the process tests must
 * build what they run; once built, later calls find dist/ current.
 */
export function ensureBuilt(): void {
  const builtMs = existsSync(SERVER_MAIN) ? statSync(SERVER_MAIN).mtimeMs : 0;
  if (builtMs > newestModificationMs(join(REPOSITORY, "src"))) return;
  const compiler = join(REPOSITORY, "node_modules/typescript/bin/tsc");
  const result = spawnSync(process.execPath, [compiler, "-p", join(REPOSITORY, "tsconfig.json")], {
    cwd: REPOSITORY, encoding: "utf8", timeout: BUILD_TIMEOUT_MS,
  });
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`;
  // Type errors elsewhere in the tree fail `npm run typecheck`; the server they did not stop from compiling can still be tested.
  if (result.status === TSC_EMITTED_WITH_DIAGNOSTICS && existsSync(SERVER_MAIN)) {
    process.stderr.write(`integration tests: tsc reported diagnostics but emitted dist/:\n${output.slice(0, 4000)}\n`);
    return;
  }
  if (result.status !== 0) throw new ClusterError(`building dist/ failed (tsc exit ${String(result.status)}, signal ${String(result.signal)}):\n${output.slice(0, 8000)}`);
}

const portsHanded = new Set<number>();

/** A port nothing listens on now, never handed out twice by this process. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = await new Promise<number>((resolvePort, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        const chosen = typeof address === "object" && address !== null ? address.port : 0;
        server.close(() => resolvePort(chosen));
      });
    });
    if (!portsHanded.has(port)) {
      portsHanded.add(port);
      return port;
    }
  }
  throw new ClusterError("no free port after 100 attempts");
}

export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface LogLine {
  readonly level: number;
  readonly message: string;
  readonly raw: string;
}

export class Member {
  process: ChildProcess | null = null;
  exited: Promise<ProcessExit> = Promise.resolve({ code: null, signal: null });
  /** Decimal member id (as etcd clients print it), learned from the first Status answer. */
  memberId = "";
  readonly logs: LogLine[] = [];
  private statusClient: Etcd3 | null = null;

  constructor(
    readonly name: string,
    readonly dataDir: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly metricsPort: number,
  ) {}

  get clientUrl(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  get endpoint(): string {
    return `127.0.0.1:${this.clientPort}`;
  }

  get peerUrl(): string {
    return `http://127.0.0.1:${this.peerPort}`;
  }

  get metricsUrl(): string {
    return `http://127.0.0.1:${this.metricsPort}`;
  }

  get running(): boolean {
    return this.process !== null && this.process.exitCode === null && this.process.signalCode === null;
  }

  /** This member's own view (Status answers locally, never forwarded). */
  async status(): Promise<IStatusResponse> {
    this.statusClient ??= new Etcd3({ hosts: this.clientUrl, dialTimeout: STATUS_DEADLINE_MS, faultHandling: { host: () => noop, global: noop } });
    const status = await this.statusClient.maintenance.status({ deadline: Date.now() + STATUS_DEADLINE_MS });
    this.memberId = status.header.member_id;
    return status;
  }

  /** Drops the cached client: after a restart a fresh channel connects at once instead of waiting out gRPC's reconnect backoff. */
  closeStatusClient(): void {
    this.statusClient?.close();
    this.statusClient = null;
  }

  record(text: string): void {
    let line: LogLine;
    try {
      const parsed = JSON.parse(text) as { level?: number; msg?: string };
      line = { level: parsed.level ?? 0, message: parsed.msg ?? text, raw: text };
    } catch {
      line = { level: 0, message: text, raw: text };
    }
    this.logs.push(line);
    if (this.logs.length > LOG_LINES_KEPT_MAX) this.logs.splice(0, this.logs.length - LOG_LINES_KEPT_MAX);
  }
}

export interface ClusterOptions {
  readonly size?: number;
  readonly heartbeatIntervalMs?: number;
  readonly electionTimeoutMs?: number;
  /** Extra `cairn start` flags for every member, e.g. ["--max-txn-ops", "8"]. */
  readonly flags?: readonly string[];
  readonly metrics?: boolean;
  /** More client listeners for a member beside its plaintext one (e.g. an https:// URL), by member name. */
  readonly extraListenClientUrls?: (name: string) => readonly string[];
  /** How long to wait for another test cluster to stop; keep it below the calling hook's timeout. */
  readonly lockWaitMsMax?: number;
  readonly leaderWaitMsMax?: number;
  /** Runs once the members' ports and data directories are chosen, before any starts (e.g. to restore their data directories). */
  readonly prepare?: (cluster: Cluster) => Promise<void>;
}

const DEFAULT_LOCK_WAIT_MS_MAX = 240_000;
const DEFAULT_LEADER_WAIT_MS_MAX = 30_000;

export interface LeaderView {
  readonly leader: Member;
  readonly term: number;
}

const liveClusters = new Set<Cluster>();
// A worker that dies without running afterAll must not leave servers behind.
process.once("exit", () => {
  for (const cluster of liveClusters) cluster.killAllNow();
  releaseClusterLock();
});

/**
 * One cluster at a time across processes too: vitest runs test files in
 * parallel workers, and two clusters on a 2-core machine would each slow the
 * other into spurious elections. The lock is a directory (mkdir is atomic)
 * holding its owner's pid; a lock whose owner died is taken over.
 */
const CLUSTER_LOCK = join(tmpdir(), "cairn-integration-cluster.lock");
let holdingClusterLock = false;

function lockOwner(): number | null {
  try {
    return Number(readFileSync(join(CLUSTER_LOCK, "owner"), "utf8"));
  } catch {
    return null;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export async function acquireClusterLock(waitMsMax: number): Promise<void> {
  const deadline = Date.now() + waitMsMax;
  let ownerMissingSince: number | null = null;
  while (Date.now() < deadline) {
    try {
      mkdirSync(CLUSTER_LOCK);
      writeFileSync(join(CLUSTER_LOCK, "owner"), String(process.pid));
      holdingClusterLock = true;
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const owner = lockOwner();
    // Between another process's mkdir and its write the owner is briefly unknown; only a long absence means it died there.
    ownerMissingSince = owner === null ? (ownerMissingSince ?? Date.now()) : null;
    const stale = owner === null ? Date.now() - (ownerMissingSince ?? Date.now()) > 5000 : !processAlive(owner);
    if (stale) rmSync(CLUSTER_LOCK, { recursive: true, force: true });
    else await pause(200);
  }
  throw new ClusterError(`another test cluster held ${CLUSTER_LOCK} for ${waitMsMax} ms (owner pid ${String(lockOwner())})`);
}

export function releaseClusterLock(): void {
  if (!holdingClusterLock) return;
  holdingClusterLock = false;
  if (lockOwner() === process.pid) rmSync(CLUSTER_LOCK, { recursive: true, force: true });
}

function pause(milliseconds: number): Promise<void> {
  return new Promise((resolvePause) => setTimeout(resolvePause, milliseconds));
}

export class Cluster {
  readonly heartbeatIntervalMs: number;
  readonly electionTimeoutMs: number;
  private readonly clients: Etcd3[] = [];
  private stopped = false;

  private constructor(
    readonly root: string,
    readonly members: readonly Member[],
    private readonly options: ClusterOptions,
  ) {
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 50;
    this.electionTimeoutMs = options.electionTimeoutMs ?? 500;
  }

  /** Starts every member and waits until they all name the same leader. */
  static async start(options: ClusterOptions = {}): Promise<Cluster> {
    assert(liveClusters.size === 0, "one cluster at a time: stop the previous one first");
    await acquireClusterLock(options.lockWaitMsMax ?? DEFAULT_LOCK_WAIT_MS_MAX);
    let root: string | null = null;
    let cluster: Cluster | null = null;
    try {
      // Under the lock, so parallel test files never compile into dist/ at once; later starts find it current.
      ensureBuilt();
      root = mkdtempSync(join(tmpdir(), "cairn-integration-"));
      const members: Member[] = [];
      for (let position = 1; position <= (options.size ?? 3); position++) {
        const name = `n${position}`;
        members.push(new Member(name, join(root, name), await freePort(), await freePort(), await freePort()));
      }
      cluster = new Cluster(root, members, options);
      liveClusters.add(cluster);
      await options.prepare?.(cluster);
      for (const member of members) cluster.spawn(member);
      await cluster.waitForLeader(options.leaderWaitMsMax ?? DEFAULT_LEADER_WAIT_MS_MAX);
      return cluster;
    } catch (error) {
      if (cluster) {
        process.stderr.write(cluster.logTail());
        await cluster.stop();
      } else {
        if (root !== null) rmSync(root, { recursive: true, force: true });
        releaseClusterLock();
      }
      throw error;
    }
  }

  member(name: string): Member {
    const found = this.members.find((member) => member.name === name);
    assert(found, `no member named ${name}`);
    return found;
  }

  endpoints(members: readonly Member[] = this.members): string[] {
    return members.map((member) => member.endpoint);
  }

  /** An etcd3 client over the given members (all by default), closed by stop(). */
  client(options: { members?: readonly Member[]; retries?: boolean } = {}): Etcd3 {
    const hosts = (options.members ?? this.members).map((member) => member.clientUrl);
    const client = options.retries === true
      ? new Etcd3({ hosts, dialTimeout: 2000 })
      : new Etcd3({ hosts, dialTimeout: 2000, faultHandling: { host: () => noop, global: noop } });
    this.clients.push(client);
    return client;
  }

  /** The --initial-cluster value every member starts with. */
  get initialCluster(): string {
    return this.members.map((other) => `${other.name}=${other.peerUrl}`).join(",");
  }

  get initialClusterToken(): string {
    return `integration-${process.pid}`;
  }

  private startArguments(member: Member, extraFlags: readonly string[]): string[] {
    const flags = [
      SERVER_MAIN, "start",
      "--name", member.name,
      "--data-dir", member.dataDir,
      "--listen-client-urls", [member.clientUrl, ...(this.options.extraListenClientUrls?.(member.name) ?? [])].join(","),
      "--advertise-client-urls", member.clientUrl,
      "--listen-peer-urls", member.peerUrl,
      "--initial-advertise-peer-urls", member.peerUrl,
      "--initial-cluster", this.initialCluster,
      "--initial-cluster-state", "new",
      "--initial-cluster-token", this.initialClusterToken,
      "--heartbeat-interval", String(this.heartbeatIntervalMs),
      "--election-timeout", String(this.electionTimeoutMs),
    ];
    if (this.options.metrics === true) flags.push("--listen-metrics-urls", member.metricsUrl);
    return [...flags, ...(this.options.flags ?? []), ...extraFlags];
  }

  private spawn(member: Member, extraFlags: readonly string[] = []): void {
    assert(!member.running, `${member.name} is already running`);
    member.record(`--- harness: starting ${member.name} ---`);
    const child = spawn(process.execPath, this.startArguments(member, extraFlags), { stdio: ["ignore", "pipe", "pipe"] });
    member.process = child;
    member.exited = new Promise((resolveExit) => child.once("exit", (code, signal) => resolveExit({ code, signal })));
    for (const stream of [child.stdout, child.stderr]) {
      let partial = "";
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) if (line !== "") member.record(line);
      });
      stream?.on("end", () => {
        if (partial !== "") member.record(partial);
        partial = "";
      });
    }
  }

  /** Kills a member with the signal and waits for it to exit (SIGKILL after GRACEFUL_EXIT_WAIT_MS). */
  async kill(member: Member, signal: NodeJS.Signals = "SIGKILL"): Promise<ProcessExit> {
    member.closeStatusClient();
    if (!member.running) return member.exited;
    member.record(`--- harness: sending ${signal} to ${member.name} ---`);
    member.process?.kill(signal);
    const timer = setTimeout(() => member.process?.kill("SIGKILL"), GRACEFUL_EXIT_WAIT_MS);
    try {
      return await member.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts a stopped member again on its own data directory and ports (with extra flags, e.g. --force-new-cluster, this time only). */
  restart(member: Member, extraFlags: readonly string[] = []): void {
    member.closeStatusClient();
    this.spawn(member, extraFlags);
  }

  /**
   * Waits until every running member names the same leader, that leader is
   * running and says it leads. Throws with the members' logs after timeoutMs.
   */
  async waitForLeader(timeoutMs: number, options: { notName?: string } = {}): Promise<LeaderView> {
    const deadline = Date.now() + timeoutMs;
    let lastProblem = "no answer yet";
    while (Date.now() < deadline) {
      const running = this.members.filter((member) => member.running);
      const answers = await Promise.all(running.map(async (member) => {
        try {
          return { member, status: await member.status() };
        } catch (error) {
          return { member, error: error as Error };
        }
      }));
      const failed = answers.find((answer) => answer.error !== undefined);
      if (failed) {
        lastProblem = `${failed.member.name}: ${failed.error?.message}`;
      } else {
        const leaders = new Set(answers.map((answer) => answer.status?.leader ?? "0"));
        const [leaderId] = leaders;
        const leader = answers.find((answer) => answer.status?.header.member_id === leaderId);
        if (leaders.size !== 1 || leaderId === "0") lastProblem = `members name leaders ${[...leaders].join(", ")}`;
        else if (!leader) lastProblem = `leader ${leaderId} is not a running member`;
        else if (leader.member.name === options.notName) lastProblem = `${leader.member.name} still leads`;
        else return { leader: leader.member, term: Number(leader.status?.raftTerm) };
      }
      await pause(POLL_INTERVAL_MS);
    }
    throw new ClusterError(`no leader within ${timeoutMs} ms (${lastProblem})\n${this.logTail()}`);
  }

  /** The last lines of every member's log, for a failure message. */
  logTail(linesPerMember = 25): string {
    return this.members.map((member) => [
      `----- ${member.name} (${member.running ? "running" : "stopped"}), last ${linesPerMember} log lines -----`,
      ...member.logs.slice(-linesPerMember).map((line) => line.raw),
    ].join("\n")).join("\n") + "\n";
  }

  /** Writes every member's kept log lines to <directory>/<name>.log and returns the directory. */
  saveLogs(directory: string): string {
    mkdirSync(directory, { recursive: true });
    for (const member of this.members) writeFileSync(join(directory, `${member.name}.log`), member.logs.map((line) => line.raw).join("\n") + "\n");
    return directory;
  }

  /** Synchronous last resort for process exit: no waiting, no cleanup. */
  killAllNow(): void {
    for (const member of this.members) if (member.running) member.process?.kill("SIGKILL");
  }

  /** Kills every member, closes the clients and removes the data directories. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const client of this.clients) client.close();
    await Promise.all(this.members.map((member) => this.kill(member, "SIGKILL")));
    rmSync(this.root, { recursive: true, force: true });
    liveClusters.delete(this);
    releaseClusterLock();
  }
}
