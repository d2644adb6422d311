/**
 * Losing the leader: SIGKILL under a write load (a new leader soon, no
 * acknowledged write lost, retrying writers succeed, the killed member
 * rejoins from its data directory) and SIGTERM (a hand-over, exit 0).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster, type Member } from "./cluster.js";
import {
  CATCH_UP_TIMEOUT_MS, CLUSTER_START_TIMEOUT_MS, CRASH_TEST_TIMEOUT_MS, LOAD_BEFORE_KILL_MS, LOAD_DURATION_MS_MAX,
  WRITERS, WRITES_PER_WRITER_MAX, pause, waitForLocalCopy, withLogs,
} from "./support.js";
import { lostWrites, readPrefix, WriteLoad } from "./write-load.js";

/** "A few election timeouts", generous for a loaded CI machine (fsyncs there take 100+ ms). */
const NEW_LEADER_ELECTION_TIMEOUTS_MAX = 10;
/** Acknowledgements every writer must get after the new leader, to show retries succeed. */
const ACKNOWLEDGEMENTS_AFTER_FAILOVER_MIN = 5;

describe("killing the leader with SIGKILL under write load", () => {
  let cluster: Cluster | undefined;
  let killed: Member | undefined;
  let load: WriteLoad | undefined;
  const run = (body: () => Promise<void>) => () => withLogs(() => cluster, body);

  beforeAll(async () => {
    cluster = await Cluster.start();
  }, CLUSTER_START_TIMEOUT_MS);
  afterAll(async () => {
    await load?.stop();
    await cluster?.stop();
  });

  it("elects a new leader within a few election timeouts, loses no acknowledged write, and retrying writers succeed", run(async () => {
    const { leader } = await cluster!.waitForLeader(10_000);
    load = new WriteLoad(Array.from({ length: WRITERS }, () => cluster!.client()), "load", WRITES_PER_WRITER_MAX, LOAD_DURATION_MS_MAX);
    load.start();
    await pause(LOAD_BEFORE_KILL_MS);
    expect(load.acknowledged.size).toBeGreaterThan(0);

    killed = leader;
    const killedAt = Date.now();
    expect(await cluster!.kill(leader, "SIGKILL")).toEqual({ code: null, signal: "SIGKILL" });
    const successor = await cluster!.waitForLeader(30_000, { notName: leader.name });
    const electionMs = Date.now() - killedAt;
    process.stderr.write(`leader ${leader.name} killed; ${successor.leader.name} leads at term ${successor.term} after ${electionMs} ms\n`);
    expect(successor.leader.name).not.toBe(leader.name);
    expect(electionMs).toBeLessThanOrEqual(NEW_LEADER_ELECTION_TIMEOUTS_MAX * cluster!.electionTimeoutMs);

    const progressed = await load.waitForProgress(Date.now(), ACKNOWLEDGEMENTS_AFTER_FAILOVER_MIN, 20_000);
    await load.stop();
    expect(progressed, `writers stalled after the failover: ${load.acknowledgedSince(killedAt).join(", ")} acknowledgements since the kill; failures:\n${load.failureSummary()}`).toBe(true);

    const survivors = cluster!.members.filter((member) => member !== leader);
    const read = await readPrefix(cluster!.client({ members: survivors }), "load/");
    expect(lostWrites(load.acknowledged, read)).toEqual([]);
    // Every key read was written by some writer: nothing invented, nothing from another test.
    for (const key of read.keys()) expect(key).toMatch(/^load\/w\d\/\d{6}$/);
  }), CRASH_TEST_TIMEOUT_MS);

  it("lets the killed member restart on its data directory, rejoin and catch up", run(async () => {
    expect(killed, "the previous test killed no member").toBeDefined();
    cluster!.restart(killed!);
    await cluster!.waitForLeader(30_000);
    expect(await waitForLocalCopy(cluster!, killed!, "load/", load!.acknowledged, CATCH_UP_TIMEOUT_MS)).toEqual([]);
    // It also serves new writes made after it came back.
    const etcd = cluster!.client();
    await etcd.put("after-rejoin").value("yes");
    expect(await waitForLocalCopy(cluster!, killed!, "after-rejoin", new Map([["after-rejoin", "yes"]]), CATCH_UP_TIMEOUT_MS)).toEqual([]);
  }), CRASH_TEST_TIMEOUT_MS);
});

describe("SIGTERM of the leader", () => {
  let cluster: Cluster | undefined;
  const run = (body: () => Promise<void>) => () => withLogs(() => cluster, body);

  beforeAll(async () => {
    cluster = await Cluster.start();
  }, CLUSTER_START_TIMEOUT_MS);
  afterAll(async () => {
    await cluster?.stop();
  });

  it("hands leadership to another member before exiting 0", run(async () => {
    const etcd = cluster!.client();
    await etcd.put("before-sigterm").value("1");
    const before = await cluster!.waitForLeader(10_000);
    expect(await cluster!.kill(before.leader, "SIGTERM")).toEqual({ code: 0, signal: null });
    const after = await cluster!.waitForLeader(10_000, { notName: before.leader.name });
    // A hand-over is one campaign at the next term; an election after a timeout would first need the old leader's lease to lapse.
    expect(after.term).toBe(before.term + 1);
    const targetHex = BigInt(after.leader.memberId).toString(16);
    const transfer = before.leader.logs.find((line) => line.message.includes("transferring leadership"));
    expect(transfer?.message).toContain(`transferring leadership to ${targetHex}`);
    expect(after.leader.logs.some((line) => /campaigns at once: leadership transfer/.test(line.message)), "the new leader did not campaign on the hand-over").toBe(true);
    expect(before.leader.logs.some((line) => line.message === "stopped")).toBe(true);
    const survivors = cluster!.members.filter((member) => member !== before.leader);
    expect(await cluster!.client({ members: survivors }).get("before-sigterm").string()).toBe("1");
  }));
});
