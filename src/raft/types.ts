/**
 * The data Raft exchanges with the world: log entries, hard state, snapshots,
 * messages, and the Ready batch the application drives the core with.
 * Every message names its group: a node runs many Raft groups over one
 * transport and one WAL.
 */
import type { GroupId, LogIndex, NodeId, Term } from "../lib/ids.js";

export const EntryType = {
  /** An application command (or an empty no-op: data of length 0). */
  Normal: 0,
  /** A membership change; data is an encoded ConfChange (see conf-change.ts). */
  ConfChange: 1,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface Entry {
  readonly term: Term;
  readonly index: LogIndex;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must be durable before the node answers anyone: the Raft paper's persistent state. */
export interface HardState {
  readonly term: Term;
  /** The candidate this node voted for in `term`, or NO_NODE (0n). */
  readonly vote: NodeId;
  /** Highest index known to be committed; persisted so a restart can re-apply without waiting for a leader. */
  readonly commit: LogIndex;
}

/**
 * The membership of a group. While a joint configuration is in force,
 * `votersOutgoing` is non-empty and decisions need a majority of both
 * `voters` (incoming) and `votersOutgoing`.
 */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly votersOutgoing: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Voters of the outgoing config that become learners when the joint config is left. */
  readonly learnersNext: readonly NodeId[];
  /** Leave the joint config automatically once entering it committed. */
  readonly autoLeave: boolean;
}

export interface SnapshotMetadata {
  readonly index: LogIndex;
  readonly term: Term;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** The state machine's image, opaque to Raft. */
  readonly data: Uint8Array;
}

export const ConfChangeType = {
  AddNode: 0,
  RemoveNode: 1,
  AddLearner: 2,
} as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

export const ConfChangeTransition = {
  /** One simple change uses no joint state; several use joint consensus and leave it automatically. */
  Auto: 0,
  /** Always joint, left automatically. */
  JointImplicit: 1,
  /** Always joint, left only by an explicit empty ConfChange. */
  JointExplicit: 2,
} as const;
export type ConfChangeTransition = (typeof ConfChangeTransition)[keyof typeof ConfChangeTransition];

export interface ConfChangeSingle {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
}

/** A membership change. An empty `changes` list leaves a joint configuration. */
export interface ConfChange {
  readonly transition: ConfChangeTransition;
  readonly changes: readonly ConfChangeSingle[];
  /** Opaque to Raft (etcd puts the member's URLs here). */
  readonly context: Uint8Array;
}

export const MessageType = {
  /** Local: start an election (or pre-election). */
  Hup: 0,
  /** Local: leader sends heartbeats. */
  Beat: 1,
  /** A proposal forwarded to or submitted at the leader. */
  Prop: 2,
  App: 3,
  AppResp: 4,
  Vote: 5,
  VoteResp: 6,
  PreVote: 7,
  PreVoteResp: 8,
  Snap: 9,
  Heartbeat: 10,
  HeartbeatResp: 11,
  /** Local: the transport could not reach a peer. */
  Unreachable: 12,
  /** Local: the transport finished (or failed) sending a snapshot. */
  SnapStatus: 13,
  /** Local: leader checks it still hears a quorum. */
  CheckQuorum: 14,
  TransferLeader: 15,
  TimeoutNow: 16,
  ReadIndex: 17,
  ReadIndexResp: 18,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export const MESSAGE_TYPE_NAMES: Record<MessageType, string> = Object.fromEntries(
  Object.entries(MessageType).map(([name, value]) => [value, name]),
) as Record<MessageType, string>;

export interface Message {
  readonly type: MessageType;
  readonly group: GroupId;
  readonly to: NodeId;
  readonly from: NodeId;
  readonly term: Term;
  /** App: term of the entry at `index`. Vote/PreVote: term of the candidate's last entry. AppResp reject: hint term. */
  readonly logTerm: Term;
  /** App: index preceding `entries`. Vote: candidate's last index. AppResp: highest matching index (or rejected index). */
  readonly index: LogIndex;
  readonly entries: readonly Entry[];
  readonly commit: LogIndex;
  readonly snapshot: Snapshot | null;
  readonly reject: boolean;
  /** AppResp reject: the follower's best guess of the last index that may match. */
  readonly rejectHint: LogIndex;
  /** Heartbeat and ReadIndex: the read request context echoed back. */
  readonly context: Uint8Array;
}

export interface ReadState {
  /** Serve the read once the state machine has applied at least this index. */
  readonly index: LogIndex;
  /** The caller's request context, returned unchanged. */
  readonly context: Uint8Array;
}

export const Role = {
  Follower: 0,
  Candidate: 1,
  Leader: 2,
  PreCandidate: 3,
} as const;
export type Role = (typeof Role)[keyof typeof Role];
export const ROLE_NAMES: Record<Role, string> = { 0: "follower", 1: "candidate", 2: "leader", 3: "pre-candidate" };

/** Volatile state that the application may want to show or act on. */
export interface SoftState {
  readonly leader: NodeId;
  readonly role: Role;
}

/**
 * Everything the application must do, in this order:
 *  1. send `messages` (they may go before the disk write: a leader's appends
 *     and heartbeats, vote requests);
 *  2. persist `snapshot` (if any), then `entries`, then `hardState`, durably
 *     (fdatasync) — all of them in one atomic step or in that order;
 *  3. only then send `messagesAfterPersist` (answers to appends and votes:
 *     a follower may not acknowledge what it has not persisted);
 *  4. apply the snapshot, then `committedEntries`, to the state machine, and
 *     serve `readStates` once applied reaches their index;
 *  5. call advance().
 * The core may be stepped and ticked while a Ready is outstanding; it will
 * not hand out another Ready until advance() is called.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly messagesAfterPersist: readonly Message[];
  readonly readStates: readonly ReadState[];
  /** True when entries or hardState (term or vote) changed: an fdatasync is required before step 3. */
  readonly mustSync: boolean;
}

/**
 * The log the core reads from: everything that has been persisted (entries
 * handed out in a Ready and acknowledged by advance()). Synchronous by design;
 * implementations serve recent entries from memory. Implemented in memory here
 * (MemoryStorage) and on the WAL in storage/.
 */
export interface LogStorage {
  /** The persisted hard state and membership the node restarts with. */
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries [low, high), at least one if low < high, stopping before the total data size exceeds bytesMax. */
  entries(low: LogIndex, high: LogIndex, bytesMax: number): Entry[];
  /** The term of the entry at index, for index in [firstIndex()-1, lastIndex()]. */
  term(index: LogIndex): Term;
  /** The index of the first entry still available (snapshot index + 1). */
  firstIndex(): LogIndex;
  lastIndex(): LogIndex;
  /** The most recent snapshot. */
  snapshot(): Snapshot;
}

/** Why a proposal (or ReadIndex, or transfer) was refused. */
export const RejectReason = {
  NoLeader: "no-leader",
  NotLeader: "not-leader",
  Transferring: "leadership-transfer-in-progress",
  TooLarge: "entry-too-large",
  Removed: "node-removed",
  UncommittedLimit: "too-many-uncommitted-entries",
  ConfChangePending: "conf-change-pending",
  InvalidConfChange: "invalid-conf-change",
  TooManyPendingReads: "too-many-pending-reads",
  LeaderNotReady: "leader-has-not-committed-in-its-term",
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];

/** A proposal outcome: accepted at an index and term (not yet committed!), or refused with a reason and the known leader. */
export type ProposeResult =
  | { readonly ok: true; readonly index: LogIndex; readonly term: Term }
  | { readonly ok: false; readonly reason: RejectReason; readonly leader: NodeId };

/**
 * Planted faults for mutation testing (FoundationDB's "buggify", TigerBeetle's
 * VOPR mutations): each switch breaks one Raft rule on purpose so the tests can
 * prove the simulator catches it. Production never sets any of them.
 */
export interface RaftFaults {
  /** Count replicas for entries of earlier terms too (drops the §5.4.2 rule, the Figure 8 bug). */
  commitAnyTerm?: boolean;
  /** A follower answers an append before persisting it. */
  ackBeforePersist?: boolean;
  /** Grant votes without the up-to-date log check (§5.4.1). */
  voteIgnoresLog?: boolean;
  /** Answer ReadIndex without confirming leadership with a quorum. */
  readIndexWithoutQuorum?: boolean;
  /** The leader counts its own entries toward commit before they are persisted. */
  leaderCountsUnpersisted?: boolean;
  /** In a joint configuration, require only the incoming majority. */
  jointIncomingOnly?: boolean;
}

export interface RaftConfig {
  readonly id: NodeId;
  readonly group: GroupId;
  /** Ticks without hearing a leader before a follower campaigns; the real timeout is randomized in [electionTicks, 2*electionTicks). */
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly storage: LogStorage;
  /** The state machine's applied index at start (entries up to it are never handed out again). */
  readonly applied?: LogIndex;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  /** "safe": ReadIndex confirms leadership with a heartbeat round. "lease": trust the leader lease (requires checkQuorum). */
  readonly readOnly?: "safe" | "lease";
  readonly messageBytesMax?: number;
  readonly inflightMessagesMax?: number;
  /** Bytes of append messages in flight to one follower (default 8 × messageBytesMax). */
  readonly inflightBytesMax?: number;
  readonly uncommittedBytesMax?: number;
  readonly entryBytesMax?: number;
  /** Source of randomness for election timeouts. */
  readonly random: import("../lib/prng.js").Prng;
  readonly logger?: RaftLogger;
  readonly faults?: RaftFaults;
}

export interface RaftLogger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

/** A read-only view of the core for monitoring and tests. */
export interface RaftStatus {
  readonly id: NodeId;
  readonly group: GroupId;
  readonly term: Term;
  readonly vote: NodeId;
  readonly commit: LogIndex;
  readonly applied: LogIndex;
  readonly lastIndex: LogIndex;
  readonly role: Role;
  readonly leader: NodeId;
  readonly leadTransferee: NodeId;
  readonly config: ConfState;
  /** Leader only: replication state per peer. */
  readonly progress: ReadonlyMap<NodeId, { match: LogIndex; next: LogIndex; state: "probe" | "replicate" | "snapshot"; learner: boolean }>;
}

export type ReadIndexResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: RejectReason; readonly leader: NodeId };

/**
 * The interface the application drives one Raft group through (implemented by
 * RawNode in raw-node.ts). All methods are synchronous and deterministic.
 */
export interface RaftNode {
  readonly id: NodeId;
  readonly group: GroupId;
  /** Advance logical time by one tick (the runtime calls it every heartbeat-interval / heartbeatTicks). */
  tick(): void;
  /**
   * Feed a message from a peer (or a local message). Messages of another
   * group, or from a term this node must ignore, are dropped (and logged).
   * Message contents are trusted: decoders validate at the boundary.
   */
  step(message: Message): void;
  /** Append a command at the leader. Only the leader accepts; others refuse with NotLeader and a leader hint. */
  propose(data: Uint8Array): ProposeResult;
  /**
   * Like propose() at the leader; at a follower with a known leader, forwards
   * the command to it (as etcd does) and answers { ok: true, index: 0, term: 0 }:
   * the caller learns the outcome when an entry carrying its own request id is
   * applied, or times out (the outcome is then unknown). A leader that cannot
   * accept a forwarded command drops and counts it.
   */
  proposeOrForward(data: Uint8Array): ProposeResult;
  /** Like proposeConfChange() at the leader; at a follower, forwards the change to the leader (outcome learned by applying). */
  proposeConfChangeOrForward(change: ConfChange): ProposeResult;
  /** Propose a membership change (one at a time; refused while another is pending). */
  proposeConfChange(change: ConfChange): ProposeResult;
  /**
   * Request a linearizable read. A ReadState with the same context appears in
   * a later Ready once leadership is confirmed (or immediately under lease).
   * At a follower, the request is forwarded to the leader.
   */
  readIndex(context: Uint8Array): ReadIndexResult;
  /** Ask the leader to hand leadership to `to` (catch it up, then TimeoutNow). */
  transferLeadership(to: NodeId): void;
  /** Start an election now (ignores the election timer; still honours PreVote). */
  campaign(): void;
  /** Apply a committed ConfChange entry (the application calls this when it applies one). Returns the new membership. */
  applyConfChange(change: ConfChange): ConfState;
  /** The transport failed to reach a peer: the leader drops back to probing it. */
  reportUnreachable(peer: NodeId): void;
  /** The transport finished (ok) or failed sending a snapshot to a peer. */
  reportSnapshot(peer: NodeId, ok: boolean): void;
  hasReady(): boolean;
  /** The next batch of work. Must be followed by advance() before the next ready(). */
  ready(): Ready;
  /** Acknowledge the last Ready: its entries, hard state and snapshot are durable and its committed entries applied. */
  advance(): void;
  status(): RaftStatus;
}
