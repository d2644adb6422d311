/**
 * The RPCs the client calls: KV with the API layer's hand-written codecs,
 * Cluster and Maintenance with its protobufjs codecs (built on first use,
 * since loading the .proto files costs a few milliseconds).
 */
import {
  etcdCodecs, reflectionCodec, type AlarmRequest, type AlarmResponse, type EmptyRequest, type HashKVRequest, type HashKVResponse,
  type HeaderOnlyResponse, type MemberAddRequest, type MemberAddResponse, type MemberListRequest, type MemberPromoteRequest,
  type MemberRemoveRequest, type MembersResponse, type MemberUpdateRequest, type MoveLeaderRequest, type SnapshotResponse,
  type StatusResponse,
} from "../api/mod.js";
import { methodDescriptor, type MethodDescriptor } from "./channel.js";

export const kvMethods = {
  range: methodDescriptor("KV", "Range", etcdCodecs.rangeRequest, etcdCodecs.rangeResponse),
  put: methodDescriptor("KV", "Put", etcdCodecs.putRequest, etcdCodecs.putResponse),
  deleteRange: methodDescriptor("KV", "DeleteRange", etcdCodecs.deleteRangeRequest, etcdCodecs.deleteRangeResponse),
  txn: methodDescriptor("KV", "Txn", etcdCodecs.txnRequest, etcdCodecs.txnResponse),
  compact: methodDescriptor("KV", "Compact", etcdCodecs.compactionRequest, etcdCodecs.compactionResponse),
};

export const leaseMethods = {
  grant: methodDescriptor("Lease", "LeaseGrant", etcdCodecs.leaseGrantRequest, etcdCodecs.leaseGrantResponse),
  revoke: methodDescriptor("Lease", "LeaseRevoke", etcdCodecs.leaseRevokeRequest, etcdCodecs.leaseRevokeResponse),
  /** A bidirectional stream; the client sends one request and half-closes, so it reads like a server stream. */
  keepAlive: methodDescriptor("Lease", "LeaseKeepAlive", etcdCodecs.leaseKeepAliveRequest, etcdCodecs.leaseKeepAliveResponse),
  timeToLive: methodDescriptor("Lease", "LeaseTimeToLive", etcdCodecs.leaseTimeToLiveRequest, etcdCodecs.leaseTimeToLiveResponse),
  leases: methodDescriptor("Lease", "LeaseLeases", etcdCodecs.leaseLeasesRequest, etcdCodecs.leaseLeasesResponse),
};

export const watchMethods = {
  watch: methodDescriptor("Watch", "Watch", etcdCodecs.watchRequest, etcdCodecs.watchResponse),
};

function cold<Request, Response>(service: string, method: string, requestType: string, responseType: string): MethodDescriptor<Request, Response> {
  return methodDescriptor(service, method, reflectionCodec<Request>(`etcdserverpb.${requestType}`), reflectionCodec<Response>(`etcdserverpb.${responseType}`));
}

function buildColdMethods() {
  return {
    memberAdd: cold<MemberAddRequest, MemberAddResponse>("Cluster", "MemberAdd", "MemberAddRequest", "MemberAddResponse"),
    memberRemove: cold<MemberRemoveRequest, MembersResponse>("Cluster", "MemberRemove", "MemberRemoveRequest", "MemberRemoveResponse"),
    memberUpdate: cold<MemberUpdateRequest, MembersResponse>("Cluster", "MemberUpdate", "MemberUpdateRequest", "MemberUpdateResponse"),
    memberList: cold<MemberListRequest, MembersResponse>("Cluster", "MemberList", "MemberListRequest", "MemberListResponse"),
    memberPromote: cold<MemberPromoteRequest, MembersResponse>("Cluster", "MemberPromote", "MemberPromoteRequest", "MemberPromoteResponse"),
    status: cold<EmptyRequest, StatusResponse>("Maintenance", "Status", "StatusRequest", "StatusResponse"),
    hashKV: cold<HashKVRequest, HashKVResponse>("Maintenance", "HashKV", "HashKVRequest", "HashKVResponse"),
    moveLeader: cold<MoveLeaderRequest, HeaderOnlyResponse>("Maintenance", "MoveLeader", "MoveLeaderRequest", "MoveLeaderResponse"),
    alarm: cold<AlarmRequest, AlarmResponse>("Maintenance", "Alarm", "AlarmRequest", "AlarmResponse"),
    snapshot: cold<EmptyRequest, SnapshotResponse>("Maintenance", "Snapshot", "SnapshotRequest", "SnapshotResponse"),
  };
}

let coldMethods: ReturnType<typeof buildColdMethods> | undefined;

export function clusterAndMaintenanceMethods(): ReturnType<typeof buildColdMethods> {
  coldMethods ??= buildColdMethods();
  return coldMethods;
}
