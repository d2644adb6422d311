import { describe, it, expect, beforeAll, afterAll, beforeEach } from "vitest";
import type * as grpc from "@grpc/grpc-js";
import { noop } from "cockatiel";
import { Etcd3, GRPCFailedPreconditionError, GRPCNotFoundError } from "etcd3";
import { NoLeaderError } from "../../server/errors.js";
import { BadMemberUrlsError, MemberExistsError, TooManyLearnersError } from "../backend.js";
import { registerEtcdServices } from "../etcd-services.js";
import { createGrpcServer, type GrpcServer } from "../grpc/server.js";
import { GrpcStatus } from "../grpc/status.js";
import { checkPeerUrls, ClusterService } from "./cluster-service.js";
import { callUnary, FAKE_CLUSTER_ID, FAKE_MEMBER_ID, FAKE_TERM, FakeClusterBackend, referenceClient } from "./test-support.js";

describe("etcd's peer URL rule", () => {
  it("accepts http and https URLs of the form host:port", () => {
    const good = ["http://127.0.0.1:2380", "https://node-1.example:12380", "http://[::1]:2380", " http://10.0.0.1:1 "];
    expect(checkPeerUrls(good)).toEqual(["http://127.0.0.1:2380", "https://node-1.example:12380", "http://[::1]:2380", "http://10.0.0.1:1"]);
  });

  it("refuses missing ports, paths, other schemes, garbage and an empty list", () => {
    for (const bad of [["http://127.0.0.1"], ["http://127.0.0.1:2380/path"], ["http://127.0.0.1:2380/"], ["tcp://127.0.0.1:2380"], ["127.0.0.1:2380"], ["http://a:99999"], ["http://a:1?x=1"], []]) {
      expect(() => checkPeerUrls(bad), JSON.stringify(bad)).toThrow(BadMemberUrlsError);
    }
  });
});

describe("the Cluster service, driven by etcd3 through the gRPC server", () => {
  let server: GrpcServer;
  let backend: FakeClusterBackend;
  let etcd: Etcd3;
  let client: grpc.Client;

  beforeAll(async () => {
    server = createGrpcServer();
    backend = new FakeClusterBackend();
    registerEtcdServices(server, { cluster: new ClusterService(backend) });
    const bound = await server.listen(0, "127.0.0.1");
    const address = `127.0.0.1:${bound.port}`;
    etcd = new Etcd3({ hosts: address, faultHandling: { host: () => noop, global: noop } });
    client = referenceClient(address, "Cluster");
  });

  beforeEach(() => {
    backend.reset();
  });

  afterAll(async () => {
    etcd.close();
    client.close();
    await server.close(1000);
  });

  it("lists members sorted by id with their client URLs, and a header without a revision", async () => {
    const list = await etcd.cluster.memberList({});
    expect(list.members.map((member) => BigInt(member.ID))).toEqual([2n, FAKE_MEMBER_ID]);
    expect(list.members[1]).toMatchObject({ name: "one", peerURLs: ["http://127.0.0.1:2380"], clientURLs: ["http://127.0.0.1:2379"], isLearner: false });
    expect(BigInt(list.header.cluster_id)).toBe(FAKE_CLUSTER_ID);
    expect(BigInt(list.header.member_id)).toBe(FAKE_MEMBER_ID);
    expect([list.header.revision, list.header.raft_term]).toEqual(["0", String(FAKE_TERM)]);
    expect(backend.barriers).toBe(0);
  });

  it("passes the read barrier for a linearizable member list", async () => {
    await etcd.cluster.memberList({ linearizable: true });
    expect(backend.barriers).toBe(1);
    backend.failNext = new NoLeaderError();
    const failure = await callUnary(client, "MemberList", { linearizable: true });
    expect(failure).toMatchObject({ code: GrpcStatus.unavailable, details: "etcdserver: no leader" });
  });

  it("adds a learner, promotes it once in sync, then removes it", async () => {
    const added = await etcd.cluster.memberAdd({ peerURLs: ["http://127.0.0.1:2390"], isLearner: true });
    expect(added.member).toMatchObject({ peerURLs: ["http://127.0.0.1:2390"], isLearner: true, name: "" });
    const id = BigInt(added.member.ID);
    expect(added.members.map((member) => BigInt(member.ID))).toContain(id);

    const early = await etcd.cluster.memberPromote({ ID: id.toString() }).catch((error: unknown) => error);
    expect(early).toBeInstanceOf(GRPCFailedPreconditionError);
    expect((early as Error).message).toContain("etcdserver: can only promote a learner member which is in sync with leader");

    backend.inSync.add(id);
    const promoted = await etcd.cluster.memberPromote({ ID: id.toString() });
    expect(promoted.members.find((member) => BigInt(member.ID) === id)?.isLearner).toBe(false);
    const again = await callUnary(client, "MemberPromote", { ID: id.toString() });
    expect(again).toMatchObject({ code: GrpcStatus.failedPrecondition, details: "etcdserver: can only promote a learner member" });

    const removed = await etcd.cluster.memberRemove({ ID: id.toString() });
    expect(removed.members.map((member) => BigInt(member.ID))).not.toContain(id);
    const gone = await etcd.cluster.memberRemove({ ID: id.toString() }).catch((error: unknown) => error);
    expect(gone).toBeInstanceOf(GRPCNotFoundError);
    expect((gone as Error).message).toContain("etcdserver: member not found");
  });

  it("updates a member's peer URLs", async () => {
    const updated = await etcd.cluster.memberUpdate({ ID: "2", peerURLs: ["http://127.0.0.1:3381"] });
    expect(updated.members.find((member) => member.ID === "2")?.peerURLs).toEqual(["http://127.0.0.1:3381"]);
  });

  it("answers membership refusals with etcd's errors", async () => {
    const taken = await callUnary(client, "MemberAdd", { peerURLs: ["http://127.0.0.1:2381"] });
    expect(taken).toMatchObject({ code: GrpcStatus.failedPrecondition, details: "etcdserver: Peer URLs already exists" });
    const badUrl = await callUnary(client, "MemberAdd", { peerURLs: ["not a url"] });
    expect(badUrl).toMatchObject({ code: GrpcStatus.invalidArgument, details: "etcdserver: given member URLs are invalid" });
    const badUpdate = await callUnary(client, "MemberUpdate", { ID: "2", peerURLs: [] });
    expect(badUpdate).toMatchObject({ code: GrpcStatus.invalidArgument, details: "etcdserver: given member URLs are invalid" });
    backend.failNext = new TooManyLearnersError(1);
    const learners = await callUnary(client, "MemberAdd", { peerURLs: ["http://127.0.0.1:2399"], isLearner: true });
    expect(learners).toMatchObject({ code: GrpcStatus.failedPrecondition, details: "etcdserver: too many learner members in cluster" });
    backend.failNext = new MemberExistsError(9n);
    const exists = await callUnary(client, "MemberAdd", { peerURLs: ["http://127.0.0.1:2399"] });
    expect(exists).toMatchObject({ code: GrpcStatus.failedPrecondition, details: "etcdserver: member ID already exist" });
    const missing = await callUnary(client, "MemberUpdate", { ID: "12345", peerURLs: ["http://127.0.0.1:2399"] });
    expect(missing).toMatchObject({ code: GrpcStatus.notFound, details: "etcdserver: member not found" });
    expect(backend.members()).toHaveLength(2);
  });

  it("refuses every Cluster RPC on a learner, as etcd", async () => {
    backend.learner = true;
    const list = await callUnary(client, "MemberList", {});
    expect(list).toMatchObject({ code: GrpcStatus.unavailable, details: "etcdserver: rpc not supported for learner" });
    const add = await callUnary(client, "MemberAdd", { peerURLs: ["http://127.0.0.1:2399"] });
    expect(add).toMatchObject({ code: GrpcStatus.unavailable, details: "etcdserver: rpc not supported for learner" });
    expect(backend.members()).toHaveLength(2);
  });
});
