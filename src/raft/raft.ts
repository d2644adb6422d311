/**
 * The Raft state machine of one group: roles, elections (PreVote,
 * CheckQuorum), replication with flow control, the commit rule, ReadIndex,
 * leadership transfer, membership changes and snapshots. It does no I/O:
 * RawNode (raw-node.ts) turns its accumulated output into Ready batches.
 *
 * Each role has a step function; shared term handling happens first in
 * step(). Messages to peers accumulate in `messages` (may be sent before the
 * Ready is persisted) and `messagesAfterPersist` (answers that promise
 * durability: append and vote responses).
 */
import { assert } from "../lib/assert.js";
import { NO_NODE, type GroupId, type LogIndex, type NodeId, type Term } from "../lib/ids.js";
import { limits } from "../lib/limits.js";
import type { Prng } from "../lib/prng.js";
import { applyChange, decodeConfChange, encodeConfChange, InvalidConfChangeError } from "./conf-change.js";
import { RaftLog } from "./log.js";
import { configFromConfState, confStateFromConfig, Progress, ProgressTracker, type TrackerConfig } from "./progress.js";
import {
  ConfChangeTransition, EntryType, MessageType, Role, RejectReason, ROLE_NAMES, MESSAGE_TYPE_NAMES,
  type ConfChange, type ConfState, type Entry, type Message, type ProposeResult, type RaftConfig,
  type RaftFaults, type RaftLogger, type ReadIndexResult, type ReadState, type Snapshot,
} from "./types.js";
import { bytesKey, entryBytes } from "./util.js";

const EMPTY = new Uint8Array(0);
/** Vote context marking an election forced by leadership transfer: it may disrupt a live leader's lease. */
const TRANSFER_CONTEXT = new Uint8Array([0x74]);
/** Heartbeat rounds whose send tick is remembered: answers older than this cannot extend a lease anyway. */
const HEARTBEAT_ROUNDS_REMEMBERED = 256;
/** Ticks a lease is shortened by, for nodes whose clocks tick at slightly different rates. */
const LEASE_MARGIN_TICKS = 2;

const silentLogger: RaftLogger = { debug() {}, info() {}, warn() {} };

interface PendingRead {
  index: LogIndex;
  /** Who asked: this node (apply locally) or a follower (answer with ReadIndexResp). */
  from: NodeId;
  context: Uint8Array;
  acks: Map<NodeId, boolean>;
}

export class Raft {
  readonly id: NodeId;
  readonly group: GroupId;
  readonly log: RaftLog;
  readonly tracker: ProgressTracker;

  term: Term = 0;
  vote: NodeId = NO_NODE;
  role: Role = Role.Follower;
  leader: NodeId = NO_NODE;
  leadTransferee: NodeId = NO_NODE;
  /** The leader may not propose another conf change until this index is applied. */
  pendingConfIndex: LogIndex = 0;
  /** Bytes of entries appended by this leader and not yet committed. */
  uncommittedBytes = 0;

  messages: Message[] = [];
  messagesAfterPersist: Message[] = [];
  readStates: ReadState[] = [];
  droppedMessages = 0;
  droppedForwardedProposals = 0;

  private electionElapsed = 0;
  private transferCampaignPending = false;
  /**
   * This node is not a voter in its own configuration, yet a voter of it asked for our vote with a log
   * behind ours: that voter may never win without us (see mayCampaign), so we campaign once ourselves.
   */
  private neededAsCandidate = false;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly leaseReads: boolean;
  private readonly messageBytesMax: number;
  private readonly uncommittedBytesMax: number;
  private readonly entryBytesMax: number;
  private readonly random: Prng;
  private readonly logger: RaftLogger;
  readonly faults: RaftFaults;

  /** Ticks since this node became leader; heartbeat rounds are stamped with it. */
  private leaderTicks = 0;
  private heartbeatRound = 0;
  private readonly heartbeatRoundSentTick = new Map<number, number>();

  private pendingReads = new Map<string, PendingRead>();
  private pendingReadOrder: string[] = [];
  /** ReadIndex requests that arrived before this leader committed an entry of its term. */
  private readsAwaitingCommit: Message[] = [];

  constructor(config: RaftConfig) {
    assert(config.id !== NO_NODE, "node id 0 is reserved");
    assert(config.heartbeatTicks > 0 && config.electionTicks > config.heartbeatTicks, "election ticks must exceed heartbeat ticks > 0");
    assert(config.readOnly !== "lease" || config.checkQuorum === true, "lease reads need checkQuorum");
    this.id = config.id;
    this.group = config.group;
    this.electionTicks = config.electionTicks;
    this.heartbeatTicks = config.heartbeatTicks;
    this.preVote = config.preVote ?? true;
    this.checkQuorum = config.checkQuorum ?? true;
    this.leaseReads = config.readOnly === "lease";
    this.messageBytesMax = config.messageBytesMax ?? limits.raftMessageBytesMax;
    this.uncommittedBytesMax = config.uncommittedBytesMax ?? limits.raftUncommittedBytesMax;
    this.entryBytesMax = config.entryBytesMax ?? limits.raftEntryBytesMax;
    this.random = config.random;
    this.logger = config.logger ?? silentLogger;
    this.faults = config.faults ?? {};

    this.log = new RaftLog(config.storage);
    const { hardState, confState } = config.storage.initialState();
    this.tracker = new ProgressTracker(configFromConfState(confState), config.inflightMessagesMax ?? limits.raftInflightMessagesMax,
      config.inflightBytesMax ?? this.messageBytesMax * 8);
    this.tracker.jointIncomingOnly = this.faults.jointIncomingOnly === true;
    if (hardState.term > 0 || hardState.commit > 0) {
      // A crash between persisting a snapshot and the hard state that follows it leaves commit below the
      // snapshot; a snapshot only ever holds committed entries, so its index is a safe floor.
      assert(hardState.commit <= this.log.lastIndex(),
        () => `persisted commit ${hardState.commit} is beyond the persisted log's last index ${this.log.lastIndex()}: was the log lost or truncated?`);
      this.term = hardState.term;
      this.vote = hardState.vote;
      this.log.committed = Math.max(hardState.commit, this.log.committed);
    }
    if (config.applied !== undefined && config.applied > 0) {
      assert(config.applied >= this.log.firstIndex() - 1 && config.applied <= this.log.committed,
        () => `applied ${config.applied} is outside [snapshot ${this.log.firstIndex() - 1}, commit ${this.log.committed}]: restore the state machine from the snapshot first`);
      this.log.applied = config.applied;
    }
    this.becomeFollower(this.term, NO_NODE);
    this.logger.info(`${this.describe()} started: commit ${this.log.committed}, applied ${this.log.applied}, last ${this.log.lastIndex()}, voters ${this.tracker.voterIds().join(",")}`);
  }

  describe(): string {
    return `raft ${this.id} (group ${this.group}, term ${this.term}, ${ROLE_NAMES[this.role]})`;
  }

  promotable(): boolean {
    return this.tracker.isVoter(this.id) && !this.log.unstable.snapshot;
  }

  /**
   * A voter may always campaign. So may a node outside its own voters (removed, or demoted to learner)
   * that a voter needs: the Raft thesis (§4.2.2) has such a server keep starting elections, without
   * counting its own vote, because it may hold entries no voter has. With configurations taking effect
   * on apply, a voter that has not learned that the change removing us committed still counts on our
   * vote, and we refuse it while our log is ahead: nobody else will ever campaign with our log, so the
   * cluster would wait for ever (seed 2011194). We count votes in our own configuration, which is
   * committed (we applied it), exactly as a lagging voter does; once elected we only hand leadership
   * to a voter (handOverIfRemoved), refusing proposals and reads meanwhile.
   */
  private mayCampaign(): boolean {
    if (this.promotable()) return true;
    return this.neededAsCandidate && this.tracker.voterIds().length > 0 && !this.log.unstable.snapshot;
  }

  // ---------------------------------------------------------------- sending

  private send(message: Partial<Message> & { type: MessageType; to: NodeId }): void {
    const full: Message = {
      group: this.group,
      from: this.id,
      term: this.term,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      snapshot: null,
      reject: false,
      rejectHint: 0,
      context: EMPTY,
      ...message,
    };
    const type = full.type;
    const afterPersist =
      type === MessageType.VoteResp || type === MessageType.PreVoteResp ||
      (type === MessageType.AppResp && !this.faults.ackBeforePersist);
    const queue = afterPersist ? this.messagesAfterPersist : this.messages;
    if (queue.length >= limits.raftBufferedMessagesMax) {
      this.droppedMessages++; // Raft tolerates loss; the runtime is not draining us.
      return;
    }
    queue.push(full);
  }

  /** Send an append (or a snapshot when the entries are gone) if flow control allows. Returns whether anything was sent. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const progress = this.tracker.progress.get(to);
    if (!progress || progress.isPaused()) return false;
    const previousIndex = progress.next - 1;
    const previousTerm = this.log.term(previousIndex);
    const entries = previousTerm === undefined ? undefined : this.log.entriesFrom(progress.next, this.messageBytesMax);
    if (previousTerm === undefined || entries === undefined) return this.sendSnapshot(to, progress);
    if (entries.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const entry of entries) bytes += entryBytes(entry);
    this.send({ type: MessageType.App, to, index: previousIndex, logTerm: previousTerm, entries, commit: this.log.committed });
    progress.sentEntries(entries.length, entries.length > 0 ? entries[entries.length - 1].index : previousIndex, bytes);
    return true;
  }

  private sendSnapshot(to: NodeId, progress: Progress): boolean {
    if (!progress.recentActive) {
      this.logger.debug(`${this.describe()} not sending a snapshot to ${to}: not recently active`);
      return false;
    }
    const snapshot = this.log.snapshot();
    assert(snapshot.metadata.index > 0, "a snapshot is needed but none exists");
    this.send({ type: MessageType.Snap, to, snapshot });
    progress.becomeSnapshot(snapshot.metadata.index);
    this.logger.info(`${this.describe()} sends snapshot at ${snapshot.metadata.index} to ${to} (its match ${progress.match})`);
    return true;
  }

  /** Send appends to `to` until flow control pauses or there is nothing more to send. */
  private sendAppendsTo(to: NodeId): void {
    if (!this.maybeSendAppend(to, true)) return;
    for (let i = 0; i < limits.raftInflightMessagesMax && this.maybeSendAppend(to, false); i++);
  }

  /** The acknowledgement freed flow-control room: fill it with entries, but send nothing empty. */
  private sendMoreAppendsTo(to: NodeId): void {
    for (let i = 0; i < limits.raftInflightMessagesMax && this.maybeSendAppend(to, false); i++);
  }

  private broadcastAppend(): void {
    for (const id of this.tracker.progress.keys()) if (id !== this.id) this.sendAppendsTo(id);
  }

  private broadcastHeartbeat(context: Uint8Array): void {
    // Each round is numbered (in the otherwise unused index field, echoed back) so that an answer
    // tells the leader when the heartbeat it answers was sent: the basis of lease reads.
    const round = ++this.heartbeatRound;
    this.heartbeatRoundSentTick.set(round, this.leaderTicks);
    this.heartbeatRoundSentTick.delete(round - HEARTBEAT_ROUNDS_REMEMBERED);
    for (const [id, progress] of this.tracker.progress) {
      if (id === this.id) continue;
      // Never tell a follower to commit beyond what it is known to have.
      this.send({ type: MessageType.Heartbeat, to: id, commit: Math.min(progress.match, this.log.committed), context, index: round });
    }
  }

  // ---------------------------------------------------------------- role changes

  private reset(term: Term): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NO_NODE;
    }
    this.leader = NO_NODE;
    this.transferCampaignPending = false;
    this.neededAsCandidate = false;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTicks + this.random.int(this.electionTicks);
    this.leadTransferee = NO_NODE;
    this.tracker.resetVotes();
    const last = this.log.lastIndex();
    const progress = new Map<NodeId, Progress>();
    for (const id of this.tracker.memberIds()) {
      const isLearner = !this.tracker.isVoter(id);
      const entry = new Progress(last + 1, isLearner, this.tracker.inflightsMax, this.tracker.inflightBytesMax);
      if (id === this.id) entry.match = this.faults.leaderCountsUnpersisted ? last : this.log.stableLastIndex();
      progress.set(id, entry);
    }
    this.tracker.progress = progress;
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.pendingReads.clear();
    this.pendingReadOrder = [];
    this.readsAwaitingCommit = [];
  }

  becomeFollower(term: Term, leader: NodeId): void {
    this.reset(term);
    this.role = Role.Follower;
    this.leader = leader;
  }

  private becomePreCandidate(): void {
    assert(this.role !== Role.Leader, "a leader cannot become a pre-candidate");
    // PreVote changes neither term nor vote: a failed pre-election leaves no trace.
    this.tracker.resetVotes();
    this.leader = NO_NODE;
    this.role = Role.PreCandidate;
    this.electionElapsed = 0;
    this.randomizedElectionTimeout = this.electionTicks + this.random.int(this.electionTicks);
  }

  private becomeCandidate(): void {
    assert(this.role !== Role.Leader, "a leader cannot become a candidate");
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = Role.Candidate;
  }

  private becomeLeader(): void {
    assert(this.role === Role.Candidate, "only a candidate becomes leader");
    this.reset(this.term);
    this.leader = this.id;
    this.role = Role.Leader;
    this.leaderTicks = 0;
    this.heartbeatRoundSentTick.clear();
    this.tracker.progress.get(this.id)?.becomeReplicate();
    // Conservatively assume an unapplied conf change may be in the log.
    this.pendingConfIndex = this.log.lastIndex();
    // The no-op of this term: once committed, every earlier entry is committed too (§5.4.2, §8).
    this.appendEntries([{ term: this.term, index: 0, type: EntryType.Normal, data: EMPTY }]);
    this.logger.info(`${this.describe()} became leader at last index ${this.log.lastIndex()}`);
  }

  // ---------------------------------------------------------------- elections

  private campaign(kind: "pre-election" | "election" | "transfer"): void {
    if (!this.mayCampaign()) {
      this.logger.warn(`${this.describe()} cannot campaign: not a voter`);
      return;
    }
    if (!this.promotable()) this.logger.info(`${this.describe()} campaigns from outside its voters: a voter needs its log`);
    let voteType: MessageType;
    let voteTerm: Term;
    if (kind === "pre-election") {
      this.becomePreCandidate();
      voteType = MessageType.PreVote;
      voteTerm = this.term + 1;
      this.tracker.recordVote(this.id, true);
    } else {
      this.becomeCandidate();
      voteType = MessageType.Vote;
      voteTerm = this.term;
      // Our own vote counts only once it is persisted (see selfVotePersisted).
    }
    this.tracker.electionConfigs = this.configsInLog();
    if (this.tracker.tallyVotes() === "won") {
      this.onElectionWon();
      return;
    }
    for (const id of this.tracker.electorate()) {
      if (id === this.id) continue;
      this.send({
        type: voteType, to: id, term: voteTerm, index: this.log.lastIndex(), logTerm: this.log.lastTerm(),
        context: kind === "transfer" ? TRANSFER_CONTEXT : EMPTY,
      });
    }
  }

  private onElectionWon(): void {
    if (this.role === Role.PreCandidate) {
      this.campaign("election");
      return;
    }
    this.becomeLeader();
    this.broadcastAppend();
  }

  /** A transfer asked us to campaign while committed conf changes were unapplied: campaign now if they are. */
  campaignIfTransferPending(): void {
    if (!this.transferCampaignPending || this.role !== Role.Follower || this.hasUnappliedConfChanges()) return;
    this.transferCampaignPending = false;
    this.logger.info(`${this.describe()} campaigns for the leadership transfer it was asked for`);
    this.hup(true);
  }

  /** Called once this candidate's hard state (its own vote) for the current term is durable. */
  selfVotePersisted(term: Term): void {
    if (this.role !== Role.Candidate || this.term !== term || this.vote !== this.id) return;
    this.tracker.recordVote(this.id, true);
    this.checkVotes();
  }

  private checkVotes(): void {
    const result = this.tracker.tallyVotes();
    if (result === "won") this.onElectionWon();
    else if (result === "lost") this.becomeFollower(this.term, NO_NODE);
  }

  /**
   * The configurations the conf changes in our log after the applied index lead through, in order.
   * Configurations take effect when applied, but our commit index may be behind (it is lost in a crash
   * before the hard state is written): one of these changes may have committed, and entries after it
   * with it, under a configuration whose majority our applied one does not meet (seed 3008005: a
   * member still applying {1..5} was elected by removed members 2 and 4 while an entry was committed
   * under {3,5,8}). A campaign therefore has to win each of them as well as the applied one.
   */
  private configsInLog(): TrackerConfig[] {
    const configs: TrackerConfig[] = [];
    let config = this.tracker.config;
    for (const entry of this.unappliedConfChanges(this.log.lastIndex())) {
      try {
        config = applyChange(config, decodeConfChange(entry.data));
      } catch (error) {
        // Applying it will ignore it too (applyConfChange), so it never becomes a configuration.
        if (!(error instanceof InvalidConfChangeError)) throw error;
        continue;
      }
      configs.push(config);
    }
    return configs;
  }

  /** The ConfChange entries after the applied index, up to `high`, in log order. */
  private *unappliedConfChanges(high: LogIndex): Generator<Entry> {
    for (let from = Math.max(this.log.applied + 1, this.log.firstIndex()); from <= high;) {
      const batch = this.log.slice(from, high + 1, this.messageBytesMax);
      for (const entry of batch) if (entry.type === EntryType.ConfChange) yield entry;
      from += batch.length;
    }
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.log.applied >= this.log.committed) return false;
    return !this.unappliedConfChanges(this.log.committed).next().done;
  }

  private hup(transfer: boolean): void {
    if (this.role === Role.Leader) return;
    if (!this.mayCampaign()) return;
    if (this.hasUnappliedConfChanges()) {
      this.logger.info(`${this.describe()} does not campaign: committed conf changes are not yet applied`);
      return;
    }
    this.campaign(transfer ? "transfer" : this.preVote ? "pre-election" : "election");
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    if (this.role === Role.Leader) this.tickLeader();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (!this.mayCampaign()) return;
    // Needed from outside the voters: campaign at the next tick. Waiting for our own timeout would race the
    // needy voter, whose every new term restarts our timer, and it times out about as often as we do.
    const needed = !this.promotable() && this.role === Role.Follower;
    if (needed || this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickLeader(): void {
    this.leaderTicks++;
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.stepCheckQuorum();
      if (this.role === Role.Leader && this.leadTransferee !== NO_NODE) {
        this.logger.info(`${this.describe()} abandons leadership transfer to ${this.leadTransferee}: it did not finish within an election timeout`);
        this.leadTransferee = NO_NODE;
      }
      this.handOverIfRemoved();
    }
    if (this.role !== Role.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat(this.lastPendingReadContext());
    }
  }

  private stepCheckQuorum(): void {
    // A removed leader keeps leading until its hand-over completes: a voter that lost the knowledge that the
    // removal committed (a crash) can only relearn it from us, and would otherwise wait for our vote forever.
    // It refuses proposals and serves no reads, so staying on is harmless; the new leader's term ends it.
    if (!this.tracker.isVoter(this.id)) {
      for (const [id, progress] of this.tracker.progress) if (id !== this.id) progress.recentActive = false;
      return;
    }
    if (!this.tracker.quorumActive(this.id)) {
      this.logger.warn(`${this.describe()} steps down: it has not heard from a quorum for an election timeout`);
      this.becomeFollower(this.term, NO_NODE);
      return;
    }
    for (const [id, progress] of this.tracker.progress) if (id !== this.id) progress.recentActive = false;
  }

  /** Is this follower confident a leader is alive (within an election timeout of hearing it)? */
  private inLease(): boolean {
    return this.checkQuorum && this.leader !== NO_NODE && this.electionElapsed < this.electionTicks;
  }

  // ---------------------------------------------------------------- the step function

  step(m: Message): void {
    if (m.group !== this.group) {
      this.logger.warn(`${this.describe()} drops ${MESSAGE_TYPE_NAMES[m.type]} for group ${m.group}`);
      return;
    }
    switch (m.type) {
      case MessageType.Hup: this.hup(false); return;
      case MessageType.Beat: if (this.role === Role.Leader) this.broadcastHeartbeat(this.lastPendingReadContext()); return;
      case MessageType.CheckQuorum: if (this.role === Role.Leader) this.stepCheckQuorum(); return;
      default: break;
    }
    if (m.term === 0) {
      this.stepLocal(m);
      return;
    }
    if (m.term > this.term) {
      if ((m.type === MessageType.Vote || m.type === MessageType.PreVote) && bytesKey(m.context) !== bytesKey(TRANSFER_CONTEXT) && this.inLease()) {
        // A live leader was heard recently: a disruptive candidate (e.g. one rejoining after a partition) is ignored.
        this.logger.info(`${this.describe()} ignores ${MESSAGE_TYPE_NAMES[m.type]} from ${m.from} at term ${m.term}: leader ${this.leader} is live`);
        return;
      }
      if (m.type === MessageType.PreVote || (m.type === MessageType.PreVoteResp && !m.reject)) {
        // Pre-votes never change our term; a granted pre-vote answer carries the future term.
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NO_NODE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote || !this.promotable()) && (m.type === MessageType.App || m.type === MessageType.Heartbeat)) {
        // Tell a stale leader about the newer term so it steps down (with PreVote it would never see a
        // higher-term vote). A learner, or a removed node, never campaigns, so without this answer it would
        // ignore the leader of an older term for ever (seed 6033145: a learner that had voted in term 102).
        this.send({ type: MessageType.AppResp, to: m.from });
      } else if (m.type === MessageType.PreVote) {
        this.send({ type: MessageType.PreVoteResp, to: m.from, reject: true });
      } else if (m.type === MessageType.Vote) {
        // Refuse with our term (Raft's RequestVote rule: "reply false if term < currentTerm", so the
        // candidate can update itself). Ignoring it, as etcd does, relies on the candidate hearing the
        // newer term some other way; a candidate whose only needed voters got their term from nodes it
        // never talks to (a stale member campaigning at a removed node) would campaign a term behind forever.
        this.send({ type: MessageType.VoteResp, to: m.from, reject: true });
      }
      return;
    }

    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case Role.Leader: this.stepLeader(m); break;
      case Role.Candidate:
      case Role.PreCandidate: this.stepCandidate(m); break;
      case Role.Follower: this.stepFollower(m); break;
    }
  }

  /** Messages without a term: forwarded ReadIndex / TransferLeader and transport reports. */
  private stepLocal(m: Message): void {
    switch (m.type) {
      case MessageType.Prop:
        if (this.role === Role.Leader && m.from !== this.id) this.leaderForwardedProposal(m);
        else this.droppedForwardedProposals++;
        return;
      case MessageType.ReadIndex:
        if (this.role === Role.Leader) this.leaderReadIndex(m);
        else if (this.leader !== NO_NODE && m.from === this.id) this.send({ type: MessageType.ReadIndex, to: this.leader, term: 0, context: m.context });
        return;
      case MessageType.TransferLeader:
        if (this.role === Role.Leader) this.leaderTransfer(m.from);
        else if (this.leader !== NO_NODE) this.send({ type: MessageType.TransferLeader, to: this.leader, term: 0, from: m.from });
        return;
      case MessageType.Unreachable: {
        const progress = this.role === Role.Leader ? this.tracker.progress.get(m.from) : undefined;
        if (progress && progress.state === "replicate") progress.becomeProbe();
        return;
      }
      case MessageType.SnapStatus: {
        const progress = this.role === Role.Leader ? this.tracker.progress.get(m.from) : undefined;
        if (!progress || progress.state !== "snapshot") return;
        if (m.reject) progress.pendingSnapshot = 0;
        progress.becomeProbe();
        // Wait for the follower's append answer (or a heartbeat) before probing again.
        progress.probeSent = true;
        return;
      }
      default:
        this.logger.warn(`${this.describe()} drops ${MESSAGE_TYPE_NAMES[m.type]} from ${m.from} without a term`);
    }
  }

  private handleVoteRequest(m: Message): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === NO_NODE && this.leader === NO_NODE) ||
      (m.type === MessageType.PreVote && m.term > this.term);
    const upToDate = this.faults.voteIgnoresLog === true || this.log.isUpToDate(m.index, m.logTerm);
    const responseType = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
    if (canVote && upToDate) {
      // A granted answer carries the candidate's term, so a pre-candidate can tell it from stale answers.
      this.send({ type: responseType, to: m.from, term: m.term });
      if (m.type === MessageType.Vote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send({ type: responseType, to: m.from, reject: true });
      if (!upToDate && this.role === Role.Follower && this.leader === NO_NODE && this.promotable()) {
        // Our log is ahead of a candidate's: voters that need us will refuse it too, and whoever holds
        // the longest log may be the only one able to win. Campaign within a few ticks instead of a
        // whole timeout, or, on a lossy network, the candidates that cannot win keep resetting our timer
        // and the one that can rarely times out first (seed 6051456: a joint configuration whose
        // incoming half was {1,7}, with node 1 alone holding the longest log).
        const soon = 1 + this.random.int(Math.max(1, this.electionTicks >> 2));
        this.electionElapsed = Math.max(this.electionElapsed, this.randomizedElectionTimeout - soon);
      }
      if (!upToDate && !this.tracker.isVoter(this.id) && this.tracker.isVoter(m.from)) {
        this.neededAsCandidate = true;
        this.logger.info(`${this.describe()} refused ${m.from}, a voter whose log is behind ours: it will campaign itself`);
      }
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.leader = m.from;
        this.log.commitTo(m.commit);
        this.send({ type: MessageType.HeartbeatResp, to: m.from, context: m.context, index: m.index });
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.TimeoutNow:
        if (this.hasUnappliedConfChanges()) {
          // Campaign once they are applied (see campaignIfTransferPending), or the transfer would stall.
          this.transferCampaignPending = true;
          return;
        }
        this.logger.info(`${this.describe()} campaigns at once: leadership transfer from ${m.from}`);
        this.hup(true);
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, context: m.context });
        return;
      default:
        return;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case MessageType.VoteResp:
      case MessageType.PreVoteResp: {
        const expected = this.role === Role.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
        if (m.type !== expected) return;
        this.tracker.recordVote(m.from, !m.reject);
        this.checkVotes();
        return;
      }
      default:
        return;
    }
  }

  private stepLeader(m: Message): void {
    const progress = this.tracker.progress.get(m.from);
    if (!progress) return;
    switch (m.type) {
      case MessageType.AppResp:
        progress.recentActive = true;
        this.handleAppendResponse(m, progress);
        return;
      case MessageType.HeartbeatResp: {
        progress.recentActive = true;
        progress.probeSent = false;
        const sentTick = this.heartbeatRoundSentTick.get(m.index);
        if (sentTick !== undefined && sentTick > progress.lastAckTick) progress.lastAckTick = sentTick;
        // Appends filling the window may have been lost: the follower is alive, so make room to send again.
        if (progress.state === "replicate" && progress.inflights.full()) progress.inflights.freeFirstOne();
        if (progress.match < this.log.lastIndex()) this.sendAppendsTo(m.from);
        if (m.context.length > 0) this.handleReadAck(m);
        return;
      }
      default:
        return;
    }
  }

  // ---------------------------------------------------------------- replication

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send({ type: MessageType.AppResp, to: m.from, index: lastNew });
      return;
    }
    // Reject, with a hint that lets the leader skip a whole term of mismatches per round trip.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send({ type: MessageType.AppResp, to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term });
  }

  private handleAppendResponse(m: Message, progress: Progress): void {
    if (m.reject) {
      let nextProbe = m.rejectHint;
      if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (progress.maybeDecrTo(m.index, nextProbe)) {
        if (progress.state === "replicate") progress.becomeProbe();
        this.sendAppendsTo(m.from);
      }
      return;
    }
    const wasPaused = progress.isPaused();
    if (!progress.maybeUpdate(m.index)) {
      if (wasPaused && !progress.isPaused()) this.sendAppendsTo(m.from);
      return;
    }
    if (progress.state === "probe") progress.becomeReplicate();
    else if (progress.state === "snapshot" && progress.match >= progress.pendingSnapshot) {
      progress.becomeProbe();
      progress.becomeReplicate();
    } else if (progress.state === "replicate") progress.inflights.freeLE(m.index);

    const committed = this.maybeCommit();
    if (committed) this.onCommitAdvanced();
    else if (wasPaused) this.sendAppendsTo(m.from);
    else this.sendMoreAppendsTo(m.from);

    if (m.from === this.leadTransferee && progress.match === this.log.lastIndex()) {
      this.logger.info(`${this.describe()} sends TimeoutNow to ${m.from}: it has caught up`);
      this.send({ type: MessageType.TimeoutNow, to: m.from });
    }
    // A leader elected from outside the voters (see mayCampaign) hands over once a quorum has
    // acknowledged its term: only then does progress show which voter is the most caught up.
    if (committed) this.handOverIfRemoved();
  }

  /** §5.3/§5.4.2: commit the quorum's match index, but only by counting replicas of an entry of this term. */
  maybeCommit(): boolean {
    const index = this.tracker.committed();
    if (index <= this.log.committed) return false;
    if (!this.faults.commitAnyTerm && this.log.term(index) !== this.term) return false;
    this.log.commitTo(index);
    return true;
  }

  /** The leader's own entries up to index are durable: count them toward the quorum. */
  selfPersisted(index: LogIndex): void {
    if (this.role !== Role.Leader) return;
    const progress = this.tracker.progress.get(this.id);
    if (!progress || !progress.maybeUpdate(index)) return;
    if (this.maybeCommit()) this.onCommitAdvanced();
  }

  private onCommitAdvanced(): void {
    this.releaseReadsAwaitingCommit();
    this.broadcastAppend();
  }

  private handleSnapshot(m: Message): void {
    const snapshot = m.snapshot;
    assert(snapshot !== null, "snapshot message without a snapshot");
    const { index, term } = snapshot.metadata;
    if (this.restore(snapshot)) {
      this.logger.info(`${this.describe()} restored snapshot at ${index} (term ${term})`);
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.lastIndex() });
    } else {
      this.send({ type: MessageType.AppResp, to: m.from, index: this.log.committed });
    }
  }

  private restore(snapshot: Snapshot): boolean {
    const { index, term, confState } = snapshot.metadata;
    if (index <= this.log.committed) return false;
    if (this.role !== Role.Follower) {
      this.logger.warn(`${this.describe()} ignores a snapshot: not a follower`);
      this.becomeFollower(this.term + 1, NO_NODE);
      return false;
    }
    const members = [...confState.voters, ...confState.votersOutgoing, ...confState.learners, ...confState.learnersNext];
    if (!members.includes(this.id)) {
      this.logger.warn(`${this.describe()} ignores a snapshot at ${index}: its configuration does not include this node`);
      return false;
    }
    if (this.log.matchTerm(index, term)) {
      // We already have the entry the snapshot ends at: just commit up to it.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snapshot);
    this.switchToConfig(configFromConfState(confState));
    return true;
  }

  // ---------------------------------------------------------------- proposals

  private appendEntries(entries: Entry[]): boolean {
    let last = this.log.lastIndex();
    let bytes = 0;
    const stamped = entries.map((entry) => {
      bytes += entry.data.length;
      return { ...entry, term: this.term, index: ++last };
    });
    if (this.uncommittedBytes > 0 && bytes > 0 && this.uncommittedBytes + bytes > this.uncommittedBytesMax) return false;
    this.uncommittedBytes += bytes;
    const newLast = this.log.append(stamped);
    if (this.faults.leaderCountsUnpersisted) {
      this.tracker.progress.get(this.id)?.maybeUpdate(newLast);
      this.maybeCommit();
    }
    return true;
  }

  private refuse(reason: RejectReason): { ok: false; reason: RejectReason; leader: NodeId } {
    return { ok: false, reason, leader: this.leader };
  }

  /** Not in a configuration that has members (a node that has not joined yet has an empty one). */
  private removedFromConfig(): boolean {
    const members = this.tracker.memberIds();
    return members.length > 0 && !members.includes(this.id);
  }

  private checkProposable(dataBytes: number): RejectReason | null {
    if (this.removedFromConfig()) return RejectReason.Removed;
    if (this.role !== Role.Leader) {
      if (this.leader === NO_NODE) return RejectReason.NoLeader;
      return RejectReason.NotLeader;
    }
    if (!this.tracker.progress.has(this.id)) return RejectReason.Removed;
    if (this.leadTransferee !== NO_NODE) return RejectReason.Transferring;
    if (dataBytes > this.entryBytesMax) return RejectReason.TooLarge;
    return null;
  }

  propose(data: Uint8Array): ProposeResult {
    const refusal = this.checkProposable(data.length);
    if (refusal) return this.refuse(refusal);
    if (!this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data }])) return this.refuse(RejectReason.UncommittedLimit);
    this.broadcastAppend();
    return { ok: true, index: this.log.lastIndex(), term: this.term };
  }

  proposeOrForward(data: Uint8Array): ProposeResult {
    if (this.role === Role.Leader || this.leader === NO_NODE) return this.propose(data);
    if (data.length > this.entryBytesMax) return this.refuse(RejectReason.TooLarge);
    this.send({ type: MessageType.Prop, to: this.leader, term: 0, entries: [{ term: 0, index: 0, type: EntryType.Normal, data }] });
    return { ok: true, index: 0, term: 0 };
  }

  /** Like proposeConfChange() at the leader; a follower forwards the change to the leader. */
  proposeConfChangeOrForward(change: ConfChange): ProposeResult {
    if (this.role === Role.Leader || this.leader === NO_NODE) return this.proposeConfChange(change);
    this.send({ type: MessageType.Prop, to: this.leader, term: 0, entries: [{ term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(change) }] });
    return { ok: true, index: 0, term: 0 };
  }

  /** A follower forwarded commands to us. */
  private leaderForwardedProposal(m: Message): void {
    for (const entry of m.entries) {
      let result: ProposeResult;
      if (entry.type === EntryType.ConfChange) {
        let change: ConfChange;
        try {
          change = decodeConfChange(entry.data);
        } catch {
          this.droppedForwardedProposals++;
          continue;
        }
        result = this.proposeConfChange(change);
      } else {
        result = this.propose(entry.data);
      }
      if (!result.ok) {
        this.droppedForwardedProposals++;
        this.logger.info(`${this.describe()} drops a command forwarded by ${m.from}: ${result.reason}`);
      }
    }
  }

  proposeConfChange(change: ConfChange): ProposeResult {
    const data = encodeConfChange(change);
    const refusal = this.checkProposable(data.length);
    if (refusal) return this.refuse(refusal);
    if (this.pendingConfIndex > this.log.applied) return this.refuse(RejectReason.ConfChangePending);
    try {
      applyChange(this.tracker.config, change);
    } catch (error) {
      if (error instanceof InvalidConfChangeError) {
        this.logger.warn(`${this.describe()} refuses conf change: ${error.message}`);
        return this.refuse(RejectReason.InvalidConfChange);
      }
      throw error;
    }
    if (!this.appendEntries([{ term: 0, index: 0, type: EntryType.ConfChange, data }])) return this.refuse(RejectReason.UncommittedLimit);
    this.pendingConfIndex = this.log.lastIndex();
    this.broadcastAppend();
    return { ok: true, index: this.log.lastIndex(), term: this.term };
  }

  /** Leader: leave a joint configuration automatically once entering it has been applied. */
  maybeAutoLeave(): void {
    if (this.role !== Role.Leader || !this.tracker.config.autoLeave || this.log.applied < this.pendingConfIndex) return;
    const leave: ConfChange = { transition: ConfChangeTransition.Auto, changes: [], context: EMPTY };
    if (!this.appendEntries([{ term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(leave) }])) return;
    this.pendingConfIndex = this.log.lastIndex();
    this.logger.info(`${this.describe()} proposes leaving the joint configuration at ${this.pendingConfIndex}`);
    this.broadcastAppend();
  }

  /** Account for entries handed to the application for apply (they are committed: no longer uncommitted bytes). */
  reduceUncommitted(entries: readonly Entry[]): void {
    if (this.uncommittedBytes === 0) return;
    let bytes = 0;
    for (const entry of entries) bytes += entry.data.length;
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes - bytes);
  }

  applyConfChange(change: ConfChange): ConfState {
    let next;
    try {
      next = applyChange(this.tracker.config, change);
    } catch (error) {
      if (!(error instanceof InvalidConfChangeError)) throw error;
      // Every replica applies the same entries, so ignoring it keeps them identical.
      this.logger.warn(`${this.describe()} ignores invalid committed conf change: ${error.message}`);
      return confStateFromConfig(this.tracker.config);
    }
    this.switchToConfig(next);
    return confStateFromConfig(next);
  }

  private switchToConfig(config: ReturnType<typeof configFromConfState>): void {
    this.tracker.config = config;
    const members = new Set(this.tracker.memberIds());
    for (const id of [...this.tracker.progress.keys()]) if (!members.has(id)) this.tracker.progress.delete(id);
    for (const id of members) {
      const existing = this.tracker.progress.get(id);
      const isLearner = !this.tracker.isVoter(id);
      if (existing) existing.isLearner = isLearner;
      else {
        const progress = new Progress(this.log.lastIndex() + 1, isLearner, this.tracker.inflightsMax, this.tracker.inflightBytesMax);
        if (id === this.id) progress.match = this.log.stableLastIndex();
        this.tracker.progress.set(id, progress);
      }
    }
    if (this.role !== Role.Leader) return;
    if (!this.tracker.isVoter(this.id)) {
      // Removed (or demoted). Stepping down at once can deadlock the cluster: voters that have not yet
      // learned that the change committed still need our vote, and we would refuse them (our log is
      // longer). So keep leading, refuse proposals, and hand leadership to the most caught-up voter.
      this.handOverIfRemoved();
      return;
    }
    if (this.leadTransferee !== NO_NODE && !this.tracker.isVoter(this.leadTransferee)) this.leadTransferee = NO_NODE;
    if (this.maybeCommit()) this.onCommitAdvanced();
    else this.broadcastAppend();
  }

  // ---------------------------------------------------------------- leadership transfer

  private handOverIfRemoved(): void {
    if (this.role !== Role.Leader || this.tracker.isVoter(this.id) || this.leadTransferee !== NO_NODE) return;
    // Prefer a voter that answered a heartbeat within the last election timeout, then the most caught up.
    // By match alone a crashed voter can win every time (caught-up voters tie, and the lowest id wins):
    // each TimeoutNow to it is lost, and our heartbeats keep the live voters from ever campaigning.
    const answeredSince = this.leaderTicks - this.electionTicks;
    let target: NodeId = NO_NODE;
    let targetMatch = -1;
    let targetAnswered = false;
    for (const id of this.tracker.voterIds()) {
      const progress = this.tracker.progress.get(id);
      const match = progress?.match ?? 0;
      const answered = (progress?.lastAckTick ?? Number.NEGATIVE_INFINITY) > answeredSince;
      if ((answered && !targetAnswered) || (answered === targetAnswered && match > targetMatch)) {
        target = id;
        targetMatch = match;
        targetAnswered = answered;
      }
    }
    if (target === NO_NODE) return;
    this.logger.info(`${this.describe()} is no longer a voter: handing leadership to ${target}`);
    this.leaderTransfer(target);
  }

  transferLeadership(to: NodeId): void {
    this.stepLocal({ ...this.localMessage(MessageType.TransferLeader), from: to });
  }

  private leaderTransfer(to: NodeId): void {
    const progress = this.tracker.progress.get(to);
    if (!progress || progress.isLearner || to === this.id) {
      this.logger.warn(`${this.describe()} ignores transfer to ${to}: not a voter other than itself`);
      return;
    }
    if (this.leadTransferee === to) return;
    this.leadTransferee = to;
    // The transfer must finish within an election timeout (see tickLeader).
    this.electionElapsed = 0;
    this.logger.info(`${this.describe()} starts transferring leadership to ${to}`);
    if (progress.match === this.log.lastIndex()) this.send({ type: MessageType.TimeoutNow, to });
    else this.sendAppendsTo(to);
  }

  // ---------------------------------------------------------------- linearizable reads

  readIndex(context: Uint8Array): ReadIndexResult {
    if (this.removedFromConfig()) return this.refuse(RejectReason.Removed);
    if (this.role === Role.Leader) {
      if (this.pendingReads.size + this.readsAwaitingCommit.length >= limits.raftPendingReadsMax) return this.refuse(RejectReason.TooManyPendingReads);
      this.leaderReadIndex({ ...this.localMessage(MessageType.ReadIndex), context });
      return { ok: true };
    }
    if (this.leader === NO_NODE) return this.refuse(RejectReason.NoLeader);
    this.send({ type: MessageType.ReadIndex, to: this.leader, term: 0, context });
    return { ok: true };
  }

  private localMessage(type: MessageType): Message {
    return {
      type, group: this.group, to: this.id, from: this.id, term: 0, logTerm: 0, index: 0, entries: [],
      commit: 0, snapshot: null, reject: false, rejectHint: 0, context: EMPTY,
    };
  }

  /**
   * A leader lease: a quorum answered heartbeats sent less than an election
   * timeout (minus a margin for clock-rate differences) ago. Those followers
   * reset their election timers on receipt and, under CheckQuorum, refuse to
   * vote for anyone else for an election timeout, so no other leader can
   * exist yet. Leadership alone is not enough: CheckQuorum notices a lost
   * quorum only up to two election timeouts late.
   */
  private leaseValid(): boolean {
    if (this.leadTransferee !== NO_NODE) return false; // a transfer deliberately breaks followers' leases
    const horizon = this.leaderTicks - (this.electionTicks - LEASE_MARGIN_TICKS);
    const votes = new Map<NodeId, boolean>();
    for (const id of this.tracker.voterIds()) {
      if (id === this.id) votes.set(id, true);
      else votes.set(id, (this.tracker.progress.get(id)?.lastAckTick ?? Number.NEGATIVE_INFINITY) > horizon);
    }
    return this.tracker.voteResult(votes) === "won";
  }

  private committedInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private leaderReadIndex(m: Message): void {
    if (!this.tracker.isVoter(this.id)) return; // a removed leader is only handing over: it serves no reads
    if (!this.committedInCurrentTerm()) {
      // Until our no-op commits, our commit index may lag the true one: wait.
      if (this.readsAwaitingCommit.length < limits.raftPendingReadsMax) this.readsAwaitingCommit.push(m);
      return;
    }
    const index = this.log.committed;
    const singleVoter = this.tracker.voterIds().length === 1 && this.tracker.isVoter(this.id);
    if (singleVoter || (this.leaseReads && this.leaseValid()) || this.faults.readIndexWithoutQuorum) {
      this.answerRead({ index, from: m.from, context: m.context, acks: new Map() });
      return;
    }
    const key = bytesKey(m.context);
    if (this.pendingReads.has(key)) return; // the same context is already being confirmed
    this.pendingReads.set(key, { index, from: m.from, context: m.context, acks: new Map([[this.id, true]]) });
    this.pendingReadOrder.push(key);
    this.broadcastHeartbeat(m.context);
  }

  private releaseReadsAwaitingCommit(): void {
    if (this.readsAwaitingCommit.length === 0 || !this.committedInCurrentTerm()) return;
    const waiting = this.readsAwaitingCommit;
    this.readsAwaitingCommit = [];
    for (const m of waiting) this.leaderReadIndex(m);
  }

  private lastPendingReadContext(): Uint8Array {
    const last = this.pendingReadOrder[this.pendingReadOrder.length - 1];
    return last === undefined ? EMPTY : this.pendingReads.get(last)?.context ?? EMPTY;
  }

  private handleReadAck(m: Message): void {
    const key = bytesKey(m.context);
    const read = this.pendingReads.get(key);
    if (!read) return;
    read.acks.set(m.from, true);
    if (this.tracker.voteResult(read.acks) !== "won") return;
    // Leadership is confirmed as of this request: every request queued before it is confirmed too.
    const position = this.pendingReadOrder.indexOf(key);
    const released = this.pendingReadOrder.splice(0, position + 1);
    for (const releasedKey of released) {
      const pending = this.pendingReads.get(releasedKey);
      this.pendingReads.delete(releasedKey);
      if (pending) this.answerRead(pending);
    }
  }

  private answerRead(read: PendingRead): void {
    if (read.from === this.id || read.from === NO_NODE) this.readStates.push({ index: read.index, context: read.context });
    else this.send({ type: MessageType.ReadIndexResp, to: read.from, term: this.term, index: read.index, context: read.context });
  }
}

