/**
 * The hot messages of etcd's v3 API as TypeScript values: KV, Watch and Lease.
 * Field names are protobufjs's camelCase of the .proto names (so `ID` and
 * `TTL` stay as etcd spells them). Decoded messages always carry every scalar
 * field (proto3 defaults filled in); embedded messages are optional.
 *
 * Types: ids (lease, member, cluster) are bigint; revisions, counts, versions,
 * terms and TTLs are numbers. Bytes fields are Uint8Array copies owned by the
 * message.
 */

export interface ResponseHeader {
  clusterId: bigint;
  memberId: bigint;
  revision: number;
  raftTerm: number;
}

export interface KeyValue {
  key: Uint8Array;
  createRevision: number;
  modRevision: number;
  version: number;
  value: Uint8Array;
  lease: bigint;
}

export const SortOrder = { none: 0, ascend: 1, descend: 2 } as const;
export const SortTarget = { key: 0, version: 1, create: 2, mod: 3, value: 4 } as const;

export interface RangeRequest {
  key: Uint8Array;
  rangeEnd: Uint8Array;
  limit: number;
  revision: number;
  sortOrder: number;
  sortTarget: number;
  serializable: boolean;
  keysOnly: boolean;
  countOnly: boolean;
  minModRevision: number;
  maxModRevision: number;
  minCreateRevision: number;
  maxCreateRevision: number;
}

export interface RangeResponse {
  header?: ResponseHeader;
  kvs: KeyValue[];
  more: boolean;
  count: number;
}

export interface PutRequest {
  key: Uint8Array;
  value: Uint8Array;
  lease: bigint;
  prevKv: boolean;
  ignoreValue: boolean;
  ignoreLease: boolean;
}

export interface PutResponse {
  header?: ResponseHeader;
  prevKv?: KeyValue;
}

export interface DeleteRangeRequest {
  key: Uint8Array;
  rangeEnd: Uint8Array;
  prevKv: boolean;
}

export interface DeleteRangeResponse {
  header?: ResponseHeader;
  deleted: number;
  prevKvs: KeyValue[];
}

/** protobuf oneof `request`: exactly one member is set. */
export type RequestOp =
  | { requestRange: RangeRequest }
  | { requestPut: PutRequest }
  | { requestDeleteRange: DeleteRangeRequest }
  | { requestTxn: TxnRequest };

/** protobuf oneof `response`: exactly one member is set. */
export type ResponseOp =
  | { responseRange: RangeResponse }
  | { responsePut: PutResponse }
  | { responseDeleteRange: DeleteRangeResponse }
  | { responseTxn: TxnResponse };

export const CompareResult = { equal: 0, greater: 1, less: 2, notEqual: 3 } as const;
export const CompareTarget = { version: 0, create: 1, mod: 2, value: 3, lease: 4 } as const;

/**
 * A Txn guard. The oneof `target_union` is the optional field matching
 * `target` (version, createRevision, modRevision, value or lease); at most one
 * is set, and a set member is encoded even when it holds its zero value.
 */
export interface Compare {
  result: number;
  target: number;
  key: Uint8Array;
  rangeEnd: Uint8Array;
  version?: number;
  createRevision?: number;
  modRevision?: number;
  value?: Uint8Array;
  lease?: bigint;
}

export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
}

export interface TxnResponse {
  header?: ResponseHeader;
  succeeded: boolean;
  responses: ResponseOp[];
}

export interface CompactionRequest {
  revision: number;
  physical: boolean;
}

export interface CompactionResponse {
  header?: ResponseHeader;
}

// ------------------------------------------------------------------ Watch

export const EventType = { put: 0, delete: 1 } as const;

export interface Event {
  type: number;
  kv?: KeyValue;
  prevKv?: KeyValue;
}

export const WatchFilterType = { noPut: 0, noDelete: 1 } as const;

export interface WatchCreateRequest {
  key: Uint8Array;
  rangeEnd: Uint8Array;
  startRevision: number;
  progressNotify: boolean;
  filters: number[];
  prevKv: boolean;
  watchId: number;
  fragment: boolean;
}

export interface WatchCancelRequest {
  watchId: number;
}

/** protobuf oneof `request_union`. */
export type WatchRequest =
  | { createRequest: WatchCreateRequest }
  | { cancelRequest: WatchCancelRequest }
  | { progressRequest: Record<string, never> }
  /** None of the three set: etcd's watch server skips such a request and keeps the stream. */
  | { none: Record<string, never> };

export interface WatchResponse {
  header?: ResponseHeader;
  watchId: number;
  created: boolean;
  canceled: boolean;
  compactRevision: number;
  cancelReason: string;
  fragment: boolean;
  events: Event[];
}

// ------------------------------------------------------------------ Lease

export interface LeaseGrantRequest {
  TTL: number;
  ID: bigint;
}

export interface LeaseGrantResponse {
  header?: ResponseHeader;
  ID: bigint;
  TTL: number;
  error: string;
}

export interface LeaseRevokeRequest {
  ID: bigint;
}

export interface LeaseRevokeResponse {
  header?: ResponseHeader;
}

export interface LeaseKeepAliveRequest {
  ID: bigint;
}

export interface LeaseKeepAliveResponse {
  header?: ResponseHeader;
  ID: bigint;
  TTL: number;
}

export interface LeaseTimeToLiveRequest {
  ID: bigint;
  keys: boolean;
}

export interface LeaseTimeToLiveResponse {
  header?: ResponseHeader;
  ID: bigint;
  TTL: number;
  grantedTTL: number;
  keys: Uint8Array[];
}

export type LeaseLeasesRequest = Record<string, never>;

export interface LeaseStatus {
  ID: bigint;
}

export interface LeaseLeasesResponse {
  header?: ResponseHeader;
  leases: LeaseStatus[];
}
