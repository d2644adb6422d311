/**
 * One Raft group hosted by a node: it ticks the core, runs the Ready loop in
 * the order the Raft rules require (send what may go early; persist through
 * the WAL; send what promised durability; apply; serve reads; advance),
 * matches applied commands to waiting callers, serves linearizable reads
 * through ReadIndex, and compacts the log once the state machine is durable.
 */
import { assert } from "../lib/assert.js";
import type { GroupId, LogIndex, NodeId, Term } from "../lib/ids.js";
import type { Prng } from "../lib/prng.js";
import {
  applyChange, ConfChangeTransition, ConfChangeType, decodeConfChange, encodeConfChange, EntryType, InvalidConfChangeError, MessageType, RawNode, Role,
  type ConfChange, type ConfState, type Entry, type Message, type RaftFaults, type RaftLogger, type Ready, type SoftState,
} from "../raft/mod.js";
import type { Wal, WalRecord } from "../storage/wal/mod.js";
import { WalLogStorage } from "../storage/wal/mod.js";
import { RequestIdGenerator, unwrapCommand, wrapCommand } from "./envelope.js";
import { NoLeaderError, ProposalRefusedError, RequestTimeoutError, StoppedError } from "./errors.js";
import type { AppliedEntry, GroupStateMachine } from "./state-machine.js";

export interface GroupOptions {
  readonly memberId: NodeId;
  readonly group: GroupId;
  readonly wal: Wal;
  readonly stateMachine: GroupStateMachine;
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Applied entries between log compactions. */
  readonly snapshotCount: number;
  /** Applied bytes of entry data between log compactions (whichever of the two comes first). */
  readonly snapshotBytes?: number;
  /** How long a proposal or read waits before its outcome is reported unknown. */
  readonly requestTimeoutMs: number;
  readonly random: Prng;
  readonly logger: RaftLogger & { error(message: string): void };
  /** Raft messages to peers (never waits; the transport drops when full). */
  readonly send: (message: Message) => void;
  /** Stream the state machine's image to a follower; resolve when installed there. */
  readonly sendSnapshot: (message: Message, chunks: AsyncIterable<Uint8Array>) => Promise<void>;
  /** Called whenever leadership or role changes. */
  readonly onSoftState?: (state: SoftState, term: Term) => void;
  /** Called after each applied conf change with the new membership. */
  readonly onConfChange?: (entry: AppliedEntry & { kind: "conf-change" }) => void;
  /** The Ready loop failed (a WAL write failed, an invariant broke): continuing could lose data. */
  readonly onFatal?: (error: Error) => void;
  /** Observes WAL persist latency (for metrics and slow-disk warnings). */
  readonly onPersist?: (milliseconds: number, entries: number) => void;
  /** --force-new-cluster: before starting, make this member the only one (see forceNewCluster). */
  readonly forceNewCluster?: boolean;
  /** TEST-ONLY planted bugs (test-switches.ts); never set in production. */
  readonly raftFaults?: RaftFaults;
  /** TEST-ONLY planted bug: linearizable reads skip the ReadIndex barrier (test-switches.ts). */
  readonly plantedStaleReads?: boolean;
  /** TEST-ONLY planted bug: on the leader, the Ready loop sends, applies and answers without waiting for the WAL (test-switches.ts). */
  readonly plantedSkipPersistWait?: boolean;
}

interface Waiter {
  resolve(result: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

interface ReadRound {
  readonly context: Uint8Array;
  readonly startedMs: number;
  readonly waiters: Waiter[];
  index: LogIndex | null;
}

const EMPTY = new Uint8Array(0);
const SLOW_PERSIST_MS = 100;
/** Compact the log at least every 64 MiB of applied entry data, however few entries that is. */
export const SNAPSHOT_BYTES_DEFAULT = 64 * 1024 * 1024;

export class RaftGroup {
  readonly raw: RawNode;
  private readonly storage: WalLogStorage;
  private readonly ids: RequestIdGenerator;
  private readonly proposals = new Map<bigint, Waiter>();
  /** Reads waiting for the next ReadIndex round to start. */
  private readsQueued: Waiter[] = [];
  private readonly readRounds = new Map<string, ReadRound>();
  private readCounter = 0n;
  private ticker: NodeJS.Timeout | null = null;
  private processing = false;
  private paused = false;
  private scheduled = false;
  private stopped = false;
  private compacting = false;
  private lastCompactIndex: LogIndex;
  private confState: ConfState;
  private confStateIndex: LogIndex;
  private applyWaiters: Array<{ index: LogIndex; resolve: () => void }> = [];
  private predicateWaiters: Array<{ predicate: () => boolean; resolve: () => void }> = [];
  private loopError: unknown = null;
  private appliedBytesSinceCompact = 0;

  /**
   * Opens a group on a WAL and a state machine that may disagree after a
   * crash: a snapshot installed in the store but not yet marked in the WAL
   * leaves the store ahead of the log. The WAL is brought up to the store
   * first, so the core starts with applied <= committed.
   */
  static async open(options: GroupOptions): Promise<RaftGroup> {
    const { wal, group, stateMachine } = options;
    const position = stateMachine.applied();
    const hard = wal.hardState(group) ?? { term: 0, vote: 0n as NodeId, commit: 0 };
    if (position.index > hard.commit) {
      const logHasIt = position.index >= wal.firstIndex(group) - 1 && position.index <= wal.lastIndex(group) &&
        wal.term(group, position.index) === position.term;
      const records: WalRecord[] = [];
      if (!logHasIt) {
        records.push({ type: "snapshot", group, metadata: { index: position.index, term: position.term, confState: position.confState } });
      }
      const term = Math.max(hard.term, position.term);
      records.push({ type: "hardState", group, hardState: { term, vote: term === hard.term ? hard.vote : 0n as NodeId, commit: position.index } });
      options.logger.warn(`group ${group}: the state machine is at ${position.index}, ahead of the log's commit ${hard.commit}; ${logHasIt ? "advancing the commit" : "marking its snapshot in the WAL"}`);
      await wal.append(records);
    }
    if (position.index < wal.firstIndex(group) - 1) {
      throw new Error(`group ${group}: the state machine is at ${position.index} but the WAL starts after ${wal.firstIndex(group) - 1}: the store lost writes it reported durable; restore this member from a snapshot`);
    }
    if (options.forceNewCluster) await forceNewCluster(options);
    // The core learns its membership from the WAL's snapshot marker plus the conf changes after it, so it
    // starts applying right after that marker: entries the state machine already has are handed out again,
    // the state machine skips them, and the core re-applies the conf changes among them (as etcd does).
    return new RaftGroup(options, wal.firstIndex(group) - 1);
  }

  private constructor(private readonly options: GroupOptions, applied: LogIndex) {
    const position = options.stateMachine.applied();
    this.storage = new WalLogStorage(options.wal, options.group, () => EMPTY);
    this.lastCompactIndex = this.storage.firstIndex() - 1;
    this.confState = position.confState;
    this.confStateIndex = position.index;
    this.ids = new RequestIdGenerator(options.memberId, Date.now());
    this.raw = new RawNode({
      id: options.memberId, group: options.group, storage: this.storage,
      electionTicks: options.electionTicks, heartbeatTicks: options.heartbeatTicks, applied,
      preVote: true, checkQuorum: true, random: options.random, logger: options.logger, faults: options.raftFaults,
    });
  }

  get appliedIndex(): LogIndex {
    return this.options.stateMachine.applied().index;
  }

  start(): void {
    assert(this.ticker === null, "group started twice");
    this.ticker = setInterval(() => {
      this.raw.tick();
      this.retryStaleReadRound();
      this.schedule();
    }, this.options.tickMs);
    this.schedule();
  }

  /** Feed a message from a peer. */
  step(message: Message): void {
    if (this.stopped) return;
    this.raw.step(message);
    this.schedule();
  }

  isLeader(): boolean {
    return this.raw.status().role === Role.Leader;
  }

  leader(): NodeId {
    return this.raw.status().leader;
  }

  /** Proposes a command (forwarded to the leader from a follower) and resolves with its apply result. */
  propose(command: Uint8Array, signal?: AbortSignal): Promise<unknown> {
    if (this.stopped) return Promise.reject(new StoppedError());
    const requestId = this.ids.generate();
    const result = this.raw.proposeOrForward(wrapCommand(requestId, command));
    if (!result.ok) {
      if (result.reason === "no-leader") return Promise.reject(new NoLeaderError());
      return Promise.reject(new ProposalRefusedError(result.reason, result.leader));
    }
    const promise = this.wait(this.proposals, requestId, signal, "proposal");
    this.schedule();
    return promise;
  }

  /**
   * Resolves once this member has applied everything committed before the
   * call (a linearizable read barrier). Concurrent reads share one ReadIndex
   * round, as etcd batches them.
   */
  readBarrier(signal?: AbortSignal): Promise<void> {
    if (this.stopped) return Promise.reject(new StoppedError());
    if (this.options.plantedStaleReads === true) return Promise.resolve(); // TEST-ONLY planted bug: answer from local state
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: () => resolve(),
        reject,
        timer: setTimeout(() => {
          this.readsQueued = this.readsQueued.filter((other) => other !== waiter);
          for (const round of this.readRounds.values()) {
            const at = round.waiters.indexOf(waiter);
            if (at >= 0) round.waiters.splice(at, 1);
          }
          reject(new RequestTimeoutError("read timed out waiting for the leader to confirm"));
        }, this.options.requestTimeoutMs),
      };
      signal?.addEventListener("abort", () => {
        clearTimeout(waiter.timer);
        reject(new RequestTimeoutError("read aborted", { cause: signal.reason }));
      }, { once: true });
      this.readsQueued.push(waiter);
      this.startReadRound();
    });
  }

  private startReadRound(): void {
    // One round at a time keeps the number of heartbeats per read low under load.
    if (this.readsQueued.length === 0 || this.readRounds.size > 0) return;
    const context = readIndexContext(this.options.memberId, ++this.readCounter);
    const result = this.raw.readIndex(context);
    const waiters = this.readsQueued;
    this.readsQueued = [];
    if (!result.ok) {
      for (const waiter of waiters) {
        clearTimeout(waiter.timer);
        waiter.reject(result.reason === "no-leader" ? new NoLeaderError() : new ProposalRefusedError(result.reason, result.leader));
      }
      return;
    }
    this.readRounds.set(contextKey(context), { context, waiters, index: null, startedMs: performance.now() });
    this.schedule();
  }

  /**
   * A round whose confirmation never came (the leader changed, a message was
   * lost) would hold every later read: after an election timeout its readers
   * join a fresh round.
   */
  private retryStaleReadRound(): void {
    const staleMs = this.options.electionTicks * this.options.tickMs;
    const now = performance.now();
    for (const [key, round] of this.readRounds) {
      if (round.index !== null || now - round.startedMs < staleMs) continue;
      this.readRounds.delete(key);
      this.readsQueued.push(...round.waiters);
    }
    this.startReadRound();
  }

  /** Resolves once the state machine has applied `index`. */
  waitApplied(index: LogIndex): Promise<void> {
    if (this.appliedIndex >= index) return Promise.resolve();
    return new Promise((resolve) => this.applyWaiters.push({ index, resolve }));
  }

  /** Proposes a membership change (forwarded to the leader from a follower). The caller watches the applied state for its effect. */
  proposeConfChange(change: ConfChange): void {
    if (this.stopped) throw new StoppedError();
    const result = this.raw.proposeConfChangeOrForward(change);
    if (!result.ok) {
      if (result.reason === "no-leader") throw new NoLeaderError();
      throw new ProposalRefusedError(result.reason, result.leader);
    }
    this.schedule();
  }

  /** Resolves once `predicate` holds after some apply (checked at once, then after every Ready); rejects on timeout. */
  waitUntil(predicate: () => boolean, signal?: AbortSignal, what = "change"): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const watcher = { predicate, resolve: () => { clearTimeout(timer); resolve(); } };
      const timer = setTimeout(() => {
        this.predicateWaiters = this.predicateWaiters.filter((other) => other !== watcher);
        reject(new RequestTimeoutError(`${what} timed out: its outcome is unknown`));
      }, this.options.requestTimeoutMs);
      signal?.addEventListener("abort", () => {
        clearTimeout(timer);
        this.predicateWaiters = this.predicateWaiters.filter((other) => other !== watcher);
        reject(new RequestTimeoutError(`${what} aborted: its outcome is unknown`, { cause: signal.reason }));
      }, { once: true });
      this.predicateWaiters.push(watcher);
    });
  }

  transferLeadership(to: NodeId): void {
    this.raw.transferLeadership(to);
    this.schedule();
  }

  private wait(registry: Map<bigint, Waiter>, key: bigint, signal: AbortSignal | undefined, what: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        registry.delete(key);
        reject(new RequestTimeoutError(`${what} timed out: its outcome is unknown`));
      }, this.options.requestTimeoutMs);
      registry.set(key, { resolve, reject, timer });
      signal?.addEventListener("abort", () => {
        if (!registry.delete(key)) return;
        clearTimeout(timer);
        reject(new RequestTimeoutError(`${what} aborted: its outcome is unknown`, { cause: signal.reason }));
      }, { once: true });
    });
  }

  // ------------------------------------------------------------ Ready loop

  /**
   * Runs `fn` while no Ready is being handled (e.g. a snapshot install that
   * swaps the state machine's store: an apply must never run against a store
   * half-way through being replaced). Steps and ticks continue meanwhile.
   */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.paused) await new Promise((resolve) => setImmediate(resolve));
    this.paused = true;
    try {
      while (this.processing) await new Promise((resolve) => setImmediate(resolve));
      return await fn();
    } finally {
      this.paused = false;
      this.schedule();
    }
  }

  schedule(): void {
    if (this.scheduled || this.processing || this.stopped || this.paused) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.processReadies();
    });
  }

  private async processReadies(): Promise<void> {
    if (this.processing || this.stopped || this.paused) return;
    this.processing = true;
    try {
      while (!this.stopped && !this.paused && this.raw.hasReady()) await this.handleReady(this.raw.ready());
    } catch (error) {
      // A failed WAL write or a broken invariant: continuing could acknowledge what is not durable.
      this.loopError = error;
      this.options.logger.error(`group ${this.options.group}: Ready loop failed, stopping the group: ${(error as Error).stack ?? String(error)}`);
      const failure = error instanceof Error ? error : new Error(String(error));
      this.stop(failure);
      this.options.onFatal?.(failure);
      return;
    } finally {
      this.processing = false;
    }
    if (!this.stopped && this.raw.hasReady()) this.schedule();
  }

  private async handleReady(ready: Ready): Promise<void> {
    if (ready.softState) this.options.onSoftState?.(ready.softState, this.raw.status().term);
    this.sendAll(ready.messages);

    const records: WalRecord[] = [];
    const group = this.options.group;
    if (ready.snapshot) records.push({ type: "snapshot", group, metadata: ready.snapshot.metadata });
    if (ready.entries.length > 0) records.push({ type: "entries", group, entries: ready.entries });
    if (ready.hardState) records.push({ type: "hardState", group, hardState: ready.hardState });
    if (records.length > 0 && this.options.plantedSkipPersistWait === true && this.isLeader()) {
      // TEST-ONLY planted bug: the leader's write goes to the WAL in order, but nothing waits for its fdatasync.
      this.options.wal.append(records).catch((error: unknown) => this.options.onFatal?.(error instanceof Error ? error : new Error(String(error))));
    } else if (records.length > 0) {
      const started = performance.now();
      await this.options.wal.append(records);
      const elapsed = performance.now() - started;
      this.options.onPersist?.(elapsed, ready.entries.length);
      if (elapsed > SLOW_PERSIST_MS) this.options.logger.warn(`slow disk: WAL write and fdatasync took ${elapsed.toFixed(0)} ms (${ready.entries.length} entries)`);
    }
    this.sendAll(ready.messagesAfterPersist);

    if (ready.snapshot) {
      this.confState = ready.snapshot.metadata.confState;
      this.confStateIndex = ready.snapshot.metadata.index;
    }
    if (ready.committedEntries.length > 0) this.apply(ready.committedEntries);
    for (const readState of ready.readStates) {
      const round = this.readRounds.get(contextKey(readState.context));
      if (round) round.index = readState.index;
    }
    this.raw.advance();
    this.releaseReads();
    this.releaseApplyWaiters();
    this.startReadRound();
    this.maybeCompact();
  }

  private sendAll(messages: readonly Message[]): void {
    for (const message of messages) {
      if (message.type === MessageType.Snap) {
        const to = message.to;
        const image = this.options.stateMachine.snapshot();
        const rewritten: Message = { ...message, snapshot: { metadata: image.position, data: EMPTY } };
        this.options.sendSnapshot(rewritten, image.chunks).then(
          () => { this.raw.reportSnapshot(to, true); this.schedule(); },
          (error: unknown) => {
            this.options.logger.warn(`snapshot to ${to.toString(16)} failed: ${(error as Error).message}`);
            this.raw.reportSnapshot(to, false);
            this.schedule();
          },
        );
      } else {
        this.options.send(message);
      }
    }
  }

  /** Applies committed entries: runs of commands go to the state machine in one transaction; conf changes one by one. */
  private apply(entries: readonly Entry[]): void {
    let batch: AppliedEntry[] = [];
    let requestIds: (bigint | null)[] = [];
    const flush = () => {
      if (batch.length === 0) return;
      const results = this.options.stateMachine.apply(batch);
      for (let i = 0; i < requestIds.length; i++) {
        const requestId = requestIds[i];
        if (requestId === null) continue;
        const waiter = this.proposals.get(requestId);
        if (!waiter) continue;
        this.proposals.delete(requestId);
        clearTimeout(waiter.timer);
        waiter.resolve(results[i]);
      }
      batch = [];
      requestIds = [];
    };
    for (const entry of entries) {
      this.appliedBytesSinceCompact += entry.data.length;
      if (entry.type === EntryType.ConfChange) {
        flush();
        const change = decodeConfChange(entry.data);
        // The core's membership always follows the log, even for entries the state machine already has.
        const confState = this.raw.applyConfChange(change);
        this.confState = confState;
        this.confStateIndex = entry.index;
        const applied: AppliedEntry = { kind: "conf-change", index: entry.index, term: entry.term, change, confState };
        this.options.stateMachine.apply([applied]);
        this.options.onConfChange?.(applied);
      } else if (entry.data.length === 0) {
        batch.push({ kind: "noop", index: entry.index, term: entry.term });
        requestIds.push(null);
      } else {
        const { requestId, command } = unwrapCommand(entry.data);
        batch.push({ kind: "command", index: entry.index, term: entry.term, command });
        requestIds.push(requestId);
      }
    }
    flush();
  }

  private releaseReads(): void {
    const applied = this.appliedIndex;
    for (const [key, round] of this.readRounds) {
      if (round.index === null || round.index > applied) continue;
      this.readRounds.delete(key);
      for (const waiter of round.waiters) {
        clearTimeout(waiter.timer);
        waiter.resolve(undefined);
      }
    }
  }

  private releaseApplyWaiters(): void {
    if (this.predicateWaiters.length > 0) {
      const satisfied = this.predicateWaiters.filter((waiter) => waiter.predicate());
      if (satisfied.length > 0) {
        this.predicateWaiters = this.predicateWaiters.filter((waiter) => !satisfied.includes(waiter));
        for (const waiter of satisfied) waiter.resolve();
      }
    }
    if (this.applyWaiters.length === 0) return;
    const applied = this.appliedIndex;
    const ready = this.applyWaiters.filter((waiter) => waiter.index <= applied);
    this.applyWaiters = this.applyWaiters.filter((waiter) => waiter.index > applied);
    for (const waiter of ready) waiter.resolve();
  }

  /** Compacts the WAL below the state machine's durable applied index every snapshotCount entries or snapshotBytes bytes. */
  private maybeCompact(): void {
    const applied = this.appliedIndex;
    if (this.compacting || applied <= this.lastCompactIndex) return;
    const byCount = applied - this.lastCompactIndex >= this.options.snapshotCount;
    const byBytes = this.appliedBytesSinceCompact >= (this.options.snapshotBytes ?? SNAPSHOT_BYTES_DEFAULT);
    if (!byCount && !byBytes) return;
    this.compacting = true;
    const confState = this.confState;
    const confStateIndex = this.confStateIndex;
    void this.options.stateMachine.durableIndex().then(async (durable) => {
      // The marker's membership must be the one in force at its index: compact at most up to the index we know it for.
      const index = Math.min(durable, applied);
      if (index <= this.lastCompactIndex || index < confStateIndex || this.stopped) return;
      const term = this.storage.term(index);
      await this.options.wal.append([{ type: "snapshot", group: this.options.group, metadata: { index, term, confState } }]);
      this.lastCompactIndex = index;
      this.appliedBytesSinceCompact = 0;
      this.options.logger.info(`group ${this.options.group}: compacted the log up to ${index}`);
    }).catch((error: unknown) => {
      this.options.logger.warn(`group ${this.options.group}: log compaction failed: ${(error as Error).message}`);
    }).finally(() => {
      this.compacting = false;
    });
  }

  /** Stops ticking and fails every waiter. Idempotent. */
  stop(reason: Error = new StoppedError()): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    for (const waiter of this.proposals.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(reason);
    }
    this.proposals.clear();
    for (const round of this.readRounds.values()) for (const waiter of round.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(reason);
    }
    this.readRounds.clear();
    for (const waiter of this.readsQueued) {
      clearTimeout(waiter.timer);
      waiter.reject(reason);
    }
    this.readsQueued = [];
  }

  /** Resolves once the Ready loop is idle (for shutdown). */
  async idle(): Promise<void> {
    while (this.processing || this.scheduled) await new Promise((resolve) => setImmediate(resolve));
  }

  get failure(): unknown {
    return this.loopError;
  }
}

/**
 * --force-new-cluster, as etcd does it: keep everything committed, drop the
 * uncommitted tail (no quorum ever acknowledged it), and append committed
 * conf changes that remove every other member, one at a time (leaving a
 * joint configuration first if the log ends in one). The core and the state
 * machine then apply them like any other entries, so this member starts as a
 * one-member cluster holding all the committed data, and members can be
 * added back with member add. Only for a survivor whose quorum is gone for
 * good: the removed members must not be started again with their old data.
 */
export async function forceNewCluster(options: Pick<GroupOptions, "wal" | "group" | "stateMachine" | "memberId" | "logger">): Promise<void> {
  const { wal, group, stateMachine, memberId, logger } = options;
  const hard = wal.hardState(group) ?? { term: 0, vote: 0n as NodeId, commit: 0 };
  const position = stateMachine.applied();
  // The membership in force at the commit index: the state machine's, plus the committed conf changes it has not applied.
  let config = {
    voters: [...position.confState.voters], votersOutgoing: [...position.confState.votersOutgoing],
    learners: [...position.confState.learners], learnersNext: [...position.confState.learnersNext], autoLeave: position.confState.autoLeave,
  };
  const pending = hard.commit > position.index ? wal.entries(group, position.index + 1, hard.commit + 1) : [];
  for (const entry of pending) {
    if (entry.type !== EntryType.ConfChange) continue;
    try {
      config = applyChange(config, decodeConfChange(entry.data));
    } catch (error) {
      // The core ignores an invalid committed change on every replica; so does this replay.
      if (!(error instanceof InvalidConfChangeError)) throw error;
    }
  }
  const changes: ConfChange[] = [];
  const change = (next: ConfChange): void => {
    config = applyChange(config, next);
    changes.push(next);
  };
  if (config.votersOutgoing.length > 0) change({ transition: ConfChangeTransition.Auto, changes: [], context: EMPTY });
  if (!config.voters.includes(memberId)) {
    throw new Error(`--force-new-cluster: this member (${memberId.toString(16)}) is not a voter of the committed configuration; it cannot carry the cluster alone`);
  }
  for (const id of [...config.voters, ...config.learners]) {
    if (id !== memberId) change({ transition: ConfChangeTransition.Auto, changes: [{ type: ConfChangeType.RemoveNode, nodeId: id }], context: EMPTY });
  }
  const discarded = wal.lastIndex(group) - hard.commit;
  const term = Math.max(hard.term, 1);
  const entries: Entry[] = changes.map((next, position) => ({ index: hard.commit + 1 + position, term, type: EntryType.ConfChange, data: encodeConfChange(next) }));
  // With nobody to remove, an empty entry still cuts the uncommitted tail.
  if (entries.length === 0 && discarded > 0) entries.push({ index: hard.commit + 1, term, type: EntryType.Normal, data: EMPTY });
  if (entries.length > 0) {
    await wal.append([
      { type: "entries", group, entries },
      { type: "hardState", group, hardState: { term, vote: hard.vote, commit: hard.commit + entries.length } },
    ]);
  }
  logger.warn(`--force-new-cluster: kept the log up to its commit index ${hard.commit}, discarded ${Math.max(0, discarded)} uncommitted entries, and committed the removal of ${changes.filter((next) => next.changes.length > 0).length} other members: this member now forms a cluster alone`);
}

/**
 * The leader matches read confirmations by context and serves one request
 * per context, so contexts must differ across members, not only within one
 * (two followers both sending "1" would leave one of them waiting).
 */
export function readIndexContext(memberId: NodeId, counter: bigint): Uint8Array {
  const context = new Uint8Array(16);
  const view = new DataView(context.buffer);
  view.setBigUint64(0, memberId);
  view.setBigUint64(8, counter);
  return context;
}

function contextKey(context: Uint8Array): string {
  return Buffer.from(context).toString("hex");
}
