import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { noop } from "cockatiel";
import {
  Etcd3, EtcdLeaseInvalidError, GRPCDeadlineExceededError, GRPCInvalidArgumentError, GRPCNotImplementedError,
  GRPCOutOfRangeError, GRPCResourceExhastedError, GRPCUnavailableError,
} from "etcd3";
import { createGrpcServer, type GrpcServer } from "./grpc/server.js";
import { GrpcStatus } from "./grpc/status.js";
import { registerEtcdServices } from "./etcd-services.js";
import { EtcdError } from "./etcd-errors.js";
import type { ClusterHandler, LeaseHandler, MaintenanceHandler } from "./handlers.js";
import type { Member } from "./cold-messages.js";
import type { CallContext } from "./grpc/server.js";
import type { RangeRequest, RangeResponse } from "./protobuf/messages.js";
import { assert } from "../lib/assert.js";
import { MemoryKvHandler, TEST_CLUSTER_ID, TEST_MEMBER_ID } from "./testing/memory-kv-handler.js";

const REQUEST_BYTES_MAX = 4096;
const RECEIVE_MESSAGE_BYTES_MAX = 16_384;
const TXN_OPS_MAX = 8;
const BIG_MEMBER_ID = 0xffff_ffff_ffff_fff1n;

/** A KV handler with a few keys that misbehave on purpose. */
class TestKv extends MemoryKvHandler {
  hangSignalAborted: Promise<unknown> | undefined;

  override async range(request: RangeRequest, context?: CallContext): Promise<RangeResponse> {
    assert(context !== undefined, "the server always passes a call context");
    const key = Buffer.from(request.key).toString();
    if (key === "no-leader") throw new EtcdError("noLeader");
    if (key === "hang") {
      this.hangSignalAborted = new Promise((resolve) => context.signal.addEventListener("abort", () => resolve(context.signal.reason), { once: true }));
      return new Promise(() => undefined);
    }
    return super.range(request);
  }
}

const members: Member[] = [
  { ID: BIG_MEMBER_ID, name: "one", peerURLs: ["http://127.0.0.1:2380"], clientURLs: ["http://127.0.0.1:2379"], isLearner: false },
  { ID: 2n, name: "two", peerURLs: ["http://127.0.0.1:2381"], clientURLs: [], isLearner: true },
];

const header = { clusterId: TEST_CLUSTER_ID, memberId: TEST_MEMBER_ID, revision: 9, raftTerm: 3 };

const cluster: ClusterHandler = {
  memberList: async () => ({ header, members }),
  memberAdd: async (request) => ({ header, member: { ID: 5n, name: "", peerURLs: request.peerURLs, clientURLs: [], isLearner: request.isLearner }, members }),
  memberRemove: async (request) => {
    if (request.ID !== BIG_MEMBER_ID) throw new EtcdError("memberNotFound");
    return { header, members: members.slice(1) };
  },
  memberUpdate: async () => ({ header, members }),
  memberPromote: async () => {
    throw new EtcdError("memberNotLearner");
  },
};

const maintenance: MaintenanceHandler = {
  status: async () => ({
    header, version: "3.5.0-cairn", dbSize: 123_456, leader: BIG_MEMBER_ID, raftIndex: 77, raftTerm: 3, raftAppliedIndex: 76,
    errors: [], dbSizeInUse: 100_000, isLearner: false,
  }),
  alarm: async () => ({ header, alarms: [{ memberID: BIG_MEMBER_ID, alarm: 1 }] }),
  defragment: async () => ({ header }),
  hash: async () => ({ header, hash: 42 }),
  hashKV: async (request) => ({ header, hash: 0xffff_ffff, compactRevision: request.revision, hashRevision: 9 }),
  snapshot: async (_request, responses) => {
    await responses.send({ header, remainingBytes: 3, blob: Buffer.from("abc") });
    await responses.send({ remainingBytes: 0, blob: Buffer.from("def") });
  },
  moveLeader: async () => ({ header }),
  downgrade: async (request) => ({ header, version: request.version }),
};

const lease: LeaseHandler = {
  leaseGrant: async (request) => ({ header, ID: request.ID === 0n ? 0x7fff_ffff_ffff_fff0n : request.ID, TTL: request.TTL, error: "" }),
  leaseRevoke: async () => {
    throw new EtcdError("leaseNotFound");
  },
  leaseKeepAlive: async (requests, responses) => {
    for await (const request of requests) await responses.send({ header, ID: request.ID, TTL: 10 });
  },
  leaseTimeToLive: async (request) => ({ header, ID: request.ID, TTL: -1, grantedTTL: 0, keys: [] }),
  leaseLeases: async () => ({ header, leases: [{ ID: 1n }, { ID: 0x7fff_ffff_ffff_ffffn }] }),
};

// The reference client: grpc-js with the .proto files the etcd3 package ships.
const etcd3Proto = createRequire(import.meta.url).resolve("etcd3/proto/rpc.proto");
const definition = protoLoader.loadSync(etcd3Proto, { keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true });
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const etcdserverpb = (grpc.loadPackageDefinition(definition) as any).etcdserverpb;

type Callback = (error: grpc.ServiceError | null, response: Record<string, unknown>) => void;
function callUnary(client: grpc.Client, method: string, request: object, options: grpc.CallOptions = {}): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, (request: object, options: grpc.CallOptions, callback: Callback) => void>)[method](request, options, (error, response) =>
      error ? reject(error) : resolve(response));
  });
}

describe("etcd services on the http2 gRPC server", () => {
  let server: GrpcServer;
  let kv: TestKv;
  let etcd: Etcd3;
  let address: string;
  const clients: grpc.Client[] = [];
  const reference = (service: string): grpc.Client => {
    const client = new etcdserverpb[service](address, grpc.credentials.createInsecure()) as grpc.Client;
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    kv = new TestKv();
    server = createGrpcServer({ receiveMessageBytesMax: RECEIVE_MESSAGE_BYTES_MAX });
    registerEtcdServices(server, { kv, cluster, maintenance, lease }, { requestBytesMax: REQUEST_BYTES_MAX, txnOpsMax: TXN_OPS_MAX });
    const bound = await server.listen(0);
    address = `127.0.0.1:${bound.port}`;
    // No retries and no circuit breaker: each test sees exactly the server's answer.
    etcd = new Etcd3({ hosts: address, faultHandling: { host: () => noop, global: noop } });
  });

  afterAll(async () => {
    etcd.close();
    for (const client of clients) client.close();
    await server.close(1000);
  });

  it("lets etcd3 put, get, range over a prefix and delete", async () => {
    await etcd.put("fruit/apple").value("red");
    await etcd.put("fruit/banana").value("yellow");
    await etcd.put("vegetable/leek").value("green");
    expect(await etcd.get("fruit/apple").string()).toBe("red");
    expect(await etcd.getAll().prefix("fruit/").strings()).toEqual({ "fruit/apple": "red", "fruit/banana": "yellow" });
    expect(await etcd.getAll().prefix("fruit/").count()).toBe(2);
    expect(await etcd.getAll().prefix("fruit/").limit(1).keys()).toEqual(["fruit/apple"]);
    const deleted = await etcd.delete().prefix("fruit/");
    expect(deleted.deleted).toBe("2");
    expect(await etcd.get("fruit/apple").string()).toBeNull();
    expect(await etcd.get("vegetable/leek").string()).toBe("green");
  });

  it("lets etcd3 run a Txn whose compare decides the branch", async () => {
    await etcd.put("txn/key").value("v1");
    const taken = await etcd.if("txn/key", "Value", "==", "v1").then(etcd.put("txn/key").value("v2")).else(etcd.put("txn/other").value("x")).commit();
    expect(taken.succeeded).toBe(true);
    const missed = await etcd.if("txn/key", "Value", "==", "v1").then(etcd.put("txn/key").value("v3")).else(etcd.get("txn/key")).commit();
    expect(missed.succeeded).toBe(false);
    expect(Buffer.from(missed.responses[0].response_range?.kvs[0].value ?? "").toString()).toBe("v2");
    expect(await etcd.get("txn/key").string()).toBe("v2");
  });

  it("carries 64-bit cluster and member ids in the response header without losing bits", async () => {
    const response = await etcd.get("anything").exec();
    expect(BigInt(response.header.cluster_id)).toBe(TEST_CLUSTER_ID);
    expect(BigInt(response.header.member_id)).toBe(TEST_MEMBER_ID);
    expect(Number(response.header.raft_term)).toBe(7);
  });

  it("answers a read at a compacted revision with OUT_OF_RANGE and etcd's exact text", async () => {
    for (let index = 0; index < 5; index++) await etcd.put("compact/key").value(String(index));
    await etcd.kv.compact({ revision: kv.revision - 1 });
    const failure = await etcd.get("compact/key").revision(2).string().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(GRPCOutOfRangeError);
    expect((failure as Error).message).toContain("etcdserver: mvcc: required revision has been compacted");
    const future = await etcd.get("compact/key").revision(kv.revision + 100).string().catch((error: unknown) => error);
    expect(future).toBeInstanceOf(GRPCOutOfRangeError);
    expect((future as Error).message).toContain("etcdserver: mvcc: required revision is a future revision");
  });

  it("refuses a Txn with more operations than the limit with etcd's error", async () => {
    let builder = etcd.if("ops/key", "Version", "==", 0);
    const puts = Array.from({ length: TXN_OPS_MAX + 1 }, (_, index) => etcd.put(`ops/${index}`).value("x"));
    builder = builder.then(...puts);
    const failure = await builder.commit().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(GRPCInvalidArgumentError);
    expect((failure as Error).message).toContain("etcdserver: too many operations in txn request");
    expect(await etcd.get("ops/0").string()).toBeNull();
  });

  it("refuses a Txn branch that writes the same key twice", async () => {
    const failure = await etcd.if("dup/key", "Version", "==", 0)
      .then(etcd.put("dup/key").value("a"), etcd.put("dup/key").value("b"))
      .commit().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(GRPCInvalidArgumentError);
    expect((failure as Error).message).toContain("etcdserver: duplicate key given in txn request");
  });

  it("refuses a Put above the request limit with 'etcdserver: request is too large'", async () => {
    const failure = await etcd.put("big").value(Buffer.alloc(REQUEST_BYTES_MAX + 1, 1)).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(GRPCInvalidArgumentError);
    expect((failure as Error).message).toContain("etcdserver: request is too large");
  });

  it("refuses a message above the receive limit with RESOURCE_EXHAUSTED, then keeps serving", async () => {
    const failure = await etcd.put("huge").value(Buffer.alloc(RECEIVE_MESSAGE_BYTES_MAX + 10, 1)).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(GRPCResourceExhastedError);
    expect((failure as Error).message).toMatch(/received message larger than max \(\d+ vs\. 16384\)/);
    await etcd.put("after-huge").value("fine");
    expect(await etcd.get("after-huge").string()).toBe("fine");
  });

  it("passes 'etcdserver: no leader' through as UNAVAILABLE, which etcd3 treats as retryable", async () => {
    const failure = await etcd.get("no-leader").string().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(GRPCUnavailableError);
    expect((failure as Error).message).toContain("etcdserver: no leader");
  });

  it("answers an empty key with 'etcdserver: key is not provided'", async () => {
    const failure = await callUnary(reference("KV"), "Put", { key: Buffer.alloc(0), value: Buffer.from("v") }).catch((error: grpc.ServiceError) => error);
    expect(failure).toMatchObject({ code: GrpcStatus.invalidArgument, details: "etcdserver: key is not provided" });
  });

  it("maps 'requested lease not found' to etcd3's EtcdLeaseInvalidError", async () => {
    const failure = await etcd.leaseClient.leaseRevoke({ ID: "12345" }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(EtcdLeaseInvalidError);
  });

  it("turns the client's deadline into DEADLINE_EXCEEDED and aborts the handler's signal", async () => {
    const started = Date.now();
    const failure = await etcd.get("hang").options({ deadline: Date.now() + 150 }).string().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(GRPCDeadlineExceededError);
    expect(Date.now() - started).toBeLessThan(5000);
    const reason = await kv.hangSignalAborted;
    expect(reason).toMatchObject({ code: GrpcStatus.deadlineExceeded });
  });

  it("serves Cluster RPCs through protobufjs codecs with 64-bit member ids intact", async () => {
    const list = await etcd.cluster.memberList({});
    expect(list.members.map((member) => BigInt(member.ID))).toEqual([BIG_MEMBER_ID, 2n]);
    expect(list.members[1].isLearner).toBe(true);
    expect(list.members[0].clientURLs).toEqual(["http://127.0.0.1:2379"]);
    const added = await etcd.cluster.memberAdd({ peerURLs: ["http://127.0.0.1:2390"], isLearner: true });
    expect(added.member.peerURLs).toEqual(["http://127.0.0.1:2390"]);
    expect(added.member.isLearner).toBe(true);
    const removed = await etcd.cluster.memberRemove({ ID: BIG_MEMBER_ID.toString() });
    expect(removed.members).toHaveLength(1);
    const missing = await etcd.cluster.memberRemove({ ID: "99" }).catch((error: unknown) => error);
    expect((missing as Error).message).toContain("etcdserver: member not found");
  });

  it("serves Maintenance Status, HashKV and a streamed Snapshot", async () => {
    const status = await etcd.maintenance.status();
    expect(BigInt(status.leader)).toBe(BIG_MEMBER_ID);
    expect(status.dbSize).toBe("123456");
    expect(status.version).toBe("3.5.0-cairn");
    // etcd3's own hashKV() calls a method name grpc-js does not generate, so the reference client asks.
    const hash = await callUnary(reference("Maintenance"), "HashKV", { revision: 5 });
    expect(hash.hash).toBe(0xffff_ffff);
    expect(hash.compact_revision).toBe("5");
    const client = reference("Maintenance") as unknown as { Snapshot(request: object): grpc.ClientReadableStream<{ blob: Buffer; remaining_bytes: string }> };
    const chunks: Buffer[] = [];
    for await (const chunk of client.Snapshot({}) as AsyncIterable<{ blob: Buffer; remaining_bytes: string }>) chunks.push(Buffer.from(chunk.blob));
    expect(Buffer.concat(chunks).toString()).toBe("abcdef");
  });

  it("serves LeaseGrant and the LeaseKeepAlive stream with 64-bit lease ids", async () => {
    const granted = await etcd.leaseClient.leaseGrant({ TTL: 10 });
    expect(BigInt(granted.ID)).toBe(0x7fff_ffff_ffff_fff0n);
    const client = reference("Lease");
    const call = (client as unknown as { LeaseKeepAlive(): grpc.ClientDuplexStream<object, { ID: string; TTL: string }> }).LeaseKeepAlive();
    const answers: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on("data", (response) => answers.push(response.ID));
      call.on("end", resolve);
      call.on("error", reject);
    });
    for (const id of ["1", "9223372036854775807", "3"]) call.write({ ID: id });
    call.end();
    await done;
    expect(answers).toEqual(["1", "9223372036854775807", "3"]);
  });

  it("answers Auth and unbuilt services with UNIMPLEMENTED", async () => {
    const auth = await etcd.auth.authEnable({}).catch((error: unknown) => error);
    expect(auth).toBeInstanceOf(GRPCNotImplementedError);
    expect((auth as Error).message).toContain("etcdserverpb.Auth/AuthEnable is not implemented by Cairn yet");
    const watchClient = reference("Watch");
    const watch = (watchClient as unknown as { Watch(): grpc.ClientDuplexStream<object, object> }).Watch();
    const status = await new Promise<grpc.StatusObject>((resolve) => {
      watch.on("status", resolve);
      watch.on("error", () => undefined);
      watch.on("data", () => undefined);
    });
    expect(status.code).toBe(GrpcStatus.unimplemented);
    expect(status.details).toContain("etcdserverpb.Watch/Watch is not implemented by Cairn yet");
  });

  it("answers a method that does not exist with UNIMPLEMENTED and etcd's unknown-method text", async () => {
    const client = new grpc.Client(address, grpc.credentials.createInsecure());
    clients.push(client);
    const failure = await new Promise<grpc.ServiceError>((resolve) => {
      client.makeUnaryRequest("/etcdserverpb.KV/Nope", (value: Buffer) => value, (value: Buffer) => value, Buffer.alloc(0), (error) => resolve(error as grpc.ServiceError));
    });
    expect(failure.code).toBe(GrpcStatus.unimplemented);
    expect(failure.details).toBe("unknown method Nope for service etcdserverpb.KV");
    const unknownService = await new Promise<grpc.ServiceError>((resolve) => {
      client.makeUnaryRequest("/nope.Service/Call", (value: Buffer) => value, (value: Buffer) => value, Buffer.alloc(0), (error) => resolve(error as grpc.ServiceError));
    });
    expect(unknownService.details).toBe("unknown service nope.Service");
  });
});
