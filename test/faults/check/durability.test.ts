import { describe, expect, it } from "vitest";
import { checkDurability, type FinalValue } from "./durability.js";
import type { Operation } from "./history.js";

let nextId = 0;
function op(fields: Partial<Operation> & Pick<Operation, "kind" | "startMs" | "endMs">): Operation {
  return { id: nextId++, client: 0, key: "k", outcome: "ok", ...fields };
}
const finals = (entries: [string, string | null, number][]): Map<string, FinalValue> =>
  new Map(entries.map(([key, value, modRevision]) => [key, { value, modRevision }]));

describe("the durability checker", () => {
  it("accepts a final read showing the last acknowledged write", () => {
    const history = [op({ kind: "write", value: "a", revision: 2, startMs: 0, endMs: 1 }), op({ kind: "write", value: "b", revision: 3, startMs: 2, endMs: 3 })];
    const report = checkDurability(history, finals([["k", "b", 3]]));
    expect(report.valid).toBe(true);
    expect(report.acknowledgedWrites).toBe(2);
  });

  it("reports an acknowledged write that vanished with nothing after it", () => {
    const history = [op({ kind: "write", value: "a", revision: 2, startMs: 0, endMs: 1 }), op({ kind: "write", value: "b", revision: 3, startMs: 2, endMs: 3 })];
    const report = checkDurability(history, finals([["k", "a", 2]]));
    expect(report.valid).toBe(false);
    expect(report.violations.map((violation) => violation.kind)).toContain("lost-write");
  });

  it("reports an acknowledged write gone from a key now missing", () => {
    const report = checkDurability([op({ kind: "write", value: "a", revision: 2, startMs: 0, endMs: 1 })], finals([["k", null, 0]]));
    expect(report.violations[0].kind).toBe("lost-write");
  });

  it("accepts a write overwritten by a concurrent one, or by one whose outcome is unknown", () => {
    const concurrent = [op({ kind: "write", value: "a", revision: 3, startMs: 0, endMs: 5 }), op({ kind: "write", value: "b", revision: 2, startMs: 1, endMs: 2 })];
    expect(checkDurability(concurrent, finals([["k", "a", 3]])).valid).toBe(true);
    const unknown = [op({ kind: "write", value: "a", revision: 2, startMs: 0, endMs: 1 }), op({ kind: "delete", outcome: "unknown", startMs: 0.5, endMs: 9 })];
    expect(checkDurability(unknown, finals([["k", null, 0]])).valid).toBe(true);
  });

  it("does not count a failed compare-and-swap as an overwrite", () => {
    const history = [
      op({ kind: "write", value: "a", revision: 2, startMs: 0, endMs: 1 }),
      op({ kind: "cas-value", expectedValue: "x", value: "b", succeeded: false, startMs: 2, endMs: 3 }),
    ];
    expect(checkDurability(history, finals([["k", "b", 3]])).violations.map((violation) => violation.kind)).toEqual(["unexplained-value", "lost-write"]);
  });

  it("reports a final value nobody wrote, and a value at the wrong revision", () => {
    expect(checkDurability([op({ kind: "read", readValue: null, startMs: 0, endMs: 1 })], finals([["k", "ghost", 9]])).violations[0].kind).toBe("unexplained-value");
    const history = [op({ kind: "write", value: "a", revision: 2, startMs: 0, endMs: 1 })];
    expect(checkDurability(history, finals([["k", "a", 5]])).violations[0].kind).toBe("revision-mismatch");
  });

  it("reports a key that was never read at the end", () => {
    const report = checkDurability([op({ kind: "write", value: "a", revision: 2, startMs: 0, endMs: 1 })], new Map());
    expect(report.valid).toBe(false);
    expect(report.violations[0].message).toMatch(/no final read/);
  });

  it("accepts an acknowledged delete the final read confirms", () => {
    const history = [op({ kind: "write", value: "a", revision: 2, startMs: 0, endMs: 1 }), op({ kind: "delete", deleted: 1, startMs: 2, endMs: 3 })];
    expect(checkDurability(history, finals([["k", null, 0]])).valid).toBe(true);
    expect(checkDurability(history, finals([["k", "a", 2]])).valid).toBe(false);
  });
});
