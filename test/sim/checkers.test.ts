import { describe, expect, it } from "vitest";
import { nodeId, type NodeId } from "../../src/lib/ids.js";
import { EntryType } from "../../src/raft/types.js";
import { SafetyChecker, digestBytes } from "../../src/sim/checkers.js";
import { ShadowLog } from "../../src/sim/shadow-log.js";

const [n1, n2, n3] = [1, 2, 3].map((id) => nodeId(id)) as NodeId[];

/** A log view holding the given terms at indexes 1..n. */
function logOf(terms: number[]): ShadowLog {
  const log = new ShadowLog();
  log.append(terms.map((term, position) => ({ term, index: position + 1, type: EntryType.Normal, data: new Uint8Array(0) })));
  return log;
}

describe("the safety checker", () => {
  it("accepts a consistent history", () => {
    const checker = new SafetyChecker();
    checker.observeLeader(n1, 1, logOf([1]));
    for (const node of [n1, n2, n3]) {
      checker.observePersisted(node, 1, 1, 0, 11);
      checker.observePersisted(node, 2, 1, 1, 22);
    }
    checker.observeCommit(n1, 2, 1);
    for (const node of [n1, n2]) {
      checker.observeApply(node, 1, 1, 11);
      checker.observeApply(node, 2, 1, 22);
    }
    checker.observeAcknowledged(2);
    const required = checker.readRequirement();
    checker.observeRead(n2, 2, required, 2);
    checker.observeLeader(n2, 2, logOf([1, 1, 2]));
    expect(checker.firstViolation).toBeNull();
    expect(checker.checks).toBeGreaterThan(8);
  });

  it("reports two leaders in one term", () => {
    const checker = new SafetyChecker();
    checker.observeLeader(n1, 3, logOf([]));
    checker.observeLeader(n1, 3, logOf([]));
    expect(checker.firstViolation).toBeNull();
    checker.observeLeader(n2, 3, logOf([]));
    expect(checker.firstViolation?.property).toBe("election-safety");
  });

  it("reports two persisted entries with one index and term but different data", () => {
    const checker = new SafetyChecker();
    checker.observePersisted(n1, 5, 2, 2, 100);
    checker.observePersisted(n2, 5, 2, 2, 101);
    expect(checker.firstViolation?.property).toBe("log-matching");
  });

  it("reports matching entries whose predecessors differ in term", () => {
    const checker = new SafetyChecker();
    checker.observePersisted(n1, 5, 3, 2, 100);
    checker.observePersisted(n2, 5, 3, 1, 100);
    expect(checker.firstViolation?.property).toBe("log-matching");
  });

  it("allows different entries at one index in different terms (an uncommitted entry overwritten)", () => {
    const checker = new SafetyChecker();
    checker.observePersisted(n1, 5, 2, 2, 100);
    checker.observePersisted(n2, 5, 3, 2, 200);
    expect(checker.firstViolation).toBeNull();
  });

  it("reports a leader whose log lacks an entry committed in an earlier term", () => {
    const checker = new SafetyChecker();
    checker.observeCommit(n1, 3, 2);
    checker.observeLeader(n2, 4, logOf([1, 1]));
    expect(checker.firstViolation?.property).toBe("leader-completeness");
  });

  it("reports a leader holding another term at a committed index", () => {
    const checker = new SafetyChecker();
    checker.observeCommit(n1, 3, 2);
    checker.observeLeader(n2, 4, logOf([1, 1, 3]));
    expect(checker.firstViolation?.property).toBe("leader-completeness");
  });

  it("does not hold a leader to entries committed below its snapshot", () => {
    const checker = new SafetyChecker();
    checker.observeCommit(n1, 3, 2);
    const log = new ShadowLog();
    log.installSnapshot(10, 3);
    checker.observeLeader(n2, 4, log);
    expect(checker.firstViolation).toBeNull();
  });

  it("reports two nodes applying different entries at one index", () => {
    const checker = new SafetyChecker();
    checker.observeApply(n1, 7, 2, digestBytes(new TextEncoder().encode("a=1")));
    checker.observeApply(n2, 7, 2, digestBytes(new TextEncoder().encode("a=2")));
    expect(checker.firstViolation?.property).toBe("state-machine-safety");
  });

  it("reports an index committed with two different terms", () => {
    const checker = new SafetyChecker();
    checker.observeCommit(n1, 4, 2);
    checker.observeCommit(n2, 4, 3);
    expect(checker.firstViolation?.property).toBe("state-machine-safety");
  });

  it("reports an applied entry that contradicts the committed term", () => {
    const checker = new SafetyChecker();
    checker.observeCommit(n1, 4, 2);
    checker.observeApply(n3, 4, 3, 5);
    expect(checker.firstViolation?.property).toBe("state-machine-safety");
  });

  it("reports a snapshot restored with another term than the entry applied at its index", () => {
    const checker = new SafetyChecker();
    checker.observeApply(n1, 9, 2, 5);
    checker.observeSnapshotRestore(n2, 9, 2);
    expect(checker.firstViolation).toBeNull();
    checker.observeSnapshotRestore(n3, 9, 4);
    expect(checker.firstViolation?.property).toBe("state-machine-safety");
  });

  it("reports a read that misses a write acknowledged before it was issued", () => {
    const checker = new SafetyChecker();
    checker.observeAcknowledged(12);
    const required = checker.readRequirement();
    checker.observeAcknowledged(15); // acknowledged after the read was issued: not required
    checker.observeRead(n2, 12, required, 12);
    expect(checker.firstViolation).toBeNull();
    checker.observeRead(n3, 11, required, 11);
    expect(checker.firstViolation?.property).toBe("linearizable-read");
  });

  it("keeps the first violation only", () => {
    const checker = new SafetyChecker();
    checker.setTime(42);
    checker.observeLeader(n1, 1, logOf([]));
    checker.observeLeader(n2, 1, logOf([]));
    checker.observePersisted(n1, 1, 1, 0, 1);
    checker.observePersisted(n2, 1, 1, 0, 2);
    expect(checker.firstViolation).toMatchObject({ property: "election-safety", timeMs: 42 });
  });
});

describe("the shadow log", () => {
  it("truncates on a conflicting append and answers terms around its snapshot", () => {
    const log = logOf([1, 1, 2, 2]);
    log.append([{ term: 3, index: 3, type: EntryType.Normal, data: new Uint8Array(0) }]);
    expect(log.lastIndex).toBe(3);
    expect(log.termAt(3)).toBe(3);
    expect(log.termAt(4)).toBeUndefined();
    log.installSnapshot(8, 3);
    expect(log.termAt(8)).toBe(3);
    expect(log.termAt(7)).toBeUndefined();
  });

  it("refuses an append that leaves a gap", () => {
    const log = logOf([1]);
    expect(() => log.append([{ term: 1, index: 5, type: EntryType.Normal, data: new Uint8Array(0) }])).toThrow();
  });
});
