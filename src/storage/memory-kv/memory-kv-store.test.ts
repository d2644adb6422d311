import { describe, expect, it } from "vitest";
import { defineMvccConformance } from "../../kv/testing/mvcc-conformance.js";
import { rangeRequest } from "../../kv/command.js";
import { SnapshotCorruptError, StaleReadError } from "../../kv/errors.js";
import { Mvcc } from "../../kv/mvcc.js";
import { put, text } from "../../kv/testing/mvcc-conformance.js";
import { MemoryKvStore } from "./memory-kv-store.js";
import { installMemorySnapshot, memorySnapshotStream } from "./snapshot.js";

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

async function* replay(chunks: readonly Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const chunk of chunks) yield chunk;
}

const ALL = new Uint8Array([0]);
const everything = (mvcc: Mvcc) => mvcc.range(rangeRequest(ALL, { rangeEnd: ALL })).kvs.map((kv) => `${text(kv.key)}=${text(kv.value)}@${kv.modRevision}`);

defineMvccConformance("memory", { create: () => new MemoryKvStore(), dispose: () => {} });

const b = (...values: number[]) => new Uint8Array(values);
const keys = (entries: Iterable<{ key: Uint8Array }>) => [...entries].map((entry) => [...entry.key]);

describe("MemoryKvStore", () => {
  it("walks ranges forwards and backwards with an inclusive start and exclusive end", () => {
    const store = new MemoryKvStore();
    store.write((writer) => {
      for (const key of [[1], [1, 0], [2], [3], [3, 5], [4]]) writer.put(1, b(...key), b());
    });
    store.read((reader) => {
      expect(keys(reader.range(1, { start: b(1, 0), end: b(3, 5) }))).toEqual([[1, 0], [2], [3]]);
      expect(keys(reader.range(1, { start: b(1, 0), end: b(3, 5), reverse: true }))).toEqual([[3], [2], [1, 0]]);
      expect(keys(reader.range(1, { reverse: true }))).toEqual([[4], [3, 5], [3], [2], [1, 0], [1]]);
      expect(keys(reader.range(0))).toEqual([]);
    });
  });

  it("keeps a read view unchanged while later writes commit, and drops the writes of a failed transaction", () => {
    const store = new MemoryKvStore();
    store.write((writer) => writer.put(2, b(1), b(1)));
    store.read((reader) => {
      const iterator = reader.range(2)[Symbol.iterator]();
      store.write((writer) => writer.put(2, b(0), b(9)));
      expect(keys({ [Symbol.iterator]: () => iterator })).toEqual([[1]]);
    });
    expect(() => store.write((writer) => {
      writer.put(2, b(5), b(5));
      expect(writer.get(2, b(5))).toEqual(b(5));
      throw new Error("abort");
    })).toThrow("abort");
    expect(store.read((reader) => reader.get(2, b(5)))).toBeUndefined();
    expect(store.read((reader) => keys(reader.range(2)))).toEqual([[0], [1]]);
  });
});

describe("memory snapshots", () => {
  it("install the source's state in one step, and a damaged stream changes nothing", async () => {
    const source = new Mvcc(new MemoryKvStore());
    for (let i = 0; i < 20; i++) put(source, `key-${i}`, `value-${i}`);
    const chunks = await collect(memorySnapshotStream(source, 128));
    const store = new MemoryKvStore();
    const target = new Mvcc(store);
    put(target, "mine", "before");
    const damaged = chunks.map((chunk) => chunk.slice());
    damaged[1][30] ^= 0xff;
    await expect(installMemorySnapshot(store, replay(damaged))).rejects.toThrow(new SnapshotCorruptError(1, "checksum mismatch"));
    await expect(installMemorySnapshot(store, replay(chunks.slice(0, 2)))).rejects.toThrow(/truncated/);
    expect(everything(target)).toEqual(["mine=before@2"]);
    await installMemorySnapshot(store, replay(chunks));
    target.reload();
    expect(everything(target)).toEqual(everything(source));
    expect(target.hashKv(0)).toEqual(source.hashKv(0));
  });

  it("make streamed reads of the replaced state fail instead of mixing two states", async () => {
    const source = new Mvcc(new MemoryKvStore());
    for (let i = 0; i < 5; i++) put(source, `key-${i}`, "x");
    const chunks = await collect(memorySnapshotStream(source));
    const store = new MemoryKvStore();
    const target = new Mvcc(store);
    for (let i = 0; i < 5; i++) put(target, `other-${i}`, "y");
    const stream = target.openRange(rangeRequest(ALL, { rangeEnd: ALL }));
    expect(stream.next(2)?.length).toBe(2);
    await installMemorySnapshot(store, replay(chunks));
    target.reload();
    expect(() => stream.next(2)).toThrow(StaleReadError);
    stream.close();
    expect(target.compactBatch(10)).toBe(true);
  });
});
