import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { crc32c } from "../../lib/crc32c.js";
import { deleteRangeRequest, rangeRequest } from "../../kv/command.js";
import { NewerFormatError, SnapshotCorruptError, SnapshotFormatError } from "../../kv/errors.js";
import { Mvcc } from "../../kv/mvcc.js";
import { encodeMetaNumber, KvTable, MetaKey } from "../../kv/store.js";
import { applyCommand, defineMvccConformance, put, text } from "../../kv/testing/mvcc-conformance.js";
import { installMemorySnapshot } from "../memory-kv/snapshot.js";
import { MemoryKvStore } from "../memory-kv/memory-kv-store.js";
import { DurableAppliedIndex, snapshotStream } from "./durable-applied.js";
import { DefragmentError, LmdbKvStore, SimulatedCrash, type InstallStep } from "./lmdb-kv-store.js";

const root = mkdtempSync(join(tmpdir(), "cairn-lmdb-test-"));
let directoryCount = 0;
const freshDirectory = (): string => join(root, `store-${directoryCount++}`);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const opened: LmdbKvStore[] = [];
defineMvccConformance("LMDB", {
  create: () => {
    const store = LmdbKvStore.open(freshDirectory());
    opened.push(store);
    return store;
  },
  dispose: () => {
    for (const store of opened.splice(0)) void store.close();
  },
});

const openedInBackground: LmdbKvStore[] = [];
defineMvccConformance("LMDB (background sync)", {
  create: () => {
    const store = LmdbKvStore.open(freshDirectory(), { syncMode: "background" });
    openedInBackground.push(store);
    return store;
  },
  dispose: () => {
    for (const store of openedInBackground.splice(0)) void store.close();
  },
});

const b = (...values: number[]) => new Uint8Array(values);
const keys = (entries: Iterable<{ key: Uint8Array }>) => [...entries].map((entry) => [...entry.key]);
const ALL = new Uint8Array([0]);

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

async function* replay(chunks: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const chunk of chunks) yield chunk;
}

function everything(mvcc: Mvcc): string[] {
  return mvcc.range(rangeRequest(ALL, { rangeEnd: ALL })).kvs.map((kv) => `${text(kv.key)}=${text(kv.value)}@${kv.modRevision}`);
}

/** A store with some history: puts, an overwrite, a delete and a compaction. */
function populate(mvcc: Mvcc, prefix: string, count: number): void {
  for (let i = 0; i < count; i++) put(mvcc, `${prefix}${i}`, `${prefix}-value-${i}`.repeat(8));
  put(mvcc, `${prefix}0`, "overwritten");
}

describe("LmdbKvStore", () => {
  it("walks ranges forwards and backwards with an inclusive start and exclusive end", async () => {
    const store = LmdbKvStore.open(freshDirectory());
    store.write((writer) => {
      for (const key of [[1], [1, 0], [2], [3], [3, 5], [4]]) writer.put(KvTable.KeyIndex, b(...key), b(...key, 7));
    });
    store.read((reader) => {
      expect(keys(reader.range(KvTable.KeyIndex, { start: b(1, 0), end: b(3, 5) }))).toEqual([[1, 0], [2], [3]]);
      expect(keys(reader.range(KvTable.KeyIndex, { start: b(1, 0), end: b(3, 5), reverse: true }))).toEqual([[3], [2], [1, 0]]);
      expect(keys(reader.range(KvTable.KeyIndex, { reverse: true }))).toEqual([[4], [3, 5], [3], [2], [1, 0], [1]]);
      expect(keys(reader.range(KvTable.KeyIndex, { start: b(3), reverse: true }))).toEqual([[4], [3, 5], [3]]);
      const values = [...reader.range(KvTable.KeyIndex)].map((entry) => entry.value);
      expect(values.map((value) => [...value])).toEqual([[1, 7], [1, 0, 7], [2, 7], [3, 7], [3, 5, 7], [4, 7]]);
    });
    await store.close();
  });

  it("keeps data and the applied index across close and reopen", async () => {
    const directory = freshDirectory();
    const store = LmdbKvStore.open(directory);
    populate(new Mvcc(store), "k", 5);
    await store.close();
    const reopened = LmdbKvStore.open(directory);
    const mvcc = new Mvcc(reopened);
    expect({ applied: mvcc.appliedIndex(), revision: mvcc.currentRevision() }).toEqual({ applied: 6, revision: 7 });
    expect(everything(mvcc)[0]).toBe("k0=overwritten@7");
    await reopened.close();
  });

  it("keeps data written in background sync mode once flushed, across reopen", async () => {
    const directory = freshDirectory();
    const store = LmdbKvStore.open(directory, { syncMode: "background" });
    const mvcc = new Mvcc(store);
    populate(mvcc, "b", 3);
    const expected = everything(mvcc);
    await store.flushed();
    await Promise.all([store.close(), store.close()]);
    const reopened = LmdbKvStore.open(directory);
    expect(everything(new Mvcc(reopened))).toEqual(expected);
    expect(expected.length).toBe(3);
    await reopened.close();
  });

  it("refuses to open a store of a newer format version, naming the file and changing nothing", async () => {
    const directory = freshDirectory();
    const store = LmdbKvStore.open(directory);
    new Mvcc(store);
    store.write((writer) => writer.put(KvTable.Meta, MetaKey.formatVersion, encodeMetaNumber(99)));
    const path = store.location;
    await store.close();
    const before = readFileSync(path);
    expect(() => LmdbKvStore.open(directory)).toThrow(NewerFormatError);
    expect(() => LmdbKvStore.open(directory)).toThrow(`${path}: kv store format version 99 is newer than this build supports (1)`);
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it("refuses a CURRENT file that does not name a state file", () => {
    const directory = freshDirectory();
    void LmdbKvStore.open(directory).close();
    writeFileSync(join(directory, "CURRENT"), "garbage\n");
    expect(() => LmdbKvStore.open(directory)).toThrow(/CURRENT does not name a state file/);
  });

  it("copies a snapshot to LMDB and memory while writes continue, with equal hashes and answers", async () => {
    const source = LmdbKvStore.open(freshDirectory());
    const mvcc = new Mvcc(source);
    populate(mvcc, "s", 40);
    mvcc.applyEntries([]);
    const expected = { hash: mvcc.hashKv(0), all: everything(mvcc), applied: mvcc.appliedIndex() };
    const chunks: Uint8Array[] = [];
    for await (const chunk of snapshotStream(mvcc, 512)) {
      chunks.push(chunk);
      put(mvcc, "s1", "written during the snapshot");
    }
    expect(chunks.length).toBeGreaterThan(4);
    const target = LmdbKvStore.open(freshDirectory());
    const targetMvcc = new Mvcc(target);
    put(targetMvcc, "old", "state");
    const header = await target.installSnapshot(replay(chunks));
    targetMvcc.reload();
    expect(header.appliedIndex).toBe(expected.applied);
    expect({ hash: targetMvcc.hashKv(0), all: everything(targetMvcc), applied: targetMvcc.appliedIndex() }).toEqual(expected);
    const memory = new MemoryKvStore();
    await installMemorySnapshot(memory, replay(chunks));
    expect(new Mvcc(memory).hashKv(0)).toEqual(expected.hash);
    await Promise.all([source.close(), target.close()]);
  });

  const steps: InstallStep[] = ["data-written", "new-state-synced", "pointer-written", "pointer-swapped", "old-removed"];
  it.each(steps)("leaves either the old or the new state after a crash right after %s", async (step) => {
    const source = new Mvcc(new MemoryKvStore());
    populate(source, "new", 10);
    const chunks = await collect(snapshotStream(source, 256));
    const directory = freshDirectory();
    const target = LmdbKvStore.open(directory);
    populate(new Mvcc(target), "old", 3);
    await expect(target.installSnapshot(replay(chunks), { crashAt: step })).rejects.toThrow(SimulatedCrash);
    const reopened = LmdbKvStore.open(directory);
    const after = everything(new Mvcc(reopened));
    const swapped = step === "pointer-swapped" || step === "old-removed";
    expect(after).toEqual(swapped ? everything(source) : ["old0=overwritten@5", "old1=old-value-1old-value-1old-value-1old-value-1old-value-1old-value-1old-value-1old-value-1@3", "old2=old-value-2old-value-2old-value-2old-value-2old-value-2old-value-2old-value-2old-value-2@4"]);
    expect(readdirSync(directory).sort()).toEqual(["CURRENT", reopened.location.slice(directory.length + 1), `${reopened.location.slice(directory.length + 1)}-lock`].sort());
    await reopened.close();
  });

  it("refuses a corrupt chunk and a truncated stream by chunk number and keeps the old state", async () => {
    const source = new Mvcc(new MemoryKvStore());
    populate(source, "new", 10);
    const chunks = await collect(snapshotStream(source, 256));
    const directory = freshDirectory();
    const target = LmdbKvStore.open(directory);
    const mvcc = new Mvcc(target);
    populate(mvcc, "old", 3);
    const before = everything(mvcc);
    const damaged = chunks.map((chunk) => chunk.slice());
    damaged[2][damaged[2].length - 1] ^= 0x10;
    await expect(target.installSnapshot(replay(damaged))).rejects.toThrow(new SnapshotCorruptError(2, "checksum mismatch"));
    await expect(target.installSnapshot(replay(chunks.slice(0, -1)))).rejects.toThrow(`snapshot chunk ${chunks.length - 1}: stream truncated: ended before the trailer`);
    await expect(target.installSnapshot(replay([...chunks.slice(0, -1), chunks[chunks.length - 1].subarray(0, 10)]))).rejects.toThrow(/stream truncated inside the chunk/);
    // A header claiming a newer format, with a valid checksum.
    const newer = chunks[0].slice();
    new DataView(newer.buffer).setUint16(17, 9);
    new DataView(newer.buffer).setUint32(13, crc32c(newer.subarray(17), crc32c(newer, 0, 0, 13)));
    await expect(target.installSnapshot(replay([newer, ...chunks.slice(1)]))).rejects.toThrow(SnapshotFormatError);
    mvcc.reload();
    expect(everything(mvcc)).toEqual(before);
    expect(readdirSync(directory).filter((name) => name.startsWith("state-")).length).toBe(2);
    await target.close();
  });

  it("reports an applied index as durable only after LMDB flushed it", async () => {
    const store = LmdbKvStore.open(freshDirectory());
    const mvcc = new Mvcc(store);
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => (release = resolve));
    const durable = new DurableAppliedIndex({ flushed: () => gate.then(() => store.flushed()) }, mvcc);
    put(mvcc, "a", "1");
    const noted = durable.noteApplied();
    expect(durable.durable).toBe(0);
    release();
    await noted;
    expect(durable.durable).toBe(1);
    await store.close();
  });

  /** Fills the store with `count` keys of 1 KiB, deletes all but every 100th, and compacts the history away. */
  function fillAndThin(mvcc: Mvcc, count: number): void {
    const value = "v".repeat(1024);
    for (let i = 0; i < count; i++) put(mvcc, `bulk/${String(i).padStart(6, "0")}`, value);
    for (let i = 0; i < count; i++) {
      if (i % 100 !== 0) applyCommand(mvcc, { type: "deleteRange", request: deleteRangeRequest(new TextEncoder().encode(`bulk/${String(i).padStart(6, "0")}`)) });
    }
    applyCommand(mvcc, { type: "compact", request: { revision: mvcc.currentRevision(), physical: false } });
    while (!mvcc.compactBatch(10_000));
  }

  it("defragments: the file shrinks, the data and hash are unchanged, and writes made during the copy are kept", async () => {
    const directory = freshDirectory();
    // Background sync only to fill quickly; the defragmentation fsyncs the copy itself.
    const store = LmdbKvStore.open(directory, { syncMode: "background" });
    const mvcc = new Mvcc(store);
    fillAndThin(mvcc, 4000);
    const before = { all: everything(mvcc), hash: mvcc.hashKv(0), applied: mvcc.appliedIndex() };
    expect(before.all.length).toBe(40);
    const defragmenting = store.defragment();
    // Writes while the copy runs go to the old file and the journal; they must all be in the new one.
    for (let i = 0; i < 50; i++) {
      put(mvcc, `during/${i}`, `written while copying ${i}`);
      await new Promise((resolve) => setImmediate(resolve));
    }
    const result = await defragmenting;
    const after = { all: everything(mvcc), hash: mvcc.hashKv(0), applied: mvcc.appliedIndex() };
    expect(after.all.filter((line) => line.startsWith("bulk/"))).toEqual(before.all);
    expect(after.all.filter((line) => line.startsWith("during/")).length).toBe(50);
    expect(after.applied).toBe(before.applied + 50);
    expect(result.fileBytesAfter).toBeLessThan(result.fileBytesBefore / 4);
    expect(result.pauseMs).toBeGreaterThanOrEqual(0);
    expect(result.journaledWrites).toBeGreaterThan(0);
    // The old generation is gone and the new one is what a reopen finds.
    expect(readdirSync(directory).filter((name) => name.startsWith("state-")).length).toBe(2);
    put(mvcc, "after", "the swap");
    const expected = { all: everything(mvcc), hash: mvcc.hashKv(0) };
    await store.close();
    const reopened = LmdbKvStore.open(directory);
    const reopenedMvcc = new Mvcc(reopened);
    expect({ all: everything(reopenedMvcc), hash: reopenedMvcc.hashKv(0) }).toEqual(expected);
    await reopened.close();
  });

  it("defragments a store larger than one copy batch while puts, deletes and a physical compaction go on, ending where a store without the defragmentation ends", async () => {
    const directory = freshDirectory();
    const store = LmdbKvStore.open(directory, { syncMode: "background" });
    const mvcc = new Mvcc(store);
    const mirror = new Mvcc(new MemoryKvStore());
    const both = (step: (target: Mvcc) => void) => {
      step(mvcc);
      step(mirror);
    };
    const value = "w".repeat(4096);
    const name = (i: number) => `big/${String(i).padStart(5, "0")}`;
    // About 12 MiB of values: the copy takes several batches, with writes between them.
    for (let i = 0; i < 3000; i++) both((target) => put(target, name(i), value));
    both((target) => applyCommand(target, { type: "deleteRange", request: deleteRangeRequest(new TextEncoder().encode("big/00"), { rangeEnd: new TextEncoder().encode("big/01") }) }));
    both((target) => applyCommand(target, { type: "compact", request: { revision: target.currentRevision(), physical: false } }));
    const defragmenting = store.defragment();
    let finished = false;
    void defragmenting.finally(() => (finished = true)).catch(() => undefined);
    let step = 0;
    while (!finished) {
      // The physical compaction deletes the old versions the copy is walking; puts overwrite and add keys; range deletes drop some.
      mvcc.compactBatch(300);
      both((target) => put(target, name((step * 37) % 3500), `during ${step}`));
      if (step % 7 === 0) both((target) => applyCommand(target, { type: "deleteRange", request: deleteRangeRequest(new TextEncoder().encode(name((step * 53) % 3000))) }));
      step++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const result = await defragmenting;
    expect(step).toBeGreaterThan(3);
    expect(result.journaledWrites).toBeGreaterThan(step);
    while (!mvcc.compactBatch(10_000));
    while (!mirror.compactBatch(10_000));
    const expected = { all: everything(mirror), hash: mirror.hashKv(0), revision: mirror.currentRevision() };
    expect({ all: everything(mvcc), hash: mvcc.hashKv(0), revision: mvcc.currentRevision() }).toEqual(expected);
    // Still writable in the new file, and a reopen finds the same state.
    both((target) => put(target, "after", "the swap"));
    const final = { all: everything(mirror), hash: mirror.hashKv(0) };
    await store.close();
    const reopened = LmdbKvStore.open(directory);
    const reopenedMvcc = new Mvcc(reopened);
    expect({ all: everything(reopenedMvcc), hash: reopenedMvcc.hashKv(0) }).toEqual(final);
    await reopened.close();
  });

  it("gives up on an aborted defragmentation and keeps the old file in force", async () => {
    const directory = freshDirectory();
    const store = LmdbKvStore.open(directory);
    const mvcc = new Mvcc(store);
    populate(mvcc, "a", 20);
    const location = store.location;
    const controller = new AbortController();
    const defragmenting = store.defragment({ signal: controller.signal });
    controller.abort(new DefragmentError("stopped by the test"));
    await expect(defragmenting).rejects.toThrow("stopped by the test");
    expect(store.location).toBe(location);
    expect(readdirSync(directory).filter((name) => name.startsWith("state-")).sort()).toEqual([location.slice(directory.length + 1), `${location.slice(directory.length + 1)}-lock`].sort());
    put(mvcc, "still", "writable");
    expect(everything(mvcc).length).toBe(21);
    await store.close();
  });
});
