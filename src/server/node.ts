/**
 * A Cairn node: the WAL, the state store, the peer transport and the Raft
 * group(s) of one member, wired together. (The client API is attached by
 * the composition root in cli/, which owns the gRPC services.)
 *
 * Data directory layout:
 *   <data-dir>/member/identity.json   cluster id, member id, name (written once)
 *   <data-dir>/member/wal/            the node-wide write-ahead log
 *   <data-dir>/member/kv/             the LMDB state store of group 0
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from "node:fs";
import { join } from "node:path";
import { randomInt } from "node:crypto";
import { assert } from "../lib/assert.js";
import { clusterId as toClusterId, groupId, nodeId, type ClusterId, type NodeId, type Term } from "../lib/ids.js";
import { createPrng } from "../lib/prng.js";
import {
  ConfChangeTransition, ConfChangeType, Role, bootstrapEntries, confState as makeConfState, encodeConfChange,
  type Message, type SoftState,
} from "../raft/mod.js";
import { NodeFileSystem, PowerCutFileSystem } from "../storage/fs/mod.js";
import { Wal } from "../storage/wal/mod.js";
import { LmdbKvStore, type DefragmentResult } from "../storage/lmdb/mod.js";
import { PeerTransport, discoverCluster, type PeerTlsConfig } from "../transport/mod.js";
import { KvStateMachine, memberAttributesCommand } from "./kv-state-machine.js";
import { computeClusterId, computeMemberId, encodeMemberContext, type Member } from "./membership.js";
import { RaftGroup } from "./raft-group.js";
import type { NodeMetrics } from "./metrics.js";
import { describeTestSwitches, raftFaultsOf, readTestSwitches } from "./test-switches.js";

export const CAIRN_VERSION = "3.5.0-cairn.0.1.0";
const GROUP_ZERO = groupId(0);
const IDENTITY_FORMAT = 1;
/**
 * Physical compaction, etcd-style (a batch, then a pause) but paced by time:
 * each batch is one store transaction of about COMPACTION_BATCH_TARGET_MS
 * (the entry budget adapts to what the last batch cost; a key's whole
 * history always goes in one batch), and after a batch that took T ms the
 * next waits T × COMPACTION_PAUSE_FACTOR, so compaction takes at most
 * 1 / (1 + factor) of the event loop while applies and ticks keep the rest.
 * `npm run bench -- compaction` measures the effect on put latency.
 */
const COMPACTION_BATCH_TARGET_MS = 5;
const COMPACTION_BATCH_ENTRIES_MIN = 64;
const COMPACTION_BATCH_ENTRIES_MAX = 8192;
const COMPACTION_PAUSE_FACTOR = 3;
const COMPACTION_PAUSE_MS_MIN = 2;
const COMPACTION_IDLE_MS = 100;

export interface NodeLogger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export interface NodeOptions {
  readonly name: string;
  readonly dataDir: string;
  /** Peer URL to listen on (http:// or https://). */
  readonly listenPeerUrl: string;
  /** Our own advertised peer URLs. */
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  /** name → peer URLs of the founding members (for a new cluster). */
  readonly initialCluster: ReadonlyMap<string, readonly string[]>;
  readonly initialClusterState: "new" | "existing";
  readonly initialClusterToken: string;
  readonly heartbeatIntervalMs: number;
  readonly electionTimeoutMs: number;
  readonly snapshotCount: number;
  readonly snapshotBytes?: number;
  readonly peerTls?: PeerTlsConfig;
  readonly walRepair?: boolean;
  /** Restart a lone survivor as a one-member cluster (see forceNewCluster in raft-group.ts). */
  readonly forceNewCluster?: boolean;
  readonly logger: NodeLogger;
  readonly metrics?: NodeMetrics;
  /** The member cannot go on without risking data (its Ready loop failed): the process should exit loudly. */
  readonly onFatal?: (error: Error) => void;
  /** This member was removed from the cluster: the process should stop. */
  readonly onRemoved?: () => void;
}

export class NodeStartError extends Error {
  override name = "NodeStartError";
}

export interface Identity {
  readonly clusterId: ClusterId;
  readonly memberId: NodeId;
}

export class CairnNode {
  private stopping: Promise<void> | null = null;
  private published = false;
  private wasMember = false;
  private removedReported = false;
  private housekeeping: NodeJS.Timeout | NodeJS.Immediate | null = null;
  private lastLeader: NodeId = 0n as NodeId;
  private readonly peerUrls = new Map<NodeId, string>();

  private constructor(
    readonly options: NodeOptions,
    readonly clusterId: ClusterId,
    readonly memberId: NodeId,
    readonly wal: Wal,
    readonly store: LmdbKvStore,
    readonly stateMachine: KvStateMachine,
    readonly transport: PeerTransport,
    readonly group: RaftGroup,
  ) {}

  static async start(options: NodeOptions): Promise<CairnNode> {
    const memberDirectory = join(options.dataDir, "member");
    mkdirSync(memberDirectory, { recursive: true });
    const identityPath = join(memberDirectory, "identity.json");
    const fresh = !existsSync(identityPath);
    let identity: Identity;
    let founding: Member[] = [];
    if (!fresh) {
      identity = readIdentity(identityPath);
    } else if (options.initialClusterState === "new") {
      founding = foundingMembers(options);
      const self = founding.find((member) => member.name === options.name);
      assert(self, `member ${options.name} is not in the initial cluster`);
      identity = { clusterId: computeClusterId(founding.map((member) => member.id)), memberId: self.id };
    } else {
      const discovered = await discoverIdentity(options);
      identity = discovered.identity;
      // Talk to the members we learned of until our own log teaches us the membership.
      founding = discovered.members.filter((member) => member.id !== discovered.identity.memberId);
    }
    const { logger } = options;
    const testSwitches = readTestSwitches(process.env);
    const testWarning = describeTestSwitches(testSwitches);
    if (testWarning !== null) logger.warn(testWarning);

    const wal = await Wal.open({
      fileSystem: testSwitches.powerCut ? new PowerCutFileSystem(new NodeFileSystem(), { syncDelayMs: testSwitches.syncDelayMs }) : new NodeFileSystem(), directory: join(memberDirectory, "wal"),
      clusterId: identity.clusterId, nodeId: identity.memberId, repair: options.walRepair ?? false,
      logger: { info: (message) => logger.info(`wal: ${message}`), warn: (message) => logger.warn(`wal: ${message}`) },
    });
    const recovery = wal.recovery;
    if (recovery.tornTail) logger.warn(`wal: cut a torn tail in ${recovery.tornTail.file} at offset ${recovery.tornTail.offset} (${recovery.tornTail.reason})`);
    if (fresh && options.initialClusterState === "existing") {
      // A joining member starts with an empty log: the leader sends it the log or a snapshot once it is a member.
      writeIdentity(identityPath, identity, options.name);
      logger.info(`joining cluster ${identity.clusterId.toString(16)} as member ${identity.memberId.toString(16)}`);
    } else if (fresh) {
      // Every founding member writes the same bootstrap entries, so their logs agree from index 1.
      const initial = makeConfState(founding.map((member) => member.id));
      const entries = bootstrapEntries(initial).map((entry, position) => ({
        ...entry,
        data: encodeConfChange({
          transition: ConfChangeTransition.Auto,
          changes: [{ type: ConfChangeType.AddNode, nodeId: founding[position].id }],
          context: encodeMemberContext(founding[position]),
        }),
      }));
      await wal.append([
        { type: "entries", group: GROUP_ZERO, entries },
        { type: "hardState", group: GROUP_ZERO, hardState: { term: 1, vote: 0n as NodeId, commit: entries.length } },
      ]);
      writeIdentity(identityPath, identity, options.name);
      logger.info(`bootstrapped member ${identity.memberId.toString(16)} of new cluster ${identity.clusterId.toString(16)} with ${founding.length} members`);
    }

    if (options.forceNewCluster === true && fresh) logger.warn("--force-new-cluster ignored: this member has no data yet");
    const store = LmdbKvStore.open(join(memberDirectory, "kv"));
    const stateMachine = new KvStateMachine(store);
    let group: RaftGroup | null = null;
    const transport = await PeerTransport.listen({
      nodeId: identity.memberId,
      clusterId: identity.clusterId,
      listenUrl: options.listenPeerUrl,
      tls: options.peerTls,
      logger: {
        info: (fields, message) => logger.info(`transport: ${message} ${describeFields(fields)}`),
        warn: (fields, message) => logger.warn(`transport: ${message} ${describeFields(fields)}`),
        error: (fields, message) => logger.error(`transport: ${message} ${describeFields(fields)}`),
      },
      onMessage: (message: Message) => group?.step(message),
      onSnapshot: async (message: Message, data: AsyncIterable<Uint8Array>) => {
        if (!group) throw new Error("not ready for snapshots yet");
        const installed = await group.exclusive(() => stateMachine.installSnapshot(data));
        logger.info(`snapshot from ${message.from.toString(16)} at ${message.snapshot?.metadata.index}: ${installed ? "installed" : "not newer than ours, ignored"}`);
        group?.step(message);
      },
      onUnreachable: (peer) => group?.raw.reportUnreachable(peer),
      onDiscover: () => describeCluster(identity.clusterId, stateMachine.members()),
      random: Math.random,
    });

    const tickMs = options.heartbeatIntervalMs;
    const electionTicks = Math.max(2, Math.round(options.electionTimeoutMs / options.heartbeatIntervalMs));
    let node: CairnNode | null = null;
    group = await RaftGroup.open({
      memberId: identity.memberId, group: GROUP_ZERO, wal, stateMachine,
      tickMs, electionTicks, heartbeatTicks: 1,
      snapshotCount: options.snapshotCount,
      snapshotBytes: options.snapshotBytes,
      // etcd: 5 s plus two election timeouts.
      requestTimeoutMs: 5000 + 2 * options.electionTimeoutMs,
      raftFaults: raftFaultsOf(testSwitches), plantedStaleReads: testSwitches.fault === "stale-reads", plantedSkipPersistWait: testSwitches.fault === "ack-before-quorum",
      random: createPrng(BigInt(randomInt(0, 2 ** 48 - 1)) ^ identity.memberId),
      logger: { debug: () => {}, info: (message) => logger.info(message), warn: (message) => logger.warn(message), error: (message) => logger.error(message) },
      send: (message) => {
        transport.send(message);
      },
      sendSnapshot: (message, chunks) => transport.sendSnapshot(message, chunks),
      onSoftState: (state, term) => node?.onSoftState(state, term),
      onConfChange: () => node?.syncPeers(),
      onPersist: (milliseconds) => options.metrics?.walFsyncSeconds.observe(milliseconds / 1000),
      onFatal: (error) => options.onFatal?.(error),
      // As in etcd, the flag only means something to a member that has data: a new one bootstraps normally.
      forceNewCluster: options.forceNewCluster === true && !fresh,
    });
    node = new CairnNode(options, identity.clusterId, identity.memberId, wal, store, stateMachine, transport, group);
    stateMachine.onMembersChanged(() => node?.syncPeers());
    // Peers known from the founding configuration until the log has been applied.
    for (const member of founding) if (member.id !== identity.memberId) node.addFoundingPeer(member.id, member.peerUrls[0]);
    node.syncPeers();
    group.start();
    node.startHousekeeping();
    logger.info(`member ${identity.memberId.toString(16)} (${options.name}) of cluster ${identity.clusterId.toString(16)} serving peers on ${transport.url}`);
    return node;
  }

  /** Keeps the transport's peer list equal to the membership (members with their first peer URL). */
  syncPeers(): void {
    const members = this.stateMachine.members();
    if (members.length === 0) return; // still bootstrapping: keep the founding peers
    const isMember = members.some((member) => member.id === this.memberId);
    if (isMember) this.wasMember = true;
    else if (this.wasMember && !this.removedReported) {
      // As in etcd: a member removed from the cluster stops instead of lingering as a stranger.
      this.removedReported = true;
      this.options.logger.warn(`this member (${this.memberId.toString(16)}) was removed from the cluster; stopping`);
      queueMicrotask(() => this.options.onRemoved?.());
    }
    const wanted = new Map(members.filter((member) => member.id !== this.memberId && member.peerUrls.length > 0).map((member) => [member.id, member.peerUrls[0]]));
    for (const [id, url] of wanted) {
      const known = this.peerUrls.get(id);
      if (known === url) continue;
      if (known === undefined) this.transport.addPeer(id, url);
      else this.transport.updatePeer(id, url);
      this.peerUrls.set(id, url);
    }
    for (const id of [...this.peerUrls.keys()]) {
      if (wanted.has(id)) continue;
      this.transport.removePeer(id);
      this.peerUrls.delete(id);
    }
  }

  /** Adds a peer known before the membership is applied (the founding members). */
  addFoundingPeer(id: NodeId, url: string): void {
    if (this.peerUrls.has(id)) return;
    this.transport.addPeer(id, url);
    this.peerUrls.set(id, url);
  }

  private onSoftState(state: SoftState, term: Term): void {
    const metrics = this.options.metrics;
    if (metrics) {
      metrics.term.set(term);
      metrics.isLeader.set(state.role === Role.Leader ? 1 : 0);
      metrics.hasLeader.set(state.leader !== 0n ? 1 : 0);
      if (state.leader !== 0n && state.leader !== this.lastLeader) metrics.leaderChanges.inc();
    }
    if (state.leader !== 0n) this.lastLeader = state.leader;
    this.options.logger.info(`raft: ${state.role === Role.Leader ? "became leader" : `follower, leader ${state.leader.toString(16)}`} at term ${term}`);
    if (!this.published && state.leader !== 0n) void this.publishAttributes();
  }

  /** Publishes our name and client URLs through Raft (members learn each other's client URLs this way). */
  private async publishAttributes(): Promise<void> {
    this.published = true;
    const self = this.stateMachine.member(this.memberId);
    if (self && self.name === this.options.name && sameUrls(self.clientUrls, this.options.clientUrls)) return;
    try {
      await this.group.propose(memberAttributesCommand(this.memberId, this.options.name, this.options.clientUrls));
      this.options.logger.info(`published member attributes: ${this.options.name} ${this.options.clientUrls.join(",")}`);
    } catch (error) {
      this.published = false;
      this.options.logger.warn(`publishing member attributes failed (will retry at the next leader change): ${(error as Error).message}`);
    }
  }

  /**
   * Physical compaction runs in small batches between other work, never as
   * one long transaction: a Compact only moves the compact revision.
   */
  startHousekeeping(): void {
    const mvcc = this.stateMachine.mvcc;
    let batchEntries = 1000;
    const pass = () => {
      if (this.stopping) return;
      let caughtUp = true;
      let elapsed = 0;
      try {
        // A cheap read first: with nothing to remove, no write transaction is opened at all.
        if (mvcc.physicalCompactRevision() < mvcc.compactRevision()) {
          const started = performance.now();
          caughtUp = mvcc.compactBatch(batchEntries);
          elapsed = performance.now() - started;
          if (elapsed > COMPACTION_BATCH_TARGET_MS) batchEntries = Math.max(COMPACTION_BATCH_ENTRIES_MIN, Math.floor(batchEntries / 2));
          else if (elapsed < COMPACTION_BATCH_TARGET_MS / 2) batchEntries = Math.min(COMPACTION_BATCH_ENTRIES_MAX, batchEntries * 2);
        }
      } catch (error) {
        this.options.logger.error(`compaction failed: ${(error as Error).message}`);
      }
      // Work left (or held back by a snapshot being read): come back after a pause in proportion to the batch.
      this.housekeeping = setTimeout(pass, caughtUp ? COMPACTION_IDLE_MS : Math.max(COMPACTION_PAUSE_MS_MIN, elapsed * COMPACTION_PAUSE_FACTOR));
    };
    this.housekeeping = setTimeout(pass, COMPACTION_IDLE_MS);
  }

  /**
   * Maintenance.Defragment: rewrites the state file compactly and swaps it
   * in; writes are held back only for the final swap (see LmdbKvStore), and
   * that pause is logged and exported as a metric.
   */
  async defragment(signal?: AbortSignal): Promise<DefragmentResult> {
    const result = await this.store.defragment({ signal });
    this.options.metrics?.defragmentSeconds.observe(result.totalMs / 1000);
    this.options.metrics?.defragmentPauseSeconds.observe(result.pauseMs / 1000);
    this.options.logger.info(`defragmented the state file: ${result.fileBytesBefore} -> ${result.fileBytesAfter} bytes in ${result.totalMs.toFixed(0)} ms; writes paused ${result.pauseMs.toFixed(1)} ms (${result.journaledWrites} writes made during the copy replayed)`);
    return result;
  }

  raftTerm(): Term {
    return this.group.raw.status().term;
  }

  isLeader(): boolean {
    return this.group.isLeader();
  }

  /** On SIGTERM: hand leadership to the most caught-up voter, wait briefly, then stop. */
  async transferLeadershipAway(timeoutMs: number): Promise<void> {
    const status = this.group.raw.status();
    if (status.role !== Role.Leader) return;
    let target: NodeId | null = null;
    let best = -1;
    for (const [id, progress] of status.progress) {
      if (id === this.memberId || progress.learner) continue;
      if (progress.match > best) {
        best = progress.match;
        target = id;
      }
    }
    if (target === null) return;
    this.options.logger.info(`stopping: transferring leadership to ${target.toString(16)}`);
    this.group.transferLeadership(target);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && this.group.isLeader()) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.housekeeping) {
        clearTimeout(this.housekeeping as NodeJS.Timeout);
        clearImmediate(this.housekeeping as NodeJS.Immediate);
      }
      this.group.stop();
      await this.group.idle();
      await this.transport.close();
      await this.wal.close();
      await this.store.close();
    })();
    return this.stopping;
  }
}

function describeFields(fields: Record<string, unknown>): string {
  return Object.entries(fields).map(([key, value]) => `${key}=${typeof value === "bigint" ? value.toString(16) : String(value)}`).join(" ");
}

function sameUrls(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((url, position) => url === b[position]);
}

export function foundingMembers(options: Pick<NodeOptions, "initialCluster" | "initialClusterToken">): Member[] {
  return [...options.initialCluster].map(([name, urls]) => ({
    id: computeMemberId(urls, options.initialClusterToken),
    name,
    peerUrls: [...urls],
    clientUrls: [],
    isLearner: false,
  }));
}

/** What a joining member is told: the cluster id and the members (ids as hex, as etcd prints them). */
function describeCluster(clusterId: ClusterId, members: readonly Member[]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({
    clusterId: clusterId.toString(16),
    members: members.map((member) => ({ id: member.id.toString(16), name: member.name, peerUrls: member.peerUrls, isLearner: member.isLearner })),
  }));
}

/**
 * --initial-cluster-state existing: ask the other members named in
 * --initial-cluster who the cluster is, and find ourselves among its members
 * by our peer URL (the member must have been added first, as in etcd).
 */
async function discoverIdentity(options: NodeOptions): Promise<{ identity: Identity; members: Member[] }> {
  const ownUrls = new Set(options.peerUrls);
  const errors: string[] = [];
  for (const [name, urls] of options.initialCluster) {
    if (name === options.name) continue;
    for (const url of urls) {
      try {
        const answer = JSON.parse(new TextDecoder().decode(await discoverCluster(url, { tls: options.peerTls }))) as {
          clusterId: string; members: { id: string; name: string; peerUrls: string[] }[];
        };
        const self = answer.members.find((member) => member.peerUrls.some((peerUrl) => ownUrls.has(peerUrl)));
        if (!self) {
          throw new NodeStartError(`the cluster at ${url} has no member with peer URL ${[...ownUrls].join(", ")}: add this member first (etcdctl member add ${options.name} --peer-urls=${[...ownUrls].join(",")})`);
        }
        return {
          identity: { clusterId: toClusterId(BigInt(`0x${answer.clusterId}`)), memberId: nodeId(BigInt(`0x${self.id}`)) },
          members: answer.members.map((member) => ({
            id: nodeId(BigInt(`0x${member.id}`)), name: member.name, peerUrls: member.peerUrls, clientUrls: [], isLearner: false,
          })),
        };
      } catch (error) {
        if (error instanceof NodeStartError) throw error;
        errors.push(`${url}: ${(error as Error).message}`);
      }
    }
  }
  throw new NodeStartError(`--initial-cluster-state existing: no member of the running cluster answered (${errors.join("; ") || "no other members in --initial-cluster"})`);
}

function readIdentity(path: string): Identity {
  let value: { format?: number; clusterId?: string; memberId?: string };
  try {
    value = JSON.parse(readFileSync(path, "utf8")) as typeof value;
  } catch (error) {
    throw new NodeStartError(`${path} is not readable JSON: ${(error as Error).message}; refusing to start rather than guess this member's identity`);
  }
  if (value.format !== IDENTITY_FORMAT || typeof value.clusterId !== "string" || typeof value.memberId !== "string") {
    throw new NodeStartError(`${path}: unknown format ${String(value.format)} or missing ids`);
  }
  return { clusterId: toClusterId(BigInt(`0x${value.clusterId}`)), memberId: nodeId(BigInt(`0x${value.memberId}`)) };
}

export function writeIdentity(path: string, identity: Identity, name: string): void {
  const temporary = `${path}.tmp`;
  writeFileSync(temporary, JSON.stringify({ format: IDENTITY_FORMAT, clusterId: identity.clusterId.toString(16), memberId: identity.memberId.toString(16), name }, null, 2) + "\n");
  const descriptor = openSync(temporary, "r");
  fsyncSync(descriptor);
  closeSync(descriptor);
  renameSync(temporary, path);
}

