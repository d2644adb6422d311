import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { GrpcStatus } from "../api/mod.js";
import { Client } from "./client.js";
import { EtcdClientError, InvalidRequestError } from "./errors.js";
import { compare, isReadOnlyTxn, op, prefixEnd, rangeRequest } from "./kv.js";
import { FakeCluster, FAKE_CLUSTER_ID } from "./testing/fake-cluster.js";

const text = (bytes: Uint8Array | undefined): string => Buffer.from(bytes ?? []).toString();

describe("prefixEnd", () => {
  it("increments the last byte below 0xff and drops the 0xff bytes after it", () => {
    expect([...prefixEnd(Buffer.from("abc"))]).toEqual([...Buffer.from("abd")]);
    expect([...prefixEnd(Uint8Array.of(0x61, 0xff, 0xff))]).toEqual([0x62]);
    expect([...prefixEnd(Uint8Array.of(0x01, 0xfe))]).toEqual([0x01, 0xff]);
  });

  it("answers \\0 (every key from the prefix on) for an empty prefix or one of only 0xff bytes", () => {
    expect([...prefixEnd(new Uint8Array(0))]).toEqual([0]);
    expect([...prefixEnd(Uint8Array.of(0xff, 0xff))]).toEqual([0]);
  });

  it("does not change the prefix it is given", () => {
    const prefix = Buffer.from("key/");
    prefixEnd(prefix);
    expect(prefix.toString()).toBe("key/");
  });
});

describe("request building", () => {
  it("refuses negative or fractional counts, conflicting range options and unknown sort names", () => {
    expect(() => rangeRequest("k", { limit: -1 })).toThrow(InvalidRequestError);
    expect(() => rangeRequest("k", { revision: 1.5 })).toThrow(InvalidRequestError);
    expect(() => rangeRequest("k", { prefix: true, fromKey: true })).toThrow(InvalidRequestError);
    expect(() => rangeRequest("k", { sortOrder: "sideways" as never })).toThrow(InvalidRequestError);
    expect(() => compare.version("k", "~" as never, 1)).toThrow(InvalidRequestError);
  });

  it("counts a txn as read-only only when no branch at any depth writes", () => {
    const reads = { compare: [], success: [op.get("a")], failure: [op.txn({ compare: [], success: [op.get("b")], failure: [] })] };
    expect(isReadOnlyTxn(reads)).toBe(true);
    const nestedWrite = { compare: [], success: [op.get("a")], failure: [op.txn({ compare: [], success: [op.delete("b")], failure: [] })] };
    expect(isReadOnlyTxn(nestedWrite)).toBe(false);
    expect(isReadOnlyTxn({ compare: [], success: [op.put("a", "1")], failure: [] })).toBe(false);
  });
});

describe("the KV client against etcd's KV service on a real MVCC", () => {
  let cluster: FakeCluster;
  let client: Client;

  beforeAll(async () => {
    cluster = await FakeCluster.start(1);
    client = new Client({ endpoints: cluster.endpoints, commandTimeoutMs: 5000 });
  });

  afterAll(async () => {
    await client.close();
    await cluster.stop();
  });

  it("puts and gets a key, with the header naming the cluster, the member and the revision", async () => {
    const put = await client.kv.put("greeting", "hello");
    expect(put.header?.clusterId).toBe(FAKE_CLUSTER_ID);
    expect(put.header?.memberId).toBe(cluster.members[0].id);
    const got = await client.kv.get("greeting");
    expect(got.kvs.map((kv) => text(kv.value))).toEqual(["hello"]);
    expect(got.kvs[0].modRevision).toBe(put.header?.revision);
    expect(got.kvs[0].version).toBe(1);
    expect(got.count).toBe(1);
  });

  it("returns the previous value on put and delete when asked, and binary keys and values unchanged", async () => {
    await client.kv.put("swap", "one");
    const second = await client.kv.put("swap", "two", { prevKv: true });
    expect(text(second.prevKv?.value)).toBe("one");
    const binary = Uint8Array.of(0, 255, 1, 254);
    await client.kv.put(binary, binary);
    expect([...(await client.kv.get(binary)).kvs[0].value]).toEqual([0, 255, 1, 254]);
    const deleted = await client.kv.delete("swap", { prevKv: true });
    expect(deleted.deleted).toBe(1);
    expect(deleted.prevKvs.map((kv) => text(kv.value))).toEqual(["two"]);
    expect((await client.kv.get("swap")).kvs).toEqual([]);
  });

  it("ranges over a prefix with limit, sort, keys only and count only", async () => {
    for (const [key, value] of [["fruit/apple", "3"], ["fruit/banana", "1"], ["fruit/cherry", "2"], ["fruits", "x"]]) await client.kv.put(key, value);
    const all = await client.kv.get("fruit/", { prefix: true });
    expect(all.kvs.map((kv) => text(kv.key))).toEqual(["fruit/apple", "fruit/banana", "fruit/cherry"]);
    const limited = await client.kv.get("fruit/", { prefix: true, limit: 2 });
    expect([limited.kvs.length, limited.more, limited.count]).toEqual([2, true, 3]);
    const byValue = await client.kv.get("fruit/", { prefix: true, sortOrder: "descend", sortTarget: "value" });
    expect(byValue.kvs.map((kv) => text(kv.value))).toEqual(["3", "2", "1"]);
    const keysOnly = await client.kv.get("fruit/", { prefix: true, keysOnly: true });
    expect(keysOnly.kvs.every((kv) => kv.value.length === 0)).toBe(true);
    const counted = await client.kv.get("fruit/", { prefix: true, countOnly: true });
    expect([counted.kvs.length, counted.count]).toEqual([0, 3]);
    const fromKey = await client.kv.get("fruit/c", { fromKey: true });
    expect(fromKey.kvs.map((kv) => text(kv.key))).toContain("fruits");
    const serializable = await client.kv.get("fruit/apple", { serializable: true });
    expect(text(serializable.kvs[0].value)).toBe("3");
  });

  it("reads an old revision, and after compaction reports etcd's compacted error with its kind", async () => {
    const first = await client.kv.put("history", "v1");
    await client.kv.put("history", "v2");
    const old = await client.kv.get("history", { revision: first.header?.revision });
    expect(text(old.kvs[0].value)).toBe("v1");
    const latest = await client.kv.put("history", "v3");
    await client.kv.compact(latest.header!.revision, { physical: true });
    const failure = await client.kv.get("history", { revision: first.header?.revision }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(EtcdClientError);
    expect(failure).toMatchObject({ code: GrpcStatus.outOfRange, kind: "compacted", details: "etcdserver: mvcc: required revision has been compacted" });
    const future = await client.kv.get("history", { revision: latest.header!.revision + 1000 }).catch((error: unknown) => error);
    expect(future).toMatchObject({ kind: "futureRevision" });
    const again = await client.kv.compact(first.header!.revision).catch((error: unknown) => error);
    expect(again).toMatchObject({ kind: "compacted" });
  });

  it("runs a txn built with compares and both branches, and a raw nested txn", async () => {
    await client.kv.put("lock", "free");
    const taken = await client.kv.transaction()
      .compare(compare.value("lock", "=", "free"))
      .success(op.put("lock", "mine"), op.get("lock"))
      .failure(op.get("lock"))
      .commit();
    expect(taken.succeeded).toBe(true);
    const read = taken.responses[1];
    expect("responseRange" in read && text(read.responseRange.kvs[0].value)).toBe("mine");
    const lost = await client.kv.transaction().compare(compare.value("lock", "=", "free")).success(op.put("lock", "theirs")).failure(op.get("lock")).commit();
    expect(lost.succeeded).toBe(false);
    expect(text((await client.kv.get("lock")).kvs[0].value)).toBe("mine");

    const nested = await client.kv.txn({
      compare: [compare.version("lock", ">", 0)],
      success: [op.txn({ compare: [compare.createRevision("absent", "=", 0)], success: [op.put("absent", "now")], failure: [] })],
      failure: [],
    });
    const inner = nested.responses[0];
    expect("responseTxn" in inner && inner.responseTxn.succeeded).toBe(true);
    expect(text((await client.kv.get("absent")).kvs[0].value)).toBe("now");
  });

  it("reports etcd's errors for bad requests with their gRPC code and kind", async () => {
    const empty = await client.kv.put("", "x").catch((error: unknown) => error);
    expect(empty).toMatchObject({ name: "EtcdClientError", code: GrpcStatus.invalidArgument, kind: "emptyKey" });
    const duplicate = await client.kv.txn({ compare: [], success: [op.put("d", "1"), op.put("d", "2")], failure: [] }).catch((error: unknown) => error);
    expect(duplicate).toMatchObject({ kind: "duplicateKey" });
    const missing = await client.kv.put("never-put", "", { ignoreValue: true }).catch((error: unknown) => error);
    expect(missing).toMatchObject({ kind: "keyNotFound" });
    expect((missing as Error).message).toContain("KV/Put");
    await expect(client.kv.compact(0)).rejects.toBeInstanceOf(InvalidRequestError);
  });
});
