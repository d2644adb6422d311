/**
 * The request checks etcd's gRPC layer makes before a KV request reaches the
 * server (etcd's v3rpc key.go): empty keys, ignore_value/ignore_lease misuse,
 * unknown sort options, too many operations in a Txn, and a key written twice
 * by one Txn branch. Same order, same errors, so clients see what etcd says.
 */
import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from "./protobuf/messages.js";
import { EtcdError } from "./etcd-errors.js";

const SORT_ORDER_COUNT = 3;
const SORT_TARGET_COUNT = 5;

export function checkRangeRequest(request: RangeRequest): void {
  if (request.key.length === 0) throw new EtcdError("emptyKey");
  if (request.sortOrder < 0 || request.sortOrder >= SORT_ORDER_COUNT) throw new EtcdError("invalidSortOption");
  if (request.sortTarget < 0 || request.sortTarget >= SORT_TARGET_COUNT) throw new EtcdError("invalidSortOption");
}

export function checkPutRequest(request: PutRequest): void {
  if (request.key.length === 0) throw new EtcdError("emptyKey");
  if (request.ignoreValue && request.value.length !== 0) throw new EtcdError("valueProvided");
  if (request.ignoreLease && request.lease !== 0n) throw new EtcdError("leaseProvided");
}

export function checkDeleteRangeRequest(request: DeleteRangeRequest): void {
  if (request.key.length === 0) throw new EtcdError("emptyKey");
}

export function checkTxnRequest(request: TxnRequest, txnOpsMax: number): void {
  checkTxnShape(request, txnOpsMax);
  checkIntervals(request.success);
  checkIntervals(request.failure);
}

function checkTxnShape(request: TxnRequest, txnOpsMax: number): void {
  if (request.compare.length > txnOpsMax || request.success.length > txnOpsMax || request.failure.length > txnOpsMax) {
    throw new EtcdError("tooManyOps");
  }
  for (const compare of request.compare) {
    if (compare.key.length === 0) throw new EtcdError("emptyKey");
  }
  for (const op of request.success) checkRequestOp(op, txnOpsMax);
  for (const op of request.failure) checkRequestOp(op, txnOpsMax);
}

function checkRequestOp(op: RequestOp, txnOpsMax: number): void {
  if ("requestRange" in op) checkRangeRequest(op.requestRange);
  else if ("requestPut" in op) checkPutRequest(op.requestPut);
  else if ("requestDeleteRange" in op) checkDeleteRangeRequest(op.requestDeleteRange);
  else checkTxnShape(op.requestTxn, txnOpsMax);
}

/** A deleted key range [start, end); end undefined means "to the end of the keyspace". */
interface DeletedRange {
  start: Buffer;
  end: Buffer | undefined;
}

function deletedRange(request: DeleteRangeRequest): DeletedRange {
  const start = Buffer.from(request.key);
  if (request.rangeEnd.length === 0) return { start, end: Buffer.concat([start, Buffer.of(0)]) };
  if (request.rangeEnd.length === 1 && request.rangeEnd[0] === 0) return { start, end: undefined };
  return { start, end: Buffer.from(request.rangeEnd) };
}

function deletes(ranges: readonly DeletedRange[], key: string): boolean {
  const point = Buffer.from(key, "latin1");
  return ranges.some((range) => Buffer.compare(range.start, point) <= 0 && (range.end === undefined || Buffer.compare(point, range.end) < 0));
}

const duplicateKey = (): EtcdError => new EtcdError("duplicateKey");

/**
 * One branch may not put a key twice, nor put a key it also deletes; nested
 * Txns count, except that a nested Txn's success and failure branches may
 * touch the same key (only one of them runs). Keys are latin1 strings: one
 * char per byte, so string order is byte order.
 */
function checkIntervals(ops: readonly RequestOp[]): { puts: Set<string>; deleted: DeletedRange[] } {
  const deleted: DeletedRange[] = [];
  for (const op of ops) if ("requestDeleteRange" in op) deleted.push(deletedRange(op.requestDeleteRange));
  const puts = new Set<string>();
  for (const op of ops) {
    if (!("requestTxn" in op)) continue;
    const then = checkIntervals(op.requestTxn.success);
    const otherwise = checkIntervals(op.requestTxn.failure);
    for (const key of then.puts) {
      if (puts.has(key) || deletes(deleted, key)) throw duplicateKey();
      puts.add(key);
    }
    for (const key of otherwise.puts) {
      if (puts.has(key) && !then.puts.has(key)) throw duplicateKey();
      if (deletes(deleted, key)) throw duplicateKey();
      puts.add(key);
    }
    deleted.push(...then.deleted, ...otherwise.deleted);
  }
  for (const op of ops) {
    if (!("requestPut" in op)) continue;
    const key = Buffer.from(op.requestPut.key).toString("latin1");
    if (puts.has(key) || deletes(deleted, key)) throw duplicateKey();
    puts.add(key);
  }
  return { puts, deleted };
}
