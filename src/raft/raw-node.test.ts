import { describe, expect, it } from "vitest";
import { nodeId } from "../lib/ids.js";
import { TestCluster } from "./test-cluster.js";
import { ConfChangeTransition, ConfChangeType, RejectReason, Role } from "./types.js";

const text = (value: string) => new TextEncoder().encode(value);

describe("RawNode in a perfect network", () => {
  it("elects the node that campaigns and commits its proposals on every member", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.member(1).node.campaign();
    cluster.stabilize();
    expect(cluster.leader()).toBe(nodeId(1));
    const result = cluster.member(1).node.propose(text("a"));
    expect(result.ok).toBe(true);
    cluster.stabilize();
    for (const id of [1, 2, 3]) expect(cluster.appliedData(id)).toEqual(["a"]);
  });

  it("elects a leader by election timeout alone", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.tickAll(40);
    const leader = cluster.leader();
    expect(leader).toBeDefined();
    for (const id of [1, 2, 3]) expect(cluster.member(id).node.status().leader).toBe(leader);
  });

  it("refuses proposals at a follower with the leader's id, and with no-leader before any election", () => {
    const cluster = new TestCluster([1, 2, 3]);
    expect(cluster.member(2).node.propose(text("x"))).toEqual({ ok: false, reason: RejectReason.NoLeader, leader: 0n });
    cluster.member(1).node.campaign();
    cluster.stabilize();
    expect(cluster.member(2).node.propose(text("x"))).toEqual({ ok: false, reason: RejectReason.NotLeader, leader: 1n });
  });

  it("forwards a command proposed at a follower to the leader, which commits it", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.member(1).node.campaign();
    cluster.stabilize();
    expect(cluster.member(2).node.proposeOrForward(text("via-2"))).toEqual({ ok: true, index: 0, term: 0 });
    cluster.stabilize();
    for (const id of [1, 2, 3]) expect(cluster.appliedData(id)).toEqual(["via-2"]);
  });

  it("a leader transferring leadership drops forwarded commands instead of appending them", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.member(1).node.campaign();
    cluster.stabilize();
    cluster.isolate(3);
    cluster.member(1).node.transferLeadership(nodeId(3));
    cluster.stabilize();
    cluster.member(2).node.proposeOrForward(text("dropped"));
    cluster.stabilize();
    expect(cluster.appliedData(1)).toEqual([]);
  });

  it("serves a ReadIndex read at a follower at the leader's commit index", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.member(1).node.campaign();
    cluster.stabilize();
    cluster.member(1).node.propose(text("a"));
    cluster.stabilize();
    expect(cluster.member(3).node.readIndex(text("r1")).ok).toBe(true);
    cluster.stabilize();
    const reads = cluster.member(3).reads;
    expect(reads).toHaveLength(1);
    expect(reads[0].index).toBe(cluster.member(1).node.status().commit);
  });

  it("a leader cut off from its quorum steps down after an election timeout (CheckQuorum)", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.member(1).node.campaign();
    cluster.stabilize();
    cluster.isolate(1);
    cluster.tickAll(25);
    expect(cluster.member(1).node.status().role).not.toBe(Role.Leader);
  });

  it("transfers leadership to a caught-up follower", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.member(1).node.campaign();
    cluster.stabilize();
    cluster.member(1).node.transferLeadership(nodeId(3));
    cluster.stabilize();
    expect(cluster.leader()).toBe(nodeId(3));
  });

  it("adds a learner, promotes it, and removes the leader through joint consensus", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.member(1).node.campaign();
    cluster.stabilize();
    cluster.add(4);
    const none = new Uint8Array(0);
    expect(cluster.member(1).node.proposeConfChange({ transition: ConfChangeTransition.Auto, changes: [{ type: ConfChangeType.AddLearner, nodeId: nodeId(4) }], context: none }).ok).toBe(true);
    cluster.stabilize();
    cluster.tickAll(3);
    expect(cluster.member(4).confState.learners).toEqual([4n]);
    const change = cluster.member(1).node.proposeConfChange({
      transition: ConfChangeTransition.Auto,
      changes: [{ type: ConfChangeType.AddNode, nodeId: nodeId(4) }, { type: ConfChangeType.RemoveNode, nodeId: nodeId(1) }],
      context: none,
    });
    expect(change.ok).toBe(true);
    cluster.stabilize();
    cluster.tickAll(60);
    const leader = cluster.leader();
    expect(leader).toBeDefined();
    expect(leader).not.toBe(nodeId(1));
    const config = cluster.member(Number(leader)).node.status().config;
    expect(config.voters).toEqual([2n, 3n, 4n]);
    expect(config.votersOutgoing).toEqual([]);
    const proposal = cluster.member(Number(leader)).node.propose(text("after"));
    expect(proposal.ok).toBe(true);
    cluster.stabilize();
    for (const id of [2, 3, 4]) expect(cluster.appliedData(id)).toContain("after");
  });
});

describe("RawNode restarting from storage", () => {
  it("takes a snapshot's index as committed when a crash lost the hard state written after the snapshot", async () => {
    const { MemoryStorage } = await import("./memory-storage.js");
    const { RawNode } = await import("./raw-node.js");
    const { createPrng } = await import("../lib/prng.js");
    const { confState } = await import("./util.js");
    const storage = new MemoryStorage();
    storage.applySnapshot({ metadata: { index: 10, term: 2, confState: confState([1, 2, 3]) }, data: new Uint8Array(0) });
    storage.setHardState({ term: 2, vote: nodeId(2), commit: 4 });
    const node = new RawNode({ id: nodeId(1), group: 0 as never, electionTicks: 10, heartbeatTicks: 1, storage, applied: 10, random: createPrng(1) });
    expect(node.status().commit).toBe(10);
    expect(node.status().applied).toBe(10);
  });

  it("refuses to start when the persisted commit lies beyond the persisted log", async () => {
    const { MemoryStorage } = await import("./memory-storage.js");
    const { RawNode } = await import("./raw-node.js");
    const { createPrng } = await import("../lib/prng.js");
    const storage = new MemoryStorage();
    storage.bootstrap({ voters: [nodeId(1)], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false });
    storage.setHardState({ term: 1, vote: nodeId(0), commit: 9 });
    expect(() => new RawNode({ id: nodeId(1), group: 0 as never, electionTicks: 10, heartbeatTicks: 1, storage, random: createPrng(1) }))
      .toThrow(/commit 9 is beyond the persisted log's last index 1/);
  });
});

describe("RawNode forwarding membership changes", () => {
  it("forwards a conf change proposed at a follower to the leader, which commits it", () => {
    const cluster = new TestCluster([1, 2, 3]);
    cluster.member(1).node.campaign();
    cluster.stabilize();
    cluster.add(4);
    const result = cluster.member(2).node.proposeConfChangeOrForward({
      transition: ConfChangeTransition.Auto, changes: [{ type: ConfChangeType.AddLearner, nodeId: nodeId(4) }], context: new Uint8Array(0),
    });
    expect(result).toEqual({ ok: true, index: 0, term: 0 });
    cluster.stabilize();
    for (const id of [1, 2, 3]) expect(cluster.member(id).confState.learners).toEqual([4n]);
  });
});

describe("RawNode elections with conf changes in the log but not applied", () => {
  // Seed 3008005's shape: node 5 holds, after its applied index, the changes that removed 2 and 4,
  // and entries committed under {1,3,5}; a crash lost its commit index, so it still applies {1..5}.
  // Removed nodes 2 and 4 are still running with short logs and grant it their votes.
  async function setUp() {
    const { MemoryStorage } = await import("./memory-storage.js");
    const { RawNode } = await import("./raw-node.js");
    const { createPrng } = await import("../lib/prng.js");
    const { confState } = await import("./util.js");
    const { encodeConfChange } = await import("./conf-change.js");
    const { EntryType, ConfChangeTransition, ConfChangeType, MessageType } = await import("./types.js");
    const initial = confState([1, 2, 3, 4, 5]);
    const remove = (id: number) => encodeConfChange({ transition: ConfChangeTransition.Auto, changes: [{ type: ConfChangeType.RemoveNode, nodeId: nodeId(id) }], context: new Uint8Array(0) });
    const nodes = new Map<number, InstanceType<typeof RawNode>>();
    for (const id of [2, 4, 5]) {
      const storage = new MemoryStorage();
      storage.applySnapshot({ metadata: { index: 5, term: 1, confState: initial }, data: new Uint8Array(0) });
      if (id === 5) {
        storage.append([
          { term: 2, index: 6, type: EntryType.ConfChange, data: remove(2) },
          { term: 2, index: 7, type: EntryType.ConfChange, data: remove(4) },
          { term: 2, index: 8, type: EntryType.Normal, data: new TextEncoder().encode("committed under {1,3,5}") },
        ]);
        storage.setHardState({ term: 2, vote: nodeId(0), commit: 5 });
      }
      nodes.set(id, new RawNode({ id: nodeId(id), group: 0 as never, electionTicks: 10, heartbeatTicks: 1, storage, applied: 5, random: createPrng(id), preVote: false, checkQuorum: false }));
    }
    /** Deliver messages among the running nodes until none move; persistence is instant. */
    const run = () => {
      for (let moved = true; moved;) {
        moved = false;
        for (const node of nodes.values()) {
          if (!node.hasReady()) continue;
          moved = true;
          const ready = node.ready();
          const out = [...ready.messages, ...ready.messagesAfterPersist];
          node.advance();
          for (const message of out) nodes.get(Number(message.to))?.step(message);
        }
      }
    };
    return { nodes, run, MessageType };
  }

  it("a candidate must also win the configurations its unapplied conf changes lead to", async () => {
    const { nodes, run } = await setUp();
    const five = nodes.get(5)!;
    five.campaign();
    run();
    // Votes 2, 4 and 5 are a majority of the applied {1..5} but only one of {1,3,5}: no leader.
    expect(five.status().role).toBe(Role.Candidate);
    expect(five.status().term).toBe(3);
  });

  it("wins once a voter of every such configuration grants its vote", async () => {
    const { nodes, run } = await setUp();
    const { MemoryStorage } = await import("./memory-storage.js");
    const { RawNode } = await import("./raw-node.js");
    const { createPrng } = await import("../lib/prng.js");
    const { confState } = await import("./util.js");
    const storage = new MemoryStorage();
    storage.applySnapshot({ metadata: { index: 5, term: 1, confState: confState([1, 2, 3, 4, 5]) }, data: new Uint8Array(0) });
    nodes.set(3, new RawNode({ id: nodeId(3), group: 0 as never, electionTicks: 10, heartbeatTicks: 1, storage, applied: 5, random: createPrng(3), preVote: false, checkQuorum: false }));
    const five = nodes.get(5)!;
    five.campaign();
    run();
    // 3 and 5 are a majority of {1,3,5} (and of {1,3,4,5}); with 2 and 4, of {1..5} too.
    expect(five.status().role).toBe(Role.Leader);
    expect(five.status().term).toBe(3);
  });
});

describe("RawNode learners with a newer term", () => {
  it("a learner in a newer term answers an older leader's messages with that term, so the leader steps down and the learner follows the next one", async () => {
    const { MessageType } = await import("./types.js");
    const cluster = new TestCluster([1, 2, 3], { preVote: false, checkQuorum: false }, [4]);
    cluster.member(1).node.campaign();
    cluster.stabilize();
    expect(cluster.leader()).toBe(nodeId(1));
    // A vote request of term 9 that went nowhere else (seed 6033145: a member demoted to learner after voting).
    cluster.member(4).node.step({
      group: 0 as never, type: MessageType.Vote, from: nodeId(2), to: nodeId(4), term: 9, logTerm: 0, index: 0,
      entries: [], commit: 0, snapshot: null, reject: false, rejectHint: 0, context: new Uint8Array(0),
    });
    expect(cluster.member(4).node.status().term).toBe(9);
    cluster.member(1).node.propose(text("after"));
    cluster.stabilize();
    // The learner never campaigns, so only its answer can tell the leader of term 9.
    expect(cluster.member(1).node.status().role).toBe(Role.Follower);
    expect(cluster.member(1).node.status().term).toBe(9);
    cluster.tickAll(40);
    const leader = cluster.leader();
    expect(leader).toBeDefined();
    expect(cluster.member(Number(leader)).node.status().term).toBeGreaterThan(9);
    cluster.member(Number(leader)).node.propose(text("later"));
    cluster.stabilize();
    expect(cluster.appliedData(4)).toContain("later");
  });
});
