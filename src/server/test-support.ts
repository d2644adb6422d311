/**
 * In-process clusters of RaftGroups for runtime tests: WALs on in-memory file
 * systems, messages delivered through the event loop, and a tiny register
 * state machine ("key=value" commands) standing in for the KV store.
 */
import { createPrng } from "../lib/prng.js";
import { clusterId, groupId, nodeId, type LogIndex, type NodeId, type Term } from "../lib/ids.js";
import { bootstrapEntries, confState as makeConfState, emptyConfState, type ConfState, type Message } from "../raft/mod.js";
import { MemoryFileSystem } from "../storage/fs/mod.js";
import { Wal } from "../storage/wal/mod.js";
import { RaftGroup } from "./raft-group.js";
import type { AppliedEntry, AppliedPosition, GroupStateMachine } from "./state-machine.js";

/** key=value commands; each apply returns the previous value. Durable only as far as `durable`. */
export class RegisterMachine implements GroupStateMachine {
  values = new Map<string, string>();
  position: AppliedPosition = { index: 0, term: 0, confState: emptyConfState };

  applied(): AppliedPosition {
    return this.position;
  }

  apply(entries: readonly AppliedEntry[]): unknown[] {
    return entries.map((entry) => {
      if (entry.index <= this.position.index) return undefined;
      let result: unknown;
      let confState = this.position.confState;
      if (entry.kind === "command") {
        const [key, value] = new TextDecoder().decode(entry.command).split("=");
        result = this.values.get(key) ?? null;
        this.values.set(key, value);
      } else if (entry.kind === "conf-change") {
        confState = entry.confState;
      }
      this.position = { index: entry.index, term: entry.term, confState };
      return result;
    });
  }

  durableIndex(): Promise<LogIndex> {
    return Promise.resolve(this.position.index);
  }

  snapshot(): { position: AppliedPosition; chunks: AsyncIterable<Uint8Array> } {
    const position = this.position;
    const image = new TextEncoder().encode(JSON.stringify({ position, values: [...this.values] }, (_, value) => typeof value === "bigint" ? `${value}n` : value));
    return { position, chunks: (async function* () { yield image; })() };
  }

  async installSnapshot(chunks: AsyncIterable<Uint8Array>): Promise<boolean> {
    let text = "";
    for await (const chunk of chunks) text += new TextDecoder().decode(chunk);
    const image = JSON.parse(text, (_, value) => typeof value === "string" && /^\d+n$/.test(value) ? BigInt(value.slice(0, -1)) : value) as {
      position: AppliedPosition; values: [string, string][];
    };
    if (image.position.index <= this.position.index) return false;
    this.position = image.position;
    this.values = new Map(image.values);
    return true;
  }
}

export interface InProcessMember {
  id: NodeId;
  group: RaftGroup;
  machine: RegisterMachine;
  fileSystem: MemoryFileSystem;
  wal: Wal;
}

export class InProcessCluster {
  readonly members = new Map<NodeId, InProcessMember>();
  readonly cut = new Set<NodeId>();
  readonly errors: string[] = [];

  static async start(ids: number[], options: { snapshotCount?: number; snapshotBytes?: number } = {}): Promise<InProcessCluster> {
    const cluster = new InProcessCluster(options.snapshotCount ?? 1000, options.snapshotBytes);
    const initial = makeConfState(ids);
    for (const id of ids) await cluster.startMember(nodeId(id), initial);
    return cluster;
  }

  private constructor(private readonly snapshotCount: number, private readonly snapshotBytes?: number) {}

  async startMember(id: NodeId, bootstrap: ConfState | null, fileSystem = new MemoryFileSystem(), machine = new RegisterMachine()): Promise<InProcessMember> {
    const wal = await Wal.open({ fileSystem, directory: "/wal", clusterId: clusterId(7), nodeId: id });
    if (bootstrap && wal.lastIndex(groupId(0)) === 0) {
      const entries = bootstrapEntries(bootstrap);
      await wal.append([
        { type: "entries", group: groupId(0), entries },
        { type: "hardState", group: groupId(0), hardState: { term: 1, vote: 0n as NodeId, commit: entries.length } },
      ]);
    }
    const logger = {
      debug: () => {}, info: () => {},
      warn: () => {},
      error: (message: string) => this.errors.push(`${id}: ${message}`),
    };
    const group = await RaftGroup.open({
      memberId: id, group: groupId(0), wal, stateMachine: machine, tickMs: 10, electionTicks: 10, heartbeatTicks: 1,
      snapshotCount: this.snapshotCount, snapshotBytes: this.snapshotBytes, requestTimeoutMs: 3000, random: createPrng(Number(id)), logger,
      send: (message) => this.deliver(message),
      sendSnapshot: (message, chunks) => this.deliverSnapshot(message, chunks),
    });
    const member = { id, group, machine, fileSystem, wal };
    this.members.set(id, member);
    group.start();
    return member;
  }

  private deliver(message: Message): void {
    if (this.cut.has(message.from) || this.cut.has(message.to)) return;
    setImmediate(() => this.members.get(message.to)?.group.step(message));
  }

  private async deliverSnapshot(message: Message, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const to = this.members.get(message.to);
    if (!to || this.cut.has(message.from) || this.cut.has(message.to)) throw new Error("unreachable");
    await to.machine.installSnapshot(chunks);
    to.group.step(message);
  }

  member(id: number): InProcessMember {
    const member = this.members.get(nodeId(id));
    if (!member) throw new Error(`no member ${id}`);
    return member;
  }

  async waitForLeader(timeoutMs = 5000): Promise<InProcessMember> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      for (const member of this.members.values()) if (!this.cut.has(member.id) && member.group.isLeader()) return member;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error("no leader elected in time");
  }

  /** Stops a member as a crash would: its in-memory file system loses what was not synced. */
  async crash(id: number): Promise<{ fileSystem: MemoryFileSystem; machine: RegisterMachine }> {
    const member = this.member(id);
    member.group.stop();
    this.members.delete(member.id);
    await member.group.idle();
    member.fileSystem.crash();
    return { fileSystem: member.fileSystem, machine: member.machine };
  }

  async stop(): Promise<void> {
    for (const member of this.members.values()) {
      member.group.stop();
      await member.group.idle();
      await member.wal.close().catch(() => {});
    }
    this.members.clear();
  }
}

export function term(member: InProcessMember): Term {
  return member.group.raw.status().term;
}
