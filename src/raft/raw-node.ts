/**
 * RawNode: the application's handle on one Raft group. It turns the core's
 * accumulated output into Ready batches and applies their acknowledgement.
 * One Ready is outstanding at a time; the core keeps stepping meanwhile.
 */
import { assert } from "../lib/assert.js";
import type { GroupId, LogIndex, NodeId, Term } from "../lib/ids.js";
import { Raft } from "./raft.js";
import { confStateFromConfig } from "./progress.js";
import {
  MessageType, Role,
  type ConfChange, type ConfState, type Entry, type HardState, type Message, type ProposeResult, type RaftConfig,
  type RaftNode, type RaftStatus, type ReadIndexResult, type Ready, type SoftState,
} from "./types.js";

const COMMITTED_BYTES_PER_READY_MAX = 64 * 1024 * 1024;

/** Message types that only the node itself may produce: one arriving from the network is dropped. */
const LOCAL_ONLY = new Set<MessageType>([
  MessageType.Hup, MessageType.Beat, MessageType.Unreachable, MessageType.SnapStatus, MessageType.CheckQuorum,
]);

interface InFlight {
  readonly hardState: HardState | null;
  readonly lastEntry: { index: LogIndex; term: Term } | null;
  readonly snapshotIndex: LogIndex | null;
  readonly appliedIndex: LogIndex | null;
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export class RawNode implements RaftNode {
  private readonly raft: Raft;
  private previousSoft: SoftState;
  private previousHard: HardState;
  private inFlight: InFlight | null = null;
  /** The latest snapshot message that arrived while a Ready was outstanding. */
  private deferredSnapshot: Message | null = null;
  /** Messages from the network that named a local-only type (a peer bug or garbage). */
  droppedLocalMessages = 0;

  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.previousSoft = this.softState();
    this.previousHard = this.hardState();
  }

  get id(): NodeId {
    return this.raft.id;
  }

  get group(): GroupId {
    return this.raft.group;
  }

  private softState(): SoftState {
    return { leader: this.raft.leader, role: this.raft.role };
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }

  tick(): void {
    this.raft.tick();
  }

  step(message: Message): void {
    if (LOCAL_ONLY.has(message.type)) {
      this.droppedLocalMessages++;
      return;
    }
    if (message.type === MessageType.Snap && this.inFlight !== null) {
      // The application is applying entries (maybe conf changes) handed out below the snapshot:
      // restoring now would let it apply an older membership on top of the snapshot's. Wait for advance().
      this.deferredSnapshot = message;
      return;
    }
    this.raft.step(message);
  }

  propose(data: Uint8Array): ProposeResult {
    return this.raft.propose(data);
  }

  proposeOrForward(data: Uint8Array): ProposeResult {
    return this.raft.proposeOrForward(data);
  }

  proposeConfChangeOrForward(change: ConfChange): ProposeResult {
    return this.raft.proposeConfChangeOrForward(change);
  }

  proposeConfChange(change: ConfChange): ProposeResult {
    return this.raft.proposeConfChange(change);
  }

  readIndex(context: Uint8Array): ReadIndexResult {
    return this.raft.readIndex(context);
  }

  transferLeadership(to: NodeId): void {
    this.raft.transferLeadership(to);
  }

  campaign(): void {
    this.raft.step(this.local(MessageType.Hup, this.raft.id, false));
  }

  applyConfChange(change: ConfChange): ConfState {
    return this.raft.applyConfChange(change);
  }

  reportUnreachable(peer: NodeId): void {
    this.raft.step(this.local(MessageType.Unreachable, peer, false));
  }

  reportSnapshot(peer: NodeId, ok: boolean): void {
    this.raft.step(this.local(MessageType.SnapStatus, peer, !ok));
  }

  private local(type: MessageType, from: NodeId, reject: boolean): Message {
    return {
      type, group: this.raft.group, to: this.raft.id, from, term: 0, logTerm: 0, index: 0, entries: [],
      commit: 0, snapshot: null, reject, rejectHint: 0, context: new Uint8Array(0),
    };
  }

  hasReady(): boolean {
    if (this.inFlight) return false;
    const raft = this.raft;
    const soft = this.softState();
    return (
      soft.leader !== this.previousSoft.leader || soft.role !== this.previousSoft.role ||
      !sameHardState(this.hardState(), this.previousHard) ||
      raft.log.unstable.entries.length > 0 || raft.log.unstable.snapshot !== null ||
      raft.messages.length > 0 || raft.messagesAfterPersist.length > 0 || raft.readStates.length > 0 ||
      raft.log.hasNextCommittedEntries()
    );
  }

  ready(): Ready {
    assert(this.inFlight === null, "ready() called again before advance()");
    const raft = this.raft;
    const soft = this.softState();
    const hard = this.hardState();
    const softChanged = soft.leader !== this.previousSoft.leader || soft.role !== this.previousSoft.role;
    const hardChanged = !sameHardState(hard, this.previousHard);
    const entries: readonly Entry[] = raft.log.unstable.entries.slice();
    const snapshot = raft.log.unstable.snapshot;
    const committedEntries = raft.log.nextCommittedEntries(COMMITTED_BYTES_PER_READY_MAX);
    const ready: Ready = {
      softState: softChanged ? soft : null,
      hardState: hardChanged ? hard : null,
      entries,
      snapshot,
      committedEntries,
      messages: raft.messages,
      messagesAfterPersist: raft.messagesAfterPersist,
      readStates: raft.readStates,
      mustSync: entries.length > 0 || hard.term !== this.previousHard.term || hard.vote !== this.previousHard.vote,
    };
    raft.messages = [];
    raft.messagesAfterPersist = [];
    raft.readStates = [];
    raft.reduceUncommitted(committedEntries);
    if (softChanged) this.previousSoft = soft;
    if (hardChanged) this.previousHard = hard;
    const last = entries.length > 0 ? entries[entries.length - 1] : null;
    this.inFlight = {
      hardState: hardChanged ? hard : null,
      lastEntry: last ? { index: last.index, term: last.term } : null,
      snapshotIndex: snapshot ? snapshot.metadata.index : null,
      appliedIndex: committedEntries.length > 0 ? committedEntries[committedEntries.length - 1].index : null,
    };
    return ready;
  }

  advance(): void {
    const done = this.inFlight;
    assert(done !== null, "advance() without an outstanding ready()");
    this.inFlight = null;
    const raft = this.raft;
    if (done.snapshotIndex !== null) {
      raft.log.stableSnapTo(done.snapshotIndex);
      if (done.snapshotIndex > raft.log.applied) raft.log.applied = done.snapshotIndex;
    }
    if (done.lastEntry !== null && raft.log.stableTo(done.lastEntry.index, done.lastEntry.term)) {
      raft.selfPersisted(done.lastEntry.index);
    }
    if (done.hardState !== null && done.hardState.vote === raft.id) raft.selfVotePersisted(done.hardState.term);
    if (done.appliedIndex !== null && done.appliedIndex > raft.log.applied) raft.log.appliedTo(done.appliedIndex);
    raft.maybeAutoLeave();
    raft.campaignIfTransferPending();
    if (this.deferredSnapshot) {
      const message = this.deferredSnapshot;
      this.deferredSnapshot = null;
      raft.step(message);
    }
  }

  status(): RaftStatus {
    const raft = this.raft;
    const progress = new Map<NodeId, { match: LogIndex; next: LogIndex; state: "probe" | "replicate" | "snapshot"; learner: boolean }>();
    if (raft.role === Role.Leader) {
      for (const [id, entry] of raft.tracker.progress) progress.set(id, { match: entry.match, next: entry.next, state: entry.state, learner: entry.isLearner });
    }
    return {
      id: raft.id,
      group: raft.group,
      term: raft.term,
      vote: raft.vote,
      commit: raft.log.committed,
      applied: raft.log.applied,
      lastIndex: raft.log.lastIndex(),
      role: raft.role,
      leader: raft.leader,
      leadTransferee: raft.leadTransferee,
      config: confStateFromConfig(raft.tracker.config),
      progress,
    };
  }
}
