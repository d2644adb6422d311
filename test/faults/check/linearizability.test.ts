import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { generateHistory } from "./generate.js";
import { MalformedHistoryError, type Operation } from "./history.js";
import { checkKey, checkLinearizable } from "./linearizability.js";

let nextId = 0;
/** A hand-made operation: [start, end] on one client, outcome ok unless said otherwise. */
function op(fields: Partial<Operation> & Pick<Operation, "kind" | "startMs" | "endMs">): Operation {
  return { id: nextId++, client: 0, key: "k", outcome: "ok", ...fields };
}
const write = (value: string, startMs: number, endMs: number, revision?: number, extra: Partial<Operation> = {}): Operation =>
  op({ kind: "write", value, startMs, endMs, revision, ...extra });
const read = (value: string | null, startMs: number, endMs: number, modRevision?: number, extra: Partial<Operation> = {}): Operation =>
  op({ kind: "read", readValue: value, readModRevision: modRevision, startMs, endMs, ...extra });

describe("the linearizability checker on hand-made histories", () => {
  it("accepts sequential writes and reads that see the latest value", () => {
    const report = checkLinearizable([write("a", 0, 1, 2), read("a", 2, 3, 2), write("b", 4, 5, 3), read("b", 6, 7, 3)]);
    expect(report.valid).toBe(true);
  });

  it("accepts a read concurrent with a write seeing either value", () => {
    for (const seen of ["a", "b"]) {
      const report = checkLinearizable([write("a", 0, 1, 2), write("b", 2, 6, 3), read(seen, 3, 4)]);
      expect(report.valid, `read of ${seen}`).toBe(true);
    }
  });

  it("rejects a stale read: the new value was acknowledged before the read began", () => {
    const history = [write("a", 0, 1, 2), write("b", 2, 3, 3), read("a", 4, 5, 2)];
    const report = checkLinearizable(history);
    expect(report.valid).toBe(false);
    expect(report.failures[0].window?.map((operation) => operation.id)).toEqual([history[1].id, history[2].id]);
  });

  it("rejects a lost write: an acknowledged write that a later read of a missing key does not see", () => {
    const report = checkLinearizable([write("a", 0, 1, 2), read(null, 2, 3)]);
    expect(report.valid).toBe(false);
  });

  it("rejects a read of a value never written", () => {
    const report = checkLinearizable([write("a", 0, 1, 2), read("ghost", 2, 3, 7)]);
    expect(report.valid).toBe(false);
    expect(report.failures[0].window?.length).toBeGreaterThan(0);
  });

  it("rejects a lost update: two compare-and-swaps from the same value both succeed", () => {
    const history = [
      write("a", 0, 1, 2),
      op({ kind: "cas-value", expectedValue: "a", value: "b", succeeded: true, revision: 3, startMs: 2, endMs: 5, client: 1 }),
      op({ kind: "cas-value", expectedValue: "a", value: "c", succeeded: true, revision: 4, startMs: 2, endMs: 5, client: 2 }),
    ];
    expect(checkLinearizable(history).valid).toBe(false);
  });

  it("rejects a lost update through mod_revision: both swaps compared against the same revision", () => {
    const history = [
      write("a", 0, 1, 2),
      op({ kind: "cas-revision", expectedModRevision: 2, value: "b", succeeded: true, revision: 3, startMs: 2, endMs: 5, client: 1 }),
      op({ kind: "cas-revision", expectedModRevision: 2, value: "c", succeeded: true, revision: 4, startMs: 3, endMs: 6, client: 2 }),
    ];
    expect(checkLinearizable(history).valid).toBe(false);
  });

  it("accepts a failed compare-and-swap that lost the race to a concurrent one", () => {
    const history = [
      write("a", 0, 1, 2),
      op({ kind: "cas-revision", expectedModRevision: 2, value: "b", succeeded: true, revision: 3, startMs: 2, endMs: 5, client: 1 }),
      op({ kind: "cas-revision", expectedModRevision: 2, value: "c", succeeded: false, startMs: 3, endMs: 6, client: 2 }),
      read("b", 7, 8, 3),
    ];
    expect(checkLinearizable(history).valid).toBe(true);
  });

  it("rejects a compare on a missing key's mod_revision 0 that fails while the key is missing", () => {
    const history = [op({ kind: "cas-revision", expectedModRevision: 0, value: "a", succeeded: false, startMs: 0, endMs: 1 })];
    expect(checkLinearizable(history).valid).toBe(false);
  });

  it("lets an indeterminate write take effect long after the client gave up", () => {
    const history = [write("a", 0, 1, 2), write("b", 2, 3, undefined, { outcome: "unknown" }), read("a", 4, 5, 2), read("b", 10, 11, 3)];
    expect(checkLinearizable(history).valid).toBe(true);
  });

  it("lets an indeterminate write never take effect", () => {
    const history = [write("a", 0, 1, 2), write("b", 2, 3, undefined, { outcome: "unknown" }), read("a", 10, 11, 2)];
    expect(checkLinearizable(history).valid).toBe(true);
  });

  it("does not let an indeterminate write take effect before it was sent", () => {
    const history = [write("a", 0, 1, 2), read("b", 2, 3, 3), write("b", 4, 5, undefined, { outcome: "unknown" })];
    expect(checkLinearizable(history).valid).toBe(false);
  });

  it("does not let an indeterminate write take effect twice", () => {
    const history = [
      write("a", 0, 1, 2), write("b", 2, 3, undefined, { outcome: "unknown" }),
      read("b", 4, 5, 3), write("c", 6, 7, 4), read("b", 8, 9, 3),
    ];
    expect(checkLinearizable(history).valid).toBe(false);
  });

  it("ignores operations that certainly failed and reads whose answer never came", () => {
    const history = [write("a", 0, 1, 2), write("b", 2, 3, undefined, { outcome: "fail" }), read("zzz", 4, 5, undefined, { outcome: "unknown" }), read("a", 6, 7, 2)];
    expect(checkLinearizable(history).valid).toBe(true);
    expect(checkLinearizable([write("a", 0, 1, 2), write("b", 2, 3, undefined, { outcome: "fail" }), read("b", 4, 5)]).valid).toBe(false);
  });

  it("checks delete counts against the state", () => {
    expect(checkLinearizable([write("a", 0, 1, 2), op({ kind: "delete", deleted: 1, startMs: 2, endMs: 3 }), read(null, 4, 5)]).valid).toBe(true);
    expect(checkLinearizable([op({ kind: "delete", deleted: 1, startMs: 0, endMs: 1 })]).valid).toBe(false);
  });

  it("reports one value seen at two mod_revisions, or two values at one", () => {
    const verdict = checkKey("k", [write("a", 0, 1, 2), write("b", 2, 3, 3), read("b", 4, 5, 2)]);
    expect(verdict.result).toBe("not-linearizable");
    expect(verdict.reason).toMatch(/revision 2/);
  });

  it("checks keys independently and names the failing one", () => {
    const history = [write("a", 0, 1, 2, { key: "x" }), read("a", 2, 3, 2, { key: "x" }), write("a", 0, 1, 3, { key: "y" }), read(null, 2, 3, undefined, { key: "y" })];
    const report = checkLinearizable(history);
    expect(report.failures.map((verdict) => verdict.key)).toEqual(["y"]);
    expect(report.keys).toHaveLength(2);
  });

  it("reports a small window inside a long history", () => {
    const history: Operation[] = [];
    for (let index = 0; index < 60; index++) history.push(write(`v${index}`, index * 10, index * 10 + 5, index + 2));
    history.push(read("v10", 700, 705, 12));
    const report = checkLinearizable(history);
    expect(report.valid).toBe(false);
    const window = report.failures[0].window ?? [];
    expect(window.length).toBeLessThanOrEqual(3);
    expect(window.at(-1)?.kind).toBe("read");
  });

  it("refuses a malformed operation with a clear error", () => {
    expect(() => checkLinearizable([op({ kind: "write", startMs: 0, endMs: 1 })])).toThrow(MalformedHistoryError);
    expect(() => checkLinearizable([read("a", 5, 1)])).toThrow(/ends .* before it starts/);
  });

  it("gives up as inconclusive, not as a verdict, when the search budget runs out", () => {
    const history = generateHistory({ seed: 7, clients: 8, operations: 200, keys: 1, durationMax: 40 });
    const report = checkLinearizable(history, { searchStatesMax: 5 });
    expect(report.valid).toBe(false);
    expect(report.inconclusive.length + report.failures.length).toBeGreaterThan(0);
    expect(report.inconclusive.length).toBe(1);
  });
});

// ------------------------------------------------------------ the naive reference

/** Register semantics written out again, independently of the checker's. */
function bruteForceLinearizable(operations: readonly Operation[]): boolean {
  const revisionValue = new Map<number, string>();
  for (const operation of operations) {
    if (operation.outcome !== "ok") continue;
    const pairs: [number | undefined, string | null | undefined][] = [[operation.readModRevision, operation.readValue]];
    if (operation.kind === "write" || operation.succeeded === true) pairs.push([operation.revision, operation.value]);
    for (const [revision, value] of pairs) {
      if (revision === undefined || typeof value !== "string") continue;
      if (revisionValue.has(revision) && revisionValue.get(revision) !== value) return false;
      revisionValue.set(revision, value);
    }
  }
  const relevant = operations.filter((operation) => operation.outcome !== "fail" && !(operation.kind === "read" && operation.outcome !== "ok"));
  const mustPrecede = (a: Operation, b: Operation): boolean => a.outcome === "ok" && a.endMs < b.startMs;
  const run = (order: readonly Operation[]): boolean => {
    let value: string | null = null;
    for (const operation of order) {
      const ok = operation.outcome === "ok";
      if (operation.kind === "read") {
        if (value !== operation.readValue) return false;
      } else if (operation.kind === "write") {
        value = operation.value ?? null;
      } else if (operation.kind === "delete") {
        if (ok && (value === null) === ((operation.deleted ?? 0) > 0)) return false;
        value = null;
      } else {
        const target = operation.kind === "cas-value" ? operation.expectedValue
          : operation.expectedModRevision === 0 ? null : revisionValue.get(operation.expectedModRevision ?? -1);
        const holds = target !== undefined && (operation.kind === "cas-value" ? value !== null && value === target : value === target);
        if (ok && holds !== operation.succeeded) return false;
        if (holds) value = operation.value ?? null;
      }
    }
    return true;
  };
  // Every order of every subset that keeps all answered operations and respects real time.
  const permute = (chosen: Operation[], rest: Operation[]): boolean => {
    if (rest.every((operation) => operation.outcome !== "ok") && run(chosen)) return true;
    for (let index = 0; index < rest.length; index++) {
      const candidate = rest[index];
      const others = rest.filter((_, other) => other !== index);
      if (others.some((other) => mustPrecede(other, candidate))) continue;
      if (permute([...chosen, candidate], others)) return true;
    }
    return false;
  };
  return permute([], relevant);
}

describe("the linearizability checker against a brute-force reference", () => {
  it("agrees on many small random histories, correct and corrupted", () => {
    let linearizable = 0;
    let not = 0;
    fc.assert(fc.property(
      fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 1, max: 4 }),
      (seed, operations, corruptions, clients) => {
        const history = generateHistory({ seed, clients, operations, keys: 1, corruptions, unknownProbability: 0.2, durationMax: 6 });
        const expected = bruteForceLinearizable(history);
        const verdict = checkKey("k0", history);
        expect(verdict.result === "linearizable", JSON.stringify(history)).toBe(expected);
        if (expected) linearizable++;
        else not++;
      },
    ), { numRuns: 1500 });
    // Both answers must have been exercised, or the agreement says little.
    expect(linearizable).toBeGreaterThan(100);
    expect(not).toBeGreaterThan(100);
  });

  it("agrees when most outcomes are unknown (the search's symmetry and idle-step pruning)", () => {
    let not = 0;
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 2, max: 8 }), fc.integer({ min: 0, max: 2 }), (seed, operations, corruptions) => {
      const history = generateHistory({ seed, clients: 4, operations, keys: 1, corruptions, unknownProbability: 0.6, durationMax: 6 });
      const expected = bruteForceLinearizable(history);
      expect(checkKey("k0", history).result === "linearizable", JSON.stringify(history)).toBe(expected);
      if (!expected) not++;
    }), { numRuns: 1500 });
    expect(not).toBeGreaterThan(50);
  });

  it("accepts every uncorrupted generated history, many keys and clients", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const report = checkLinearizable(generateHistory({ seed, clients: 10, operations: 400, keys: 4 }));
      expect(report.valid, `seed ${seed}: ${JSON.stringify(report.failures[0]?.reason)}`).toBe(true);
    }
  });
});
