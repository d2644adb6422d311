/**
 * What the etcd services (api/services/) need from the node runtime. The
 * runtime implements these; the services turn requests into calls on them
 * and their answers and failures into etcd's responses and errors.
 *
 * Failures: the runtime throws its own errors (NoLeaderError, NotLeaderError,
 * ProposalRefusedError with `.reason`, RequestTimeoutError, StoppedError) and
 * the membership errors below. All of them are recognised by `error.name`
 * (kv-mapping.ts toApiError), so the runtime may define classes of the same
 * names without importing api/. A method whose `signal` aborts rejects
 * promptly (with any error; the service reports the call's own abort reason).
 */
import type { AppliedEntry as KvAppliedEntry, KvCommand, Mvcc } from "../kv/mod.js";

export interface NodeIdentity {
  readonly clusterId: bigint;
  /** This member's id. */
  readonly memberId: bigint;
  /** The current Raft term, for response headers. */
  raftTerm(): number;
  /**
   * Whether this member is a learner. etcd answers every unary RPC on a
   * learner except Status and serializable Range with "etcdserver: rpc not
   * supported for learner"; the services do the same.
   */
  isLearner(): boolean;
}

export interface KvBackend extends NodeIdentity {
  /**
   * The local MVCC. The services read through it (openRange, range,
   * currentRevision, compactRevision, hashKv) and never write through it:
   * every write goes through propose().
   */
  readonly mvcc: Mvcc;
  /**
   * Linearizable read barrier (Raft ReadIndex): resolves once this member
   * has applied everything committed before the call, so a read of `mvcc`
   * right after sees every write acknowledged before the call began.
   * Rejects with NoLeaderError, RequestTimeoutError, StoppedError or
   * ProposalRefusedError (e.g. "too-many-pending-reads").
   */
  readBarrier(signal: AbortSignal): Promise<void>;
  /**
   * Proposes a KV write through Raft (forwarded to the leader when this
   * member is not it) and resolves with the entry as applied on THIS member:
   * its outcome (the command's answer or its KvError) and the revision after
   * it. Resolves only after the entry is applied here, so a read of `mvcc`
   * after it sees the write. Must not resolve with an entry whose outcome is
   * null. Rejects when the outcome is not known to be applied here: a
   * RequestTimeoutError means the write may or may not take effect.
   */
  propose(command: KvCommand, signal: AbortSignal): Promise<KvAppliedEntry>;
  /**
   * Resolves once history up to `revision` has been physically removed from
   * this member's store (etcd's Compact with physical = true answers only
   * then).
   */
  physicallyCompacted(revision: number, signal: AbortSignal): Promise<void>;
}

/**
 * Leases: the KV backend (leases are commands of the KV state machine, and
 * keep-alives go through Raft too, so a follower's keep-alive reaches the
 * leader the way its writes do) plus what the member's clock knows.
 */
export interface LeaseBackend extends KvBackend {
  /** Milliseconds left on the lease by this member's clock, or null when it does not know the lease. */
  leaseRemainingMs(id: bigint): number | null;
  /** etcd's minimum TTL (1.5 election timeouts, in whole seconds): shorter requests are raised to it. */
  readonly leaseTtlSecondsMin: number;
}

export interface MemberInfo {
  readonly id: bigint;
  /** Empty until the member has started and published its name (as in etcd). */
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

/**
 * Membership changes go through Raft (joint consensus, learners). Each
 * change resolves once it has been applied on this member, so members()
 * called right after includes it. Failures: the errors below, or the
 * runtime's errors.
 */
export interface ClusterBackend extends NodeIdentity {
  /** The member list as this member has applied it (serializable). */
  members(): readonly MemberInfo[];
  /** Linearizable read barrier, for MemberList with linearizable = true. */
  readBarrier(signal: AbortSignal): Promise<void>;
  /**
   * Adds a member (a voter, or a learner); the runtime picks its id.
   * Throws PeerUrlExistsError, MemberExistsError, TooManyLearnersError,
   * NotEnoughStartedMembersError.
   */
  addMember(peerUrls: readonly string[], isLearner: boolean, signal: AbortSignal): Promise<MemberInfo>;
  /** Throws MemberNotFoundError (also for an id removed before), NotEnoughStartedMembersError. */
  removeMember(id: bigint, signal: AbortSignal): Promise<void>;
  /** Replaces the member's peer URLs. Throws MemberNotFoundError, PeerUrlExistsError. */
  updateMember(id: bigint, peerUrls: readonly string[], signal: AbortSignal): Promise<void>;
  /** Makes a learner a voter. Throws MemberNotFoundError, MemberNotLearnerError, LearnerNotReadyError. */
  promoteMember(id: bigint, signal: AbortSignal): Promise<void>;
}

export interface StatusInfo {
  /** The server version clients see, e.g. "3.5.0" (etcdctl compares it). */
  readonly version: string;
  readonly dbSizeBytes: number;
  readonly dbSizeInUseBytes: number;
  /** 0n when this member knows no leader (the service then adds etcd's "etcdserver: no leader" to errors). */
  readonly leader: bigint;
  /** Raft's committed index. */
  readonly raftIndex: number;
  readonly raftAppliedIndex: number;
  readonly raftTerm: number;
  /** Problems to report besides a missing leader and the alarms (the service adds those). */
  readonly errors: readonly string[];
  readonly isLearner: boolean;
}

export interface AlarmInfo {
  readonly memberId: bigint;
  /** AlarmType from cold-messages.ts (1: NOSPACE, 2: CORRUPT). */
  readonly alarm: number;
}

export interface SnapshotStream {
  /** The revision the snapshot holds (first response's header revision). */
  readonly revision: number;
  /** Roughly how many bytes the stream carries, for remaining_bytes; the last message always says 0. */
  readonly sizeBytesEstimate: number;
  /** The snapshot's bytes in order. Iteration stops early (return()) when the client goes away. */
  readonly chunks: AsyncIterable<Uint8Array>;
}

export interface MaintenanceBackend extends NodeIdentity {
  /** The store's current revision, for response headers. */
  currentRevision(): number;
  status(): StatusInfo;
  /**
   * etcd's HashKV at `revision` (0: current); `revision` is the current
   * revision for the header. Throws the MVCC's CompactedError or
   * FutureRevisionError.
   */
  hashKv(revision: number): { hash: number; compactRevision: number; hashRevision: number; revision: number };
  /** A point-in-time snapshot of the state machine in Cairn's own checksummed format. */
  snapshot(signal: AbortSignal): Promise<SnapshotStream>;
  /** Transfers leadership to `target`. Throws NotLeaderError (this member does not lead), BadLeaderTransfereeError, RequestTimeoutError. */
  moveLeader(target: bigint, signal: AbortSignal): Promise<void>;
  /** Every active alarm. */
  alarms(): readonly AlarmInfo[];
  /** Raises an alarm through Raft; resolves with it, or null when it was already raised. */
  activateAlarm(memberId: bigint, alarm: number, signal: AbortSignal): Promise<AlarmInfo | null>;
  /** Clears an alarm through Raft; resolves with it, or null when it was not raised. */
  deactivateAlarm(memberId: bigint, alarm: number, signal: AbortSignal): Promise<AlarmInfo | null>;
  /** Compacts this member's store file; writes pause only briefly. */
  defragment(signal: AbortSignal): Promise<void>;
}

// ------------------------------------------------------------------ membership errors

/** etcd's "member not found", also for an id that was removed before. */
export class MemberNotFoundError extends Error {
  override name = "MemberNotFoundError";
  constructor(readonly id: bigint) {
    super(`member ${id.toString(16)} not found`);
  }
}

export class MemberExistsError extends Error {
  override name = "MemberExistsError";
  constructor(readonly id: bigint) {
    super(`member ${id.toString(16)} already exists`);
  }
}

export class PeerUrlExistsError extends Error {
  override name = "PeerUrlExistsError";
  constructor(readonly url: string) {
    super(`peer URL ${url} is already used by a member`);
  }
}

export class MemberNotLearnerError extends Error {
  override name = "MemberNotLearnerError";
  constructor(readonly id: bigint) {
    super(`member ${id.toString(16)} is not a learner`);
  }
}

/** Promotion refused because the learner's log is too far behind the leader's. */
export class LearnerNotReadyError extends Error {
  override name = "LearnerNotReadyError";
  constructor(readonly id: bigint) {
    super(`learner ${id.toString(16)} is not in sync with the leader`);
  }
}

export class TooManyLearnersError extends Error {
  override name = "TooManyLearnersError";
  constructor(readonly learnersMax: number) {
    super(`the cluster already has ${learnersMax} learner(s)`);
  }
}

/** The change would leave fewer started voters than a quorum needs (etcd's strict reconfig check). */
export class NotEnoughStartedMembersError extends Error {
  override name = "NotEnoughStartedMembersError";
  constructor() {
    super("re-configuration would leave too few started members for a quorum");
  }
}

export class BadMemberUrlsError extends Error {
  override name = "BadMemberUrlsError";
  constructor(readonly url: string, reason: string) {
    super(`bad member URL ${JSON.stringify(url)}: ${reason}`);
  }
}

/** MoveLeader to a member that does not exist or is a learner. */
export class BadLeaderTransfereeError extends Error {
  override name = "BadLeaderTransfereeError";
  constructor(readonly target: bigint) {
    super(`member ${target.toString(16)} cannot take over leadership`);
  }
}
