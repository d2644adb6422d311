/**
 * The cluster controller of the fault harness: `cairn start` members, each in
 * its own network namespace with its own address (see network.ts), started
 * from the compiled server in dist/. Per member: SIGKILL and restart on the
 * same data directory, SIGSTOP and SIGCONT; and through LinkControl: cuts of
 * single links in one direction, delay or loss. Logs go to one file per
 * member in the run's results folder.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "../../src/client/mod.js";
import { memberAddress, type Topology } from "./network.js";

/** The harness runs compiled (dist/test/faults/), beside the server it starts. */
const SERVER_MAIN = resolve(dirname(fileURLToPath(import.meta.url)), "../../src/cli/main.js");
export const CLIENT_PORT = 2379;
const PEER_PORT = 2380;
const STATUS_TIMEOUT_MS = 1000;
const POLL_INTERVAL_MS = 100;

export class ControllerError extends Error {
  override name = "ControllerError";
}

export interface MemberStatus {
  readonly memberId: bigint;
  readonly leader: bigint;
  readonly term: number;
}

export class FaultMember {
  process: ChildProcess | null = null;
  exited: Promise<void> = Promise.resolve();
  paused = false;
  memberId = 0n;
  /** Set while the harness itself is killing this member. */
  killing = false;
  /** Exits the harness did not cause: a crash, a failed assertion, a refusal to start. */
  readonly unexpectedExits: string[] = [];
  private statusClient: Client | null = null;

  constructor(
    readonly position: number,
    readonly namespace: string,
    readonly dataDir: string,
    readonly logFile: string,
  ) {}

  get name(): string {
    return `n${this.position}`;
  }

  get address(): string {
    return memberAddress(this.position);
  }

  get endpoint(): string {
    return `${this.address}:${CLIENT_PORT}`;
  }

  get peerUrl(): string {
    return `http://${this.address}:${PEER_PORT}`;
  }

  get running(): boolean {
    return this.process !== null && this.process.exitCode === null && this.process.signalCode === null;
  }

  async status(): Promise<MemberStatus> {
    this.statusClient ??= new Client({ endpoints: [this.endpoint], commandTimeoutMs: STATUS_TIMEOUT_MS, dialTimeoutMs: STATUS_TIMEOUT_MS, attemptsMax: 1 });
    const status = await this.statusClient.maintenance.status({ timeoutMs: STATUS_TIMEOUT_MS });
    this.memberId = status.header?.memberId ?? 0n;
    return { memberId: this.memberId, leader: status.leader, term: status.raftTerm };
  }

  closeStatusClient(): void {
    void this.statusClient?.close();
    this.statusClient = null;
  }
}

export interface ControllerOptions {
  readonly topology: Topology;
  readonly resultsDir: string;
  readonly dataRoot: string;
  readonly heartbeatIntervalMs: number;
  readonly electionTimeoutMs: number;
  /** Extra environment for every member (the test-only switches). */
  readonly memberEnvironment?: Readonly<Record<string, string>>;
  readonly log: (line: string) => void;
}

export class FaultCluster {
  readonly members: FaultMember[];

  constructor(private readonly options: ControllerOptions) {
    mkdirSync(join(options.resultsDir, "logs"), { recursive: true });
    this.members = options.topology.members.map((namespace, index) =>
      new FaultMember(index + 1, namespace, join(options.dataRoot, `n${index + 1}`), join(options.resultsDir, "logs", `n${index + 1}.log`)));
  }

  startAll(): void {
    for (const member of this.members) this.start(member);
  }

  start(member: FaultMember): void {
    if (member.running) throw new ControllerError(`${member.name} is already running`);
    const initialCluster = this.members.map((other) => `${other.name}=${other.peerUrl}`).join(",");
    const clientUrl = `http://${member.address}:${CLIENT_PORT}`;
    const args = [
      "netns", "exec", member.namespace, process.execPath, SERVER_MAIN, "start",
      "--name", member.name, "--data-dir", member.dataDir,
      "--listen-client-urls", clientUrl, "--advertise-client-urls", clientUrl,
      "--listen-peer-urls", member.peerUrl, "--initial-advertise-peer-urls", member.peerUrl,
      "--initial-cluster", initialCluster, "--initial-cluster-state", "new", "--initial-cluster-token", "cairn-faults",
      "--heartbeat-interval", String(this.options.heartbeatIntervalMs), "--election-timeout", String(this.options.electionTimeoutMs),
    ];
    const log = openSync(member.logFile, "a");
    try {
      // `ip netns exec` execs the server in place, so this child's pid is the server's and signals reach it directly.
      const child = spawn("ip", args, { stdio: ["ignore", log, log], env: { ...process.env, ...this.options.memberEnvironment } });
      member.process = child;
      member.paused = false;
      member.exited = new Promise((resolve) => child.once("exit", (code, signal) => {
        if (!member.killing) member.unexpectedExits.push(`${member.name} exited by itself (code ${String(code)}, signal ${String(signal)}); see ${member.logFile}`);
        resolve();
      }));
    } finally {
      closeSync(log);
    }
    member.closeStatusClient();
  }

  async kill(member: FaultMember): Promise<void> {
    member.closeStatusClient();
    if (!member.running) return;
    // A stopped process still dies from SIGKILL.
    member.killing = true;
    member.process?.kill("SIGKILL");
    await member.exited;
    member.killing = false;
    member.paused = false;
  }

  pause(member: FaultMember): void {
    if (!member.running || member.paused) return;
    member.process?.kill("SIGSTOP");
    member.paused = true;
  }

  resume(member: FaultMember): void {
    if (!member.running || !member.paused) return;
    member.process?.kill("SIGCONT");
    member.paused = false;
  }

  /** The member the running members agree leads, or undefined. */
  async leader(): Promise<FaultMember | undefined> {
    const answers = await Promise.all(this.members.filter((member) => member.running && !member.paused).map(async (member) => {
      try {
        return await member.status();
      } catch {
        return undefined;
      }
    }));
    const counts = new Map<bigint, number>();
    for (const answer of answers) if (answer !== undefined && answer.leader !== 0n) counts.set(answer.leader, (counts.get(answer.leader) ?? 0) + 1);
    const [best] = [...counts].sort((a, b) => b[1] - a[1]);
    if (best === undefined) return undefined;
    return this.members.find((member) => member.memberId === best[0]);
  }

  /** Waits until a majority of members names one leader; throws after timeoutMs. */
  async waitForLeader(timeoutMs: number): Promise<FaultMember> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const leader = await this.leader();
      if (leader !== undefined) return leader;
      await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    }
    throw new ControllerError(`no leader within ${timeoutMs} ms`);
  }

  async stopAll(): Promise<void> {
    for (const member of this.members) this.resume(member);
    await Promise.all(this.members.map((member) => this.kill(member)));
  }
}
