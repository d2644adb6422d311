import { describe, expect, it } from "vitest";
import { MemoryKvStore } from "../storage/memory-kv/memory-kv-store.js";
import { rangeRequest } from "./command.js";
import { SnapshotCorruptError, SnapshotFormatError } from "./errors.js";
import { Mvcc } from "./mvcc.js";
import { SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX, SnapshotDecoder, SnapshotInstaller, SnapshotSource, type SnapshotChunk } from "./snapshot.js";
import { applyCommand, put, text } from "./testing/mvcc-conformance.js";

function sourceWithHistory(): Mvcc {
  const mvcc = new Mvcc(new MemoryKvStore());
  for (let i = 0; i < 6; i++) put(mvcc, `key-${i % 3}`, `value-${i}`);
  return mvcc;
}

function allChunks(source: SnapshotSource): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let chunk = source.nextChunk(); chunk !== null; chunk = source.nextChunk()) chunks.push(chunk);
  return chunks;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function decodeAll(stream: Uint8Array, pieceBytes: number): SnapshotChunk[] {
  const decoder = new SnapshotDecoder();
  const chunks: SnapshotChunk[] = [];
  for (let at = 0; at < stream.length; at += pieceBytes) chunks.push(...decoder.push(stream.subarray(at, at + pieceBytes)));
  decoder.finish();
  return chunks;
}

describe("snapshot chunks", () => {
  it("decode the same fed one byte at a time as fed whole", () => {
    const stream = concat(allChunks(new SnapshotSource(sourceWithHistory(), 128)));
    const whole = decodeAll(stream, stream.length);
    expect(whole.length).toBeGreaterThan(3);
    expect(whole[0]).toMatchObject({ kind: "header", header: { appliedIndex: 6, revision: 7, term: 1, compactRevision: 0 } });
    expect(whole[whole.length - 1].kind).toBe("trailer");
    expect(decodeAll(stream, 1)).toEqual(whole);
  });

  it("refuse every single flipped bit of a stream", () => {
    const stream = concat(allChunks(new SnapshotSource(sourceWithHistory(), 256)));
    for (let bit = 0; bit < stream.length * 8; bit++) {
      const damaged = stream.slice();
      damaged[bit >> 3] ^= 1 << (bit & 7);
      let refusal: unknown = null;
      try {
        decodeAll(damaged, damaged.length);
      } catch (error) {
        refusal = error;
      }
      expect(refusal instanceof SnapshotCorruptError || refusal instanceof SnapshotFormatError, `bit ${bit}: ${String(refusal)}`).toBe(true);
    }
  });

  it("refuse chunks out of order, bytes after the trailer and an oversized length before buffering it", () => {
    const chunks = allChunks(new SnapshotSource(sourceWithHistory(), 64));
    expect(() => decodeAll(concat([chunks[0], chunks[2]]), 1 << 20)).toThrow(new SnapshotCorruptError(1, "out of order: found chunk 2"));
    expect(() => decodeAll(concat([...chunks, chunks[1]]), 1 << 20)).toThrow(/bytes after the trailer/);
    const huge = chunks[1].slice(0, 17);
    new DataView(huge.buffer).setUint32(9, SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX + 1);
    const decoder = new SnapshotDecoder();
    decoder.push(chunks[0]);
    expect(() => decoder.push(huge)).toThrow(`snapshot chunk 1: payload of ${SNAPSHOT_CHUNK_PAYLOAD_BYTES_MAX + 1} bytes exceeds`);
    expect(() => new SnapshotDecoder().finish()).toThrow("snapshot chunk 0: stream ended before the header");
  });

  it("copy the state as of their start while writes and compaction go on", () => {
    const mvcc = sourceWithHistory();
    const expected = mvcc.range(rangeRequest(new Uint8Array([0]), { rangeEnd: new Uint8Array([0]) })).kvs;
    const hash = mvcc.hashKv(0);
    const source = new SnapshotSource(mvcc, 64);
    const chunks = [source.nextChunk() as Uint8Array];
    put(mvcc, "key-0", "later");
    put(mvcc, "key-9", "later");
    applyCommand(mvcc, { type: "compact", request: { revision: mvcc.currentRevision(), physical: true } });
    expect(mvcc.compactBatch(1000)).toBe(false);
    chunks.push(...allChunks(source));
    expect(mvcc.compactBatch(1000)).toBe(true);
    const copy = new MemoryKvStore();
    const installer = new SnapshotInstaller(copy);
    for (const chunk of chunks) installer.push(chunk);
    expect(installer.finish()).toMatchObject({ appliedIndex: 6, revision: 7 });
    const copied = new Mvcc(copy);
    expect(copied.range(rangeRequest(new Uint8Array([0]), { rangeEnd: new Uint8Array([0]) })).kvs).toEqual(expected);
    expect(copied.hashKv(0)).toEqual(hash);
    expect(text(copied.range(rangeRequest(new TextEncoder().encode("key-0"), { revision: 2 })).kvs[0].value)).toBe("value-0");
  });
});
