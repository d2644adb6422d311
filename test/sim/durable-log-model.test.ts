import { describe, expect, it } from "vitest";
import { groupId, nodeId } from "../../src/lib/ids.js";
import type { Entry } from "../../src/raft/types.js";
import type { WalRecord } from "../../src/storage/wal/wal.js";
import { DurabilityLedger, DurableLogState } from "../../src/sim/durable-log-model.js";

const G = groupId(0);
const conf = { voters: [nodeId(1)], votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false };

function entries(first: number, terms: number[]): WalRecord {
  const list: Entry[] = terms.map((term, k) => ({ index: first + k, term, type: 0, data: new Uint8Array([k]) }));
  return { type: "entries", group: G, entries: list };
}

function hard(term: number, commit: number): WalRecord {
  return { type: "hardState", group: G, hardState: { term, vote: nodeId(1), commit } };
}

function marker(index: number, term: number): WalRecord {
  return { type: "snapshot", group: G, metadata: { index, term, confState: conf } };
}

function stateOf(records: WalRecord[]): DurableLogState {
  const state = new DurableLogState();
  for (const record of records) state.apply(record);
  return state;
}

describe("the durable log model", () => {
  it("replaces the log from the first index of new entries", () => {
    const state = stateOf([entries(1, [1, 1, 1, 1]), entries(3, [2])]);
    expect([state.firstIndex, state.lastIndex, state.terms]).toEqual([1, 3, [1, 1, 2]]);
  });

  it("compacts up to a marker that matches the log and replaces the log for one that does not", () => {
    const compacted = stateOf([entries(1, [1, 1, 2, 2]), marker(2, 1)]);
    expect([compacted.firstIndex, compacted.lastIndex, compacted.terms, compacted.termAt(2)]).toEqual([3, 4, [2, 2], 1]);
    const replaced = stateOf([entries(1, [1, 1, 2, 2]), marker(3, 5)]);
    expect([replaced.firstIndex, replaced.lastIndex, replaced.terms]).toEqual([4, 3, []]);
    const beyond = stateOf([entries(1, [1]), marker(9, 3)]);
    expect([beyond.firstIndex, beyond.lastIndex]).toEqual([10, 9]);
  });

  it("names the first difference between two states", () => {
    const base = stateOf([entries(1, [1, 1, 2]), hard(2, 2)]);
    expect(base.difference(base.clone())).toBeNull();
    expect(base.difference(stateOf([entries(1, [1, 1, 2]), hard(2, 1)]))).toMatch(/hard state term=2 vote=1 commit=1, expected term=2 vote=1 commit=2/);
    expect(base.difference(stateOf([entries(1, [1, 1]), hard(2, 2)]))).toMatch(/log 1..2, expected 1..3/);
    expect(base.difference(stateOf([entries(1, [1, 2, 2]), hard(2, 2)]))).toMatch(/entry 2 has term 2, expected 1/);
    expect(stateOf([marker(0, 0)]).difference(stateOf([]))).toMatch(/snapshot marker none/);
  });

  it("refuses to apply entries that leave a gap", () => {
    expect(() => stateOf([entries(1, [1]), entries(5, [1])])).toThrow(/do not join/);
  });
});

describe("the durability ledger", () => {
  it("accepts the acknowledged state plus any prefix of the records in flight", () => {
    const acknowledged = [entries(1, [1, 1]), hard(1, 1)];
    const inFlight = [entries(3, [1]), hard(1, 3)];
    for (let kept = 0; kept <= inFlight.length; kept++) {
      const ledger = new DurabilityLedger();
      ledger.appended(acknowledged);
      ledger.acknowledge(acknowledged);
      ledger.appended(inFlight);
      expect(ledger.pendingAppends).toBe(1);
      expect(ledger.recover(stateOf([...acknowledged, ...inFlight.slice(0, kept)]))).toBeNull();
      expect(ledger.pendingAppends).toBe(0);
    }
  });

  it("reports an acknowledged record that recovery lost", () => {
    const ledger = new DurabilityLedger();
    const first = [entries(1, [1, 1])];
    const second = [hard(1, 2)];
    for (const records of [first, second]) {
      ledger.appended(records);
      ledger.acknowledge(records);
    }
    expect(ledger.recover(stateOf(first))).toMatch(/hard state none, expected term=1 vote=1 commit=2/);
  });

  it("reports a record recovery found that was never appended, or records out of order", () => {
    const ledger = new DurabilityLedger();
    const appended = [entries(1, [1]), hard(1, 0)];
    ledger.appended(appended);
    expect(ledger.recover(stateOf([hard(1, 0)]))).not.toBeNull();
    expect(ledger.recover(stateOf([entries(1, [2])]))).toMatch(/entry 1 has term 2, expected 1|log/);
    expect(ledger.recover(stateOf([...appended, entries(2, [1])]))).not.toBeNull();
  });

  it("insists that appends are acknowledged in the order they were made", () => {
    const ledger = new DurabilityLedger();
    const first = [entries(1, [1])];
    const second = [hard(1, 1)];
    ledger.appended(first);
    ledger.appended(second);
    expect(() => ledger.acknowledge(second)).toThrow(/out of order/);
  });
});
