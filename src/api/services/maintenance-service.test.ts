import { describe, it, expect, beforeAll, afterAll } from "vitest";
import type * as grpc from "@grpc/grpc-js";
import { noop } from "cockatiel";
import { Etcd3 } from "etcd3";
import { nodeId } from "../../lib/ids.js";
import { NotLeaderError, RequestTimeoutError } from "../../server/errors.js";
import { AlarmAction, AlarmType } from "../cold-messages.js";
import { registerEtcdServices } from "../etcd-services.js";
import { createGrpcServer, type CallContext, type GrpcServer } from "../grpc/server.js";
import { GrpcStatus } from "../grpc/status.js";
import { KvService } from "./kv-service.js";
import { alarmText, MaintenanceService, SNAPSHOT_MESSAGE_BYTES_MAX } from "./maintenance-service.js";
import { callUnary, FAKE_MEMBER_ID, FAKE_TERM, FakeKvBackend, FakeMaintenanceBackend, referenceClient } from "./test-support.js";

interface SnapshotMessage {
  header: { revision: string } | null;
  remaining_bytes: string;
  blob: Buffer;
}

describe("the Maintenance service, driven by etcd3 and grpc-js through the gRPC server", () => {
  let server: GrpcServer;
  let kv: FakeKvBackend;
  let backend: FakeMaintenanceBackend;
  let etcd: Etcd3;
  let client: grpc.Client;

  beforeAll(async () => {
    kv = new FakeKvBackend();
    backend = new FakeMaintenanceBackend(kv);
    server = createGrpcServer();
    registerEtcdServices(server, { kv: new KvService(kv), maintenance: new MaintenanceService(backend) });
    const bound = await server.listen(0, "127.0.0.1");
    const address = `127.0.0.1:${bound.port}`;
    etcd = new Etcd3({ hosts: address, faultHandling: { host: () => noop, global: noop } });
    client = referenceClient(address, "Maintenance");
    for (let index = 0; index < 4; index++) await etcd.put(`maintained/${index}`).value(String(index));
  });

  afterAll(async () => {
    etcd.close();
    client.close();
    await server.close(1000);
  });

  it("answers Status with etcd's fields and the current revision in the header", async () => {
    const status = await etcd.maintenance.status();
    expect(status).toMatchObject({
      version: "3.5.0", dbSize: "8192", dbSizeInUse: "4096", raftIndex: "12", raftAppliedIndex: "11", raftTerm: String(FAKE_TERM), errors: [],
    });
    expect(BigInt(status.leader)).toBe(FAKE_MEMBER_ID);
    expect(Number(status.header.revision)).toBe(kv.mvcc.currentRevision());
  });

  it("lists a missing leader and every alarm among Status errors, as etcd", async () => {
    backend.leader = 0n;
    backend.active.push({ memberId: 2n, alarm: AlarmType.noSpace });
    try {
      const status = await etcd.maintenance.status();
      expect(status.errors).toEqual(["etcdserver: no leader", alarmText({ memberId: 2n, alarm: AlarmType.noSpace })]);
      expect(status.errors[1]).toBe("memberID:2 alarm:NOSPACE ");
    } finally {
      backend.leader = FAKE_MEMBER_ID;
      backend.active.length = 0;
    }
  });

  it("hashes the keyspace at the current and at a past revision, and refuses a compacted or future one", async () => {
    const current = kv.mvcc.currentRevision();
    // etcd3's .proto predates hash_revision; the service's own answer shows it.
    const now = await callUnary(client, "HashKV", { revision: 0 });
    expect(now).toMatchObject({ hash: kv.mvcc.hashKv(0).hash, compact_revision: "0", header: { revision: String(current) } });
    const past = await callUnary(client, "HashKV", { revision: current - 1 });
    expect(past).toMatchObject({ hash: kv.mvcc.hashKv(current - 1).hash, header: { revision: String(current) } });
    const direct = await new MaintenanceService(backend).hashKV({ revision: current - 1 }, { signal: new AbortController().signal } as CallContext);
    expect([direct.hashRevision, direct.compactRevision]).toEqual([current - 1, 0]);
    expect((past as { hash: number }).hash).not.toBe((now as { hash: number }).hash);
    const future = await callUnary(client, "HashKV", { revision: current + 5 });
    expect(future).toMatchObject({ code: GrpcStatus.outOfRange, details: "etcdserver: mvcc: required revision is a future revision" });
    const hash = await callUnary(client, "Hash", {});
    expect(hash).toMatchObject({ hash: kv.mvcc.hashKv(0).hash });
    await etcd.kv.compact({ revision: current - 1 });
    const compacted = await callUnary(client, "HashKV", { revision: current - 2 });
    expect(compacted).toMatchObject({ code: GrpcStatus.outOfRange, details: "etcdserver: mvcc: required revision has been compacted" });
    expect(await callUnary(client, "HashKV", { revision: 0 })).toMatchObject({ compact_revision: String(current - 1) });
  });

  it("gets, activates and deactivates alarms", async () => {
    const raised = await etcd.maintenance.alarm({ action: "Activate", memberID: "2", alarm: "Nospace" });
    expect(raised.alarms).toEqual([{ memberID: "2", alarm: "Nospace" }]);
    const twice = await etcd.maintenance.alarm({ action: "Activate", memberID: "2", alarm: "Nospace" });
    expect(twice.alarms).toEqual([]);
    expect((await etcd.maintenance.alarm({ action: "Get", memberID: "0", alarm: "None" })).alarms).toEqual([{ memberID: "2", alarm: "Nospace" }]);
    expect((await etcd.maintenance.alarm({ action: "Get", memberID: "0", alarm: "Corrupt" })).alarms).toEqual([]);
    const cleared = await etcd.maintenance.alarm({ action: "Deactivate", memberID: "2", alarm: "Nospace" });
    expect(cleared.alarms).toEqual([{ memberID: "2", alarm: "Nospace" }]);
    expect(backend.alarms()).toEqual([]);
    const nonsense = await callUnary(client, "Alarm", { action: 7, alarm: AlarmType.noSpace });
    expect(nonsense).toMatchObject({ code: GrpcStatus.invalidArgument, details: "cairn: unknown alarm action 7" });
    const none = await callUnary(client, "Alarm", { action: AlarmAction.activate, alarm: AlarmType.none });
    expect(none).toMatchObject({ code: GrpcStatus.invalidArgument });
  });

  it("defragments, and moves leadership only to a voter", async () => {
    await etcd.maintenance.defragment({});
    expect(backend.defragmented).toBe(1);
    await etcd.maintenance.moveLeader({ targetID: "2" });
    expect(backend.movedTo).toEqual([2n]);
    const bad = await callUnary(client, "MoveLeader", { targetID: "77" });
    expect(bad).toMatchObject({ code: GrpcStatus.failedPrecondition, details: "etcdserver: bad leader transferee" });
    backend.failNext = new NotLeaderError(nodeId(2n), "move leader");
    const notLeader = await callUnary(client, "MoveLeader", { targetID: "2" });
    expect(notLeader).toMatchObject({ code: GrpcStatus.failedPrecondition, details: "etcdserver: not leader" });
    backend.failNext = new RequestTimeoutError("transfer took too long");
    const slow = await callUnary(client, "MoveLeader", { targetID: "2" });
    expect(slow).toMatchObject({ code: GrpcStatus.unavailable, details: "etcdserver: request timed out" });
  });

  it("streams the snapshot in bounded messages, the header on the first and remaining_bytes 0 on the last", async () => {
    const first = Buffer.alloc(SNAPSHOT_MESSAGE_BYTES_MAX * 2 + 100, 1);
    const second = Buffer.from("tail");
    backend.snapshotPieces = [first, second];
    const stream = (client as unknown as { Snapshot(request: object): AsyncIterable<SnapshotMessage> }).Snapshot({});
    const messages: SnapshotMessage[] = [];
    for await (const message of stream) messages.push(message);
    expect(messages.map((message) => message.blob.length)).toEqual([SNAPSHOT_MESSAGE_BYTES_MAX, SNAPSHOT_MESSAGE_BYTES_MAX, 100, 4]);
    expect(Buffer.concat(messages.map((message) => message.blob)).equals(Buffer.concat([first, second]))).toBe(true);
    expect(Number(messages[0].header?.revision)).toBe(kv.mvcc.currentRevision());
    expect(messages.slice(1).every((message) => message.header === null)).toBe(true);
    const remaining = messages.map((message) => Number(message.remaining_bytes));
    expect(remaining.at(-1)).toBe(0);
    expect(remaining.slice(0, -1).every((value, index, all) => value > 0 && (index === 0 || value <= all[index - 1]))).toBe(true);
  });

  it("serves Status on a learner and refuses the other Maintenance RPCs there, as etcd", async () => {
    backend.learner = true;
    try {
      expect((await etcd.maintenance.status()).version).toBe("3.5.0");
      const alarm = await callUnary(client, "Alarm", { action: AlarmAction.get });
      expect(alarm).toMatchObject({ code: GrpcStatus.unavailable, details: "etcdserver: rpc not supported for learner" });
    } finally {
      backend.learner = false;
    }
  });

  it("answers Downgrade with UNIMPLEMENTED", async () => {
    const downgrade = await callUnary(client, "Downgrade", { action: 0, version: "3.4" });
    expect(downgrade).toMatchObject({ code: GrpcStatus.unimplemented, details: "cairn: cluster downgrade is not supported" });
  });
});
