/**
 * Maintenance.Defragment on real members through etcdctl: after most of the
 * data is deleted and the history compacted away, `etcdctl defrag` shrinks
 * every member's state file, keeps every remaining key, and each member
 * reports how long it held writes back (log line and metric).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "./cluster.js";
import { CLUSTER_START_TIMEOUT_MS, withLogs } from "./support.js";
import { etcdctl, httpGet } from "./tools.js";

const KEYS = 1200;
const VALUE = "x".repeat(4096);
const KEPT_EVERY = 40;
const PUTS_IN_FLIGHT = 64;

interface EndpointStatus {
  Endpoint: string;
  Status: { dbSize: number; dbSizeInUse: number };
}

describe("defragmentation on a running cluster", () => {
  let cluster: Cluster | undefined;
  const run = (body: () => Promise<void>) => () => withLogs(() => cluster, body);

  beforeAll(async () => {
    cluster = await Cluster.start({ metrics: true });
  }, CLUSTER_START_TIMEOUT_MS);
  afterAll(async () => {
    await cluster?.stop();
  });

  async function dbSizes(): Promise<number[]> {
    const status = await etcdctl(cluster!.endpoints(), ["endpoint", "status", "-w", "json"]);
    expect(status.code, status.stderr).toBe(0);
    return (JSON.parse(status.stdout) as EndpointStatus[]).map((entry) => entry.Status.dbSize);
  }

  it("shrinks every member's file after a delete and compaction, keeps the data, and reports the write pause", run(async () => {
    const client = cluster!.client();
    const name = (i: number) => `bulk/${String(i).padStart(5, "0")}`;
    for (let start = 0; start < KEYS; start += PUTS_IN_FLIGHT) {
      const batch: Promise<unknown>[] = [];
      for (let i = start; i < Math.min(KEYS, start + PUTS_IN_FLIGHT); i++) batch.push(client.put(name(i)).value(VALUE).exec());
      await Promise.all(batch);
    }
    // One range delete, then the kept keys written again: the old versions become garbage for the compaction.
    await client.delete().prefix("bulk/").exec();
    for (let i = 0; i < KEYS; i += KEPT_EVERY) await client.put(name(i)).value(VALUE).exec();
    const revision = Number((await client.get("bulk/").exec()).header.revision);
    const compacted = await etcdctl(cluster!.endpoints(), ["compaction", "--physical", String(revision)]);
    expect(compacted.code, compacted.stderr).toBe(0);
    const before = await dbSizes();
    expect(Math.min(...before)).toBeGreaterThan(KEYS * VALUE.length);

    const defrag = await etcdctl(cluster!.endpoints(), ["defrag"]);
    expect(defrag.code, defrag.stderr).toBe(0);
    expect(defrag.stdout.match(/Finished defragmenting etcd member/g)).toHaveLength(3);

    const after = await dbSizes();
    for (let position = 0; position < after.length; position++) expect(after[position]).toBeLessThan(before[position] / 4);
    const kept = await client.getAll().prefix("bulk/").strings();
    expect(Object.keys(kept).length).toBe(KEYS / KEPT_EVERY);
    expect(Object.values(kept).every((value) => value === VALUE)).toBe(true);
    // Still writable, and the write lands in the new file.
    await client.put("after-defrag").value("yes");
    expect(await client.get("after-defrag").string()).toBe("yes");

    for (const member of cluster!.members) {
      expect(member.logs.some((line) => /defragmented the state file: \d+ -> \d+ bytes .* writes paused [\d.]+ ms/.test(line.message)), member.name).toBe(true);
      const metrics = await httpGet(`${member.metricsUrl}/metrics`);
      expect(metrics.body).toMatch(/^cairn_defrag_write_pause_seconds_count 1$/m);
    }
  }), 120_000);
});
