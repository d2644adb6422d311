import { afterEach, describe, expect, it } from "vitest";
import { clusterId, groupId, nodeId, type NodeId } from "../lib/ids.js";
import { ConfChangeTransition, ConfChangeType, EntryType, bootstrapEntries, confState, decodeConfChange } from "../raft/mod.js";
import { MemoryFileSystem } from "../storage/fs/mod.js";
import { Wal } from "../storage/wal/mod.js";
import { RaftGroup, forceNewCluster } from "./raft-group.js";
import { wrapCommand } from "./envelope.js";
import { createPrng } from "../lib/prng.js";
import { NoLeaderError, RequestTimeoutError } from "./errors.js";
import { InProcessCluster, RegisterMachine } from "./test-support.js";

const command = (text: string) => new TextEncoder().encode(text);
let cluster: InProcessCluster | null = null;
afterEach(async () => {
  await cluster?.stop();
  cluster = null;
});

describe("RaftGroup runtime", () => {
  it("elects a leader, applies a write proposed at the leader and one forwarded by a follower, on every member", async () => {
    cluster = await InProcessCluster.start([1, 2, 3]);
    const leader = await cluster.waitForLeader();
    expect(await leader.group.propose(command("a=1"))).toBe(null);
    const follower = [...cluster.members.values()].find((member) => member !== leader)!;
    expect(await follower.group.propose(command("a=2"))).toBe("1");
    for (const member of cluster.members.values()) {
      await member.group.waitApplied(leader.group.appliedIndex);
      expect(member.machine.values.get("a")).toBe("2");
    }
    expect(cluster.errors).toEqual([]);
  });

  it("a read barrier at a follower waits until the follower has applied everything committed before it", async () => {
    cluster = await InProcessCluster.start([1, 2, 3]);
    const leader = await cluster.waitForLeader();
    const follower = [...cluster.members.values()].find((member) => member !== leader)!;
    const writes = [];
    for (let i = 0; i < 20; i++) writes.push(leader.group.propose(command(`k=${i}`)));
    await Promise.all(writes);
    await follower.group.readBarrier();
    expect(follower.machine.values.get("k")).toBe("19");
  });

  it("refuses a proposal with no leader, and times out reads when the leader cannot confirm", async () => {
    cluster = await InProcessCluster.start([1, 2, 3]);
    const leader = await cluster.waitForLeader();
    for (const member of cluster.members.values()) if (member !== leader) cluster.cut.add(member.id);
    // The isolated leader steps down after an election timeout (CheckQuorum); then nobody leads.
    await new Promise((resolve) => setTimeout(resolve, 400));
    await expect(leader.group.propose(command("x=1"))).rejects.toBeInstanceOf(NoLeaderError);
  });

  it("keeps acknowledged writes across a crash that loses unsynced data, and catches a restarted member up", async () => {
    cluster = await InProcessCluster.start([1, 2, 3]);
    const leader = await cluster.waitForLeader();
    for (let i = 0; i < 30; i++) await leader.group.propose(command(`k${i}=${i}`));
    const victim = [...cluster.members.values()].find((member) => member !== leader)!;
    const saved = await cluster.crash(Number(victim.id));
    for (let i = 30; i < 40; i++) await leader.group.propose(command(`k${i}=${i}`));
    // The state machine here is in memory: restart it from scratch and let the log replay into it.
    const restarted = await cluster.startMember(victim.id, null, saved.fileSystem);
    await restarted.group.waitApplied(leader.group.appliedIndex);
    expect(restarted.machine.values.get("k39")).toBe("39");
    expect(restarted.machine.values.get("k0")).toBe("0");
  });

  it("compacts the log and brings a new member up to date with a snapshot", async () => {
    cluster = await InProcessCluster.start([1, 2, 3], { snapshotCount: 20 });
    const leader = await cluster.waitForLeader();
    for (let i = 0; i < 60; i++) await leader.group.propose(command(`k${i}=${i}`));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(leader.wal.firstIndex(leader.group.raw.group)).toBeGreaterThan(20);
    const newcomer = await cluster.startMember(nodeId(4), null);
    leader.group.raw.proposeConfChange({ transition: ConfChangeTransition.Auto, changes: [{ type: ConfChangeType.AddLearner, nodeId: nodeId(4) }], context: new Uint8Array(0) });
    leader.group.schedule();
    await newcomer.group.waitApplied(leader.group.appliedIndex);
    expect(newcomer.machine.values.get("k59")).toBe("59");
    expect(newcomer.machine.values.get("k0")).toBe("0");
    expect(newcomer.group.raw.status().config.learners).toEqual([4n]);
  });

  it("compacts the log by applied bytes too, long before the entry count is reached", async () => {
    cluster = await InProcessCluster.start([1, 2, 3], { snapshotCount: 1_000_000, snapshotBytes: 4096 });
    const leader = await cluster.waitForLeader();
    const big = "v".repeat(1000);
    for (let i = 0; i < 12; i++) await leader.group.propose(command(`k${i}=${big}`));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(leader.wal.firstIndex(leader.group.raw.group)).toBeGreaterThan(4);
  });

  it("reports an unknown outcome, not a failure, when a proposal times out", async () => {
    cluster = await InProcessCluster.start([1, 2, 3]);
    const leader = await cluster.waitForLeader();
    const controller = new AbortController();
    for (const member of cluster.members.values()) if (member !== leader) cluster.cut.add(member.id);
    const pending = leader.group.propose(command("lost=1"), controller.signal);
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(RequestTimeoutError);
  });
});

describe("RaftGroup restarts", () => {
  it("a whole cluster restarted before any log compaction relearns its membership from the log and elects a leader", async () => {
    cluster = await InProcessCluster.start([1, 2, 3]);
    const leader = await cluster.waitForLeader();
    for (let i = 0; i < 5; i++) await leader.group.propose(command(`k${i}=${i}`));
    // Keep each member's state machine (its durable state survives) and its disk; crash everyone at once.
    const saved = [];
    for (const id of [1, 2, 3]) saved.push({ id, ...(await cluster.crash(id)) });
    for (const { id, fileSystem, machine } of saved) await cluster.startMember(nodeId(id), null, fileSystem, machine);
    const restarted = await cluster.waitForLeader();
    expect(restarted.group.raw.status().config.voters).toEqual([1n, 2n, 3n]);
    expect(await restarted.group.propose(command("k0=again"))).toBe("0");
  });
});

describe("ReadIndex contexts", () => {
  it("differ between members for the same counter, since the leader serves one request per context", async () => {
    const { readIndexContext } = await import("./raft-group.js");
    const { TestCluster } = await import("../raft/test-cluster.js");
    expect(readIndexContext(nodeId(1), 1n)).not.toEqual(readIndexContext(nodeId(2), 1n));
    expect(readIndexContext(nodeId(1), 1n)).not.toEqual(readIndexContext(nodeId(1), 2n));
    // Why it matters: two followers asking with the same context get one answer between them.
    const raft = new TestCluster([1, 2, 3]);
    raft.member(1).node.campaign();
    raft.stabilize();
    const same = new Uint8Array([1]);
    raft.member(2).node.readIndex(same);
    raft.member(3).node.readIndex(same);
    raft.stabilize();
    expect(raft.member(2).reads.length + raft.member(3).reads.length).toBe(1);
    raft.member(2).node.readIndex(readIndexContext(nodeId(2), 1n));
    raft.member(3).node.readIndex(readIndexContext(nodeId(3), 1n));
    raft.stabilize();
    expect(raft.member(2).reads.length + raft.member(3).reads.length).toBe(3);
  });
});

describe("forceNewCluster", () => {
  const group = groupId(0);
  const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

  /** A WAL of a 3-voter cluster: bootstrap entries 1..3 and 4 committed, 5..6 written but never committed. */
  async function survivorWal(): Promise<Wal> {
    const wal = await Wal.open({ fileSystem: new MemoryFileSystem(), directory: "/wal", clusterId: clusterId(7), nodeId: nodeId(1) });
    const entries = [
      ...bootstrapEntries(confState([1, 2, 3])),
      ...[4, 5, 6].map((index) => ({ index, term: 2, type: EntryType.Normal, data: wrapCommand(BigInt(index), command(`k=${index}`)) })),
    ];
    await wal.append([{ type: "entries", group, entries }, { type: "hardState", group, hardState: { term: 2, vote: nodeId(2), commit: 4 } }]);
    return wal;
  }

  it("keeps the committed log, cuts the uncommitted tail, and commits the removal of every other member", async () => {
    const wal = await survivorWal();
    await forceNewCluster({ wal, group, stateMachine: new RegisterMachine(), memberId: nodeId(1), logger: quiet });
    expect(wal.hardState(group)).toEqual({ term: 2, vote: nodeId(2), commit: 6 });
    const tail = wal.entries(group, 5, 7);
    expect(tail.map((entry) => entry.type)).toEqual([EntryType.ConfChange, EntryType.ConfChange]);
    expect(tail.map((entry) => decodeConfChange(entry.data).changes)).toEqual([
      [{ type: ConfChangeType.RemoveNode, nodeId: nodeId(2) }], [{ type: ConfChangeType.RemoveNode, nodeId: nodeId(3) }],
    ]);
    expect(wal.entries(group, 4, 5)[0].data).toEqual(wrapCommand(4n, command("k=4")));
    await wal.close();
  });

  it("starts the survivor as a one-member cluster that elects itself and applies the committed entries", async () => {
    const wal = await survivorWal();
    const machine = new RegisterMachine();
    const sent: NodeId[] = [];
    const errors: string[] = [];
    const opened = await RaftGroup.open({
      memberId: nodeId(1), group, wal, stateMachine: machine, tickMs: 10, electionTicks: 10, heartbeatTicks: 1,
      snapshotCount: 1000, requestTimeoutMs: 3000, random: createPrng(1), logger: { ...quiet, error: (message: string) => errors.push(message) },
      send: (message) => sent.push(message.to),
      sendSnapshot: () => Promise.reject(new Error("no peers")),
      forceNewCluster: true,
    });
    opened.start();
    try {
      const deadline = Date.now() + 5000;
      while (!opened.isLeader() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      expect({ leader: opened.isLeader(), errors, sent }).toEqual({ leader: true, errors: [], sent: [] });
      expect(await opened.propose(command("k=new"))).toBe("4");
      expect(machine.position.confState.voters).toEqual([nodeId(1)]);
    } finally {
      opened.stop();
      await opened.idle();
      await wal.close();
    }
  });

  it("refuses a member that is not a voter of the committed configuration", async () => {
    const wal = await survivorWal();
    await expect(forceNewCluster({ wal, group, stateMachine: new RegisterMachine(), memberId: nodeId(9) as NodeId, logger: quiet }))
      .rejects.toThrow("--force-new-cluster: this member (9) is not a voter of the committed configuration");
    expect(wal.lastIndex(group)).toBe(6);
    await wal.close();
  });
});
