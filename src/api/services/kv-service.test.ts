import { describe, it, expect, beforeAll, afterAll } from "vitest";
import type * as grpc from "@grpc/grpc-js";
import { noop } from "cockatiel";
import { Etcd3, GRPCOutOfRangeError, GRPCResourceExhastedError } from "etcd3";
import { nodeId } from "../../lib/ids.js";
import { NoLeaderError, NotLeaderError, ProposalRefusedError, RequestTimeoutError, StoppedError } from "../../server/errors.js";
import { registerEtcdServices } from "../etcd-services.js";
import { createGrpcServer, type CallContext, type GrpcServer } from "../grpc/server.js";
import { GrpcStatus } from "../grpc/status.js";
import { KEY_VALUE_FRAMING_BYTES_MAX, KvService, RANGE_CHUNK_KVS_MAX } from "./kv-service.js";
import { callUnary, FAKE_CLUSTER_ID, FAKE_MEMBER_ID, FAKE_TERM, FakeKvBackend, referenceClient } from "./test-support.js";

const RANGE_RESPONSE_BYTES_MAX = 256 * 1024;
const TXN_OPS_MAX = 16;

interface WireHeader {
  cluster_id: string;
  member_id: string;
  revision: string;
  raft_term: string;
}
interface WireKeyValue {
  key: Buffer;
  value: Buffer;
  create_revision: string;
  mod_revision: string;
  version: string;
}

const text = (value: Buffer | Uint8Array): string => Buffer.from(value).toString();
const revisionOf = (response: { header: WireHeader }): number => Number(response.header.revision);

describe("the KV service on a real MVCC, driven by etcd clients through the gRPC server", () => {
  let server: GrpcServer;
  let backend: FakeKvBackend;
  let etcd: Etcd3;
  let kvClient: grpc.Client;

  beforeAll(async () => {
    backend = new FakeKvBackend();
    server = createGrpcServer();
    registerEtcdServices(server, { kv: new KvService(backend, { rangeResponseBytesMax: RANGE_RESPONSE_BYTES_MAX, txnOpsMax: TXN_OPS_MAX }) }, { txnOpsMax: TXN_OPS_MAX });
    const bound = await server.listen(0, "127.0.0.1");
    const address = `127.0.0.1:${bound.port}`;
    // No retries and no circuit breaker: each call sees exactly the server's answer.
    etcd = new Etcd3({ hosts: address, faultHandling: { host: () => noop, global: noop } });
    kvClient = referenceClient(address, "KV");
  });

  afterAll(async () => {
    etcd.close();
    kvClient.close();
    await server.close(1000);
  });

  it("puts and gets a key, with the header naming the cluster, member, revision and term", async () => {
    const put = await etcd.put("basic/key").value("hello");
    expect(BigInt(put.header.cluster_id)).toBe(FAKE_CLUSTER_ID);
    expect(BigInt(put.header.member_id)).toBe(FAKE_MEMBER_ID);
    expect(Number(put.header.raft_term)).toBe(FAKE_TERM);
    expect(revisionOf(put)).toBe(backend.mvcc.currentRevision());
    const got = await etcd.get("basic/key").exec();
    expect(got.kvs.map((kv) => text(kv.value))).toEqual(["hello"]);
    expect(Number(got.kvs[0].mod_revision)).toBe(revisionOf(put));
    expect(Number(got.kvs[0].create_revision)).toBe(revisionOf(put));
    expect(got.kvs[0].version).toBe("1");
    expect(revisionOf(got)).toBe(revisionOf(put));
  });

  it("passes the read barrier for a linearizable range and skips it for a serializable one", async () => {
    const before = backend.barriers;
    await etcd.get("basic/key").string();
    expect(backend.barriers).toBe(before + 1);
    expect(await etcd.get("basic/key").serializable(true).string()).toBe("hello");
    expect(backend.barriers).toBe(before + 1);
  });

  it("ranges over a prefix with sort, limit, count and keys only, as etcd", async () => {
    await etcd.put("fruit/apple").value("3");
    await etcd.put("fruit/banana").value("1");
    await etcd.put("fruit/cherry").value("2");
    await etcd.put("fruitless").value("0");
    expect(await etcd.getAll().prefix("fruit/").keys()).toEqual(["fruit/apple", "fruit/banana", "fruit/cherry"]);
    expect(await etcd.getAll().prefix("fruit/").sort("Value", "Descend").keys()).toEqual(["fruit/apple", "fruit/cherry", "fruit/banana"]);
    expect(await etcd.getAll().prefix("fruit/").sort("Key", "Descend").keys()).toEqual(["fruit/cherry", "fruit/banana", "fruit/apple"]);
    expect(await etcd.getAll().prefix("fruit/").count()).toBe(3);
    const limited = await etcd.getAll().prefix("fruit/").limit(2).exec();
    expect(limited.kvs.map((kv) => text(kv.key))).toEqual(["fruit/apple", "fruit/banana"]);
    expect([limited.more, limited.count]).toEqual([true, "3"]);
    const keysOnly = (await etcd.kv.range({ key: Buffer.from("fruit/"), range_end: Buffer.from("fruit0"), keys_only: true })) as unknown as { kvs: WireKeyValue[] };
    expect(keysOnly.kvs.map((kv) => [text(kv.key), kv.value.length])).toEqual([["fruit/apple", 0], ["fruit/banana", 0], ["fruit/cherry", 0]]);
    const counted = await etcd.kv.range({ key: Buffer.from("fruit/"), range_end: Buffer.from("fruit0"), count_only: true });
    expect([counted.kvs.length, counted.count]).toEqual([0, "3"]);
  });

  it("reads a key at an old revision, with the header still at the current revision", async () => {
    const first = await etcd.put("history/key").value("v1");
    await etcd.put("history/key").value("v2");
    const old = await etcd.get("history/key").revision(revisionOf(first)).exec();
    expect(old.kvs.map((kv) => [text(kv.value), kv.version])).toEqual([["v1", "1"]]);
    expect(revisionOf(old)).toBe(backend.mvcc.currentRevision());
    expect(revisionOf(old)).toBeGreaterThan(revisionOf(first));
  });

  it("deletes a range and returns the previous values", async () => {
    await etcd.put("doomed/a").value("1");
    await etcd.put("doomed/b").value("2");
    const deleted = await etcd.delete().prefix("doomed/").getPrevious();
    expect(deleted.map((kv) => [text(kv.key), text(kv.value)])).toEqual([["doomed/a", "1"], ["doomed/b", "2"]]);
    expect(await etcd.getAll().prefix("doomed/").count()).toBe(0);
    const nothing = await etcd.delete().key("doomed/a").exec();
    expect([nothing.deleted, revisionOf(nothing)]).toEqual(["0", backend.mvcc.currentRevision()]);
  });

  it("returns the previous key on a put that asks for it", async () => {
    await etcd.put("prev/key").value("old");
    const previous = await etcd.put("prev/key").value("new").getPrevious();
    expect([text(previous.value as Buffer), previous.version]).toEqual(["old", "1"]);
  });

  it("runs a txn whose compares on value, version, mod and create revision pick the branch, with nested ops", async () => {
    const created = await etcd.put("txn/key").value("a");
    await etcd.put("txn/key").value("b");
    const modRevision = backend.mvcc.currentRevision();
    const key = Buffer.from("txn/key");
    const response = await etcd.kv.txn({
      compare: [
        { key, target: "Value", result: "Equal", value: Buffer.from("b") },
        { key, target: "Version", result: "Greater", version: 1 },
        { key, target: "Mod", result: "Equal", mod_revision: modRevision },
        { key, target: "Create", result: "Less", create_revision: revisionOf(created) + 1 },
      ],
      success: [
        { request_put: { key: Buffer.from("txn/out"), value: Buffer.from("x") } },
        {
          request_txn: {
            compare: [{ key: Buffer.from("txn/absent"), target: "Version", result: "Equal", version: 0 }],
            success: [{ request_range: { key } }, { request_put: { key: Buffer.from("txn/nested"), value: Buffer.from("y") } }],
            failure: [],
          },
        },
      ],
      failure: [{ request_delete_range: { key } }],
    });
    expect(response.succeeded).toBe(true);
    const txnRevision = modRevision + 1;
    expect(revisionOf(response)).toBe(txnRevision);
    expect(response.responses.map((op) => (op as unknown as { response: string }).response)).toEqual(["response_put", "response_txn"]);
    const nested = response.responses[1].response_txn;
    expect(nested?.succeeded).toBe(true);
    expect(nested?.responses[0].response_range?.kvs.map((kv) => text(kv.value))).toEqual(["b"]);
    // Nested headers carry the txn's revision and nothing else, as etcd.
    expect(nested?.header.revision).toBe(String(txnRevision));
    expect(nested?.header.cluster_id).toBe("0");
    expect(await etcd.get("txn/nested").string()).toBe("y");
    expect(await etcd.get("txn/out").string()).toBe("x");

    const failed = await etcd.if("txn/key", "Create", ">", revisionOf(created)).then(etcd.put("txn/never").value("z")).else(etcd.get("txn/key")).commit();
    expect(failed.succeeded).toBe(false);
    expect(failed.responses[0].response_range?.kvs.map((kv) => text(kv.value))).toEqual(["b"]);
    expect(await etcd.get("txn/never").string()).toBeNull();
  });

  it("answers a read below the compact revision, or beyond the current one, with etcd's errors", async () => {
    const first = await etcd.put("compact/key").value("1");
    await etcd.put("compact/key").value("2");
    const target = backend.mvcc.currentRevision();
    await etcd.kv.compact({ revision: target });
    const compacted = await etcd.get("compact/key").revision(revisionOf(first)).string().catch((error: unknown) => error);
    expect(compacted).toBeInstanceOf(GRPCOutOfRangeError);
    expect((compacted as Error).message).toContain("etcdserver: mvcc: required revision has been compacted");
    const future = await etcd.get("compact/key").revision(target + 1000).string().catch((error: unknown) => error);
    expect((future as Error).message).toContain("etcdserver: mvcc: required revision is a future revision");
    const again = await callUnary(kvClient, "Compact", { revision: target });
    expect(again).toMatchObject({ code: GrpcStatus.outOfRange, details: "etcdserver: mvcc: required revision has been compacted" });
    expect(await etcd.get("compact/key").string()).toBe("2");
  });

  it("waits for a physical compaction before answering one that asks for it", async () => {
    for (let index = 0; index < 5; index++) await etcd.put("physical/key").value(String(index));
    const target = backend.mvcc.currentRevision();
    const response = await etcd.kv.compact({ revision: target, physical: true });
    expect(backend.physicalWaits).toContain(target);
    expect(backend.mvcc.physicalCompactRevision()).toBeGreaterThanOrEqual(target);
    expect(revisionOf(response as unknown as { header: WireHeader })).toBe(backend.mvcc.currentRevision());
  });

  it("answers each runtime failure with etcd's code and text", async () => {
    const leader = nodeId(2n);
    const cases: Array<[Error, number, string]> = [
      [new NoLeaderError(), GrpcStatus.unavailable, "etcdserver: no leader"],
      [new NotLeaderError(leader, "move"), GrpcStatus.failedPrecondition, "etcdserver: not leader"],
      [new RequestTimeoutError("slow"), GrpcStatus.unavailable, "etcdserver: request timed out"],
      [new StoppedError(), GrpcStatus.unavailable, "etcdserver: server stopped"],
      [new ProposalRefusedError("leadership-transfer-in-progress", leader), GrpcStatus.unavailable, "etcdserver: leader changed"],
      [new ProposalRefusedError("entry-too-large", leader), GrpcStatus.invalidArgument, "etcdserver: request is too large"],
      [new ProposalRefusedError("too-many-uncommitted-entries", leader), GrpcStatus.resourceExhausted, "etcdserver: too many requests"],
      [new ProposalRefusedError("node-removed", leader), GrpcStatus.unavailable, "etcdserver: server stopped"],
      [new Error("disk on fire"), GrpcStatus.unknown, "disk on fire"],
    ];
    for (const [error, code, details] of cases) {
      backend.failNext = error;
      const put = await callUnary(kvClient, "Put", { key: Buffer.from("fails/key"), value: Buffer.from("v") });
      expect(put, error.message).toMatchObject({ code, details });
      backend.failNext = error;
      const range = await callUnary(kvClient, "Range", { key: Buffer.from("fails/key") });
      expect(range, error.message).toMatchObject({ code, details });
    }
    expect(await etcd.get("fails/key").string()).toBeNull();
  });

  it("refuses a range whose answer would pass the size cap, and serves it once narrowed", async () => {
    const value = Buffer.alloc(4096, 0x61);
    const keys = Math.ceil(RANGE_RESPONSE_BYTES_MAX / value.length) + 1;
    for (let index = 0; index < keys; index++) await backend.propose({ type: "put", request: { key: Buffer.from(`big/${String(index).padStart(3, "0")}`), value, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } });
    const refused = await etcd.getAll().prefix("big/").strings().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(GRPCResourceExhastedError);
    const expectedBytes = keys * ("big/000".length + value.length + KEY_VALUE_FRAMING_BYTES_MAX);
    const details = await callUnary(kvClient, "Range", { key: Buffer.from("big/"), range_end: Buffer.from("big0") });
    expect(details).toMatchObject({
      code: GrpcStatus.resourceExhausted,
      details: `cairn: range response too large (up to ${expectedBytes} bytes, limit ${RANGE_RESPONSE_BYTES_MAX}); narrow the range, set a limit, or ask for keys_only or count_only`,
    });
    expect(Object.keys(await etcd.getAll().prefix("big/").limit(4).strings())).toHaveLength(4);
    expect(await etcd.getAll().prefix("big/").keys()).toHaveLength(keys);
    expect(await etcd.getAll().prefix("big/").count()).toBe(keys);
  });

  it("assembles a range of many keys in chunks, in order, complete", async () => {
    const total = RANGE_CHUNK_KVS_MAX * 2 + 17;
    for (let index = 0; index < total; index++) {
      await backend.propose({ type: "put", request: { key: Buffer.from(`many/${String(index).padStart(5, "0")}`), value: Buffer.from(String(index)), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } });
    }
    const all = await etcd.getAll().prefix("many/").strings();
    const keys = Object.keys(all);
    expect(keys).toHaveLength(total);
    expect(keys).toEqual([...keys].sort());
    expect(all[`many/${String(total - 1).padStart(5, "0")}`]).toBe(String(total - 1));
    const backwards = await etcd.getAll().prefix("many/").sort("Key", "Descend").limit(RANGE_CHUNK_KVS_MAX + 5).keys();
    expect(backwards[0]).toBe(`many/${String(total - 1).padStart(5, "0")}`);
    expect(backwards).toHaveLength(RANGE_CHUNK_KVS_MAX + 5);
  });

  it("refuses bad requests with etcd's errors or a clear Cairn one, and keeps serving", async () => {
    const tooLong = await callUnary(kvClient, "Put", { key: Buffer.alloc(3000, 0x6b), value: Buffer.from("v") });
    expect(tooLong).toMatchObject({ code: GrpcStatus.invalidArgument });
    expect((tooLong as grpc.ServiceError).details).toMatch(/^cairn: key is too long/);
    const negativeMax = await callUnary(kvClient, "Range", { key: Buffer.from("a"), max_mod_revision: -1 });
    expect(negativeMax).toMatchObject({ code: GrpcStatus.invalidArgument, details: "cairn: max_mod_revision must not be negative" });
    const badTarget = await callUnary(kvClient, "Txn", { compare: [{ key: Buffer.from("a"), target: 9, result: 0 }] });
    expect(badTarget).toMatchObject({ code: GrpcStatus.invalidArgument, details: "cairn: unknown compare target 9" });
    const ignoreMissing = await callUnary(kvClient, "Put", { key: Buffer.from("nobody/here"), ignore_value: true });
    expect(ignoreMissing).toMatchObject({ code: GrpcStatus.invalidArgument, details: "etcdserver: key not found" });
    expect(await etcd.get("basic/key").string()).toBe("hello");
  });

  it("answers DEADLINE_EXCEEDED when the client's deadline passes while a write waits in Raft", async () => {
    backend.hangNext = true;
    const failure = await new Promise<grpc.ServiceError | null>((resolve) => {
      (kvClient as unknown as { Put(request: object, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null) => void): void })
        .Put({ key: Buffer.from("stuck/key"), value: Buffer.from("v") }, { deadline: Date.now() + 100 }, resolve);
    });
    expect(failure?.code).toBe(GrpcStatus.deadlineExceeded);
    expect(await etcd.get("stuck/key").string()).toBeNull();
  });

  it("reads a range again when a snapshot install replaced the state between its chunks", async () => {
    const service = new KvService(backend, { rangeResponseBytesMax: RANGE_RESPONSE_BYTES_MAX });
    const opened = backend.mvcc.openRange.bind(backend.mvcc);
    let opens = 0;
    backend.mvcc.openRange = (request) => {
      opens++;
      return opened(request);
    };
    try {
      const request = {
        key: Buffer.from("many/"), rangeEnd: Buffer.from("many0"), limit: 0, revision: 0, sortOrder: 0, sortTarget: 0, serializable: true,
        keysOnly: true, countOnly: false, minModRevision: 0, maxModRevision: 0, minCreateRevision: 0, maxCreateRevision: 0,
      };
      const answer = service.range(request, { signal: new AbortController().signal } as CallContext);
      // The first chunk was read synchronously; the install lands before the second.
      backend.mvcc.reload();
      const response = await answer;
      expect(opens).toBe(2);
      expect(response.kvs).toHaveLength(response.count);
      expect(response.count).toBeGreaterThan(RANGE_CHUNK_KVS_MAX);
    } finally {
      backend.mvcc.openRange = opened;
    }
  });

  it("refuses writes and linearizable reads on a learner, and serves its serializable reads", async () => {
    backend.learner = true;
    try {
      const write = await callUnary(kvClient, "Put", { key: Buffer.from("learner/key"), value: Buffer.from("v") });
      expect(write).toMatchObject({ code: GrpcStatus.unavailable, details: "etcdserver: rpc not supported for learner" });
      const read = await callUnary(kvClient, "Range", { key: Buffer.from("basic/key") });
      expect(read).toMatchObject({ code: GrpcStatus.unavailable, details: "etcdserver: rpc not supported for learner" });
      expect(await etcd.get("basic/key").serializable(true).string()).toBe("hello");
    } finally {
      backend.learner = false;
    }
  });
});
