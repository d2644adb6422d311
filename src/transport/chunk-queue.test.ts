import { describe, expect, it } from "vitest";
import { ChunkQueue } from "./chunk-queue.js";

async function readAll(source: AsyncIterable<Uint8Array>): Promise<number[]> {
  const bytes: number[] = [];
  for await (const chunk of source) bytes.push(...chunk);
  return bytes;
}

describe("snapshot chunk queue", () => {
  it("delivers pushed chunks in order, then ends", async () => {
    const queue = new ChunkQueue(100, () => {});
    queue.push(Uint8Array.from([1, 2]));
    const reading = readAll(queue);
    queue.push(Uint8Array.from([3]));
    queue.end();
    expect(await reading).toEqual([1, 2, 3]);
  });

  it("asks the producer to pause above the budget and to resume at half of it", async () => {
    let drains = 0;
    const queue = new ChunkQueue(10, () => drains++);
    expect(queue.push(new Uint8Array(6))).toBe(true);
    expect(queue.push(new Uint8Array(6))).toBe(false);
    expect(queue.bufferedBytes).toBe(12);
    const iterator = queue[Symbol.asyncIterator]();
    await iterator.next();
    expect(drains).toBe(0);
    await iterator.next();
    expect(drains).toBe(1);
  });

  it("hands a failure to the consumer after the chunks that arrived before it", async () => {
    const queue = new ChunkQueue(100, () => {});
    queue.push(Uint8Array.from([1]));
    queue.fail(new Error("stream broke"));
    const iterator = queue[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toEqual(Uint8Array.from([1]));
    await expect(iterator.next()).rejects.toThrow("stream broke");
  });

  it("wakes a waiting consumer on failure", async () => {
    const queue = new ChunkQueue(100, () => {});
    const reading = readAll(queue);
    queue.fail(new Error("lost"));
    await expect(reading).rejects.toThrow("lost");
  });

  it("discards later chunks and resumes a paused producer when the consumer stops early", async () => {
    let drains = 0;
    const queue = new ChunkQueue(4, () => drains++);
    queue.push(new Uint8Array(8));
    for await (const _chunk of queue) break;
    expect(queue.abandoned).toBe(true);
    expect(drains).toBe(1);
    expect(queue.push(new Uint8Array(100))).toBe(true);
    expect(queue.bufferedBytes).toBe(0);
  });

  it("can be read only once", () => {
    const queue = new ChunkQueue(4, () => {});
    queue[Symbol.asyncIterator]();
    expect(() => queue[Symbol.asyncIterator]()).toThrow();
  });
});
