/**
 * Recovery against damaged bytes: every cut of the last record, every bit
 * flipped in a record in the middle and at the end, damaged headers, missing
 * segments, impossible records with good CRCs, and repair.
 */
import { describe, expect, it } from "vitest";
import { clusterId, nodeId, type GroupId } from "../../lib/ids.js";
import { crc32c } from "../../lib/crc32c.js";
import { MemoryFileSystem } from "../fs/memory-file-system.js";
import {
  WalCorruptionError, WalIdentityError, WalMissingSegmentError, WalNotASegmentError, WalVersionError,
} from "./errors.js";
import { encodeEntriesRecord } from "./record-codec.js";
import { copyFileSystem, dumpWal, G0, G1, makeEntries, openTestWal, recordOffsets, TEST_CLUSTER, TEST_NODE } from "./test-support.js";
import type { WalRecord } from "./wal.js";

const SEGMENT = "/wal/0000000000000001.wal";
const conf = { voters: [nodeId(1), nodeId(2)], votersOutgoing: [nodeId(3)], learners: [], learnersNext: [], autoLeave: true };

const recordsByKind: Record<string, WalRecord> = {
  entries: { type: "entries", group: G1, entries: makeEntries(1, 1, [3, 3]) },
  "hard state": { type: "hardState", group: G1, hardState: { term: 0x1_0000_0005, vote: nodeId(0xabcdef0123456789n), commit: 0x2_0000_0007 } },
  "snapshot marker": { type: "snapshot", group: G1, metadata: { index: 0x3_0000_0001, term: 0x3_0000_0002, confState: conf } },
};

/** A WAL of: some records of group 0, then `subject`, then (unless it is last) one more record. */
async function build(subject: WalRecord, subjectIsLast: boolean): Promise<{ fs: MemoryFileSystem; start: number; end: number }> {
  const fs = new MemoryFileSystem();
  const wal = await openTestWal(fs);
  await wal.append([{ type: "entries", group: G0, entries: makeEntries(0, 1, [1, 1]) }]);
  await wal.append([{ type: "hardState", group: G0, hardState: { term: 1, vote: nodeId(1), commit: 1 } }]);
  await wal.append([subject]);
  if (!subjectIsLast) await wal.append([{ type: "entries", group: G0, entries: makeEntries(0, 3, [1]) }]);
  await wal.close();
  const offsets = recordOffsets(fs.readFile(SEGMENT));
  return { fs, start: offsets[2], end: offsets[3] };
}

/** What a WAL holding only the first two records reads back as. */
async function expectedWithout(): Promise<unknown> {
  const fs = new MemoryFileSystem();
  const wal = await openTestWal(fs);
  await wal.append([{ type: "entries", group: G0, entries: makeEntries(0, 1, [1, 1]) }]);
  await wal.append([{ type: "hardState", group: G0, hardState: { term: 1, vote: nodeId(1), commit: 1 } }]);
  const dump = dumpWal(wal);
  await wal.close();
  return dump;
}

type Outcome = { kind: "opened"; dump: unknown; tornAt: number | null } | { kind: "refused"; error: unknown };

async function openOutcome(fs: MemoryFileSystem, repair = false): Promise<Outcome> {
  try {
    const wal = await openTestWal(fs, { repair });
    const dump = dumpWal(wal);
    const tornAt = wal.recovery.tornTail?.offset ?? null;
    await wal.close();
    return { kind: "opened", dump, tornAt };
  } catch (error) {
    return { kind: "refused", error };
  }
}

function withBytes(bytes: Uint8Array, change: (copy: Uint8Array) => void): Uint8Array {
  const copy = bytes.slice();
  change(copy);
  return copy;
}

function expectCorruptionAt(outcome: Outcome, file: string, offset: number, what: string): void {
  if (outcome.kind !== "refused") throw new Error(`${what}: expected a refusal, the WAL opened`);
  expect(outcome.error, what).toBeInstanceOf(WalCorruptionError);
  const error = outcome.error as WalCorruptionError;
  expect({ file: error.file, offset: error.offset }, what).toEqual({ file, offset });
  expect(error.message).toContain(file);
  expect(error.message).toContain(`byte offset ${offset}`);
}

describe("recovery of a torn tail", () => {
  it.each(Object.keys(recordsByKind))("cuts a last %s record torn at any byte, and keeps it when whole", async (kind) => {
    const { fs, start, end } = await build(recordsByKind[kind], true);
    const without = await expectedWithout();
    const whole = await openOutcome(copyFileSystem(fs));
    expect(whole.kind === "opened" && whole.tornAt).toBe(null);
    for (let cut = start; cut <= end; cut++) {
      for (const style of ["zeros", "end of file"] as const) {
        const damaged = copyFileSystem(fs, (path, bytes) =>
          path !== SEGMENT ? bytes : style === "zeros" ? withBytes(bytes, (copy) => copy.fill(0, cut, end)) : bytes.slice(0, cut));
        const outcome = await openOutcome(damaged);
        const what = `${kind} cut at ${cut} (${style})`;
        if (outcome.kind !== "opened") throw new Error(`${what}: refused: ${String(outcome.error)}`);
        // Zeroing bytes that were zeros already (high bytes of a small number) leaves the record whole.
        const unchanged = style === "zeros" && fs.readFile(SEGMENT).subarray(cut, end).every((byte) => byte === 0);
        if (cut === end || unchanged) {
          expect(outcome.dump, what).toEqual(whole.kind === "opened" ? whole.dump : null);
          expect(outcome.tornAt, what).toBeNull();
        } else {
          expect(outcome.dump, what).toEqual(without);
          // Cut right at the record's start, nothing of it is left: a clean end, not a torn one.
          expect(outcome.tornAt, what).toBe(cut === start ? null : start);
        }
      }
    }
  });

  it("zeroes the torn bytes on disk so that later appends and restarts read cleanly", async () => {
    const { fs, start, end } = await build(recordsByKind.entries, true);
    const damaged = copyFileSystem(fs, (path, bytes) => (path === SEGMENT ? withBytes(bytes, (copy) => copy.fill(0, start + 20, end)) : bytes));
    const wal = await openTestWal(damaged);
    expect(wal.recovery.tornTail).toMatchObject({ file: SEGMENT, offset: start });
    expect(wal.recovery.tornTail?.bytesDropped).toBeGreaterThan(0);
    expect(wal.recovery.tornTail?.bytesDropped).toBeLessThanOrEqual(20);
    expect([...damaged.readFile(SEGMENT).subarray(start, end)].every((byte) => byte === 0)).toBe(true);
    await wal.append([{ type: "entries", group: G1, entries: makeEntries(1, 1, [4]) }]);
    await wal.close();
    const again = await openTestWal(damaged);
    expect(again.recovery.tornTail).toBeNull();
    expect(again.term(G1, 1)).toBe(4);
    await again.close();
  });
});

describe("recovery of flipped bits", () => {
  it.each(Object.keys(recordsByKind))("refuses a %s record with any bit flipped in the middle of the log, naming the file and offset", async (kind) => {
    const { fs, start, end } = await build(recordsByKind[kind], false);
    for (let bit = start * 8; bit < end * 8; bit++) {
      const damaged = copyFileSystem(fs, (path, bytes) => (path === SEGMENT ? withBytes(bytes, (copy) => (copy[bit >> 3] ^= 1 << (bit & 7))) : bytes));
      expectCorruptionAt(await openOutcome(damaged), SEGMENT, start, `${kind}, bit ${bit - start * 8} flipped`);
    }
  });

  it.each(Object.keys(recordsByKind))("cuts a last %s record with any bit flipped, unless what follows its claimed end is not zeros", async (kind) => {
    const { fs, start, end } = await build(recordsByKind[kind], true);
    const without = await expectedWithout();
    let refusals = 0;
    for (let bit = start * 8; bit < end * 8; bit++) {
      const original = fs.readFile(SEGMENT);
      const flipped = withBytes(original, (copy) => (copy[bit >> 3] ^= 1 << (bit & 7)));
      const damaged = copyFileSystem(fs, (path, bytes) => (path === SEGMENT ? flipped : bytes));
      const outcome = await openOutcome(damaged);
      const what = `${kind}, bit ${bit - start * 8} flipped`;
      const claimedEnd = Math.min(flipped.length, start + 16 + Buffer.from(flipped.buffer).readUInt32LE(start + 4));
      const onlyZerosFollow = flipped.subarray(claimedEnd).every((byte) => byte === 0);
      if (onlyZerosFollow) {
        if (outcome.kind !== "opened") throw new Error(`${what}: refused: ${String(outcome.error)}`);
        expect(outcome.tornAt, what).toBe(start);
        expect(outcome.dump, what).toEqual(without);
      } else {
        // Only a length made shorter leaves record bytes after the claimed end: a torn write cannot do that.
        expect(bit - start * 8, what).toBeGreaterThanOrEqual(32);
        expect(bit - start * 8, what).toBeLessThan(64);
        expectCorruptionAt(outcome, SEGMENT, start, what);
        refusals++;
      }
    }
    expect(refusals).toBeGreaterThan(0);
  });

  it("refuses a bad record at the end of a segment that is not the last one", async () => {
    const fs = new MemoryFileSystem();
    const wal = await openTestWal(fs, { segmentBytes: 256 });
    for (let index = 1; index <= 12; index++) await wal.append([{ type: "entries", group: G0, entries: makeEntries(0, index, [1]) }]);
    await wal.close();
    const offsets = recordOffsets(fs.readFile(SEGMENT));
    const last = offsets[offsets.length - 2];
    const damaged = copyFileSystem(fs, (path, bytes) => (path === SEGMENT ? withBytes(bytes, (copy) => (copy[offsets[offsets.length - 1] - 1] ^= 0x10)) : bytes));
    expectCorruptionAt(await openOutcome(damaged), SEGMENT, last, "last record of segment 1 damaged");
  });
});

describe("recovery of segment checkpoints", () => {
  async function twoSegments(): Promise<{ fs: MemoryFileSystem; second: string; offsets: number[] }> {
    const fs = new MemoryFileSystem();
    const wal = await openTestWal(fs, { segmentBytes: 256 });
    await wal.append([{ type: "hardState", group: G1, hardState: { term: 3, vote: nodeId(2), commit: 1 } }]);
    await wal.append([{ type: "snapshot", group: G1, metadata: { index: 4, term: 2, confState: conf } }]);
    for (let index = 1; index <= 6; index++) await wal.append([{ type: "entries", group: G0, entries: makeEntries(0, index, [1]) }]);
    await wal.close();
    const second = "/wal/0000000000000002.wal";
    return { fs, second, offsets: recordOffsets(fs.readFile(second)) };
  }

  it("starts a new segment with a checkpoint of every group, which a reopen agrees with", async () => {
    const { fs, second, offsets } = await twoSegments();
    const bytes = Buffer.from(fs.readFile(second));
    const leadingCheckpoints = offsets.slice(0, -1).findIndex((offset) => bytes[offset + 8] !== 4);
    expect(leadingCheckpoints).toBeGreaterThanOrEqual(1);
    const wal = await openTestWal(fs, { segmentBytes: 256 });
    expect(wal.recovery.groups.get(G1)).toMatchObject({ hardState: { term: 3, vote: 2n, commit: 1 }, snapshot: { index: 4, term: 2 } });
    await wal.close();
  });

  it("refuses a checkpoint with any bit flipped, naming the file and offset", async () => {
    const { fs, second, offsets } = await twoSegments();
    for (let bit = offsets[0] * 8; bit < offsets[1] * 8; bit++) {
      const damaged = copyFileSystem(fs, (path, bytes) => (path === second ? withBytes(bytes, (copy) => (copy[bit >> 3] ^= 1 << (bit & 7))) : bytes));
      expectCorruptionAt(await openOutcome(damaged), second, offsets[0], `checkpoint bit ${bit - offsets[0] * 8} flipped`);
    }
  });

  it("recovers from the checkpoint alone once the segment before it is gone and nothing needed it", async () => {
    const fs = new MemoryFileSystem();
    const wal = await openTestWal(fs, { segmentBytes: 256 });
    await wal.append([{ type: "hardState", group: G1, hardState: { term: 3, vote: nodeId(2), commit: 1 } }]);
    for (let index = 1; index <= 12; index++) await wal.append([{ type: "entries", group: G0, entries: makeEntries(0, index, [1]) }]);
    await wal.append([{ type: "snapshot", group: G0, metadata: { index: 11, term: 1, confState: conf } }]);
    await wal.append([{ type: "entries", group: G0, entries: makeEntries(0, 13, [2]) }]);
    await wal.settled();
    const before = dumpWal(wal);
    await wal.close();
    expect(fs.listFiles()).not.toContain(SEGMENT);
    const again = await openTestWal(fs, { segmentBytes: 256 });
    expect(dumpWal(again)).toEqual(before);
    await again.close();
  });
});

describe("recovery of impossible records", () => {
  async function withAppendedRecord(group: GroupId, firstIndex: number, terms: number[]): Promise<{ fs: MemoryFileSystem; offset: number }> {
    const { fs, end } = await build(recordsByKind.entries, true);
    const bytes = Buffer.from(fs.readFile(SEGMENT));
    encodeEntriesRecord(bytes, end, group, makeEntries(group, firstIndex, terms), []);
    const damaged = copyFileSystem(fs, (path, original) => (path === SEGMENT ? bytes : original));
    return { fs: damaged, offset: end };
  }

  it("refuses a well-formed record that leaves a gap in its group's log, even at the tail", async () => {
    const { fs, offset } = await withAppendedRecord(G0, 5, [1]);
    const outcome = await openOutcome(fs);
    expectCorruptionAt(outcome, SEGMENT, offset, "gap");
    expect(String((outcome as { error: unknown }).error)).toContain("gap");
  });

  it("refuses a well-formed record whose term is below the entry before it", async () => {
    const { fs, offset } = await withAppendedRecord(G1, 3, [2]);
    expectCorruptionAt(await openOutcome(fs), SEGMENT, offset, "term going back");
  });

  it("refuses a log whose first segment is gone while a group still needed it", async () => {
    const fs = new MemoryFileSystem();
    const wal = await openTestWal(fs, { segmentBytes: 256 });
    for (let index = 1; index <= 12; index++) await wal.append([{ type: "entries", group: G0, entries: makeEntries(0, index, [1]) }]);
    await wal.close();
    await fs.unlink(SEGMENT);
    const outcome = await openOutcome(fs);
    if (outcome.kind !== "refused") throw new Error("opened");
    expect(outcome.error).toBeInstanceOf(WalCorruptionError);
    expect(String(outcome.error)).toContain("history is missing");
  });

  it("refuses a log with a segment missing in the middle", async () => {
    const fs = new MemoryFileSystem();
    const wal = await openTestWal(fs, { segmentBytes: 256 });
    for (let index = 1; index <= 20; index++) await wal.append([{ type: "entries", group: G0, entries: makeEntries(0, index, [1]) }]);
    await wal.close();
    await fs.unlink("/wal/0000000000000002.wal");
    const outcome = await openOutcome(fs);
    expect(outcome.kind === "refused" && outcome.error).toBeInstanceOf(WalMissingSegmentError);
  });
});

describe("repair", () => {
  it("cuts at the first bad record, drops later segments and reports what was lost", async () => {
    const fs = new MemoryFileSystem();
    const wal = await openTestWal(fs, { segmentBytes: 256 });
    for (let index = 1; index <= 20; index++) await wal.append([{ type: "entries", group: G0, entries: makeEntries(0, index, [1]) }]);
    await wal.close();
    const offsets = recordOffsets(fs.readFile(SEGMENT));
    const damaged = copyFileSystem(fs, (path, bytes) => (path === SEGMENT ? withBytes(bytes, (copy) => (copy[offsets[2] + 20] ^= 1)) : bytes));
    expectCorruptionAt(await openOutcome(damaged), SEGMENT, offsets[2], "without repair");
    const repaired = await openTestWal(damaged, { repair: true, segmentBytes: 256 });
    expect(repaired.recovery.repaired).toMatchObject({ file: SEGMENT, offset: offsets[2] });
    expect(repaired.recovery.repaired?.segmentsDropped.length).toBeGreaterThan(0);
    expect(repaired.lastIndex(G0)).toBe(2);
    await repaired.append([{ type: "entries", group: G0, entries: makeEntries(0, 3, [2]) }]);
    await repaired.close();
    const again = await openTestWal(damaged, { segmentBytes: 256 });
    expect([again.lastIndex(G0), again.term(G0, 3)]).toEqual([3, 2]);
    await again.close();
  });
});

describe("segment headers", () => {
  async function oneSegment(): Promise<MemoryFileSystem> {
    const fs = new MemoryFileSystem();
    const wal = await openTestWal(fs);
    await wal.append([{ type: "entries", group: G0, entries: makeEntries(0, 1, [1]) }]);
    await wal.close();
    return fs;
  }

  function rewriteHeader(fs: MemoryFileSystem, change: (header: Buffer) => void, fixCrc: boolean): MemoryFileSystem {
    return copyFileSystem(fs, (path, bytes) => {
      if (path !== SEGMENT) return bytes;
      const copy = Buffer.from(bytes);
      change(copy);
      if (fixCrc) {
        copy.writeUInt32LE(0, 12);
        copy.writeUInt32LE(crc32c(copy.subarray(0, 64)), 12);
      }
      return copy;
    });
  }

  async function expectRefusedUnchanged(fs: MemoryFileSystem, open: () => Promise<unknown>, errorClass: new (...args: never[]) => Error): Promise<Error> {
    const fingerprint = (): string[] => fs.listFiles().map((path) => `${path}:${crc32c(fs.readFile(path))}:${fs.readFile(path).length}`);
    const before = fingerprint();
    const error = await open().then(() => null, (caught: Error) => caught);
    expect(error).toBeInstanceOf(errorClass);
    expect(error?.message).toContain(SEGMENT);
    expect(fingerprint()).toEqual(before);
    return error as Error;
  }

  it("refuses a WAL of another cluster, naming the file and touching nothing", async () => {
    const fs = await oneSegment();
    const error = await expectRefusedUnchanged(fs, () => openTestWal(fs, { clusterId: clusterId(7) }), WalIdentityError);
    expect((error as WalIdentityError).what).toBe("cluster id");
  });

  it("refuses a WAL of another node, naming the file and touching nothing", async () => {
    const fs = await oneSegment();
    const error = await expectRefusedUnchanged(fs, () => openTestWal(fs, { nodeId: nodeId(8) }), WalIdentityError);
    expect((error as WalIdentityError).what).toBe("node id");
  });

  it("refuses a segment of a newer format version", async () => {
    const fs = rewriteHeader(await oneSegment(), (header) => header.writeUInt32LE(2, 8), true);
    const error = await expectRefusedUnchanged(fs, () => openTestWal(fs), WalVersionError);
    expect((error as WalVersionError).version).toBe(2);
  });

  it("refuses a file with the wrong magic bytes", async () => {
    const fs = rewriteHeader(await oneSegment(), (header) => header.write("NOTAWAL!", 0, "latin1"), false);
    await expectRefusedUnchanged(fs, () => openTestWal(fs), WalNotASegmentError);
  });

  it("refuses a segment shorter than its header", async () => {
    const fs = copyFileSystem(await oneSegment(), (path, bytes) => (path === SEGMENT ? bytes.slice(0, 40) : bytes));
    await expectRefusedUnchanged(fs, () => openTestWal(fs), WalNotASegmentError);
  });

  it("refuses a header with any bit of its ids or sequence flipped, at offset 0", async () => {
    const base = await oneSegment();
    for (let bit = 12 * 8; bit < 64 * 8; bit++) {
      const fs = rewriteHeader(base, (header) => (header[bit >> 3] ^= 1 << (bit & 7)), false);
      expectCorruptionAt(await openOutcome(fs), SEGMENT, 0, `header bit ${bit}`);
    }
  });

  it("refuses a header whose sequence disagrees with the file name", async () => {
    const fs = rewriteHeader(await oneSegment(), (header) => header.writeUInt32LE(5, 32), true);
    expectCorruptionAt(await openOutcome(fs), SEGMENT, 0, "sequence 5 in file 1");
  });

  it("identifies clusters and nodes by all 64 bits", async () => {
    const fs = new MemoryFileSystem();
    await (await openTestWal(fs)).close();
    const nearly = clusterId(TEST_CLUSTER ^ (1n << 63n));
    await expect(openTestWal(fs, { clusterId: nearly })).rejects.toBeInstanceOf(WalIdentityError);
    await expect(openTestWal(fs, { nodeId: nodeId(TEST_NODE ^ 1n) })).rejects.toBeInstanceOf(WalIdentityError);
    await (await openTestWal(fs)).close();
  });
});
