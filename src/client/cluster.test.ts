import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { GrpcStatus } from "../api/mod.js";
import { Client } from "./client.js";
import { EtcdClientError, InvalidRequestError } from "./errors.js";
import { FakeCluster } from "./testing/fake-cluster.js";

describe("the Cluster and Maintenance clients against etcd's services", () => {
  let cluster: FakeCluster;
  let client: Client;

  beforeAll(async () => {
    cluster = await FakeCluster.start(2);
    cluster.setLeader(1);
    client = new Client({ endpoints: cluster.endpoints, commandTimeoutMs: 3000 });
  });

  afterAll(async () => {
    await client.close();
    await cluster.stop();
  });

  it("lists the members with bigint ids, names and URLs", async () => {
    const list = await client.cluster.memberList();
    expect(list.members.map((member) => member.ID)).toEqual([0x1000n, 0x1001n]);
    expect(list.members[0]).toMatchObject({ name: "m0", isLearner: false, clientURLs: [`http://${cluster.members[0].endpoint}`] });
    const linearizable = await client.cluster.memberList({ linearizable: true });
    expect(linearizable.header?.memberId).toBe(cluster.members[1].id);
  });

  it("adds a learner through the leader, refuses to promote it while it lags, promotes it once ready and removes it", async () => {
    const added = await client.cluster.memberAdd(["http://127.0.0.1:24000"], { isLearner: true });
    const id = added.member!.ID;
    expect(added.member).toMatchObject({ isLearner: true, peerURLs: ["http://127.0.0.1:24000"] });
    expect(cluster.members[1].clusterCalls).toEqual(["add"]);

    const shared = cluster.shared.members;
    const index = shared.findIndex((member) => member.id === id);
    shared[index] = { ...shared[index], name: "lagging" };
    const early = await client.cluster.memberPromote(id).catch((error: unknown) => error);
    expect(early).toMatchObject({ code: GrpcStatus.failedPrecondition, kind: "learnerNotReady" });

    shared[index] = { ...shared[index], name: "ready" };
    const promoted = await client.cluster.memberPromote(id);
    expect(promoted.members.find((member) => member.ID === id)?.isLearner).toBe(false);

    await client.cluster.memberUpdate(id, ["http://127.0.0.1:24001"]);
    expect(shared.find((member) => member.id === id)?.peerUrls).toEqual(["http://127.0.0.1:24001"]);

    const removed = await client.cluster.memberRemove(id);
    expect(removed.members.map((member) => member.ID)).not.toContain(id);
    const again = await client.cluster.memberRemove(id).catch((error: unknown) => error);
    expect(again).toBeInstanceOf(EtcdClientError);
    expect(again).toMatchObject({ code: GrpcStatus.notFound, kind: "memberNotFound" });
    // A refused membership change is an answer, not a lost connection: it was sent once.
    expect(cluster.members[1].clusterCalls.filter((call) => call === "remove")).toHaveLength(2);
  });

  it("answers membership refusals with etcd's kinds, and refuses bad ids and empty URL lists before sending", async () => {
    const clash = await client.cluster.memberAdd(["http://127.0.0.1:23800"]).catch((error: unknown) => error);
    expect(clash).toMatchObject({ kind: "peerUrlExists" });
    const badUrl = await client.cluster.memberAdd(["not a url"]).catch((error: unknown) => error);
    expect(badUrl).toMatchObject({ kind: "memberBadUrls" });
    await expect(client.cluster.memberAdd([])).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(client.cluster.memberRemove(0n)).rejects.toBeInstanceOf(InvalidRequestError);
    await expect(client.cluster.memberPromote(1n << 64n)).rejects.toBeInstanceOf(InvalidRequestError);
    const notLearner = await client.cluster.memberPromote(0x1000n).catch((error: unknown) => error);
    expect(notLearner).toMatchObject({ kind: "memberNotLearner" });
  });

  it("reports every endpoint's status, with the leader, term and indexes, and a failure for one that is down", async () => {
    await client.kv.put("status/key", "x");
    const statuses = await client.maintenance.statusOfEndpoints();
    expect(statuses.map((item) => item.endpoint)).toEqual(cluster.endpoints);
    for (const [index, item] of statuses.entries()) {
      expect(item.error).toBeUndefined();
      expect(item.status).toMatchObject({ version: "3.5.0", dbSize: 24_576, leader: cluster.members[1].id, raftTerm: 3, isLearner: false });
      expect(item.status!.header?.memberId).toBe(cluster.members[index].id);
      expect(item.status!.raftAppliedIndex).toBeLessThan(item.status!.raftIndex);
    }
    const one = await client.maintenance.status({ endpoint: cluster.members[0].endpoint });
    expect(one.header?.memberId).toBe(cluster.members[0].id);
    await expect(client.maintenance.status({ endpoint: "127.0.0.1:1" })).rejects.toThrow(/not one of the client's endpoints/);

    const partial = new Client({ endpoints: [cluster.members[0].endpoint, "127.0.0.1:1"], dialTimeoutMs: 500 });
    try {
      const mixed = await partial.maintenance.statusOfEndpoints();
      expect(mixed[0].status?.header?.memberId).toBe(cluster.members[0].id);
      expect(mixed[1].error).toMatchObject({ name: "EtcdClientError", code: GrpcStatus.unavailable });
    } finally {
      await partial.close();
    }
  });

  it("hashes the key-value history, the same on every endpoint", async () => {
    const first = await client.maintenance.hashKV(0, { endpoint: cluster.members[0].endpoint });
    const second = await client.maintenance.hashKV(0, { endpoint: cluster.members[1].endpoint });
    expect(first.hash).toBe(second.hash);
    expect(first.hashRevision).toBeGreaterThan(0);
    await client.kv.put("status/key", "changed");
    expect((await client.maintenance.hashKV()).hash).not.toBe(first.hash);
    await expect(client.maintenance.hashKV(-1)).rejects.toBeInstanceOf(InvalidRequestError);
  });

  it("streams a snapshot whose bytes arrive in order, and moves to the next endpoint when the first refuses connections", async () => {
    const pieces = [Buffer.alloc(300_000, 1), Buffer.alloc(10, 2)];
    cluster.members[1].snapshotPieces = pieces;
    const received: Buffer[] = [];
    let last = -1;
    for await (const message of client.maintenance.snapshot({ endpoint: cluster.members[1].endpoint })) {
      received.push(Buffer.from(message.blob));
      last = message.remainingBytes;
    }
    expect(Buffer.concat(received).equals(Buffer.concat(pieces))).toBe(true);
    expect(received.length).toBeGreaterThan(1);
    expect(last).toBe(0);

    const fallback = new Client({ endpoints: ["127.0.0.1:1", cluster.members[0].endpoint], dialTimeoutMs: 500 });
    try {
      const chunks: Buffer[] = [];
      for await (const message of fallback.maintenance.snapshot()) chunks.push(Buffer.from(message.blob));
      expect(Buffer.concat(chunks).toString()).toBe("cairn-snapshot-bytes");
    } finally {
      await fallback.close();
    }
  });

  it("stops a snapshot stream when the reader stops early", async () => {
    cluster.members[0].snapshotPieces = Array.from({ length: 64 }, () => Buffer.alloc(256 * 1024, 7));
    let messages = 0;
    for await (const message of client.maintenance.snapshot({ endpoint: cluster.members[0].endpoint })) {
      expect(message.blob.length).toBeGreaterThan(0);
      if (++messages === 2) break;
    }
    expect(messages).toBe(2);
    // The client still works after the cancelled stream.
    expect((await client.maintenance.status({ endpoint: cluster.members[0].endpoint })).version).toBe("3.5.0");
  });

  it("moves leadership through the leader, and reports a bad transferee with etcd's kind", async () => {
    await client.maintenance.moveLeader(0x1000n);
    expect(cluster.members[1].clusterCalls).toContain("moveLeader");
    const bad = await client.maintenance.moveLeader(0x9999n).catch((error: unknown) => error);
    expect(bad).toMatchObject({ kind: "badLeaderTransferee" });
  });
});
