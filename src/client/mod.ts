/**
 * The TypeScript client for Cairn (and etcd v3): KV, Cluster and Maintenance
 * with leader-aware routing and retries that never repeat a write whose
 * outcome is unknown.
 */
export { Client, COMMAND_TIMEOUT_MS_DEFAULT, DIAL_TIMEOUT_MS_DEFAULT, RECEIVE_MESSAGE_BYTES_MAX_DEFAULT, type ClientOptions } from "./client.js";
export {
  KvClient, TxnBuilder, compare, op, prefixEnd, toBytes, rangeRequest, putRequest, deleteRequest, isReadOnlyTxn,
  type Bytes, type GetOptions, type PutOptions, type DeleteOptions, type KeyRangeOptions, type CompareOperator,
  type SortOrderName, type SortTargetName,
} from "./kv.js";
export { ClusterClient } from "./cluster.js";
export { LeaseClient, LeaseExpiredError, LeaseKeepAliveLostError, type KeepAliveOptions } from "./lease.js";
export {
  Session, Election, acquireLock, SESSION_TTL_SECONDS_DEFAULT, type Lock, type LockOptions, type Leadership, type ElectionLeader,
  type SessionOptions,
} from "./concurrency.js";
export {
  WatchClient, WatchCompactedError, WatchCanceledError, WATCH_RETRY_BACKOFF_MS_MIN, WATCH_RETRY_BACKOFF_MS_MAX,
  type WatchOptions, type WatchUpdate,
} from "./watch.js";
export { MaintenanceClient, type EndpointStatus, type EndpointOption } from "./maintenance.js";
export { type DispatchOptions, ATTEMPTS_MAX, ATTEMPTS_MIN, ATTEMPTS_PER_ENDPOINT_MAX } from "./dispatcher.js";
export { Channel, ResponseStream, type BidiCall, STREAM_QUEUE_MESSAGES_MAX, type TlsOptions, type ChannelOptions, type MethodDescriptor } from "./channel.js";
export { parseEndpoint, parseEndpoints, ENDPOINTS_MAX, type Endpoint } from "./endpoint.js";
export { judgeFailure, type CallKind, type Verdict } from "./retry-policy.js";
export {
  EtcdClientError, IndeterminateError, ClientClosedError, InvalidEndpointError, InvalidRequestError, TransportError, CallAbortedError,
} from "./errors.js";
export type {
  KeyValue, ResponseHeader, RangeResponse, PutResponse, DeleteRangeResponse, TxnRequest, TxnResponse, RequestOp, ResponseOp,
  Compare, CompactionResponse, Event, WatchResponse, Member, MemberAddResponse, MembersResponse, StatusResponse, HashKVResponse, SnapshotResponse,
  EtcdErrorKind, GrpcStatusCode,
} from "../api/mod.js";
export { GrpcStatus, EventType } from "../api/mod.js";
