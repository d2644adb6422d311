/**
 * etcd's KV service for callers: get (Range with every option), put,
 * delete, txn (a builder, or a raw TxnRequest), compact. Keys and values are
 * bytes; strings are taken as UTF-8.
 *
 * Routing and retries (dispatcher.ts, retry-policy.ts): serializable reads go
 * to any endpoint, linearizable reads and every write to the leader; reads
 * may be retried elsewhere, writes only when they certainly did not take
 * effect. A Txn whose branches only read counts as a read.
 */
import {
  CompareResult, CompareTarget, SortOrder, SortTarget, type Compare, type CompactionResponse, type DeleteRangeRequest,
  type DeleteRangeResponse, type PutRequest, type PutResponse, type RangeRequest, type RangeResponse, type RequestOp,
  type TxnRequest, type TxnResponse,
} from "../api/mod.js";
import type { DispatchOptions, Dispatcher } from "./dispatcher.js";
import { InvalidRequestError } from "./errors.js";
import { kvMethods } from "./methods.js";

export type Bytes = string | Uint8Array;

const EMPTY = new Uint8Array(0);
/** etcd's range_end for "every key from `key` on". */
const FROM_KEY_END = Uint8Array.of(0);

export function toBytes(value: Bytes): Uint8Array {
  return typeof value === "string" ? new TextEncoder().encode(value) : value;
}

/**
 * The range_end that selects every key starting with `prefix`: the prefix
 * with its last byte below 0xff incremented and what follows dropped; a
 * prefix of only 0xff bytes (or an empty one) has no end, so it is "\0":
 * every key from the prefix on (etcd's clientv3.GetPrefixRangeEnd).
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  for (let index = prefix.length - 1; index >= 0; index--) {
    if (prefix[index] < 0xff) {
      // A copy: Buffer's slice() is a view, and the caller's prefix must not change.
      const end = new Uint8Array(index + 1);
      end.set(prefix.subarray(0, index + 1));
      end[index]++;
      return end;
    }
  }
  return FROM_KEY_END;
}

/** How a key argument widens into a range; at most one of these. */
export interface KeyRangeOptions {
  /** Every key starting with the key. */
  readonly prefix?: boolean;
  /** Every key from the key up to (not including) this one. */
  readonly rangeEnd?: Bytes;
  /** Every key from the key on. */
  readonly fromKey?: boolean;
}

export type SortOrderName = keyof typeof SortOrder;
export type SortTargetName = keyof typeof SortTarget;

export interface GetOptions extends KeyRangeOptions {
  /** Most keys to return; 0 for no limit. */
  readonly limit?: number;
  /** Read at this revision; 0 for the current one. */
  readonly revision?: number;
  readonly sortOrder?: SortOrderName;
  readonly sortTarget?: SortTargetName;
  /** Answer from any member's local state, which may lag the leader (etcd's --consistency=s). */
  readonly serializable?: boolean;
  readonly keysOnly?: boolean;
  readonly countOnly?: boolean;
  readonly minModRevision?: number;
  readonly maxModRevision?: number;
  readonly minCreateRevision?: number;
  readonly maxCreateRevision?: number;
}

export interface PutOptions {
  /** Attach the key to this lease (0n: none). */
  readonly lease?: bigint;
  /** Return the key-value before the put. */
  readonly prevKv?: boolean;
  /** Keep the current value (the key must exist). */
  readonly ignoreValue?: boolean;
  /** Keep the current lease (the key must exist). */
  readonly ignoreLease?: boolean;
}

export interface DeleteOptions extends KeyRangeOptions {
  /** Return the deleted key-values. */
  readonly prevKv?: boolean;
}

function checkCount(name: string, value: number | undefined): number {
  if (value === undefined) return 0;
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidRequestError(`${name} must be a non-negative integer, got ${value}`);
  return value;
}

export function rangeEndOf(key: Uint8Array, options: KeyRangeOptions): Uint8Array {
  const chosen = [options.prefix === true, options.rangeEnd !== undefined, options.fromKey === true].filter(Boolean).length;
  if (chosen > 1) throw new InvalidRequestError("prefix, rangeEnd and fromKey exclude each other");
  if (options.prefix) return prefixEnd(key);
  if (options.fromKey) return FROM_KEY_END;
  if (options.rangeEnd !== undefined) return toBytes(options.rangeEnd);
  return EMPTY;
}

/** A RangeRequest from a key and options, checked. */
export function rangeRequest(key: Bytes, options: GetOptions = {}): RangeRequest {
  const keyBytes = toBytes(key);
  const sortOrder = options.sortOrder ?? "none";
  const sortTarget = options.sortTarget ?? "key";
  if (!(sortOrder in SortOrder)) throw new InvalidRequestError(`unknown sort order ${JSON.stringify(sortOrder)}`);
  if (!(sortTarget in SortTarget)) throw new InvalidRequestError(`unknown sort target ${JSON.stringify(sortTarget)}`);
  return {
    key: keyBytes,
    rangeEnd: rangeEndOf(keyBytes, options),
    limit: checkCount("limit", options.limit),
    revision: checkCount("revision", options.revision),
    sortOrder: SortOrder[sortOrder],
    sortTarget: SortTarget[sortTarget],
    serializable: options.serializable ?? false,
    keysOnly: options.keysOnly ?? false,
    countOnly: options.countOnly ?? false,
    minModRevision: checkCount("minModRevision", options.minModRevision),
    maxModRevision: checkCount("maxModRevision", options.maxModRevision),
    minCreateRevision: checkCount("minCreateRevision", options.minCreateRevision),
    maxCreateRevision: checkCount("maxCreateRevision", options.maxCreateRevision),
  };
}

export function putRequest(key: Bytes, value: Bytes, options: PutOptions = {}): PutRequest {
  return {
    key: toBytes(key), value: toBytes(value), lease: options.lease ?? 0n, prevKv: options.prevKv ?? false,
    ignoreValue: options.ignoreValue ?? false, ignoreLease: options.ignoreLease ?? false,
  };
}

export function deleteRequest(key: Bytes, options: DeleteOptions = {}): DeleteRangeRequest {
  const keyBytes = toBytes(key);
  return { key: keyBytes, rangeEnd: rangeEndOf(keyBytes, options), prevKv: options.prevKv ?? false };
}

// ------------------------------------------------------------------ txn

export type CompareOperator = "=" | "!=" | ">" | "<";

const COMPARE_RESULTS: Record<CompareOperator, number> = {
  "=": CompareResult.equal, "!=": CompareResult.notEqual, ">": CompareResult.greater, "<": CompareResult.less,
};

function resultOf(operator: CompareOperator): number {
  const result = COMPARE_RESULTS[operator];
  if (result === undefined) throw new InvalidRequestError(`unknown compare operator ${JSON.stringify(operator)}`);
  return result;
}

function numberCompare(target: number, field: "version" | "createRevision" | "modRevision") {
  return (key: Bytes, operator: CompareOperator, value: number, options: KeyRangeOptions = {}): Compare => {
    if (!Number.isSafeInteger(value)) throw new InvalidRequestError(`${field} must be an integer, got ${value}`);
    const keyBytes = toBytes(key);
    return { result: resultOf(operator), target, key: keyBytes, rangeEnd: rangeEndOf(keyBytes, options), [field]: value };
  };
}

/** Txn guards: `compare.value("k", "=", "v")`, `compare.version("k", ">", 0)`, … */
export const compare = {
  value(key: Bytes, operator: CompareOperator, value: Bytes, options: KeyRangeOptions = {}): Compare {
    const keyBytes = toBytes(key);
    return { result: resultOf(operator), target: CompareTarget.value, key: keyBytes, rangeEnd: rangeEndOf(keyBytes, options), value: toBytes(value) };
  },
  version: numberCompare(CompareTarget.version, "version"),
  createRevision: numberCompare(CompareTarget.create, "createRevision"),
  modRevision: numberCompare(CompareTarget.mod, "modRevision"),
  lease(key: Bytes, operator: CompareOperator, lease: bigint, options: KeyRangeOptions = {}): Compare {
    const keyBytes = toBytes(key);
    return { result: resultOf(operator), target: CompareTarget.lease, key: keyBytes, rangeEnd: rangeEndOf(keyBytes, options), lease };
  },
};

/** Txn operations: `op.put("k", "v")`, `op.get("k", { prefix: true })`, `op.delete("k")`, `op.txn(request)`. */
export const op = {
  get: (key: Bytes, options: GetOptions = {}): RequestOp => ({ requestRange: rangeRequest(key, options) }),
  put: (key: Bytes, value: Bytes, options: PutOptions = {}): RequestOp => ({ requestPut: putRequest(key, value, options) }),
  delete: (key: Bytes, options: DeleteOptions = {}): RequestOp => ({ requestDeleteRange: deleteRequest(key, options) }),
  txn: (request: TxnRequest): RequestOp => ({ requestTxn: request }),
};

/** True when no branch of the txn, at any depth, writes: such a txn may be retried like a read. */
export function isReadOnlyTxn(request: TxnRequest): boolean {
  const readOnly = (ops: readonly RequestOp[]): boolean =>
    ops.every((item) => "requestRange" in item || ("requestTxn" in item && isReadOnlyTxn(item.requestTxn)));
  return readOnly(request.success) && readOnly(request.failure);
}

/**
 * Builds a Txn: `kv.transaction().compare(...).success(...).failure(...).commit()`.
 * (No `then` method: that would make the builder a thenable that `await` calls.)
 */
export class TxnBuilder {
  private readonly compares: Compare[] = [];
  private readonly onSuccess: RequestOp[] = [];
  private readonly onFailure: RequestOp[] = [];

  constructor(private readonly kv: KvClient) {}

  compare(...compares: Compare[]): this {
    this.compares.push(...compares);
    return this;
  }

  success(...ops: RequestOp[]): this {
    this.onSuccess.push(...ops);
    return this;
  }

  failure(...ops: RequestOp[]): this {
    this.onFailure.push(...ops);
    return this;
  }

  request(): TxnRequest {
    return { compare: [...this.compares], success: [...this.onSuccess], failure: [...this.onFailure] };
  }

  commit(options: DispatchOptions = {}): Promise<TxnResponse> {
    return this.kv.txn(this.request(), options);
  }
}

export class KvClient {
  constructor(private readonly dispatcher: Dispatcher) {}

  /** Range over one key, a prefix, or a key range, with every Range option. */
  async get(key: Bytes, options: GetOptions & DispatchOptions = {}): Promise<RangeResponse> {
    return this.range(rangeRequest(key, options), options);
  }

  /** A raw RangeRequest. */
  range(request: RangeRequest, options: DispatchOptions = {}): Promise<RangeResponse> {
    return this.dispatcher.unary(kvMethods.range, request, "read", request.serializable ? "any" : "leader", options);
  }

  async put(key: Bytes, value: Bytes, options: PutOptions & DispatchOptions = {}): Promise<PutResponse> {
    return this.dispatcher.unary(kvMethods.put, putRequest(key, value, options), "write", "leader", options);
  }

  async delete(key: Bytes, options: DeleteOptions & DispatchOptions = {}): Promise<DeleteRangeResponse> {
    return this.dispatcher.unary(kvMethods.deleteRange, deleteRequest(key, options), "write", "leader", options);
  }

  /** A raw TxnRequest. */
  txn(request: TxnRequest, options: DispatchOptions = {}): Promise<TxnResponse> {
    return this.dispatcher.unary(kvMethods.txn, request, isReadOnlyTxn(request) ? "read" : "write", "leader", options);
  }

  transaction(): TxnBuilder {
    return new TxnBuilder(this);
  }

  /** Compacts history below `revision`; `physical` waits until the history is gone from the store. */
  async compact(revision: number, options: { physical?: boolean } & DispatchOptions = {}): Promise<CompactionResponse> {
    if (!Number.isSafeInteger(revision) || revision <= 0) throw new InvalidRequestError(`a compaction revision must be a positive integer, got ${revision}`);
    return this.dispatcher.unary(kvMethods.compact, { revision, physical: options.physical ?? false }, "write", "leader", options);
  }
}
