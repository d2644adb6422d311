/**
 * --quota-backend-bytes on real members: writing past the quota raises the
 * NOSPACE alarm and every write is refused with etcd's error, reads and
 * deletes still work, and one compaction that frees the history is all it
 * takes to recover (each member clears its own alarm once its store is under
 * the quota again) — no defrag, no `etcdctl alarm disarm`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "./cluster.js";
import { CLUSTER_START_TIMEOUT_MS, withLogs } from "./support.js";
import { etcdctl } from "./tools.js";

const QUOTA_BYTES = 2 * 1024 * 1024;
const VALUE = "q".repeat(8192);
/** Enough to pass the quota several times over; the loop stops at the first refusal. */
const PUTS_MAX = 2000;
const ALARM_WAIT_MS = 15_000;

describe("the backend quota", () => {
  let cluster: Cluster | undefined;
  const run = (body: () => Promise<void>) => () => withLogs(() => cluster, body);

  beforeAll(async () => {
    cluster = await Cluster.start({ flags: ["--quota-backend-bytes", String(QUOTA_BYTES)] });
  }, CLUSTER_START_TIMEOUT_MS);
  afterAll(async () => {
    await cluster?.stop();
  });

  async function alarms(): Promise<string> {
    const listed = await etcdctl(cluster!.endpoints(), ["alarm", "list"]);
    expect(listed.code, listed.stderr).toBe(0);
    return listed.stdout;
  }

  async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + ALARM_WAIT_MS;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  it("raises NOSPACE past the quota, refuses writes but not reads or deletes, and recovers with one compaction", run(async () => {
    const client = cluster!.client();
    let refusal: Error | undefined;
    let written = 0;
    for (; written < PUTS_MAX && !refusal; written++) {
      try {
        await client.put(`fill/${String(written).padStart(5, "0")}`).value(VALUE);
      } catch (error) {
        refusal = error as Error;
      }
    }
    expect(refusal?.message).toContain("etcdserver: mvcc: database space exceeded");
    expect(written).toBeGreaterThan(QUOTA_BYTES / VALUE.length / 2);
    expect(await alarms()).toMatch(/alarm:NOSPACE/);

    // etcdctl sees the same refusal; reads still work.
    const put = await etcdctl(cluster!.endpoints(), ["put", "more", "data"]);
    expect(put.code).not.toBe(0);
    expect(put.stderr).toContain("database space exceeded");
    expect(await client.get("fill/00000").string()).toBe(VALUE);

    // Deleting is allowed; the one recovery step is the compaction that frees the deleted history.
    await client.delete().prefix("fill/").exec();
    const revision = Number((await client.get("fill/").exec()).header.revision);
    const compacted = await etcdctl(cluster!.endpoints(), ["compaction", "--physical", String(revision)]);
    expect(compacted.code, compacted.stderr).toBe(0);
    await until(async () => !(await alarms()).includes("NOSPACE"), "every member to clear NOSPACE after the compaction");

    await client.put("after").value("recovered");
    expect(await client.get("after").string()).toBe("recovered");
    // A member that raised the alarm cleared it itself, and said so.
    const raisers = cluster!.members.filter((member) => member.logs.some((line) => /raising NOSPACE/.test(line.message)));
    expect(raisers.length).toBeGreaterThan(0);
    for (const member of raisers) expect(member.logs.some((line) => /under the quota again: clearing NOSPACE/.test(line.message)), member.name).toBe(true);
  }), 120_000);
});
