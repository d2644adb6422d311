/**
 * etcd's v3 services on a GrpcServer: KV, Watch and Lease with the
 * precompiled codecs, Cluster and Maintenance with protobufjs codecs, Auth
 * (and any service without a handler) answering UNIMPLEMENTED. Requests are
 * validated here the way etcd's gRPC layer does before the handler sees them.
 */
import { limits } from "../lib/limits.js";
import type { EtcdHandlers } from "./handlers.js";
import type { CallContext, GrpcServer, MethodCodecs } from "./grpc/server.js";
import { GrpcError, GrpcStatus } from "./grpc/status.js";
import { EtcdError } from "./etcd-errors.js";
import { checkDeleteRangeRequest, checkPutRequest, checkRangeRequest, checkTxnRequest } from "./kv-validation.js";
import { etcdCodecs } from "./protobuf/etcd-codecs.js";
import type { MessageCodec } from "./protobuf/codec.js";
import { etcdProtoRoot, reflectionCodec } from "./protobuf/reflection-codecs.js";

export interface EtcdServiceOptions {
  /** etcd's --max-request-bytes: larger Put/DeleteRange/Txn requests get "etcdserver: request is too large". */
  requestBytesMax?: number;
  /** etcd's --max-txn-ops. */
  txnOpsMax?: number;
}

const PACKAGE = "etcdserverpb";
const ETCD_SERVICES = ["KV", "Watch", "Lease", "Cluster", "Maintenance", "Auth"] as const;

/** A request codec for methods that are refused before their request is looked at. */
const IGNORED_MESSAGE: MessageCodec<undefined> = { encode: () => new Uint8Array(0), decode: () => undefined };

/** Codecs for a cold RPC; typed `never` so the handler's signature decides the message types. */
function cold(requestType: string, responseType: string): MethodCodecs<never, never> {
  return { request: reflectionCodec<never>(`${PACKAGE}.${requestType}`), response: reflectionCodec<never>(`${PACKAGE}.${responseType}`) };
}

export function registerEtcdServices(server: GrpcServer, handlers: EtcdHandlers, options: EtcdServiceOptions = {}): void {
  const requestBytesMax = options.requestBytesMax ?? limits.requestBytesMax;
  const txnOpsMax = options.txnOpsMax ?? limits.txnOpsMax;
  const path = (service: string, method: string): string => `/${PACKAGE}.${service}/${method}`;
  const checkSize = (context: CallContext): void => {
    if (context.requestBytes > requestBytesMax) throw new EtcdError("requestTooLarge");
  };
  const built = new Set<string>();

  const { kv, watch, lease, cluster, maintenance } = handlers;
  if (kv) {
    built.add("KV");
    server.registerUnary(path("KV", "Range"), { request: etcdCodecs.rangeRequest, response: etcdCodecs.rangeResponse }, async (request, context) => {
      checkRangeRequest(request);
      return kv.range(request, context);
    });
    server.registerUnary(path("KV", "Put"), { request: etcdCodecs.putRequest, response: etcdCodecs.putResponse }, async (request, context) => {
      checkPutRequest(request);
      checkSize(context);
      return kv.put(request, context);
    });
    server.registerUnary(path("KV", "DeleteRange"), { request: etcdCodecs.deleteRangeRequest, response: etcdCodecs.deleteRangeResponse }, async (request, context) => {
      checkDeleteRangeRequest(request);
      checkSize(context);
      return kv.deleteRange(request, context);
    });
    server.registerUnary(path("KV", "Txn"), { request: etcdCodecs.txnRequest, response: etcdCodecs.txnResponse }, async (request, context) => {
      checkTxnRequest(request, txnOpsMax);
      checkSize(context);
      return kv.txn(request, context);
    });
    server.registerUnary(path("KV", "Compact"), { request: etcdCodecs.compactionRequest, response: etcdCodecs.compactionResponse }, (request, context) =>
      kv.compact(request, context));
  }

  if (watch) {
    built.add("Watch");
    server.registerBidiStream(path("Watch", "Watch"), { request: etcdCodecs.watchRequest, response: etcdCodecs.watchResponse }, (requests, responses, context) =>
      watch.watch(requests, responses, context));
  }

  if (lease) {
    built.add("Lease");
    server.registerUnary(path("Lease", "LeaseGrant"), { request: etcdCodecs.leaseGrantRequest, response: etcdCodecs.leaseGrantResponse }, (request, context) =>
      lease.leaseGrant(request, context));
    server.registerUnary(path("Lease", "LeaseRevoke"), { request: etcdCodecs.leaseRevokeRequest, response: etcdCodecs.leaseRevokeResponse }, (request, context) =>
      lease.leaseRevoke(request, context));
    server.registerBidiStream(path("Lease", "LeaseKeepAlive"), { request: etcdCodecs.leaseKeepAliveRequest, response: etcdCodecs.leaseKeepAliveResponse }, (requests, responses, context) =>
      lease.leaseKeepAlive(requests, responses, context));
    server.registerUnary(path("Lease", "LeaseTimeToLive"), { request: etcdCodecs.leaseTimeToLiveRequest, response: etcdCodecs.leaseTimeToLiveResponse }, (request, context) =>
      lease.leaseTimeToLive(request, context));
    server.registerUnary(path("Lease", "LeaseLeases"), { request: etcdCodecs.leaseLeasesRequest, response: etcdCodecs.leaseLeasesResponse }, (request, context) =>
      lease.leaseLeases(request, context));
  }

  if (cluster) {
    built.add("Cluster");
    server.registerUnary(path("Cluster", "MemberAdd"), cold("MemberAddRequest", "MemberAddResponse"), cluster.memberAdd.bind(cluster));
    server.registerUnary(path("Cluster", "MemberRemove"), cold("MemberRemoveRequest", "MemberRemoveResponse"), cluster.memberRemove.bind(cluster));
    server.registerUnary(path("Cluster", "MemberUpdate"), cold("MemberUpdateRequest", "MemberUpdateResponse"), cluster.memberUpdate.bind(cluster));
    server.registerUnary(path("Cluster", "MemberList"), cold("MemberListRequest", "MemberListResponse"), cluster.memberList.bind(cluster));
    server.registerUnary(path("Cluster", "MemberPromote"), cold("MemberPromoteRequest", "MemberPromoteResponse"), cluster.memberPromote.bind(cluster));
  }

  if (maintenance) {
    built.add("Maintenance");
    server.registerUnary(path("Maintenance", "Alarm"), cold("AlarmRequest", "AlarmResponse"), maintenance.alarm.bind(maintenance));
    server.registerUnary(path("Maintenance", "Status"), cold("StatusRequest", "StatusResponse"), maintenance.status.bind(maintenance));
    server.registerUnary(path("Maintenance", "Defragment"), cold("DefragmentRequest", "DefragmentResponse"), maintenance.defragment.bind(maintenance));
    server.registerUnary(path("Maintenance", "Hash"), cold("HashRequest", "HashResponse"), maintenance.hash.bind(maintenance));
    server.registerUnary(path("Maintenance", "HashKV"), cold("HashKVRequest", "HashKVResponse"), maintenance.hashKV.bind(maintenance));
    server.registerServerStream(path("Maintenance", "Snapshot"), cold("SnapshotRequest", "SnapshotResponse"), maintenance.snapshot.bind(maintenance));
    server.registerUnary(path("Maintenance", "MoveLeader"), cold("MoveLeaderRequest", "MoveLeaderResponse"), maintenance.moveLeader.bind(maintenance));
    server.registerUnary(path("Maintenance", "Downgrade"), cold("DowngradeRequest", "DowngradeResponse"), maintenance.downgrade.bind(maintenance));
  }

  for (const service of ETCD_SERVICES) {
    if (!built.has(service)) registerUnimplemented(server, service);
  }
}

/** Every method of a service answers UNIMPLEMENTED with a message that says so plainly. */
function registerUnimplemented(server: GrpcServer, service: string): void {
  const codecs = { request: IGNORED_MESSAGE, response: IGNORED_MESSAGE };
  for (const method of etcdProtoRoot().lookupService(`${PACKAGE}.${service}`).methodsArray) {
    const methodPath = `/${PACKAGE}.${service}/${method.name}`;
    const refuse = async (): Promise<never> => {
      throw new GrpcError(GrpcStatus.unimplemented, `${PACKAGE}.${service}/${method.name} is not implemented by Cairn yet`);
    };
    if (method.requestStream) server.registerBidiStream(methodPath, codecs, refuse);
    else if (method.responseStream) server.registerServerStream(methodPath, codecs, refuse);
    else server.registerUnary(methodPath, codecs, refuse);
  }
}
