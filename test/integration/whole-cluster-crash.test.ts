/**
 * Killing every member at once with SIGKILL under a write load, then
 * restarting them all on their data directories: every write a client saw
 * acknowledged must still be there.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "./cluster.js";
import {
  CATCH_UP_TIMEOUT_MS, CLUSTER_START_TIMEOUT_MS, CRASH_TEST_TIMEOUT_MS, LOAD_BEFORE_KILL_MS, LOAD_DURATION_MS_MAX,
  WRITERS, WRITES_PER_WRITER_MAX, pause, waitForLocalCopy, withLogs,
} from "./support.js";
import { lostWrites, readPrefix, WriteLoad } from "./write-load.js";

describe("killing every member at once with SIGKILL", () => {
  let cluster: Cluster | undefined;
  let load: WriteLoad | undefined;
  const run = (body: () => Promise<void>) => () => withLogs(() => cluster, body);

  beforeAll(async () => {
    cluster = await Cluster.start();
  }, CLUSTER_START_TIMEOUT_MS);
  afterAll(async () => {
    await load?.stop();
    await cluster?.stop();
  });

  it("keeps every acknowledged write through a restart of the whole cluster", run(async () => {
    load = new WriteLoad(Array.from({ length: WRITERS }, () => cluster!.client()), "crash", WRITES_PER_WRITER_MAX, LOAD_DURATION_MS_MAX);
    load.start();
    await pause(LOAD_BEFORE_KILL_MS);
    const exits = await Promise.all(cluster!.members.map((member) => cluster!.kill(member, "SIGKILL")));
    expect(exits).toEqual(cluster!.members.map(() => ({ code: null, signal: "SIGKILL" })));
    await load.stop();
    expect(load.acknowledged.size).toBeGreaterThan(0);

    for (const member of cluster!.members) cluster!.restart(member);
    await cluster!.waitForLeader(30_000);
    const read = await readPrefix(cluster!.client(), "crash/");
    expect(lostWrites(load.acknowledged, read)).toEqual([]);
    for (const member of cluster!.members) {
      expect(await waitForLocalCopy(cluster!, member, "crash/", load.acknowledged, CATCH_UP_TIMEOUT_MS), member.name).toEqual([]);
    }
  }), CRASH_TEST_TIMEOUT_MS);
});
