/**
 * Request checks etcd makes before a request reaches Raft (v3rpc's
 * checkPutRequest, checkTxnRequest, checkIntervals). The API layer calls
 * validateCommand before proposing; the state machine calls it again when
 * applying, so a command that slipped through fails the same way on every
 * replica instead of half-applying.
 */
import { limits } from "../lib/limits.js";
import type { KvCommand, RequestOp, TxnRequest } from "./command.js";
import { compareBytes, escapeKey, KEY_INDEX_SUFFIX_BYTES } from "./encoding.js";
import {
  DuplicateKeyError, EmptyKeyError, KeyTooLongError, LeaseNotFoundError, LeaseProvidedError, LeaseTtlTooLargeError,
  TooManyOperationsError, ValueProvidedError,
} from "./errors.js";
import { LEASE_TTL_SECONDS_MAX } from "./lease.js";

/**
 * Longest encoded key-index key (escaped user key + 18 bytes) the store takes:
 * LMDB's default maximum key size is 1978 bytes. Needs a home in lib/limits.ts.
 */
export const KEY_INDEX_KEY_BYTES_MAX = 1978;

export interface ValidateOptions {
  /** etcd's --max-txn-ops. */
  readonly txnOpsMax?: number;
}

export function validateCommand(command: KvCommand, options: ValidateOptions = {}): void {
  const txnOpsMax = options.txnOpsMax ?? limits.txnOpsMax;
  switch (command.type) {
    case "put": checkPut(command.request.key, command.request.value, command.request.lease, command.request.ignoreValue, command.request.ignoreLease); break;
    case "deleteRange": checkKey(command.request.key); break;
    case "txn":
      checkTxn(command.request, txnOpsMax);
      checkIntervals(command.request.success);
      checkIntervals(command.request.failure);
      break;
    case "compact": break;
    case "leaseGrant":
      // etcd's lessor refuses id 0 (it means "no lease") as not found.
      if (command.request.id === 0n) throw new LeaseNotFoundError(0n);
      if (command.request.ttlSeconds > LEASE_TTL_SECONDS_MAX) throw new LeaseTtlTooLargeError(command.request.ttlSeconds);
      break;
    case "leaseRevoke":
    case "leaseRenew":
    case "leaseCheckpoint":
      break;
  }
}

export function checkKey(key: Uint8Array): void {
  if (key.length === 0) throw new EmptyKeyError();
}

export function checkWritableKey(key: Uint8Array): void {
  checkKey(key);
  const encoded = escapeKey(key).length + KEY_INDEX_SUFFIX_BYTES;
  if (encoded > KEY_INDEX_KEY_BYTES_MAX) throw new KeyTooLongError(encoded, KEY_INDEX_KEY_BYTES_MAX);
}

function checkPut(key: Uint8Array, value: Uint8Array, lease: bigint, ignoreValue: boolean, ignoreLease: boolean): void {
  checkWritableKey(key);
  if (ignoreValue && value.length !== 0) throw new ValueProvidedError();
  if (ignoreLease && lease !== 0n) throw new LeaseProvidedError();
}

function checkTxn(request: TxnRequest, txnOpsMax: number): void {
  if (request.compare.length > txnOpsMax || request.success.length > txnOpsMax || request.failure.length > txnOpsMax) {
    throw new TooManyOperationsError();
  }
  for (const item of request.compare) checkKey(item.key);
  for (const op of request.success) checkOp(op, txnOpsMax);
  for (const op of request.failure) checkOp(op, txnOpsMax);
}

function checkOp(op: RequestOp, txnOpsMax: number): void {
  switch (op.type) {
    case "range": checkKey(op.request.key); break;
    case "put": checkPut(op.request.key, op.request.value, op.request.lease, op.request.ignoreValue, op.request.ignoreLease); break;
    case "deleteRange": checkKey(op.request.key); break;
    case "txn": checkTxn(op.request, txnOpsMax); break;
  }
}

/** A deleted interval: [start, end), a single key when end is null, or everything from start when open. */
interface Interval {
  readonly start: Uint8Array;
  readonly end: Uint8Array | null;
  readonly open: boolean;
}

function contains(interval: Interval, key: Uint8Array): boolean {
  if (interval.end === null && !interval.open) return compareBytes(interval.start, key) === 0;
  if (compareBytes(key, interval.start) < 0) return false;
  return interval.open || compareBytes(key, interval.end as Uint8Array) < 0;
}

function keyString(key: Uint8Array): string {
  let text = "";
  for (const byte of key) text += String.fromCharCode(byte);
  return text;
}

/**
 * etcd's rule: within one txn branch (nested txns included), a key may be put
 * at most once and may not be put inside a range the branch deletes. The
 * success and failure branches of a nested txn exclude each other, so the
 * same key in both is fine.
 */
function checkIntervals(ops: readonly RequestOp[]): { puts: Map<string, Uint8Array>; deletes: Interval[] } {
  const deletes: Interval[] = [];
  for (const op of ops) {
    if (op.type !== "deleteRange") continue;
    const { key, rangeEnd } = op.request;
    if (rangeEnd.length === 0) deletes.push({ start: key, end: null, open: false });
    else if (rangeEnd.length === 1 && rangeEnd[0] === 0) deletes.push({ start: key, end: null, open: true });
    else deletes.push({ start: key, end: rangeEnd, open: false });
  }
  const deleted = (key: Uint8Array): boolean => deletes.some((interval) => contains(interval, key));
  const puts = new Map<string, Uint8Array>();
  for (const op of ops) {
    if (op.type !== "txn") continue;
    const then = checkIntervals(op.request.success);
    const otherwise = checkIntervals(op.request.failure);
    for (const [name, key] of then.puts) {
      if (puts.has(name) || deleted(key)) throw new DuplicateKeyError();
      puts.set(name, key);
    }
    for (const [name, key] of otherwise.puts) {
      if (puts.has(name) && !then.puts.has(name)) throw new DuplicateKeyError();
      if (deleted(key)) throw new DuplicateKeyError();
      puts.set(name, key);
    }
    deletes.push(...then.deletes, ...otherwise.deletes);
  }
  for (const op of ops) {
    if (op.type !== "put") continue;
    const name = keyString(op.request.key);
    if (puts.has(name) || deleted(op.request.key)) throw new DuplicateKeyError();
    puts.set(name, op.request.key);
  }
  return { puts, deletes };
}
