/**
 * Bad input against a running cluster: raw TCP garbage on the peer and
 * client ports, requests over the size and txn limits, a compacted revision,
 * an unknown member, an RPC of a service not built yet. Each gets etcd's
 * answer and the cluster keeps serving.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GRPCNotImplementedError, GRPCResourceExhastedError, type Etcd3 } from "etcd3";
import { Cluster } from "./cluster.js";
import { CLUSTER_START_TIMEOUT_MS, withLogs } from "./support.js";
import { etcdctl, sendRaw } from "./tools.js";

/** Small limits for the bad-input tests, set through the flags. */
const MAX_REQUEST_BYTES = 4096;
const MAX_TXN_OPS = 8;
/** gRPC's own receive cap sits this far above --max-request-bytes, as in etcd. */
const GRPC_OVERHEAD_BYTES = 512 * 1024;
const HTTP2_PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/** Deterministic junk (xorshift32), so a failure replays with the same bytes. */
function garbage(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let state = seed >>> 0 || 1;
  for (let position = 0; position < length; position++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    bytes[position] = state & 0xff;
  }
  return bytes;
}

describe("bad input", () => {
  let cluster: Cluster | undefined;
  let etcd: Etcd3;
  const run = (body: () => Promise<void>) => () => withLogs(() => cluster, body);
  const ctl = (args: string[], input?: string) => etcdctl(cluster!.endpoints(), args, input);
  /** The cluster still takes a write and reads it back, and every member process is alive. */
  const stillServes = async (label: string) => {
    await etcd.put("alive").value(label);
    expect(await etcd.get("alive").string()).toBe(label);
    expect(cluster!.members.filter((member) => !member.running).map((member) => member.name)).toEqual([]);
  };

  beforeAll(async () => {
    cluster = await Cluster.start({ flags: ["--max-request-bytes", String(MAX_REQUEST_BYTES), "--max-txn-ops", String(MAX_TXN_OPS)] });
    etcd = cluster.client();
  }, CLUSTER_START_TIMEOUT_MS);
  afterAll(async () => {
    await cluster?.stop();
  });

  it("closes raw TCP garbage on the peer port and keeps serving", run(async () => {
    const target = cluster!.members[0];
    for (const [seed, length] of [[1, 64], [2, 4096], [3, 70_000]]) {
      const exchange = await sendRaw(target.peerPort, garbage(length, seed), 3000);
      expect(exchange.closedByServer, `peer port kept a connection open after ${length} garbage bytes`).toBe(true);
    }
    const http = await sendRaw(target.peerPort, Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 3000);
    expect(http.closedByServer).toBe(true);
    await stillServes("after peer garbage");
  }));

  it("closes raw TCP garbage on the client port, with or without the HTTP/2 preface, and keeps serving", run(async () => {
    const target = cluster!.members[1];
    const garbageOnly = await sendRaw(target.clientPort, garbage(4096, 4), 3000);
    expect(garbageOnly.closedByServer).toBe(true);
    const afterPreface = await sendRaw(target.clientPort, Buffer.concat([Buffer.from(HTTP2_PREFACE), garbage(4096, 5)]), 3000);
    expect(afterPreface.closedByServer).toBe(true);
    const http = await sendRaw(target.clientPort, Buffer.from("GET /etcdserverpb.KV/Range HTTP/1.1\r\nHost: x\r\n\r\n"), 3000);
    expect(http.closedByServer).toBe(true);
    await stillServes("after client garbage");
  }));

  it("refuses a put above --max-request-bytes with etcd's errors", run(async () => {
    await expect(etcd.put("big").value("x".repeat(MAX_REQUEST_BYTES + 1000))).rejects.toThrow("etcdserver: request is too large");
    const refused = await ctl(["put", "big", "y".repeat(MAX_REQUEST_BYTES + 1000)]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("etcdserver: request is too large");
    // Above gRPC's own receive cap the transport refuses it before decoding: RESOURCE_EXHAUSTED.
    const huge = await etcd.put("big").value(Buffer.alloc(MAX_REQUEST_BYTES + GRPC_OVERHEAD_BYTES + 10_000, 1)).then(() => null, (error: Error) => error);
    expect(huge, String(huge)).toBeInstanceOf(GRPCResourceExhastedError);
    expect(await etcd.get("big").exists()).toBe(false);
    await stillServes("after oversized puts");
  }));

  it("refuses a txn over --max-txn-ops with etcd's error", run(async () => {
    const puts = Array.from({ length: MAX_TXN_OPS + 1 }, (_, position) => etcd.put(`many/${position}`).value("v"));
    await expect(etcd.if("many/0", "Version", "==", 0).then(...puts).commit()).rejects.toThrow("etcdserver: too many operations in txn request");
    expect(await etcd.getAll().prefix("many/").count()).toBe(0);
    const atLimit = await etcd.if("many/0", "Version", "==", 0).then(...puts.slice(0, MAX_TXN_OPS)).commit();
    expect(atLimit.succeeded).toBe(true);
    expect(await etcd.getAll().prefix("many/").count()).toBe(MAX_TXN_OPS);
  }));

  it("refuses a get at a compacted revision", run(async () => {
    const first = Number((await etcd.put("old").value("1").exec()).header.revision);
    const second = Number((await etcd.put("old").value("2").exec()).header.revision);
    await etcd.kv.compact({ revision: second });
    await expect(etcd.get("old").revision(first).string()).rejects.toThrow("etcdserver: mvcc: required revision has been compacted");
    expect(await etcd.get("old").revision(second).string()).toBe("2");
  }));

  it("answers member remove of an unknown id with 'member not found'", run(async () => {
    const removed = await ctl(["member", "remove", "1234abcd5678ef90"]);
    expect(removed.code).not.toBe(0);
    expect(removed.stderr).toContain("etcdserver: member not found");
    await expect(etcd.cluster.memberRemove({ ID: "987654321" })).rejects.toThrow("etcdserver: member not found");
    expect((await etcd.cluster.memberList({})).members).toHaveLength(3);
  }));

  it("answers the RPCs of services not built yet with Unimplemented", run(async () => {
    const users = await ctl(["user", "list"]);
    expect(users.code).not.toBe(0);
    expect(users.stderr).toMatch(/Unimplemented|not implemented/i);
    const viaEtcd3 = await etcd.getUsers().then(() => null, (error: Error) => error);
    expect(viaEtcd3, String(viaEtcd3)).toBeInstanceOf(GRPCNotImplementedError);
    await stillServes("after unimplemented RPCs");
  }));
});
