/**
 * The client API of a member: etcd's KV, Cluster and Maintenance services on
 * the lean gRPC server, backed by the node. This is where the API layer's
 * backend interfaces meet the runtime.
 */
import { statSync } from "node:fs";
import type { TlsOptions } from "node:tls";
import type { Logger } from "pino";
import {
  createGrpcServer, EtcdError, registerEtcdServices, type GrpcServer,
} from "../api/mod.js";
import {
  BadLeaderTransfereeError, LearnerNotReadyError, MemberExistsError, MemberNotFoundError, MemberNotLearnerError,
  PeerUrlExistsError, type ClusterBackend, type KvBackend, type LeaseBackend, type MaintenanceBackend, type MemberInfo,
  type StatusInfo,
} from "../api/backend.js";
import { KvService } from "../api/services/kv-service.js";
import { LeaseService } from "../api/services/lease-service.js";
import { ClusterService } from "../api/services/cluster-service.js";
import { MaintenanceService } from "../api/services/maintenance-service.js";
import { WatchService } from "../api/services/watch-service.js";
import { encodeCommand, WatchHub, type KvCommand, type AppliedEntry as KvAppliedEntry } from "../kv/mod.js";
import { ConfChangeTransition, ConfChangeType, Role } from "../raft/mod.js";
import { nodeId, type NodeId } from "../lib/ids.js";
import { CAIRN_VERSION, type CairnNode } from "../server/node.js";
import { computeMemberId, encodeMemberContext } from "../server/membership.js";
import { AlarmKind, alarmCommand, kvCommandBytes, memberPeerUrlsCommand } from "../server/kv-state-machine.js";
import { RequestTimeoutError } from "../server/errors.js";
import type { NodeMetrics } from "../server/metrics.js";
import { LeaseKeeper } from "../server/lease-keeper.js";
import { loadTls } from "../transport/mod.js";
import type { NodeConfig } from "./config.js";
import { AutoCompactor } from "./auto-compactor.js";
import { Gauge } from "prom-client";

/** etcd promotes a learner only once its log is within 90% of the leader's. */
const LEARNER_READY_FRACTION = 0.9;

export interface ClientApi {
  readonly servers: readonly GrpcServer[];
  close(): Promise<void>;
}

function memberInfo(member: { id: bigint; name: string; peerUrls: readonly string[]; clientUrls: readonly string[]; isLearner: boolean }): MemberInfo {
  return { id: member.id, name: member.name, peerUrls: member.peerUrls, clientUrls: member.clientUrls, isLearner: member.isLearner };
}

/** Does the command add data (a Put, a Txn with a Put in any branch, a lease grant)? */
function addsData(command: KvCommand): boolean {
  // etcd refuses LeaseGrant under NOSPACE too; revokes and keep-alives go on (a revoke frees space).
  if (command.type === "put" || command.type === "leaseGrant") return true;
  if (command.type !== "txn") return false;
  const hasPut = (ops: readonly { type: string }[]): boolean =>
    ops.some((op) => op.type === "put" || (op.type === "txn" && addsData(op as unknown as KvCommand)));
  return hasPut(command.request.success) || hasPut(command.request.failure);
}

/**
 * --quota-backend-bytes: checked every second against the store's in-use
 * bytes. Above it, this member raises NOSPACE (replicated: every member then
 * refuses writes); once in-use drops below it again — after a compaction
 * frees history — the member clears its own alarm. So the one command that
 * recovers is a compaction: `etcdctl compaction <revision>`.
 */
export function startQuotaMonitor(node: CairnNode, quotaBytes: number, log: (message: string) => void): () => void {
  if (quotaBytes <= 0) return () => {};
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    const { inUseBytes } = node.store.usage();
    const raised = node.stateMachine.alarms().some((alarm) => alarm.memberId === node.memberId && alarm.alarm === AlarmKind.NoSpace);
    const over = inUseBytes > quotaBytes;
    if (over === raised) return;
    busy = true;
    log(over
      ? `store uses ${inUseBytes} bytes, over --quota-backend-bytes ${quotaBytes}: raising NOSPACE (writes are refused until a compaction frees space)`
      : `store uses ${inUseBytes} bytes, under the quota again: clearing NOSPACE`);
    node.group.propose(alarmCommand(over, node.memberId, AlarmKind.NoSpace), AbortSignal.timeout(10_000))
      .catch((error: unknown) => log(`could not ${over ? "raise" : "clear"} NOSPACE: ${(error as Error).message}`))
      .finally(() => { busy = false; });
  }, 1000);
  timer.unref();
  return () => clearInterval(timer);
}

export function createBackends(node: CairnNode, config: Pick<NodeConfig, "initialClusterToken" | "dataDir">): {
  kv: KvBackend; cluster: ClusterBackend; maintenance: MaintenanceBackend;
} {
  const group = node.group;
  const machine = node.stateMachine;
  const identity = {
    clusterId: node.clusterId as bigint,
    memberId: node.memberId as bigint,
    raftTerm: () => node.raftTerm(),
    isLearner: () => machine.member(node.memberId)?.isLearner ?? false,
  };
  const kv: KvBackend = {
    ...identity,
    mvcc: machine.mvcc,
    readBarrier: (signal) => group.readBarrier(signal),
    async propose(command: KvCommand, signal: AbortSignal): Promise<KvAppliedEntry> {
      // etcd's capped applier: with NOSPACE raised, nothing that adds data is accepted; deletes and compactions are.
      if (machine.hasAlarm(AlarmKind.NoSpace) && addsData(command)) throw new EtcdError("noSpace");
      const result = await group.propose(kvCommandBytes(encodeCommand(command)), signal);
      if (result === undefined) throw new RequestTimeoutError("the entry was applied before this member saw it (snapshot); outcome unknown");
      return result as KvAppliedEntry;
    },
    async physicallyCompacted(revision: number, signal: AbortSignal): Promise<void> {
      while (machine.mvcc.physicalCompactRevision() < revision) {
        if (signal.aborted) throw new RequestTimeoutError("compaction wait aborted", { cause: signal.reason });
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
  };

  const changeMembership = (type: ConfChangeType, id: NodeId, context: Uint8Array) =>
    group.proposeConfChange({ transition: ConfChangeTransition.Auto, changes: [{ type, nodeId: id }], context });

  const cluster: ClusterBackend = {
    ...identity,
    members: () => machine.members().map(memberInfo),
    readBarrier: (signal) => group.readBarrier(signal),
    async addMember(peerUrls, isLearner, signal) {
      for (const member of machine.members()) {
        const clash = member.peerUrls.find((url) => peerUrls.includes(url));
        if (clash) throw new PeerUrlExistsError(clash);
      }
      const id = computeMemberId(peerUrls, config.initialClusterToken, Date.now());
      if (machine.member(id)) throw new MemberExistsError(id);
      const member = { id, name: "", peerUrls: [...peerUrls], clientUrls: [], isLearner };
      changeMembership(isLearner ? ConfChangeType.AddLearner : ConfChangeType.AddNode, id, encodeMemberContext(member));
      await group.waitUntil(() => machine.member(id) !== undefined, signal, "member add");
      return memberInfo(machine.member(id)!);
    },
    async removeMember(id, signal) {
      const memberId = nodeId(id);
      if (!machine.member(memberId)) throw new MemberNotFoundError(id);
      changeMembership(ConfChangeType.RemoveNode, memberId, new Uint8Array(0));
      await group.waitUntil(() => machine.member(memberId) === undefined, signal, "member remove");
    },
    async updateMember(id, peerUrls, signal) {
      const memberId = nodeId(id);
      if (!machine.member(memberId)) throw new MemberNotFoundError(id);
      for (const member of machine.members()) {
        if (member.id === memberId) continue;
        const clash = member.peerUrls.find((url) => peerUrls.includes(url));
        if (clash) throw new PeerUrlExistsError(clash);
      }
      await group.propose(memberPeerUrlsCommand(memberId, peerUrls), signal);
    },
    async promoteMember(id, signal) {
      const memberId = nodeId(id);
      const member = machine.member(memberId);
      if (!member) throw new MemberNotFoundError(id);
      if (!member.isLearner) throw new MemberNotLearnerError(id);
      const status = group.raw.status();
      if (status.role === Role.Leader) {
        const progress = status.progress.get(memberId);
        if (!progress || progress.match < status.lastIndex * LEARNER_READY_FRACTION) throw new LearnerNotReadyError(id);
      }
      changeMembership(ConfChangeType.AddNode, memberId, new Uint8Array(0));
      await group.waitUntil(() => machine.member(memberId)?.isLearner === false, signal, "member promote");
    },
  };

  const maintenance: MaintenanceBackend = {
    ...identity,
    currentRevision: () => machine.mvcc.currentRevision(),
    status(): StatusInfo {
      const status = group.raw.status();
      let dbSizeBytes = 0;
      try {
        dbSizeBytes = statSync(machine.store.location).size;
      } catch {
        // reported as 0 when the file cannot be read
      }
      return {
        version: CAIRN_VERSION, dbSizeBytes, dbSizeInUseBytes: Math.min(dbSizeBytes, node.store.usage().inUseBytes), leader: status.leader,
        raftIndex: status.commit, raftAppliedIndex: machine.mvcc.appliedIndex(), raftTerm: status.term,
        errors: group.failure ? [String((group.failure as Error).message)] : [], isLearner: identity.isLearner(),
      };
    },
    hashKv(revision) {
      const result = machine.mvcc.hashKv(revision);
      return { ...result, revision: machine.mvcc.currentRevision() } as never;
    },
    async snapshot() {
      const image = machine.snapshot();
      let sizeBytesEstimate = 0;
      try {
        sizeBytesEstimate = statSync(machine.store.location).size;
      } catch {
        // unknown size
      }
      return { revision: machine.mvcc.currentRevision(), sizeBytesEstimate, chunks: image.chunks };
    },
    async moveLeader(target, signal) {
      const targetId = nodeId(target);
      const member = machine.member(targetId);
      if (!member || member.isLearner) throw new BadLeaderTransfereeError(target);
      group.transferLeadership(targetId);
      await group.waitUntil(() => group.leader() === targetId, signal, "leader move");
    },
    alarms: () => machine.alarms(),
    async activateAlarm(memberId, alarm, signal) {
      const id = nodeId(memberId);
      await group.propose(alarmCommand(true, id, alarm), signal);
      return { memberId: id, alarm };
    },
    async deactivateAlarm(memberId, alarm, signal) {
      const id = nodeId(memberId);
      const had = machine.alarms().some((entry) => entry.memberId === id && entry.alarm === alarm);
      await group.propose(alarmCommand(false, id, alarm), signal);
      return had ? { memberId: id, alarm } : null;
    },
    async defragment(signal) {
      await node.defragment(signal);
    },
  };
  return { kv, cluster, maintenance };
}

/**
 * The member's watch hub, fed by every applied entry and told about snapshot
 * installs. A watch on any member follows that member's applied state, which
 * only moves forward (also across restarts: the applied revision is durable
 * with the data), so a watch never travels back in time.
 */
function attachWatchHub(node: CairnNode, config: Pick<NodeConfig, "watchBufferedEventsMax">, metrics: NodeMetrics): WatchHub {
  const hub = new WatchHub(node.stateMachine.mvcc, { bufferedEventsMax: config.watchBufferedEventsMax });
  node.stateMachine.onApplied((entries) => hub.applied(entries));
  node.stateMachine.onRestored(() => hub.restored());
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({ name, help, registers: [metrics.registry], collect() { this.set(read()); } });
  gauge("etcd_debugging_mvcc_watcher_total", "Watchers on this member.", () => hub.watcherCount());
  gauge("etcd_debugging_mvcc_slow_watcher_total", "Watchers catching up from storage.", () => hub.unsyncedCount());
  gauge("cairn_watch_buffered_events", "Events held in memory for watchers.", () => hub.bufferedEvents());
  gauge("cairn_watch_buffered_events_peak", "Most events one watcher has held in memory at once (bounded by --watch-buffered-events-max).", () => hub.bufferedEventsPeak());
  gauge("cairn_watch_buffer_overflows", "Times a watcher's buffer was full and it moved to catching up from storage.", () => hub.overflowCount());
  return hub;
}

/** How often the lease keeper looks at the clock (expiry precision, and how soon a new leader notices it leads). */
const LEASE_TICK_MS = 100;

/**
 * The lease clock of this member (server/lease-keeper.ts) and the Lease
 * service's backend on top of the KV backend. Expiry and checkpoint
 * commands go through the same propose path as clients' writes.
 */
export function startLeases(node: CairnNode, config: Pick<NodeConfig, "electionTimeoutMs" | "leaseCheckpointIntervalMs">, kv: KvBackend, log: (message: string) => void): {
  backend: LeaseBackend; stop: () => void;
} {
  const machine = node.stateMachine;
  const keeper = new LeaseKeeper({
    mvcc: machine.mvcc,
    nowMs: () => performance.now(),
    isLeader: () => node.isLeader(),
    appliedIndex: () => machine.mvcc.appliedIndex(),
    propose: (command) => kv.propose(command, AbortSignal.timeout(5000 + 2 * config.electionTimeoutMs)),
    promoteExtensionMs: config.electionTimeoutMs,
    checkpointIntervalMs: config.leaseCheckpointIntervalMs,
    log,
  });
  machine.onApplied((entries) => keeper.observe(entries));
  const timer = setInterval(() => keeper.tick(), LEASE_TICK_MS);
  timer.unref();
  const backend: LeaseBackend = {
    ...kv,
    leaseRemainingMs: (id) => keeper.remainingMs(id),
    // etcd: 1.5 election timeouts, rounded up to whole seconds.
    leaseTtlSecondsMin: Math.max(1, Math.ceil((1.5 * config.electionTimeoutMs) / 1000)),
  };
  return { backend, stop: () => clearInterval(timer) };
}

export async function attachClientApi(node: CairnNode, config: NodeConfig, logger: Logger, metrics: NodeMetrics): Promise<ClientApi> {
  const backends = createBackends(node, config);
  const hub = attachWatchHub(node, config, metrics);
  const leases = startLeases(node, config, backends.kv, (message) => logger.info(message));
  const handlers = {
    kv: new KvService(backends.kv, { rangeResponseBytesMax: config.maxResponseBytes, txnOpsMax: config.maxTxnOps }),
    watch: new WatchService({ ...backends.kv, hub, currentRevision: () => node.stateMachine.mvcc.currentRevision() }, {
      progressNotifyIntervalMs: config.watchProgressNotifyIntervalMs,
    }),
    lease: new LeaseService(leases.backend),
    cluster: new ClusterService(backends.cluster),
    maintenance: new MaintenanceService(backends.maintenance),
  };
  const servers: GrpcServer[] = [];
  let loadedTls: TlsOptions | null = null;
  const clientTls = (): TlsOptions => {
    loadedTls ??= loadTls({
      certFile: config.clientTls.certFile || undefined,
      keyFile: config.clientTls.keyFile || undefined,
      trustedCaFile: config.clientTls.trustedCaFile || undefined,
      clientCertAuth: config.clientTls.clientCertAuth,
    }, "client", "--").server;
    if (loadedTls === null) throw new Error("--listen-client-urls: an https:// URL needs --cert-file and --key-file");
    return loadedTls;
  };
  for (const url of config.listenClientUrls) {
    // Each listener's scheme decides (as etcd): https:// serves TLS with the client TLS files, http:// plaintext.
    const secure = url.protocol === "https:" ? clientTls() : undefined;
    const server = createGrpcServer({ secure, logger: logger as never, receiveMessageBytesMax: config.maxRequestBytes + 512 * 1024 });
    registerEtcdServices(server, handlers, { requestBytesMax: config.maxRequestBytes, txnOpsMax: config.maxTxnOps });
    await server.listen(Number(url.port), url.hostname);
    servers.push(server);
  }
  void metrics;
  const compactor = new AutoCompactor(backends.kv, {
    mode: config.autoCompactionMode, retention: config.autoCompactionRetention,
    isLeader: () => node.isLeader(), log: (message) => logger.info(message),
  });
  compactor.start();
  const stopQuota = startQuotaMonitor(node, config.quotaBackendBytes, (message) => logger.warn(message));
  return {
    servers,
    async close() {
      compactor.stop();
      stopQuota();
      leases.stop();
      await Promise.all(servers.map((server) => server.close()));
    },
  };
}
