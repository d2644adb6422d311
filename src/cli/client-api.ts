/**
 * The client API of a member: etcd's KV, Cluster and Maintenance services on
 * the lean gRPC server, backed by the node. This is where the API layer's
 * backend interfaces meet the runtime.
 */
import { statSync } from "node:fs";
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import {
  createGrpcServer, GrpcError, GrpcStatus, registerEtcdServices, type GrpcServer,
} from "../api/mod.js";
import {
  BadLeaderTransfereeError, LearnerNotReadyError, MemberExistsError, MemberNotFoundError, MemberNotLearnerError,
  PeerUrlExistsError, type ClusterBackend, type KvBackend, type MaintenanceBackend, type MemberInfo, type StatusInfo,
} from "../api/backend.js";
import { KvService } from "../api/services/kv-service.js";
import { ClusterService } from "../api/services/cluster-service.js";
import { MaintenanceService } from "../api/services/maintenance-service.js";
import { encodeCommand, type KvCommand, type AppliedEntry as KvAppliedEntry } from "../kv/mod.js";
import { ConfChangeTransition, ConfChangeType, Role } from "../raft/mod.js";
import { nodeId, type NodeId } from "../lib/ids.js";
import { CAIRN_VERSION, type CairnNode } from "../server/node.js";
import { computeMemberId, encodeMemberContext } from "../server/membership.js";
import { kvCommandBytes, memberPeerUrlsCommand } from "../server/kv-state-machine.js";
import { RequestTimeoutError } from "../server/errors.js";
import type { NodeMetrics } from "../server/metrics.js";
import type { NodeConfig } from "./config.js";
import { AutoCompactor } from "./auto-compactor.js";

/** etcd promotes a learner only once its log is within 90% of the leader's. */
const LEARNER_READY_FRACTION = 0.9;

export interface ClientApi {
  readonly servers: readonly GrpcServer[];
  close(): Promise<void>;
}

function memberInfo(member: { id: bigint; name: string; peerUrls: readonly string[]; clientUrls: readonly string[]; isLearner: boolean }): MemberInfo {
  return { id: member.id, name: member.name, peerUrls: member.peerUrls, clientUrls: member.clientUrls, isLearner: member.isLearner };
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
        version: CAIRN_VERSION, dbSizeBytes, dbSizeInUseBytes: dbSizeBytes, leader: status.leader,
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
    // No quota is enforced yet, so no alarm is ever raised: the list is truthfully empty.
    alarms: () => [],
    async activateAlarm() {
      throw new GrpcError(GrpcStatus.unimplemented, "cairn: alarms are not implemented yet");
    },
    async deactivateAlarm() {
      throw new GrpcError(GrpcStatus.unimplemented, "cairn: alarms are not implemented yet");
    },
    async defragment() {
      throw new GrpcError(GrpcStatus.unimplemented, "cairn: defragment is not implemented yet (LMDB reuses freed pages in place)");
    },
  };
  return { kv, cluster, maintenance };
}

export async function attachClientApi(node: CairnNode, config: NodeConfig, logger: Logger, metrics: NodeMetrics): Promise<ClientApi> {
  const backends = createBackends(node, config);
  const handlers = {
    kv: new KvService(backends.kv, { rangeResponseBytesMax: config.maxResponseBytes, txnOpsMax: config.maxTxnOps }),
    cluster: new ClusterService(backends.cluster),
    maintenance: new MaintenanceService(backends.maintenance),
  };
  const servers: GrpcServer[] = [];
  for (const url of config.listenClientUrls) {
    const secure = url.protocol === "https:" ? {
      cert: readFileSync(config.clientTls.certFile),
      key: readFileSync(config.clientTls.keyFile),
      ca: config.clientTls.trustedCaFile === "" ? undefined : readFileSync(config.clientTls.trustedCaFile),
      requestCert: config.clientTls.clientCertAuth,
      rejectUnauthorized: config.clientTls.clientCertAuth,
    } : undefined;
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
  return {
    servers,
    async close() {
      compactor.stop();
      await Promise.all(servers.map((server) => server.close()));
    },
  };
}
