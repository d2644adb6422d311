import { describe, expect, it } from "vitest";
import { nodeId, type NodeId } from "../lib/ids.js";
import { Inflights, Progress, ProgressTracker, configFromConfState } from "./progress.js";

function tracker(voters: number[], outgoing: number[] = [], matches: Record<number, number> = {}): ProgressTracker {
  const result = new ProgressTracker(configFromConfState({
    voters: voters.map(nodeId), votersOutgoing: outgoing.map(nodeId), learners: [], learnersNext: [], autoLeave: false,
  }), 16, 1 << 20);
  for (const id of new Set([...voters, ...outgoing])) {
    const progress = new Progress(1, false, 16, 1 << 20);
    progress.match = matches[id] ?? 0;
    result.progress.set(nodeId(id), progress);
  }
  return result;
}

describe("quorum arithmetic", () => {
  it("commits the index a majority has, and in a joint config the smaller of both majorities", () => {
    expect(tracker([1, 2, 3], [], { 1: 5, 2: 3, 3: 1 }).committed()).toBe(3);
    expect(tracker([1, 2, 3, 4], [], { 1: 5, 2: 4, 3: 3, 4: 1 }).committed()).toBe(3);
    expect(tracker([1, 2, 3], [1, 4, 5], { 1: 9, 2: 9, 3: 9, 4: 2, 5: 1 }).committed()).toBe(2);
  });

  it("needs both majorities to win a joint election, unless the planted fault is on", () => {
    const joint = tracker([1, 2, 3], [1, 4, 5]);
    const votes = new Map<NodeId, boolean>([[nodeId(1), true], [nodeId(2), true], [nodeId(4), false], [nodeId(5), false]]);
    expect(joint.voteResult(votes)).toBe("lost");
    joint.jointIncomingOnly = true;
    expect(joint.voteResult(votes)).toBe("won");
  });

  it("keeps a vote pending while a majority can still be reached", () => {
    const config = tracker([1, 2, 3, 4, 5]);
    expect(config.voteResult(new Map([[nodeId(1), true], [nodeId(2), false]]))).toBe("pending");
    expect(config.voteResult(new Map([[nodeId(1), false], [nodeId(2), false], [nodeId(3), false]]))).toBe("lost");
  });
});

describe("flow control", () => {
  it("pauses a follower when its in-flight appends reach the cap in count or bytes, and resumes on acknowledgement", () => {
    const inflights = new Inflights(3, 1000);
    inflights.add(10, 100);
    inflights.add(20, 100);
    expect(inflights.full()).toBe(false);
    inflights.add(30, 100);
    expect(inflights.full()).toBe(true);
    inflights.freeLE(20);
    expect(inflights.count).toBe(1);
    expect(inflights.full()).toBe(false);
    inflights.add(40, 950);
    expect(inflights.full()).toBe(true);
  });

  it("a probing follower backs off to the hint but never below its match", () => {
    const progress = new Progress(11, false, 4, 1 << 20);
    progress.match = 3;
    expect(progress.maybeDecrTo(10, 6)).toBe(true);
    expect(progress.next).toBe(7);
    expect(progress.maybeDecrTo(9, 0)).toBe(false); // stale: we no longer probe at 9
    expect(progress.maybeDecrTo(6, 0)).toBe(true);
    expect(progress.next).toBe(4);
  });
});
