/**
 * What a leader knows about each member's log, and the quorum arithmetic of
 * (possibly joint) configurations.
 */
import { assert } from "../lib/assert.js";
import type { LogIndex, NodeId } from "../lib/ids.js";
import type { ConfState } from "./types.js";
import { sortedIds } from "./util.js";

/**
 * Flow control: the append messages sent to a follower and not yet
 * acknowledged, bounded in count and in bytes. Each element is the last
 * index a message carried; acknowledgements free every message up to an index.
 */
export class Inflights {
  private readonly indexes: LogIndex[] = [];
  private readonly sizes: number[] = [];
  private head = 0;
  private bytes = 0;

  constructor(readonly countMax: number, readonly bytesMax: number) {
    assert(countMax > 0, "inflight message cap must be positive");
  }

  get count(): number {
    return this.indexes.length - this.head;
  }

  add(lastIndex: LogIndex, bytes: number): void {
    assert(!this.full(), "add to full inflights");
    this.indexes.push(lastIndex);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  freeLE(index: LogIndex): void {
    while (this.head < this.indexes.length && this.indexes[this.head] <= index) {
      this.bytes -= this.sizes[this.head];
      this.head++;
    }
    if (this.head > 64 && this.head * 2 > this.indexes.length) {
      this.indexes.splice(0, this.head);
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Frees the oldest in-flight message: the follower answered a heartbeat, so the pipe is alive even if appends were lost. */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.freeLE(this.indexes[this.head]);
  }

  full(): boolean {
    return this.count >= this.countMax || this.bytes >= this.bytesMax;
  }

  reset(): void {
    this.indexes.length = 0;
    this.sizes.length = 0;
    this.head = 0;
    this.bytes = 0;
  }
}

export type ProgressState = "probe" | "replicate" | "snapshot";

export class Progress {
  match: LogIndex = 0;
  next: LogIndex;
  state: ProgressState = "probe";
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshot: LogIndex = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** Leader ticks at which the last heartbeat this member answered was sent (for lease reads). */
  lastAckTick = Number.NEGATIVE_INFINITY;
  /** In probe state: one append is outstanding, wait for its answer (or a heartbeat answer). */
  probeSent = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: LogIndex, isLearner: boolean, inflightsMax: number, inflightBytesMax: number) {
    this.next = next;
    this.isLearner = isLearner;
    this.inflights = new Inflights(inflightsMax, inflightBytesMax);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot;
      this.resetState("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState("probe");
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: LogIndex): void {
    this.resetState("snapshot");
    this.pendingSnapshot = snapshotIndex;
    this.next = snapshotIndex + 1;
  }

  /** An acknowledgement up to n. Returns false if it told us nothing new. */
  maybeUpdate(n: LogIndex): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * A rejection of the append after `rejected`, with the follower's hint of
   * where its log may match. Returns false for stale rejections.
   */
  maybeDecrTo(rejected: LogIndex, matchHint: LogIndex): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Record that an append with `entries` entries (ending at lastIndex) was sent. */
  sentEntries(entryCount: number, lastIndex: LogIndex, bytes: number): void {
    if (this.state === "replicate") {
      if (entryCount > 0) {
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else if (this.state === "probe") {
      this.probeSent = true;
    }
  }

  isPaused(): boolean {
    switch (this.state) {
      case "probe": return this.probeSent;
      case "replicate": return this.inflights.full();
      case "snapshot": return true;
    }
  }
}

/** A majority of one set of voters. */
function majorityCommitted(voters: readonly NodeId[], match: (id: NodeId) => LogIndex): LogIndex {
  if (voters.length === 0) return Number.MAX_SAFE_INTEGER; // an empty half of a joint config never limits
  const indexes = voters.map(match).sort((a, b) => b - a);
  return indexes[Math.floor(voters.length / 2)];
}

export type VoteResult = "won" | "lost" | "pending";

function majorityVote(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return "won";
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === undefined) missing++;
    else if (vote) granted++;
  }
  const quorum = Math.floor(voters.length / 2) + 1;
  if (granted >= quorum) return "won";
  if (granted + missing >= quorum) return "pending";
  return "lost";
}

/** Won when every part is won, lost when any is lost. */
function allOf(results: readonly VoteResult[]): VoteResult {
  if (results.includes("lost")) return "lost";
  return results.every((result) => result === "won") ? "won" : "pending";
}

function configVoteResult(config: TrackerConfig, votes: ReadonlyMap<NodeId, boolean>, incomingOnly: boolean): VoteResult {
  const incoming = majorityVote(config.voters, votes);
  if (incomingOnly) return incoming;
  return allOf([incoming, majorityVote(config.votersOutgoing, votes)]);
}

export interface TrackerConfig {
  voters: NodeId[];
  votersOutgoing: NodeId[];
  learners: NodeId[];
  learnersNext: NodeId[];
  autoLeave: boolean;
}

export function configFromConfState(cs: ConfState): TrackerConfig {
  return {
    voters: sortedIds(cs.voters),
    votersOutgoing: sortedIds(cs.votersOutgoing),
    learners: sortedIds(cs.learners),
    learnersNext: sortedIds(cs.learnersNext),
    autoLeave: cs.autoLeave,
  };
}

export function confStateFromConfig(config: TrackerConfig): ConfState {
  return {
    voters: config.voters.slice(),
    votersOutgoing: config.votersOutgoing.slice(),
    learners: config.learners.slice(),
    learnersNext: config.learnersNext.slice(),
    autoLeave: config.autoLeave,
  };
}

/** Progress of every member plus the quorum rules of the current configuration. */
export class ProgressTracker {
  config: TrackerConfig;
  progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();
  /**
   * Configurations a campaign must also win, beyond the applied one: those the conf changes in the
   * candidate's log after its applied index lead through (see RaftNode.configsInLog). Cleared with the votes.
   */
  electionConfigs: TrackerConfig[] = [];
  /** Planted fault: decide joint configurations by the incoming majority alone. */
  jointIncomingOnly = false;

  constructor(config: TrackerConfig, readonly inflightsMax: number, readonly inflightBytesMax: number) {
    this.config = config;
  }

  isJoint(): boolean {
    return this.config.votersOutgoing.length > 0;
  }

  isVoter(id: NodeId): boolean {
    return this.config.voters.includes(id) || this.config.votersOutgoing.includes(id);
  }

  /** Every voter of either half, each once. */
  voterIds(): NodeId[] {
    if (!this.isJoint()) return this.config.voters;
    return sortedIds(new Set([...this.config.voters, ...this.config.votersOutgoing]));
  }

  memberIds(): NodeId[] {
    return sortedIds(new Set([...this.config.voters, ...this.config.votersOutgoing, ...this.config.learners, ...this.config.learnersNext]));
  }

  /** The highest index persisted by a quorum (of both halves while joint). */
  committed(): LogIndex {
    const match = (id: NodeId) => this.progress.get(id)?.match ?? 0;
    const incoming = majorityCommitted(this.config.voters, match);
    if (this.jointIncomingOnly) return incoming === Number.MAX_SAFE_INTEGER ? 0 : incoming;
    const outgoing = majorityCommitted(this.config.votersOutgoing, match);
    const result = Math.min(incoming, outgoing);
    return result === Number.MAX_SAFE_INTEGER ? 0 : result;
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  resetVotes(): void {
    this.votes.clear();
    this.electionConfigs = [];
  }

  /** Won only if won in the applied configuration and in every one of electionConfigs. */
  tallyVotes(): VoteResult {
    return allOf([this.config, ...this.electionConfigs].map((config) => configVoteResult(config, this.votes, this.jointIncomingOnly)));
  }

  /** Every voter whose answer tallyVotes may need, each once. */
  electorate(): NodeId[] {
    if (this.electionConfigs.length === 0) return this.voterIds();
    const ids = new Set(this.voterIds());
    for (const config of this.electionConfigs) for (const id of [...config.voters, ...config.votersOutgoing]) ids.add(id);
    return sortedIds(ids);
  }

  voteResult(votes: ReadonlyMap<NodeId, boolean>): VoteResult {
    return configVoteResult(this.config, votes, this.jointIncomingOnly);
  }

  /** Did a quorum of voters hear from us recently? */
  quorumActive(self: NodeId): boolean {
    const votes = new Map<NodeId, boolean>();
    for (const id of this.voterIds()) {
      const progress = this.progress.get(id);
      votes.set(id, id === self || (progress?.recentActive ?? false));
    }
    return this.voteResult(votes) === "won";
  }
}
