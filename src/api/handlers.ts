/**
 * The seam between the API and the node runtime: one interface per etcd
 * service. The runtime implements them (proposing through Raft, reading
 * through ReadIndex, filling the ResponseHeader); the API layer decodes,
 * validates requests as etcd's gRPC layer does, and maps thrown errors to
 * gRPC statuses.
 *
 * Contract for implementers:
 * - fill `header` (cluster_id, member_id, revision, raft_term) in every response;
 * - throw `EtcdError` (see etcd-errors.ts) for etcd's failures, `GrpcError`
 *   for any other deliberate status; anything else becomes UNKNOWN and is logged;
 * - watch `context.signal`: it aborts on the client's deadline, on cancel and
 *   on server shutdown; stop work and return (or throw its reason);
 * - on streams, `await responses.send(...)`: that is the backpressure.
 */
import type { CallContext, ResponseSink } from "./grpc/server.js";
import type {
  CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, LeaseGrantRequest,
  LeaseGrantResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseLeasesRequest, LeaseLeasesResponse,
  LeaseRevokeRequest, LeaseRevokeResponse, LeaseTimeToLiveRequest, LeaseTimeToLiveResponse, PutRequest, PutResponse,
  RangeRequest, RangeResponse, TxnRequest, TxnResponse, WatchRequest, WatchResponse,
} from "./protobuf/messages.js";
import type {
  AlarmRequest, AlarmResponse, DowngradeRequest, DowngradeResponse, EmptyRequest, HashKVRequest, HashKVResponse,
  HashResponse, HeaderOnlyResponse, MemberAddRequest, MemberAddResponse, MemberListRequest, MemberPromoteRequest,
  MemberRemoveRequest, MembersResponse, MemberUpdateRequest, MoveLeaderRequest, SnapshotResponse, StatusResponse,
} from "./cold-messages.js";

export type { CallContext, ResponseSink };

export interface KvHandler {
  range(request: RangeRequest, context: CallContext): Promise<RangeResponse>;
  put(request: PutRequest, context: CallContext): Promise<PutResponse>;
  deleteRange(request: DeleteRangeRequest, context: CallContext): Promise<DeleteRangeResponse>;
  txn(request: TxnRequest, context: CallContext): Promise<TxnResponse>;
  compact(request: CompactionRequest, context: CallContext): Promise<CompactionResponse>;
}

export interface WatchHandler {
  /** One call per client stream; resolves (or throws) when the stream should end. */
  watch(requests: AsyncIterable<WatchRequest>, responses: ResponseSink<WatchResponse>, context: CallContext): Promise<void>;
}

export interface LeaseHandler {
  leaseGrant(request: LeaseGrantRequest, context: CallContext): Promise<LeaseGrantResponse>;
  leaseRevoke(request: LeaseRevokeRequest, context: CallContext): Promise<LeaseRevokeResponse>;
  leaseKeepAlive(requests: AsyncIterable<LeaseKeepAliveRequest>, responses: ResponseSink<LeaseKeepAliveResponse>, context: CallContext): Promise<void>;
  leaseTimeToLive(request: LeaseTimeToLiveRequest, context: CallContext): Promise<LeaseTimeToLiveResponse>;
  leaseLeases(request: LeaseLeasesRequest, context: CallContext): Promise<LeaseLeasesResponse>;
}

export interface ClusterHandler {
  memberAdd(request: MemberAddRequest, context: CallContext): Promise<MemberAddResponse>;
  memberRemove(request: MemberRemoveRequest, context: CallContext): Promise<MembersResponse>;
  memberUpdate(request: MemberUpdateRequest, context: CallContext): Promise<MembersResponse>;
  memberList(request: MemberListRequest, context: CallContext): Promise<MembersResponse>;
  memberPromote(request: MemberPromoteRequest, context: CallContext): Promise<MembersResponse>;
}

export interface MaintenanceHandler {
  alarm(request: AlarmRequest, context: CallContext): Promise<AlarmResponse>;
  status(request: EmptyRequest, context: CallContext): Promise<StatusResponse>;
  defragment(request: EmptyRequest, context: CallContext): Promise<HeaderOnlyResponse>;
  hash(request: EmptyRequest, context: CallContext): Promise<HashResponse>;
  hashKV(request: HashKVRequest, context: CallContext): Promise<HashKVResponse>;
  /** Streams the snapshot in chunks; the first response's header names its point in time. */
  snapshot(request: EmptyRequest, responses: ResponseSink<SnapshotResponse>, context: CallContext): Promise<void>;
  moveLeader(request: MoveLeaderRequest, context: CallContext): Promise<HeaderOnlyResponse>;
  downgrade(request: DowngradeRequest, context: CallContext): Promise<DowngradeResponse>;
}

/** Services without a handler answer UNIMPLEMENTED (Auth always does, for now). */
export interface EtcdHandlers {
  kv?: KvHandler;
  watch?: WatchHandler;
  lease?: LeaseHandler;
  cluster?: ClusterHandler;
  maintenance?: MaintenanceHandler;
}
