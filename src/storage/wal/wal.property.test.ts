/**
 * Property tests of the WAL against a deliberately naive model: random
 * appends (with conflicting suffixes), hard states, compactions, snapshot
 * installs, clean restarts, and power cuts in the middle of a burst of
 * unacknowledged appends (with and without torn writes). After every step the
 * WAL must read back exactly what the model holds; after a power cut, what the
 * model held after some prefix of the burst that includes every acknowledged
 * append.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { groupId, nodeId, NO_NODE, type GroupId } from "../../lib/ids.js";
import { createPrng } from "../../lib/prng.js";
import type { ConfState, Entry, HardState, SnapshotMetadata } from "../../raft/types.js";
import { MemoryFileSystem } from "../fs/memory-file-system.js";
import { dumpWal, entryData, openTestWal, plain } from "./test-support.js";
import type { Wal, WalRecord } from "./wal.js";

interface ModelGroup {
  firstIndex: number;
  lastIndex: number;
  entries: Map<number, Entry>;
  hardState: HardState | null;
  snapshot: SnapshotMetadata | null;
}
type Model = Map<GroupId, ModelGroup>;

const GROUPS = 3;
const conf = (members: number): ConfState => ({
  voters: Array.from({ length: members }, (_, k) => nodeId(k + 1)), votersOutgoing: [], learners: [], learnersNext: [], autoLeave: false,
});

function cloneModel(model: Model): Model {
  return new Map([...model].map(([id, group]) => [id, { ...group, entries: new Map(group.entries) }]));
}

function modelGroup(model: Model, id: GroupId): ModelGroup {
  let group = model.get(id);
  if (!group) {
    group = { firstIndex: 1, lastIndex: 0, entries: new Map(), hardState: null, snapshot: null };
    model.set(id, group);
  }
  return group;
}

function modelTerm(group: ModelGroup, index: number): number {
  if (index >= group.firstIndex && index <= group.lastIndex) return (group.entries.get(index) as Entry).term;
  if (group.snapshot && index === group.snapshot.index) return group.snapshot.term;
  return 0;
}

/** Applies a record to the model: the reference semantics, written as plainly as possible. */
function applyToModel(model: Model, record: WalRecord): void {
  const group = modelGroup(model, record.group);
  if (record.type === "hardState") {
    group.hardState = record.hardState;
  } else if (record.type === "entries") {
    const first = record.entries[0].index;
    for (const index of [...group.entries.keys()]) if (index >= first) group.entries.delete(index);
    for (const entry of record.entries) group.entries.set(entry.index, entry);
    group.lastIndex = first + record.entries.length - 1;
  } else {
    const { index, term } = record.metadata;
    const keepsLog = index === group.firstIndex - 1 || (index >= group.firstIndex && index <= group.lastIndex && modelTerm(group, index) === term);
    if (keepsLog) {
      for (const key of [...group.entries.keys()]) if (key <= index) group.entries.delete(key);
      group.firstIndex = Math.max(group.firstIndex, index + 1);
    } else {
      group.entries.clear();
      group.firstIndex = index + 1;
      group.lastIndex = index;
    }
    group.snapshot = record.metadata;
  }
}

function dumpModel(model: Model): unknown {
  return [...model.keys()].sort((a, b) => a - b).map((id) => {
    const group = model.get(id) as ModelGroup;
    const entries: Entry[] = [];
    for (let index = group.firstIndex; index <= group.lastIndex; index++) entries.push(group.entries.get(index) as Entry);
    return { group: id, hardState: group.hardState, snapshot: group.snapshot, firstIndex: group.firstIndex, lastIndex: group.lastIndex, entries: plain(entries) };
  });
}

// Raw operations carry random numbers; turnIntoRecord maps them onto a record that is valid for the model's current state.
type RawOperation =
  | { kind: "append"; group: number; back: number; count: number; bumps: number[]; length: number; conf: boolean }
  | { kind: "hardState"; group: number; bump: number; commit: number }
  | { kind: "compact"; group: number; at: number }
  | { kind: "install"; group: number; ahead: number; bump: number; members: number }
  | { kind: "conflictingInstall"; group: number; at: number };

type Step =
  | { kind: "record"; operation: RawOperation }
  | { kind: "restart" }
  | { kind: "powerCut"; operations: RawOperation[]; pauses: boolean[]; ticks: number; torn: boolean; seed: number };

function turnIntoRecord(model: Model, raw: RawOperation): WalRecord | null {
  const id = groupId(raw.group);
  const group = model.get(id) ?? { firstIndex: 1, lastIndex: 0, entries: new Map(), hardState: null, snapshot: null };
  switch (raw.kind) {
    case "append": {
      const start = Math.max(group.firstIndex, group.lastIndex + 1 - raw.back);
      let term = Math.max(1, modelTerm(group, start - 1));
      const entries: Entry[] = [];
      for (let k = 0; k < raw.count; k++) {
        term += raw.bumps[k] ?? 0;
        const index = start + k;
        entries.push({ index, term, type: raw.conf && k === 0 ? 1 : 0, data: entryData(raw.group, index, term, raw.length) });
      }
      return { type: "entries", group: id, entries };
    }
    case "hardState": {
      const term = (group.hardState?.term ?? 0) + raw.bump;
      return { type: "hardState", group: id, hardState: { term, vote: raw.commit % 2 === 0 ? NO_NODE : nodeId(raw.commit), commit: raw.commit } };
    }
    case "compact": {
      if (group.lastIndex < group.firstIndex) return null;
      const index = group.firstIndex + Math.floor(raw.at * (group.lastIndex - group.firstIndex + 1));
      return { type: "snapshot", group: id, metadata: { index, term: modelTerm(group, index), confState: conf(3) } };
    }
    case "install": {
      const index = group.lastIndex + raw.ahead;
      const term = Math.max(1, modelTerm(group, group.lastIndex)) + raw.bump;
      return { type: "snapshot", group: id, metadata: { index, term, confState: conf(raw.members) } };
    }
    case "conflictingInstall": {
      if (group.lastIndex < group.firstIndex) return null;
      const index = group.firstIndex + Math.floor(raw.at * (group.lastIndex - group.firstIndex + 1));
      return { type: "snapshot", group: id, metadata: { index, term: modelTerm(group, index) + 1, confState: conf(5) } };
    }
  }
}

const rawOperation: fc.Arbitrary<RawOperation> = fc.oneof(
  { weight: 6, arbitrary: fc.record({
    kind: fc.constant("append" as const), group: fc.nat(GROUPS - 1), back: fc.oneof(fc.constant(0), fc.nat(4)),
    count: fc.integer({ min: 1, max: 4 }), bumps: fc.array(fc.nat(1), { maxLength: 4 }), length: fc.nat(60), conf: fc.boolean(),
  }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("hardState" as const), group: fc.nat(GROUPS - 1), bump: fc.nat(2), commit: fc.nat(50) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("compact" as const), group: fc.nat(GROUPS - 1), at: fc.double({ min: 0, max: 0.999, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("install" as const), group: fc.nat(GROUPS - 1), ahead: fc.integer({ min: 1, max: 5 }), bump: fc.nat(2), members: fc.integer({ min: 1, max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("conflictingInstall" as const), group: fc.nat(GROUPS - 1), at: fc.double({ min: 0, max: 0.999, noNaN: true }) }) },
);

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 10, arbitrary: rawOperation.map((operation) => ({ kind: "record" as const, operation })) },
  { weight: 1, arbitrary: fc.constant({ kind: "restart" as const }) },
  { weight: 2, arbitrary: fc.record({
    kind: fc.constant("powerCut" as const), operations: fc.array(rawOperation, { minLength: 1, maxLength: 6 }),
    pauses: fc.array(fc.boolean(), { maxLength: 6 }), ticks: fc.nat(3), torn: fc.boolean(), seed: fc.nat(),
  }) },
);

const options = fc.record({ segmentBytes: fc.constantFrom(160, 256, 512, 2048), cacheBytesMax: fc.constantFrom(200, 1000, 1 << 20) });

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function run(steps: readonly Step[], walOptions: { segmentBytes: number; cacheBytesMax: number }): Promise<void> {
  let fs = new MemoryFileSystem({ latency: "macrotask" });
  let wal: Wal = await openTestWal(fs, walOptions);
  let model: Model = new Map();
  for (const current of steps) {
    if (current.kind === "record") {
      const record = turnIntoRecord(model, current.operation);
      if (!record) continue;
      await wal.append([record]);
      applyToModel(model, record);
    } else if (current.kind === "restart") {
      await wal.close();
      wal = await openTestWal(fs, walOptions);
      expect(wal.recovery.tornTail).toBeNull();
    } else {
      const states = [cloneModel(model)];
      const acknowledged: boolean[] = [];
      const pending: Promise<unknown>[] = [];
      for (const [position, raw] of current.operations.entries()) {
        // A pause lets the batch so far go out, so that several batches can be in flight at the cut.
        if (current.pauses[position]) await tick();
        const record = turnIntoRecord(model, raw);
        if (!record) continue;
        const slot = acknowledged.length;
        acknowledged.push(false);
        pending.push(wal.append([record]).then(() => (acknowledged[slot] = true), () => {}));
        applyToModel(model, record);
        states.push(cloneModel(model));
      }
      for (let k = 0; k < current.ticks; k++) await tick();
      fs = fs.powerCut(current.torn ? createPrng(current.seed) : undefined);
      const acknowledgedCount = acknowledged.filter(Boolean).length;
      await Promise.all(pending);
      wal = await openTestWal(fs, walOptions);
      const recovered = dumpWal(wal);
      const survivors = states.map((_, k) => k).filter((k) => k >= acknowledgedCount);
      const match = survivors.find((k) => isDeepEqual(dumpModel(states[k]), recovered));
      expect(match, `after a power cut, the WAL matches no prefix of the burst that keeps ${acknowledgedCount} acknowledged appends`).toBeDefined();
      model = states[match as number];
    }
    expect(dumpWal(wal)).toEqual(dumpModel(model));
    for (const [id, group] of model) {
      if (group.firstIndex > 1 || group.snapshot) expect(wal.term(id, group.firstIndex - 1)).toBe(modelTerm(group, group.firstIndex - 1));
    }
  }
  await wal.close();
  // One last cold start: everything comes back from the files alone.
  const final = await openTestWal(fs, walOptions);
  expect(dumpWal(final)).toEqual(dumpModel(model));
  await final.close();
}

function isDeepEqual(left: unknown, right: unknown): boolean {
  try {
    expect(left).toEqual(right);
    return true;
  } catch {
    return false;
  }
}

describe("the WAL against a naive model", () => {
  it("reads back what the model holds through appends, truncations, compactions, restarts and power cuts", async () => {
    await fc.assert(fc.asyncProperty(fc.array(step, { maxLength: 50 }), options, run), { numRuns: Number(process.env.WAL_PROPERTY_RUNS ?? 120) });
  });

  it("does the same over long histories in small segments, where old segments get deleted", async () => {
    const smallSegments = fc.record({ segmentBytes: fc.constantFrom(160, 256), cacheBytesMax: fc.constantFrom(200, 1 << 20) });
    await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 80, maxLength: 160 }), smallSegments, run), { numRuns: Number(process.env.WAL_PROPERTY_LONG_RUNS ?? 25) });
  });
});
