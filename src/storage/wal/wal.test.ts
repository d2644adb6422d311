import { describe, expect, it } from "vitest";
import { groupId, nodeId, NO_NODE } from "../../lib/ids.js";
import type { FileHandle, FileSystem, OpenOptions } from "../fs/file-system.js";
import { MemoryFileSystem } from "../fs/memory-file-system.js";
import {
  WalClosedError, WalCompactedError, WalFailedError, WalInvalidAppendError, WalUnavailableError,
} from "./errors.js";
import { G0, G1, makeEntries, memoryFileSystem, openTestWal, plain } from "./test-support.js";
import type { WalRecord } from "./wal.js";

const conf = { voters: [nodeId(1), nodeId(2), nodeId(3)], votersOutgoing: [], learners: [nodeId(9)], learnersNext: [], autoLeave: false };

describe("the write-ahead log", () => {
  it("reads back appended entries and hard states for several groups, before and after a restart", async () => {
    const fs = memoryFileSystem();
    const wal = await openTestWal(fs);
    await wal.append([
      { type: "entries", group: G0, entries: makeEntries(0, 1, [1, 1, 2]) },
      { type: "entries", group: G1, entries: makeEntries(1, 1, [5]) },
      { type: "hardState", group: G0, hardState: { term: 2, vote: nodeId(0xffff_ffff_ffff_fff1n), commit: 2 } },
    ]);
    expect(plain(wal.entries(G0, 1, 4))).toEqual(plain(makeEntries(0, 1, [1, 1, 2])));
    await wal.close();
    const again = await openTestWal(fs);
    expect(again.recovery.records).toBe(3);
    expect(again.recovery.tornTail).toBeNull();
    expect(again.recovery.groups.get(G0)).toEqual({
      hardState: { term: 2, vote: 0xffff_ffff_ffff_fff1n, commit: 2 }, snapshot: null, firstIndex: 1, lastIndex: 3,
    });
    expect(plain(again.entries(G0, 1, 4))).toEqual(plain(makeEntries(0, 1, [1, 1, 2])));
    expect(plain(again.entries(G1, 1, 2))).toEqual(plain(makeEntries(1, 1, [5])));
    expect(again.term(G0, 3)).toBe(2);
    expect(again.stats().fileReads).toBe(4);
    await again.close();
  });

  it("replaces a conflicting suffix when entries arrive at an index at or below the last one", async () => {
    const fs = memoryFileSystem();
    const wal = await openTestWal(fs);
    await wal.append([{ type: "entries", group: G0, entries: makeEntries(0, 1, [1, 1, 1, 1, 1]) }]);
    await wal.append([{ type: "entries", group: G0, entries: makeEntries(0, 3, [2, 2]) }]);
    expect(wal.lastIndex(G0)).toBe(4);
    expect(plain(wal.entries(G0, 1, 5))).toEqual(plain([...makeEntries(0, 1, [1, 1]), ...makeEntries(0, 3, [2, 2])]));
    await wal.close();
    const again = await openTestWal(fs);
    expect(plain(again.entries(G0, 1, 5))).toEqual(plain([...makeEntries(0, 1, [1, 1]), ...makeEntries(0, 3, [2, 2])]));
    await again.close();
  });

  it("compacts below a snapshot marker and serves the marker's term at firstIndex - 1", async () => {
    const fs = memoryFileSystem();
    const wal = await openTestWal(fs);
    await wal.append([{ type: "entries", group: G0, entries: makeEntries(0, 1, [1, 1, 2, 2, 3]) }]);
    await wal.append([{ type: "snapshot", group: G0, metadata: { index: 3, term: 2, confState: conf } }]);
    expect(wal.firstIndex(G0)).toBe(4);
    expect(wal.term(G0, 3)).toBe(2);
    expect(() => wal.entries(G0, 3, 5)).toThrow(WalCompactedError);
    expect(() => wal.term(G0, 2)).toThrow(WalCompactedError);
    expect(() => wal.entries(G0, 4, 7)).toThrow(WalUnavailableError);
    await wal.close();
    const again = await openTestWal(fs);
    expect(again.recovery.groups.get(G0)).toEqual({ hardState: null, snapshot: { index: 3, term: 2, confState: conf }, firstIndex: 4, lastIndex: 5 });
    expect(plain(again.entries(G0, 4, 6))).toEqual(plain(makeEntries(0, 4, [2, 3])));
    await again.close();
  });

  it("drops the whole log for a snapshot the log does not contain", async () => {
    const wal = await openTestWal(memoryFileSystem());
    await wal.append([{ type: "entries", group: G0, entries: makeEntries(0, 1, [1, 1, 1]) }]);
    await wal.append([{ type: "snapshot", group: G0, metadata: { index: 2, term: 5, confState: conf } }]);
    expect([wal.firstIndex(G0), wal.lastIndex(G0)]).toEqual([3, 2]);
    await wal.append([{ type: "snapshot", group: G0, metadata: { index: 10, term: 6, confState: conf } }]);
    expect([wal.firstIndex(G0), wal.lastIndex(G0)]).toEqual([11, 10]);
    await wal.append([{ type: "entries", group: G0, entries: makeEntries(0, 11, [6]) }]);
    expect(wal.term(G0, 11)).toBe(6);
    await wal.close();
  });

  it("stops at bytesMax but always returns at least one entry", async () => {
    const wal = await openTestWal(memoryFileSystem());
    const entries = makeEntries(0, 1, [1, 1, 1, 1]);
    await wal.append([{ type: "entries", group: G0, entries }]);
    expect(wal.entries(G0, 1, 5, 0)).toHaveLength(1);
    expect(wal.entries(G0, 1, 5, entries[0].data.length + entries[1].data.length)).toHaveLength(2);
    expect(wal.entries(G0, 2, 2)).toEqual([]);
    await wal.close();
  });

  it.each<[string, WalRecord[], WalRecord]>([
    ["a gap after the last index", [{ type: "entries", group: G0, entries: makeEntries(0, 1, [1]) }], { type: "entries", group: G0, entries: makeEntries(0, 3, [1]) }],
    ["a first entry of a new group above index 1", [], { type: "entries", group: G0, entries: makeEntries(0, 2, [1]) }],
    ["a term below the entry before it", [{ type: "entries", group: G0, entries: makeEntries(0, 1, [3]) }], { type: "entries", group: G0, entries: makeEntries(0, 2, [2]) }],
    ["terms going down inside a run", [], { type: "entries", group: G0, entries: makeEntries(0, 1, [2, 1]) }],
    ["non-contiguous indexes", [], { type: "entries", group: G0, entries: [makeEntries(0, 1, [1])[0], makeEntries(0, 3, [1])[0]] }],
    ["an entry of term 0", [], { type: "entries", group: G0, entries: makeEntries(0, 1, [0]) }],
    ["an empty run", [], { type: "entries", group: G0, entries: [] }],
    ["entries below a compaction", [
      { type: "entries", group: G0, entries: makeEntries(0, 1, [1, 1, 1]) },
      { type: "snapshot", group: G0, metadata: { index: 2, term: 1, confState: conf } },
    ], { type: "entries", group: G0, entries: makeEntries(0, 2, [1]) }],
    ["a hard state whose term goes back", [{ type: "hardState", group: G0, hardState: { term: 4, vote: NO_NODE, commit: 0 } }],
      { type: "hardState", group: G0, hardState: { term: 3, vote: NO_NODE, commit: 0 } }],
    ["a snapshot marker going back", [{ type: "snapshot", group: G0, metadata: { index: 9, term: 2, confState: conf } }],
      { type: "snapshot", group: G0, metadata: { index: 8, term: 2, confState: conf } }],
    ["a snapshot marker at index 0 with a term", [], { type: "snapshot", group: G0, metadata: { index: 0, term: 1, confState: conf } }],
  ])("refuses %s", async (_name, before, bad) => {
    const wal = await openTestWal(memoryFileSystem());
    if (before.length > 0) await wal.append(before);
    const lastIndex = wal.lastIndex(G0);
    const groups = wal.groupIds();
    expect(() => wal.append([bad])).toThrow(WalInvalidAppendError);
    expect(wal.lastIndex(G0)).toBe(lastIndex);
    expect(wal.groupIds()).toEqual(groups);
    await wal.close();
  });

  it("rotates segments, serves old entries from the files and deletes a segment once nothing needs it", async () => {
    const fs = memoryFileSystem();
    const wal = await openTestWal(fs, { segmentBytes: 1024, cacheBytesMax: 512 });
    await wal.append([{ type: "hardState", group: G1, hardState: { term: 1, vote: nodeId(1), commit: 0 } }]);
    for (let index = 1; index <= 60; index++) {
      await wal.append([{ type: "entries", group: G0, entries: makeEntries(0, index, [1]) }]);
    }
    const segmentFiles = (): string[] => fs.listFiles().filter((path) => path.endsWith(".wal"));
    const segmentsBefore = segmentFiles().length;
    expect(segmentsBefore).toBeGreaterThan(2);
    expect(wal.stats().cacheBytes).toBeLessThanOrEqual(512);
    expect(plain(wal.entries(G0, 1, 61))).toEqual(plain(makeEntries(0, 1, new Array(60).fill(1))));
    expect(wal.stats().fileReads).toBeGreaterThan(30);
    await wal.append([{ type: "snapshot", group: G0, metadata: { index: 55, term: 1, confState: conf } }]);
    for (let index = 61; index <= 80; index++) await wal.append([{ type: "entries", group: G0, entries: makeEntries(0, index, [1]) }]);
    await wal.settled();
    // Group 1's idle hard state was rewritten forward at rotations instead of pinning segment 1.
    expect(segmentFiles()).not.toContain("/wal/0000000000000001.wal");
    expect(wal.stats().segmentsDeleted).toBeGreaterThan(0);
    await wal.close();
    const again = await openTestWal(fs, { segmentBytes: 1024 });
    expect(again.recovery.groups.get(G1)?.hardState).toEqual({ term: 1, vote: 1n, commit: 0 });
    expect(plain(again.entries(G0, 56, 81))).toEqual(plain(makeEntries(0, 56, new Array(25).fill(1))));
    await again.close();
  });

  it("shares one fdatasync among the appends that arrive while another is in flight", async () => {
    const fs = new MemoryFileSystem({ latency: "macrotask" });
    const wal = await openTestWal(fs, { segmentBytes: 1 << 20 });
    const appenders = 16;
    const rounds = 10;
    await Promise.all(Array.from({ length: appenders }, async (_, appender) => {
      const group = groupId(appender);
      for (let index = 1; index <= rounds; index++) await wal.append([{ type: "entries", group, entries: makeEntries(appender, index, [1]) }]);
    }));
    const stats = wal.stats();
    expect(stats.appends).toBe(appenders * rounds);
    expect(stats.syncs).toBeLessThanOrEqual(rounds + 1);
    expect(stats.appendsPerSyncMax).toBe(appenders);
    await wal.close();
  });

  it("resolves an append only once its records survive a crash", async () => {
    const fs = new MemoryFileSystem({ latency: "macrotask" });
    const wal = await openTestWal(fs);
    let resolved = 0;
    const appends = Array.from({ length: 5 }, (_, k) => wal.append([{ type: "entries", group: G0, entries: makeEntries(0, k + 1, [1]) }]).then(() => resolved++));
    await appends[2];
    const restarted = fs.powerCut();
    await Promise.allSettled(appends);
    const again = await openTestWal(restarted);
    expect(again.lastIndex(G0)).toBeGreaterThanOrEqual(3);
    expect(resolved).toBeLessThanOrEqual(again.lastIndex(G0));
    await again.close();
  });

  it("refuses every later append once a write has failed", async () => {
    const inner = memoryFileSystem();
    let failSyncs = false;
    const failing: FileSystem = {
      open: async (path: string, options: OpenOptions): Promise<FileHandle> => {
        const handle = await inner.open(path, options);
        return {
          path: handle.path,
          write: (data, position) => handle.write(data, position),
          readSync: (buffer, position, length) => handle.readSync(buffer, position, length),
          sync: () => (failSyncs ? Promise.reject(new Error("EIO: injected")) : handle.sync()),
          truncate: (size) => handle.truncate(size),
          size: () => handle.size(),
          close: () => handle.close(),
        };
      },
      rename: (from, to) => inner.rename(from, to),
      unlink: (path) => inner.unlink(path),
      readdir: (directory) => inner.readdir(directory),
      mkdir: (directory) => inner.mkdir(directory),
      syncDirectory: (directory) => inner.syncDirectory(directory),
    };
    const wal = await openTestWal(failing);
    await wal.settled();
    failSyncs = true;
    await expect(wal.append([{ type: "entries", group: G0, entries: makeEntries(0, 1, [1]) }])).rejects.toBeInstanceOf(WalFailedError);
    await expect(wal.append([{ type: "entries", group: G0, entries: makeEntries(0, 2, [1]) }])).rejects.toBeInstanceOf(WalFailedError);
    await wal.close();
  });

  it("closes idempotently and refuses appends after close", async () => {
    const wal = await openTestWal(memoryFileSystem());
    const pending = wal.append([{ type: "entries", group: G0, entries: makeEntries(0, 1, [1]) }]);
    await Promise.all([wal.close(), wal.close()]);
    await pending;
    await wal.closed();
    expect(() => wal.append([{ type: "entries", group: G0, entries: makeEntries(0, 2, [1]) }])).toThrow(WalClosedError);
  });
});

describe("segment preparation under load", () => {
  it("paces the zeros of the next segment by the batches written, yet never stalls a rotation, and keeps every append", async () => {
    const fs = memoryFileSystem();
    // 1 MiB segments are prepared in 8 slices of 128 KiB, so preparation is paced while appends run.
    const wal = await openTestWal(fs, { segmentBytes: 1024 * 1024 });
    const data = new Uint8Array(2048).fill(7);
    const appenders = 16;
    const perAppender = 200; // 16 × 200 × ~2 KiB ≈ 6.5 MiB: several rotations
    await Promise.all(Array.from({ length: appenders }, async (_, appender) => {
      const group = groupId(appender + 1);
      for (let index = 1; index <= perAppender; index++) {
        await wal.append([{ type: "entries", group, entries: [{ index, term: 1, type: 0, data }] }]);
      }
    }));
    expect(wal.stats().rotations).toBeGreaterThanOrEqual(5);
    expect(wal.stats().appends).toBe(appenders * perAppender);
    await wal.close();
    const again = await openTestWal(fs, { segmentBytes: 1024 * 1024 });
    for (let appender = 1; appender <= appenders; appender++) {
      expect(again.recovery.groups.get(groupId(appender))?.lastIndex).toBe(perAppender);
    }
    expect(again.recovery.tornTail).toBeNull();
    await again.close();
  });

  it("a rotation that needs a segment still being prepared releases the pacing instead of waiting for batches that wait on it", async () => {
    const fs = memoryFileSystem();
    const wal = await openTestWal(fs, { segmentBytes: 1024 * 1024 });
    // 600 KiB batches: the second one into each segment rotates while the next segment has had one slice of zeros.
    const data = new Uint8Array(600 * 1024).fill(3);
    for (let index = 1; index <= 8; index++) await wal.append([{ type: "entries", group: G0, entries: [{ index, term: 1, type: 0, data }] }]);
    expect(wal.stats().rotations).toBeGreaterThanOrEqual(3);
    await wal.close();
    const again = await openTestWal(fs, { segmentBytes: 1024 * 1024 });
    expect(again.recovery.groups.get(G0)?.lastIndex).toBe(8);
    await again.close();
  });
});
