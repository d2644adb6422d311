/**
 * A tiny synchronous cluster for unit tests of the core: perfect delivery
 * unless links are cut, persistence completes at once, state machines are
 * lists of applied entries. (The seeded simulator in src/sim/ is the real
 * adversary; this one keeps unit tests short and readable.)
 */
import { createPrng } from "../lib/prng.js";
import { groupId, nodeId, type NodeId } from "../lib/ids.js";
import { MemoryStorage } from "./memory-storage.js";
import { RawNode } from "./raw-node.js";
import { decodeConfChange } from "./conf-change.js";
import { EntryType, type ConfState, type Entry, type Message, type RaftConfig, type ReadState } from "./types.js";
import { confState } from "./util.js";

export interface TestMember {
  node: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  reads: ReadState[];
  confState: ConfState;
}

export class TestCluster {
  readonly members = new Map<NodeId, TestMember>();
  private readonly cut = new Set<string>();
  private queue: Message[] = [];

  constructor(ids: number[], private readonly options: Partial<RaftConfig> = {}, learners: number[] = []) {
    const initial = confState(ids, learners);
    for (const id of [...ids, ...learners]) {
      const storage = new MemoryStorage();
      storage.bootstrap(initial);
      this.start(nodeId(id), storage, 0);
    }
    this.stabilize();
  }

  /** A new, empty member that learns everything from the leader. */
  add(id: number): TestMember {
    return this.start(nodeId(id), new MemoryStorage(), 0);
  }

  private start(id: NodeId, storage: MemoryStorage, applied: number): TestMember {
    const node = new RawNode({
      id, group: groupId(0), electionTicks: 10, heartbeatTicks: 1, storage, applied,
      random: createPrng(Number(id)), preVote: true, checkQuorum: true, ...this.options,
    });
    const member: TestMember = { node, storage, applied: [], reads: [], confState: storage.initialState().confState };
    this.members.set(id, member);
    return member;
  }

  member(id: number): TestMember {
    const member = this.members.get(nodeId(id));
    if (!member) throw new Error(`no member ${id}`);
    return member;
  }

  isolate(id: number): void {
    for (const other of this.members.keys()) {
      if (other === nodeId(id)) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  /** Process every Ready and deliver every message until nothing moves. */
  stabilize(roundsMax = 1000): void {
    for (let round = 0; round < roundsMax; round++) {
      let moved = false;
      for (const member of this.members.values()) {
        if (!member.node.hasReady()) continue;
        moved = true;
        const ready = member.node.ready();
        this.queue.push(...ready.messages);
        if (ready.snapshot) {
          member.storage.applySnapshot(ready.snapshot);
          member.confState = ready.snapshot.metadata.confState;
        }
        member.storage.append(ready.entries);
        if (ready.hardState) member.storage.setHardState(ready.hardState);
        this.queue.push(...ready.messagesAfterPersist);
        for (const entry of ready.committedEntries) {
          member.applied.push(entry);
          if (entry.type === EntryType.ConfChange) member.confState = member.node.applyConfChange(decodeConfChange(entry.data));
        }
        member.reads.push(...ready.readStates);
        member.node.advance();
      }
      const pending = this.queue;
      this.queue = [];
      for (const message of pending) {
        moved = true;
        if (this.cut.has(`${message.from}>${message.to}`)) continue;
        this.members.get(message.to)?.node.step(message);
      }
      if (!moved) return;
    }
    throw new Error("cluster did not stabilize");
  }

  tickAll(ticks: number): void {
    for (let i = 0; i < ticks; i++) {
      for (const member of this.members.values()) member.node.tick();
      this.stabilize();
    }
  }

  leader(): NodeId | undefined {
    for (const [id, member] of this.members) if (member.node.status().role === 2) return id;
    return undefined;
  }

  appliedData(id: number): string[] {
    return this.member(id).applied.filter((entry) => entry.type === EntryType.Normal && entry.data.length > 0).map((entry) => new TextDecoder().decode(entry.data));
  }
}
