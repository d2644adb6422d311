/**
 * The MVCC behaviour every KvStore implementation must give, as one vitest
 * suite: the memory store's and the LMDB store's test files both run it.
 * Expected values follow etcd 3.5 (revisions start at 1, a txn is one
 * revision, version restarts after a delete, count ignores limit and filters).
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  compare, CompareResult, CompareTarget, deleteRangeRequest, encodeCommand, putRequest, rangeRequest, SortOrder,
  SortTarget, type KvCommand, type RangeRequest, type RequestOp,
} from "../command.js";
import { CommandDecodeError, EmptyKeyError, KeyTooLongError, CompactedError, DuplicateKeyError, FutureRevisionError, KeyNotFoundError, LeaseNotFoundError, TooManyOperationsError } from "../errors.js";
import { Mvcc, type MvccOptions } from "../mvcc.js";
import type { KvStore } from "../store.js";
import type { AppliedEntry, KeyValue, KvResponse } from "../types.js";

export interface StoreFactory {
  /** A fresh, empty store. */
  create(): KvStore;
  /** Releases everything create() made (called after each test). */
  dispose(): void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
export const bytes = (text: string): Uint8Array => encoder.encode(text);
export const text = (value: Uint8Array): string => decoder.decode(value);
const ALL = new Uint8Array([0]);

export function applyCommand(mvcc: Mvcc, command: KvCommand): AppliedEntry {
  const index = mvcc.appliedIndex() + 1;
  const [applied] = mvcc.applyEntries([{ term: 1, index, type: 0, data: encodeCommand(command) }]);
  return applied;
}

export function ok(applied: AppliedEntry): KvResponse {
  if (applied.outcome === null || !applied.outcome.ok) throw new Error(`expected success, got ${applied.outcome?.ok === false ? applied.outcome.error.message : "no outcome"}`);
  return applied.outcome.response;
}

export function failure(applied: AppliedEntry): Error {
  if (applied.outcome === null || applied.outcome.ok) throw new Error("expected an error");
  return applied.outcome.error;
}

export const grant = (mvcc: Mvcc, id: bigint, ttlSeconds = 60): AppliedEntry =>
  applyCommand(mvcc, { type: "leaseGrant", request: { id, ttlSeconds } });
export const put = (mvcc: Mvcc, key: string, value: string, fields = {}): AppliedEntry =>
  applyCommand(mvcc, { type: "put", request: putRequest(bytes(key), bytes(value), fields) });
const del = (mvcc: Mvcc, key: string, rangeEnd = "", prevKv = false): AppliedEntry =>
  applyCommand(mvcc, { type: "deleteRange", request: deleteRangeRequest(bytes(key), { rangeEnd: bytes(rangeEnd), prevKv }) });
const compact = (mvcc: Mvcc, revision: number): AppliedEntry => applyCommand(mvcc, { type: "compact", request: { revision, physical: false } });
const txn = (mvcc: Mvcc, compares: ReturnType<typeof compare>[], success: RequestOp[], failureOps: RequestOp[] = []): AppliedEntry =>
  applyCommand(mvcc, { type: "txn", request: { compare: compares, success, failure: failureOps } });
const putOp = (key: string, value: string): RequestOp => ({ type: "put", request: putRequest(bytes(key), bytes(value)) });
const rangeOp = (key: string, fields: Partial<RangeRequest> = {}): RequestOp => ({ type: "range", request: rangeRequest(bytes(key), fields) });
const delOp = (key: string, rangeEnd = ""): RequestOp => ({ type: "deleteRange", request: deleteRangeRequest(bytes(key), { rangeEnd: bytes(rangeEnd) }) });

const keysOf = (kvs: readonly KeyValue[]): string[] => kvs.map((kv) => text(kv.key));
const brief = (kv: KeyValue | null) => kv === null ? null : { key: text(kv.key), value: text(kv.value), create: kv.createRevision, mod: kv.modRevision, version: kv.version, lease: kv.lease };

function get(mvcc: Mvcc, key: string, revision = 0) {
  const response = mvcc.range(rangeRequest(bytes(key), { revision }));
  return response.kvs.length === 0 ? null : brief(response.kvs[0]);
}

export function defineMvccConformance(name: string, factory: StoreFactory): void {
  describe(`MVCC on the ${name} store`, () => {
    const open = (options: MvccOptions = {}): Mvcc => new Mvcc(factory.create(), options);
    const withMvcc = (test: (mvcc: Mvcc) => void, options: MvccOptions = {}) => () => {
      try {
        test(open(options));
      } finally {
        factory.dispose();
      }
    };

    it("starts an empty store at revision 1 so the first put is revision 2", withMvcc((mvcc) => {
      expect(mvcc.currentRevision()).toBe(1);
      expect(mvcc.range(rangeRequest(bytes("a"))).revision).toBe(1);
      const applied = put(mvcc, "a", "1");
      expect(ok(applied)).toEqual({ type: "put", response: { revision: 2, prevKv: null } });
      expect(applied.revision).toBe(2);
      expect(get(mvcc, "a")).toEqual({ key: "a", value: "1", create: 2, mod: 2, version: 1, lease: 0n });
    }));

    it("counts versions per generation and restarts them after a delete", withMvcc((mvcc) => {
      put(mvcc, "k", "v1");
      put(mvcc, "k", "v2");
      expect(get(mvcc, "k")).toMatchObject({ create: 2, mod: 3, version: 2 });
      del(mvcc, "k");
      expect(get(mvcc, "k")).toBeNull();
      put(mvcc, "k", "v3");
      expect(get(mvcc, "k")).toMatchObject({ value: "v3", create: 5, mod: 5, version: 1 });
      expect(get(mvcc, "k", 3)).toMatchObject({ value: "v2", create: 2, mod: 3, version: 2 });
      expect(get(mvcc, "k", 4)).toBeNull();
    }));

    it("returns the previous key value on put and delete only when asked", withMvcc((mvcc) => {
      put(mvcc, "k", "old");
      expect(ok(put(mvcc, "k", "new"))).toMatchObject({ response: { prevKv: null } });
      const withPrevious = ok(put(mvcc, "k", "newer", { prevKv: true }));
      expect(withPrevious.type === "put" && brief(withPrevious.response.prevKv)).toMatchObject({ value: "new", mod: 3, version: 2 });
      const deleted = ok(del(mvcc, "k", "", true));
      expect(deleted.type === "deleteRange" && deleted.response.prevKvs.map(brief)).toEqual([{ key: "k", value: "newer", create: 2, mod: 4, version: 3, lease: 0n }]);
    }));

    it("keeps value or lease with ignore_value and ignore_lease and refuses them on a missing key", withMvcc((mvcc) => {
      grant(mvcc, 7n);
      grant(mvcc, 9n);
      put(mvcc, "k", "value", { lease: 7n });
      put(mvcc, "k", "", { ignoreValue: true, lease: 9n });
      expect(get(mvcc, "k")).toMatchObject({ value: "value", lease: 9n, version: 2 });
      put(mvcc, "k", "changed", { ignoreLease: true });
      expect(get(mvcc, "k")).toMatchObject({ value: "changed", lease: 9n, version: 3 });
      const missing = put(mvcc, "absent", "", { ignoreValue: true });
      expect(failure(missing)).toBeInstanceOf(KeyNotFoundError);
      expect(failure(missing).message).toBe("etcdserver: key not found");
      expect(missing.revision).toBe(4);
      expect(mvcc.currentRevision()).toBe(4);
    }));

    it("refuses a put naming a lease that was never granted, also inside a txn", withMvcc((mvcc) => {
      grant(mvcc, 6n);
      const refused = put(mvcc, "k", "v", { lease: 5n });
      expect(failure(refused)).toBeInstanceOf(LeaseNotFoundError);
      expect(failure(refused).message).toBe("etcdserver: requested lease not found");
      expect(ok(put(mvcc, "k", "v", { lease: 6n })).type).toBe("put");
      expect(get(mvcc, "k")).toMatchObject({ lease: 6n });
      const inTxn = txn(mvcc, [], [putOp("a", "1"), { type: "put", request: putRequest(bytes("b"), bytes("2"), { lease: 5n }) }]);
      expect(failure(inTxn)).toBeInstanceOf(LeaseNotFoundError);
      expect(get(mvcc, "a")).toBeNull();
    }));

    it("refuses an empty key and a key too long to index, without a new revision", withMvcc((mvcc) => {
      const empty = put(mvcc, "", "v");
      expect(failure(empty)).toBeInstanceOf(EmptyKeyError);
      expect(failure(empty).message).toBe("etcdserver: key is not provided");
      expect(failure(put(mvcc, "k".repeat(1961), "v"))).toBeInstanceOf(KeyTooLongError);
      expect(failure(put(mvcc, "\u0000".repeat(981), "v"))).toBeInstanceOf(KeyTooLongError);
      expect(ok(put(mvcc, "k".repeat(1960), "v")).type).toBe("put");
      expect(get(mvcc, "k".repeat(1960))).toMatchObject({ mod: 2 });
      expect(() => mvcc.range(rangeRequest(new Uint8Array(0)))).toThrow(EmptyKeyError);
      expect(() => mvcc.openRange(rangeRequest(new Uint8Array(0)))).toThrow(EmptyKeyError);
      expect(mvcc.currentRevision()).toBe(2);
    }));

    it("accepts a granted lease id, negative or above 2^53", withMvcc((mvcc) => {
      for (const id of [12345n, -5n, (1n << 62n) + 3n]) {
        grant(mvcc, id);
        expect(ok(put(mvcc, `k${id}`, "v", { lease: id })).type).toBe("put");
        expect(get(mvcc, `k${id}`)).toMatchObject({ lease: id });
      }
    }));

    it("deletes a range in one revision and leaves the revision alone when nothing matched", withMvcc((mvcc) => {
      for (const key of ["a", "b", "c", "d"]) put(mvcc, key, key);
      const deleted = del(mvcc, "b", "d");
      expect(ok(deleted)).toMatchObject({ response: { revision: 6, deleted: 2 } });
      expect(deleted.events.map((event) => [event.type, text(event.kv.key), event.kv.modRevision, brief(event.prevKv)?.value])).toEqual([
        ["delete", "b", 6, "b"], ["delete", "c", 6, "c"],
      ]);
      expect(keysOf(mvcc.range(rangeRequest(bytes("a"), { rangeEnd: ALL })).kvs)).toEqual(["a", "d"]);
      const nothing = del(mvcc, "x", "z");
      expect(ok(nothing)).toMatchObject({ response: { revision: 6, deleted: 0 } });
      expect(mvcc.currentRevision()).toBe(6);
    }));

    it("serves ranges by prefix, to the end with \\0, and nothing for an empty interval", withMvcc((mvcc) => {
      for (const key of ["a", "ab", "abc", "b", "b\u0000", "c"]) put(mvcc, key, "v");
      expect(keysOf(mvcc.range(rangeRequest(bytes("ab"), { rangeEnd: bytes("ac") })).kvs)).toEqual(["ab", "abc"]);
      expect(keysOf(mvcc.range(rangeRequest(bytes("b"), { rangeEnd: ALL })).kvs)).toEqual(["b", "b\u0000", "c"]);
      expect(keysOf(mvcc.range(rangeRequest(ALL, { rangeEnd: ALL })).kvs)).toEqual(["a", "ab", "abc", "b", "b\u0000", "c"]);
      expect(mvcc.range(rangeRequest(bytes("c"), { rangeEnd: bytes("a") }))).toMatchObject({ kvs: [], count: 0, more: false });
      expect(keysOf(mvcc.range(rangeRequest(bytes("b\u0000"))).kvs)).toEqual(["b\u0000"]);
    }));

    it("answers limit with more and a count of the whole range", withMvcc((mvcc) => {
      for (const key of ["a", "b", "c", "d", "e"]) put(mvcc, key, key);
      const limited = mvcc.range(rangeRequest(bytes("a"), { rangeEnd: ALL, limit: 2 }));
      expect({ keys: keysOf(limited.kvs), more: limited.more, count: limited.count, revision: limited.revision }).toEqual({ keys: ["a", "b"], more: true, count: 5, revision: 6 });
      const exact = mvcc.range(rangeRequest(bytes("a"), { rangeEnd: ALL, limit: 5 }));
      expect({ more: exact.more, count: exact.count }).toEqual({ more: false, count: 5 });
      const counted = mvcc.range(rangeRequest(bytes("a"), { rangeEnd: ALL, countOnly: true, limit: 1 }));
      expect({ kvs: counted.kvs.length, more: counted.more, count: counted.count }).toEqual({ kvs: 0, more: false, count: 5 });
      const keysOnly = mvcc.range(rangeRequest(bytes("a"), { rangeEnd: bytes("c"), keysOnly: true }));
      expect(keysOnly.kvs.map((kv) => [text(kv.key), kv.value.length, kv.version])).toEqual([["a", 0, 1], ["b", 0, 1]]);
    }));

    it("sorts by every target in both orders and ascends by default when the target is not the key", withMvcc((mvcc) => {
      put(mvcc, "a", "3");
      put(mvcc, "b", "1");
      put(mvcc, "c", "2");
      put(mvcc, "b", "4");
      const sorted = (fields: Partial<RangeRequest>) => keysOf(mvcc.range(rangeRequest(bytes("a"), { rangeEnd: ALL, ...fields })).kvs);
      expect(sorted({ sortOrder: SortOrder.Descend })).toEqual(["c", "b", "a"]);
      expect(sorted({ sortOrder: SortOrder.Descend, limit: 2 })).toEqual(["c", "b"]);
      expect(sorted({ sortTarget: SortTarget.Value })).toEqual(["c", "a", "b"]);
      expect(sorted({ sortTarget: SortTarget.Value, sortOrder: SortOrder.Descend })).toEqual(["b", "a", "c"]);
      expect(sorted({ sortTarget: SortTarget.Mod, sortOrder: SortOrder.Descend })).toEqual(["b", "c", "a"]);
      expect(sorted({ sortTarget: SortTarget.Create, sortOrder: SortOrder.Ascend })).toEqual(["a", "b", "c"]);
      expect(sorted({ sortTarget: SortTarget.Version, sortOrder: SortOrder.Descend, limit: 1 })).toEqual(["b"]);
      const limited = mvcc.range(rangeRequest(bytes("a"), { rangeEnd: ALL, sortTarget: SortTarget.Mod, limit: 2 }));
      expect({ keys: keysOf(limited.kvs), more: limited.more, count: limited.count }).toEqual({ keys: ["a", "c"], more: true, count: 3 });
    }));

    it("filters by min and max mod and create revision without changing the count", withMvcc((mvcc) => {
      put(mvcc, "a", "1"); // 2
      put(mvcc, "b", "1"); // 3
      put(mvcc, "c", "1"); // 4
      put(mvcc, "a", "2"); // 5
      const filtered = (fields: Partial<RangeRequest>) => {
        const response = mvcc.range(rangeRequest(bytes("a"), { rangeEnd: ALL, ...fields }));
        return { keys: keysOf(response.kvs), count: response.count };
      };
      expect(filtered({ minModRevision: 4 })).toEqual({ keys: ["a", "c"], count: 3 });
      expect(filtered({ maxModRevision: 3 })).toEqual({ keys: ["b"], count: 3 });
      expect(filtered({ minCreateRevision: 3 })).toEqual({ keys: ["b", "c"], count: 3 });
      expect(filtered({ maxCreateRevision: 2, minModRevision: 5 })).toEqual({ keys: ["a"], count: 3 });
    }));

    it("refuses future revisions and compacted revisions with etcd's messages", withMvcc((mvcc) => {
      put(mvcc, "k", "1"); // 2
      put(mvcc, "k", "2"); // 3
      put(mvcc, "k", "3"); // 4
      expect(() => mvcc.range(rangeRequest(bytes("k"), { revision: 5 }))).toThrow(new FutureRevisionError());
      expect(() => mvcc.range(rangeRequest(bytes("k"), { revision: 5 }))).toThrow("mvcc: required revision is a future revision");
      expect(ok(compact(mvcc, 3))).toEqual({ type: "compact", response: { revision: 4, compactRevision: 3, physical: false } });
      expect(() => mvcc.range(rangeRequest(bytes("k"), { revision: 2 }))).toThrow("mvcc: required revision has been compacted");
      expect(get(mvcc, "k", 3)).toMatchObject({ value: "2" });
      const again = compact(mvcc, 3);
      expect(failure(again)).toBeInstanceOf(CompactedError);
      expect((failure(again) as CompactedError).grpcMessage).toBe("etcdserver: mvcc: required revision has been compacted");
      expect(failure(compact(mvcc, 9))).toBeInstanceOf(FutureRevisionError);
      expect(mvcc.currentRevision()).toBe(4);
    }));

    it("evaluates txn compares on every target with every operator", withMvcc((mvcc) => {
      grant(mvcc, 3n); // no new revision
      put(mvcc, "k", "m", { lease: 3n }); // 2
      put(mvcc, "k", "m"); // 3: version 2, create 2, mod 3, lease 0
      const check = (target: CompareTarget, operand: Uint8Array<ArrayBufferLike> | number | bigint) =>
        [CompareResult.Equal, CompareResult.Greater, CompareResult.Less, CompareResult.NotEqual].map((result) => {
          const response = ok(txn(mvcc, [compare(bytes("k"), target, result, operand)], []));
          return response.type === "txn" && response.response.succeeded;
        });
      expect(check(CompareTarget.Value, bytes("m"))).toEqual([true, false, false, false]);
      expect(check(CompareTarget.Value, bytes("a"))).toEqual([false, true, false, true]);
      expect(check(CompareTarget.Version, 3)).toEqual([false, false, true, true]);
      expect(check(CompareTarget.Create, 2)).toEqual([true, false, false, false]);
      expect(check(CompareTarget.Mod, 2)).toEqual([false, true, false, true]);
      expect(check(CompareTarget.Lease, 0n)).toEqual([true, false, false, false]);
      // A missing key: value compares fail, others compare against zero.
      const missing = (target: CompareTarget, result: CompareResult, operand: Uint8Array | number | bigint) => {
        const response = ok(txn(mvcc, [compare(bytes("nope"), target, result, operand)], []));
        return response.type === "txn" && response.response.succeeded;
      };
      expect(missing(CompareTarget.Value, CompareResult.NotEqual, bytes("x"))).toBe(false);
      expect(missing(CompareTarget.Version, CompareResult.Equal, 0)).toBe(true);
      expect(missing(CompareTarget.Create, CompareResult.Less, 1)).toBe(true);
      expect(mvcc.currentRevision()).toBe(3);
    }));

    it("compares every key of a ranged compare", withMvcc((mvcc) => {
      put(mvcc, "p/1", "x");
      put(mvcc, "p/2", "x");
      put(mvcc, "p/3", "y");
      const all = (value: string, end: string) => {
        const response = ok(txn(mvcc, [compare(bytes("p/"), CompareTarget.Value, CompareResult.Equal, bytes(value), bytes(end))], []));
        return response.type === "txn" && response.response.succeeded;
      };
      expect(all("x", "p/3")).toBe(true);
      expect(all("x", "p0")).toBe(false);
    }));

    it("writes a txn as one revision with sub revisions and lets its ranges see its own writes", withMvcc((mvcc) => {
      put(mvcc, "a", "0"); // 2
      put(mvcc, "c", "x"); // 3
      const applied = txn(mvcc, [compare(bytes("a"), CompareTarget.Value, CompareResult.Equal, bytes("0"))],
        [putOp("a", "1"), putOp("b", "2"), rangeOp("a", { rangeEnd: bytes("c") }), delOp("c")], [putOp("d", "never")]);
      const response = ok(applied);
      expect(response.type).toBe("txn");
      if (response.type !== "txn") return;
      expect(response.response.succeeded).toBe(true);
      expect(response.response.revision).toBe(4);
      const range = response.response.responses[2];
      expect(range.type === "range" && range.response.kvs.map(brief)).toEqual([
        { key: "a", value: "1", create: 2, mod: 4, version: 2, lease: 0n }, { key: "b", value: "2", create: 4, mod: 4, version: 1, lease: 0n },
      ]);
      expect(applied.events.map((event) => [event.type, text(event.kv.key), event.kv.modRevision])).toEqual([["put", "a", 4], ["put", "b", 4], ["delete", "c", 4]]);
      expect(mvcc.currentRevision()).toBe(4);
      expect(get(mvcc, "c")).toBeNull();
      expect(get(mvcc, "d")).toBeNull();
      expect(get(mvcc, "b")).toMatchObject({ mod: 4 });
    }));

    it("takes the failure branch and keeps the revision when the branch only reads", withMvcc((mvcc) => {
      put(mvcc, "a", "0");
      const response = ok(txn(mvcc, [compare(bytes("a"), CompareTarget.Version, CompareResult.Greater, 5)], [putOp("a", "1")], [rangeOp("a")]));
      expect(response.type === "txn" && { succeeded: response.response.succeeded, revision: response.response.revision }).toEqual({ succeeded: false, revision: 2 });
      expect(mvcc.currentRevision()).toBe(2);
    }));

    it("evaluates nested txn compares on the state before the outer txn wrote", withMvcc((mvcc) => {
      put(mvcc, "a", "0");
      const nested: RequestOp = { type: "txn", request: { compare: [compare(bytes("a"), CompareTarget.Value, CompareResult.Equal, bytes("0"))], success: [putOp("b", "saw-old")], failure: [putOp("b", "saw-new")] } };
      ok(txn(mvcc, [], [putOp("a", "1"), nested]));
      expect(get(mvcc, "b")).toMatchObject({ value: "saw-old", mod: 3 });
    }));

    it("refuses duplicate keys in a txn with etcd's message and accepts the same key in exclusive branches", withMvcc((mvcc) => {
      const twice = txn(mvcc, [], [putOp("a", "1"), putOp("a", "2")]);
      expect(failure(twice)).toBeInstanceOf(DuplicateKeyError);
      expect(failure(twice).message).toBe("etcdserver: duplicate key given in txn request");
      expect(failure(txn(mvcc, [], [delOp("a", "c"), putOp("b", "1")]))).toBeInstanceOf(DuplicateKeyError);
      const exclusive: RequestOp = { type: "txn", request: { compare: [], success: [putOp("a", "1")], failure: [putOp("a", "2")] } };
      expect(ok(txn(mvcc, [], [exclusive])).type).toBe("txn");
      expect(failure(txn(mvcc, [], [exclusive, putOp("a", "3")]))).toBeInstanceOf(DuplicateKeyError);
      expect(mvcc.currentRevision()).toBe(2);
    }));

    it("refuses a txn with more operations than allowed", withMvcc((mvcc) => {
      const applied = txn(mvcc, [], [putOp("a", "1"), putOp("b", "1"), putOp("c", "1")]);
      expect(failure(applied)).toBeInstanceOf(TooManyOperationsError);
      expect(failure(applied).message).toBe("etcdserver: too many operations in txn request");
    }, { txnOpsMax: 2 }));

    it("refuses a txn range at a compacted or future revision without writing anything", withMvcc((mvcc) => {
      put(mvcc, "a", "1");
      put(mvcc, "a", "2");
      compact(mvcc, 3);
      expect(failure(txn(mvcc, [], [putOp("b", "1"), rangeOp("a", { revision: 2 })]))).toBeInstanceOf(CompactedError);
      expect(failure(txn(mvcc, [], [putOp("b", "1"), rangeOp("a", { revision: 4 })]))).toBeInstanceOf(FutureRevisionError);
      expect(get(mvcc, "b")).toBeNull();
      expect(mvcc.currentRevision()).toBe(3);
    }));

    it("skips entries already applied and refuses a gap", withMvcc((mvcc) => {
      const entry = (index: number, value: string) => ({ term: 2, index, type: 0 as const, data: encodeCommand({ type: "put", request: putRequest(bytes("k"), bytes(value)) }) });
      expect(mvcc.applyEntries([entry(1, "a"), entry(2, "b")]).map((applied) => applied.index)).toEqual([1, 2]);
      expect(mvcc.applyEntries([entry(1, "a"), entry(2, "b")])).toEqual([]);
      expect(mvcc.applyEntries([entry(2, "b"), entry(3, "c")]).map((applied) => applied.index)).toEqual([3]);
      expect(get(mvcc, "k")).toMatchObject({ value: "c", version: 3 });
      expect(() => mvcc.applyEntries([entry(5, "x")])).toThrow(/gap/);
      expect(() => mvcc.applyEntries([entry(4, "x"), entry(6, "y")])).toThrow(/out of order/);
      expect(mvcc.appliedIndex()).toBe(3);
      expect(mvcc.appliedTerm()).toBe(2);
    }));

    it("records the applied index with the data so a reopened state machine resumes exactly", withMvcc((mvcc) => {
      put(mvcc, "a", "1");
      mvcc.applyEntries([{ term: 3, index: 2, type: 1, data: new Uint8Array([1]) }, { term: 3, index: 3, type: 0, data: new Uint8Array(0) }]);
      const reopened = new Mvcc(mvcc.store);
      expect({ applied: reopened.appliedIndex(), term: reopened.appliedTerm(), revision: reopened.currentRevision() }).toEqual({ applied: 3, term: 3, revision: 2 });
    }));

    it("answers garbage command bytes with a decode error and still advances the applied index", withMvcc((mvcc) => {
      const [applied] = mvcc.applyEntries([{ term: 1, index: 1, type: 0, data: new Uint8Array([1, 99, 0]) }]);
      expect(failure(applied)).toBeInstanceOf(CommandDecodeError);
      expect(mvcc.appliedIndex()).toBe(1);
      expect(mvcc.currentRevision()).toBe(1);
    }));

    it("leaves state untouched when a write transaction fails in the store", withMvcc((mvcc) => {
      put(mvcc, "a", "1");
      const store = mvcc.store;
      const failing = new Mvcc({
        location: store.location, read: (fn) => store.read(fn),
        write: (fn) => store.write((writer) => {
          fn(writer);
          throw new Error("disk full");
        }),
      });
      expect(() => put(failing, "a", "2")).toThrow("disk full");
      expect(failing.currentRevision()).toBe(2);
      expect(failing.appliedIndex()).toBe(1);
      expect(get(mvcc, "a")).toMatchObject({ value: "1" });
    }));

    it("hashes equal histories equally, differing ones differently, regardless of physical compaction", withMvcc((mvcc) => {
      const other = open();
      for (const target of [mvcc, other]) {
        put(target, "a", "1");
        put(target, "b", "1");
        put(target, "a", "2");
        del(target, "b");
        compact(target, 4);
      }
      expect(mvcc.hashKv(0)).toEqual(other.hashKv(0));
      const before = mvcc.hashKv(0).hash;
      while (!mvcc.compactBatch(1)) { /* bounded: each batch advances the cursor */ }
      expect(mvcc.physicalCompactRevision()).toBe(4);
      expect(mvcc.hashKv(0).hash).toBe(before);
      put(other, "c", "1");
      expect(other.hashKv(0).hash).not.toBe(before);
      expect(other.hashKv(5).hash).toBe(before);
      expect(() => other.hashKv(3)).toThrow(CompactedError);
      expect(() => other.hashKv(9)).toThrow(FutureRevisionError);
    }));

    it("removes compacted history in small batches and keeps every readable revision intact", withMvcc((mvcc) => {
      for (let round = 0; round < 5; round++) for (const key of ["a", "b", "c"]) put(mvcc, key, `${key}${round}`);
      del(mvcc, "b"); // 17
      put(mvcc, "d", "d"); // 18
      const readable = () => [12, 15, 16, 17, 18].map((revision) => mvcc.range(rangeRequest(ALL, { rangeEnd: ALL, revision })).kvs.map(brief));
      const before = readable();
      compact(mvcc, 17);
      let batches = 0;
      while (!mvcc.compactBatch(2) && batches < 100) batches++;
      expect(batches).toBeGreaterThan(1);
      expect(() => mvcc.range(rangeRequest(ALL, { rangeEnd: ALL, revision: 16 }))).toThrow(CompactedError);
      expect([17, 18].map((revision) => mvcc.range(rangeRequest(ALL, { rangeEnd: ALL, revision })).kvs.map(brief))).toEqual(before.slice(3));
      let revisions = 0;
      mvcc.store.read((reader) => {
        for (const _entry of reader.range(0)) revisions++;
      });
      expect(revisions).toBe(3); // a@14, c@16, d@18; b's tombstone and all older history are gone
    }));

    it("streams a range in chunks that stay consistent while writes and compaction continue", withMvcc((mvcc) => {
      for (let i = 0; i < 30; i++) put(mvcc, `k${String(i).padStart(2, "0")}`, `v${i}`);
      const request = rangeRequest(bytes("k"), { rangeEnd: bytes("l"), limit: 25 });
      const expected = mvcc.range(request);
      const stream = mvcc.openRange(request);
      expect(stream.summary()).toEqual({ count: 30, kvCount: 25, more: true, bytes: expected.kvs.reduce((total, kv) => total + kv.key.length + kv.value.length, 0) });
      const streamed: KeyValue[] = [];
      for (let chunk = stream.next(4); chunk !== null; chunk = stream.next(4)) {
        streamed.push(...chunk);
        put(mvcc, "k00", "changed");
        del(mvcc, "k10");
        compact(mvcc, mvcc.currentRevision());
        mvcc.compactBatch(1000);
      }
      stream.close();
      expect(streamed.map(brief)).toEqual(expected.kvs.map(brief));
      const backwards = mvcc.openRange(rangeRequest(bytes("k"), { rangeEnd: bytes("l"), sortOrder: SortOrder.Descend, limit: 3 }));
      const chunks = [backwards.next(2), backwards.next(2), backwards.next(2)];
      backwards.close();
      expect(chunks.map((chunk) => chunk === null ? null : keysOf(chunk))).toEqual([["k29", "k28"], ["k27"], null]);
      const byValue = mvcc.openRange(rangeRequest(bytes("k"), { rangeEnd: bytes("l"), sortTarget: SortTarget.Value, sortOrder: SortOrder.Descend, limit: 2 }));
      expect(keysOf(byValue.next(10) ?? [])).toEqual(["k09", "k08"]);
      byValue.close();
    }));

    it("agrees with a naive model of etcd's MVCC over random histories", () => {
      try {
        checkAgainstModel(open);
      } finally {
        factory.dispose();
      }
    });
  });
}

/** A deliberately simple model: every write ever made, searched linearly. */
interface ModelWrite { main: number; key: string; value: string | null; lease: bigint }

function modelState(writes: readonly ModelWrite[], revision: number): Map<string, { value: string; create: number; mod: number; version: number; lease: bigint }> {
  const state = new Map<string, { value: string; create: number; mod: number; version: number; lease: bigint }>();
  for (const write of writes) {
    if (write.main > revision) break;
    if (write.value === null) {
      state.delete(write.key);
      continue;
    }
    const previous = state.get(write.key);
    state.set(write.key, { value: write.value, create: previous?.create ?? write.main, mod: write.main, version: (previous?.version ?? 0) + 1, lease: write.lease });
  }
  return state;
}

type ModelOp = { type: "put"; key: string; value: string } | { type: "delete"; key: string; end: string } | { type: "compact"; back: number } | { type: "txn"; key: string; version: number; then: string; otherwise: string };

function checkAgainstModel(open: () => Mvcc): void {
  const keys = ["a", "b", "b\u0000", "ba", "c"];
  const key = fc.constantFrom(...keys);
  const op: fc.Arbitrary<ModelOp> = fc.oneof(
    fc.record({ type: fc.constant("put" as const), key, value: fc.string({ maxLength: 3 }) }),
    fc.record({ type: fc.constant("delete" as const), key, end: fc.constantFrom("", "\u0000", "bz", "d") }),
    fc.record({ type: fc.constant("compact" as const), back: fc.integer({ min: 0, max: 4 }) }),
    fc.record({ type: fc.constant("txn" as const), key, version: fc.integer({ min: 0, max: 2 }), then: key, otherwise: key }),
  );
  fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 25 }), fc.integer({ min: 0, max: 40 }), (ops, probe) => {
    const mvcc = open();
    const writes: ModelWrite[] = [];
    let revision = 1;
    let compacted = 0;
    for (const step of ops) {
      if (step.type === "put") {
        put(mvcc, step.key, step.value);
        revision++;
        writes.push({ main: revision, key: step.key, value: step.value, lease: 0n });
      } else if (step.type === "delete") {
        const current = modelState(writes, revision);
        const inRange = [...current.keys()].filter((name) => step.end === "" ? name === step.key : step.end === "\u0000" ? name >= step.key : name >= step.key && name < step.end);
        del(mvcc, step.key, step.end);
        if (inRange.length > 0) {
          revision++;
          for (const name of inRange) writes.push({ main: revision, key: name, value: null, lease: 0n });
        }
      } else if (step.type === "compact") {
        const target = Math.max(0, revision - step.back);
        const applied = compact(mvcc, target);
        if (target > compacted) {
          expect(applied.outcome?.ok).toBe(true);
          compacted = target;
        } else expect(applied.outcome?.ok).toBe(false);
        mvcc.compactBatch(3);
      } else {
        const current = modelState(writes, revision);
        const succeeded = (current.get(step.key)?.version ?? 0) === step.version;
        txn(mvcc, [compare(bytes(step.key), CompareTarget.Version, CompareResult.Equal, step.version)], [putOp(step.then, "then")], [putOp(step.otherwise, "else")]);
        revision++;
        writes.push({ main: revision, key: succeeded ? step.then : step.otherwise, value: succeeded ? "then" : "else", lease: 0n });
      }
    }
    expect(mvcc.currentRevision()).toBe(revision);
    const at = probe % (revision + 2);
    const request = rangeRequest(bytes("a"), { rangeEnd: ALL, revision: at });
    if (at > revision) {
      expect(() => mvcc.range(request)).toThrow(FutureRevisionError);
      return;
    }
    if (at !== 0 && at < compacted) {
      expect(() => mvcc.range(request)).toThrow(CompactedError);
      return;
    }
    const expected = [...modelState(writes, at === 0 ? revision : at).entries()].sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0));
    const actual = mvcc.range(request).kvs.map((kv) => [text(kv.key), { value: text(kv.value), create: kv.createRevision, mod: kv.modRevision, version: kv.version, lease: kv.lease }]);
    expect(actual).toEqual(expected);
  }), { numRuns: 60, seed: 20261126 });
}
