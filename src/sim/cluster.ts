/**
 * A whole Raft cluster on one event queue, driven by one seed: nodes that run
 * the server's Ready loop on a simulated disk, a faulty network, clients, and
 * an operator that crashes nodes, partitions the network, changes membership,
 * snapshots and transfers leadership. The safety checker watches every step.
 */
import { assert } from "../lib/assert.js";
import { groupId, nodeId, NO_NODE, type LogIndex, type NodeId, type Term } from "../lib/ids.js";
import { createPrng, type Prng } from "../lib/prng.js";
import { MemoryStorage, RawNode, confState, decodeConfChange } from "../raft/mod.js";
import type { WalFaults, WalRecord } from "../storage/wal/wal.js";
import {
  ConfChangeTransition,
  ConfChangeType,
  EntryType,
  MessageType,
  MESSAGE_TYPE_NAMES,
  ROLE_NAMES,
  Role,
  type ConfChange,
  type ConfChangeSingle,
  type ConfState,
  type Entry,
  type LogStorage,
  type Message,
  type Ready,
  type RaftFaults,
} from "../raft/types.js";
import { SafetyChecker, digestBytes, type Violation } from "./checkers.js";
import { EventQueue } from "./event-queue.js";
import { SimNetwork, type NetworkConfig, type PartitionKind } from "./network.js";
import { ShadowLog } from "./shadow-log.js";
import { REGISTER_KEYS, RegisterMachine, decodeSnapshotData, encodeCommand, type MachineState } from "./state-machine.js";
import { describeSwarm, drawSwarm, type ClusterSize, type SwarmConfig } from "./swarm.js";
import { TraceLog } from "./trace.js";
import type { DiskClock } from "./sim-file-system.js";
import { WalDisk } from "./wal-disk.js";

const GROUP = groupId(0);
/** Node ids never exceed this: the operator adds members up to it (ids are never reused, as in etcd). */
export const NODE_IDS_MAX = 12;
/** Liveness bounds, in election timeouts of simulated time. */
const LIVENESS_ELECTION_TIMEOUTS_MAX = 40;
const LIVENESS_CONVERGENCE_TIMEOUTS_MAX = 80;
/** Network and disk delays of the liveness phase: well under the shortest election timeout. */
const LIVENESS_DELAY_MS_MAX = 4;
/** A client gives up on an operation (outcome unknown) after this many election timeouts. */
const CLIENT_TIMEOUT_ELECTION_TIMEOUTS = 4;
const EMPTY = new Uint8Array(0);
/** WAL segment sizes a WAL-mode run draws from: small, so that runs rotate and purge segments often. */
const WAL_SEGMENT_BYTES_CHOICES = [8 * 1024, 32 * 1024, 256 * 1024];
/**
 * WAL mode: the chance that an operator crash waits for the victim's next
 * WAL batch and strikes while it is written or synced. A node's WAL is idle
 * most of the time, so crashes at random moments would rarely tear a write.
 */
const AIMED_CRASH_PROBABILITY = 0.5;

/** Where nodes keep their durable log: the core's MemoryStorage (fast, synchronous), or the production WAL on a crashable in-memory disk. */
export type StorageMode = "memory" | "wal";

export interface SimulationOptions {
  readonly seed: number;
  readonly nodeCount?: ClusterSize;
  /** Events of the safety phase. */
  readonly steps: number;
  readonly faults?: RaftFaults;
  /** Keep a trace of the last `traceEventsMax` events (slower; used to replay a failing seed). */
  readonly trace?: boolean;
  readonly traceEventsMax?: number;
  /** Default "memory". "wal" runs asynchronously: use runSimulationAsync(). */
  readonly storage?: StorageMode;
  /** Planted faults of the WAL (WAL mode only). */
  readonly walFaults?: WalFaults;
  /** Planted faults of the simulated disk (WAL mode only). */
  readonly diskFaults?: DiskFaults;
  /**
   * WAL mode: report a restart that lost an acknowledged WAL record (default
   * true). Off, the node goes on from what recovery found, so a test can show
   * that Raft's own safety checkers catch a WAL that lies about durability.
   */
  readonly checkDurability?: boolean;
}

export interface DiskFaults {
  /** At every crash, flip one bit somewhere in the node's durable WAL: recovery must refuse it (or the ledger notice). */
  readonly flipBitAtCrash?: boolean;
}

export interface SimulationCounters {
  elections: number;
  leaderChanges: number;
  snapshotsCreated: number;
  snapshotsInstalled: number;
  membershipChangesProposed: number;
  membershipChangesCompleted: number;
  transfersRequested: number;
  transfersCompleted: number;
  readsIssued: number;
  readsServed: number;
  proposalsSubmitted: number;
  proposalsCommitted: number;
  proposalsRefused: number;
  entriesApplied: number;
  crashes: number;
  loopCrashes: number;
  restarts: number;
  partitions: number;
  messagesSent: number;
  messagesDropped: number;
  messagesDuplicated: number;
  checks: number;
  /** WAL mode: append() calls, WAL opens, torn writes that recovery cut off, and crashes that hit while appends were under way. */
  walAppends: number;
  walOpens: number;
  tornTailsCut: number;
  crashesMidBatch: number;
}

export interface SimulationResult {
  readonly seed: number;
  readonly swarm: SwarmConfig;
  readonly description: string;
  readonly violation: Violation | null;
  readonly counters: SimulationCounters;
  readonly steps: number;
  readonly simulatedMs: number;
  readonly trace: readonly string[];
}

type LoopPhase = "before-send" | "mid-persist" | "after-persist" | "after-send-persisted" | "mid-apply" | "before-advance";

interface LivenessProgress {
  readonly electionDeadlineMs: number;
  readonly convergenceDeadlineMs: number;
  elected: boolean;
  lastPollMs: number;
}

interface PendingWrite {
  readonly client: SimClient;
  readonly node: SimNode;
  readonly incarnation: number;
  readonly index: LogIndex;
  readonly digest: number;
}

interface PendingRead {
  readonly key: string;
  readonly client: SimClient;
  readonly node: SimNode;
  readonly incarnation: number;
  readonly requiredIndex: LogIndex;
  readIndex: LogIndex;
}

interface SimClient {
  readonly id: number;
  leaderGuess: NodeId;
  /** Bumped on every new operation so a stale timeout cannot cancel a later one. */
  operation: number;
  busy: boolean;
}

class SimNode {
  raft: RawNode | null = null;
  machine: RegisterMachine | null = null;
  durableMachine: MachineState;
  /** The durable log in memory mode; null in WAL mode. */
  readonly memory: MemoryStorage | null;
  /** The durable log in WAL mode; null in memory mode. */
  readonly walDisk: WalDisk | null;
  /** WAL mode: the WAL is being opened (recovered) for a start. */
  starting = false;
  /** WAL mode: the operator's crash waits for this node's next WAL batch. */
  crashAimed = false;
  readonly view = new ShadowLog();
  readonly random: Prng;
  incarnation = 0;
  up = false;
  decommissioned = false;
  readyOutstanding = false;
  kickScheduled = false;
  role: Role = Role.Follower;
  term: Term = 0;
  leaderHint: NodeId = NO_NODE;
  readonly waitingReads: PendingRead[] = [];
  readonly pendingWrites = new Map<LogIndex, PendingWrite>();

  constructor(
    readonly id: NodeId,
    initialConf: ConfState,
    readonly tickIntervalMs: number,
    random: Prng,
    walDisk: WalDisk | null,
  ) {
    this.memory = walDisk === null ? new MemoryStorage({ confState: initialConf }) : null;
    this.walDisk = walDisk;
    this.durableMachine = { values: new Map(), applied: 0, confState: initialConf };
    this.random = random;
  }

  /** The log the core reads. */
  get storage(): LogStorage {
    if (this.memory !== null) return this.memory;
    assert(this.walDisk !== null, "node without storage");
    return this.walDisk.storage;
  }

  get memoryStorage(): MemoryStorage {
    assert(this.memory !== null, "memory storage used in WAL mode");
    return this.memory;
  }
}

export class Simulation {
  readonly swarm: SwarmConfig;
  readonly counters: SimulationCounters = {
    elections: 0, leaderChanges: 0, snapshotsCreated: 0, snapshotsInstalled: 0, membershipChangesProposed: 0,
    membershipChangesCompleted: 0, transfersRequested: 0, transfersCompleted: 0, readsIssued: 0, readsServed: 0,
    proposalsSubmitted: 0, proposalsCommitted: 0, proposalsRefused: 0, entriesApplied: 0, crashes: 0, loopCrashes: 0,
    restarts: 0, partitions: 0, messagesSent: 0, messagesDropped: 0, messagesDuplicated: 0, checks: 0,
    walAppends: 0, walOpens: 0, tornTailsCut: 0, crashesMidBatch: 0,
  };
  private readonly queue = new EventQueue();
  private readonly checker = new SafetyChecker();
  private readonly network: SimNetwork;
  private readonly nodes = new Map<NodeId, SimNode>();
  private readonly clients: SimClient[] = [];
  private readonly pendingReads = new Map<string, PendingRead>();
  private readonly trace: TraceLog | null;
  private readonly random: Prng;
  private readonly diskRandom: Prng;
  private readonly operatorRandom: Prng;
  private readonly clientRandom: Prng;
  private readonly nodeRandom: Prng;
  private phase: "safety" | "liveness" = "safety";
  private nextNodeId = 1;
  private nextCommandValue = 1;
  private nextReadId = 1;
  private lastLeader: NodeId = NO_NODE;
  private transferTarget: NodeId = NO_NODE;
  private transferTerm: Term = 0;
  private partitionActive = false;
  private loopCrashProbability: number;
  private diskDelayMsMax: number;
  private readonly firstAppliedMembership = new Set<LogIndex>();
  private readonly retiring = new Set<NodeId>();
  private stepsRun = 0;
  private genesisConf: ConfState = emptyConf();
  private readonly storageMode: StorageMode;
  /** WAL mode: delays of the simulated disks, crash survivors, segment size. */
  private readonly storageRandom: Prng | null = null;
  private readonly diskClock: DiskClock | null = null;
  private readonly walSegmentBytes: number = 0;
  /** WAL mode: work may be waiting on the microtask queue, which the run loop drains before the next event. */
  private storageBusy = false;

  constructor(private readonly options: SimulationOptions) {
    const root = createPrng(options.seed);
    this.swarm = drawSwarm(root.fork(), { nodeCount: options.nodeCount, faults: options.faults });
    this.network = new SimNetwork(this.swarm.network, root.fork());
    this.random = root.fork();
    this.diskRandom = root.fork();
    this.operatorRandom = root.fork();
    this.clientRandom = root.fork();
    this.nodeRandom = root.fork();
    this.loopCrashProbability = this.swarm.loopCrashProbability;
    this.diskDelayMsMax = this.swarm.diskDelayMsMax;
    this.trace = options.trace === true ? new TraceLog(options.traceEventsMax ?? 400) : null;
    this.storageMode = options.storage ?? "memory";
    if (this.storageMode === "wal") {
      // Forked last, so that a seed draws the same cluster, network and faults in both modes.
      const storageRandom = root.fork();
      this.storageRandom = storageRandom;
      this.walSegmentBytes = storageRandom.pick(WAL_SEGMENT_BYTES_CHOICES);
      this.diskClock = {
        nowMs: () => this.queue.nowMs,
        schedule: (delayMs, run) => this.queue.schedule(delayMs, run),
        writeDelayMs: () => storageRandom.float() * this.swarm.diskDelayMsMin,
        syncDelayMs: () => this.swarm.diskDelayMsMin + storageRandom.float() * (this.diskDelayMsMax - this.swarm.diskDelayMsMin),
        onCompletion: () => {
          this.storageBusy = true;
        },
      };
    }
  }

  get electionTimeoutMs(): number {
    return this.swarm.electionTicks * this.swarm.tickIntervalMs;
  }

  /** Runs a memory-mode simulation to its end. */
  run(): SimulationResult {
    assert(this.storageMode === "memory", "WAL mode runs asynchronously: use runAsync()");
    this.setUp();
    this.runSafetyPhase();
    if (this.checker.firstViolation === null) {
      const liveness = this.beginLivenessPhase();
      while (this.livenessStep(liveness));
    }
    return this.result();
  }

  /**
   * Runs the simulation in either mode. In WAL mode, the disks complete their
   * operations in simulated-time events and the WAL continues on the microtask
   * queue; the loop drains that queue (one macrotask turn, when an event may
   * have left work there) before it runs the next event, so the interleaving,
   * and the whole run, is still a pure function of the seed.
   */
  async runAsync(): Promise<SimulationResult> {
    if (this.storageMode === "memory") return this.run();
    this.setUp();
    for (let step = 0; step < this.options.steps; step++) {
      await this.settleStorage();
      if (this.checker.firstViolation !== null || !this.step()) break;
    }
    await this.settleStorage();
    if (this.checker.firstViolation === null) {
      const liveness = this.beginLivenessPhase();
      for (;;) {
        await this.settleStorage();
        if (this.checker.firstViolation !== null || !this.livenessStep(liveness)) break;
      }
    }
    return this.result();
  }

  private async settleStorage(): Promise<void> {
    if (!this.storageBusy) return;
    // Every microtask queued so far runs before a macrotask: one turn drains the WAL's chains of promises.
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.storageBusy = false;
  }

  private setUp(): void {
    const initial: NodeId[] = [];
    for (let count = 0; count < this.swarm.nodeCount; count++) initial.push(nodeId(this.nextNodeId++));
    const conf = confState(initial);
    this.genesisConf = conf;
    for (const id of initial) this.startNode(this.createNode(id, conf));
    for (let count = 0; count < this.swarm.clientCount; count++) {
      const client: SimClient = { id: count + 1, leaderGuess: NO_NODE, operation: 0, busy: false };
      this.clients.push(client);
      this.scheduleClient(client);
    }
    this.scheduleOperator();
  }

  private result(): SimulationResult {
    this.counters.messagesSent = this.network.counters.sent;
    this.counters.messagesDropped = this.network.counters.dropped;
    this.counters.messagesDuplicated = this.network.counters.duplicated;
    this.counters.checks = this.checker.checks;
    return {
      seed: this.options.seed,
      swarm: this.swarm,
      description: this.storageMode === "memory" ? describeSwarm(this.swarm) : `${describeSwarm(this.swarm)}; storage=wal segment=${this.walSegmentBytes / 1024}KiB`,
      violation: this.checker.firstViolation,
      counters: this.counters,
      steps: this.stepsRun,
      simulatedMs: this.queue.nowMs,
      trace: this.trace === null ? [] : this.trace.lines(),
    };
  }

  // ---- phases ----------------------------------------------------------------------------------

  private runSafetyPhase(): void {
    for (let step = 0; step < this.options.steps; step++) {
      if (!this.step()) break;
    }
  }

  /** Runs one event; false when the run must stop (a violation, or nothing left to do). */
  private step(): boolean {
    const time = this.queue.peekTimeMs();
    if (time === undefined) return false;
    this.checker.setTime(time);
    try {
      this.queue.runNext();
    } catch (error) {
      this.checker.report("core-error", describeError(error));
    }
    this.stepsRun++;
    return this.checker.firstViolation === null;
  }

  private beginLivenessPhase(): LivenessProgress {
    this.phase = "liveness";
    this.note(NO_NODE, "=== liveness phase: heal the network, restart every node, stop injecting faults ===");
    this.loopCrashProbability = 0;
    this.network.heal();
    this.partitionActive = false;
    // Slow links and disks are faults too: with a round trip near the election timeout, elections
    // can race forever (seed 24 at 30000 steps: 40ms links, 50ms timeouts), which says nothing about Raft.
    const calm: NetworkConfig = {
      delayMsMin: 1, delayMsMax: LIVENESS_DELAY_MS_MAX, linkDelaySpreadMs: 0,
      lossProbability: 0, duplicateProbability: 0, reorderProbability: 0, reorderDelayMsMax: 0,
    };
    this.diskDelayMsMax = Math.min(this.diskDelayMsMax, LIVENESS_DELAY_MS_MAX);
    this.network.reconfigure(calm);
    for (const node of this.nodes.values()) if (!node.up && !node.decommissioned && !node.starting) this.startNode(node);
    const electionDeadlineMs = this.queue.nowMs + LIVENESS_ELECTION_TIMEOUTS_MAX * this.electionTimeoutMs;
    return {
      electionDeadlineMs,
      convergenceDeadlineMs: electionDeadlineMs + LIVENESS_CONVERGENCE_TIMEOUTS_MAX * this.electionTimeoutMs,
      elected: false,
      lastPollMs: -Infinity,
    };
  }

  /** Runs one event of the liveness phase; false once the phase is over (converged, violated, or nothing left). */
  private livenessStep(progress: LivenessProgress): boolean {
    const time = this.queue.peekTimeMs();
    if (time === undefined) return false;
    if (!progress.elected && time > progress.electionDeadlineMs) {
      this.checker.report("liveness", `no leader elected within ${LIVENESS_ELECTION_TIMEOUTS_MAX} election timeouts after faults healed`);
      return false;
    }
    if (time > progress.convergenceDeadlineMs) {
      this.checker.report("liveness", `acknowledged writes up to index ${this.checker.acknowledgedIndexMax} not applied on every member in time: ${this.describeMembers()}`);
      return false;
    }
    if (!this.step()) return false;
    if (this.queue.nowMs - progress.lastPollMs < this.swarm.tickIntervalMs) return true;
    progress.lastPollMs = this.queue.nowMs;
    const leader = this.currentLeader();
    if (leader === null) return true;
    progress.elected = true;
    if (this.converged(leader)) {
      this.note(NO_NODE, `liveness reached: leader ${leader.id}, every member applied ≥ ${this.checker.acknowledgedIndexMax}`);
      return false;
    }
    return true;
  }

  private converged(leader: SimNode): boolean {
    const raft = leader.raft;
    if (raft === null) return false;
    const config = raft.status().config;
    if (config.votersOutgoing.length > 0 && !config.autoLeave) this.proposeMembership(leader, { transition: ConfChangeTransition.Auto, changes: [], context: EMPTY });
    const required = this.checker.acknowledgedIndexMax;
    for (const id of membersOf(config)) {
      const node = this.nodes.get(id);
      if (node === undefined || !node.up || node.machine === null || node.machine.applied < required) return false;
    }
    return config.votersOutgoing.length === 0;
  }

  private describeMembers(): string {
    const parts: string[] = [];
    for (const node of this.nodes.values()) {
      if (node.decommissioned) continue;
      parts.push(`n${node.id}:${node.up ? ROLE_NAMES[node.role] : "down"} term ${node.term} applied ${node.machine?.applied ?? "-"}`);
    }
    const leader = this.currentLeader();
    if (leader?.raft) {
      const progress = [...leader.raft.status().progress].map(([id, peer]) => `${id}:${peer.state} match ${peer.match} next ${peer.next}`);
      parts.push(`leader ${leader.id} progress {${progress.join("; ")}}`);
    }
    return parts.join(", ");
  }

  // ---- nodes -----------------------------------------------------------------------------------

  private createNode(id: NodeId, conf: ConfState): SimNode {
    const drift = this.swarm.tickDrift;
    const factor = drift === 0 ? 1 : 1 - drift + this.nodeRandom.float() * 2 * drift;
    const walDisk = this.diskClock === null ? null : new WalDisk({
      nodeId: id, group: GROUP, genesis: conf, clock: this.diskClock, segmentBytes: this.walSegmentBytes, faults: this.options.walFaults ?? {},
    });
    const node = new SimNode(id, conf, this.swarm.tickIntervalMs * factor, this.nodeRandom.fork(), walDisk);
    this.nodes.set(id, node);
    return node;
  }

  private startNode(node: SimNode): void {
    assert(!node.up && !node.decommissioned && !node.starting, () => `start of node ${node.id} that is up, starting or gone`);
    const disk = node.walDisk;
    if (disk === null) {
      this.bootNode(node);
      return;
    }
    // The WAL opens (and recovers) first; the node comes up once it has, as a server would.
    node.starting = true;
    this.storageBusy = true;
    disk.start().then(
      (report) => {
        node.starting = false;
        if (node.decommissioned) return;
        this.counters.walOpens++;
        if (report.tornTail !== null) {
          this.counters.tornTailsCut++;
          this.note(node.id, `WAL recovery cut a torn write: ${report.tornTail.bytesDropped} bytes at ${report.tornTail.file}:${report.tornTail.offset} (${report.tornTail.reason})`);
        }
        if (report.durabilityProblem !== null) {
          const message = `node ${node.id} restarted without what its WAL acknowledged: ${report.durabilityProblem}`;
          if (this.options.checkDurability !== false) {
            this.checker.report("durability", message);
            return;
          }
          this.note(node.id, `${message} (not checked: going on)`);
        }
        this.guarded(() => this.bootNode(node));
      },
      (error: unknown) => {
        node.starting = false;
        if (!node.decommissioned) this.checker.report("storage-error", `node ${node.id} could not open its WAL: ${describeError(error)}`);
      },
    );
  }

  /** Builds the node's state machine and Raft core from its durable state and starts its clock. */
  private bootNode(node: SimNode): void {
    const snapshot = node.storage.snapshot();
    if (snapshot.metadata.index > node.durableMachine.applied) {
      // Crashed between persisting a snapshot and installing it: finish the install, as the server does.
      node.durableMachine = { values: decodeSnapshotData(snapshot.data), applied: snapshot.metadata.index, confState: snapshot.metadata.confState };
      this.checker.observeSnapshotRestore(node.id, snapshot.metadata.index, snapshot.metadata.term);
    }
    node.machine = new RegisterMachine(node.durableMachine);
    node.incarnation++;
    node.up = true;
    node.readyOutstanding = false;
    node.kickScheduled = false;
    node.role = Role.Follower;
    node.term = node.storage.initialState().hardState.term;
    node.view.resetFromStorage(node.storage);
    node.raft = new RawNode({
      id: node.id,
      group: GROUP,
      electionTicks: this.swarm.electionTicks,
      heartbeatTicks: this.swarm.heartbeatTicks,
      storage: node.storage,
      // Not the machine's applied index: the core takes its membership from the snapshot, so it must
      // hand out the entries after the snapshot again for their membership changes to be replayed.
      applied: snapshot.metadata.index,
      preVote: this.swarm.preVote,
      checkQuorum: this.swarm.checkQuorum,
      readOnly: this.swarm.readOnly,
      random: node.random.fork(),
      faults: this.swarm.faults,
      messageBytesMax: this.swarm.messageBytesMax,
      inflightMessagesMax: this.swarm.inflightMessagesMax,
    });
    this.note(node.id, `start (incarnation ${node.incarnation}, term ${node.term}, applied ${node.machine.applied}, log ${node.storage.firstIndex()}..${node.storage.lastIndex()})`);
    const incarnation = node.incarnation;
    const tick = (): void => {
      if (node.incarnation !== incarnation || !node.up || node.raft === null) return;
      node.raft.tick();
      this.kick(node);
      this.queue.schedule(node.tickIntervalMs, tick);
    };
    this.queue.schedule(this.random.float() * node.tickIntervalMs, tick);
    this.kick(node);
  }

  private crash(node: SimNode, why: string): void {
    if (!node.up) return;
    this.counters.crashes++;
    this.note(node.id, `CRASH (${why}): unpersisted state lost; durable log ${node.storage.firstIndex()}..${node.storage.lastIndex()}, applied ${node.durableMachine.applied}`);
    this.crashDisk(node);
    node.crashAimed = false;
    node.up = false;
    node.raft = null;
    node.machine = null;
    node.readyOutstanding = false;
    node.role = Role.Follower;
    node.incarnation++;
    for (const read of node.waitingReads) this.finishRead(read);
    node.waitingReads.length = 0;
    for (const pending of node.pendingWrites.values()) pending.client.busy = false;
    node.pendingWrites.clear();
    if (this.phase === "safety" && !node.decommissioned) {
      this.queue.schedule(this.operatorRandom.float() * this.swarm.downtimeMsMax + 1, () => {
        if (!node.up && !node.decommissioned && !node.starting) {
          this.counters.restarts++;
          this.startNode(node);
        }
      });
    }
  }

  /** Stops a node for good once it is no longer a member. */
  private decommission(node: SimNode): void {
    if (node.decommissioned) return;
    this.note(node.id, "decommissioned (no longer a member)");
    if (node.walDisk !== null && (node.up || node.starting)) node.walDisk.crash(this.walRandom());
    if (node.up) {
      node.up = false;
      node.raft = null;
      node.machine = null;
      node.incarnation++;
      for (const read of node.waitingReads) this.finishRead(read);
      node.waitingReads.length = 0;
      for (const pending of node.pendingWrites.values()) pending.client.busy = false;
      node.pendingWrites.clear();
    }
    node.decommissioned = true;
  }

  /** WAL mode: the power cut itself (memory mode keeps exactly what was persisted). */
  private crashDisk(node: SimNode): void {
    if (node.walDisk === null) return;
    const report = node.walDisk.crash(this.walRandom());
    if (report.appendsInFlight > 0) this.counters.crashesMidBatch++;
    this.note(node.id, `power cut with ${report.appendsInFlight} WAL appends and ${report.diskOperationsInFlight} disk operations under way`);
    if (this.options.diskFaults?.flipBitAtCrash === true) {
      const where = node.walDisk.flipBit(this.walRandom());
      if (where !== null) this.note(node.id, `PLANTED DISK FAULT: flipped ${where}`);
    }
  }

  private walRandom(): Prng {
    assert(this.storageRandom !== null, "WAL randomness used in memory mode");
    return this.storageRandom;
  }

  /** Runs storage continuations (on the microtask queue, outside step()) with the same error reporting as events. */
  private guarded(action: () => void): void {
    try {
      action();
    } catch (error) {
      this.checker.report("core-error", describeError(error));
    }
  }

  private maybeLoopCrash(node: SimNode, phase: LoopPhase): boolean {
    if (this.loopCrashProbability === 0 || !this.diskRandom.chance(this.loopCrashProbability)) return false;
    this.counters.loopCrashes++;
    this.crash(node, `in the Ready loop, ${phase}`);
    return true;
  }

  // ---- the Ready loop --------------------------------------------------------------------------

  private kick(node: SimNode): void {
    if (node.kickScheduled || node.readyOutstanding || !node.up) return;
    node.kickScheduled = true;
    const incarnation = node.incarnation;
    this.queue.schedule(0, () => {
      if (node.incarnation !== incarnation) return;
      node.kickScheduled = false;
      this.handleReady(node);
    });
  }

  private handleReady(node: SimNode): void {
    const raft = node.raft;
    if (!node.up || raft === null || node.readyOutstanding || !raft.hasReady()) return;
    const ready = raft.ready();
    node.readyOutstanding = true;
    this.observeReady(node, ready);
    if (this.maybeLoopCrash(node, "before-send")) return;
    this.send(node, ready.messages);
    const incarnation = node.incarnation;
    if (ready.snapshot !== null || ready.entries.length > 0 || ready.hardState !== null) {
      if (node.walDisk !== null) {
        this.persistToWal(node, node.walDisk, ready);
        return;
      }
      const delay = this.swarm.diskDelayMsMin + this.diskRandom.float() * (this.diskDelayMsMax - this.swarm.diskDelayMsMin);
      this.queue.schedule(delay, () => {
        if (node.incarnation === incarnation) this.persistAndApply(node, ready);
      });
    } else {
      this.afterPersist(node, ready);
    }
  }

  /** What the core just said: roles, terms, the log and the commit index, for the checker. */
  private observeReady(node: SimNode, ready: Ready): void {
    if (ready.snapshot !== null) node.view.installSnapshot(ready.snapshot.metadata.index, ready.snapshot.metadata.term);
    if (ready.entries.length > 0) node.view.append(ready.entries);
    if (ready.hardState !== null) {
      node.term = ready.hardState.term;
      const commit = ready.hardState.commit;
      const term = node.view.termAt(commit);
      if (term !== undefined) this.checker.observeCommit(node.id, commit, term);
    }
    if (ready.softState !== null) {
      const wasLeader = node.role === Role.Leader;
      node.role = ready.softState.role;
      node.leaderHint = ready.softState.leader;
      if (node.role === Role.Leader && !wasLeader) this.onNewLeader(node);
    }
    if (node.role === Role.Leader) this.checker.observeLeader(node.id, node.term, node.view);
    if (this.trace !== null) this.noteReady(node, ready);
  }

  private onNewLeader(node: SimNode): void {
    this.counters.elections++;
    if (node.id !== this.lastLeader) this.counters.leaderChanges++;
    this.lastLeader = node.id;
    if (node.id === this.transferTarget && node.term > this.transferTerm) {
      this.counters.transfersCompleted++;
      this.transferTarget = NO_NODE;
    }
    this.note(node.id, `became LEADER of term ${node.term}`);
  }

  private persistAndApply(node: SimNode, ready: Ready): void {
    const writes = 1 + ready.entries.length + 1;
    // A crash in the middle of the write keeps a prefix of it: snapshot, then entries, then hard state.
    const torn = this.loopCrashProbability > 0 && this.diskRandom.chance(this.loopCrashProbability);
    // A crash between the snapshot and its hard state leaves commit < snapshot index on disk: the core
    // must restart from that (seed 965 found that it could not, fixed in 7c2a9a2).
    const limit = torn ? this.diskRandom.int(writes) : writes;
    if (ready.snapshot !== null && limit >= 1) {
      node.memoryStorage.applySnapshot(ready.snapshot);
      this.counters.snapshotsInstalled++;
    }
    const entriesWritten = Math.max(0, Math.min(ready.entries.length, limit - 1));
    if (entriesWritten > 0) this.persistEntries(node, entriesWritten === ready.entries.length ? ready.entries : ready.entries.slice(0, entriesWritten));
    if (ready.hardState !== null && limit === writes) node.memoryStorage.setHardState(ready.hardState);
    if (torn) {
      this.counters.loopCrashes++;
      this.crash(node, `mid-persist after ${limit} of ${writes} writes`);
      return;
    }
    if (this.maybeLoopCrash(node, "after-persist")) return;
    this.afterPersist(node, ready);
  }

  private persistEntries(node: SimNode, entries: readonly Entry[]): void {
    const storage = node.memoryStorage;
    const snapshotIndex = storage.firstIndex() - 1;
    let previousTerm: Term | undefined;
    for (const entry of entries) {
      if (entry.index <= snapshotIndex) continue;
      if (previousTerm === undefined) previousTerm = entry.index - 1 <= storage.lastIndex() ? storage.term(entry.index - 1) : -1;
      this.checker.observePersisted(node.id, entry.index, entry.term, previousTerm, digestBytes(entry.data));
      previousTerm = entry.term;
    }
    storage.append(entries);
  }

  /**
   * WAL mode: snapshot marker, entries and hard state go to the WAL in one
   * append (in that order, so a crash keeps a prefix of them); the loop goes
   * on once the append is durable. A received snapshot's image goes to the
   * state store first, as a server writes the snapshot file before its marker.
   */
  private persistToWal(node: SimNode, disk: WalDisk, ready: Ready): void {
    const records: WalRecord[] = [];
    if (ready.snapshot !== null) {
      disk.storeImage(ready.snapshot.metadata.index, ready.snapshot.data);
      records.push({ type: "snapshot", group: GROUP, metadata: ready.snapshot.metadata });
    }
    if (ready.entries.length > 0) records.push({ type: "entries", group: GROUP, entries: ready.entries });
    if (ready.hardState !== null) records.push({ type: "hardState", group: GROUP, hardState: ready.hardState });
    if (!this.appendToWal(node, disk, records, () => {
      if (ready.snapshot !== null) {
        this.counters.snapshotsInstalled++;
        disk.dropImagesBelow(ready.snapshot.metadata.index);
      }
      if (this.maybeLoopCrash(node, "after-persist")) return;
      this.afterPersist(node, ready);
    })) return;
    // What the disk may now hold, whether or not it survives: the checker compares it across nodes.
    if (ready.entries.length > 0) this.observeWalEntries(node, disk, ready.entries);
    const aimed = node.crashAimed && this.phase === "safety";
    const loopCrash = this.loopCrashProbability > 0 && this.diskRandom.chance(this.loopCrashProbability);
    if (aimed || loopCrash) {
      node.crashAimed = false;
      // Strike while this batch is written or synced (or just after): a crash in the middle of a batch.
      const incarnation = node.incarnation;
      this.queue.schedule(this.walRandom().float() * (this.diskDelayMsMax + 1), () => {
        if (node.incarnation !== incarnation || this.phase !== "safety") return;
        if (loopCrash) this.counters.loopCrashes++;
        this.crash(node, "mid-persist, WAL batch under way");
      });
    }
  }

  private observeWalEntries(node: SimNode, disk: WalDisk, entries: readonly Entry[]): void {
    const storage = disk.storage;
    let previousTerm = storage.term(entries[0].index - 1);
    for (const entry of entries) {
      this.checker.observePersisted(node.id, entry.index, entry.term, previousTerm, digestBytes(entry.data));
      previousTerm = entry.term;
    }
  }

  /**
   * One WAL append; `onDurable` runs (on the microtask queue) once it is
   * durable, unless the node crashed meanwhile. False when the WAL refused the
   * records, which the checker reports.
   */
  private appendToWal(node: SimNode, disk: WalDisk, records: readonly WalRecord[], onDurable: () => void): boolean {
    const incarnation = node.incarnation;
    let durable: Promise<void>;
    try {
      durable = disk.append(records);
    } catch (error) {
      this.checker.report("storage-error", `node ${node.id}: the WAL refused an append: ${describeError(error)}`);
      return false;
    }
    this.counters.walAppends++;
    this.storageBusy = true;
    durable.then(
      () => {
        if (node.incarnation === incarnation) this.guarded(onDurable);
      },
      (error: unknown) => {
        if (node.incarnation === incarnation) this.checker.report("storage-error", `node ${node.id}: a WAL append failed: ${describeError(error)}`);
      },
    );
    return true;
  }

  private afterPersist(node: SimNode, ready: Ready): void {
    this.send(node, ready.messagesAfterPersist);
    if (this.maybeLoopCrash(node, "after-send-persisted")) return;
    if (!this.apply(node, ready)) return;
    if (this.maybeLoopCrash(node, "before-advance")) return;
    const raft = node.raft;
    assert(raft !== null, "advance on a stopped node");
    raft.advance();
    node.readyOutstanding = false;
    this.kick(node);
  }

  /** Applies the snapshot and committed entries; false when the node crashed (or left) on the way. */
  private apply(node: SimNode, ready: Ready): boolean {
    let machine = node.machine;
    assert(machine !== null, "apply on a stopped node");
    if (ready.snapshot !== null) {
      const metadata = ready.snapshot.metadata;
      machine = new RegisterMachine({ values: decodeSnapshotData(ready.snapshot.data), applied: metadata.index, confState: metadata.confState });
      node.machine = machine;
      node.durableMachine = machine.image();
      this.checker.observeSnapshotRestore(node.id, metadata.index, metadata.term);
      this.note(node.id, `installed snapshot at ${metadata.index} (term ${metadata.term})`);
    }
    const entries = ready.committedEntries;
    let position = 0;
    while (position < entries.length) {
      // Entries are applied in transactions of a few entries; a crash loses the open transaction.
      const batchEnd = Math.min(entries.length, position + 1 + this.diskRandom.int(4));
      for (; position < batchEnd; position++) {
        if (!this.applyEntry(node, machine, entries[position])) return false;
      }
      if (this.maybeLoopCrash(node, "mid-apply")) return false;
      node.durableMachine = machine.image();
      this.acknowledge(node, entries, position);
    }
    for (const state of ready.readStates) {
      const read = this.pendingReads.get(contextKey(state.context));
      if (read === undefined || read.node !== node || read.incarnation !== node.incarnation) continue;
      read.readIndex = state.index;
      node.waitingReads.push(read);
    }
    this.serveReads(node, machine);
    this.maybeSnapshot(node, machine);
    return true;
  }

  private applyEntry(node: SimNode, machine: RegisterMachine, entry: Entry): boolean {
    if (entry.index <= machine.applied) {
      // Already in the state machine. The core restarts with the membership of its snapshot, so the
      // changes between the snapshot and the applied index are replayed into it (and only into it).
      if (entry.type === EntryType.ConfChange) node.raft?.applyConfChange(decodeConfChange(entry.data));
      return true;
    }
    this.checker.observeApply(node.id, entry.index, entry.term, digestBytes(entry.data));
    this.counters.entriesApplied++;
    if (entry.type === EntryType.ConfChange) {
      const raft = node.raft;
      assert(raft !== null, "apply on a stopped node");
      const before = machine.confState;
      const after = raft.applyConfChange(decodeConfChange(entry.data));
      machine.applyMembership(entry.index, after);
      this.note(node.id, `applied membership at ${entry.index}: ${describeConf(after)}`);
      if (!this.firstAppliedMembership.has(entry.index)) {
        this.firstAppliedMembership.add(entry.index);
        this.counters.membershipChangesCompleted++;
      }
      this.retireRemoved(before, after, entry.index);
    } else {
      machine.applyCommand(entry.index, entry.data);
    }
    return true;
  }

  /**
   * A member dropped by a committed change is shut down by the operator once every remaining member
   * has applied the change. Stopping it earlier can strand the others in a joint configuration that
   * still needs its vote (a removed leader that vanishes before its commit index spread: seed 457).
   */
  private retireRemoved(before: ConfState, after: ConfState, index: LogIndex): void {
    const remaining = membersOf(after);
    for (const id of membersOf(before)) {
      if (remaining.includes(id) || this.retiring.has(id)) continue;
      const removed = this.nodes.get(id);
      if (removed === undefined || removed.decommissioned) continue;
      this.retiring.add(id);
      const poll = (): void => {
        const lagging = remaining.some((member) => {
          const node = this.nodes.get(member);
          return node !== undefined && !node.decommissioned && (node.machine === null || node.machine.applied < index);
        });
        if (lagging) this.queue.schedule(this.electionTimeoutMs, poll);
        else this.decommission(removed);
      };
      this.queue.schedule(this.electionTimeoutMs, poll);
    }
  }

  private acknowledge(node: SimNode, entries: readonly Entry[], end: number): void {
    if (node.pendingWrites.size === 0) return;
    for (let position = 0; position < end; position++) {
      const entry = entries[position];
      const pending = node.pendingWrites.get(entry.index);
      if (pending === undefined) continue;
      node.pendingWrites.delete(entry.index);
      pending.client.busy = false;
      if (digestBytes(entry.data) === pending.digest) {
        this.checker.observeAcknowledged(entry.index);
        this.counters.proposalsCommitted++;
        this.note(node.id, `ack write at ${entry.index} to client ${pending.client.id}`);
      }
    }
  }

  private serveReads(node: SimNode, machine: RegisterMachine): void {
    if (node.waitingReads.length === 0) return;
    let kept = 0;
    for (const read of node.waitingReads) {
      if (read.readIndex > machine.applied) {
        node.waitingReads[kept++] = read;
        continue;
      }
      this.checker.observeRead(node.id, machine.applied, read.requiredIndex, read.readIndex);
      this.counters.readsServed++;
      this.note(node.id, `served read ${read.key} at applied ${machine.applied} (read index ${read.readIndex}, must reflect ≥ ${read.requiredIndex})`);
      this.finishRead(read);
    }
    node.waitingReads.length = kept;
  }

  private finishRead(read: PendingRead): void {
    this.pendingReads.delete(read.key);
    read.client.busy = false;
  }

  private maybeSnapshot(node: SimNode, machine: RegisterMachine): void {
    const every = this.swarm.snapshotEntries;
    if (every === 0) return;
    if (node.walDisk !== null) {
      this.maybeSnapshotToWal(node, node.walDisk, machine, every);
      return;
    }
    const storage = node.memoryStorage;
    const snapshotIndex = storage.snapshot().metadata.index;
    const index = Math.min(machine.applied, storage.lastIndex());
    // A compacted node snapshots right after a membership change: the core ignores a snapshot whose
    // membership lacks the receiver, so a node added after the last snapshot could never catch up.
    const membershipNewer = machine.confState !== storage.snapshot().metadata.confState && storage.firstIndex() > 1;
    if ((index - snapshotIndex < every && !membershipNewer) || machine.applied !== index || index <= snapshotIndex) return;
    storage.createSnapshot(index, machine.confState, machine.encodeSnapshotData());
    this.counters.snapshotsCreated++;
    const compactTo = index - this.diskRandom.int(this.swarm.compactRetainMax + 1);
    if (compactTo >= storage.firstIndex()) storage.compact(compactTo);
    this.note(node.id, `snapshot at ${index}, log compacted to ${storage.firstIndex()}..${storage.lastIndex()}`);
  }

  /**
   * WAL mode: the image goes to the state store, then a marker to the WAL,
   * which compacts the log up to it. The WAL has no separate compaction point
   * below its marker, so the swarm's compactRetainMax does not apply here.
   */
  private maybeSnapshotToWal(node: SimNode, disk: WalDisk, machine: RegisterMachine, every: number): void {
    const storage = disk.storage;
    const marker = disk.marker();
    const snapshotIndex = marker?.index ?? 0;
    const index = Math.min(machine.applied, storage.lastIndex());
    const membershipNewer = marker !== null && machine.confState !== marker.confState && storage.firstIndex() > 1;
    if ((index - snapshotIndex < every && !membershipNewer) || machine.applied !== index || index <= snapshotIndex) return;
    disk.storeImage(index, machine.encodeSnapshotData());
    const metadata = { index, term: storage.term(index), confState: machine.confState };
    if (!this.appendToWal(node, disk, [{ type: "snapshot", group: GROUP, metadata }], () => disk.dropImagesBelow(index))) return;
    this.counters.snapshotsCreated++;
    this.note(node.id, `snapshot at ${index}, log compacted to ${storage.firstIndex()}..${storage.lastIndex()}`);
  }

  // ---- network ---------------------------------------------------------------------------------

  private send(node: SimNode, messages: readonly Message[]): void {
    for (const message of messages) {
      const target = this.nodes.get(message.to);
      if (target === undefined || message.to === node.id) continue;
      const delays = this.network.plan(message.from, message.to);
      if (this.trace !== null) this.note(node.id, `send ${describeMessage(message)}${delays.length === 0 ? " (LOST)" : delays.length > 1 ? " (DUPLICATED)" : ""}`);
      const senderIncarnation = node.incarnation;
      if (delays.length === 0 && message.type === MessageType.Snap) this.reportSnapshot(node, senderIncarnation, message.to, false);
      for (const delay of delays) this.queue.schedule(delay, () => this.deliver(node, senderIncarnation, target, message));
    }
  }

  private deliver(sender: SimNode, senderIncarnation: number, target: SimNode, message: Message): void {
    const raft = target.raft;
    const delivered = raft !== null && target.up && !target.decommissioned && this.network.canDeliver(message.from, message.to);
    if (message.type === MessageType.Snap) this.reportSnapshot(sender, senderIncarnation, message.to, delivered);
    if (!delivered || raft === null) return;
    if (this.trace !== null) this.note(target.id, `recv ${describeMessage(message)}`);
    raft.step(message);
    this.kick(target);
  }

  private reportSnapshot(sender: SimNode, incarnation: number, to: NodeId, ok: boolean): void {
    if (sender.incarnation !== incarnation || sender.raft === null) return;
    sender.raft.reportSnapshot(to, ok);
    this.kick(sender);
  }

  // ---- clients ---------------------------------------------------------------------------------

  private scheduleClient(client: SimClient): void {
    const delay = this.clientRandom.float() * 2 * this.swarm.clientIntervalMs;
    this.queue.schedule(delay, () => {
      if (this.phase !== "safety") return;
      if (!client.busy) this.clientAct(client);
      this.scheduleClient(client);
    });
  }

  private clientAct(client: SimClient): void {
    let node = this.nodes.get(client.leaderGuess);
    if (node === undefined || !node.up || node.raft === null) node = this.randomLiveNode(this.clientRandom);
    if (node === undefined) return;
    if (this.clientRandom.chance(this.swarm.readProbability)) this.issueRead(client, node);
    else this.issueWrite(client, node, encodeCommand({ key: this.clientRandom.pick(REGISTER_KEYS), value: this.nextCommandValue++ }), true);
  }

  private issueWrite(client: SimClient, node: SimNode, data: Uint8Array, mayRetry: boolean): void {
    const raft = node.raft;
    if (raft === null) return;
    this.counters.proposalsSubmitted++;
    const result = raft.propose(data);
    this.kick(node);
    if (!result.ok) {
      this.counters.proposalsRefused++;
      client.leaderGuess = result.leader;
      const hinted = this.nodes.get(result.leader);
      // The refusal names the leader: retry there once, as a real client would.
      if (mayRetry && hinted !== undefined && hinted !== node && hinted.up) this.issueWrite(client, hinted, data, false);
      return;
    }
    client.leaderGuess = node.id;
    const pending: PendingWrite = { client, node, incarnation: node.incarnation, index: result.index, digest: digestBytes(data) };
    node.pendingWrites.set(result.index, pending);
    this.note(node.id, `client ${client.id} proposed ${new TextDecoder().decode(data)} at index ${result.index}`);
    this.startOperation(client, () => {
      if (node.pendingWrites.get(result.index) === pending) node.pendingWrites.delete(result.index);
    });
  }

  private issueRead(client: SimClient, node: SimNode): void {
    const raft = node.raft;
    if (raft === null) return;
    const key = `r${this.nextReadId++}`;
    const result = raft.readIndex(new TextEncoder().encode(key));
    this.kick(node);
    this.counters.readsIssued++;
    if (!result.ok) {
      client.leaderGuess = result.leader;
      return;
    }
    const read: PendingRead = { key, client, node, incarnation: node.incarnation, requiredIndex: this.checker.readRequirement(), readIndex: -1 };
    this.pendingReads.set(key, read);
    this.note(node.id, `client ${client.id} read ${key} must reflect ≥ ${read.requiredIndex}`);
    this.startOperation(client, () => {
      if (this.pendingReads.get(key) !== read) return;
      this.pendingReads.delete(key);
      const waiting = read.node.waitingReads.indexOf(read);
      if (waiting >= 0) read.node.waitingReads.splice(waiting, 1);
    });
  }

  /** Marks the client busy until the operation finishes or times out (outcome unknown). */
  private startOperation(client: SimClient, onTimeout: () => void): void {
    client.busy = true;
    const operation = ++client.operation;
    this.queue.schedule(CLIENT_TIMEOUT_ELECTION_TIMEOUTS * this.electionTimeoutMs, () => {
      if (client.operation !== operation || !client.busy) return;
      onTimeout();
      client.busy = false;
      client.leaderGuess = NO_NODE;
    });
  }

  // ---- the operator: crashes, partitions, membership, snapshots, transfers ----------------------

  private scheduleOperator(): void {
    const swarm = this.swarm;
    this.every(swarm.crashIntervalMs, () => this.randomCrash());
    this.every(swarm.partitionIntervalMs, () => this.changePartition());
    this.every(swarm.membershipIntervalMs, () => this.changeMembership());
    this.every(swarm.transferIntervalMs, () => this.transferLeadership());
    this.every(swarm.campaignIntervalMs, () => {
      const node = this.randomLiveNode(this.operatorRandom);
      if (node?.raft) {
        this.note(node.id, "forced campaign");
        node.raft.campaign();
        this.kick(node);
      }
    });
  }

  /** Runs `action` at random intervals averaging `meanMs` during the safety phase; 0 means never. */
  private every(meanMs: number, action: () => void): void {
    if (meanMs === 0) return;
    const loop = (): void => {
      if (this.phase !== "safety") return;
      action();
      this.queue.schedule(1 + this.operatorRandom.float() * 2 * meanMs, loop);
    };
    this.queue.schedule(1 + this.operatorRandom.float() * 2 * meanMs, loop);
  }

  private randomCrash(): void {
    const live = this.liveNodes();
    const down = [...this.nodes.values()].filter((node) => !node.up && !node.decommissioned).length;
    if (live.length === 0 || down >= Math.floor(this.swarm.nodeCount / 2) + 1) return;
    const leader = this.currentLeader();
    const victim = leader !== null && this.operatorRandom.chance(0.4) ? leader : this.operatorRandom.pick(live);
    if (victim.walDisk !== null && this.walRandom().chance(AIMED_CRASH_PROBABILITY)) {
      victim.crashAimed = true;
      this.note(victim.id, "crash aimed at the next WAL batch");
      return;
    }
    this.crash(victim, "random moment");
  }

  private changePartition(): void {
    if (this.partitionActive) {
      this.network.heal();
      this.partitionActive = false;
      this.note(NO_NODE, "network healed");
      return;
    }
    const ids = [...this.nodes.values()].filter((node) => !node.decommissioned).map((node) => node.id);
    if (ids.length < 2) return;
    const kind: PartitionKind = this.operatorRandom.pick(this.swarm.partitionKinds);
    const shuffled = shuffle(ids, this.operatorRandom);
    const leader = this.currentLeader();
    const split = 1 + this.operatorRandom.int(ids.length - 1);
    const left = shuffled.slice(0, split);
    const right = shuffled.slice(split);
    switch (kind) {
      case "symmetric":
        this.network.partition(left, right);
        break;
      case "one-way":
        this.network.oneWay(left, right);
        break;
      case "isolate":
        this.network.isolate(leader?.id ?? shuffled[0], ids);
        break;
      case "majority-minority": {
        // Put the leader (if any) on the minority side, the interesting case.
        const others = shuffled.filter((id) => id !== leader?.id);
        const minoritySize = Math.max(1, Math.floor((ids.length - 1) / 2));
        const minority = leader === null ? others.slice(0, minoritySize) : [leader.id, ...others.slice(0, minoritySize - 1)];
        this.network.partition(minority, ids.filter((id) => !minority.includes(id)));
        break;
      }
      case "bridge": {
        if (ids.length < 3) return;
        const bridge = shuffled[0];
        const rest = shuffled.slice(1);
        const half = 1 + this.operatorRandom.int(rest.length - 1);
        this.network.bridge(rest.slice(0, half), rest.slice(half), bridge);
        break;
      }
    }
    this.counters.partitions++;
    this.partitionActive = true;
    this.note(NO_NODE, `partition ${kind}: ${this.network.blockedLinkCount} links cut (left ${left.join(",")} / right ${right.join(",")}, leader ${leader?.id ?? "none"})`);
  }

  private transferLeadership(): void {
    const leader = this.currentLeader();
    const raft = leader?.raft;
    if (leader === null || raft === null || raft === undefined) return;
    const voters = raft.status().config.voters.filter((id) => id !== leader.id);
    if (voters.length === 0) return;
    const target = this.operatorRandom.pick(voters);
    this.counters.transfersRequested++;
    this.transferTarget = target;
    this.transferTerm = leader.term;
    this.note(leader.id, `transfer leadership to ${target}`);
    raft.transferLeadership(target);
    this.kick(leader);
  }

  private changeMembership(): void {
    const leader = this.currentLeader();
    const raft = leader?.raft;
    if (leader === null || raft === null || raft === undefined) return;
    const config = raft.status().config;
    if (config.votersOutgoing.length > 0) {
      if (!config.autoLeave) this.proposeMembership(leader, { transition: ConfChangeTransition.Auto, changes: [], context: EMPTY });
      return;
    }
    const change = this.operatorRandom.chance(this.swarm.jointProbability) ? this.planJointChange(config) : this.planSimpleChange(config, leader.id);
    if (change !== null) this.proposeMembership(leader, change);
  }

  private planSimpleChange(config: ConfState, leaderId: NodeId): ConfChange | null {
    const random = this.operatorRandom;
    const options: (() => ConfChangeSingle | null)[] = [
      () => this.newNodeChange(ConfChangeType.AddLearner),
      () => this.newNodeChange(ConfChangeType.AddNode),
      () => (config.learners.length === 0 ? null : { type: ConfChangeType.AddNode, nodeId: random.pick(config.learners) }),
      () => (config.voters.length <= this.swarm.votersMin ? null : { type: ConfChangeType.RemoveNode, nodeId: random.chance(0.4) ? leaderId : random.pick(config.voters) }),
      () => (config.learners.length === 0 ? null : { type: ConfChangeType.RemoveNode, nodeId: random.pick(config.learners) }),
      () => (config.voters.length <= this.swarm.votersMin ? null : { type: ConfChangeType.AddLearner, nodeId: random.pick(config.voters) }),
    ];
    const single = random.pick(options)();
    return single === null ? null : { transition: ConfChangeTransition.Auto, changes: [single], context: EMPTY };
  }

  /** Several changes at once: promote learners, add new voters, remove or demote voters (joint consensus). */
  private planJointChange(config: ConfState): ConfChange | null {
    const random = this.operatorRandom;
    const changes: ConfChangeSingle[] = [];
    let voters = config.voters.length;
    for (const learner of config.learners) {
      if (random.chance(0.7)) {
        changes.push({ type: ConfChangeType.AddNode, nodeId: learner });
        voters++;
      }
    }
    if (random.chance(0.5)) {
      const added = this.newNodeChange(ConfChangeType.AddNode);
      if (added !== null) {
        changes.push(added);
        voters++;
      }
    }
    for (const voter of shuffle(config.voters, random)) {
      if (voters <= this.swarm.votersMin || !random.chance(0.5)) continue;
      changes.push({ type: random.chance(0.7) ? ConfChangeType.RemoveNode : ConfChangeType.AddLearner, nodeId: voter });
      voters--;
    }
    if (changes.length === 0) return null;
    const transition = random.pick([ConfChangeTransition.Auto, ConfChangeTransition.JointImplicit, ConfChangeTransition.JointExplicit]);
    return { transition, changes, context: EMPTY };
  }

  /**
   * A change that brings a brand-new node in. The node starts with an empty log but with the
   * cluster's genesis membership (the snapshot at index 0 every member shares): the log from index 1
   * on builds on it. Started with an empty membership instead, a joiner that is sent entries from
   * index 1 (no compaction yet) replays the changes onto nothing and ends up with a membership made
   * of the added nodes only, electing its own leader (seed 5 found this).
   */
  private newNodeChange(type: ConfChangeType): ConfChangeSingle | null {
    if (this.nextNodeId > NODE_IDS_MAX) return null;
    const id = nodeId(this.nextNodeId++);
    this.startNode(this.createNode(id, this.genesisConf));
    return { type, nodeId: id };
  }

  private proposeMembership(leader: SimNode, change: ConfChange): void {
    const raft = leader.raft;
    if (raft === null) return;
    const result = raft.proposeConfChange(change);
    this.kick(leader);
    if (result.ok) this.counters.membershipChangesProposed++;
    this.note(leader.id, `propose membership ${describeChange(change)}: ${result.ok ? `at index ${result.index}` : `refused (${result.reason})`}`);
  }

  // ---- helpers ---------------------------------------------------------------------------------

  private liveNodes(): SimNode[] {
    const live: SimNode[] = [];
    for (const node of this.nodes.values()) if (node.up && node.raft !== null) live.push(node);
    return live;
  }

  private randomLiveNode(random: Prng): SimNode | undefined {
    const live = this.liveNodes();
    return live.length === 0 ? undefined : random.pick(live);
  }

  /** The live leader with the highest term, as the app has seen it. */
  private currentLeader(): SimNode | null {
    let best: SimNode | null = null;
    for (const node of this.nodes.values()) {
      if (!node.up || node.role !== Role.Leader) continue;
      if (best === null || node.term > best.term) best = node;
    }
    return best;
  }

  private note(node: NodeId, text: string): void {
    if (this.trace !== null) this.trace.add(this.queue.nowMs, node, text);
  }

  private noteReady(node: SimNode, ready: Ready): void {
    const parts: string[] = [];
    if (ready.softState !== null) parts.push(`soft ${ROLE_NAMES[ready.softState.role]} leader=${ready.softState.leader}`);
    if (ready.hardState !== null) parts.push(`hard term=${ready.hardState.term} vote=${ready.hardState.vote} commit=${ready.hardState.commit}`);
    if (ready.snapshot !== null) parts.push(`snapshot@${ready.snapshot.metadata.index}`);
    if (ready.entries.length > 0) parts.push(`entries ${describeEntries(ready.entries)}`);
    if (ready.committedEntries.length > 0) parts.push(`apply ${describeEntries(ready.committedEntries)}`);
    if (ready.readStates.length > 0) parts.push(`readStates ${ready.readStates.map((state) => `${new TextDecoder().decode(state.context)}@${state.index}`).join(",")}`);
    this.note(node.id, `ready: ${parts.join("; ")}`);
  }
}

export function runSimulation(options: SimulationOptions): SimulationResult {
  return new Simulation(options).run();
}

export async function runSimulationAsync(options: SimulationOptions): Promise<SimulationResult> {
  return new Simulation(options).runAsync();
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ""}` : String(error);
}

function membersOf(config: ConfState): NodeId[] {
  const members = new Set<NodeId>([...config.voters, ...config.votersOutgoing, ...config.learners, ...config.learnersNext]);
  return [...members];
}

function emptyConf(): ConfState {
  return { voters: [], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };
}

function shuffle<T>(items: readonly T[], random: Prng): T[] {
  const copy = items.slice();
  for (let i = copy.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy;
}

function contextKey(context: Uint8Array): string {
  let key = "";
  for (let i = 0; i < context.length; i++) key += String.fromCharCode(context[i]);
  return key;
}

function describeConf(config: ConfState): string {
  const parts = [`voters ${config.voters.join(",") || "-"}`];
  if (config.votersOutgoing.length > 0) parts.push(`outgoing ${config.votersOutgoing.join(",")}`);
  if (config.learners.length > 0) parts.push(`learners ${config.learners.join(",")}`);
  if (config.learnersNext.length > 0) parts.push(`learnersNext ${config.learnersNext.join(",")}`);
  if (config.autoLeave) parts.push("autoLeave");
  return parts.join(" ");
}

const CHANGE_NAMES = ["add", "remove", "add-learner"];
const TRANSITION_NAMES = ["auto", "joint-implicit", "joint-explicit"];

function describeChange(change: ConfChange): string {
  if (change.changes.length === 0) return "leave-joint";
  return `${TRANSITION_NAMES[change.transition]} [${change.changes.map((single) => `${CHANGE_NAMES[single.type]} ${single.nodeId}`).join(", ")}]`;
}

function describeEntries(entries: readonly Entry[]): string {
  const first = entries[0];
  const last = entries[entries.length - 1];
  return entries.length === 1 ? `${first.index}/t${first.term}` : `${first.index}/t${first.term}..${last.index}/t${last.term}`;
}

function describeMessage(message: Message): string {
  const parts = [`${MESSAGE_TYPE_NAMES[message.type]} ${message.from}→${message.to} term=${message.term}`];
  if (message.type === MessageType.App || message.type === MessageType.Vote || message.type === MessageType.PreVote) parts.push(`logTerm=${message.logTerm} index=${message.index}`);
  if (message.type === MessageType.AppResp) parts.push(`index=${message.index}${message.reject ? ` REJECT hint=${message.rejectHint}` : ""}`);
  if (message.type === MessageType.VoteResp || message.type === MessageType.PreVoteResp) parts.push(message.reject ? "REJECT" : "GRANT");
  if (message.entries.length > 0) parts.push(`entries ${describeEntries(message.entries)}`);
  if (message.commit > 0) parts.push(`commit=${message.commit}`);
  if (message.snapshot !== null) parts.push(`snapshot@${message.snapshot.metadata.index}`);
  return parts.join(" ");
}

