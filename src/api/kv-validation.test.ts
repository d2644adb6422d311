import { describe, it, expect } from "vitest";
import { checkPutRequest, checkRangeRequest, checkTxnRequest } from "./kv-validation.js";
import { EtcdError, etcdErrorKindOf, etcdErrorTable } from "./etcd-errors.js";
import { emptyRangeRequest } from "./protobuf/etcd-codecs.js";
import { GrpcStatus } from "./grpc/status.js";
import type { RequestOp, TxnRequest } from "./protobuf/messages.js";

const key = (text: string): Buffer => Buffer.from(text);
const put = (text: string): RequestOp => ({ requestPut: { key: key(text), value: key("v"), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } });
const del = (from: string, to = ""): RequestOp => ({ requestDeleteRange: { key: key(from), rangeEnd: key(to), prevKv: false } });
const get = (text: string): RequestOp => ({ requestRange: { ...emptyRangeRequest(), key: key(text) } });
const txn = (success: RequestOp[], failure: RequestOp[] = []): TxnRequest => ({ compare: [], success, failure });

function kindOf(run: () => void): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    if (error instanceof EtcdError) return error.kind;
    throw error;
  }
}

describe("KV request checks", () => {
  it("refuse an empty key, a value with ignore_value and a lease with ignore_lease", () => {
    expect(kindOf(() => checkRangeRequest(emptyRangeRequest()))).toBe("emptyKey");
    const base = { key: key("k"), value: new Uint8Array(0), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false };
    expect(kindOf(() => checkPutRequest({ ...base, key: new Uint8Array(0) }))).toBe("emptyKey");
    expect(kindOf(() => checkPutRequest({ ...base, ignoreValue: true, value: key("x") }))).toBe("valueProvided");
    expect(kindOf(() => checkPutRequest({ ...base, ignoreLease: true, lease: 5n }))).toBe("leaseProvided");
    expect(kindOf(() => checkPutRequest({ ...base, ignoreValue: true, ignoreLease: true }))).toBeUndefined();
  });

  it("refuse an unknown sort order or target", () => {
    expect(kindOf(() => checkRangeRequest({ ...emptyRangeRequest(), key: key("k"), sortOrder: 3 }))).toBe("invalidSortOption");
    expect(kindOf(() => checkRangeRequest({ ...emptyRangeRequest(), key: key("k"), sortTarget: 5 }))).toBe("invalidSortOption");
  });

  it("count operations per list against the Txn limit, nested Txns included", () => {
    expect(kindOf(() => checkTxnRequest(txn([put("a"), put("b"), put("c")]), 2))).toBe("tooManyOps");
    expect(kindOf(() => checkTxnRequest(txn([put("a"), put("b")], [put("c"), put("d")]), 2))).toBeUndefined();
    expect(kindOf(() => checkTxnRequest(txn([{ requestTxn: txn([put("a"), put("b"), put("c")]) }]), 2))).toBe("tooManyOps");
  });

  it("refuse a branch that puts a key twice or puts a key it deletes", () => {
    expect(kindOf(() => checkTxnRequest(txn([put("a"), put("a")]), 128))).toBe("duplicateKey");
    expect(kindOf(() => checkTxnRequest(txn([del("a", "c"), put("b")]), 128))).toBe("duplicateKey");
    expect(kindOf(() => checkTxnRequest(txn([del("a", "\0"), put("zzz")]), 128))).toBe("duplicateKey");
    expect(kindOf(() => checkTxnRequest(txn([put("a")], [put("a")]), 128))).toBeUndefined();
    expect(kindOf(() => checkTxnRequest(txn([del("a", "c"), put("c"), get("b"), get("b")]), 128))).toBeUndefined();
  });

  it("allow a nested Txn's two branches to write the same key, but not the outer branch too", () => {
    const nested: RequestOp = { requestTxn: txn([put("k")], [put("k")]) };
    expect(kindOf(() => checkTxnRequest(txn([nested]), 128))).toBeUndefined();
    expect(kindOf(() => checkTxnRequest(txn([nested, put("k")]), 128))).toBe("duplicateKey");
    expect(kindOf(() => checkTxnRequest(txn([{ requestTxn: txn([del("j", "l")]) }, put("k")]), 128))).toBe("duplicateKey");
  });
});

describe("etcd's error table", () => {
  it("carries etcd's codes and exact messages", () => {
    expect(etcdErrorTable.compacted).toEqual({ code: GrpcStatus.outOfRange, message: "etcdserver: mvcc: required revision has been compacted" });
    expect(etcdErrorTable.futureRevision.code).toBe(GrpcStatus.outOfRange);
    expect(etcdErrorTable.tooManyOps).toEqual({ code: GrpcStatus.invalidArgument, message: "etcdserver: too many operations in txn request" });
    expect(etcdErrorTable.requestTooLarge).toEqual({ code: GrpcStatus.invalidArgument, message: "etcdserver: request is too large" });
    expect(etcdErrorTable.noLeader).toEqual({ code: GrpcStatus.unavailable, message: "etcdserver: no leader" });
    expect(etcdErrorTable.timeout).toEqual({ code: GrpcStatus.unavailable, message: "etcdserver: request timed out" });
    expect(etcdErrorTable.leaderChanged).toEqual({ code: GrpcStatus.unavailable, message: "etcdserver: leader changed" });
    expect(etcdErrorTable.leaseNotFound).toEqual({ code: GrpcStatus.notFound, message: "etcdserver: requested lease not found" });
    expect(etcdErrorTable.memberNotFound).toEqual({ code: GrpcStatus.notFound, message: "etcdserver: member not found" });
    expect(etcdErrorTable.emptyKey).toEqual({ code: GrpcStatus.invalidArgument, message: "etcdserver: key is not provided" });
  });

  it("gives every error a distinct message that maps back to its kind", () => {
    const messages = Object.values(etcdErrorTable).map((entry) => entry.message);
    expect(new Set(messages).size).toBe(messages.length);
    for (const [kind, entry] of Object.entries(etcdErrorTable)) {
      expect(entry.message.startsWith("etcdserver: ")).toBe(true);
      expect(etcdErrorKindOf(entry.message)).toBe(kind);
    }
    expect(etcdErrorKindOf("something else")).toBeUndefined();
  });

  it("builds errors with name, code, message and cause", () => {
    const cause = new Error("store said no");
    const error = EtcdError.of("noSpace", cause);
    expect(error.name).toBe("EtcdError");
    expect(error.code).toBe(GrpcStatus.resourceExhausted);
    expect(error.message).toBe("etcdserver: mvcc: database space exceeded");
    expect(error.cause).toBe(cause);
  });
});
