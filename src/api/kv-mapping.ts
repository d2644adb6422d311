/**
 * Exact conversions between the etcd wire messages (protobuf/messages.ts)
 * and the MVCC state machine's requests and answers (kv/command.ts,
 * kv/types.ts), and the mapping of every failure the KV path can raise —
 * MVCC errors, runtime errors, membership errors — to etcd's gRPC status and
 * text (etcd's v3rpc togRPCError).
 *
 * Runtime errors are recognised by `error.name`, not by class, so api/ does
 * not import server/ (server/ sits below api/ in the layering).
 */
import { assert } from "../lib/assert.js";
import {
  CompareResult as KvCompareResult, CompareTarget as KvCompareTarget, SortOrder as KvSortOrder, SortTarget as KvSortTarget,
  TXN_NESTING_MAX, type Compare as KvCompare, type CompactRequest as KvCompactRequest,
  type DeleteRangeRequest as KvDeleteRangeRequest, type KvCommand, type PutRequest as KvPutRequest,
  type RangeRequest as KvRangeRequest, type RequestOp as KvRequestOp, type TxnRequest as KvTxnRequest,
} from "../kv/command.js";
import {
  CompactedError, DuplicateKeyError, EmptyKeyError, FutureRevisionError, KeyNotFoundError, KvError, LeaseNotFoundError, LeaseExistsError, LeaseTtlTooLargeError,
  LeaseProvidedError, TooManyOperationsError, ValueProvidedError,
} from "../kv/errors.js";
import type {
  DeleteRangeResponse as KvDeleteRangeResponse, KeyValue as KvKeyValue, PutResponse as KvPutResponse,
  RangeResponse as KvRangeResponse, ResponseOp as KvResponseOp, TxnResponse as KvTxnResponse,
} from "../kv/types.js";
import { EtcdError, type EtcdErrorKind } from "./etcd-errors.js";
import { GrpcError, GrpcStatus, type GrpcStatusCode } from "./grpc/status.js";
import {
  CompareResult, CompareTarget, type Compare, type CompactionRequest, type DeleteRangeRequest, type DeleteRangeResponse,
  type KeyValue, type PutRequest, type PutResponse, type RangeRequest, type RangeResponse, type RequestOp,
  type ResponseHeader, type ResponseOp, type TxnRequest, type TxnResponse,
} from "./protobuf/messages.js";

// ------------------------------------------------------------------ requests

/** A request field that etcd accepts but the state machine cannot represent the same way. */
export class UnrepresentableRequestError extends GrpcError {
  override name = "UnrepresentableRequestError";
  constructor(message: string) {
    super(GrpcStatus.invalidArgument, `cairn: ${message}`);
  }
}

const SORT_ORDERS: readonly KvSortOrder[] = [KvSortOrder.None, KvSortOrder.Ascend, KvSortOrder.Descend];
const SORT_TARGETS: readonly KvSortTarget[] = [KvSortTarget.Key, KvSortTarget.Version, KvSortTarget.Create, KvSortTarget.Mod, KvSortTarget.Value];

/**
 * etcd reads a revision or limit <= 0 as "current" or "no limit"; the kv
 * encoding holds only non-negative numbers, so negatives become 0.
 */
function atLeastZero(value: number): number {
  return value > 0 ? value : 0;
}

/**
 * A min filter below 1 filters nothing (every revision is >= 1), so it is 0.
 * A negative max filter would drop every key in etcd, which 0 ("no filter")
 * cannot say: refused rather than answered differently.
 */
function revisionFilter(value: number, field: string, isMax: boolean): number {
  if (value >= 0) return value;
  if (isMax) throw new UnrepresentableRequestError(`${field} must not be negative`);
  return 0;
}

export function toKvRangeRequest(request: RangeRequest): KvRangeRequest {
  const sortOrder = SORT_ORDERS[request.sortOrder];
  const sortTarget = SORT_TARGETS[request.sortTarget];
  if (sortOrder === undefined || sortTarget === undefined) throw new EtcdError("invalidSortOption");
  return {
    key: request.key,
    rangeEnd: request.rangeEnd,
    limit: atLeastZero(request.limit),
    revision: atLeastZero(request.revision),
    sortOrder,
    sortTarget,
    keysOnly: request.keysOnly,
    countOnly: request.countOnly,
    minModRevision: revisionFilter(request.minModRevision, "min_mod_revision", false),
    maxModRevision: revisionFilter(request.maxModRevision, "max_mod_revision", true),
    minCreateRevision: revisionFilter(request.minCreateRevision, "min_create_revision", false),
    maxCreateRevision: revisionFilter(request.maxCreateRevision, "max_create_revision", true),
  };
}

export function toKvPutRequest(request: PutRequest): KvPutRequest {
  return {
    key: request.key, value: request.value, lease: request.lease, prevKv: request.prevKv,
    ignoreValue: request.ignoreValue, ignoreLease: request.ignoreLease,
  };
}

export function toKvDeleteRangeRequest(request: DeleteRangeRequest): KvDeleteRangeRequest {
  return { key: request.key, rangeEnd: request.rangeEnd, prevKv: request.prevKv };
}

const COMPARE_RESULTS = new Map<number, KvCompareResult>([
  [CompareResult.equal, KvCompareResult.Equal],
  [CompareResult.greater, KvCompareResult.Greater],
  [CompareResult.less, KvCompareResult.Less],
  [CompareResult.notEqual, KvCompareResult.NotEqual],
]);

const COMPARE_TARGETS = new Map<number, KvCompareTarget>([
  [CompareTarget.version, KvCompareTarget.Version],
  [CompareTarget.create, KvCompareTarget.Create],
  [CompareTarget.mod, KvCompareTarget.Mod],
  [CompareTarget.value, KvCompareTarget.Value],
  [CompareTarget.lease, KvCompareTarget.Lease],
]);

/**
 * A version or revision operand as the kv encoding holds it (0 ..
 * MAX_SAFE_INTEGER), with the same outcome as etcd's int64 comparison.
 * Versions and revisions are never negative and never reach
 * MAX_SAFE_INTEGER, so: a negative operand makes = and < always false and
 * != and > always true, which "= MAX" and "!= MAX" say exactly; an operand
 * above MAX compares like MAX itself.
 */
function numericCompare(result: KvCompareResult, operand: number): { result: KvCompareResult; number: number } {
  if (operand >= 0) return { result, number: Math.min(operand, Number.MAX_SAFE_INTEGER) };
  const alwaysTrue = result === KvCompareResult.NotEqual || result === KvCompareResult.Greater;
  return { result: alwaysTrue ? KvCompareResult.NotEqual : KvCompareResult.Equal, number: Number.MAX_SAFE_INTEGER };
}

/**
 * The wire operand is the oneof member that matches the target; like etcd's
 * generated getters, an unset member reads as its zero value.
 */
export function toKvCompare(compare: Compare): KvCompare {
  const result = COMPARE_RESULTS.get(compare.result);
  const target = COMPARE_TARGETS.get(compare.target);
  if (result === undefined) throw new UnrepresentableRequestError(`unknown compare result ${compare.result}`);
  if (target === undefined) throw new UnrepresentableRequestError(`unknown compare target ${compare.target}`);
  const base = { key: compare.key, rangeEnd: compare.rangeEnd, target, value: new Uint8Array(0), lease: 0n };
  switch (target) {
    case KvCompareTarget.Value: return { ...base, result, number: 0, value: compare.value ?? new Uint8Array(0) };
    case KvCompareTarget.Lease: return { ...base, result, number: 0, lease: compare.lease ?? 0n };
    case KvCompareTarget.Version: return { ...base, ...numericCompare(result, compare.version ?? 0) };
    case KvCompareTarget.Create: return { ...base, ...numericCompare(result, compare.createRevision ?? 0) };
    case KvCompareTarget.Mod: return { ...base, ...numericCompare(result, compare.modRevision ?? 0) };
  }
}

function toKvRequestOp(op: RequestOp, depth: number): KvRequestOp {
  if ("requestRange" in op) return { type: "range", request: toKvRangeRequest(op.requestRange) };
  if ("requestPut" in op) return { type: "put", request: toKvPutRequest(op.requestPut) };
  if ("requestDeleteRange" in op) return { type: "deleteRange", request: toKvDeleteRangeRequest(op.requestDeleteRange) };
  return { type: "txn", request: toKvTxnRequestAt(op.requestTxn, depth + 1) };
}

function toKvTxnRequestAt(request: TxnRequest, depth: number): KvTxnRequest {
  // The kv codec refuses deeper nesting when applying; refusing here keeps such a request out of the log.
  if (depth > TXN_NESTING_MAX) throw new UnrepresentableRequestError(`txn nested deeper than ${TXN_NESTING_MAX} levels`);
  return {
    compare: request.compare.map(toKvCompare),
    success: request.success.map((op) => toKvRequestOp(op, depth)),
    failure: request.failure.map((op) => toKvRequestOp(op, depth)),
  };
}

export function toKvTxnRequest(request: TxnRequest): KvTxnRequest {
  return toKvTxnRequestAt(request, 1);
}

/** A negative revision is below every compact revision: 0 gets the same "compacted" answer from the state machine. */
export function toKvCompactRequest(request: CompactionRequest): KvCompactRequest {
  return { revision: atLeastZero(request.revision), physical: request.physical };
}

export function putCommand(request: PutRequest): KvCommand {
  return { type: "put", request: toKvPutRequest(request) };
}
export function deleteRangeCommand(request: DeleteRangeRequest): KvCommand {
  return { type: "deleteRange", request: toKvDeleteRangeRequest(request) };
}
export function txnCommand(request: TxnRequest): KvCommand {
  return { type: "txn", request: toKvTxnRequest(request) };
}
export function compactCommand(request: CompactionRequest): KvCommand {
  return { type: "compact", request: toKvCompactRequest(request) };
}

// ------------------------------------------------------------------ responses

export function toWireKeyValue(kv: KvKeyValue): KeyValue {
  return {
    key: kv.key, value: kv.value, createRevision: kv.createRevision, modRevision: kv.modRevision, version: kv.version, lease: kv.lease,
  };
}

/**
 * etcd fills cluster id, member id and raft term only in the outermost
 * header; responses nested in a Txn carry the revision alone.
 */
export function nestedHeader(revision: number): ResponseHeader {
  return { clusterId: 0n, memberId: 0n, revision, raftTerm: 0 };
}

export function toWireRangeResponse(response: Pick<KvRangeResponse, "kvs" | "more" | "count">, header: ResponseHeader): RangeResponse {
  return { header, kvs: response.kvs.map(toWireKeyValue), more: response.more, count: response.count };
}

export function toWirePutResponse(response: KvPutResponse, header: ResponseHeader): PutResponse {
  return { header, prevKv: response.prevKv === null ? undefined : toWireKeyValue(response.prevKv) };
}

export function toWireDeleteRangeResponse(response: KvDeleteRangeResponse, header: ResponseHeader): DeleteRangeResponse {
  return { header, deleted: response.deleted, prevKvs: response.prevKvs.map(toWireKeyValue) };
}

function toWireResponseOp(op: KvResponseOp): ResponseOp {
  const header = nestedHeader(op.response.revision);
  switch (op.type) {
    case "range": return { responseRange: toWireRangeResponse(op.response, header) };
    case "put": return { responsePut: toWirePutResponse(op.response, header) };
    case "deleteRange": return { responseDeleteRange: toWireDeleteRangeResponse(op.response, header) };
    case "txn": return { responseTxn: toWireTxnResponse(op.response, header) };
  }
}

export function toWireTxnResponse(response: KvTxnResponse, header: ResponseHeader): TxnResponse {
  return { header, succeeded: response.succeeded, responses: response.responses.map(toWireResponseOp) };
}

// ------------------------------------------------------------------ errors

/** MVCC errors with an etcd twin. Other KvErrors keep their own code and text (see kvErrorToGrpc). */
const KV_ERROR_KINDS: ReadonlyArray<[new (...args: never[]) => KvError, EtcdErrorKind]> = [
  [CompactedError, "compacted"],
  [FutureRevisionError, "futureRevision"],
  [LeaseNotFoundError, "leaseNotFound"],
  [LeaseExistsError, "leaseExists"],
  [LeaseTtlTooLargeError, "leaseTtlTooLarge"],
  [KeyNotFoundError, "keyNotFound"],
  [TooManyOperationsError, "tooManyOps"],
  [DuplicateKeyError, "duplicateKey"],
  [EmptyKeyError, "emptyKey"],
  [ValueProvidedError, "valueProvided"],
  [LeaseProvidedError, "leaseProvided"],
];

const KV_GRPC_CODES: Record<KvError["grpcCode"], GrpcStatusCode> = {
  InvalidArgument: GrpcStatus.invalidArgument,
  OutOfRange: GrpcStatus.outOfRange,
  NotFound: GrpcStatus.notFound,
  FailedPrecondition: GrpcStatus.failedPrecondition,
  ResourceExhausted: GrpcStatus.resourceExhausted,
};

/**
 * An MVCC error as the client sees it: etcd's error where etcd has one;
 * otherwise (a key too long for the index, a stale streamed read, a
 * malformed command) the kv layer's own code and text, which it writes for
 * the wire.
 */
export function kvErrorToGrpc(error: KvError): GrpcError {
  for (const [type, kind] of KV_ERROR_KINDS) {
    if (error instanceof type) return EtcdError.of(kind, error);
  }
  return new GrpcError(KV_GRPC_CODES[error.grpcCode], error.grpcMessage, { cause: error });
}

/**
 * Why the runtime refused a proposal or a read (raft's RejectReason values,
 * carried by ProposalRefusedError.reason), and what etcd says in that case.
 *
 * - leadership-transfer-in-progress, leader-has-not-committed-in-its-term:
 *   etcd's raft drops the proposal and etcd answers UNKNOWN "raft proposal
 *   dropped", which no client retries; "etcdserver: leader changed"
 *   (UNAVAILABLE) is etcd's own error for a request that lost its leader, and
 *   says the truth: nothing was applied, try again once the new leader is up.
 * - node-removed: a removed etcd member stops, so "server stopped".
 * - too-many-uncommitted-entries, too-many-pending-reads: etcd's backpressure
 *   error, "etcdserver: too many requests".
 */
const REFUSAL_KINDS: Readonly<Record<string, EtcdErrorKind>> = {
  "no-leader": "noLeader",
  "not-leader": "notLeader",
  "leadership-transfer-in-progress": "leaderChanged",
  "leader-has-not-committed-in-its-term": "leaderChanged",
  "entry-too-large": "requestTooLarge",
  "node-removed": "stopped",
  "too-many-uncommitted-entries": "tooManyRequests",
  "too-many-pending-reads": "tooManyRequests",
};

/** Membership refusals raft itself makes (the backend's own member errors come first). */
const MEMBERSHIP_REFUSALS: Readonly<Record<string, string>> = {
  "conf-change-pending": "cairn: another membership change is still being applied; retry once it is done",
  "invalid-conf-change": "cairn: the membership change is not valid for the current configuration",
};

/** Runtime and backend errors by `name` (see backend.ts for the member errors' classes). */
const NAMED_KINDS: Readonly<Record<string, EtcdErrorKind>> = {
  NoLeaderError: "noLeader",
  RequestTimeoutError: "timeout",
  StoppedError: "stopped",
  MemberNotFoundError: "memberNotFound",
  MemberExistsError: "memberExists",
  PeerUrlExistsError: "peerUrlExists",
  MemberNotLearnerError: "memberNotLearner",
  LearnerNotReadyError: "learnerNotReady",
  TooManyLearnersError: "tooManyLearners",
  NotEnoughStartedMembersError: "memberNotEnoughStarted",
  BadMemberUrlsError: "memberBadUrls",
  BadLeaderTransfereeError: "badLeaderTransferee",
};

function refusalToGrpc(error: Error & { reason?: unknown }): GrpcError {
  const reason = String(error.reason);
  const kind = REFUSAL_KINDS[reason];
  if (kind !== undefined) return EtcdError.of(kind, error);
  const membership = MEMBERSHIP_REFUSALS[reason];
  if (membership !== undefined) return new GrpcError(GrpcStatus.failedPrecondition, membership, { cause: error });
  return new GrpcError(GrpcStatus.unknown, error.message, { cause: error });
}

/**
 * The error a service throws for `error`: a GrpcError (EtcdError where etcd
 * has the failure) for everything recognised; anything else is returned as
 * it is, so the gRPC server answers UNKNOWN with its message (as etcd does)
 * and logs it as unexpected.
 *
 * `signal` is the call's: once the client's deadline passed or it cancelled,
 * whatever the backend threw in consequence is reported as that.
 */
export function toApiError(error: unknown, signal?: AbortSignal): unknown {
  if (signal?.aborted && signal.reason instanceof GrpcError) return signal.reason;
  if (error instanceof GrpcError) return error;
  if (error instanceof KvError) return kvErrorToGrpc(error);
  if (!(error instanceof Error)) return error;
  if (error.name === "ProposalRefusedError") return refusalToGrpc(error);
  if (error.name === "NotLeaderError") {
    // The runtime says NotLeader with leader 0 when it knows of no leader at all.
    const leader = (error as Error & { leader?: unknown }).leader;
    return EtcdError.of(leader === 0n ? "noLeader" : "notLeader", error);
  }
  const kind = NAMED_KINDS[error.name];
  if (kind !== undefined) return EtcdError.of(kind, error);
  return error;
}

/** Asserts the applied outcome has the expected type; a mismatch means the runtime answered another proposal. */
export function expectType<T extends { type: string }, K extends T["type"]>(value: T, type: K): Extract<T, { type: K }> {
  assert(value.type === type, () => `expected a ${type} outcome, got ${value.type}`);
  return value as Extract<T, { type: K }>;
}
