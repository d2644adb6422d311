import { describe, expect, it } from "vitest";
import { defineMvccConformance } from "../../kv/testing/mvcc-conformance.js";
import { MemoryKvStore } from "./memory-kv-store.js";

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
