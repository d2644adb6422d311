import { describe, expect, it } from "vitest";
import type { FinalValue } from "./durability.js";
import type { Operation } from "./history.js";
import { checkWatch, type WatchEvent } from "./watch.js";

const history: Operation[] = [
  { id: 0, client: 0, key: "a", kind: "write", value: "a1", revision: 2, startMs: 0, endMs: 1, outcome: "ok" },
  { id: 1, client: 1, key: "b", kind: "write", value: "b1", revision: 3, startMs: 0, endMs: 2, outcome: "ok" },
  { id: 2, client: 0, key: "a", kind: "cas-value", expectedValue: "a1", value: "a2", succeeded: true, revision: 4, startMs: 2, endMs: 3, outcome: "ok" },
  { id: 3, client: 1, key: "b", kind: "delete", deleted: 1, revision: 5, startMs: 3, endMs: 4, outcome: "ok" },
  { id: 4, client: 2, key: "c", kind: "write", value: "c1", startMs: 3, endMs: 9, outcome: "unknown" },
];
const events: WatchEvent[] = [
  { type: "put", key: "a", value: "a1", revision: 2 },
  { type: "put", key: "b", value: "b1", revision: 3 },
  { type: "put", key: "a", value: "a2", revision: 4 },
  { type: "delete", key: "b", revision: 5 },
  { type: "put", key: "c", value: "c1", revision: 6 },
];
const final = new Map<string, FinalValue>([["a", { value: "a2", modRevision: 4 }], ["c", { value: "c1", modRevision: 6 }]]);

describe("the watch checker", () => {
  it("accepts a watcher that saw every change once, in order", () => {
    const report = checkWatch(events, history, final, { finalRevision: 6 });
    expect(report).toMatchObject({ valid: true, events: 5 });
  });

  it("reports a duplicated event", () => {
    const report = checkWatch([...events.slice(0, 3), events[2], ...events.slice(3)], history, final, { finalRevision: 6 });
    expect(report.violations.map((violation) => violation.kind)).toContain("duplicate");
  });

  it("reports events out of revision order", () => {
    const swapped = [events[0], events[2], events[1], events[3], events[4]];
    expect(checkWatch(swapped, history, final).violations.map((violation) => violation.kind)).toContain("order");
  });

  it("reports a gap, and names the acknowledged change it lost", () => {
    const report = checkWatch(events.filter((event) => event.revision !== 3), history, final);
    const kinds = report.violations.map((violation) => violation.kind);
    expect(kinds).toContain("gap");
    expect(kinds).toContain("missed");
  });

  it("reports a watcher that stopped short of the store's revision", () => {
    const report = checkWatch(events.slice(0, 4), history, new Map([["a", { value: "a2", modRevision: 4 }]]), { finalRevision: 6 });
    expect(report.violations.some((violation) => violation.kind === "gap" && /stopped at revision 5/.test(violation.message))).toBe(true);
  });

  it("reports an event with a value nobody wrote", () => {
    const forged = events.map((event) => event.revision === 6 ? { ...event, value: "forged" } : event);
    const kinds = checkWatch(forged, history, final).violations.map((violation) => violation.kind);
    expect(kinds).toContain("unexplained");
    expect(kinds).toContain("final-state");
  });

  it("reports a replay that disagrees with the full read", () => {
    const report = checkWatch(events, history, new Map([["a", { value: "a2", modRevision: 4 }], ["b", { value: "b1", modRevision: 3 }]]));
    expect(report.violations.filter((violation) => violation.kind === "final-state")).toHaveLength(2);
  });

  it("allows non-successive revisions when told other writers exist", () => {
    const sparse = events.filter((event) => event.revision !== 5).map((event) => event);
    const finalSparse = new Map<string, FinalValue>([["a", { value: "a2", modRevision: 4 }], ["b", { value: "b1", modRevision: 3 }], ["c", { value: "c1", modRevision: 6 }]]);
    const withoutDelete = history.filter((operation) => operation.kind !== "delete");
    expect(checkWatch(sparse, withoutDelete, finalSparse, { contiguous: false }).valid).toBe(true);
    expect(checkWatch(sparse, withoutDelete, finalSparse).valid).toBe(false);
  });
});
