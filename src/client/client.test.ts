import { describe, it, expect, beforeEach, afterEach } from "vitest";
import { EtcdError, GrpcStatus, type CallContext } from "../api/mod.js";
import { Client } from "./client.js";
import { ClientClosedError, EtcdClientError, IndeterminateError, InvalidEndpointError, TransportError } from "./errors.js";
import { compare, op } from "./kv.js";
import { FakeCluster, refusedEndpoint, silentEndpoint, type FakeMember, type KvMethodName } from "./testing/fake-cluster.js";

const text = (bytes: Uint8Array | undefined): string => Buffer.from(bytes ?? []).toString();

/** Holds the call until the server aborts it (deadline, cancel, connection lost). */
function hangUntilAborted(context: CallContext): Promise<never> {
  return new Promise((_, reject) => {
    if (context.signal.aborted) reject(context.signal.reason);
    context.signal.addEventListener("abort", () => reject(context.signal.reason), { once: true });
  });
}

/** On `method`, this member cuts every client connection once the request has arrived, then holds the call. */
function dropConnectionOn(member: FakeMember, method: KvMethodName): void {
  member.interceptor = (called, context) => {
    if (called !== method) return;
    setImmediate(() => member.relay.cutAll());
    return hangUntilAborted(context);
  };
}

describe("the client over several endpoints", () => {
  let cluster: FakeCluster;
  const clients: Client[] = [];
  const connect = (endpoints: string[], options: { commandTimeoutMs?: number } = {}): Client => {
    const client = new Client({ endpoints, commandTimeoutMs: options.commandTimeoutMs ?? 3000, dialTimeoutMs: 1000 });
    clients.push(client);
    return client;
  };

  beforeEach(async () => {
    cluster = await FakeCluster.start(3);
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await cluster.stop();
  });

  it("finds the leader through Status and sends writes and linearizable reads to it", async () => {
    cluster.setLeader(2);
    const [, , leader] = cluster.members;
    const client = connect(cluster.endpoints);
    await client.kv.put("routed", "1");
    await client.kv.delete("routed");
    await client.kv.get("routed");
    await client.kv.transaction().compare(compare.version("routed", "=", 0)).success(op.put("routed", "2")).commit();
    expect([leader.received.put, leader.received.deleteRange, leader.received.range, leader.received.txn]).toEqual([1, 1, 1, 1]);
    expect(cluster.received("put") + cluster.received("range") + cluster.received("txn")).toBe(3);
    expect(await client.leaderEndpoint()).toBe(leader.endpoint);
    expect(client.memberIds().get(cluster.members[0].endpoint)).toBe(cluster.members[0].id);
  });

  it("follows a new leader once an answer shows a newer term", async () => {
    cluster.setLeader(2);
    const client = connect(cluster.endpoints);
    await client.kv.put("term", "a");
    expect(cluster.members[2].received.put).toBe(1);
    cluster.setLeader(1);
    for (const member of cluster.members) member.term = 4;
    // This write still goes to the old leader (the fake accepts it); its header shows term 4.
    await client.kv.put("term", "b");
    await client.kv.put("term", "c");
    expect(cluster.members[1].received.put).toBe(1);
    expect(cluster.members[2].received.put).toBe(2);
  });

  it("does not wait for an endpoint that never answers once the leader has named itself", async () => {
    const silent = await silentEndpoint();
    try {
      cluster.setLeader(1);
      const client = connect([silent.endpoint, cluster.members[0].endpoint, cluster.members[1].endpoint], { commandTimeoutMs: 5000 });
      const started = Date.now();
      await client.kv.put("quick", "1");
      expect(Date.now() - started).toBeLessThan(1000);
      expect(cluster.members[1].received.put).toBe(1);
    } finally {
      silent.close();
    }
  });

  it("sends writes to any endpoint when the leader is not among them, and discovers once per interval", async () => {
    cluster.setLeader(2);
    const client = connect([cluster.members[0].endpoint, cluster.members[1].endpoint]);
    await client.kv.put("elsewhere", "1");
    await client.kv.put("elsewhere", "2");
    expect(cluster.members[0].received.put + cluster.members[1].received.put).toBe(2);
    expect(cluster.members[0].statusCalls + cluster.members[1].statusCalls).toBe(2);
    expect(await client.leaderEndpoint()).toBeUndefined();
  });

  it("serves serializable reads from the endpoint that answered last, without looking for the leader", async () => {
    cluster.setLeader(2);
    const client = connect(cluster.endpoints);
    await client.kv.get("any", { serializable: true });
    await client.kv.get("any", { serializable: true });
    expect(cluster.members[0].received.range).toBe(2);
    expect(cluster.members.reduce((sum, member) => sum + member.statusCalls, 0)).toBe(0);
  });

  it("fails over to the next endpoint when a connection is refused before the request is sent", async () => {
    const refused = await refusedEndpoint();
    const client = connect([refused, cluster.members[0].endpoint]);
    const put = await client.kv.put("failover", "1");
    expect(put.header?.memberId).toBe(cluster.members[0].id);
    expect(cluster.received("put")).toBe(1);
  });

  it("moves writes off a leader whose port refuses connections, sending each write once", async () => {
    cluster.setLeader(2);
    const client = connect(cluster.endpoints);
    await client.kv.put("before", "1");
    cluster.members[2].relay.close();
    // Let the client see its old connection close: a write racing the close itself could have been sent, and would be indeterminate.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await client.kv.put("after", "1");
    expect(cluster.members[2].received.put).toBe(1);
    expect(cluster.received("put")).toBe(2);
    expect(text((await client.kv.get("after", { serializable: true })).kvs[0].value)).toBe("1");
  });

  it("reports UNAVAILABLE with the transport failure as cause when no endpoint can be reached", async () => {
    const client = connect([await refusedEndpoint(), await refusedEndpoint()]);
    const failure = await client.kv.put("nowhere", "1").catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(EtcdClientError);
    expect(failure).toMatchObject({ code: GrpcStatus.unavailable });
    expect((failure as Error).cause).toBeInstanceOf(TransportError);
    expect(((failure as Error).cause as TransportError).requestSent).toBe(false);
  });

  it("reports a write whose connection drops after sending as indeterminate, and does not send it again", async () => {
    const client = connect(cluster.endpoints);
    dropConnectionOn(cluster.members[0], "put");
    const failure = await client.kv.put("lost", "1").catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(IndeterminateError);
    expect((failure as Error).message).toContain("may or may not have been applied");
    expect((failure as Error).cause).toMatchObject({ name: "TransportError", requestSent: true });
    // The other two members were reachable, and still nobody saw the write a second time.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(cluster.received("put")).toBe(1);
  });

  it("looks for the leader again after a write to it ended with a lost connection", async () => {
    cluster.setLeader(0);
    const client = connect(cluster.endpoints);
    dropConnectionOn(cluster.members[0], "put");
    await expect(client.kv.put("first", "1")).rejects.toBeInstanceOf(IndeterminateError);
    cluster.members[0].interceptor = undefined;
    cluster.setLeader(1);
    await client.kv.put("second", "1");
    expect(cluster.members[1].received.put).toBe(1);
    expect(cluster.members[0].received.put).toBe(1);
  });

  it("treats a txn that writes like a put, and one that only reads like a read, when the connection drops", async () => {
    const client = connect(cluster.endpoints);
    dropConnectionOn(cluster.members[0], "txn");
    const writing = await client.kv.txn({ compare: [], success: [op.put("t", "1")], failure: [] }).catch((error: unknown) => error);
    expect(writing).toBeInstanceOf(IndeterminateError);
    expect(cluster.received("txn")).toBe(1);
    const reading = await client.kv.txn({ compare: [], success: [op.get("t")], failure: [] });
    expect(reading.succeeded).toBe(true);
    expect(cluster.received("txn")).toBe(3);
  });

  it("retries a read on another endpoint when its connection drops", async () => {
    const client = connect(cluster.endpoints);
    await client.kv.put("read-me", "yes");
    dropConnectionOn(cluster.members[0], "range");
    const got = await client.kv.get("read-me");
    expect(text(got.kvs[0].value)).toBe("yes");
    expect(cluster.members[0].received.range).toBe(1);
    expect(cluster.members[1].received.range).toBe(1);
  });

  it("reports the server's 'request timed out' for a write as indeterminate, without retrying", async () => {
    const client = connect(cluster.endpoints);
    cluster.members[0].interceptor = (method) => {
      if (method === "put") throw new EtcdError("timeout");
    };
    const failure = await client.kv.put("slow", "1").catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(IndeterminateError);
    expect((failure as Error).cause).toMatchObject({ kind: "timeout", code: GrpcStatus.unavailable });
    expect(cluster.received("put")).toBe(1);
  });

  it("retries a write the server refused before proposing it (no leader), and it is applied once", async () => {
    const client = connect(cluster.endpoints);
    let refusals = 0;
    cluster.members[0].interceptor = (method) => {
      if (method === "put" && refusals++ === 0) throw new EtcdError("noLeader");
    };
    const put = await client.kv.put("refused-once", "1");
    expect(cluster.received("put")).toBe(2);
    const got = await client.kv.get("refused-once");
    expect(got.kvs[0].version).toBe(1);
    expect(got.kvs[0].modRevision).toBe(put.header?.revision);
  });

  it("gives up on a refused write after a bounded number of attempts with etcd's error", async () => {
    const client = connect(cluster.endpoints);
    for (const member of cluster.members) {
      member.interceptor = (method) => {
        if (method === "put") throw new EtcdError("noLeader");
      };
    }
    const failure = await client.kv.put("never", "1").catch((error: unknown) => error);
    expect(failure).toMatchObject({ name: "EtcdClientError", kind: "noLeader" });
    expect(cluster.received("put")).toBeGreaterThanOrEqual(3);
    expect(cluster.received("put")).toBeLessThanOrEqual(6);
  });

  it("does not retry an error that no other endpoint would answer differently", async () => {
    const client = connect(cluster.endpoints);
    const failure = await client.kv.get("k", { revision: 1_000_000 }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ kind: "futureRevision", code: GrpcStatus.outOfRange });
    expect(cluster.received("range")).toBe(1);
  });

  it("sends the deadline as grpc-timeout, and a read past it fails with DEADLINE_EXCEEDED", async () => {
    const client = connect([cluster.members[0].endpoint]);
    let serverDeadlineMs: number | undefined;
    cluster.members[0].interceptor = (method, context) => {
      serverDeadlineMs = context.deadlineMs;
      return hangUntilAborted(context);
    };
    const started = Date.now();
    const failure = await client.kv.get("stuck", { timeoutMs: 150 }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ name: "EtcdClientError", code: GrpcStatus.deadlineExceeded });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(serverDeadlineMs).toBeGreaterThan(started);
    expect(serverDeadlineMs! - started).toBeLessThanOrEqual(400);
  });

  it("reports a write past its deadline as indeterminate", async () => {
    const client = connect([cluster.members[0].endpoint, cluster.members[1].endpoint]);
    cluster.members[0].interceptor = (_method, context) => hangUntilAborted(context);
    const failure = await client.kv.put("late", "1", { timeoutMs: 150 }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(IndeterminateError);
    expect(cluster.received("put")).toBe(1);
  });

  it("rejects a read with the caller's abort reason, and stops before connecting when already aborted", async () => {
    const client = connect([cluster.members[0].endpoint]);
    cluster.members[0].interceptor = (_method, context) => hangUntilAborted(context);
    const controller = new AbortController();
    const pending = client.kv.get("wait", { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("user gave up")), 50);
    await expect(pending).rejects.toThrow("user gave up");
    const before = cluster.received("range");
    await expect(client.kv.get("wait", { signal: AbortSignal.abort(new Error("never mind")) })).rejects.toThrow("never mind");
    expect(cluster.received("range")).toBe(before);
  });

  it("closes idempotently: running calls and later calls fail with ClientClosedError", async () => {
    const client = connect([cluster.members[0].endpoint]);
    await client.kv.put("open", "1");
    cluster.members[0].interceptor = (_method, context) => hangUntilAborted(context);
    const running = client.kv.get("open").catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await client.close();
    await client.close();
    expect(client.closed).toBe(true);
    expect(await running).toBeInstanceOf(ClientClosedError);
    await expect(client.kv.get("open")).rejects.toBeInstanceOf(ClientClosedError);
  });

  it("refuses malformed endpoint lists when constructed", () => {
    expect(() => new Client({ endpoints: "" })).toThrow(InvalidEndpointError);
    expect(() => new Client({ endpoints: "ftp://a:1" })).toThrow(InvalidEndpointError);
    expect(() => new Client({ endpoints: ["a:1", "http://a:1"] })).toThrow(/listed twice/);
    expect(() => new Client({ endpoints: "a:1", commandTimeoutMs: -5 })).toThrow(/commandTimeoutMs/);
  });
});
