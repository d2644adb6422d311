/**
 * etcd's own clients against a 3-member cluster of real `cairn start`
 * processes: the etcd3 npm client and Debian's etcdctl (3.4, API v3).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Etcd3 } from "etcd3";
import { Cluster } from "./cluster.js";
import { CLUSTER_START_TIMEOUT_MS, withLogs } from "./support.js";
import { etcdctl } from "./tools.js";

interface EndpointStatus {
  Endpoint: string;
  Status: { header: { cluster_id: number; member_id: number; revision: number; raft_term: number }; version: string; leader: number; raftTerm: number };
}

describe("etcd's clients against a 3-member cluster", () => {
  let cluster: Cluster | undefined;
  let etcd: Etcd3;
  const run = (body: () => Promise<void>) => () => withLogs(() => cluster, body);
  const ctl = (args: string[], input?: string) => etcdctl(cluster!.endpoints(), args, input);

  beforeAll(async () => {
    cluster = await Cluster.start();
    etcd = cluster.client();
  }, CLUSTER_START_TIMEOUT_MS);
  afterAll(async () => {
    await cluster?.stop();
  });

  it("puts, gets and ranges with prefix, bounds, sort, limit, count and keys only through etcd3", run(async () => {
    for (const [fruit, colour] of [["apple", "red"], ["banana", "yellow"], ["cherry", "dark red"], ["grape", "green"]]) {
      await etcd.put(`fruit/${fruit}`).value(colour);
    }
    await etcd.put("vegetable/leek").value("white");
    expect(await etcd.get("fruit/apple").string()).toBe("red");
    expect(await etcd.get("fruit/missing").string()).toBeNull();
    expect(await etcd.getAll().prefix("fruit/").strings()).toEqual({
      "fruit/apple": "red", "fruit/banana": "yellow", "fruit/cherry": "dark red", "fruit/grape": "green",
    });
    expect(await etcd.getAll().inRange({ start: "fruit/b", end: "fruit/d" }).keys()).toEqual(["fruit/banana", "fruit/cherry"]);
    expect(await etcd.getAll().prefix("fruit/").sort("Key", "Descend").limit(2).keys()).toEqual(["fruit/grape", "fruit/cherry"]);
    expect(await etcd.getAll().prefix("fruit/").sort("Value", "Ascend").keys()).toEqual(["fruit/cherry", "fruit/grape", "fruit/apple", "fruit/banana"]);
    expect(await etcd.getAll().prefix("fruit/").count()).toBe(4);
    const limited = await etcd.getAll().prefix("fruit/").limit(1).exec();
    expect(limited.kvs.map((kv) => kv.key.toString())).toEqual(["fruit/apple"]);
    expect(limited.more).toBe(true);
    expect(limited.count).toBe("4");
    const keysOnly = await etcd.kv.range({ key: Buffer.from("fruit/"), range_end: Buffer.from("fruit0"), keys_only: true });
    expect(keysOnly.kvs).toHaveLength(4);
    for (const kv of keysOnly.kvs) expect(kv.value.length).toBe(0);
  }));

  it("does the same reads and writes through etcdctl", run(async () => {
    expect(await ctl(["put", "city/oslo", "norway"])).toMatchObject({ code: 0, stdout: "OK\n" });
    expect(await ctl(["put", "city/lima", "peru"])).toMatchObject({ code: 0 });
    expect(await ctl(["put", "city/kyiv", "ukraine"])).toMatchObject({ code: 0 });
    expect((await ctl(["get", "city/oslo"])).stdout).toBe("city/oslo\nnorway\n");
    expect((await ctl(["get", "city/", "--prefix", "--sort-by=KEY", "--order=DESCEND", "--limit=2"])).stdout).toBe("city/oslo\nnorway\ncity/lima\nperu\n");
    expect((await ctl(["get", "city/", "--prefix", "--keys-only"])).stdout).toBe("city/kyiv\n\ncity/lima\n\ncity/oslo\n\n");
    // etcdctl 3.4 has no --count-only; the JSON answer carries the count of a limited range.
    const counted = JSON.parse((await ctl(["get", "city/", "--prefix", "--limit=1", "-w", "json"])).stdout) as { count: number; more: boolean; kvs: unknown[] };
    expect(counted).toMatchObject({ count: 3, more: true });
    expect(counted.kvs).toHaveLength(1);
    expect((await ctl(["get", "city/kyiv", "city/oslo"])).stdout).toBe("city/kyiv\nukraine\ncity/lima\nperu\n");
  }));

  it("runs transactions with compares on value, version and revisions, taking each branch", run(async () => {
    const put = await etcd.put("txn/key").value("one").exec();
    const created = Number(put.header.revision);
    const first = await etcd.if("txn/key", "Value", "==", "one").and("txn/key", "Version", "==", 1).and("txn/key", "Create", "==", created)
      .then(etcd.put("txn/key").value("two"), etcd.put("txn/other").value("x"))
      .else(etcd.get("txn/key"))
      .commit();
    expect(first.succeeded).toBe(true);
    expect(first.responses.map((response) => Object.keys(response).filter((name) => name.startsWith("response_") && response[name as keyof typeof response]))).toEqual([["response_put"], ["response_put"]]);
    expect(await etcd.get("txn/key").string()).toBe("two");
    const second = await etcd.if("txn/key", "Value", "==", "one")
      .then(etcd.put("txn/key").value("three"))
      .else(etcd.get("txn/key"))
      .commit();
    expect(second.succeeded).toBe(false);
    expect(second.responses[0].response_range?.kvs[0].value.toString()).toBe("two");
    expect(await etcd.get("txn/key").string()).toBe("two");
    const modified = Number((await etcd.get("txn/key").exec()).kvs[0].mod_revision);
    const third = await etcd.if("txn/key", "Mod", ">", modified).then(etcd.delete().key("txn/key")).else(etcd.put("txn/else").value("taken")).commit();
    expect(third.succeeded).toBe(false);
    expect(await etcd.get("txn/else").string()).toBe("taken");

    const success = await ctl(["txn"], 'value("txn/key") = "two"\n\nput txn/key four\n\nget txn/key\n\n');
    expect(success).toMatchObject({ code: 0, stdout: "SUCCESS\n\nOK\n" });
    const failure = await ctl(["txn"], 'value("txn/key") = "two"\n\nput txn/key five\n\nget txn/key\n\n');
    expect(failure).toMatchObject({ code: 0, stdout: "FAILURE\n\ntxn/key\nfour\n" });
  }));

  it("deletes returning the previous key-values", run(async () => {
    await etcd.put("gone/a").value("1");
    await etcd.put("gone/b").value("2");
    const previous = await etcd.delete().prefix("gone/").getPrevious();
    expect(previous.map((kv) => [kv.key.toString(), kv.value.toString()])).toEqual([["gone/a", "1"], ["gone/b", "2"]]);
    expect(await etcd.getAll().prefix("gone/").count()).toBe(0);
    await etcd.put("gone/c").value("3");
    expect(await ctl(["del", "gone/c", "--prev-kv"])).toMatchObject({ code: 0, stdout: "1\ngone/c\n3\n" });
    expect(await ctl(["del", "gone/c"])).toMatchObject({ code: 0, stdout: "0\n" });
  }));

  it("reads at an old revision and refuses one that was compacted with etcd's error", run(async () => {
    const revisions: number[] = [];
    for (const version of ["v1", "v2", "v3"]) revisions.push(Number((await etcd.put("history").value(version).exec()).header.revision));
    expect(await etcd.get("history").revision(revisions[0]).string()).toBe("v1");
    expect((await ctl(["get", "history", `--rev=${revisions[1]}`])).stdout).toBe("history\nv2\n");
    expect(await ctl(["compaction", String(revisions[1])])).toMatchObject({ code: 0, stdout: `compacted revision ${revisions[1]}\n` });
    await expect(etcd.get("history").revision(revisions[0]).string()).rejects.toThrow("etcdserver: mvcc: required revision has been compacted");
    const refused = await ctl(["get", "history", `--rev=${revisions[0]}`]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("etcdserver: mvcc: required revision has been compacted");
    expect((await ctl(["get", "history", `--rev=${revisions[1]}`])).stdout).toBe("history\nv2\n");
    expect(await etcd.get("history").string()).toBe("v3");
  }));

  it("reports exactly one leader, one term and the version in endpoint status", run(async () => {
    const result = await ctl(["endpoint", "status", "-w", "json"]);
    expect(result.code).toBe(0);
    const statuses = JSON.parse(result.stdout) as EndpointStatus[];
    expect(statuses.map((status) => status.Endpoint).sort()).toEqual(cluster!.endpoints().sort());
    const leaders = statuses.filter((status) => status.Status.leader === status.Status.header.member_id);
    expect(leaders).toHaveLength(1);
    expect(new Set(statuses.map((status) => status.Status.leader)).size).toBe(1);
    expect(new Set(statuses.map((status) => status.Status.raftTerm)).size).toBe(1);
    expect(new Set(statuses.map((status) => status.Status.header.cluster_id)).size).toBe(1);
    expect(new Set(statuses.map((status) => status.Status.header.member_id)).size).toBe(3);
    for (const status of statuses) expect(status.Status.version).toMatch(/^3\.5\.\d+/);
  }));

  it("lists the three started members with their names and client URLs", run(async () => {
    const result = await ctl(["member", "list", "-w", "json"]);
    expect(result.code).toBe(0);
    const listed = JSON.parse(result.stdout) as { members: { ID: number; name: string; peerURLs: string[]; clientURLs: string[] }[] };
    const members = listed.members.map((member) => ({ name: member.name, peerURLs: member.peerURLs, clientURLs: member.clientURLs }));
    expect(members.sort((a, b) => a.name.localeCompare(b.name))).toEqual(cluster!.members.map((member) => ({
      name: member.name, peerURLs: [member.peerUrl], clientURLs: [member.clientUrl],
    })));
    const viaEtcd3 = await etcd.cluster.memberList({});
    expect(viaEtcd3.members.map((member) => member.name).sort()).toEqual(["n1", "n2", "n3"]);
  }));
});
